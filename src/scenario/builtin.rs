//! The conformance suite compiled into the binary.
//!
//! `mewshook run` reads `scenarios/` from the working folder when it
//! exists. Elsewhere, for example in a CI job of a receiver's own
//! repository, it runs this copy, which is the same files as
//! `scenarios/conformance/` in this repository at build time.

use std::io;
use std::path::{Path, PathBuf};

use super::load::{LoadOutcome, SourceFile, load_sources};

/// The folder the built-in files are reported under, as if they were read
/// from a checkout of this repository.
pub const BUILTIN_ROOT: &str = "scenarios";

/// Scenario files, relative to [`BUILTIN_ROOT`].
const SCENARIOS: &[(&str, &str)] = &[
    (
        "conformance/01-general-discriminators.toml",
        include_str!("../../scenarios/conformance/01-general-discriminators.toml"),
    ),
    (
        "conformance/02-integration-actions.toml",
        include_str!("../../scenarios/conformance/02-integration-actions.toml"),
    ),
    (
        "conformance/03-batch-size.toml",
        include_str!("../../scenarios/conformance/03-batch-size.toml"),
    ),
    (
        "conformance/04-customer-added-and-updated.toml",
        include_str!("../../scenarios/conformance/04-customer-added-and-updated.toml"),
    ),
    (
        "conformance/05-unknown-types.toml",
        include_str!("../../scenarios/conformance/05-unknown-types.toml"),
    ),
    (
        "conformance/06-unknown-fields.toml",
        include_str!("../../scenarios/conformance/06-unknown-fields.toml"),
    ),
    (
        "conformance/07-duplicate-delivery.toml",
        include_str!("../../scenarios/conformance/07-duplicate-delivery.toml"),
    ),
    (
        "conformance/08-out-of-order-updates.toml",
        include_str!("../../scenarios/conformance/08-out-of-order-updates.toml"),
    ),
    (
        "conformance/09-concurrent-burst.toml",
        include_str!("../../scenarios/conformance/09-concurrent-burst.toml"),
    ),
    (
        "conformance/10-interleaved-enterprises.toml",
        include_str!("../../scenarios/conformance/10-interleaved-enterprises.toml"),
    ),
    (
        "conformance/11-missing-token.toml",
        include_str!("../../scenarios/conformance/11-missing-token.toml"),
    ),
    (
        "conformance/12-wrong-token.toml",
        include_str!("../../scenarios/conformance/12-wrong-token.toml"),
    ),
    (
        "conformance/13-token-reserved-characters.toml",
        include_str!("../../scenarios/conformance/13-token-reserved-characters.toml"),
    ),
    (
        "conformance/14-content-type-charset.toml",
        include_str!("../../scenarios/conformance/14-content-type-charset.toml"),
    ),
    (
        "conformance/15-redirect-status.toml",
        include_str!("../../scenarios/conformance/15-redirect-status.toml"),
    ),
    (
        "conformance/16-latency-headroom.toml",
        include_str!("../../scenarios/conformance/16-latency-headroom.toml"),
    ),
];

/// Body files the scenarios send, relative to [`BUILTIN_ROOT`].
const BODIES: &[(&str, &[u8])] = &[
    (
        "conformance/bodies/extra-field-top-level.json",
        include_bytes!("../../scenarios/conformance/bodies/extra-field-top-level.json"),
    ),
    (
        "conformance/bodies/extra-field-event.json",
        include_bytes!("../../scenarios/conformance/bodies/extra-field-event.json"),
    ),
    (
        "conformance/bodies/extra-field-value.json",
        include_bytes!("../../scenarios/conformance/bodies/extra-field-value.json"),
    ),
];

/// Returns the built-in scenario files, in suite order.
pub fn builtin_sources() -> Vec<SourceFile> {
    SCENARIOS
        .iter()
        .map(|(path, text)| SourceFile {
            path: Path::new(BUILTIN_ROOT).join(path),
            text: (*text).to_string(),
        })
        .collect()
}

/// Returns the relative paths of the built-in files, scenarios and bodies,
/// for the test that keeps this list in step with the folder.
pub fn builtin_file_names() -> Vec<&'static str> {
    SCENARIOS
        .iter()
        .map(|(path, _)| *path)
        .chain(BODIES.iter().map(|(path, _)| *path))
        .collect()
}

/// Reads a built-in body file by the path a scenario resolves it to.
fn read_builtin_body(path: &Path) -> io::Result<Vec<u8>> {
    BODIES
        .iter()
        .find(|(name, _)| Path::new(BUILTIN_ROOT).join(name) == path)
        .map(|(_, bytes)| bytes.to_vec())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is not part of the built-in suite", path.display()),
            )
        })
}

/// Loads the built-in suite.
pub fn load_builtin() -> LoadOutcome {
    load_sources(builtin_sources(), &read_builtin_body)
}

/// Returns the folder `mewshook run` reads when no path is given.
pub fn default_folder() -> PathBuf {
    PathBuf::from(BUILTIN_ROOT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_on_disk(folder: &Path, root: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files_on_disk(&path, root, found);
            } else {
                let relative = path.strip_prefix(root).unwrap();
                found.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }

    #[test]
    fn builtin_list_matches_folder() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(BUILTIN_ROOT);
        let mut on_disk = Vec::new();
        files_on_disk(&root.join("conformance"), &root, &mut on_disk);
        on_disk.sort();
        let mut built_in: Vec<String> =
            builtin_file_names().iter().map(|s| s.to_string()).collect();
        built_in.sort();
        assert_eq!(
            built_in, on_disk,
            "add new files of scenarios/conformance/ to the lists in src/scenario/builtin.rs"
        );
    }

    #[test]
    fn builtin_suite_loads() {
        let outcome = load_builtin();
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        assert_eq!(outcome.scenarios.len(), 16);
        assert_eq!(outcome.scenarios[0].name, "general-discriminators");
        let bodies = outcome
            .scenarios
            .iter()
            .flat_map(|scenario| &scenario.steps)
            .filter(|step| matches!(step.source, crate::scenario::MessageSource::Body { .. }))
            .count();
        assert_eq!(bodies, 3);
    }
}
