//! Recording request outcomes with flat memory.
//!
//! Workers record into a few shards, each a mutex around HDR histograms
//! and counters, so that two workers rarely wait for each other. Once a
//! second the collector drains every shard into the run's totals and into
//! the current point of the time series. Nothing is kept per request: the
//! memory of a run is the histograms, the counters, at most
//! [`MAX_ERROR_EXAMPLES`] error texts and at most [`MAX_TIMELINE_POINTS`]
//! points, however long it runs.
//!
//! Latencies are recorded in microseconds, from 1 µs to one hour with
//! three significant figures; a longer value is recorded as one hour.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use super::client::Exchange;
use crate::delivery::{ConnectionErrorKind, TimeoutPhase};

/// The maximum latency a histogram records, in microseconds: one hour.
/// A longer value is recorded as one hour.
pub const HISTOGRAM_MAX_MICROS: u64 = 3_600_000_000;

/// Significant decimal digits kept by every histogram.
pub const HISTOGRAM_SIGNIFICANT_FIGURES: u8 = 3;

/// Distinct error texts kept as examples.
pub const MAX_ERROR_EXAMPLES: usize = 10;

/// Points the time series keeps before it halves its resolution.
pub const MAX_TIMELINE_POINTS: usize = 3600;

/// Characters of an error text kept in an example.
const MAX_ERROR_DETAIL: usize = 300;

/// Creates an empty latency histogram with the bounds above.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_MICROS, HISTOGRAM_SIGNIFICANT_FIGURES)
        .expect("the histogram bounds are valid constants")
}

/// Converts a duration to whole microseconds for a histogram.
pub fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// One finished request, as a worker reports it.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When the schedule meant it to leave (open loop only).
    pub intended: Option<Instant>,
    /// Whether the request fell due while every worker was busy, so it
    /// waited for a connection (open loop only).
    pub waited_for_connection: bool,
    /// When the exchange started.
    pub sent: Instant,
    /// When the exchange ended.
    pub finished: Instant,
    /// The outcome.
    pub exchange: Exchange,
}

/// Returns the index of a [`ConnectionErrorKind`] in the counters.
fn kind_index(kind: ConnectionErrorKind) -> usize {
    match kind {
        ConnectionErrorKind::Refused => 0,
        ConnectionErrorKind::Reset => 1,
        ConnectionErrorKind::Dns => 2,
        ConnectionErrorKind::Tls => 3,
        ConnectionErrorKind::Other => 4,
    }
}

/// Every [`ConnectionErrorKind`], in counter order.
pub const CONNECTION_ERROR_KINDS: [ConnectionErrorKind; 5] = [
    ConnectionErrorKind::Refused,
    ConnectionErrorKind::Reset,
    ConnectionErrorKind::Dns,
    ConnectionErrorKind::Tls,
    ConnectionErrorKind::Other,
];

/// The counters of a run or of one interval.
#[derive(Clone, PartialEq, Eq)]
pub struct Counts {
    /// Requests counted (warmup excluded).
    pub requests: u64,
    /// Responses per status code, indexed by the code; codes up to 999.
    pub statuses: Vec<u64>,
    /// Responses with a 2xx status.
    pub succeeded: u64,
    /// Timeouts before the response headers (connecting included).
    pub timeouts_headers: u64,
    /// Timeouts while reading the response body.
    pub timeouts_body: u64,
    /// Connection errors, in [`CONNECTION_ERROR_KINDS`] order.
    pub connection_errors: [u64; 5],
    /// Responses that came later than the Mews deadline.
    pub late_responses: u64,
    /// Sends that left later than the tolerance after their intended time.
    pub late_sends: u64,
    /// Of `late_sends`, those that fell due while every worker was busy.
    pub late_sends_busy: u64,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            requests: 0,
            statuses: vec![0; 1000],
            succeeded: 0,
            timeouts_headers: 0,
            timeouts_body: 0,
            connection_errors: [0; 5],
            late_responses: 0,
            late_sends: 0,
            late_sends_busy: 0,
        }
    }
}

impl std::fmt::Debug for Counts {
    // A thousand status slots would drown every other field, so only the
    // statuses that occurred are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counts")
            .field("requests", &self.requests)
            .field("statuses", &self.status_counts())
            .field("succeeded", &self.succeeded)
            .field("timeouts_headers", &self.timeouts_headers)
            .field("timeouts_body", &self.timeouts_body)
            .field("connection_errors", &self.connection_errors)
            .field("late_responses", &self.late_responses)
            .field("late_sends", &self.late_sends)
            .field("late_sends_busy", &self.late_sends_busy)
            .finish()
    }
}

impl Counts {
    /// Returns the requests that did not end in a 2xx response.
    pub fn errors(&self) -> u64 {
        self.requests - self.succeeded
    }

    /// Returns the timeouts of either phase.
    pub fn timeouts(&self) -> u64 {
        self.timeouts_headers + self.timeouts_body
    }

    /// Returns the requests that got any response.
    pub fn responded(&self) -> u64 {
        self.statuses.iter().sum()
    }

    /// Returns the connection errors of every kind.
    pub fn connection_errors_total(&self) -> u64 {
        self.connection_errors.iter().sum()
    }

    /// Returns the count of one connection error kind.
    pub fn connection_errors_of(&self, kind: ConnectionErrorKind) -> u64 {
        self.connection_errors[kind_index(kind)]
    }

    /// Returns the responses later than the deadline plus the timeouts:
    /// the requests Mews would have retried for being slow.
    pub fn breaches(&self) -> u64 {
        self.late_responses + self.timeouts()
    }

    /// Returns the statuses that occurred, with their counts, in code
    /// order.
    pub fn status_counts(&self) -> Vec<(u16, u64)> {
        self.statuses
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(code, count)| (code as u16, *count))
            .collect()
    }

    fn add(&mut self, other: &Counts) {
        self.requests += other.requests;
        for (mine, theirs) in self.statuses.iter_mut().zip(&other.statuses) {
            *mine += theirs;
        }
        self.succeeded += other.succeeded;
        self.timeouts_headers += other.timeouts_headers;
        self.timeouts_body += other.timeouts_body;
        for (mine, theirs) in self
            .connection_errors
            .iter_mut()
            .zip(other.connection_errors)
        {
            *mine += theirs;
        }
        self.late_responses += other.late_responses;
        self.late_sends += other.late_sends;
        self.late_sends_busy += other.late_sends_busy;
    }
}

/// One distinct connection error text and how often it occurred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorExample {
    /// The failure class.
    pub kind: ConnectionErrorKind,
    /// The error text, redacted and shortened.
    pub detail: String,
    /// How many requests failed with this text.
    pub count: u64,
}

/// Adds one occurrence of an error text to a bounded list of examples.
fn note_example(examples: &mut Vec<ErrorExample>, kind: ConnectionErrorKind, detail: &str, n: u64) {
    if let Some(known) = examples
        .iter_mut()
        .find(|example| example.kind == kind && example.detail == detail)
    {
        known.count += n;
    } else if examples.len() < MAX_ERROR_EXAMPLES {
        let detail: String = detail.chars().take(MAX_ERROR_DETAIL).collect();
        examples.push(ErrorExample {
            kind,
            detail,
            count: n,
        });
    }
}

/// The records of one shard since the collector last drained it.
struct Interval {
    service: Histogram<u64>,
    corrected: Histogram<u64>,
    lag: Histogram<u64>,
    counts: Counts,
    examples: Vec<ErrorExample>,
}

impl Interval {
    fn new() -> Interval {
        Interval {
            service: new_histogram(),
            corrected: new_histogram(),
            lag: new_histogram(),
            counts: Counts::default(),
            examples: Vec::new(),
        }
    }
}

/// The rules a [`Recorder`] applies to each sample.
#[derive(Debug, Clone, Copy)]
pub struct RecordRules {
    /// Responses slower than this count as deadline breaches; Mews allows
    /// 5 s.
    pub deadline: Duration,
    /// A send later than this after its intended time counts as late.
    pub late_after: Duration,
}

/// The shards workers record into.
pub struct Recorder {
    shards: Vec<Mutex<Interval>>,
    rules: RecordRules,
}

impl Recorder {
    /// Creates a recorder with `shards` shards (at least 1).
    pub fn new(shards: usize, rules: RecordRules) -> Recorder {
        Recorder {
            shards: (0..shards.max(1))
                .map(|_| Mutex::new(Interval::new()))
                .collect(),
            rules,
        }
    }

    /// Returns the number of shards. Worker `i` records into shard
    /// `i % shards`.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Interval> {
        // A worker that panicked while recording leaves counters that are
        // still the best account there is.
        self.shards[shard % self.shards.len()]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records one measured request.
    ///
    /// Latency covers every request that got a response, whatever its
    /// status, and every timeout at the moment it was given up. A
    /// connection error has no latency worth comparing, so it is only
    /// counted.
    pub fn record(&self, shard: usize, sample: &Sample) {
        let service = sample.finished.saturating_duration_since(sample.sent);
        let schedule = sample.intended.map(|intended| {
            let lag = sample.sent.saturating_duration_since(intended);
            let corrected = sample.finished.saturating_duration_since(intended);
            (lag, corrected)
        });
        let has_latency = !matches!(sample.exchange, Exchange::Failed { .. });

        let mut interval = self.lock(shard);
        let interval = &mut *interval;
        let counts = &mut interval.counts;
        counts.requests += 1;
        match &sample.exchange {
            Exchange::Responded { status } => {
                let index = usize::from(*status).min(counts.statuses.len() - 1);
                counts.statuses[index] += 1;
                if crate::delivery::response_is_success(*status) {
                    counts.succeeded += 1;
                }
                if service > self.rules.deadline {
                    counts.late_responses += 1;
                }
            }
            Exchange::TimedOut {
                phase: TimeoutPhase::Headers,
            } => counts.timeouts_headers += 1,
            Exchange::TimedOut {
                phase: TimeoutPhase::Body,
            } => counts.timeouts_body += 1,
            Exchange::Failed { kind, detail } => {
                counts.connection_errors[kind_index(*kind)] += 1;
                note_example(&mut interval.examples, *kind, detail, 1);
            }
        }

        if let Some((lag, corrected)) = schedule {
            interval.lag.saturating_record(micros(lag));
            if lag > self.rules.late_after {
                counts.late_sends += 1;
                if sample.waited_for_connection {
                    counts.late_sends_busy += 1;
                }
            }
            if has_latency {
                interval.corrected.saturating_record(micros(corrected));
            }
        }
        if has_latency {
            interval.service.saturating_record(micros(service));
        }
    }
}

/// Adds `from` into `into`; both come from [`new_histogram`], so the
/// bounds always match.
fn merge(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    if let Err(error) = into.add(from) {
        tracing::error!(%error, "failed to merge latency histograms");
    }
}

/// One point of the time series.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelinePoint {
    /// When the bucket starts, counted from the start of measurement.
    pub start: Duration,
    /// How long the bucket lasts.
    pub length: Duration,
    /// Requests that finished in the bucket.
    pub requests: u64,
    /// Of those, the ones that did not get a 2xx response.
    pub errors: u64,
    /// The median headline latency in the bucket, in microseconds.
    pub p50_micros: Option<u64>,
    /// The 99th percentile headline latency, in microseconds.
    pub p99_micros: Option<u64>,
    /// The largest headline latency, in microseconds.
    pub max_micros: Option<u64>,
}

impl TimelinePoint {
    /// Requests per second in the bucket.
    pub fn rate(&self) -> f64 {
        let seconds = self.length.as_secs_f64();
        if seconds <= 0.0 {
            return 0.0;
        }
        self.requests as f64 / seconds
    }

    /// Joins two neighbouring points. Percentiles cannot be merged
    /// exactly without the histograms, so the joined point keeps the
    /// higher of the two, an upper bound.
    fn join(&self, next: &TimelinePoint) -> TimelinePoint {
        TimelinePoint {
            start: self.start,
            length: self.length + next.length,
            requests: self.requests + next.requests,
            errors: self.errors + next.errors,
            p50_micros: self.p50_micros.max(next.p50_micros),
            p99_micros: self.p99_micros.max(next.p99_micros),
            max_micros: self.max_micros.max(next.max_micros),
        }
    }
}

/// A time series of bounded length: once [`MAX_TIMELINE_POINTS`] points
/// are kept, neighbouring points are joined in pairs and the bucket length
/// doubles.
#[derive(Debug, Clone)]
pub struct Timeline {
    bucket: Duration,
    points: Vec<TimelinePoint>,
    max_points: usize,
}

impl Timeline {
    /// Creates a series with one-second buckets.
    pub fn new() -> Timeline {
        Timeline::with_limit(Duration::from_secs(1), MAX_TIMELINE_POINTS)
    }

    /// Creates a series with the given bucket length and point limit
    /// (at least 2).
    pub fn with_limit(bucket: Duration, max_points: usize) -> Timeline {
        Timeline {
            bucket,
            points: Vec::new(),
            max_points: max_points.max(2),
        }
    }

    /// Returns the current bucket length.
    pub fn bucket(&self) -> Duration {
        self.bucket
    }

    /// Returns the points, oldest first.
    pub fn points(&self) -> &[TimelinePoint] {
        &self.points
    }

    /// Joins every point from index `from` on into the point before it.
    fn join_last(&mut self, from: usize) {
        if from == 0 || from >= self.points.len() {
            return;
        }
        let tail: Vec<TimelinePoint> = self.points.drain(from..).collect();
        let last = &mut self.points[from - 1];
        for point in &tail {
            *last = last.join(point);
        }
    }

    /// Appends a point, halving the resolution first if the series is
    /// full.
    pub fn push(&mut self, point: TimelinePoint) {
        if self.points.len() >= self.max_points {
            let joined: Vec<TimelinePoint> = self
                .points
                .chunks(2)
                .map(|pair| {
                    pair[1..]
                        .iter()
                        .fold(pair[0].clone(), |joined, next| joined.join(next))
                })
                .collect();
            self.points = joined;
            self.bucket *= 2;
        }
        self.points.push(point);
    }
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline::new()
    }
}

/// Everything measured in a run.
#[derive(Debug, Clone)]
pub struct Measurements {
    /// Service latency: from the moment a request left to its response.
    pub service: Histogram<u64>,
    /// Corrected latency: from the intended send time to the response
    /// (open loop only, empty otherwise).
    pub corrected: Histogram<u64>,
    /// Schedule lag: from the intended send time to the moment the request
    /// left (open loop only, empty otherwise).
    pub lag: Histogram<u64>,
    /// The counters.
    pub counts: Counts,
    /// Up to [`MAX_ERROR_EXAMPLES`] distinct connection error texts.
    pub examples: Vec<ErrorExample>,
    /// The time series.
    pub timeline: Timeline,
}

/// A live view of a run, published once a second.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Live {
    /// Whether the warmup is still running.
    pub warming_up: bool,
    /// Time since the start of measurement (or of the warmup, while it
    /// runs).
    pub elapsed: Duration,
    /// Requests counted so far.
    pub requests: u64,
    /// Requests per second over the last second.
    pub rate: f64,
    /// The headline 99th percentile so far.
    pub p99: Option<Duration>,
    /// Requests so far that did not get a 2xx response.
    pub errors: u64,
}

/// Drains the recorder once a second into totals and the time series.
pub struct Collector {
    open_loop: bool,
    totals: Measurements,
    bucket_start: Duration,
    bucket_headline: Histogram<u64>,
    bucket_counts: Counts,
    tick_requests: u64,
}

impl Collector {
    /// Creates a collector. In open loop the headline latency is the
    /// corrected one, in closed loop the service latency.
    pub fn new(open_loop: bool) -> Collector {
        Collector {
            open_loop,
            totals: Measurements {
                service: new_histogram(),
                corrected: new_histogram(),
                lag: new_histogram(),
                counts: Counts::default(),
                examples: Vec::new(),
                timeline: Timeline::new(),
            },
            bucket_start: Duration::ZERO,
            bucket_headline: new_histogram(),
            bucket_counts: Counts::default(),
            tick_requests: 0,
        }
    }

    /// Moves everything recorded since the last drain into the totals and
    /// the open bucket. `elapsed` is the time since the start of
    /// measurement. The bucket is closed into a point once it is as long
    /// as the series' bucket length.
    pub fn drain(&mut self, recorder: &Recorder, elapsed: Duration) {
        self.tick_requests = 0;
        for shard in 0..recorder.shard_count() {
            let mut interval = recorder.lock(shard);
            let totals = &mut self.totals;
            merge(&mut totals.service, &interval.service);
            merge(&mut totals.corrected, &interval.corrected);
            merge(&mut totals.lag, &interval.lag);
            let headline = if self.open_loop {
                &interval.corrected
            } else {
                &interval.service
            };
            merge(&mut self.bucket_headline, headline);
            totals.counts.add(&interval.counts);
            self.bucket_counts.add(&interval.counts);
            self.tick_requests += interval.counts.requests;
            for example in &interval.examples {
                note_example(
                    &mut totals.examples,
                    example.kind,
                    &example.detail,
                    example.count,
                );
            }

            interval.service.reset();
            interval.corrected.reset();
            interval.lag.reset();
            interval.counts = Counts::default();
            interval.examples.clear();
        }

        if elapsed.saturating_sub(self.bucket_start) >= self.totals.timeline.bucket() {
            self.close_bucket(elapsed);
        }
    }

    /// Closes the open bucket at `elapsed`, unless it is empty of time.
    pub fn close_bucket(&mut self, elapsed: Duration) {
        if elapsed.saturating_sub(self.bucket_start).is_zero() {
            return;
        }
        self.push_bucket(elapsed);
    }

    /// Turns the open bucket into a point ending at `elapsed` and opens the
    /// next one.
    fn push_bucket(&mut self, elapsed: Duration) {
        let histogram = &self.bucket_headline;
        let has_values = !histogram.is_empty();
        let point = TimelinePoint {
            start: self.bucket_start,
            length: elapsed.saturating_sub(self.bucket_start),
            requests: self.bucket_counts.requests,
            errors: self.bucket_counts.errors(),
            p50_micros: has_values.then(|| histogram.value_at_quantile(0.5)),
            p99_micros: has_values.then(|| histogram.value_at_quantile(0.99)),
            max_micros: has_values.then(|| histogram.max()),
        };
        self.totals.timeline.push(point);
        self.bucket_start = self.bucket_start.max(elapsed);
        self.bucket_headline.reset();
        self.bucket_counts = Counts::default();
    }

    /// Closes the last bucket of a run at `elapsed`. A remainder shorter
    /// than half a bucket is joined to the previous point, because a rate
    /// over a sliver of time (the last few responses after the final tick)
    /// would show as a spike that never happened. Requests recorded just
    /// after the last tick are kept even when no time is left to give them.
    pub fn close_last_bucket(&mut self, elapsed: Duration) {
        let length = elapsed.saturating_sub(self.bucket_start);
        if length.is_zero() && self.bucket_counts.requests == 0 {
            return;
        }
        let short = length < self.totals.timeline.bucket() / 2;
        let before = self.totals.timeline.points().len();
        self.push_bucket(elapsed);
        if short && before > 0 {
            self.totals.timeline.join_last(before);
        }
    }

    /// Returns the live view after the last drain.
    pub fn live(&self, elapsed: Duration, tick: Duration) -> Live {
        let headline = self.headline();
        let seconds = tick.as_secs_f64();
        Live {
            warming_up: false,
            elapsed,
            requests: self.totals.counts.requests,
            rate: if seconds > 0.0 {
                self.tick_requests as f64 / seconds
            } else {
                0.0
            },
            p99: (!headline.is_empty())
                .then(|| Duration::from_micros(headline.value_at_quantile(0.99))),
            errors: self.totals.counts.errors(),
        }
    }

    fn headline(&self) -> &Histogram<u64> {
        if self.open_loop {
            &self.totals.corrected
        } else {
            &self.totals.service
        }
    }

    /// Returns the totals so far.
    pub fn totals(&self) -> &Measurements {
        &self.totals
    }

    /// Ends collection and returns the totals.
    pub fn finish(self) -> Measurements {
        self.totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> RecordRules {
        RecordRules {
            deadline: Duration::from_secs(5),
            late_after: Duration::from_millis(2),
        }
    }

    fn sample(start: Instant, service_ms: u64, exchange: Exchange) -> Sample {
        Sample {
            intended: None,
            waited_for_connection: false,
            sent: start,
            finished: start + Duration::from_millis(service_ms),
            exchange,
        }
    }

    #[test]
    fn every_outcome_is_counted_once() {
        let recorder = Recorder::new(2, rules());
        let now = Instant::now();
        let outcomes = [
            Exchange::Responded { status: 202 },
            Exchange::Responded { status: 500 },
            Exchange::Responded { status: 202 },
            Exchange::TimedOut {
                phase: TimeoutPhase::Headers,
            },
            Exchange::TimedOut {
                phase: TimeoutPhase::Body,
            },
            Exchange::Failed {
                kind: ConnectionErrorKind::Reset,
                detail: "reset".to_string(),
            },
        ];
        for (index, exchange) in outcomes.into_iter().enumerate() {
            recorder.record(index, &sample(now, 10, exchange));
        }
        let mut collector = Collector::new(false);
        collector.drain(&recorder, Duration::from_millis(500));
        let totals = collector.finish();

        let counts = &totals.counts;
        assert_eq!(counts.requests, 6);
        assert_eq!(counts.status_counts(), vec![(202, 2), (500, 1)]);
        assert_eq!(counts.succeeded, 2);
        assert_eq!(counts.errors(), 4);
        assert_eq!(counts.timeouts(), 2);
        assert_eq!(counts.connection_errors_of(ConnectionErrorKind::Reset), 1);
        assert_eq!(
            counts.responded() + counts.timeouts() + counts.connection_errors_total(),
            counts.requests
        );
        // The connection error has no latency; the other five do.
        assert_eq!(totals.service.len(), 5);
        assert_eq!(totals.examples.len(), 1);
    }

    #[test]
    fn slow_response_is_a_breach() {
        let recorder = Recorder::new(1, rules());
        let now = Instant::now();
        recorder.record(0, &sample(now, 5001, Exchange::Responded { status: 200 }));
        recorder.record(0, &sample(now, 5000, Exchange::Responded { status: 200 }));
        let mut collector = Collector::new(false);
        collector.drain(&recorder, Duration::from_secs(1));
        assert_eq!(collector.totals().counts.late_responses, 1);
        assert_eq!(collector.totals().counts.breaches(), 1);
    }

    #[test]
    fn open_loop_records_lag_and_late_sends() {
        let recorder = Recorder::new(1, rules());
        let intended = Instant::now();
        let on_time = Sample {
            intended: Some(intended),
            waited_for_connection: false,
            sent: intended + Duration::from_millis(1),
            finished: intended + Duration::from_millis(11),
            exchange: Exchange::Responded { status: 204 },
        };
        let late_busy = Sample {
            waited_for_connection: true,
            sent: intended + Duration::from_millis(50),
            finished: intended + Duration::from_millis(60),
            ..on_time.clone()
        };
        recorder.record(0, &on_time);
        recorder.record(0, &late_busy);
        let mut collector = Collector::new(true);
        collector.drain(&recorder, Duration::from_secs(1));
        let totals = collector.finish();

        assert_eq!(totals.counts.late_sends, 1);
        assert_eq!(totals.counts.late_sends_busy, 1);
        assert_eq!(totals.lag.len(), 2);
        let corrected_max = Duration::from_micros(totals.corrected.max());
        let service_max = Duration::from_micros(totals.service.max());
        assert!(
            corrected_max >= Duration::from_millis(59),
            "{corrected_max:?}"
        );
        assert!(service_max <= Duration::from_millis(11), "{service_max:?}");
    }

    #[test]
    fn timeline_halves_resolution_when_full() {
        let mut timeline = Timeline::with_limit(Duration::from_secs(1), 4);
        for second in 0..5u64 {
            timeline.push(TimelinePoint {
                start: Duration::from_secs(second),
                length: Duration::from_secs(1),
                requests: 10,
                errors: second,
                p50_micros: Some(second * 100),
                p99_micros: Some(second * 1000),
                max_micros: Some(second * 2000),
            });
        }
        assert_eq!(timeline.bucket(), Duration::from_secs(2));
        let points = timeline.points();
        assert_eq!(points.len(), 3);
        assert_eq!(points[0].length, Duration::from_secs(2));
        assert_eq!(points[0].requests, 20);
        assert_eq!(points[1].p99_micros, Some(3000));
        assert_eq!(points[2].start, Duration::from_secs(4));
        let total: u64 = points.iter().map(|point| point.requests).sum();
        assert_eq!(total, 50);
    }

    #[test]
    fn late_records_stay_in_timeline() {
        let recorder = Recorder::new(1, rules());
        let mut collector = Collector::new(false);
        let now = Instant::now();
        recorder.record(0, &sample(now, 3, Exchange::Responded { status: 200 }));
        collector.drain(&recorder, Duration::from_secs(1));
        // Recorded after the last tick, though the run's window ends at it.
        recorder.record(0, &sample(now, 3, Exchange::Responded { status: 200 }));
        collector.drain(&recorder, Duration::from_secs(1));
        collector.close_last_bucket(Duration::from_secs(1));

        let points = collector.totals().timeline.points();
        let total: u64 = points.iter().map(|point| point.requests).sum();
        assert_eq!(total, 2);
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].length, Duration::from_secs(1));
    }

    #[test]
    fn buckets_close_after_their_length() {
        let recorder = Recorder::new(1, rules());
        let mut collector = Collector::new(false);
        let now = Instant::now();
        recorder.record(0, &sample(now, 3, Exchange::Responded { status: 200 }));
        collector.drain(&recorder, Duration::from_millis(400));
        assert!(collector.totals().timeline.points().is_empty());
        collector.drain(&recorder, Duration::from_millis(1000));
        let points = collector.totals().timeline.points();
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].requests, 1);
        assert!(points[0].p50_micros.is_some());
    }
}
