//! The open-loop schedule on tokio's paused clock: intended send times,
//! lag and late sends as pure arithmetic, then whole runs against a
//! simulated receiver whose time is virtual, so every figure is exact.

use std::sync::Arc;
use std::time::Duration;

use mewshook::bench::client::{Connection, Exchange, Transport};
use mewshook::bench::load::{Control, Limit, LoadPlan, LoadResult, Mode, Pacing, drive};
use mewshook::bench::schedule::{Schedule, is_late, lag};
use mewshook::bench::stats::RecordRules;
use tokio::time::Instant;

const MS: Duration = Duration::from_millis(1);

#[tokio::test(start_paused = true)]
async fn intended_times_follow_the_rate() {
    let start = Instant::now();
    let schedule = Schedule::new(start, 200.0);
    assert_eq!(schedule.intended(0), start);
    assert_eq!(schedule.intended(1), start + 5 * MS);
    assert_eq!(schedule.intended(200), start + Duration::from_secs(1));
    assert_eq!(schedule.due_before(Duration::from_secs(1)), 200);

    // The schedule is fixed at the start: time passing changes nothing.
    tokio::time::advance(Duration::from_secs(3)).await;
    assert_eq!(schedule.intended(1), start + 5 * MS);
}

#[tokio::test(start_paused = true)]
async fn lag_and_lateness_of_sends() {
    let start = Instant::now();
    let schedule = Schedule::new(start, 100.0);
    let intended = schedule.intended(3);

    tokio::time::advance(31 * MS).await;
    let sent = Instant::now();
    assert_eq!(lag(intended, sent), MS);
    assert!(!is_late(lag(intended, sent), 2 * MS));

    tokio::time::advance(5 * MS).await;
    let late = Instant::now();
    assert_eq!(lag(intended, late), 6 * MS);
    assert!(is_late(lag(intended, late), 2 * MS));

    // A send before its time has no lag.
    assert_eq!(lag(schedule.intended(10), late), Duration::ZERO);
}

/// A receiver in virtual time: responds 202 after `service`, and keeps
/// every request that arrives in the last `stall` of each `period` until
/// that period ends.
#[derive(Clone)]
struct Simulated {
    start: Instant,
    service: Duration,
    period: Duration,
    stall: Duration,
}

struct SimulatedConnection(Simulated);

impl Transport for Simulated {
    type Connection = SimulatedConnection;

    fn open(&self) -> SimulatedConnection {
        SimulatedConnection(self.clone())
    }
}

impl Connection for SimulatedConnection {
    async fn exchange(&mut self, _body: usize) -> Exchange {
        let receiver = &self.0;
        let elapsed = receiver.start.elapsed().as_nanos();
        let period = receiver.period.as_nanos();
        let phase = elapsed % period;
        if phase >= period - receiver.stall.as_nanos() {
            let left = u64::try_from(period - phase).unwrap();
            tokio::time::sleep(Duration::from_nanos(left)).await;
        }
        tokio::time::sleep(receiver.service).await;
        Exchange::Responded { status: 202 }
    }
}

fn plan(mode: Mode, limit: Limit, concurrency: usize) -> LoadPlan {
    LoadPlan {
        mode,
        limit,
        warmup: Duration::ZERO,
        concurrency,
        rules: RecordRules {
            deadline: Duration::from_secs(5),
            late_after: 2 * MS,
        },
        pacing: Pacing::Timer,
        threads: 0,
    }
}

/// Runs `plan` against a receiver that responds in 2 ms and stalls for
/// 200 ms at the end of every second.
async fn run_against_stalls(plan: LoadPlan) -> LoadResult {
    let receiver = Simulated {
        start: Instant::now(),
        service: 2 * MS,
        period: Duration::from_secs(1),
        stall: 200 * MS,
    };
    drive(&plan, Arc::new(receiver), &Control::new()).await
}

fn percentile_ms(histogram: &hdrhistogram::Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

#[tokio::test(start_paused = true)]
async fn open_loop_shows_stall_at_p99() {
    let open = plan(
        Mode::Open { rate: 100.0 },
        Limit::Duration(Duration::from_secs(5)),
        50,
    );
    let result = run_against_stalls(open).await;
    let measured = &result.measurements;

    // 100 per second for 5 s, every one sent: the schedule never waits.
    assert_eq!(measured.counts.requests, 500);
    assert_eq!(measured.counts.succeeded, 500);
    assert_eq!(result.unsent, 0);
    // A fifth of all requests fall due inside a stall, so the stall sets
    // the 99th percentile.
    let p99 = percentile_ms(&measured.corrected, 0.99);
    assert!(p99 >= 150.0, "corrected p99 {p99} ms");
    let p50 = percentile_ms(&measured.corrected, 0.5);
    assert!(p50 < 5.0, "corrected p50 {p50} ms");
}

#[tokio::test(start_paused = true)]
async fn closed_loop_hides_stall_at_p99() {
    let closed = plan(Mode::Closed, Limit::Duration(Duration::from_secs(5)), 5);
    let result = run_against_stalls(closed).await;
    let measured = &result.measurements;

    // Only the five requests in flight meet each stall.
    assert!(
        measured.counts.requests > 5_000,
        "{}",
        measured.counts.requests
    );
    let p99 = percentile_ms(&measured.service, 0.99);
    assert!(p99 < 5.0, "closed-loop p99 {p99} ms");
    let max = measured.service.max() as f64 / 1000.0;
    assert!(
        max >= 150.0,
        "the stall still shows in the maximum: {max} ms"
    );
}

#[tokio::test(start_paused = true)]
async fn busy_connections_make_sends_late() {
    // Two connections cannot carry the twenty requests due in each stall,
    // so the rest wait for a connection and leave late.
    let open = plan(
        Mode::Open { rate: 100.0 },
        Limit::Duration(Duration::from_secs(3)),
        2,
    );
    let result = run_against_stalls(open).await;
    let counts = &result.measurements.counts;

    assert!(counts.late_sends > 0, "{counts:?}");
    assert_eq!(counts.late_sends, counts.late_sends_busy, "{counts:?}");
    let lag_max = result.measurements.lag.max() as f64 / 1000.0;
    assert!(lag_max >= 100.0, "lag max {lag_max} ms");
    // Corrected latency counts the wait; service latency does not.
    let corrected = percentile_ms(&result.measurements.corrected, 0.95);
    let service = percentile_ms(&result.measurements.service, 0.95);
    assert!(corrected > service + 50.0, "{corrected} vs {service}");
    assert_eq!(counts.requests + result.unsent, 300);
}

#[tokio::test(start_paused = true)]
async fn request_limit_sends_exactly_that_many() {
    let receiver = Simulated {
        start: Instant::now(),
        service: 3 * MS,
        period: Duration::from_secs(3600),
        stall: MS,
    };
    let mut open = plan(Mode::Open { rate: 50.0 }, Limit::Requests(120), 4);
    open.warmup = Duration::from_secs(1);
    let result = drive(&open, Arc::new(receiver.clone()), &Control::new()).await;

    assert_eq!(result.measurements.counts.requests, 120);
    assert_eq!(result.warmup_requests, 50);
    assert_eq!(result.unsent, 0);
    // 120 requests at 50 per second span 2.4 s.
    assert_eq!(result.window, Duration::from_millis(2400));
    assert_eq!(result.measurements.counts.late_sends, 0);

    let closed = plan(Mode::Closed, Limit::Requests(77), 3);
    let result = drive(&closed, Arc::new(receiver), &Control::new()).await;
    assert_eq!(result.measurements.counts.requests, 77);
}

#[tokio::test(start_paused = true)]
async fn stop_ends_run_early() {
    let receiver = Simulated {
        start: Instant::now(),
        service: MS,
        period: Duration::from_secs(3600),
        stall: MS,
    };
    let control = Control::new();
    let stopper = control.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        stopper.stop();
    });
    let open = plan(
        Mode::Open { rate: 10.0 },
        Limit::Duration(Duration::from_secs(600)),
        2,
    );
    let result = drive(&open, Arc::new(receiver), &control).await;

    assert!(result.interrupted);
    assert_eq!(result.unsent, 0);
    let requests = result.measurements.counts.requests;
    assert!((19..=21).contains(&requests), "{requests}");
}
