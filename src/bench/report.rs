//! A finished run: its settings, its measurements, the figures derived
//! from them, and the terminal summary.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use serde::Serialize;

use super::bodies::{BodyPool, BodySource, EventsPerMessage};
use super::load::{LoadResult, Mode};
use super::stall::StallPlan;
use super::stats::CONNECTION_ERROR_KINDS;
use super::thresholds::{Figures, Threshold, ThresholdOutcome};
use super::{BenchConfig, Engine, MEWS_DEADLINE, load::Limit};

/// The percentiles every report shows, as fractions.
pub const REPORTED_QUANTILES: [(f64, &str); 5] = [
    (0.5, "p50"),
    (0.9, "p90"),
    (0.99, "p99"),
    (0.999, "p99.9"),
    (0.9999, "p99.99"),
];

/// The bodies a run sent.
#[derive(Debug, Clone, Serialize)]
pub struct BodySettings {
    /// `general`, `integration` or `file`.
    pub kind: &'static str,
    /// Events per General message, when generated.
    pub events_per_message: Option<EventsPerMessage>,
    /// Enterprise integrations the General messages are spread over.
    pub enterprises: Option<u32>,
    /// The body file, when one was given.
    pub file: Option<String>,
    /// Distinct bodies in the pool.
    pub pool_bodies: usize,
    /// Bytes of all bodies in the pool.
    pub pool_bytes: usize,
    /// The mean body size in bytes.
    pub mean_body_bytes: f64,
    /// The generator seed.
    pub seed: u64,
}

/// The settings of a run, as reported. The URL carries the token
/// placeholder, never the token.
#[derive(Debug, Clone, Serialize)]
pub struct BenchSettings {
    /// The URL requests went to, token redacted.
    pub target: String,
    /// Whether the target was the embedded reference receiver.
    pub embedded_receiver: bool,
    /// The stall the embedded receiver was started with, if any.
    pub receiver_stall: Option<StallPlan>,
    /// `raw`, `hyper` or `delivery`.
    pub client: &'static str,
    /// Load-generator threads, each with its own runtime; 0 when the
    /// workers ran on the main runtime (the delivery client).
    pub threads: usize,
    /// `closed` or `open`.
    pub mode: &'static str,
    /// The open-loop rate, per second.
    pub target_rate: Option<f64>,
    /// Connections, each with one request in flight.
    pub concurrency: usize,
    /// The measured duration asked for, in milliseconds.
    pub duration_ms: Option<f64>,
    /// The measured request count asked for.
    pub requests: Option<u64>,
    /// The warmup, in milliseconds.
    pub warmup_ms: f64,
    /// The deadline of one request, in milliseconds.
    pub timeout_ms: f64,
    /// The Mews deadline that breaches are counted against, in
    /// milliseconds.
    pub deadline_ms: f64,
    /// The open-loop tolerance after which a send is late, in
    /// milliseconds.
    pub late_after_ms: Option<f64>,
    /// The bodies.
    pub body: BodySettings,
}

impl BenchSettings {
    /// Describes `config` as run with `engine` and `pool`; `target` is the
    /// redacted URL.
    pub fn new(config: &BenchConfig, engine: Engine, pool: &BodyPool, target: &str) -> Self {
        let plan = &config.plan;
        let (kind, events_per_message, enterprises) = match &config.source {
            BodySource::General {
                events,
                enterprises,
            } => ("general", Some(*events), Some(*enterprises)),
            BodySource::Integration => ("integration", None, None),
            BodySource::Fixed(_) => ("file", None, None),
        };
        let (mode, target_rate) = match plan.mode {
            Mode::Closed => ("closed", None),
            Mode::Open { rate } => ("open", Some(rate)),
        };
        let (duration_ms, requests) = match plan.limit {
            Limit::Duration(duration) => (Some(ms(duration)), None),
            Limit::Requests(count) => (None, Some(count)),
        };
        BenchSettings {
            target: target.to_string(),
            embedded_receiver: config.embedded_receiver,
            receiver_stall: config.stall,
            client: engine.name(),
            threads: match engine {
                Engine::Delivery => 0,
                _ => plan.threads.min(plan.concurrency),
            },
            mode,
            target_rate,
            concurrency: plan.concurrency,
            duration_ms,
            requests,
            warmup_ms: ms(plan.warmup),
            timeout_ms: ms(config.delivery.timeout),
            deadline_ms: ms(MEWS_DEADLINE),
            late_after_ms: target_rate.map(|_| ms(plan.rules.late_after)),
            body: BodySettings {
                kind,
                events_per_message,
                enterprises,
                file: config.body_file.clone(),
                pool_bodies: pool.len(),
                pool_bytes: pool.total_bytes(),
                mean_body_bytes: pool.mean_bytes(),
                seed: config.seed,
            },
        }
    }
}

fn ms(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// The settings.
    pub settings: BenchSettings,
    /// When the load started, in UTC.
    pub started_at: DateTime<Utc>,
    /// The measurements.
    pub result: LoadResult,
    /// The outcome of each `--fail-if` threshold, in the order given.
    pub thresholds: Vec<ThresholdOutcome>,
}

impl BenchReport {
    /// Builds the report and evaluates `thresholds` against it.
    pub fn new(
        settings: BenchSettings,
        started_at: DateTime<Utc>,
        result: LoadResult,
        thresholds: &[Threshold],
    ) -> BenchReport {
        let mut report = BenchReport {
            settings,
            started_at,
            result,
            thresholds: Vec::new(),
        };
        let figures = report.figures();
        let outcomes = thresholds
            .iter()
            .map(|threshold| threshold.evaluate(&figures))
            .collect();
        report.thresholds = outcomes;
        report
    }

    /// Returns whether the run was open loop.
    pub fn open_loop(&self) -> bool {
        self.settings.target_rate.is_some()
    }

    /// Returns the latency the report leads with: corrected in open loop, service
    /// in closed loop.
    pub fn headline(&self) -> &Histogram<u64> {
        let measurements = &self.result.measurements;
        if self.open_loop() {
            &measurements.corrected
        } else {
            &measurements.service
        }
    }

    /// Counted requests per second over the measurement window.
    pub fn achieved_rate(&self) -> f64 {
        let seconds = self.result.window.as_secs_f64();
        if seconds <= 0.0 {
            return 0.0;
        }
        self.result.measurements.counts.requests as f64 / seconds
    }

    /// Returns the share of counted requests without a 2xx response, from
    /// 0 to 1.
    pub fn error_rate(&self) -> Option<f64> {
        let counts = &self.result.measurements.counts;
        (counts.requests > 0).then(|| counts.errors() as f64 / counts.requests as f64)
    }

    /// Measured sends the schedule called for: those sent plus those that
    /// never went out.
    pub fn scheduled(&self) -> u64 {
        self.result.measurements.counts.requests + self.result.unsent
    }

    /// Returns the figures thresholds are evaluated on.
    pub fn figures(&self) -> Figures<'_> {
        let counts = &self.result.measurements.counts;
        Figures {
            latency: Some(self.headline()),
            requests: counts.requests,
            errors: counts.errors(),
            breaches: counts.breaches(),
            late: counts.late_sends + self.result.unsent,
            scheduled: self.scheduled(),
            rate: self.achieved_rate(),
            open_loop: self.open_loop(),
        }
    }

    /// Returns whether any threshold was crossed.
    pub fn thresholds_crossed(&self) -> bool {
        self.thresholds.iter().any(|outcome| outcome.crossed)
    }

    /// Renders the terminal summary.
    pub fn summary(&self) -> String {
        let mut text = String::new();
        self.write_header(&mut text);
        self.write_counts(&mut text);
        self.write_latency(&mut text);
        self.write_schedule(&mut text);
        self.write_errors(&mut text);
        self.write_thresholds(&mut text);
        text
    }

    fn write_header(&self, text: &mut String) {
        let settings = &self.settings;
        let pacing = match settings.target_rate {
            Some(rate) => format!("open loop at {}/s", format_rate(rate)),
            None => "closed loop".to_string(),
        };
        let limit = match (settings.duration_ms, settings.requests) {
            (Some(duration), _) => format!("for {}", format_ms_short(duration)),
            (None, Some(count)) => format!("for {count} requests"),
            (None, None) => String::new(),
        };
        let warmup = if settings.warmup_ms > 0.0 {
            format!(" after a {} warmup", format_ms_short(settings.warmup_ms))
        } else {
            String::new()
        };
        let _ = writeln!(
            text,
            "mewshook bench: {pacing}, {} connections, {limit}{warmup}",
            settings.concurrency
        );

        let mut target = settings.target.clone();
        if settings.embedded_receiver {
            target.push_str(" (embedded reference receiver");
            if let Some(stall) = &settings.receiver_stall {
                let _ = write!(target, ", {stall}");
            }
            target.push(')');
        }
        let _ = writeln!(text, "target      {target}");
        let body = &settings.body;
        let what = match (body.kind, &body.events_per_message, &body.file) {
            ("general", Some(events), _) => format!("General messages of {events} events"),
            ("integration", _, _) => "Integration messages".to_string(),
            (_, _, Some(file)) => format!("the body of {file}"),
            _ => "fixed body".to_string(),
        };
        let pool = match body.pool_bodies {
            1 => format!("1 body of {:.0} bytes", body.mean_body_bytes),
            count => format!(
                "{count} bodies of {:.0} bytes on average",
                body.mean_body_bytes
            ),
        };
        let _ = writeln!(text, "load        {what}; {pool}, seed {}", body.seed);
        let threads = match settings.threads {
            0 => "the main runtime".to_string(),
            1 => "1 thread".to_string(),
            count => format!("{count} threads"),
        };
        let _ = writeln!(text, "client      {} on {threads}", settings.client);
        if self.result.interrupted {
            let _ = writeln!(
                text,
                "            interrupted: the figures cover the run until then"
            );
        }
        text.push('\n');
    }

    fn write_counts(&self, text: &mut String) {
        let counts = &self.result.measurements.counts;
        let error_percent = self.error_rate().unwrap_or(0.0) * 100.0;
        let _ = writeln!(
            text,
            "requests    {} counted, {} with a 2xx response, {} errors ({error_percent:.3}%); {} warmup requests not counted",
            counts.requests,
            counts.succeeded,
            counts.errors(),
            self.result.warmup_requests
        );
        let target = match self.settings.target_rate {
            Some(rate) => format!(" of {}/s asked", format_rate(rate)),
            None => String::new(),
        };
        let _ = writeln!(
            text,
            "rate        {}/s achieved{target}, over {:.3} s",
            format_rate(self.achieved_rate()),
            self.result.window.as_secs_f64()
        );
        let _ = writeln!(
            text,
            "deadline    {} breaches of the {} Mews deadline: {} responses later than it, {} timeouts",
            counts.breaches(),
            format_ms_short(self.settings.deadline_ms),
            counts.late_responses,
            counts.timeouts()
        );
        let statuses: Vec<String> = counts
            .status_counts()
            .iter()
            .map(|(status, count)| format!("{status}: {count}"))
            .collect();
        if !statuses.is_empty() {
            let _ = writeln!(text, "statuses    {}", statuses.join(", "));
        }
        text.push('\n');
    }

    fn write_latency(&self, text: &mut String) {
        let measurements = &self.result.measurements;
        let open = self.open_loop();
        if measurements.service.is_empty() {
            let _ = writeln!(
                text,
                "latency     none recorded: no request got a response\n"
            );
            return;
        }
        if open {
            let _ = writeln!(text, "latency (ms)  corrected    service");
        } else {
            let _ = writeln!(text, "latency (ms)    service");
        }
        let mut rows: Vec<(String, u64, u64)> = REPORTED_QUANTILES
            .iter()
            .map(|(quantile, label)| {
                (
                    label.to_string(),
                    measurements.corrected.value_at_quantile(*quantile),
                    measurements.service.value_at_quantile(*quantile),
                )
            })
            .collect();
        rows.push((
            "max".to_string(),
            measurements.corrected.max(),
            measurements.service.max(),
        ));
        for (label, corrected, service) in rows {
            if open {
                let _ = writeln!(
                    text,
                    "  {label:<8} {:>12} {:>10}",
                    micros_as_ms(corrected as f64),
                    micros_as_ms(service as f64)
                );
            } else {
                let _ = writeln!(text, "  {label:<8} {:>12}", micros_as_ms(service as f64));
            }
        }
        if open {
            let _ = writeln!(
                text,
                "  {:<8} {:>12} {:>10}",
                "mean",
                micros_as_ms(measurements.corrected.mean()),
                micros_as_ms(measurements.service.mean())
            );
        } else {
            let _ = writeln!(
                text,
                "  {:<8} {:>12}",
                "mean",
                micros_as_ms(measurements.service.mean())
            );
        }
        text.push('\n');
    }

    fn write_schedule(&self, text: &mut String) {
        let Some(late_after) = self.settings.late_after_ms else {
            return;
        };
        let measurements = &self.result.measurements;
        let counts = &measurements.counts;
        let lag = &measurements.lag;
        if !lag.is_empty() {
            let _ = writeln!(
                text,
                "schedule    lag p50 {} ms, p99 {} ms, max {} ms",
                micros_as_ms(lag.value_at_quantile(0.5) as f64),
                micros_as_ms(lag.value_at_quantile(0.99) as f64),
                micros_as_ms(lag.max() as f64)
            );
        }
        let scheduled = self.scheduled();
        let percent = if scheduled > 0 {
            counts.late_sends as f64 * 100.0 / scheduled as f64
        } else {
            0.0
        };
        let _ = writeln!(
            text,
            "            {} of {scheduled} sends late ({percent:.3}%), late meaning more than {} ms after the intended time:",
            counts.late_sends,
            format_plain(late_after)
        );
        let _ = writeln!(
            text,
            "            {} waited for a free connection (raise --concurrency), {} were held up in the load generator",
            counts.late_sends_busy,
            counts.late_sends - counts.late_sends_busy
        );
        if self.result.unsent > 0 {
            let _ = writeln!(
                text,
                "            {} scheduled sends never went out: the window ended before a connection was free",
                self.result.unsent
            );
        }
        text.push('\n');
    }

    fn write_errors(&self, text: &mut String) {
        let measurements = &self.result.measurements;
        let counts = &measurements.counts;
        if counts.timeouts() == 0 && counts.connection_errors_total() == 0 {
            return;
        }
        let _ = writeln!(
            text,
            "timeouts    {} before the response headers, {} while reading the body",
            counts.timeouts_headers, counts.timeouts_body
        );
        let kinds: Vec<String> = CONNECTION_ERROR_KINDS
            .iter()
            .map(|kind| (kind, counts.connection_errors_of(*kind)))
            .filter(|(_, count)| *count > 0)
            .map(|(kind, count)| format!("{}: {count}", kind.label()))
            .collect();
        if !kinds.is_empty() {
            let _ = writeln!(text, "connection  {}", kinds.join(", "));
        }
        for example in &measurements.examples {
            let _ = writeln!(
                text,
                "            {} x{}: {}",
                example.kind.label(),
                example.count,
                example.detail
            );
        }
        text.push('\n');
    }

    fn write_thresholds(&self, text: &mut String) {
        if self.thresholds.is_empty() {
            return;
        }
        let width = self
            .thresholds
            .iter()
            .map(|outcome| outcome.expression.len())
            .max()
            .unwrap_or(0);
        for (index, outcome) in self.thresholds.iter().enumerate() {
            let label = if index == 0 { "thresholds" } else { "" };
            let verdict = if outcome.crossed { "CROSSED" } else { "passed" };
            let _ = writeln!(
                text,
                "{label:<11} {:<width$}  {verdict} (observed {})",
                outcome.expression, outcome.observed
            );
        }
    }
}

/// Formats microseconds as milliseconds with three decimals.
pub fn micros_as_ms(micros: f64) -> String {
    format!("{:.3}", micros / 1000.0)
}

/// Formats a rate with one decimal below 100 per second, none above.
pub fn format_rate(rate: f64) -> String {
    if rate < 100.0 {
        format!("{rate:.1}")
    } else {
        format!("{rate:.0}")
    }
}

/// Formats a number without trailing zeros.
fn format_plain(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Formats milliseconds as a short duration: `250 ms`, `5 s`, `1.5 s`.
fn format_ms_short(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{} s", format_plain(ms / 1000.0))
    } else {
        format!("{} ms", format_plain(ms))
    }
}
