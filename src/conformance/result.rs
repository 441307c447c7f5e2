//! The record of a run: every check, step and attempt, serialized as the
//! JSON report and rendered by [`crate::report`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::delivery::{Outcome, RedirectHop, duration_ms, duration_ms_option};
use crate::payload::WebhookKind;
use crate::scenario::{Severity, TokenMode};

/// The result of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Every expectation was met.
    Pass,
    /// An expectation of severity `fail` was missed.
    Fail,
    /// Only expectations of severity `warn` were missed.
    Warn,
    /// The check did not run; `skip_reason` gives the reason.
    Skip,
}

impl CheckStatus {
    /// Returns the upper-case word printed at the start of a check's line.
    pub fn label(self) -> &'static str {
        match self {
            CheckStatus::Pass => "PASS",
            CheckStatus::Fail => "FAIL",
            CheckStatus::Warn => "WARN",
            CheckStatus::Skip => "SKIP",
        }
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    /// The receiver the messages were sent to.
    pub target: TargetSummary,
    /// The attempt deadline.
    #[serde(rename = "deadline_ms", with = "duration_ms")]
    pub deadline: Duration,
    /// The seed of generated ids and mixes.
    pub seed: u64,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// Wall time of the whole run.
    #[serde(rename = "elapsed_ms", with = "duration_ms")]
    pub elapsed: Duration,
    /// The totals per status.
    pub summary: StatusCounts,
    /// Whether the run was stopped, for example by Ctrl-C, before every
    /// check finished; `checks` then holds only the finished ones.
    pub interrupted: bool,
    /// Whether the receiver answered 401 or 403 to every request that
    /// carried the run's token, or would have carried it had it been
    /// known: the token is then probably wrong or missing.
    pub token_rejected: bool,
    /// Every check, in run order.
    pub checks: Vec<CheckReport>,
}

impl SuiteReport {
    /// Returns whether the run passes: no check failed and the run was not
    /// interrupted. Warnings and skips pass.
    pub fn passed(&self) -> bool {
        self.summary.failed == 0 && !self.interrupted
    }
}

/// The target as reports show it, with the token replaced.
#[derive(Debug, Clone, Serialize)]
pub struct TargetSummary {
    /// The General Webhook URL as the receiver receives it, token redacted.
    pub general_url: String,
    /// The Integration Webhook URL as the receiver receives it, token
    /// redacted.
    pub integration_url: String,
    /// Whether the target is the reference receiver started by mewshook.
    pub embedded_receiver: bool,
    /// Whether the receiver's token is known, which the token checks need.
    pub token_known: bool,
}

/// The number of checks with each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatusCounts {
    /// Checks run or skipped.
    pub checks: usize,
    /// Checks that passed.
    pub passed: usize,
    /// Checks that failed.
    pub failed: usize,
    /// Checks that passed with a warning.
    pub warned: usize,
    /// Checks that were skipped.
    pub skipped: usize,
}

impl StatusCounts {
    /// Counts the statuses of `checks`.
    pub fn of(checks: &[CheckReport]) -> StatusCounts {
        let mut counts = StatusCounts {
            checks: checks.len(),
            ..StatusCounts::default()
        };
        for check in checks {
            match check.status {
                CheckStatus::Pass => counts.passed += 1,
                CheckStatus::Fail => counts.failed += 1,
                CheckStatus::Warn => counts.warned += 1,
                CheckStatus::Skip => counts.skipped += 1,
            }
        }
        counts
    }
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The check name.
    pub name: String,
    /// The one-line summary.
    pub summary: String,
    /// The scenario file.
    pub file: String,
    /// The highest severity of the check's expectations.
    pub severity: Severity,
    /// The result.
    pub status: CheckStatus,
    /// Wall time of the check.
    #[serde(rename = "elapsed_ms", with = "duration_ms")]
    pub elapsed: Duration,
    /// The reason the check was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    /// Every missed expectation.
    pub findings: Vec<Finding>,
    /// How to fix a failure, from the scenario.
    pub fix: String,
    /// Every step that ran, with its attempts.
    pub steps: Vec<StepReport>,
}

/// One missed expectation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The step it belongs to.
    pub step: String,
    /// Whether it fails the check or warns.
    pub severity: Severity,
    /// The expectation and what happened instead.
    pub message: String,
}

/// One step's messages and attempts.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// The step's label.
    pub name: String,
    /// Distinct messages built, before repetition.
    pub messages: usize,
    /// The reason the step sent nothing, when the target cannot show what
    /// it checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    /// Every attempt, in the order they were started.
    pub attempts: Vec<AttemptReport>,
    /// Latency over all attempts, when there was at least one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyStats>,
}

impl StepReport {
    /// Records a step that was skipped for `reason`.
    pub fn skipped(name: &str, reason: String) -> StepReport {
        StepReport {
            name: name.to_string(),
            messages: 0,
            skip_reason: Some(reason),
            attempts: Vec::new(),
            latency: None,
        }
    }
}

/// One attempt as judged.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptReport {
    /// The attempt's place in the step's send order, from 1.
    pub send: usize,
    /// The number of the message it carried, from 1, in the order messages
    /// were built.
    pub message: usize,
    /// The copy number of the message, from 1; above 1 only with `repeat`.
    pub copy: usize,
    /// General or Integration. Serialized as `webhook`, because a failed
    /// connection's outcome has a `kind` field of its own.
    #[serde(rename = "webhook")]
    pub kind: WebhookKind,
    /// A short description of the message, for example
    /// `1 General event, PaymentUpdated`.
    pub label: String,
    /// General events carried; 1 for an Integration Webhook.
    pub events: usize,
    /// The token the attempt sent: `missing` when it sent no token
    /// parameter, also for a step that asked for the right token when none
    /// was known.
    pub token: TokenMode,
    /// The query parameter that carried the token; absent when none was
    /// sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_param: Option<String>,
    /// The outcome, with the status when a response arrived.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Time from the start of the attempt to its end.
    #[serde(rename = "latency_ms", with = "duration_ms")]
    pub latency: Duration,
    /// Time to the final response headers.
    #[serde(rename = "headers_after_ms", with = "duration_ms_option")]
    pub headers_after: Option<Duration>,
    /// The 307/308 hops followed.
    pub redirects: Vec<RedirectHop>,
    /// The start of the response body, redacted.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub response_excerpt: String,
}

/// Latency percentiles of a step, nearest-rank.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyStats {
    /// Attempts measured.
    pub count: usize,
    /// Median.
    #[serde(rename = "p50_ms", with = "duration_ms")]
    pub p50: Duration,
    /// 95th percentile.
    #[serde(rename = "p95_ms", with = "duration_ms")]
    pub p95: Duration,
    /// Slowest.
    #[serde(rename = "max_ms", with = "duration_ms")]
    pub max: Duration,
}

impl LatencyStats {
    /// Summarizes `latencies`; `None` when there are none.
    pub fn of(latencies: &[Duration]) -> Option<LatencyStats> {
        let mut sorted = latencies.to_vec();
        sorted.sort();
        Some(LatencyStats {
            count: sorted.len(),
            p50: percentile(&sorted, 50.0)?,
            p95: percentile(&sorted, 95.0)?,
            max: *sorted.last()?,
        })
    }
}

/// Returns the nearest-rank percentile of sorted values: the smallest
/// value with at least `percentile` percent of the values at or below it.
pub fn percentile(sorted: &[Duration], percentile: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (percentile / 100.0 * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    Some(sorted[index])
}

/// Formats a latency for people: `0.4 ms`, `12 ms`, `1.25 s`, `5 s`.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_secs_f64() * 1000.0;
    if millis < 10.0 {
        format!("{millis:.1} ms")
    } else if millis < 1000.0 {
        format!("{millis:.0} ms")
    } else if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{:.2} s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|v| Duration::from_millis(*v)).collect()
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let sorted = ms(&(1..=20).collect::<Vec<u64>>());
        assert_eq!(percentile(&sorted, 95.0), Some(Duration::from_millis(19)));
        assert_eq!(percentile(&sorted, 50.0), Some(Duration::from_millis(10)));
        assert_eq!(percentile(&sorted, 100.0), Some(Duration::from_millis(20)));
        assert_eq!(percentile(&sorted, 0.1), Some(Duration::from_millis(1)));
        assert_eq!(percentile(&[], 95.0), None);
    }

    #[test]
    fn stats_sort_their_input() {
        let stats = LatencyStats::of(&ms(&[30, 10, 20])).unwrap();
        assert_eq!(stats.count, 3);
        assert_eq!(stats.p50, Duration::from_millis(20));
        assert_eq!(stats.max, Duration::from_millis(30));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(Duration::from_micros(400)), "0.4 ms");
        assert_eq!(format_duration(Duration::from_millis(12)), "12 ms");
        assert_eq!(format_duration(Duration::from_millis(1250)), "1.25 s");
        assert_eq!(format_duration(Duration::from_secs(5)), "5 s");
    }
}
