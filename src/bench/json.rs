//! The JSON document of `bench --json`, schema `mewshook.bench.v1`.
//!
//! docs/bench.md documents every field. Latency histograms are included
//! whole: HDR histograms of microseconds in HdrHistogram's V2 compressed
//! format (deflate), then base64 with the standard alphabet and padding.
//! [`decode_histogram`] reads them back.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::Serialize;

use super::report::{BenchReport, BenchSettings};
use super::stats::{CONNECTION_ERROR_KINDS, TimelinePoint};
use super::thresholds::ThresholdOutcome;
use crate::delivery::ConnectionErrorKind;

/// The schema name written in every document.
pub const BENCH_SCHEMA: &str = "mewshook.bench.v1";

/// Encodes a histogram as V2 deflate, then base64.
pub fn encode_histogram(histogram: &Histogram<u64>) -> Result<String, String> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(histogram, &mut bytes)
        .map_err(|error| format!("failed to serialize a histogram: {error:?}"))?;
    Ok(STANDARD.encode(bytes))
}

/// Decodes a histogram written by [`encode_histogram`].
pub fn decode_histogram(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|error| format!("the histogram is not valid base64: {error}"))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|error| format!("the histogram is not a V2 HDR histogram: {error:?}"))
}

/// The whole document.
#[derive(Debug, Serialize)]
pub struct BenchDocument<'a> {
    /// Always [`BENCH_SCHEMA`].
    pub schema: &'static str,
    /// The settings of the run.
    pub settings: &'a BenchSettings,
    /// When the load started, RFC 3339 in UTC.
    pub started_at: String,
    /// Whether the run was stopped early.
    pub interrupted: bool,
    /// The measurement window in milliseconds.
    pub window_ms: f64,
    /// Request counts.
    pub requests: RequestsSection,
    /// Achieved and target rate.
    pub rate: RateSection,
    /// Responses the Mews deadline would have rejected.
    pub deadline_breaches: BreachesSection,
    /// Responses per status code.
    pub statuses: BTreeMap<String, u64>,
    /// Timeouts per phase.
    pub timeouts: TimeoutsSection,
    /// Connection errors per kind.
    pub connection_errors: BTreeMap<&'static str, u64>,
    /// Up to ten distinct connection error texts.
    pub error_examples: Vec<ErrorExampleEntry>,
    /// Latency figures and histograms.
    pub latency: LatencySection,
    /// Open-loop schedule figures; null in closed loop.
    pub schedule: Option<ScheduleSection>,
    /// The time series.
    pub timeline: TimelineSection,
    /// `--fail-if` outcomes, in the order given.
    pub thresholds: &'a [ThresholdOutcome],
}

/// Request counts.
#[derive(Debug, Serialize)]
pub struct RequestsSection {
    /// Requests counted (warmup excluded).
    pub counted: u64,
    /// Of those, with a 2xx response.
    pub succeeded: u64,
    /// Of those, without a 2xx response: other statuses, timeouts and
    /// connection errors.
    pub errors: u64,
    /// `errors / counted`, from 0 to 1; null when nothing was counted.
    pub error_rate: Option<f64>,
    /// Requests sent during the warmup and not counted.
    pub warmup: u64,
}

/// Achieved and target rate.
#[derive(Debug, Serialize)]
pub struct RateSection {
    /// Counted requests per second over the window.
    pub achieved: f64,
    /// The open-loop rate asked for; null in closed loop.
    pub target: Option<f64>,
}

/// Deadline breaches.
#[derive(Debug, Serialize)]
pub struct BreachesSection {
    /// `late_responses + timeouts`.
    pub total: u64,
    /// Responses that took longer than the deadline.
    pub late_responses: u64,
    /// Requests given up at `--timeout`.
    pub timeouts: u64,
    /// The deadline, in milliseconds.
    pub deadline_ms: f64,
}

/// Timeouts per phase.
#[derive(Debug, Serialize)]
pub struct TimeoutsSection {
    /// Before the response headers, connecting included.
    pub headers: u64,
    /// While reading the response body.
    pub body: u64,
}

/// One distinct connection error text.
#[derive(Debug, Serialize)]
pub struct ErrorExampleEntry {
    /// The kind, as in `connection_errors`.
    pub kind: &'static str,
    /// The error text, redacted.
    pub detail: String,
    /// How many requests failed with it.
    pub count: u64,
}

/// Latency figures.
#[derive(Debug, Serialize)]
pub struct LatencySection {
    /// `corrected` in open loop, `service` in closed loop: the latency
    /// thresholds and the time series use.
    pub headline: &'static str,
    /// From the moment each request left to its response.
    pub service: LatencySummary,
    /// From each request's intended send time to its response; null in
    /// closed loop.
    pub corrected: Option<LatencySummary>,
}

/// The summary of one histogram, in milliseconds, and the histogram
/// itself.
#[derive(Debug, Serialize)]
pub struct LatencySummary {
    /// Values recorded.
    pub count: u64,
    /// The smallest value; null when empty.
    pub min_ms: Option<f64>,
    /// The mean; null when empty.
    pub mean_ms: Option<f64>,
    /// The standard deviation; null when empty.
    pub stdev_ms: Option<f64>,
    /// The median; null when empty.
    pub p50_ms: Option<f64>,
    /// The 90th percentile; null when empty.
    pub p90_ms: Option<f64>,
    /// The 99th percentile; null when empty.
    pub p99_ms: Option<f64>,
    /// The 99.9th percentile; null when empty.
    pub p99_9_ms: Option<f64>,
    /// The 99.99th percentile; null when empty.
    pub p99_99_ms: Option<f64>,
    /// The largest value; null when empty.
    pub max_ms: Option<f64>,
    /// The histogram of microseconds, V2 deflate then base64.
    pub histogram: String,
}

impl LatencySummary {
    /// Summarizes `histogram`.
    pub fn of(histogram: &Histogram<u64>) -> Result<LatencySummary, String> {
        let empty = histogram.is_empty();
        let value = |micros: f64| (!empty).then_some(micros / 1000.0);
        let at = |quantile: f64| value(histogram.value_at_quantile(quantile) as f64);
        Ok(LatencySummary {
            count: histogram.len(),
            min_ms: value(histogram.min() as f64),
            mean_ms: value(histogram.mean()),
            stdev_ms: value(histogram.stdev()),
            p50_ms: at(0.5),
            p90_ms: at(0.9),
            p99_ms: at(0.99),
            p99_9_ms: at(0.999),
            p99_99_ms: at(0.9999),
            max_ms: value(histogram.max() as f64),
            histogram: encode_histogram(histogram)?,
        })
    }
}

/// Open-loop schedule figures.
#[derive(Debug, Serialize)]
pub struct ScheduleSection {
    /// The tolerance after which a send is late, in milliseconds.
    pub late_after_ms: f64,
    /// Measured sends the schedule called for: sent plus unsent.
    pub scheduled: u64,
    /// Sends that left more than `late_after_ms` after their intended
    /// time.
    pub late_sends: u64,
    /// Of those, the ones that were already late when a worker took them,
    /// because every connection was busy.
    pub late_waiting_for_connection: u64,
    /// Of those, the ones a worker took in time but sent late: the load
    /// generator itself was behind (timer or CPU).
    pub late_in_generator: u64,
    /// Sends that never went out because the window ended first.
    pub unsent: u64,
    /// From intended send time to real send time, all measured sends.
    pub lag: LatencySummary,
}

/// The time series.
#[derive(Debug, Serialize)]
pub struct TimelineSection {
    /// The bucket length; grows from 1000 when a long run is downsampled.
    pub bucket_ms: f64,
    /// The buckets, oldest first.
    pub points: Vec<TimelineEntry>,
}

/// One bucket of the time series.
#[derive(Debug, Serialize)]
pub struct TimelineEntry {
    /// The bucket's start, from the start of measurement.
    pub start_ms: f64,
    /// The bucket's length; the last one may be shorter or longer.
    pub length_ms: f64,
    /// Requests that finished in the bucket.
    pub requests: u64,
    /// Of those, without a 2xx response.
    pub errors: u64,
    /// `requests` per second.
    pub rate: f64,
    /// The headline median in the bucket; null without latency.
    pub p50_ms: Option<f64>,
    /// The headline 99th percentile in the bucket; null without latency.
    pub p99_ms: Option<f64>,
    /// The headline maximum in the bucket; null without latency.
    pub max_ms: Option<f64>,
}

impl TimelineEntry {
    fn of(point: &TimelinePoint) -> TimelineEntry {
        let ms = |micros: Option<u64>| micros.map(|value| value as f64 / 1000.0);
        TimelineEntry {
            start_ms: point.start.as_secs_f64() * 1000.0,
            length_ms: point.length.as_secs_f64() * 1000.0,
            requests: point.requests,
            errors: point.errors,
            rate: point.rate(),
            p50_ms: ms(point.p50_micros),
            p99_ms: ms(point.p99_micros),
            max_ms: ms(point.max_micros),
        }
    }
}

/// Returns the name of a connection error kind in the document.
pub fn kind_name(kind: ConnectionErrorKind) -> &'static str {
    match kind {
        ConnectionErrorKind::Refused => "refused",
        ConnectionErrorKind::Reset => "reset",
        ConnectionErrorKind::Dns => "dns",
        ConnectionErrorKind::Tls => "tls",
        ConnectionErrorKind::Other => "other",
    }
}

impl<'a> BenchDocument<'a> {
    /// Builds the document of `report`.
    pub fn new(report: &'a BenchReport) -> Result<BenchDocument<'a>, String> {
        let result = &report.result;
        let measurements = &result.measurements;
        let counts = &measurements.counts;
        let open = report.open_loop();

        let schedule = match report.settings.late_after_ms {
            Some(late_after_ms) => Some(ScheduleSection {
                late_after_ms,
                scheduled: report.scheduled(),
                late_sends: counts.late_sends,
                late_waiting_for_connection: counts.late_sends_busy,
                late_in_generator: counts.late_sends - counts.late_sends_busy,
                unsent: result.unsent,
                lag: LatencySummary::of(&measurements.lag)?,
            }),
            None => None,
        };
        let timeline = &measurements.timeline;

        Ok(BenchDocument {
            schema: BENCH_SCHEMA,
            settings: &report.settings,
            started_at: report
                .started_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            interrupted: result.interrupted,
            window_ms: result.window.as_secs_f64() * 1000.0,
            requests: RequestsSection {
                counted: counts.requests,
                succeeded: counts.succeeded,
                errors: counts.errors(),
                error_rate: report.error_rate(),
                warmup: result.warmup_requests,
            },
            rate: RateSection {
                achieved: report.achieved_rate(),
                target: report.settings.target_rate,
            },
            deadline_breaches: BreachesSection {
                total: counts.breaches(),
                late_responses: counts.late_responses,
                timeouts: counts.timeouts(),
                deadline_ms: report.settings.deadline_ms,
            },
            statuses: counts
                .status_counts()
                .into_iter()
                .map(|(status, count)| (status.to_string(), count))
                .collect(),
            timeouts: TimeoutsSection {
                headers: counts.timeouts_headers,
                body: counts.timeouts_body,
            },
            connection_errors: CONNECTION_ERROR_KINDS
                .iter()
                .map(|kind| (kind_name(*kind), counts.connection_errors_of(*kind)))
                .collect(),
            error_examples: measurements
                .examples
                .iter()
                .map(|example| ErrorExampleEntry {
                    kind: kind_name(example.kind),
                    detail: example.detail.clone(),
                    count: example.count,
                })
                .collect(),
            latency: LatencySection {
                headline: if open { "corrected" } else { "service" },
                service: LatencySummary::of(&measurements.service)?,
                corrected: if open {
                    Some(LatencySummary::of(&measurements.corrected)?)
                } else {
                    None
                },
            },
            schedule,
            timeline: TimelineSection {
                bucket_ms: timeline.bucket().as_secs_f64() * 1000.0,
                points: timeline.points().iter().map(TimelineEntry::of).collect(),
            },
            thresholds: &report.thresholds,
        })
    }
}

/// Renders the document of `report` as pretty-printed JSON.
pub fn render(report: &BenchReport) -> Result<String, String> {
    let document = BenchDocument::new(report)?;
    serde_json::to_string_pretty(&document)
        .map_err(|error| format!("failed to write the JSON report: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_round_trips() {
        let mut histogram = super::super::stats::new_histogram();
        for value in [1u64, 250, 1_000, 20_000, 5_000_000] {
            histogram.record(value).unwrap();
        }
        let text = encode_histogram(&histogram).unwrap();
        assert!(text.starts_with("HISTF"), "{text}");
        let decoded = decode_histogram(&text).unwrap();
        assert_eq!(decoded.len(), 5);
        assert_eq!(decoded.max(), histogram.max());
        assert_eq!(
            decoded.value_at_quantile(0.5),
            histogram.value_at_quantile(0.5)
        );
    }

    #[test]
    fn garbage_histogram_is_an_error() {
        assert!(decode_histogram("not base64!").is_err());
        assert!(decode_histogram("aGVsbG8=").is_err());
    }
}
