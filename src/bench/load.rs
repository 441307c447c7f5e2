//! Load generation: the workers that send requests, in closed or open
//! loop, and the collector that drains their records once a second.
//!
//! Each of the `concurrency` workers owns one connection and sends one
//! request at a time.
//!
//! - **Closed loop**: a worker sends its next request as soon as the last
//!   one ended. The receiver's speed sets the rate, so a receiver that
//!   stalls also stops the load, and the few requests caught in the stall
//!   are all the statistics see of it.
//! - **Open loop** (`--rate`): request `k` is due at `start + k / rate`
//!   whatever happened before. A pacer releases each request when it
//!   falls due, and the next free worker sends it. When every worker is
//!   busy, released requests wait and go out late, as soon as a worker
//!   frees up. Latency is measured from the intended send time, so the
//!   wait shows in the percentiles instead of disappearing (the
//!   correction for coordinated omission). The service latency, from the
//!   real send time, is kept beside it.
//!
//! The pacer sleeps on a thread of its own with the operating system's
//! timer, whose lag is tens of microseconds where tokio's 1 ms timer would
//! add up to a millisecond to every request ([`Pacing`]). The workers run
//! on `threads` threads, each with a single-threaded tokio runtime.
//!
//! Warmup requests are sent like the others but never recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, TryAcquireError, watch};
use tokio::time::Instant;

use super::client::{Connection, Transport};
use super::pacer::{PacerJob, start_pacer};
use super::schedule::{Pacer, Schedule, count_due_before};
use super::stats::{Collector, Live, Measurements, RecordRules, Recorder, Sample};

/// The pacing of requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Each worker sends as soon as its last request ended.
    Closed,
    /// Requests are due at a fixed rate, whatever the receiver does.
    Open {
        /// Requests per second.
        rate: f64,
    },
}

/// When a run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// After this long, counted from the end of the warmup.
    Duration(Duration),
    /// After this many measured requests.
    Requests(u64),
}

/// The way the open-loop pacer waits for the next request to fall due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// A thread of its own, sleeping with the operating system's timer:
    /// lag of tens of microseconds. The default.
    Thread,
    /// A tokio task on tokio's timer: lag of up to about 1 ms, but it
    /// follows tokio's paused clock, for tests.
    Timer,
}

/// Everything the workers need to know about the load.
#[derive(Debug, Clone, Copy)]
pub struct LoadPlan {
    /// Closed or open loop.
    pub mode: Mode,
    /// When to stop.
    pub limit: Limit,
    /// How long requests are sent without being recorded first.
    pub warmup: Duration,
    /// Workers, each with one connection and one request in flight.
    pub concurrency: usize,
    /// The rules samples are judged by.
    pub rules: RecordRules,
    /// The way the open-loop pacer waits.
    pub pacing: Pacing,
    /// Threads the workers are spread over, each with its own
    /// single-threaded runtime; 0 runs them on the calling runtime, which
    /// tests on tokio's paused clock need.
    pub threads: usize,
}

/// Starts and observes a run from outside: stop it early, watch its
/// progress.
#[derive(Debug, Clone)]
pub struct Control {
    stop: Arc<watch::Sender<bool>>,
    live: Arc<watch::Sender<Live>>,
}

impl Control {
    /// Creates a control for one run.
    pub fn new() -> Control {
        Control {
            stop: Arc::new(watch::channel(false).0),
            live: Arc::new(watch::channel(Live::default()).0),
        }
    }

    /// Asks the run to stop: no new request is sent, requests in flight
    /// finish (within the deadline) and are counted.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Returns whether [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Returns a receiver of the live view, updated once a second.
    pub fn subscribe(&self) -> watch::Receiver<Live> {
        self.live.subscribe()
    }
}

impl Default for Control {
    fn default() -> Self {
        Control::new()
    }
}

/// The measurements of a run and the window they cover.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// The histograms, counters and time series.
    pub measurements: Measurements,
    /// From the start of measurement to the end of the last counted
    /// request.
    pub window: Duration,
    /// Requests sent during the warmup, not counted.
    pub warmup_requests: u64,
    /// Open loop with a duration: measured requests the schedule called
    /// for that never went out, because the window ended before a worker
    /// was free. Zero otherwise.
    pub unsent: u64,
    /// Whether the run was stopped early through [`Control::stop`].
    pub interrupted: bool,
}

/// The state every worker shares.
struct Shared {
    recorder: Recorder,
    origin: Instant,
    measure_start: Instant,
    /// The end of the window for a duration-limited run.
    end: Option<Instant>,
    /// Closed loop: requests taken (for body selection). Open loop: the
    /// next schedule index.
    next: AtomicU64,
    /// Measured requests taken so far.
    measured_taken: AtomicU64,
    /// Measured requests the run may send, for a count-limited run.
    measured_budget: Option<u64>,
    warmup_requests: AtomicU64,
    /// The latest end of a counted request, in nanoseconds since `origin`.
    last_finish: AtomicU64,
}

impl Shared {
    fn note_finish(&self, finished: Instant) {
        let nanos = finished.saturating_duration_since(self.origin).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        self.last_finish.fetch_max(nanos, Ordering::Relaxed);
    }
}

/// The open-loop schedule and its limits.
#[derive(Debug, Clone, Copy)]
struct OpenPlan {
    schedule: Schedule,
    /// Indices below this are warmup.
    warmup_indices: u64,
    /// Indices at or above this are never sent.
    end_index: u64,
    /// The lag after which a send counts as late.
    late_after: Duration,
}

/// Lays out the open-loop schedule of `plan`, starting at `origin`; `None`
/// in closed loop.
fn open_plan(plan: &LoadPlan, origin: Instant) -> Option<OpenPlan> {
    let Mode::Open { rate } = plan.mode else {
        return None;
    };
    let warmup_indices = count_due_before(plan.warmup, rate);
    let measured = match plan.limit {
        Limit::Duration(duration) => count_due_before(duration, rate),
        Limit::Requests(count) => count,
    };
    Some(OpenPlan {
        schedule: Schedule::new(origin, rate),
        warmup_indices,
        end_index: warmup_indices.saturating_add(measured),
        late_after: plan.rules.late_after,
    })
}

/// Runs the load against `transport`, request `i` sending body `i` of the
/// pool, and returns what was measured.
pub async fn drive<T: Transport>(
    plan: &LoadPlan,
    transport: Arc<T>,
    control: &Control,
) -> LoadResult {
    let origin = Instant::now();
    let concurrency = plan.concurrency.max(1);
    // Two shards per thread keep workers of different threads apart, so
    // a lock is only ever taken by one thread at a time.
    let shard_threads = plan.threads.max(
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
    );
    let shards = concurrency.min(shard_threads * 2);

    // The open-loop schedule fixes the start of measurement at the
    // intended time of the first measured request.
    let open = open_plan(plan, origin);
    let measure_start = match &open {
        Some(open) => open.schedule.intended(open.warmup_indices),
        None => origin + plan.warmup,
    };
    let end = match plan.limit {
        Limit::Duration(duration) => Some(measure_start + duration),
        Limit::Requests(_) => None,
    };
    let measured_budget = match plan.limit {
        Limit::Requests(count) => Some(count),
        Limit::Duration(_) => None,
    };

    let shared = Arc::new(Shared {
        recorder: Recorder::new(shards, plan.rules),
        origin,
        measure_start,
        end,
        next: AtomicU64::new(0),
        measured_taken: AtomicU64::new(0),
        measured_budget,
        warmup_requests: AtomicU64::new(0),
        last_finish: AtomicU64::new(0),
    });

    let (done_tx, done_rx) = watch::channel(false);
    let collector = tokio::spawn(collect(
        shared.clone(),
        open.is_some(),
        done_rx,
        control.live.clone(),
    ));
    // Open loop: the pacer adds one permit per request as it falls due,
    // and a worker takes a permit before each send.
    let permits = Arc::new(Semaphore::new(0));
    let halt = Arc::new(AtomicBool::new(false));
    let pacer = open.map(|open| {
        let job = PacerJob {
            pacer: Pacer::new(open.schedule.rate(), open.end_index),
            origin,
            // Workers may still send within the on-time tolerance after
            // the window ends, so the permits stay open that long.
            end: end.map(|end| end + open.late_after),
            concurrency,
            permits: permits.clone(),
            stop: control.stop.clone(),
            halt: halt.clone(),
        };
        start_pacer(job, plan.pacing)
    });

    let spawner = WorkerSpawner {
        transport,
        shared: shared.clone(),
        open,
        permits: permits.clone(),
        stop: control.stop.clone(),
    };
    let threads = if spawner.transport.shares_runtime() {
        0
    } else {
        plan.threads.min(concurrency)
    };
    if threads == 0 {
        spawner.run_here(0..concurrency).await;
    } else {
        spawner.run_on_threads(threads, concurrency).await;
    }
    halt.store(true, Ordering::Relaxed);
    permits.close();
    if let Some(pacer) = pacer {
        pacer.join().await;
    }
    done_tx.send_replace(true);

    // The window lasts at least as long as the run was planned to, so a
    // fast receiver whose last response came a moment after the last send
    // does not shrink it below the schedule.
    let planned_end = match (open, shared.end) {
        _ if control.is_stopped() => None,
        (_, Some(end)) => Some(end),
        (Some(open), None) => Some(open.schedule.intended(open.end_index)),
        (None, None) => None,
    };
    let window = finish_window(&shared, planned_end);
    let mut collector = match collector.await {
        Ok(collector) => collector,
        Err(error) => {
            tracing::error!(%error, "the bench collector failed");
            Collector::new(open.is_some())
        }
    };
    collector.drain(&shared.recorder, window);
    collector.close_last_bucket(window);

    let unsent = match (open, end) {
        (Some(open), Some(_)) if !control.is_stopped() => {
            let scheduled = open.end_index - open.warmup_indices;
            scheduled.saturating_sub(shared.measured_taken.load(Ordering::Relaxed))
        }
        _ => 0,
    };
    LoadResult {
        measurements: collector.finish(),
        window,
        warmup_requests: shared.warmup_requests.load(Ordering::Relaxed),
        unsent,
        interrupted: control.is_stopped(),
    }
}

/// Returns the measurement window: from its start to the end of the last
/// counted request or the planned end, whichever is later. It is zero when
/// nothing was counted.
fn finish_window(shared: &Shared, planned_end: Option<Instant>) -> Duration {
    let last = shared.last_finish.load(Ordering::Relaxed);
    if last == 0 {
        return Duration::ZERO;
    }
    let last = shared.origin + Duration::from_nanos(last);
    let end = planned_end.map_or(last, |planned| planned.max(last));
    end.saturating_duration_since(shared.measure_start)
}

/// Starts the workers, on the calling runtime or on threads of their own.
struct WorkerSpawner<T: Transport> {
    transport: Arc<T>,
    shared: Arc<Shared>,
    open: Option<OpenPlan>,
    permits: Arc<Semaphore>,
    stop: Arc<watch::Sender<bool>>,
}

impl<T: Transport> WorkerSpawner<T> {
    /// Runs the given workers as tasks of the current runtime until they
    /// are all done.
    async fn run_here(&self, workers: impl Iterator<Item = usize>) {
        let mut tasks = tokio::task::JoinSet::new();
        for worker in workers {
            let connection = self.transport.open();
            let shared = self.shared.clone();
            let stop = self.stop.subscribe();
            match self.open {
                Some(open) => tasks.spawn(open_worker(
                    worker,
                    connection,
                    shared,
                    open,
                    self.permits.clone(),
                    stop,
                )),
                None => tasks.spawn(closed_worker(worker, connection, shared, stop)),
            };
        }
        while let Some(joined) = tasks.join_next().await {
            if let Err(error) = joined {
                tracing::error!(%error, "a bench worker failed");
            }
        }
    }

    /// Spreads the workers over `threads` threads, each running its own
    /// single-threaded runtime, and waits for them all.
    ///
    /// A single-threaded runtime has no work stealing and no hand-off
    /// between threads, so on a fast receiver it saves a measurable share
    /// of the client's CPU time per request. A thread per CPU still uses
    /// every CPU.
    async fn run_on_threads(self, threads: usize, concurrency: usize) {
        let spawner = Arc::new(self);
        let mut handles = Vec::with_capacity(threads);
        for thread in 0..threads {
            let for_thread = spawner.clone();
            let workers = (thread..concurrency).step_by(threads);
            let spawned = std::thread::Builder::new()
                .name(format!("mewshook-load-{thread}"))
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    runtime.block_on(for_thread.run_here(workers));
                    Ok::<(), std::io::Error>(())
                });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(error) => {
                    tracing::warn!(%error, thread, "failed to start a load thread; running its workers here");
                    spawner
                        .run_here((thread..concurrency).step_by(threads))
                        .await;
                }
            }
        }
        for handle in handles {
            let joined = tokio::task::spawn_blocking(move || handle.join()).await;
            match joined {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => {
                    tracing::error!(%error, "a load thread could not start its runtime");
                }
                _ => tracing::error!("a load thread failed"),
            }
        }
    }
}

/// Runs a closed-loop worker: send, wait for the outcome, send again.
async fn closed_worker<C: Connection>(
    worker: usize,
    mut connection: C,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let sent = Instant::now();
        if shared.end.is_some_and(|end| sent >= end) {
            return;
        }
        let measured = sent >= shared.measure_start;
        if measured && !take_budget(&shared) {
            return;
        }

        let body = shared.next.fetch_add(1, Ordering::Relaxed) as usize;
        let exchange = connection.exchange(body).await;
        let finished = Instant::now();
        if !measured {
            shared.warmup_requests.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let sample = Sample {
            intended: None,
            waited_for_connection: false,
            sent,
            finished,
            exchange,
        };
        shared.recorder.record(worker, &sample);
        shared.note_finish(finished);
    }
}

/// Takes one measured request from the budget of a count-limited run;
/// false once the budget is spent.
fn take_budget(shared: &Shared) -> bool {
    let taken = shared.measured_taken.fetch_add(1, Ordering::Relaxed);
    match shared.measured_budget {
        Some(budget) => taken < budget,
        None => true,
    }
}

/// Runs an open-loop worker: take the next released request, send it at
/// once, and measure from the time it was due.
async fn open_worker<C: Connection>(
    worker: usize,
    mut connection: C,
    shared: Arc<Shared>,
    open: OpenPlan,
    permits: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
) {
    loop {
        // A permit already waiting means the request fell due while this
        // worker was busy: if it is late, it waited for a connection.
        let waited_for_connection = match permits.try_acquire() {
            Ok(permit) => {
                permit.forget();
                true
            }
            Err(TryAcquireError::NoPermits) => match permits.acquire().await {
                Ok(permit) => {
                    permit.forget();
                    false
                }
                Err(_closed) => return,
            },
            Err(TryAcquireError::Closed) => return,
        };
        if *stop.borrow() {
            return;
        }
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        let sent = Instant::now();
        // Past the window, a request that could not go out in time is
        // left unsent, and counted as such. The on-time tolerance extends
        // the window, because a request due in its last microseconds
        // leaves after its end by the pacer's normal lag.
        let closed = shared.end.is_some_and(|end| sent >= end + open.late_after);
        if index >= open.end_index || closed {
            return;
        }
        let intended = open.schedule.intended(index);
        let measured = index >= open.warmup_indices;
        if measured {
            shared.measured_taken.fetch_add(1, Ordering::Relaxed);
        }

        let exchange = connection.exchange(index as usize).await;
        let finished = Instant::now();
        if !measured {
            shared.warmup_requests.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let sample = Sample {
            intended: Some(intended),
            waited_for_connection,
            sent,
            finished,
            exchange,
        };
        shared.recorder.record(worker, &sample);
        shared.note_finish(finished);
    }
}

/// Runs the collector: publishes the live view during the warmup, then
/// drains the recorder once a second until the workers are done.
async fn collect(
    shared: Arc<Shared>,
    open_loop: bool,
    mut done: watch::Receiver<bool>,
    live: Arc<watch::Sender<Live>>,
) -> Collector {
    let mut collector = Collector::new(open_loop);

    while Instant::now() < shared.measure_start {
        live.send_replace(Live {
            warming_up: true,
            elapsed: shared.origin.elapsed(),
            ..Live::default()
        });
        let wake = (Instant::now() + Duration::from_secs(1)).min(shared.measure_start);
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = done.wait_for(|done| *done) => return collector,
        }
    }

    let tick = Duration::from_secs(1);
    let mut ticker = tokio::time::interval_at(shared.measure_start + tick, tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_tick = shared.measure_start;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = done.wait_for(|done| *done) => return collector,
        }
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(shared.measure_start);
        collector.drain(&shared.recorder, elapsed);
        live.send_replace(collector.live(elapsed, now.saturating_duration_since(last_tick)));
        last_tick = now;
    }
}
