//! The terminal, JUnit and JSON renderings of one fixed report, compared
//! with golden files. The report is built by hand with fixed timings, so
//! the files change only when the output format does. Rewrite them with
//! `MEWSHOOK_BLESS=1 cargo test --test report_golden`.

mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use mewshook::conformance::{
    AttemptReport, CheckReport, CheckStatus, Finding, LatencyStats, StatusCounts, StepReport,
    SuiteReport, TargetSummary,
};
use mewshook::delivery::{ConnectionErrorKind, Outcome, RedirectHop};
use mewshook::payload::WebhookKind;
use mewshook::report::{json, junit, terminal};
use mewshook::scenario::{Severity, TokenMode};
use support::assert_golden;

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn attempt(send: usize, outcome: Outcome, millis: u64, label: &str) -> AttemptReport {
    AttemptReport {
        send,
        message: send,
        copy: 1,
        kind: WebhookKind::General,
        label: label.to_string(),
        events: 1,
        token: TokenMode::Right,
        token_param: Some("Token".to_string()),
        outcome,
        latency: ms(millis),
        headers_after: Some(ms(millis)),
        redirects: Vec::new(),
        response_excerpt: String::new(),
    }
}

fn step(name: &str, attempts: Vec<AttemptReport>) -> StepReport {
    let latencies: Vec<Duration> = attempts.iter().map(|a| a.latency).collect();
    StepReport {
        name: name.to_string(),
        messages: attempts.len(),
        skip_reason: None,
        latency: LatencyStats::of(&latencies),
        attempts,
    }
}

fn check(name: &str, status: CheckStatus, millis: u64) -> CheckReport {
    CheckReport {
        name: name.to_string(),
        summary: format!("Summary of {name}"),
        file: format!("scenarios/conformance/{name}.toml"),
        severity: Severity::Fail,
        status,
        elapsed: ms(millis),
        skip_reason: None,
        findings: Vec::new(),
        fix: "Answer 2xx to every well-formed General Webhook, whatever its discriminators: \
              skip the events you do not need instead of rejecting the message.\n\n\
              Move slow work to a queue."
            .to_string(),
        steps: Vec::new(),
    }
}

/// Builds a report with one check of each status, with redirects, a
/// rejection, a slow percentile and a skipped step.
fn report() -> SuiteReport {
    let mut passed = check("general-discriminators", CheckStatus::Pass, 4);
    let mut redirected = attempt(
        2,
        Outcome::Delivered { status: 202 },
        3,
        "1 General event, ResourceUpdated",
    );
    redirected.redirects.push(RedirectHop {
        status: 307,
        location: "http://127.0.0.1:8080/redirected?Token=<redacted>".to_string(),
    });
    passed.steps.push(step(
        "one message per discriminator",
        vec![
            attempt(
                1,
                Outcome::Delivered { status: 202 },
                2,
                "1 General event, ServiceOrderUpdated",
            ),
            redirected,
        ],
    ));

    let mut failed = check("missing-token", CheckStatus::Fail, 12);
    let mut accepted = attempt(
        1,
        Outcome::Delivered { status: 200 },
        5,
        "3 General events, ServiceOrderUpdated",
    );
    accepted.token = TokenMode::Missing;
    accepted.token_param = None;
    accepted.response_excerpt = "ok".to_string();
    failed
        .steps
        .push(step("General Webhook without a token", vec![accepted]));
    let mut reset = attempt(
        1,
        Outcome::ConnectionFailed {
            kind: ConnectionErrorKind::Reset,
            detail: "connection closed before message completed".to_string(),
        },
        1,
        "Integration action IntegrationEnabled",
    );
    reset.kind = WebhookKind::Integration;
    reset.token = TokenMode::Missing;
    reset.token_param = None;
    reset.headers_after = None;
    failed
        .steps
        .push(step("Integration Webhook without a token", vec![reset]));
    failed.findings = vec![
        Finding {
            step: "General Webhook without a token".to_string(),
            severity: Severity::Fail,
            message: "expected 401 or 403, but accepted with 200 (send 1 of 1: 3 General events, ServiceOrderUpdated)"
                .to_string(),
        },
        Finding {
            step: "Integration Webhook without a token".to_string(),
            severity: Severity::Fail,
            message: "expected 401 or 403, but connection reset: connection closed before message \
                      completed (send 1 of 1: Integration action IntegrationEnabled)"
                .to_string(),
        },
    ];

    let mut warned = check("latency-headroom", CheckStatus::Warn, 2604);
    warned.severity = Severity::Warn;
    warned.findings = vec![Finding {
        step: "20 messages of 100 events, one at a time".to_string(),
        severity: Severity::Warn,
        message: "p95 latency 2.60 s is above 2.50 s (50% of the 5 s deadline) over 20 attempts"
            .to_string(),
    }];

    let mut skipped = check("token-reserved-characters", CheckStatus::Skip, 0);
    skipped.skip_reason = Some(
        "the receiver's token is not known; give it with --token, MEWSHOOK_TOKEN or --token-file to run this check"
            .to_string(),
    );

    let mut partly_skipped = check("wrong-token", CheckStatus::Pass, 3);
    let mut wrong = attempt(
        1,
        Outcome::Rejected { status: 403 },
        2,
        "1 General event, PaymentUpdated",
    );
    wrong.token = TokenMode::Wrong;
    partly_skipped
        .steps
        .push(step("General Webhook with a wrong token", vec![wrong]));
    partly_skipped.steps.push(StepReport::skipped(
        "General Webhook with the token's letter case swapped",
        "the token has no letters whose case can be swapped, so it cannot show whether the \
         receiver compares without case"
            .to_string(),
    ));

    let checks = vec![passed, failed, warned, skipped, partly_skipped];
    SuiteReport {
        target: TargetSummary {
            general_url: "http://127.0.0.1:8080/?Token=<redacted>".to_string(),
            integration_url: "http://127.0.0.1:8080/?Token=<redacted>".to_string(),
            embedded_receiver: false,
            token_known: true,
        },
        deadline: Duration::from_secs(5),
        seed: 1,
        started_at: DateTime::parse_from_rfc3339("2025-03-14T09:26:53Z")
            .unwrap()
            .with_timezone(&Utc),
        elapsed: ms(2620),
        summary: StatusCounts::of(&checks),
        interrupted: false,
        token_rejected: false,
        checks,
    }
}

#[test]
fn terminal_output_matches_golden() {
    assert_golden("report.txt", &terminal::render(&report()));
}

#[test]
fn junit_report_matches_golden() {
    assert_golden("report.junit.xml", &junit::render(&report()).unwrap());
}

#[test]
fn json_report_matches_golden() {
    assert_golden("report.json", &json::render(&report()).unwrap());
}

#[test]
fn json_report_has_schema_and_counts() {
    let value: serde_json::Value = serde_json::from_str(&json::render(&report()).unwrap()).unwrap();
    assert_eq!(value["schema"], json::RUN_SCHEMA);
    assert_eq!(value["summary"]["checks"], 5);
    assert_eq!(value["summary"]["failed"], 1);
    assert_eq!(value["checks"][1]["status"], "fail");
    assert_eq!(
        value["checks"][0]["steps"][0]["attempts"][1]["redirects"][0]["status"],
        307
    );
}

#[test]
fn json_attempt_keeps_webhook_and_failure_kind_apart() {
    let value: serde_json::Value = serde_json::from_str(&json::render(&report()).unwrap()).unwrap();
    let attempt = &value["checks"][1]["steps"][1]["attempts"][0];
    assert_eq!(attempt["webhook"], "integration");
    assert_eq!(attempt["outcome"], "connection_failed");
    assert_eq!(attempt["kind"], "reset");
    assert!(attempt["headers_after_ms"].is_null());
}

#[test]
fn junit_counts_failures_and_skips() {
    let xml = junit::render(&report()).unwrap();
    assert!(
        xml.contains(r#"tests="5" skipped="1" failures="1" errors="0""#),
        "{xml}"
    );
}

#[test]
fn token_note_follows_summary() {
    let mut report = report();
    report.token_rejected = true;
    let text = terminal::render(&report);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[lines.len() - 2].starts_with("5 checks in 2.62 s"),
        "{text}"
    );
    assert!(
        lines[lines.len() - 1].starts_with("note: the receiver responded with 401 or 403"),
        "{text}"
    );
}

#[test]
fn interrupted_run_is_marked() {
    let mut report = report();
    report.interrupted = true;
    let text = terminal::render(&report);
    assert!(
        text.contains("\ninterrupted: the check in progress and the ones after it did not run"),
        "{text}"
    );
    let xml = junit::render(&report).unwrap();
    assert!(
        xml.contains(r#"<property name="interrupted" value="true"/>"#),
        "{xml}"
    );
    assert!(xml.contains(r#"<testcase name="run interrupted""#), "{xml}");
    assert!(
        xml.contains("<error message=\"the run was interrupted"),
        "{xml}"
    );
    let value: serde_json::Value = serde_json::from_str(&json::render(&report).unwrap()).unwrap();
    assert_eq!(value["interrupted"], true);
    assert!(!report.passed(), "an interrupted run does not pass");
}
