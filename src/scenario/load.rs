//! Finding scenario files and loading them, reporting every broken file.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use super::Scenario;
use super::error::{Position, ScenarioError, ScenarioErrorKind};
use super::format::RawScenario;
use super::validate::{BodyReader, Checker, MAX_ERRORS_PER_FILE};

/// The text of one scenario file and the path it is reported under.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path shown in errors and reports; body files are resolved
    /// against its folder.
    pub path: PathBuf,
    /// The file's contents.
    pub text: String,
}

/// The largest scenario file that is parsed, 4 MiB. The suite's files are
/// a few kilobytes, and a step of 100,000 listed events takes about
/// 3.5 MiB.
pub const MAX_SCENARIO_FILE_BYTES: usize = 4 * 1024 * 1024;

/// The scenarios that loaded and the mistakes in those that did not.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    /// Valid scenarios, in file order.
    pub scenarios: Vec<Scenario>,
    /// The mistakes found, in file order, at most
    /// [`MAX_ERRORS_PER_FILE`](super::MAX_ERRORS_PER_FILE) per file and then
    /// one [`ScenarioErrorKind::Omitted`] entry that counts the rest.
    pub errors: Vec<ScenarioError>,
}

impl LoadOutcome {
    /// Returns the number of mistakes found, those left out of `errors`
    /// included.
    pub fn mistake_count(&self) -> usize {
        self.errors
            .iter()
            .map(|error| match error.kind {
                ScenarioErrorKind::Omitted { count } => count,
                _ => 1,
            })
            .sum()
    }
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
        match read_source(&path) {
            Ok(text) => sources.push(SourceFile { path, text }),
            Err(error) => errors.push(error),
        }
    }
    let mut outcome = load_sources(sources, &|path: &Path| std::fs::read(path));
    errors.append(&mut outcome.errors);
    outcome.errors = errors;
    outcome
}

/// Reads one scenario file, refusing one over the size limit before
/// reading it whole.
fn read_source(path: &Path) -> Result<String, ScenarioError> {
    let read_error = |error: io::Error| {
        ScenarioError::file(
            path,
            ScenarioErrorKind::Read,
            format!("failed to read the file: {error}"),
        )
    };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > MAX_SCENARIO_FILE_BYTES as u64 {
        return Err(too_large(path, size));
    }
    let bytes = std::fs::read(path).map_err(read_error)?;
    String::from_utf8(bytes).map_err(|error| not_utf8(path, error.as_bytes()))
}

/// Describes the first byte of `bytes` that is not UTF-8, at its line and
/// column.
fn not_utf8(path: &Path, bytes: &[u8]) -> ScenarioError {
    let valid = match std::str::from_utf8(bytes) {
        Ok(_) => bytes.len(),
        Err(error) => error.valid_up_to(),
    };
    // The prefix is valid UTF-8 by construction, so the lossy conversion
    // changes nothing and gives the line and column of the invalid byte.
    let before = String::from_utf8_lossy(&bytes[..valid]);
    let byte = bytes.get(valid).copied().unwrap_or_default();
    ScenarioError::at(
        path,
        &before,
        valid..valid,
        ScenarioErrorKind::Encoding,
        format!(
            "the file is not valid UTF-8: byte 0x{byte:02X} is not part of a UTF-8 \
             character; save the file as UTF-8"
        ),
    )
}

fn too_large(path: &Path, size: u64) -> ScenarioError {
    ScenarioError::file(
        path,
        ScenarioErrorKind::TooLarge,
        format!(
            "the file has {size} bytes, more than the limit of {MAX_SCENARIO_FILE_BYTES} \
             (4 MiB) for a scenario file; split it into several files, or send a large body \
             with body_file"
        ),
    )
}

/// Parses `sources` in order, reading body files through `read_body`, and
/// rejects a scenario whose name an earlier one already has.
pub fn load_sources(sources: Vec<SourceFile>, read_body: BodyReader<'_>) -> LoadOutcome {
    let mut outcome = LoadOutcome::default();
    let mut names: HashMap<String, PathBuf> = HashMap::new();
    for source in sources {
        if source.text.len() > MAX_SCENARIO_FILE_BYTES {
            outcome
                .errors
                .push(too_large(&source.path, source.text.len() as u64));
            continue;
        }
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
        None => {
            // Values are checked by meaning, not in file order; sort so that
            // the mistakes read top to bottom.
            let mut errors = checker.errors;
            errors.sort_by_key(|error| error.position.map(|p| (p.line, p.column)));
            let omitted = checker.found - errors.len();
            if omitted > 0 {
                let noun = if omitted == 1 { "mistake" } else { "mistakes" };
                errors.push(ScenarioError::file(
                    path,
                    ScenarioErrorKind::Omitted { count: omitted },
                    format!(
                        "{omitted} more {noun} not shown; only the first {MAX_ERRORS_PER_FILE} \
                         of a file are listed, so fix these and run again"
                    ),
                ));
            }
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::scenario::{
        ExpectedOutcome, LatencyLimit, MessageSource, Order, Severity, StatusSet, TokenMode,
    };

    const HEADER: &str =
        "name = \"probe\"\nsummary = \"One line\"\ndescription = \"Text.\"\nfix = \"Fix.\"\n";

    fn no_bodies(path: &Path) -> io::Result<Vec<u8>> {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            path.display().to_string(),
        ))
    }

    fn parse(steps: &str) -> Result<Scenario, Vec<ScenarioError>> {
        let text = format!("{HEADER}{steps}");
        parse_scenario(Path::new("probe.toml"), &text, &no_bodies)
    }

    fn messages(steps: &str) -> Vec<String> {
        parse(steps)
            .unwrap_err()
            .into_iter()
            .map(|error| error.to_string())
            .collect()
    }

    #[test]
    fn defaults_fill_a_minimal_step() {
        let scenario = parse("[[steps]]\nrealistic = 3\n").unwrap();
        let step = &scenario.steps[0];
        assert_eq!(step.name, "step 1");
        assert_eq!(step.source, MessageSource::Realistic(3));
        assert_eq!(step.batch_cap, 500);
        assert_eq!((step.repeat, step.concurrency, step.enterprises), (1, 1, 1));
        assert_eq!(step.order, Order::AsGenerated);
        assert_eq!(step.token, TokenMode::Right);
        assert_eq!(step.expect.outcome, ExpectedOutcome::Accepted);
        assert_eq!(step.expect.max_latency, LatencyLimit::DeadlineShare(100.0));
        assert!(step.expect.allow_redirects);
        assert_eq!(step.expect.severity, Severity::Fail);
        assert!(!scenario.needs_token());
    }

    #[test]
    fn rejection_statuses_imply_outcome() {
        let scenario = parse(
            "[[steps]]\nrealistic = 1\ntoken = \"missing\"\n[steps.expect]\nstatus = [401, 403]\n",
        )
        .unwrap();
        let expect = &scenario.steps[0].expect;
        assert_eq!(expect.outcome, ExpectedOutcome::Rejected);
        assert_eq!(expect.status, Some(StatusSet::Codes(vec![401, 403])));
        assert!(scenario.needs_token());
    }

    #[test]
    fn status_class_and_single_code_parse() {
        let class = parse("[[steps]]\nrealistic = 1\n[steps.expect]\nstatus = \"2XX\"\n").unwrap();
        assert_eq!(class.steps[0].expect.status, Some(StatusSet::Class(2)));
        let single = parse("[[steps]]\nrealistic = 1\n[steps.expect]\nstatus = 204\n").unwrap();
        assert_eq!(
            single.steps[0].expect.status,
            Some(StatusSet::Codes(vec![204]))
        );
    }

    #[test]
    fn contradicting_outcome_is_rejected() {
        let errors = messages(
            "[[steps]]\nrealistic = 1\n[steps.expect]\noutcome = \"accepted\"\nstatus = 401\n",
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("status 401 contradicts outcome = \"accepted\""),
            "{errors:?}"
        );
    }

    #[test]
    fn latency_limits_take_durations_and_shares() {
        let scenario = parse(
            "[[steps]]\nrealistic = 1\n[steps.expect]\nmax_latency = \"750ms\"\n\
             latency_percentile = { percentile = 99.5, max = \"25%\", severity = \"warn\" }\n",
        )
        .unwrap();
        let expect = &scenario.steps[0].expect;
        assert_eq!(
            expect.max_latency,
            LatencyLimit::Absolute(Duration::from_millis(750))
        );
        let percentile = expect.latency_percentile.unwrap();
        assert_eq!(percentile.percentile, 99.5);
        assert_eq!(percentile.severity, Severity::Warn);
        assert_eq!(expect.severity, Severity::Fail);
        assert_eq!(
            percentile.max.resolve(Duration::from_secs(4)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn bad_latency_values_are_named() {
        let errors = messages(
            "[[steps]]\nrealistic = 1\n[steps.expect]\nmax_latency = \"150%\"\n\
             latency_percentile = { percentile = 0, max = \"0s\" }\n",
        );
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("probe.toml:8:15: invalid share of the deadline \"150%\""));
        assert!(errors[1].contains("invalid percentile 0"), "{errors:?}");
        assert!(errors[2].contains("max is zero"), "{errors:?}");
    }

    #[test]
    fn invalid_codes_hide_outcome_conflict() {
        let errors = messages(
            "[[steps]]\nrealistic = 1\n[steps.expect]\nstatus = [99, 600]\noutcome = \"rejected\"\n",
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("invalid status 99"), "{errors:?}");
        assert!(errors[1].contains("invalid status 600"), "{errors:?}");
    }

    #[test]
    fn huge_integer_is_named() {
        let errors = messages("[[steps]]\nrealistic = 1\nrepeat = 99999999999999999999999\n");
        assert_eq!(
            errors,
            [
                "probe.toml:7:10: invalid number 99999999999999999999999: it is too large; use a \
              number in the range docs/scenarios.md gives for this key"
            ]
        );
    }

    #[test]
    fn duration_errors_name_the_problem() {
        let expect = |value: &str| {
            messages(&format!(
                "[[steps]]\nrealistic = 1\n[steps.expect]\nmax_latency = {value}\n"
            ))
            .join("\n")
        };
        let unit = expect("\"5 parsecs\"");
        assert!(
            unit.contains(": unknown unit \"parsecs\"; write a number with the unit ms, s or m"),
            "{unit}"
        );
        assert!(!unit.contains("months"), "{unit}");
        let large = expect("\"99999999999999999999s\"");
        assert!(large.contains(": the number is too large; "), "{large}");
        assert!(!large.contains("1ns"), "{large}");
        let bare = expect("\"2\"");
        assert!(bare.contains(": the number 2 has no unit; "), "{bare}");
        let integer = expect("500");
        assert!(
            integer.contains(
                "wrong type: integer `500`, expected a string with a duration such as \"2s\""
            ),
            "{integer}"
        );
    }

    #[test]
    fn step_needs_exactly_one_source() {
        let none = messages("[[steps]]\nrepeat = 2\n");
        assert!(none[0].contains("this one has none"), "{none:?}");
        let both = messages("[[steps]]\nrealistic = 2\nactions = [\"IntegrationEnabled\"]\n");
        assert!(
            both[0].contains("this one has realistic and actions"),
            "{both:?}"
        );
    }

    #[test]
    fn ranges_and_ids_are_checked() {
        let errors = messages(
            "[[steps]]\nrealistic = 200000\nconcurrency = 2000\nenterprise_id = \"not-a-guid\"\n\
             content_type = \"\"\n",
        );
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors[0].contains("invalid realistic 200000; use a number from 1 to 100000"));
        assert!(errors[1].contains("invalid concurrency 2000; use a number from 1 to 1024"));
        assert!(errors[2].contains("invalid enterprise_id \"not-a-guid\""));
        assert!(errors[3].contains("invalid content_type"));
    }

    #[test]
    fn too_many_sends_are_rejected() {
        let errors = messages("[[steps]]\nrealistic = 50000\nbatch_cap = 1\nrepeat = 2\n");
        assert!(
            errors[0].contains("more than the limit of 10000"),
            "{errors:?}"
        );
    }

    #[test]
    fn listed_events_count_by_batch_cap() {
        let events = "{ discriminator = \"PaymentUpdated\" },\n".repeat(10_001);
        let scenario = parse(&format!(
            "[[steps]]\nbatch_cap = 100000\nevents = [\n{events}]\n"
        ))
        .unwrap();
        assert_eq!(scenario.steps[0].batch_cap, 100_000);

        let errors = messages(
            "[[steps]]\nbatch_cap = 2\nrepeat = 6000\nevents = [\n\
             { discriminator = \"PaymentUpdated\" },\n\
             { discriminator = \"PaymentUpdated\" },\n\
             { discriminator = \"PaymentUpdated\", \
             enterprise_id = \"851df8c8-90f2-4c4a-8e01-a4fc46b25178\" },\n]\n",
        );
        assert!(
            errors[0].contains("may send up to 12000 messages, more than the limit of 10000"),
            "{errors:?}"
        );
    }

    #[test]
    fn generated_events_count_by_enterprises() {
        let one = parse("[[steps]]\nrealistic = 100000\nbatch_cap = 100000\nrepeat = 10000\n");
        assert!(one.is_ok(), "{:?}", one.err());
        let errors = messages(
            "[[steps]]\nrealistic = 100000\nbatch_cap = 100000\nrepeat = 10000\nenterprises = 2\n",
        );
        assert!(
            errors[0].contains("may send up to 20000 messages"),
            "{errors:?}"
        );
    }

    #[test]
    fn fixed_key_conflicts_with_several_enterprises() {
        let errors = messages(
            "[[steps]]\nrealistic = 5\nenterprises = 2\n\
             enterprise_id = \"851df8c8-90f2-4c4a-8e01-a4fc46b25178\"\n",
        );
        assert!(
            errors[0].contains("enterprises = 2 conflicts"),
            "{errors:?}"
        );
    }

    #[test]
    fn names_must_be_simple() {
        let text = "name = \"Missing token\"\nsummary = \"x\"\ndescription = \"x\"\nfix = \"x\"\n\
                    [[steps]]\nrealistic = 1\n";
        let errors = parse_scenario(Path::new("p.toml"), text, &no_bodies).unwrap_err();
        let message = errors[0].to_string();
        assert!(
            message.starts_with("p.toml:1:8: invalid check name \"Missing token\"; use letters"),
            "{message}"
        );
    }
}
