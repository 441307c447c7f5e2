//! `mewshook bench` through the binary: flag errors, threshold exit
//! codes, the JSON document and the token kept out of the output. Runs
//! use the embedded reference receiver and a few dozen requests.

use std::process::{Command, Output};

use serde_json::Value;

const TOKEN: &str = "cli-s3cret";

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mewshook"))
        .arg("bench")
        .args(args)
        .env_remove("MEWSHOOK_TOKEN")
        .env("CI", "true")
        .output()
        .expect("the mewshook binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A short run against the embedded receiver.
const SHORT: [&str; 4] = ["--requests", "30", "--warmup", "0s"];

#[test]
fn bad_threshold_exits_2_naming_value() {
    for expression in ["p99>>2ms", "p99", "median>1s", "errors>lots", "p99>200"] {
        let output = bench(&["--fail-if", expression]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{expression}: {stderr}");
        assert!(stderr.contains(expression), "{expression}: {stderr}");
        assert!(stderr.contains("p99>200ms"), "{expression}: {stderr}");
    }
}

#[test]
fn late_threshold_needs_rate() {
    let mut args = SHORT.to_vec();
    args.extend(["--fail-if", "late>0"]);
    let output = bench(&args);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--rate"), "{stderr}");
}

#[test]
fn bad_flag_values_exit_2() {
    let cases: [&[&str]; 8] = [
        &["--rate", "0"],
        &["--rate", "fast"],
        &["--events-per-message", "0"],
        &["--events-per-message", "9..2"],
        &["--duration", "0s"],
        &["--stall-for", "1s", "--stall-every", "1s"],
        &["--kind", "integration", "--events-per-message", "3"],
        &["--json", "/nonexistent-dir/report.json"],
    ];
    for args in cases {
        let output = bench(args);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error:"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn crossed_threshold_exits_4() {
    let mut args = SHORT.to_vec();
    args.extend(["--fail-if", "p50>0us", "--fail-if", "errors>50%"]);
    let output = bench(&args);
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(4),
        "{stdout}{}",
        text(&output.stderr)
    );
    let line = |expression: &str| {
        stdout
            .lines()
            .find(|line| line.contains(expression))
            .unwrap_or_else(|| panic!("no line for {expression}: {stdout}"))
            .to_string()
    };
    assert!(line("p50>0us").contains("CROSSED"), "{stdout}");
    assert!(line("errors>50%").contains("passed"), "{stdout}");
}

#[test]
fn passed_thresholds_exit_0() {
    let mut args = SHORT.to_vec();
    args.extend(["--fail-if", "p99>1m", "--fail-if", "breaches>0"]);
    let output = bench(&args);
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(stdout.contains("p99>1m"), "{stdout}");
    assert!(!stdout.contains("CROSSED"), "{stdout}");
}

#[test]
fn unreachable_url_exits_3() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{addr}/hooks");
    let output = bench(&["--url", &url, "--token", TOKEN, "--requests", "5"]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains(&addr.to_string()), "{stderr}");
    assert!(!stderr.contains(TOKEN), "{stderr}");
}

#[test]
fn json_report_has_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.json");
    let path_text = path.to_str().unwrap();
    let mut args = SHORT.to_vec();
    args.extend([
        "--rate",
        "300",
        "--json",
        path_text,
        "--token",
        TOKEN,
        "--fail-if",
        "p99>1m",
    ]);
    let output = bench(&args);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));

    let raw = std::fs::read_to_string(&path).unwrap();
    assert!(!raw.contains(TOKEN));
    let document: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(document["schema"], "mewshook.bench.v1");
    for field in [
        "settings",
        "started_at",
        "interrupted",
        "window_ms",
        "requests",
        "rate",
        "deadline_breaches",
        "statuses",
        "timeouts",
        "connection_errors",
        "error_examples",
        "latency",
        "schedule",
        "timeline",
        "thresholds",
    ] {
        assert!(document.get(field).is_some(), "missing {field}");
    }
    let settings = &document["settings"];
    assert_eq!(settings["mode"], "open");
    assert_eq!(settings["target_rate"], 300.0);
    assert_eq!(settings["embedded_receiver"], true);
    assert_eq!(settings["client"], "raw");
    assert!(settings["threads"].as_u64().unwrap() >= 1, "{settings}");
    assert!(
        settings["target"]
            .as_str()
            .unwrap()
            .contains("Token=<redacted>")
    );

    assert_eq!(document["requests"]["counted"], 30);
    assert_eq!(document["rate"]["target"], 300.0);
    assert_eq!(document["latency"]["headline"], "corrected");
    assert_eq!(document["thresholds"][0]["expression"], "p99>1m");
    assert_eq!(document["thresholds"][0]["crossed"], false);
    let schedule = &document["schedule"];
    assert!(schedule["late_sends"].is_u64());
    assert_eq!(schedule["scheduled"], 30);

    for summary in [
        &document["latency"]["service"],
        &document["latency"]["corrected"],
        &schedule["lag"],
    ] {
        assert_eq!(summary["count"], 30, "{summary}");
        assert!(summary["p99_9_ms"].is_f64(), "{summary}");
        let histogram =
            mewshook::bench::json::decode_histogram(summary["histogram"].as_str().unwrap())
                .unwrap();
        assert_eq!(histogram.len(), 30);
        let max_ms = histogram.max() as f64 / 1000.0;
        assert_eq!(summary["max_ms"].as_f64().unwrap(), max_ms);
    }
    let points = document["timeline"]["points"].as_array().unwrap();
    let total: u64 = points
        .iter()
        .map(|point| point["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 30);
}

#[test]
fn closed_loop_json_has_no_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("closed.json");
    let mut args = SHORT.to_vec();
    args.extend(["--json", path.to_str().unwrap()]);
    let output = bench(&args);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));

    let document: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(document["settings"]["mode"], "closed");
    assert!(document["schedule"].is_null());
    assert!(document["latency"]["corrected"].is_null());
    assert!(document["rate"]["target"].is_null());
    assert_eq!(document["latency"]["headline"], "service");
}

#[test]
fn token_never_printed() {
    let mut args = SHORT.to_vec();
    args.extend(["--token", TOKEN, "--rate", "500"]);
    let output = bench(&args);
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("Token=<redacted>"), "{stdout}");
    assert!(!stdout.contains(TOKEN), "{stdout}");
    assert!(!stderr.contains(TOKEN), "{stderr}");
}

#[test]
fn help_shows_examples() {
    let output = bench(&["--help"]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout.contains("Examples:"), "{stdout}");
    assert!(stdout.contains("--fail-if"), "{stdout}");
}

#[test]
fn token_written_in_url_never_printed() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{addr}/hooks?Token={TOKEN}");
    let output = bench(&["--url", &url, "--requests", "5"]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("Token=<redacted>"), "{stderr}");
    assert!(!stderr.contains(TOKEN), "{stderr}");
}
