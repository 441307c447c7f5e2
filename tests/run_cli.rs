//! `mewshook run` through the binary: exit codes, progress output, the
//! JUnit and JSON reports, and the token kept out of all of them.
//!
//! Terminal output is compared with golden files after durations and
//! ports are replaced; rewrite them with
//! `MEWSHOOK_BLESS=1 cargo test --test run_cli`.

mod fixtures;
mod support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use fixtures::{Fault, Fixture};
use support::{assert_golden, normalize_run_output};
use tempfile::TempDir;
use tokio::process::Command;

/// A token with every character that needs encoding in a query.
const TOKEN: &str = "tok+en/with=&%chars qz7Xv";

fn suite_folder() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios/conformance")
        .display()
        .to_string()
}

async fn mewshook(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mewshook"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("MEWSHOOK_TOKEN")
        .env_remove("RUST_LOG")
        .output()
        .await
        .expect("the mewshook binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts that no spelling of the token, nor its secret part, is in
/// `content`.
fn assert_token_absent(name: &str, content: &str) {
    let spellings = [
        TOKEN.to_string(),
        mewshook::secret::encode_query_value(TOKEN),
        url::form_urlencoded::byte_serialize(TOKEN.as_bytes()).collect(),
        "qz7Xv".to_string(),
    ];
    for spelling in spellings {
        assert!(
            !content.contains(&spelling),
            "{name} contains {spelling:?}:\n{content}"
        );
    }
}

#[tokio::test]
async fn embedded_run_passes_and_writes_reports() {
    let folder = TempDir::new().unwrap();
    let junit_path = folder.path().join("conformance.xml");
    let json_path = folder.path().join("conformance.json");
    let output = mewshook(&[
        "run",
        "--token",
        TOKEN,
        "--report",
        &format!("junit={}", junit_path.display()),
        "--report",
        &format!("json={}", json_path.display()),
    ])
    .await;
    let stdout = text(&output.stdout);

    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|line| line.starts_with("PASS  "))
            .count(),
        16,
        "{stdout}"
    );
    assert_golden("run-embedded.txt", &normalize_run_output(&stdout));

    let junit = std::fs::read_to_string(&junit_path).unwrap();
    assert!(
        junit.contains(r#"tests="16" skipped="0" failures="0" errors="0""#),
        "{junit}"
    );
    let json = std::fs::read_to_string(&json_path).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["schema"], "mewshook.run.v1");
    assert_eq!(value["summary"]["passed"], 16);
    assert_eq!(value["target"]["embedded_receiver"], true);

    for (name, content) in [
        ("stdout", stdout.as_str()),
        ("stderr", &text(&output.stderr)),
        ("junit", &junit),
        ("json", &json),
    ] {
        assert_token_absent(name, content);
    }
}

#[tokio::test]
async fn failing_receiver_exits_one_with_fix() {
    let fixture = Fixture::with_fault(Some(TOKEN), Fault::NoTokenCheck).await;
    let folder = TempDir::new().unwrap();
    let json_path = folder.path().join("report.json");
    let output = mewshook(&[
        "run",
        &suite_folder(),
        "--url",
        fixture.url().as_str(),
        "--token",
        TOKEN,
        "--filter",
        "*-token",
        "--report",
        &format!("json={}", json_path.display()),
    ])
    .await;
    let stdout = text(&output.stdout);

    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert_golden("run-no-token-check.txt", &normalize_run_output(&stdout));
    let json = std::fs::read_to_string(&json_path).unwrap();
    assert_token_absent("stdout", &stdout);
    assert_token_absent("json", &json);
    assert_token_absent("stderr", &text(&output.stderr));
}

#[tokio::test]
async fn unknown_token_skips_token_checks() {
    let fixture = Fixture::with_fault(None, Fault::None).await;
    let output = mewshook(&[
        "run",
        &suite_folder(),
        "--url",
        fixture.url().as_str(),
        "--filter",
        "token",
    ])
    .await;
    let stdout = text(&output.stdout);

    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert_eq!(
        stdout
            .lines()
            .filter(|line| line.starts_with("SKIP  "))
            .count(),
        3,
        "{stdout}"
    );
    assert!(stdout.contains("3 checks in"), "{stdout}");
    assert!(
        stdout.contains("0 passed, 0 failed, 0 warned, 3 skipped"),
        "{stdout}"
    );
}

#[tokio::test]
async fn token_file_and_variable_reach_the_runner() {
    let fixture = Fixture::with_fault(Some(TOKEN), Fault::None).await;
    let folder = TempDir::new().unwrap();
    let token_file = folder.path().join("token.txt");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let url = fixture.url().to_string();

    let from_file = mewshook(&[
        "run",
        &suite_folder(),
        "--url",
        &url,
        "--token-file",
        &token_file.display().to_string(),
        "--filter",
        "token",
    ])
    .await;
    assert_eq!(
        from_file.status.code(),
        Some(0),
        "{}",
        text(&from_file.stdout)
    );
    assert!(
        text(&from_file.stdout).contains("3 passed"),
        "{}",
        text(&from_file.stdout)
    );

    let from_variable = Command::new(env!("CARGO_BIN_EXE_mewshook"))
        .args(["run", &suite_folder(), "--url", &url, "--filter", "token"])
        .env("MEWSHOOK_TOKEN", TOKEN)
        .output()
        .await
        .unwrap();
    assert_eq!(from_variable.status.code(), Some(0));
    assert!(
        text(&from_variable.stdout).contains("3 passed"),
        "{}",
        text(&from_variable.stdout)
    );
    assert_token_absent("stdout", &text(&from_variable.stdout));
}

#[tokio::test]
async fn list_prints_name_severity_and_summary() {
    let output = mewshook(&["run", "--list", &suite_folder()]).await;
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0));
    for line in stdout.lines() {
        assert!(line.contains("  severity: "), "{line}");
    }
    assert_golden("run-list.txt", &stdout);
}

#[tokio::test]
async fn filter_takes_substrings_and_globs() {
    let substring = mewshook(&["run", "--list", &suite_folder(), "--filter", "token"]).await;
    let names: Vec<String> = text(&substring.stdout)
        .lines()
        .map(|line| line.split_whitespace().next().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        names,
        ["missing-token", "wrong-token", "token-reserved-characters"]
    );

    let glob = mewshook(&["run", "--list", &suite_folder(), "--filter", "*-token"]).await;
    let names: Vec<String> = text(&glob.stdout)
        .lines()
        .map(|line| line.split_whitespace().next().unwrap_or("").to_string())
        .collect();
    assert_eq!(names, ["missing-token", "wrong-token"]);
}

#[tokio::test]
async fn builtin_suite_runs_outside_a_checkout() {
    let folder = TempDir::new().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mewshook"))
        .args(["run", "--list"])
        .current_dir(folder.path())
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(text(&output.stdout).lines().count(), 16);
    assert!(text(&output.stderr).contains("running the built-in conformance suite"));
}

#[tokio::test]
async fn invalid_flags_exit_two() {
    let folder = TempDir::new().unwrap();
    let missing_folder = folder.path().join("nowhere/report.xml");
    let cases: [(&[&str], &str); 6] = [
        (
            &["run", "--report", "html=report.html"],
            "unknown report kind \"html\"",
        ),
        (&["run", "--report", "junit"], "write KIND=PATH"),
        (
            &["run", "--filter", "no-such-check"],
            "no check matches --filter no-such-check",
        ),
        (&["run", "--timeout", "soon"], "invalid duration \"soon\""),
        (&["run", "--timeout", "1ns"], "--timeout 1ns is below 1 ms"),
        (&["run", "--timeout", "0s"], "--timeout 0s is below 1 ms"),
    ];
    for (args, expected) in cases {
        let output = mewshook(args).await;
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }

    let junit = format!("junit={}", folder.path().join("same.out").display());
    let json = format!("json={}/./same.out", folder.path().display());
    let output = mewshook(&["run", "--report", &junit, "--report", &json]).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "--report {junit} and --report {json} write the same file"
        )),
        "{stderr}"
    );
    assert!(
        output.stdout.is_empty(),
        "nothing runs with clashing reports"
    );

    let report = format!("junit={}", missing_folder.display());
    let output = mewshook(&["run", "--report", &report]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("does not exist"),
        "{}",
        text(&output.stderr)
    );
    assert!(
        output.stdout.is_empty(),
        "nothing runs before the report folder is checked"
    );
}

#[tokio::test]
async fn unwritable_report_exits_three() {
    // A folder where the report file should be cannot be written as a file.
    let folder = TempDir::new().unwrap();
    let report = format!("json={}", folder.path().display());
    let output = mewshook(&["run", "--filter", "unknown-types", "--report", &report]).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("failed to write report"), "{stderr}");
    assert!(
        text(&output.stdout).contains("1 passed"),
        "the checks still ran and printed"
    );
}

#[tokio::test]
async fn help_documents_exit_codes() {
    let output = mewshook(&["run", "--help"]).await;
    let stdout = text(&output.stdout);
    for line in [
        "0  every check passed",
        "1  a check failed",
        "2  invalid input",
        "3  runtime error",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
}

/// The token of the URL tests, with reserved characters so that check 13
/// runs, and as the URL spells it.
const URL_TOKEN: &str = "S3cr+t/Tok";
const URL_TOKEN_ENCODED: &str = "S3cr%2Bt%2FTok";

fn assert_url_token_absent(name: &str, content: &str) {
    for spelling in [URL_TOKEN, URL_TOKEN_ENCODED, "S3cr"] {
        assert!(
            !content.contains(spelling),
            "{name} contains {spelling:?}:\n{content}"
        );
    }
}

#[tokio::test]
async fn token_in_url_controls_token_checks() {
    let fixture = Fixture::with_fault(Some(URL_TOKEN), Fault::None).await;
    let url = format!("{}?Token={URL_TOKEN_ENCODED}", fixture.url());
    let folder = TempDir::new().unwrap();
    let junit_path = folder.path().join("report.xml");
    let json_path = folder.path().join("report.json");
    let output = mewshook(&[
        "run",
        &suite_folder(),
        "--url",
        &url,
        "--filter",
        "token",
        "--report",
        &format!("junit={}", junit_path.display()),
        "--report",
        &format!("json={}", json_path.display()),
    ])
    .await;
    let stdout = text(&output.stdout);

    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("3 passed, 0 failed, 0 warned, 0 skipped"),
        "{stdout}"
    );
    assert!(
        stdout.contains("?Token=<redacted>, deadline"),
        "one redacted token in the header:\n{stdout}"
    );
    let json = std::fs::read_to_string(&json_path).unwrap();
    let junit = std::fs::read_to_string(&junit_path).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["target"]["token_known"], true);
    for (name, content) in [
        ("stdout", stdout.as_str()),
        ("stderr", &text(&output.stderr)),
        ("junit", &junit),
        ("json", &json),
    ] {
        assert_url_token_absent(name, content);
    }
}

#[tokio::test]
async fn same_token_in_url_and_flag_runs_once() {
    let fixture = Fixture::with_fault(Some(URL_TOKEN), Fault::None).await;
    let url = format!("{}?Token={URL_TOKEN_ENCODED}", fixture.url());
    let output = mewshook(&[
        "run",
        &suite_folder(),
        "--url",
        &url,
        "--token",
        URL_TOKEN,
        "--filter",
        "*-token",
    ])
    .await;
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("2 passed, 0 failed"), "{stdout}");
    assert!(!stdout.contains("&Token="), "{stdout}");
}

#[tokio::test]
async fn conflicting_url_token_exits_two() {
    let url = format!("http://127.0.0.1:9/?Token={URL_TOKEN_ENCODED}");
    let output = mewshook(&["run", "--url", &url, "--token", "another-token"]).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("differs from the token given with --token"),
        "{stderr}"
    );
    assert_url_token_absent("stderr", &stderr);
    assert!(output.stdout.is_empty(), "nothing runs");
}

#[tokio::test]
async fn echoed_token_spellings_are_hidden() {
    // Every character that an encoder escapes, and a distinctive tail.
    const ECHO_TOKEN: &str = "Ek/9&x<y>z+q=w%'\"\u{fc}7Lm";
    let fixture = Fixture::with_fault(Some(ECHO_TOKEN), Fault::EchoToken).await;
    let folder = TempDir::new().unwrap();
    let junit_path = folder.path().join("report.xml");
    let json_path = folder.path().join("report.json");
    let output = mewshook(&[
        "run",
        &suite_folder(),
        "--url",
        fixture.url().as_str(),
        "--token",
        ECHO_TOKEN,
        "--filter",
        "general-discriminators",
        "--filter",
        "*-token",
        "--report",
        &format!("junit={}", junit_path.display()),
        "--report",
        &format!("json={}", json_path.display()),
    ])
    .await;
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");

    let json = std::fs::read_to_string(&json_path).unwrap();
    let junit = std::fs::read_to_string(&junit_path).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let excerpt = value["checks"][0]["steps"][0]["attempts"][0]["response_excerpt"]
        .as_str()
        .unwrap_or_default();
    assert!(
        excerpt.contains("<redacted>"),
        "the echo arrived: {excerpt}"
    );
    assert!(
        excerpt.chars().count() < 512,
        "the whole echo fits in the excerpt, so no spelling hides past the cut: {excerpt}"
    );

    let mut spellings = fixtures::echoed_spellings(ECHO_TOKEN);
    spellings.push("7Lm".to_string());
    for (name, content) in [
        ("stdout", stdout.as_str()),
        ("stderr", &text(&output.stderr)),
        ("junit", &junit),
        ("json", &json),
    ] {
        for spelling in &spellings {
            assert!(
                !content.contains(spelling.as_str()),
                "{name} contains {spelling:?}:\n{content}"
            );
        }
    }
}

#[tokio::test]
async fn common_word_tokens_keep_reports_intact() {
    for token in ["test", "token", "1", "x"] {
        let fixture = Fixture::with_fault(Some(token), Fault::None).await;
        let folder = TempDir::new().unwrap();
        let junit_path = folder.path().join("report.xml");
        let json_path = folder.path().join("report.json");
        let output = mewshook(&[
            "run",
            &suite_folder(),
            "--url",
            fixture.url().as_str(),
            "--token",
            token,
            "--filter",
            "*-token",
            "--filter",
            "unknown-types",
            "--report",
            &format!("junit={}", junit_path.display()),
            "--report",
            &format!("json={}", json_path.display()),
        ])
        .await;
        let stdout = text(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{token}: {stdout}");
        assert!(
            stdout.contains("PASS  missing-token"),
            "{token}: check names are intact:\n{stdout}"
        );

        let junit = std::fs::read_to_string(&junit_path).unwrap();
        if let Err(error) = support::check_well_formed_xml(&junit) {
            panic!("{token}: the JUnit report is not well-formed: {error}\n{junit}");
        }
        assert!(junit.contains(r#"name="wrong-token""#), "{token}: {junit}");

        let json = std::fs::read_to_string(&json_path).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json)
            .unwrap_or_else(|error| panic!("{token}: invalid JSON: {error}\n{json}"));
        assert_eq!(value["schema"], "mewshook.run.v1", "{token}");
        assert_eq!(value["summary"]["checks"], 3, "{token}");
        assert_eq!(value["checks"][1]["name"], "missing-token", "{token}");
        assert_eq!(
            value["target"]["general_url"],
            format!("{}?Token=<redacted>", fixture.url()),
            "{token}"
        );
    }
}

#[tokio::test]
async fn failure_reason_shows_redirect_chain() {
    let fault = Fault::RedirectThen {
        status: 307,
        then: 401,
    };
    let fixture = Fixture::with_fault(Some(TOKEN), fault).await;
    let folder = TempDir::new().unwrap();
    let junit_path = folder.path().join("report.xml");
    let output = mewshook(&[
        "run",
        &suite_folder(),
        "--url",
        fixture.url().as_str(),
        "--token",
        TOKEN,
        "--filter",
        "redirect-status",
        "--report",
        &format!("junit={}", junit_path.display()),
    ])
    .await;
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");

    let final_url = format!("{}redirected?Token=", fixture.url());
    assert!(
        stdout.contains(&format!(
            "expected 2xx, but rejected with 401 after 307 → {final_url}<redacted> (send 1 of 1"
        )),
        "{stdout}"
    );
    let junit = std::fs::read_to_string(&junit_path).unwrap();
    assert!(
        junit.contains(&format!(
            "rejected with 401 after 307 → {final_url}&lt;redacted&gt;"
        )),
        "{junit}"
    );
    assert_token_absent("stdout", &stdout);
    assert_token_absent("junit", &junit);
}

#[tokio::test]
async fn rejected_token_gets_one_clear_note() {
    let fixture = Fixture::with_fault(Some(TOKEN), Fault::None).await;
    let folder = TempDir::new().unwrap();
    let json_path = folder.path().join("report.json");
    let wrong = mewshook(&[
        "run",
        &suite_folder(),
        "--url",
        fixture.url().as_str(),
        "--token",
        "not-the-token",
        "--filter",
        "general-discriminators",
        "--filter",
        "unknown-*",
        "--report",
        &format!("json={}", json_path.display()),
    ])
    .await;
    let stdout = text(&wrong.stdout);
    assert_eq!(wrong.status.code(), Some(1), "{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("note: the receiver answered 401 or 403 to every request with the token, so the token is probably wrong"),
        "{stdout}"
    );
    let json = std::fs::read_to_string(&json_path).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["token_rejected"], true);

    let missing = mewshook(&[
        "run",
        &suite_folder(),
        "--url",
        fixture.url().as_str(),
        "--filter",
        "general-discriminators",
    ])
    .await;
    let stdout = text(&missing.stdout);
    assert!(
        stdout.contains("so it probably needs its token; give it with --token"),
        "{stdout}"
    );

    let right = mewshook(&[
        "run",
        &suite_folder(),
        "--url",
        fixture.url().as_str(),
        "--token",
        TOKEN,
        "--filter",
        "general-discriminators",
    ])
    .await;
    assert!(
        !text(&right.stdout).contains("note:"),
        "{}",
        text(&right.stdout)
    );
}

#[tokio::test]
async fn timeout_names_the_deadline() {
    let fixture = Fixture::with_fault(Some(TOKEN), Fault::Delay(Duration::from_millis(500))).await;
    let output = mewshook(&[
        "run",
        &suite_folder(),
        "--url",
        fixture.url().as_str(),
        "--token",
        TOKEN,
        "--timeout",
        "100ms",
        "--filter",
        "content-type-charset",
    ])
    .await;
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("expected 2xx, but no response within 100 ms (send 1 of 1"),
        "{stdout}"
    );
}

#[tokio::test]
async fn interrupt_writes_finished_checks() {
    use tokio::io::{AsyncBufReadExt, BufReader};

    // Each response takes 100 ms: the first check sends one message, and
    // the second sends 20, so it is still running when the signal comes.
    let fixture = Fixture::with_fault(Some(TOKEN), Fault::Delay(Duration::from_millis(100))).await;
    let folder = TempDir::new().unwrap();
    let json_path = folder.path().join("report.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mewshook"))
        .args([
            "run",
            &suite_folder(),
            "--url",
            fixture.url().as_str(),
            "--token",
            TOKEN,
            "--filter",
            "content-type-charset",
            "--filter",
            "latency-headroom",
            "--report",
            &format!("json={}", json_path.display()),
        ])
        .env_remove("MEWSHOOK_TOKEN")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdout = String::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        stdout.push_str(&line);
        stdout.push('\n');
        if line.starts_with("PASS  content-type-charset") {
            break;
        }
    }
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    while let Some(line) = lines.next_line().await.unwrap() {
        stdout.push_str(&line);
        stdout.push('\n');
    }
    let status = child.wait().await.unwrap();

    assert_eq!(status.code(), Some(3), "{stdout}");
    assert!(
        stdout.contains("\ninterrupted: the check in progress and the ones after it did not run"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 check in ") && stdout.contains(": 1 passed, 0 failed"),
        "{stdout}"
    );
    assert!(!stdout.contains("latency-headroom "), "{stdout}");
    let json = std::fs::read_to_string(&json_path).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["interrupted"], true);
    assert_eq!(value["summary"]["checks"], 1);
}
