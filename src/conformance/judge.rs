//! Judging a step's attempts against its expectations.
//!
//! Each attempt is judged on its own: its outcome and status, its
//! redirects and its latency. Attempts with the same problem are reported
//! as one finding with a count and the first message concerned, so a burst
//! of 20 identical rejections reads as one line. Percentile limits are
//! judged over all of the step's attempts.

use std::time::Duration;

use super::result::{AttemptReport, Finding, format_duration, percentile};
use crate::delivery::{Outcome, TimeoutPhase};
use crate::scenario::{Expectation, ExpectedOutcome, LatencyLimit, Step};

/// Returns the findings for `attempts`, the attempts of `step`, under a
/// run whose deadline is `deadline`.
pub(super) fn judge_step(
    step: &Step,
    attempts: &[AttemptReport],
    deadline: Duration,
) -> Vec<Finding> {
    let expect = &step.expect;
    let mut problems: Vec<(String, Vec<&AttemptReport>)> = Vec::new();
    for attempt in attempts {
        for problem in attempt_problems(expect, attempt, deadline) {
            match problems.iter_mut().find(|(text, _)| *text == problem) {
                Some((_, list)) => list.push(attempt),
                None => problems.push((problem, vec![attempt])),
            }
        }
    }

    let total = attempts.len();
    let finding = |message: String| Finding {
        step: step.name.clone(),
        severity: expect.severity,
        message,
    };
    let mut findings: Vec<Finding> = problems
        .into_iter()
        .map(|(problem, list)| finding(with_where(&problem, &list, total)))
        .collect();

    if let Some(message) = slow_responses(expect, attempts, deadline) {
        findings.push(finding(message));
    }
    if let Some(message) = slow_percentile(expect, attempts, deadline) {
        findings.push(Finding {
            severity: expect
                .latency_percentile
                .map_or(expect.severity, |limit| limit.severity),
            ..finding(message)
        });
    }
    findings
}

/// Lists the problems of one attempt, apart from its latency.
fn attempt_problems(
    expect: &Expectation,
    attempt: &AttemptReport,
    deadline: Duration,
) -> Vec<String> {
    let mut problems = Vec::new();
    let wanted = expected_words(expect);
    let after = redirect_chain(attempt);
    match (&attempt.outcome, expect.outcome) {
        (Outcome::Delivered { status }, ExpectedOutcome::Accepted)
        | (Outcome::Rejected { status }, ExpectedOutcome::Rejected) => {
            if let Some(set) = &expect.status
                && !set.contains(*status)
            {
                problems.push(format!(
                    "expected {wanted}, but responded with {status}{after}"
                ));
            }
        }
        (Outcome::Delivered { status }, ExpectedOutcome::Rejected) => {
            problems.push(format!(
                "expected {wanted}, but accepted with {status}{after}"
            ));
        }
        (Outcome::TimedOut { phase }, _) => {
            let deadline = format_duration(deadline);
            let what = match phase {
                TimeoutPhase::Headers => format!("no response within {deadline}"),
                TimeoutPhase::Body => {
                    format!("the response body was not complete within {deadline}")
                }
            };
            problems.push(format!("expected {wanted}, but {what}{after}"));
        }
        (outcome, _) => {
            problems.push(format!(
                "expected {wanted}, but {}{after}",
                outcome.describe()
            ));
        }
    }

    if !expect.allow_redirects && !attempt.redirects.is_empty() {
        let chain: Vec<String> = attempt
            .redirects
            .iter()
            .map(|hop| format!("{} to {}", hop.status, hop.location))
            .collect();
        problems.push(format!(
            "expected a response without a redirect, but redirected {}",
            chain.join(", then ")
        ));
    }
    problems
}

/// Describes the redirects an attempt followed before its outcome, such as
/// ` after 307 → http://127.0.0.1:8080/final`, or nothing without any. The
/// locations are redacted where they are recorded.
fn redirect_chain(attempt: &AttemptReport) -> String {
    if attempt.redirects.is_empty() {
        return String::new();
    }
    let hops: Vec<String> = attempt
        .redirects
        .iter()
        .map(|hop| format!("{} → {}", hop.status, hop.location))
        .collect();
    format!(" after {}", hops.join(", "))
}

/// Describes the expected response: `2xx`, `401 or 403`, `a 4xx or 5xx
/// rejection`.
fn expected_words(expect: &Expectation) -> String {
    match (&expect.status, expect.outcome) {
        (Some(set), _) => set.to_string(),
        (None, ExpectedOutcome::Accepted) => "2xx".to_string(),
        (None, ExpectedOutcome::Rejected) => "a 4xx or 5xx rejection".to_string(),
    }
}

/// Appends which messages a problem concerns.
fn with_where(problem: &str, attempts: &[&AttemptReport], total: usize) -> String {
    let Some(first) = attempts.first() else {
        return problem.to_string();
    };
    let copy = if first.copy > 1 {
        format!(", copy {}", first.copy)
    } else {
        String::new()
    };
    if attempts.len() == 1 {
        format!(
            "{problem} (send {} of {total}: {}{copy})",
            first.send, first.label
        )
    } else {
        format!(
            "{problem} ({} of {total} sends; first: send {}, {}{copy})",
            attempts.len(),
            first.send,
            first.label
        )
    }
}

/// Reports responses that took longer than `max_latency`. Attempts without
/// a response are already findings of their own.
fn slow_responses(
    expect: &Expectation,
    attempts: &[AttemptReport],
    deadline: Duration,
) -> Option<String> {
    let limit = expect.max_latency.resolve(deadline);
    let slow: Vec<&AttemptReport> = attempts
        .iter()
        .filter(|attempt| attempt.outcome.status().is_some() && attempt.latency > limit)
        .collect();
    let slowest = slow.iter().map(|attempt| attempt.latency).max()?;
    Some(format!(
        "{} of {} responses took longer than {} (slowest {})",
        slow.len(),
        attempts.len(),
        describe_limit(expect.max_latency, deadline),
        format_duration(slowest)
    ))
}

/// Reports a latency percentile of the step that is over its limit.
fn slow_percentile(
    expect: &Expectation,
    attempts: &[AttemptReport],
    deadline: Duration,
) -> Option<String> {
    let limit = expect.latency_percentile?;
    let mut latencies: Vec<Duration> = attempts.iter().map(|attempt| attempt.latency).collect();
    latencies.sort();
    let value = percentile(&latencies, limit.percentile)?;
    if value <= limit.max.resolve(deadline) {
        return None;
    }
    Some(format!(
        "{} latency {} is above {} over {} attempts",
        percentile_name(limit.percentile),
        format_duration(value),
        describe_limit(limit.max, deadline),
        latencies.len()
    ))
}

/// `p95`, or `p99.9` for a fractional percentile.
fn percentile_name(percentile: f64) -> String {
    if percentile.fract() == 0.0 {
        format!("p{percentile:.0}")
    } else {
        format!("p{percentile}")
    }
}

/// `2 s`, or `2.50 s (50% of the 5 s deadline)`.
fn describe_limit(limit: LatencyLimit, deadline: Duration) -> String {
    let resolved = format_duration(limit.resolve(deadline));
    match limit {
        LatencyLimit::Absolute(_) => resolved,
        LatencyLimit::DeadlineShare(100.0) => {
            format!("the {resolved} deadline")
        }
        LatencyLimit::DeadlineShare(share) => format!(
            "{resolved} ({share}% of the {} deadline)",
            format_duration(deadline)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::{ConnectionErrorKind, RedirectHop};
    use crate::payload::WebhookKind;
    use crate::scenario::{MessageSource, Order, PercentileLimit, Severity, StatusSet, TokenMode};

    fn step(expect: Expectation) -> Step {
        Step {
            name: "probe".to_string(),
            source: MessageSource::Realistic(1),
            enterprises: 1,
            enterprise_id: None,
            integration_id: None,
            token: TokenMode::Right,
            token_param: None,
            content_type: None,
            batch_cap: 500,
            repeat: 1,
            concurrency: 1,
            order: Order::AsGenerated,
            seed: None,
            expect,
        }
    }

    fn accepted() -> Expectation {
        Expectation {
            outcome: ExpectedOutcome::Accepted,
            status: None,
            max_latency: LatencyLimit::DeadlineShare(100.0),
            allow_redirects: true,
            severity: Severity::Fail,
            latency_percentile: None,
        }
    }

    fn rejected_with(codes: &[u16]) -> Expectation {
        Expectation {
            outcome: ExpectedOutcome::Rejected,
            status: Some(StatusSet::Codes(codes.to_vec())),
            ..accepted()
        }
    }

    fn attempt(send: usize, outcome: Outcome, millis: u64) -> AttemptReport {
        AttemptReport {
            send,
            message: send,
            copy: 1,
            kind: WebhookKind::General,
            label: "1 General event, PaymentUpdated".to_string(),
            events: 1,
            token: TokenMode::Right,
            token_param: Some("Token".to_string()),
            outcome,
            latency: Duration::from_millis(millis),
            headers_after: Some(Duration::from_millis(millis)),
            redirects: Vec::new(),
            response_excerpt: String::new(),
        }
    }

    fn judge(expect: Expectation, attempts: &[AttemptReport]) -> Vec<String> {
        judge_step(&step(expect), attempts, Duration::from_secs(5))
            .into_iter()
            .map(|finding| finding.message)
            .collect()
    }

    #[test]
    fn accepted_response_passes() {
        let attempts = [attempt(1, Outcome::Delivered { status: 202 }, 3)];
        assert!(judge(accepted(), &attempts).is_empty());
    }

    #[test]
    fn rejection_of_accepted_message_is_named() {
        let attempts = [
            attempt(1, Outcome::Delivered { status: 202 }, 3),
            attempt(2, Outcome::Rejected { status: 400 }, 3),
        ];
        assert_eq!(
            judge(accepted(), &attempts),
            vec![
                "expected 2xx, but rejected with 400 (send 2 of 2: 1 General event, PaymentUpdated)"
            ]
        );
    }

    #[test]
    fn identical_problems_are_grouped() {
        let attempts: Vec<AttemptReport> = (1..=4)
            .map(|send| attempt(send, Outcome::Rejected { status: 503 }, 3))
            .collect();
        assert_eq!(
            judge(accepted(), &attempts),
            vec![
                "expected 2xx, but rejected with 503 (4 of 4 sends; first: send 1, 1 General event, PaymentUpdated)"
            ]
        );
    }

    #[test]
    fn accepted_without_token_fails_rejection() {
        let attempts = [attempt(1, Outcome::Delivered { status: 200 }, 3)];
        let findings = judge(rejected_with(&[401, 403]), &attempts);
        assert_eq!(findings.len(), 1);
        assert!(
            findings[0].starts_with("expected 401 or 403, but accepted with 200"),
            "{findings:?}"
        );
    }

    #[test]
    fn wrong_rejection_status_is_named() {
        let attempts = [attempt(1, Outcome::Rejected { status: 400 }, 3)];
        let findings = judge(rejected_with(&[401, 403]), &attempts);
        assert!(
            findings[0].starts_with("expected 401 or 403, but responded with 400"),
            "{findings:?}"
        );
        let attempts = [attempt(1, Outcome::Rejected { status: 403 }, 3)];
        assert!(judge(rejected_with(&[401, 403]), &attempts).is_empty());
    }

    #[test]
    fn timeout_and_connection_failure_fail_both_outcomes() {
        let timeout = Outcome::TimedOut {
            phase: TimeoutPhase::Headers,
        };
        let reset = Outcome::ConnectionFailed {
            kind: ConnectionErrorKind::Reset,
            detail: "closed".to_string(),
        };
        for expect in [accepted(), rejected_with(&[401])] {
            let findings = judge(
                expect,
                &[
                    attempt(1, timeout.clone(), 5000),
                    attempt(2, reset.clone(), 1),
                ],
            );
            assert_eq!(findings.len(), 2, "{findings:?}");
            assert!(
                findings[0].contains(", but no response within 5 s (send 1"),
                "{findings:?}"
            );
            assert!(findings[1].contains(", but connection reset: closed"));
        }
    }

    #[test]
    fn non_preserving_redirect_is_explained() {
        let outcome = Outcome::RedirectNotFollowed {
            status: 302,
            reason: "302 would turn the POST into a GET".to_string(),
        };
        let findings = judge(accepted(), &[attempt(1, outcome, 2)]);
        assert!(
            findings[0].starts_with(
                "expected 2xx, but redirect 302 not followed: 302 would turn the POST into a GET"
            ),
            "{findings:?}"
        );
    }

    #[test]
    fn forbidden_redirect_lists_chain() {
        let mut followed = attempt(1, Outcome::Delivered { status: 202 }, 2);
        followed.redirects.push(RedirectHop {
            status: 307,
            location: "http://127.0.0.1:9/redirected".to_string(),
        });
        assert!(judge(accepted(), std::slice::from_ref(&followed)).is_empty());

        let expect = Expectation {
            allow_redirects: false,
            ..accepted()
        };
        let findings = judge(expect, &[followed]);
        assert!(
            findings[0].starts_with("expected a response without a redirect, but redirected 307 to http://127.0.0.1:9/redirected"),
            "{findings:?}"
        );
    }

    #[test]
    fn failure_after_redirect_names_chain() {
        let mut rejected = attempt(1, Outcome::Rejected { status: 401 }, 2);
        for (status, path) in [(307, "moved"), (308, "final")] {
            rejected.redirects.push(RedirectHop {
                status,
                location: format!("http://127.0.0.1:9/{path}?Token=<redacted>"),
            });
        }
        assert_eq!(
            judge(accepted(), &[rejected]),
            vec![
                "expected 2xx, but rejected with 401 after 307 → \
                 http://127.0.0.1:9/moved?Token=<redacted>, 308 → \
                 http://127.0.0.1:9/final?Token=<redacted> (send 1 of 1: 1 General event, \
                 PaymentUpdated)"
            ]
        );
    }

    #[test]
    fn slow_responses_are_counted() {
        let expect = Expectation {
            max_latency: LatencyLimit::Absolute(Duration::from_millis(100)),
            ..accepted()
        };
        let attempts = [
            attempt(1, Outcome::Delivered { status: 202 }, 50),
            attempt(2, Outcome::Delivered { status: 202 }, 150),
            attempt(3, Outcome::Delivered { status: 202 }, 120),
        ];
        assert_eq!(
            judge(expect, &attempts),
            vec!["2 of 3 responses took longer than 100 ms (slowest 150 ms)"]
        );
    }

    #[test]
    fn percentile_over_share_of_deadline_warns() {
        let expect = Expectation {
            latency_percentile: Some(PercentileLimit {
                percentile: 95.0,
                max: LatencyLimit::DeadlineShare(50.0),
                severity: Severity::Warn,
            }),
            ..accepted()
        };
        let mut attempts: Vec<AttemptReport> = (1..=19)
            .map(|send| attempt(send, Outcome::Delivered { status: 202 }, 100))
            .collect();
        attempts.push(attempt(20, Outcome::Delivered { status: 202 }, 3000));
        assert!(
            judge(expect.clone(), &attempts).is_empty(),
            "one slow response of 20 is p100, not p95"
        );

        attempts[0].latency = Duration::from_millis(2600);
        let findings = judge_step(&step(expect), &attempts, Duration::from_secs(5));
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].severity, Severity::Warn);
        assert_eq!(
            findings[0].message,
            "p95 latency 2.60 s is above 2.50 s (50% of the 5 s deadline) over 20 attempts"
        );
    }

    #[test]
    fn percentile_severity_leaves_rejections_failing() {
        let expect = Expectation {
            latency_percentile: Some(PercentileLimit {
                percentile: 95.0,
                max: LatencyLimit::DeadlineShare(50.0),
                severity: Severity::Warn,
            }),
            ..accepted()
        };
        let attempts = [attempt(1, Outcome::Rejected { status: 503 }, 3000)];
        let findings = judge_step(&step(expect), &attempts, Duration::from_secs(5));
        let severities: Vec<Severity> = findings.iter().map(|finding| finding.severity).collect();
        assert_eq!(severities, [Severity::Fail, Severity::Warn], "{findings:?}");
    }
}
