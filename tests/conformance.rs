//! The conformance suite in `scenarios/conformance/` against receivers on
//! loopback: the reference receiver and a good fixture pass every check,
//! and each check fails on a fixture with the one fault it is about.

mod fixtures;

use std::path::PathBuf;
use std::time::Duration;

use fixtures::{Fault, Fixture, Hangup};
use mewshook::conformance::{
    CheckReport, CheckStatus, RunOptions, Runner, SuiteReport, Target, start_embedded_receiver,
};
use mewshook::delivery::Outcome;
use mewshook::scenario::{self, Scenario, TokenMode};
use url::Url;

/// A token with every character that is reserved in a query string.
const TOKEN: &str = "s3cr+t/va=lue&x%y";

fn suite() -> Vec<Scenario> {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/conformance");
    let outcome = scenario::load(&[folder]);
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(outcome.scenarios.len(), 16);
    outcome.scenarios
}

fn scenario_named(name: &str) -> Scenario {
    suite()
        .into_iter()
        .find(|scenario| scenario.name == name)
        .unwrap_or_else(|| panic!("no check named {name}"))
}

fn target(url: Url, token: Option<&str>) -> Target {
    Target {
        general_url: url.clone(),
        integration_url: url,
        token: token.map(str::to_string),
        token_param: "Token".to_string(),
        embedded_receiver: false,
    }
}

async fn run(target: Target, options: RunOptions, scenarios: &[Scenario]) -> SuiteReport {
    let runner = Runner::new(target, options).unwrap();
    runner.run(scenarios, |_| {}).await
}

/// Lists each check that did not pass, with its findings, for assertion
/// messages.
fn not_passed(report: &SuiteReport) -> Vec<String> {
    report
        .checks
        .iter()
        .filter(|check| check.status != CheckStatus::Pass)
        .map(|check| {
            format!(
                "{} {:?}: {:?} {:?}",
                check.name, check.status, check.findings, check.skip_reason
            )
        })
        .collect()
}

#[tokio::test]
async fn reference_receiver_passes_every_check() {
    let embedded = start_embedded_receiver(None, "Token").await.unwrap();
    let report = run(embedded.target, RunOptions::default(), &suite()).await;
    embedded.receiver.stop().await;

    assert_eq!(report.summary.checks, 16);
    assert_eq!(report.summary.passed, 16, "{:#?}", not_passed(&report));
    assert!(report.passed());
}

#[tokio::test]
async fn good_fixture_passes_every_check() {
    let fixture = Fixture::with_fault(Some(TOKEN), Fault::None).await;
    let report = run(
        target(fixture.url(), Some(TOKEN)),
        RunOptions::default(),
        &suite(),
    )
    .await;
    assert_eq!(report.summary.passed, 16, "{:#?}", not_passed(&report));
}

/// Each check and a receiver with the one fault it must catch. Check 16
/// warns rather than fails, by design.
fn fault_table() -> Vec<(&'static str, Fault, CheckStatus)> {
    vec![
        (
            "general-discriminators",
            Fault::RejectDiscriminator("PaymentUpdated"),
            CheckStatus::Fail,
        ),
        (
            "integration-actions",
            Fault::RejectAction("IntegrationApiKeyCreated"),
            CheckStatus::Fail,
        ),
        ("batch-size", Fault::BodyLimit(64 * 1024), CheckStatus::Fail),
        (
            "customer-added-and-updated",
            Fault::RejectRepeatedId,
            CheckStatus::Fail,
        ),
        ("unknown-types", Fault::ClosedTypes, CheckStatus::Fail),
        ("unknown-fields", Fault::StrictFields, CheckStatus::Fail),
        (
            "duplicate-delivery",
            Fault::RejectDuplicateBody,
            CheckStatus::Fail,
        ),
        (
            "out-of-order-updates",
            Fault::RequireAddedFirst,
            CheckStatus::Fail,
        ),
        (
            "concurrent-burst",
            Fault::ConcurrencyLimit(4),
            CheckStatus::Fail,
        ),
        (
            "interleaved-enterprises",
            Fault::SingleEnterprise,
            CheckStatus::Fail,
        ),
        ("missing-token", Fault::NoTokenCheck, CheckStatus::Fail),
        ("wrong-token", Fault::TokenPresenceOnly, CheckStatus::Fail),
        ("wrong-token", Fault::TokenPrefix, CheckStatus::Fail),
        ("wrong-token", Fault::TokenLengthOnly, CheckStatus::Fail),
        (
            "wrong-token",
            Fault::TokenCaseInsensitive,
            CheckStatus::Fail,
        ),
        (
            "token-reserved-characters",
            Fault::RawTokenCompare,
            CheckStatus::Fail,
        ),
        (
            "content-type-charset",
            Fault::ExactContentType,
            CheckStatus::Fail,
        ),
        ("redirect-status", Fault::Redirect(302), CheckStatus::Fail),
    ]
}

#[tokio::test]
async fn wrong_token_catches_length_check_on_digit_token() {
    // A token without letters cannot be sent with its case swapped, so
    // only the altered token has the right length.
    let token = "48151623420815";
    let fixture = Fixture::with_fault(Some(token), Fault::TokenSameLength).await;
    let scenarios = [scenario_named("wrong-token")];
    let report = run(
        target(fixture.url(), Some(token)),
        RunOptions::default(),
        &scenarios,
    )
    .await;
    assert_eq!(
        report.checks[0].status,
        CheckStatus::Fail,
        "{:?}",
        report.checks[0].findings
    );
}

#[tokio::test]
async fn each_check_catches_its_fault() {
    let table = fault_table();
    let names: Vec<&str> = table.iter().map(|(name, _, _)| *name).collect();
    for scenario in suite() {
        assert!(
            names.contains(&scenario.name.as_str()) || scenario.name == "latency-headroom",
            "{} has no faulty fixture",
            scenario.name
        );
    }

    for (name, fault, expected) in table {
        let fixture = Fixture::with_fault(Some(TOKEN), fault.clone()).await;
        let scenarios = [scenario_named(name)];
        let report = run(
            target(fixture.url(), Some(TOKEN)),
            RunOptions::default(),
            &scenarios,
        )
        .await;
        let check = &report.checks[0];
        assert_eq!(
            check.status, expected,
            "{name} against {fault:?}: {:?}",
            check.findings
        );
        assert!(
            !check.findings.is_empty(),
            "{name}: a failed check names a finding"
        );
    }
}

#[tokio::test]
async fn out_of_order_messages_are_distinct() {
    let fixture = Fixture::with_fault(Some(TOKEN), Fault::RejectDuplicateBody).await;
    let report = run(
        target(fixture.url(), Some(TOKEN)),
        RunOptions::default(),
        &[scenario_named("out-of-order-updates")],
    )
    .await;
    let check = &report.checks[0];
    assert_eq!(check.status, CheckStatus::Pass, "{:?}", check.findings);
    assert_eq!(check.steps[0].attempts.len(), 4);
}

#[tokio::test]
async fn headroom_warns_for_slow_receiver() {
    // The p95 of 20 latencies is the 19th fastest, so two slow responses
    // put it above half the deadline. Only two sends wait, which keeps the
    // test short while leaving each a wide margin before the deadline.
    let slow = Fault::SlowFirst {
        count: 2,
        delay: Duration::from_millis(600),
    };
    let fixture = Fixture::with_fault(Some(TOKEN), slow).await;
    let options = RunOptions {
        deadline: Duration::from_secs(1),
        ..RunOptions::default()
    };
    let report = run(
        target(fixture.url(), Some(TOKEN)),
        options,
        &[scenario_named("latency-headroom")],
    )
    .await;
    let check = &report.checks[0];

    assert_eq!(check.status, CheckStatus::Warn, "{:?}", check.findings);
    assert!(
        check
            .findings
            .iter()
            .any(|finding| finding.message.starts_with("p95 latency")),
        "{:?}",
        check.findings
    );
    assert!(report.passed(), "a warning does not fail the run");
}

#[tokio::test]
async fn headroom_fails_for_rejecting_receiver() {
    let fixture = Fixture::with_fault(Some(TOKEN), Fault::Status(503)).await;
    let report = run(
        target(fixture.url(), Some(TOKEN)),
        RunOptions::default(),
        &[scenario_named("latency-headroom")],
    )
    .await;
    let check = &report.checks[0];
    assert_eq!(check.status, CheckStatus::Fail, "{:?}", check.findings);
    assert!(
        check.findings[0]
            .message
            .starts_with("expected 2xx, but rejected with 503"),
        "{:?}",
        check.findings
    );
    assert!(!report.passed());
}

#[tokio::test]
async fn headroom_passes_for_fast_receiver() {
    let fixture = Fixture::with_fault(Some(TOKEN), Fault::None).await;
    let report = run(
        target(fixture.url(), Some(TOKEN)),
        RunOptions::default(),
        &[scenario_named("latency-headroom")],
    )
    .await;
    assert_eq!(report.checks[0].status, CheckStatus::Pass);
    let step = &report.checks[0].steps[0];
    assert_eq!(step.attempts.len(), 20);
    assert_eq!(step.latency.map(|stats| stats.count), Some(20));
}

#[tokio::test]
async fn token_checks_skip_without_token() {
    let fixture = Fixture::with_fault(None, Fault::None).await;
    let report = run(target(fixture.url(), None), RunOptions::default(), &suite()).await;

    let skipped: Vec<&str> = report
        .checks
        .iter()
        .filter(|check| check.status == CheckStatus::Skip)
        .map(|check| check.name.as_str())
        .collect();
    assert_eq!(
        skipped,
        vec!["missing-token", "wrong-token", "token-reserved-characters"]
    );
    assert_eq!(report.summary.skipped, 3);
    assert_eq!(report.summary.passed, 13, "{:#?}", not_passed(&report));
    for check in report
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Skip)
    {
        let reason = check.skip_reason.as_deref().unwrap_or("");
        assert!(reason.contains("token is not known"), "{reason}");
        assert!(check.steps.is_empty(), "a skipped check sends nothing");
    }
}

#[tokio::test]
async fn plain_token_skips_reserved_character_check() {
    let fixture = Fixture::with_fault(Some("plaintoken"), Fault::None).await;
    let report = run(
        target(fixture.url(), Some("plaintoken")),
        RunOptions::default(),
        &suite(),
    )
    .await;
    let status = |name: &str| -> &CheckReport {
        report
            .checks
            .iter()
            .find(|check| check.name == name)
            .unwrap()
    };

    assert_eq!(status("missing-token").status, CheckStatus::Pass);
    assert_eq!(status("wrong-token").status, CheckStatus::Pass);
    let reserved = status("token-reserved-characters");
    assert_eq!(reserved.status, CheckStatus::Skip);
    assert!(
        reserved
            .skip_reason
            .as_deref()
            .unwrap_or("")
            .contains("none of + / = & %"),
        "{:?}",
        reserved.skip_reason
    );
}

#[tokio::test]
async fn attempts_record_statuses_and_redirects() {
    let fixture = Fixture::with_fault(Some(TOKEN), Fault::Redirect(307)).await;
    let report = run(
        target(fixture.url(), Some(TOKEN)),
        RunOptions::default(),
        &[scenario_named("redirect-status")],
    )
    .await;
    let check = &report.checks[0];
    assert_eq!(check.status, CheckStatus::Pass, "{:?}", check.findings);

    let attempt = &check.steps[0].attempts[0];
    assert_eq!(attempt.outcome, Outcome::Delivered { status: 202 });
    assert_eq!(attempt.redirects.len(), 1);
    assert_eq!(attempt.redirects[0].status, 307);
    assert!(
        attempt.redirects[0]
            .location
            .contains("/redirected?Token=<redacted>")
    );
    assert!(!attempt.redirects[0].location.contains("s3cr"));
}

#[tokio::test]
async fn hangups_are_counted_not_fatal() {
    let server = Hangup::start().await;
    let report = run(
        target(server.url(), Some(TOKEN)),
        RunOptions::default(),
        &[
            scenario_named("concurrent-burst"),
            scenario_named("missing-token"),
        ],
    )
    .await;

    assert_eq!(report.summary.failed, 2);
    let burst = &report.checks[0].steps[0];
    assert_eq!(burst.attempts.len(), 20, "every send is recorded");
    for attempt in &burst.attempts {
        assert!(
            matches!(attempt.outcome, Outcome::ConnectionFailed { .. }),
            "{:?}",
            attempt.outcome
        );
    }
    assert!(
        server.connections() >= 20,
        "{} connections",
        server.connections()
    );
}

#[tokio::test]
async fn unreachable_receiver_fails_every_check() {
    // Bind and drop a listener to find a port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    drop(listener);

    let report = run(target(url, Some(TOKEN)), RunOptions::default(), &suite()).await;
    assert_eq!(report.summary.failed, 16);
    assert_eq!(report.summary.warned, 0);
    let finding = &report.checks[0].findings[0].message;
    assert!(finding.contains("connection refused"), "{finding}");
}

#[tokio::test]
async fn general_and_integration_urls_are_separate() {
    let general = Fixture::with_fault(Some(TOKEN), Fault::RejectAction("IntegrationEnabled")).await;
    let integration = Fixture::with_fault(
        Some(TOKEN),
        Fault::RejectDiscriminator("ServiceOrderUpdated"),
    )
    .await;
    let target = Target {
        general_url: general.url(),
        integration_url: integration.url(),
        token: Some(TOKEN.to_string()),
        token_param: "Token".to_string(),
        embedded_receiver: false,
    };
    let report = run(
        target,
        RunOptions::default(),
        &[scenario_named("redirect-status")],
    )
    .await;
    assert_eq!(
        report.checks[0].status,
        CheckStatus::Pass,
        "{:?}",
        report.checks[0].findings
    );
    assert_eq!(general.requests(), 1);
    assert_eq!(integration.requests(), 1);
}

#[tokio::test]
async fn burst_sends_twenty_at_once() {
    // With a limit of 19 in flight, a burst of 20 overlapping requests
    // trips it only if all 20 really are sent at once.
    let fixture = Fixture::with_fault(Some(TOKEN), Fault::ConcurrencyLimit(19)).await;
    let report = run(
        target(fixture.url(), Some(TOKEN)),
        RunOptions::default(),
        &[scenario_named("concurrent-burst")],
    )
    .await;
    assert_eq!(report.checks[0].status, CheckStatus::Fail);
}

/// Parses one scenario file's text, with no body files.
fn parse(text: &str) -> Scenario {
    let no_bodies = |path: &std::path::Path| -> std::io::Result<Vec<u8>> {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            path.display().to_string(),
        ))
    };
    scenario::parse_scenario(std::path::Path::new("probe.toml"), text, &no_bodies).unwrap()
}

#[tokio::test]
async fn token_param_step_skips_without_token() {
    let scenario = parse(
        "name = \"token-parameter-case\"\nsummary = \"s\"\ndescription = \"d\"\nfix = \"f\"\n\
         [[steps]]\nrealistic = 1\ntoken_param = \"token\"\n[steps.expect]\nstatus = [401, 403]\n",
    );
    let fixture = Fixture::with_fault(None, Fault::None).await;
    let report = run(
        target(fixture.url(), None),
        RunOptions::default(),
        std::slice::from_ref(&scenario),
    )
    .await;
    let check = &report.checks[0];
    assert_eq!(check.status, CheckStatus::Skip, "{:?}", check.findings);
    assert!(check.steps.is_empty(), "a skipped check sends nothing");
    assert_eq!(fixture.requests(), 0);

    let guarded = Fixture::with_fault(Some(TOKEN), Fault::None).await;
    let report = run(
        target(guarded.url(), Some(TOKEN)),
        RunOptions::default(),
        &[scenario],
    )
    .await;
    let check = &report.checks[0];
    assert_eq!(check.status, CheckStatus::Pass, "{:?}", check.findings);
    let attempt = &check.steps[0].attempts[0];
    assert_eq!(attempt.token, TokenMode::Right);
    assert_eq!(attempt.token_param.as_deref(), Some("token"));
}

#[tokio::test]
async fn record_says_no_token_was_sent() {
    let fixture = Fixture::with_fault(None, Fault::None).await;
    let report = run(
        target(fixture.url(), None),
        RunOptions::default(),
        &[scenario_named("content-type-charset")],
    )
    .await;
    let attempt = &report.checks[0].steps[0].attempts[0];
    assert_eq!(attempt.token, TokenMode::Missing);
    assert_eq!(attempt.token_param, None);
    let json = mewshook::report::json::render(&report).unwrap();
    assert!(json.contains("\"token\": \"missing\""), "{json}");
    assert!(!json.contains("\"token\": \"right\""), "{json}");
}

#[tokio::test]
async fn token_without_letters_skips_case_step() {
    let fixture = Fixture::with_fault(Some("1234567"), Fault::None).await;
    let report = run(
        target(fixture.url(), Some("1234567")),
        RunOptions::default(),
        &[scenario_named("wrong-token")],
    )
    .await;
    let check = &report.checks[0];
    assert_eq!(check.status, CheckStatus::Pass, "{:?}", check.findings);
    let skipped: Vec<&str> = check
        .steps
        .iter()
        .filter(|step| step.skip_reason.is_some())
        .map(|step| step.name.as_str())
        .collect();
    assert_eq!(
        skipped,
        ["General Webhook with the token's letter case swapped"]
    );
    let text = mewshook::report::terminal::check_block(check, 20);
    assert!(text.contains("skipped: the token has no letters"), "{text}");
}

#[tokio::test]
async fn derived_tokens_are_sent_and_redacted() {
    let fixture = Fixture::with_fault(Some(TOKEN), Fault::TokenPrefix).await;
    let report = run(
        target(fixture.url(), Some(TOKEN)),
        RunOptions::default(),
        &[scenario_named("wrong-token")],
    )
    .await;
    let check = &report.checks[0];
    let sent: Vec<TokenMode> = check
        .steps
        .iter()
        .flat_map(|step| step.attempts.iter().map(|attempt| attempt.token))
        .collect();
    assert_eq!(
        sent,
        [
            TokenMode::Wrong,
            TokenMode::Wrong,
            TokenMode::Empty,
            TokenMode::Prefix,
            TokenMode::Extended,
            TokenMode::Altered,
            TokenMode::SwappedCase
        ]
    );
    let failing: Vec<&str> = check
        .findings
        .iter()
        .map(|finding| finding.step.as_str())
        .collect();
    assert_eq!(
        failing,
        [
            "General Webhook with an empty token",
            "General Webhook with the token's last character missing"
        ]
    );
    let json = mewshook::report::json::render(&report).unwrap();
    assert!(!json.contains("s3cr"), "{json}");
}
