//! The open-loop pacer: releases each request when it falls due, by
//! adding one permit to a semaphore that the workers take from.
//!
//! The pacer runs on a thread of its own and sleeps with the operating
//! system's timer, which on Linux overshoots by tens of microseconds.
//! tokio's timer has a resolution of 1 ms, which would add up to about
//! 1 ms of lag to every open-loop request and swamp the latency of a fast
//! receiver. [`Pacing::Timer`] uses tokio's timer anyway, so that tests
//! can run the schedule on tokio's paused clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use super::load::Pacing;
use super::schedule::Pacer;

/// The pacer's inputs.
#[derive(Clone)]
pub(super) struct PacerJob {
    pub(super) pacer: Pacer,
    pub(super) origin: Instant,
    /// When the permits close, for a duration-limited run: the end of the
    /// window plus the on-time tolerance.
    pub(super) end: Option<Instant>,
    pub(super) concurrency: usize,
    pub(super) permits: Arc<Semaphore>,
    pub(super) stop: Arc<watch::Sender<bool>>,
    /// Set once the workers are done, so the pacer quits too.
    pub(super) halt: Arc<AtomicBool>,
}

impl PacerJob {
    fn halted(&self) -> bool {
        *self.stop.borrow() || self.halt.load(Ordering::Relaxed)
    }

    /// Releases what fell due by `elapsed`; true when everything is
    /// released.
    fn release(&mut self, elapsed: Duration) -> bool {
        let fresh = self.pacer.release(elapsed);
        // A receiver that never responds lets permits pile up. Past
        // tokio's limit the surplus could not be sent before the run ends
        // anyway, and it is counted as unsent.
        let room = Semaphore::MAX_PERMITS.saturating_sub(self.permits.available_permits());
        let fresh = usize::try_from(fresh).unwrap_or(usize::MAX).min(room);
        if fresh > 0 {
            self.permits.add_permits(fresh);
        }
        self.pacer.next_due().is_none()
    }

    /// Ends the release: a duration-limited run closes the permits at the
    /// end of the window, so that requests still waiting then stay
    /// unsent. A count-limited run adds one spare permit per worker
    /// instead, so every worker wakes, finds the schedule spent, and
    /// stops.
    fn finish(&self) {
        match self.end {
            Some(_) => self.permits.close(),
            None => self
                .permits
                .add_permits(self.concurrency.min(Semaphore::MAX_PERMITS)),
        }
    }
}

/// The maximum time the pacer sleeps before it checks for a stop.
const PACER_POLL: Duration = Duration::from_millis(20);

/// A running pacer.
pub(super) enum PacerHandle {
    Thread(std::thread::JoinHandle<()>),
    Task(tokio::task::JoinHandle<()>),
}

impl PacerHandle {
    pub(super) async fn join(self) {
        match self {
            PacerHandle::Thread(thread) => {
                let joined = tokio::task::spawn_blocking(move || thread.join()).await;
                if !matches!(joined, Ok(Ok(()))) {
                    tracing::error!("the bench pacer thread failed");
                }
            }
            PacerHandle::Task(task) => {
                if let Err(error) = task.await {
                    tracing::error!(%error, "the bench pacer task failed");
                }
            }
        }
    }
}

pub(super) fn start_pacer(job: PacerJob, pacing: Pacing) -> PacerHandle {
    match pacing {
        Pacing::Thread => {
            let fallback = job.clone();
            let spawned = std::thread::Builder::new()
                .name("mewshook-pacer".to_string())
                .spawn(move || pace_on_thread(job));
            match spawned {
                Ok(thread) => PacerHandle::Thread(thread),
                Err(error) => {
                    tracing::warn!(%error, "failed to start the pacer thread; using tokio's timer");
                    PacerHandle::Task(tokio::spawn(pace_on_timer(fallback)))
                }
            }
        }
        Pacing::Timer => PacerHandle::Task(tokio::spawn(pace_on_timer(job))),
    }
}

fn pace_on_thread(mut job: PacerJob) {
    let origin = job.origin.into_std();
    loop {
        if job.halted() {
            job.permits.close();
            return;
        }
        if job.release(origin.elapsed()) {
            break;
        }
        if let Some(next) = job.pacer.next_due() {
            let wait = next.saturating_sub(origin.elapsed()).min(PACER_POLL);
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
        }
    }
    if let Some(end) = job.end {
        let end = end.into_std();
        while !job.halted() && std::time::Instant::now() < end {
            std::thread::sleep(
                end.saturating_duration_since(std::time::Instant::now())
                    .min(PACER_POLL),
            );
        }
    }
    job.finish();
}

async fn pace_on_timer(mut job: PacerJob) {
    loop {
        if job.halted() {
            job.permits.close();
            return;
        }
        if job.release(job.origin.elapsed()) {
            break;
        }
        if let Some(next) = job.pacer.next_due() {
            let wake = (job.origin + next).min(Instant::now() + PACER_POLL);
            tokio::time::sleep_until(wake).await;
        }
    }
    if let Some(end) = job.end {
        while !job.halted() && Instant::now() < end {
            tokio::time::sleep_until(end.min(Instant::now() + PACER_POLL)).await;
        }
    }
    job.finish();
}
