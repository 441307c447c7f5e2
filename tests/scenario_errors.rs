//! Malformed scenario files through the binary: each kind of mistake is
//! reported as `file:line:column: message` with exit code 2, and every
//! broken file is reported in one run.

use std::path::Path;
use std::process::Output;

use tempfile::TempDir;

const HEADER: &str = r#"name = "probe"
summary = "A probe"
description = "What Mews does and what a good receiver does."
fix = "How to fix it."
"#;

fn mewshook(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_mewshook"))
        .args(args)
        .env_remove("MEWSHOOK_TOKEN")
        .env_remove("RUST_LOG")
        .output()
        .expect("the mewshook binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write(folder: &Path, name: &str, text: &str) -> String {
    let path = folder.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Lists each kind of mistake: file name, contents, and the start of the
/// expected `line:column: message` after the path.
fn mistakes() -> Vec<(&'static str, String, &'static str)> {
    vec![
        (
            "unknown-key.toml",
            format!("{HEADER}\n[[steps]]\nrealistic = 3\nrepeet = 2\n"),
            "8:1: unknown key \"repeet\"; did you mean \"repeat\"?",
        ),
        (
            "wrong-type.toml",
            format!("{HEADER}\n[[steps]]\nrealistic = 3\nrepeat = \"two\"\n"),
            "8:10: wrong type: string \"two\", expected an integer",
        ),
        (
            "bad-duration.toml",
            format!("{HEADER}\n[[steps]]\nrealistic = 3\n[steps.expect]\nmax_latency = \"5 parsecs\"\n"),
            "9:15: invalid duration \"5 parsecs\" for max_latency",
        ),
        (
            "unknown-discriminator.toml",
            format!("{HEADER}\n[[steps]]\nevents = [{{ discriminator = \"CustomerAded\" }}]\n"),
            "7:29: unknown discriminator \"CustomerAded\"; did you mean \"CustomerAdded\"?",
        ),
        (
            "unknown-action.toml",
            format!("{HEADER}\n[[steps]]\nactions = [\"IntegrationEnabled\", \"IntegrationCreate\"]\n"),
            "7:34: unknown action \"IntegrationCreate\"; did you mean \"IntegrationCreated\"?",
        ),
        (
            "syntax.toml",
            format!("{HEADER}\n[[steps]]\nrealistic = 3\norder = \"reversed\n"),
            "8:18: invalid TOML:",
        ),
        (
            "missing-fix.toml",
            "name = \"probe\"\nsummary = \"A probe\"\ndescription = \"Text.\"\n\n[[steps]]\nrealistic = 3\n"
                .to_string(),
            "1:1: missing required key \"fix\"",
        ),
    ]
}

#[test]
fn each_mistake_names_its_position() {
    for (name, text, expected) in mistakes() {
        let folder = TempDir::new().unwrap();
        let path = write(folder.path(), name, &text);
        let output = mewshook(&["run", "--list", &path]);
        let stderr = stderr(&output);

        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("error: {path}:{expected}")),
            "{name}: expected \"{path}:{expected}\" in:\n{stderr}"
        );
        assert!(output.stdout.is_empty(), "{name}: nothing is listed");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
}

#[test]
fn every_broken_file_is_reported() {
    let folder = TempDir::new().unwrap();
    let mut paths = Vec::new();
    for (name, text, expected) in mistakes() {
        paths.push((write(folder.path(), name, &text), expected));
    }
    write(
        folder.path(),
        "valid.toml",
        &format!("{HEADER}\n[[steps]]\nrealistic = 3\n"),
    );

    let output = mewshook(&["run", "--list", &folder.path().display().to_string()]);
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for (path, expected) in &paths {
        assert!(
            stderr.contains(&format!("{path}:{expected}")),
            "missing {path}:{expected} in:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("found 7 mistakes in the scenario files"),
        "{stderr}"
    );
}

#[test]
fn several_mistakes_in_one_file_are_all_reported() {
    let folder = TempDir::new().unwrap();
    let text = format!(
        "{HEADER}\n[[steps]]\nevents = [{{ discriminator = \"PaymentUpdate\" }}]\nrepeat = 0\n\
         [steps.expect]\nstatus = [401, 202]\n"
    );
    let path = write(folder.path(), "many.toml", &text);
    let output = mewshook(&["run", "--list", &path]);
    let stderr = stderr(&output);

    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.contains(&format!(
            "{path}:7:29: unknown discriminator \"PaymentUpdate\""
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{path}:8:10: invalid repeat 0; use a number from 1"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{path}:10:10: status mixes 2xx and other codes")),
        "{stderr}"
    );
}

#[test]
fn unknown_type_on_purpose_is_allowed() {
    let folder = TempDir::new().unwrap();
    let text = format!(
        "{HEADER}\n[[steps]]\nevents = [{{ discriminator = \"CustomerAded\" }}]\nallow_unknown = true\n"
    );
    let path = write(folder.path(), "on-purpose.toml", &text);
    let output = mewshook(&["run", "--list", &path]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("probe"));
}

#[test]
fn missing_body_file_is_named() {
    let folder = TempDir::new().unwrap();
    let text = format!("{HEADER}\n[[steps]]\nbody_file = \"bodies/none.json\"\n");
    let path = write(folder.path(), "body.toml", &text);
    let output = mewshook(&["run", "--list", &path]);
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.contains(&format!("{path}:7:13: failed to read body_file")),
        "{stderr}"
    );
    assert!(
        stderr.contains("relative to the scenario file's folder"),
        "{stderr}"
    );
}

#[test]
fn duplicate_names_are_rejected() {
    let folder = TempDir::new().unwrap();
    let text = format!("{HEADER}\n[[steps]]\nrealistic = 3\n");
    write(folder.path(), "a.toml", &text);
    let second = write(folder.path(), "b.toml", &text);
    let output = mewshook(&["run", "--list", &folder.path().display().to_string()]);
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.contains(&format!(
            "{second}:1:8: check name \"probe\" is already used by"
        )),
        "{stderr}"
    );
}

#[test]
fn missing_path_and_empty_folder_are_invalid() {
    let folder = TempDir::new().unwrap();
    let missing = folder.path().join("nowhere").display().to_string();
    let output = mewshook(&[
        "run",
        "--list",
        &missing,
        &folder.path().display().to_string(),
    ]);
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.contains(&format!("{missing}: no such file or folder")),
        "{stderr}"
    );
    assert!(
        stderr.contains("contains no *.toml scenario files"),
        "{stderr}"
    );
}

#[test]
fn documented_examples_parse() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scenarios.md");
    let text = std::fs::read_to_string(&docs).unwrap();
    let blocks: Vec<&str> = text
        .split("```toml\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .collect();
    assert!(blocks.len() >= 5, "{} examples found", blocks.len());

    // Examples that send a body file get a stand-in body.
    let read_body = |_: &Path| Ok(b"{}".to_vec());
    for block in blocks {
        let parsed =
            mewshook::scenario::parse_scenario(Path::new("example.toml"), block, &read_body);
        assert!(parsed.is_ok(), "{:?} in:\n{block}", parsed.err());
    }
}

#[test]
fn mistakes_per_file_are_capped() {
    let folder = TempDir::new().unwrap();
    let events = "{ discriminator = \"CustomerAded\" },\n".repeat(120);
    let text = format!("{HEADER}\n[[steps]]\nbatch_cap = 1000\nevents = [\n{events}]\n");
    let path = write(folder.path(), "typos.toml", &text);
    let output = mewshook(&["run", "--list", &path]);
    let stderr = stderr(&output);

    assert_eq!(output.status.code(), Some(2));
    let listed = stderr.matches("unknown discriminator").count();
    assert_eq!(listed, 50, "{stderr}");
    assert!(
        stderr.contains(&format!("error: {path}: 70 more mistakes not shown")),
        "{stderr}"
    );
    assert!(
        stderr.contains("found 120 mistakes in the scenario files"),
        "{stderr}"
    );
}

#[test]
fn oversized_file_is_rejected() {
    let folder = TempDir::new().unwrap();
    let padding = "# padding\n".repeat(500_000);
    let text = format!("{HEADER}{padding}\n[[steps]]\nrealistic = 3\n");
    let path = write(folder.path(), "huge.toml", &text);
    let output = mewshook(&["run", "--list", &path]);
    let stderr = stderr(&output);

    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: {path}: the file has {} bytes, more than the limit of 4194304 (4 MiB)",
            text.len()
        )),
        "{stderr}"
    );
}

#[test]
fn invalid_utf8_names_its_position() {
    let folder = TempDir::new().unwrap();
    let mut bytes = format!("{HEADER}\n[[steps]]\nrealistic = 3\nname = \"caf").into_bytes();
    bytes.extend_from_slice(&[0xE9, b'"', b'\n']);
    let path = folder.path().join("latin1.toml");
    std::fs::write(&path, bytes).unwrap();
    let path = path.display().to_string();
    let output = mewshook(&["run", "--list", &path]);
    let stderr = stderr(&output);

    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: {path}:8:12: the file is not valid UTF-8: byte 0xE9"
        )),
        "{stderr}"
    );
}

#[test]
fn body_file_stays_in_the_folder() {
    let root = TempDir::new().unwrap();
    let outside = root.path().join("outside.json");
    std::fs::write(&outside, "{}").unwrap();
    let folder = root.path().join("checks");
    std::fs::create_dir(&folder).unwrap();
    std::os::unix::fs::symlink(&outside, folder.join("link.json")).unwrap();

    let cases = [
        (
            "parent.toml",
            "../outside.json".to_string(),
            "leaves the scenario file's folder",
        ),
        (
            "deep.toml",
            "bodies/../../outside.json".to_string(),
            "leaves the scenario file's folder",
        ),
        (
            "absolute.toml",
            outside.display().to_string(),
            "the path is absolute",
        ),
        (
            "link.toml",
            "link.json".to_string(),
            "through a symbolic link",
        ),
    ];
    for (name, body_file, expected) in cases {
        let text = format!("{HEADER}\n[[steps]]\nbody_file = \"{body_file}\"\n");
        let path = write(&folder, name, &text);
        let output = mewshook(&["run", "--list", &path]);
        let stderr = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "error: {path}:7:13: invalid body_file \"{body_file}\": "
            )),
            "{name}: {stderr}"
        );
        assert!(stderr.contains(expected), "{name}: {stderr}");
    }
}
