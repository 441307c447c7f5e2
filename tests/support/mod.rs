//! Golden-file comparison shared by the report and CLI tests.
//!
//! A golden file contains the expected output byte for byte. To accept new
//! output after a deliberate change, run the tests with
//! `MEWSHOOK_BLESS=1 cargo test`, which rewrites every golden file that a
//! test compares, and review the diff before committing it.

// Each test crate that includes this module uses only some of it.
#![allow(dead_code)]

use std::path::PathBuf;

/// The environment variable that rewrites golden files instead of
/// comparing with them.
pub const BLESS_VARIABLE: &str = "MEWSHOOK_BLESS";

/// Compares `actual` with `tests/golden/<name>`, or rewrites the file when
/// `MEWSHOOK_BLESS=1`.
pub fn assert_golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var(BLESS_VARIABLE).as_deref() == Ok("1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "failed to read {}: {error}; run with {BLESS_VARIABLE}=1 to create it",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "output differs from {}; if the change is deliberate, rerun with {BLESS_VARIABLE}=1 \
         and review the diff\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

/// Replaces what changes from run to run in terminal output: durations
/// (with the padding before them, which depends on their width) and
/// loopback ports.
pub fn normalize_run_output(text: &str) -> String {
    let durations = regex::Regex::new(r" +\d+(\.\d+)? (ms|s)\b").unwrap();
    let ports = regex::Regex::new(r"127\.0\.0\.1:\d+").unwrap();
    let text = durations.replace_all(text, " <time>");
    ports.replace_all(&text, "127.0.0.1:<port>").into_owned()
}
