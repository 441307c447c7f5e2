//! The open-loop schedule: when each request is meant to leave, and how to
//! judge the moment it really left.
//!
//! Request `k` (counted from 0) is due at `start + k / rate`. The offset is
//! computed from `k` each time rather than by adding an interval to the
//! previous send, so rounding never accumulates into drift over a long run.
//!
//! A request's *schedule lag* is how long after its intended time it
//! really left. A send is *on time* when its lag is at most the tolerance
//! (`--late-after`, 2 ms by default) and *late* otherwise. tokio's timer
//! has a resolution of 1 ms, so on an idle machine a send leaves up to
//! about 1 ms after its intended time; the default leaves room for that.

use std::time::Duration;

use tokio::time::Instant;

/// The default tolerance after which a send counts as late.
pub const DEFAULT_LATE_AFTER: Duration = Duration::from_millis(2);

/// A fixed-rate schedule of intended send times.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    start: Instant,
    rate: f64,
}

impl Schedule {
    /// Builds a schedule of `rate` requests per second whose request 0 is
    /// due at `start`. The caller checks that `rate` is positive and
    /// finite (see [`validate_rate`]).
    pub fn new(start: Instant, rate: f64) -> Schedule {
        Schedule { start, rate }
    }

    /// The moment request 0 is due.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// The requests per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Returns how long after the start request `index` is due.
    pub fn offset(&self, index: u64) -> Duration {
        offset_of(index, self.rate)
    }

    /// Returns the moment request `index` is due.
    pub fn intended(&self, index: u64) -> Instant {
        self.start + self.offset(index)
    }

    /// Returns the number of requests due before `elapsed` has passed
    /// since the start: the first index whose intended time is at or
    /// after `elapsed`.
    pub fn due_before(&self, elapsed: Duration) -> u64 {
        count_due_before(elapsed, self.rate)
    }
}

/// Returns the offset of request `index` at `rate` per second.
pub fn offset_of(index: u64, rate: f64) -> Duration {
    let seconds = index as f64 / rate;
    // A schedule past Duration's range is not reachable in a real run,
    // so saturate rather than panic.
    Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
}

/// Returns how many requests are due strictly before `elapsed` at `rate`
/// per second: `ceil(elapsed * rate)`, so that request `n` with offset
/// exactly `elapsed` is not counted.
pub fn count_due_before(elapsed: Duration, rate: f64) -> u64 {
    let exact = elapsed.as_secs_f64() * rate;
    let mut count = exact.ceil() as u64;
    // Guard against floating-point error at the boundary: the count is the
    // first index whose offset is not below `elapsed`.
    while count > 0 && offset_of(count - 1, rate) >= elapsed {
        count -= 1;
    }
    while offset_of(count, rate) < elapsed {
        count += 1;
    }
    count
}

/// Returns how long after `intended` the request really left; zero when
/// it left early or on the dot.
pub fn lag(intended: Instant, sent: Instant) -> Duration {
    sent.saturating_duration_since(intended)
}

/// Whether a send with this lag counts as late under `tolerance`.
pub fn is_late(lag: Duration, tolerance: Duration) -> bool {
    lag > tolerance
}

/// Releases requests as they fall due: the arithmetic of the pacer that
/// hands out permission to send.
///
/// The pacer counts how many requests are due at a given moment and
/// remembers how many it has released, so that a pacer that wakes late
/// releases everything that fell due meanwhile in one step.
#[derive(Debug, Clone, Copy)]
pub struct Pacer {
    rate: f64,
    released: u64,
    limit: u64,
}

impl Pacer {
    /// Creates a pacer for `rate` per second that releases at most
    /// `limit` requests.
    pub fn new(rate: f64, limit: u64) -> Pacer {
        Pacer {
            rate,
            released: 0,
            limit,
        }
    }

    /// Requests released so far.
    pub fn released(&self) -> u64 {
        self.released
    }

    /// Releases every request due at or before `elapsed` since the start
    /// and returns how many were newly released.
    pub fn release(&mut self, elapsed: Duration) -> u64 {
        let due = count_due_before(elapsed + Duration::from_nanos(1), self.rate).min(self.limit);
        let fresh = due.saturating_sub(self.released);
        self.released = self.released.max(due);
        fresh
    }

    /// When the next request falls due, counted from the start, or `None`
    /// once the limit is released.
    pub fn next_due(&self) -> Option<Duration> {
        (self.released < self.limit).then(|| offset_of(self.released, self.rate))
    }
}

/// Checks a `--rate` value: positive and finite.
pub fn validate_rate(rate: f64) -> Result<(), String> {
    if rate.is_finite() && rate > 0.0 {
        Ok(())
    } else {
        Err(format!(
            "invalid rate {rate}: give a positive number of messages per second such as 500"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_do_not_drift() {
        // 3 per second cannot be written exactly in binary; computing each
        // offset from the index keeps request 3 000 000 on the second.
        assert_eq!(offset_of(3_000_000, 3.0), Duration::from_secs(1_000_000));
        assert_eq!(offset_of(1, 4.0), Duration::from_millis(250));
        assert_eq!(offset_of(0, 7.0), Duration::ZERO);
    }

    #[test]
    fn pacer_releases_what_fell_due() {
        let mut pacer = Pacer::new(1000.0, 10);
        assert_eq!(pacer.release(Duration::ZERO), 1);
        assert_eq!(pacer.next_due(), Some(Duration::from_millis(1)));
        assert_eq!(pacer.release(Duration::from_micros(999)), 0);
        assert_eq!(pacer.release(Duration::from_millis(1)), 1);
        // Waking 3.5 ms late releases the three that fell due meanwhile.
        assert_eq!(pacer.release(Duration::from_micros(4500)), 3);
        assert_eq!(pacer.released(), 5);
        assert_eq!(pacer.release(Duration::from_secs(1)), 5);
        assert_eq!(pacer.next_due(), None);
    }

    #[test]
    fn due_before_excludes_boundary() {
        assert_eq!(count_due_before(Duration::from_secs(1), 10.0), 10);
        assert_eq!(count_due_before(Duration::from_millis(1001), 10.0), 11);
        assert_eq!(count_due_before(Duration::ZERO, 10.0), 0);
        assert_eq!(count_due_before(Duration::from_secs(2), 0.5), 1);
        assert_eq!(count_due_before(Duration::from_secs(1), 3.0), 3);
    }
}
