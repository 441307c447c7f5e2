//! When a failed message is sent again, and when it is given up.
//!
//! Mews documents only that a failed message is "re-sent after a few minutes"
//! and discarded after "repeated attempts". The default schedule below is
//! therefore an emulation choice, not a Mews fact: retries after 2, 5, 10
//! and 30 minutes, five attempts in all, so a receiver that is down for
//! most of an hour still gets its messages, and one that stays down longer
//! loses them, as it would with Mews.

use std::time::Duration;

use thiserror::Error;

/// The default delays between attempts, in Mews time.
pub const DEFAULT_DELAYS: [Duration; 4] = [
    Duration::from_secs(2 * 60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(30 * 60),
];

/// The default number of attempts, the first one included.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// The retry schedule and the time scale applied to it.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delays before the second, third, ... attempt. When there are more
    /// attempts than delays, the last delay repeats.
    pub delays: Vec<Duration>,
    /// Attempts per message, the first one included; at least 1.
    pub max_attempts: u32,
    /// Factor applied to every Mews-time delay, so that a schedule of
    /// minutes can run in milliseconds. The attempt deadline is real time
    /// and never scaled.
    pub time_scale: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            delays: DEFAULT_DELAYS.to_vec(),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            time_scale: 1.0,
        }
    }
}

/// An invalid retry setting.
#[derive(Debug, Error, PartialEq)]
pub enum RetryError {
    /// A delay in the list did not parse.
    #[error("invalid retry delay \"{value}\": {reason}; write durations like 2m,5m,30s")]
    Delay {
        /// The text as given.
        value: String,
        /// The reason it did not parse.
        reason: String,
    },
    /// The list had no delays although retries are allowed.
    #[error("--retry-delays is empty; give at least one delay, for example 2m")]
    NoDelays,
    /// Zero attempts would never send anything.
    #[error("--max-attempts must be at least 1, got 0")]
    ZeroAttempts,
    /// The time scale is not a positive finite number.
    #[error("invalid --time-scale {0}: use a positive number, for example 0.001")]
    TimeScale(f64),
}

impl RetryPolicy {
    /// Checks that the policy can run.
    pub fn validate(&self) -> Result<(), RetryError> {
        if self.max_attempts == 0 {
            return Err(RetryError::ZeroAttempts);
        }
        if self.max_attempts > 1 && self.delays.is_empty() {
            return Err(RetryError::NoDelays);
        }
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return Err(RetryError::TimeScale(self.time_scale));
        }
        Ok(())
    }

    /// Returns the real-time wait before attempt number `next` (2 for the first
    /// retry), or `None` when `next` is past the last attempt and the
    /// message is discarded.
    pub fn delay_before(&self, next: u32) -> Option<Duration> {
        if next < 2 || next > self.max_attempts {
            return None;
        }
        let index = (next as usize - 2).min(self.delays.len().checked_sub(1)?);
        Some(scale(self.delays[index], self.time_scale))
    }
}

/// Multiplies a Mews-time duration by the time scale.
pub fn scale(duration: Duration, time_scale: f64) -> Duration {
    Duration::try_from_secs_f64(duration.as_secs_f64() * time_scale).unwrap_or(Duration::MAX)
}

/// Parses a comma-separated list of durations such as `2m,5m,30s`.
pub fn parse_delays(text: &str) -> Result<Vec<Duration>, RetryError> {
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            humantime::parse_duration(part).map_err(|error| RetryError::Delay {
                value: part.to_string(),
                reason: error.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_runs_five_attempts() {
        let policy = RetryPolicy::default();
        let delays: Vec<_> = (2..=6).map(|next| policy.delay_before(next)).collect();
        assert_eq!(
            delays,
            vec![
                Some(Duration::from_secs(120)),
                Some(Duration::from_secs(300)),
                Some(Duration::from_secs(600)),
                Some(Duration::from_secs(1800)),
                None
            ]
        );
    }

    #[test]
    fn last_delay_repeats() {
        let policy = RetryPolicy {
            delays: vec![Duration::from_secs(1), Duration::from_secs(2)],
            max_attempts: 5,
            time_scale: 1.0,
        };
        assert_eq!(policy.delay_before(4), Some(Duration::from_secs(2)));
        assert_eq!(policy.delay_before(5), Some(Duration::from_secs(2)));
        assert_eq!(policy.delay_before(6), None);
    }

    #[test]
    fn time_scale_shrinks_delays() {
        let policy = RetryPolicy {
            time_scale: 0.001,
            ..RetryPolicy::default()
        };
        assert_eq!(policy.delay_before(2), Some(Duration::from_millis(120)));
    }

    #[test]
    fn single_attempt_never_retries() {
        let policy = RetryPolicy {
            delays: vec![],
            max_attempts: 1,
            time_scale: 1.0,
        };
        assert_eq!(policy.validate(), Ok(()));
        assert_eq!(policy.delay_before(2), None);
    }

    #[test]
    fn invalid_settings_are_rejected() {
        let zero = RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        };
        assert_eq!(zero.validate(), Err(RetryError::ZeroAttempts));
        let negative = RetryPolicy {
            time_scale: -1.0,
            ..RetryPolicy::default()
        };
        assert_eq!(negative.validate(), Err(RetryError::TimeScale(-1.0)));
        assert!(
            matches!(parse_delays("2m,soon"), Err(RetryError::Delay { value, .. }) if value == "soon")
        );
        assert_eq!(
            parse_delays("2m, 30s").unwrap(),
            vec![Duration::from_secs(120), Duration::from_secs(30)]
        );
    }
}
