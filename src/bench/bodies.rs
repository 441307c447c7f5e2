//! The pool of message bodies a benchmark sends.
//!
//! Bodies are generated and serialized before the load starts, so the hot
//! path only picks the next one by index. Request `i` sends body
//! `i % pool.len()`.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use crate::generator::Generator;
use crate::payload::{ACTIONS, GeneralWebhook};

/// The largest number of events one generated General message may carry.
/// Mews caps batches "in the order of hundreds"; this leaves room to test
/// well past that without letting a typo allocate gigabytes.
pub const MAX_EVENTS_PER_MESSAGE: u32 = 10_000;

/// The default number of distinct bodies in the pool.
pub const DEFAULT_POOL_SIZE: usize = 256;

/// The pool stops growing once its bodies add up to this many bytes, so a
/// pool of large messages stays within a fixed memory budget. The pool
/// always keeps at least one body.
pub const POOL_BYTE_BUDGET: usize = 64 * 1024 * 1024;

/// How many events each General message carries: a fixed number or a
/// range drawn from per message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EventsPerMessage {
    /// The smallest count.
    pub min: u32,
    /// The largest count, included.
    pub max: u32,
}

impl EventsPerMessage {
    /// A fixed count.
    pub fn fixed(count: u32) -> EventsPerMessage {
        EventsPerMessage {
            min: count,
            max: count,
        }
    }
}

impl Default for EventsPerMessage {
    fn default() -> Self {
        EventsPerMessage::fixed(10)
    }
}

impl fmt::Display for EventsPerMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}..{}", self.min, self.max)
        }
    }
}

impl FromStr for EventsPerMessage {
    type Err = String;

    /// Parses `N` or `N..M` (both ends included); `N..=M` is accepted too.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let invalid = || {
            format!(
                "invalid events per message \"{text}\": write a count such as 10, or a range \
                 such as 1..50 (both ends included), between 1 and {MAX_EVENTS_PER_MESSAGE}"
            )
        };
        let parse_count = |part: &str| -> Result<u32, String> {
            let value: u32 = part.trim().parse().map_err(|_| invalid())?;
            if (1..=MAX_EVENTS_PER_MESSAGE).contains(&value) {
                Ok(value)
            } else {
                Err(invalid())
            }
        };

        let Some((low, high)) = trimmed.split_once("..") else {
            return parse_count(trimmed).map(EventsPerMessage::fixed);
        };
        let high = high.strip_prefix('=').unwrap_or(high);
        let (min, max) = (parse_count(low)?, parse_count(high)?);
        if min > max {
            return Err(format!(
                "invalid events per message \"{text}\": the range starts above its end; \
                 write the smaller count first, such as {max}..{min}"
            ));
        }
        Ok(EventsPerMessage { min, max })
    }
}

/// What the pool is filled with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodySource {
    /// General Webhooks with realistic events.
    General {
        /// Events per message.
        events: EventsPerMessage,
        /// Enterprise integrations the messages are spread over.
        enterprises: u32,
    },
    /// Integration Webhooks, each with an action drawn from the documented
    /// seven.
    Integration,
    /// One body given by the caller, sent byte for byte.
    Fixed(Bytes),
}

/// The pre-generated bodies and what they add up to.
#[derive(Debug, Clone)]
pub struct BodyPool {
    bodies: Vec<Bytes>,
    total_bytes: usize,
}

impl BodyPool {
    /// Generates up to `size` bodies from `source` with a generator
    /// seeded by `seed`. Generation stops early once the bodies exceed
    /// [`POOL_BYTE_BUDGET`]; a fixed body makes a pool of one.
    pub fn generate(source: &BodySource, size: usize, seed: u64) -> BodyPool {
        let size = size.max(1);
        let mut bodies = Vec::with_capacity(size.min(DEFAULT_POOL_SIZE * 4));
        let mut total_bytes = 0usize;
        let mut push = |body: Vec<u8>, bodies: &mut Vec<Bytes>| {
            total_bytes += body.len();
            bodies.push(Bytes::from(body));
            total_bytes < POOL_BYTE_BUDGET
        };

        match source {
            BodySource::Fixed(body) => {
                push(body.to_vec(), &mut bodies);
            }
            BodySource::General {
                events,
                enterprises,
            } => {
                // One generator per enterprise keeps every message's events
                // on one integration key, as Mews never mixes two.
                let mut generators: Vec<Generator> = (0..(*enterprises).max(1))
                    .map(|index| Generator::new(seed.wrapping_add(u64::from(index)), 1))
                    .collect();
                let mut rng = StdRng::seed_from_u64(seed);
                for index in 0..size {
                    let count = rng.random_range(events.min..=events.max) as usize;
                    let which = index % generators.len();
                    let generator = &mut generators[which];
                    let key = generator.keys()[0];
                    let drawn = generator.realistic(count);
                    let message =
                        GeneralWebhook::new(key, drawn.into_iter().map(|(_, e)| e).collect());
                    if !push(message.to_bytes(), &mut bodies) {
                        break;
                    }
                }
            }
            BodySource::Integration => {
                let mut generator = Generator::new(seed, 1);
                let mut rng = StdRng::seed_from_u64(seed);
                for _ in 0..size {
                    let action = ACTIONS.choose(&mut rng).copied().unwrap_or(ACTIONS[0]);
                    if !push(generator.integration(action).to_bytes(), &mut bodies) {
                        break;
                    }
                }
            }
        }
        BodyPool {
            bodies,
            total_bytes,
        }
    }

    /// The bodies, in the order requests use them.
    pub fn bodies(&self) -> &[Bytes] {
        &self.bodies
    }

    /// The number of distinct bodies; at least 1.
    pub fn len(&self) -> usize {
        self.bodies.len()
    }

    /// Whether the pool is empty; never true for a generated pool.
    pub fn is_empty(&self) -> bool {
        self.bodies.is_empty()
    }

    /// The bytes of all bodies together.
    pub fn total_bytes(&self) -> usize {
        self.total_bytes
    }

    /// The mean body size in bytes.
    pub fn mean_bytes(&self) -> f64 {
        if self.bodies.is_empty() {
            return 0.0;
        }
        self.total_bytes as f64 / self.bodies.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_spec_parses_count_and_ranges() {
        assert_eq!("7".parse(), Ok(EventsPerMessage::fixed(7)));
        assert_eq!(" 1..50 ".parse(), Ok(EventsPerMessage { min: 1, max: 50 }));
        assert_eq!("2..=3".parse(), Ok(EventsPerMessage { min: 2, max: 3 }));
        assert_eq!("4..4".parse(), Ok(EventsPerMessage::fixed(4)));
    }

    #[test]
    fn events_spec_rejects_bad_values() {
        for text in ["", "0", "x", "1..", "..3", "1..0", "-1", "10001", "1...3"] {
            let error = text.parse::<EventsPerMessage>().unwrap_err();
            assert!(error.contains(&format!("\"{text}\"")), "{text}: {error}");
        }
        let reversed = "9..2".parse::<EventsPerMessage>().unwrap_err();
        assert!(reversed.contains("2..9"), "{reversed}");
    }

    #[test]
    fn general_pool_respects_event_range() {
        let source = BodySource::General {
            events: EventsPerMessage { min: 2, max: 5 },
            enterprises: 3,
        };
        let pool = BodyPool::generate(&source, 40, 9);
        assert_eq!(pool.len(), 40);
        let mut seen = std::collections::BTreeSet::new();
        let mut enterprises = std::collections::BTreeSet::new();
        for body in pool.bodies() {
            let value: serde_json::Value = serde_json::from_slice(body).unwrap();
            let events = value["Events"].as_array().unwrap();
            assert!((2..=5).contains(&events.len()), "{}", events.len());
            seen.insert(events.len());
            enterprises.insert(value["EnterpriseId"].as_str().unwrap().to_string());
        }
        assert!(seen.len() > 1, "the count was never drawn differently");
        assert_eq!(enterprises.len(), 3);
        assert_eq!(
            pool.total_bytes(),
            pool.bodies().iter().map(Bytes::len).sum::<usize>()
        );
    }

    #[test]
    fn same_seed_same_pool() {
        let source = BodySource::General {
            events: EventsPerMessage { min: 1, max: 9 },
            enterprises: 2,
        };
        let first = BodyPool::generate(&source, 10, 5);
        let second = BodyPool::generate(&source, 10, 5);
        // Integration bodies carry the current time, General ones do not.
        assert_eq!(first.bodies(), second.bodies());
    }

    #[test]
    fn integration_pool_has_actions() {
        let pool = BodyPool::generate(&BodySource::Integration, 30, 1);
        let mut actions = std::collections::BTreeSet::new();
        for body in pool.bodies() {
            let value: serde_json::Value = serde_json::from_slice(body).unwrap();
            actions.insert(value["Action"].as_str().unwrap().to_string());
            assert!(value["Data"]["Integration"]["Id"].is_string());
        }
        assert!(actions.len() > 2, "{actions:?}");
    }

    #[test]
    fn fixed_body_makes_pool_of_one() {
        let body = Bytes::from_static(b"{\"x\":1}");
        let pool = BodyPool::generate(&BodySource::Fixed(body.clone()), 100, 1);
        assert_eq!(pool.bodies(), &[body]);
    }
}
