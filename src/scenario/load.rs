//! Finding scenario files and loading them, reporting every broken file.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use super::Scenario;
use super::error::{Position, ScenarioError, ScenarioErrorKind};
use super::format::RawScenario;
use super::validate::{BodyReader, Checker};

/// The text of one scenario file and the path it is reported under.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path shown in errors and reports; body files are resolved
    /// against its folder.
    pub path: PathBuf,
    /// The file's contents.
    pub text: String,
}

/// The scenarios that loaded and the mistakes in those that did not.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    /// Valid scenarios, in file order.
    pub scenarios: Vec<Scenario>,
    /// Every mistake found, in file order.
    pub errors: Vec<ScenarioError>,
}

/// Lists the scenario files under `paths`: a file is taken as it is, and a
/// folder is searched recursively for `*.toml`, sorted by path. Symbolic
/// links to folders are not followed, so a link cycle cannot loop.
///
/// A path that does not exist, or a folder without scenario files, is an
/// error; the other paths are still listed.
pub fn discover(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<ScenarioError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.is_file() {
            files.push(path.clone());
            continue;
        }
        if !path.is_dir() {
            errors.push(ScenarioError::file(
                path,
                ScenarioErrorKind::NotFound,
                "no such file or folder; give a scenario file or a folder of *.toml files",
            ));
            continue;
        }
        let mut found = Vec::new();
        if let Err(error) = collect_toml(path, &mut found) {
            errors.push(ScenarioError::file(
                path,
                ScenarioErrorKind::Read,
                format!("failed to list the folder: {error}"),
            ));
            continue;
        }
        if found.is_empty() {
            errors.push(ScenarioError::file(
                path,
                ScenarioErrorKind::NoFiles,
                "the folder contains no *.toml scenario files",
            ));
        }
        found.sort();
        files.extend(found);
    }

    // A file named twice, directly or through its folder, runs once.
    let mut seen = std::collections::HashSet::new();
    files.retain(|file| seen.insert(file.clone()));
    (files, errors)
}

fn collect_toml(folder: &Path, found: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(folder)? {
        let entry = entry?;
        let path = entry.path();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            collect_toml(&path, found)?;
        } else if path.extension().is_some_and(|ext| ext == "toml") && path.is_file() {
            found.push(path);
        }
    }
    Ok(())
}

/// Finds and loads the scenarios under `paths`. Every file is parsed even
/// when others are broken, so one run reports all mistakes.
pub fn load(paths: &[PathBuf]) -> LoadOutcome {
    let (files, mut errors) = discover(paths);
    let mut sources = Vec::new();
    for path in files {
        match std::fs::read_to_string(&path) {
            Ok(text) => sources.push(SourceFile { path, text }),
            Err(error) => errors.push(ScenarioError::file(
                &path,
                ScenarioErrorKind::Read,
                format!("failed to read the file: {error}"),
            )),
        }
    }
    let mut outcome = load_sources(sources, &|path: &Path| std::fs::read(path));
    errors.append(&mut outcome.errors);
    outcome.errors = errors;
    outcome
}

/// Parses `sources` in order, reading body files through `read_body`, and
/// rejects a scenario whose name an earlier one already has.
pub fn load_sources(sources: Vec<SourceFile>, read_body: BodyReader<'_>) -> LoadOutcome {
    let mut outcome = LoadOutcome::default();
    let mut names: HashMap<String, PathBuf> = HashMap::new();
    for source in sources {
        match parse_with_position(&source.path, &source.text, read_body) {
            Ok((scenario, position)) => {
                if let Some(first) = names.get(&scenario.name) {
                    outcome.errors.push(ScenarioError {
                        file: source.path.clone(),
                        position: Some(position),
                        kind: ScenarioErrorKind::DuplicateName,
                        message: format!(
                            "check name \"{}\" is already used by {}; give each scenario its \
                             own name",
                            scenario.name,
                            first.display()
                        ),
                    });
                    continue;
                }
                names.insert(scenario.name.clone(), source.path.clone());
                outcome.scenarios.push(scenario);
            }
            Err(mut errors) => outcome.errors.append(&mut errors),
        }
    }
    outcome
}

/// Parses one scenario file. `path` is used in errors and to resolve body
/// files; `text` is its contents.
pub fn parse_scenario(
    path: &Path,
    text: &str,
    read_body: BodyReader<'_>,
) -> Result<Scenario, Vec<ScenarioError>> {
    parse_with_position(path, text, read_body).map(|(scenario, _)| scenario)
}

/// Parses one file and returns the scenario with the position of its name.
fn parse_with_position(
    path: &Path,
    text: &str,
    read_body: BodyReader<'_>,
) -> Result<(Scenario, Position), Vec<ScenarioError>> {
    let raw: RawScenario =
        toml::from_str(text).map_err(|error| vec![ScenarioError::from_toml(path, text, &error)])?;
    let mut checker = Checker::new(path, text, read_body);
    let name_position = checker.position(&raw.name.span());
    match checker.scenario(raw) {
        Some(scenario) => Ok((scenario, name_position)),
        None => Err(checker.errors),
    }
}
