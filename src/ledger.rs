//! The account of every event and message the sender accepted.
//!
//! Each message is opened once, gets one record per attempt, and is closed
//! exactly once as delivered or discarded. The invariant checked by
//! [`Ledger::check`] is conservation: accepted = delivered + discarded +
//! pending, for messages and for the events they carry. With full records
//! on, each message keeps its attempts for the JSON output; with them off
//! (a long-running service) only counters and the open messages are kept,
//! so memory stays bounded by what is in flight.

use std::collections::HashMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use thiserror::Error;
use uuid::Uuid;

use crate::delivery::{Attempt, Outcome, duration_ms};
use crate::payload::WebhookKind;

/// The sender's number for a message, unique within one sender.
pub type MessageId = u64;

/// The state of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    /// Accepted, not yet delivered or discarded.
    Pending,
    /// An attempt got a 2xx.
    Delivered,
    /// The last attempt failed, so the message was given up.
    Discarded,
}

/// The facts about a message recorded when it is created.
#[derive(Debug, Clone, Serialize)]
pub struct MessageMeta {
    /// General or Integration.
    pub kind: WebhookKind,
    /// The enterprise of a General message.
    pub enterprise_id: Option<Uuid>,
    /// The integration of a General message.
    pub integration_id: Option<Uuid>,
    /// The action of an Integration message.
    pub action: Option<String>,
    /// General events carried; 1 for an Integration message, which is one
    /// event by definition.
    pub events: usize,
    /// The body size in bytes.
    pub body_bytes: usize,
}

/// One attempt as the ledger keeps it.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    /// 1 for the first attempt.
    pub number: u32,
    /// When the attempt started, measured from the sender's start.
    #[serde(rename = "started_at_ms", with = "duration_ms")]
    pub started_at: Duration,
    /// What happened.
    #[serde(flatten)]
    pub attempt: Attempt,
}

/// A message and all its attempts.
#[derive(Debug, Clone, Serialize)]
pub struct MessageRecord {
    /// The sender's number for the message.
    pub id: MessageId,
    /// The message's kind, keys and size.
    #[serde(flatten)]
    pub meta: MessageMeta,
    /// Its state.
    pub state: MessageState,
    /// Every attempt, in order.
    pub attempts: Vec<AttemptRecord>,
}

/// Running totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LedgerCounts {
    /// Messages opened.
    pub messages_accepted: u64,
    /// Messages that got a 2xx.
    pub messages_delivered: u64,
    /// Messages given up after the last attempt.
    pub messages_discarded: u64,
    /// Messages still in flight or waiting for a retry.
    pub messages_pending: u64,
    /// Events carried by the accepted messages.
    pub events_accepted: u64,
    /// Events carried by delivered messages.
    pub events_delivered: u64,
    /// Events carried by discarded messages.
    pub events_discarded: u64,
    /// Events carried by pending messages.
    pub events_pending: u64,
    /// Attempts made.
    pub attempts: u64,
    /// Messages delivered by their first attempt.
    pub delivered_first_attempt: u64,
    /// Messages delivered by a retry.
    pub delivered_after_retry: u64,
    /// Attempts that got a non-2xx status.
    pub attempts_rejected: u64,
    /// Attempts that hit the deadline.
    pub attempts_timed_out: u64,
    /// Attempts that got no HTTP response.
    pub attempts_connection_failed: u64,
    /// Attempts that ended on a redirect Mews does not follow.
    pub attempts_redirect_not_followed: u64,
    /// Messages still pending when the sender shut down, counted among
    /// the discarded.
    pub discarded_at_shutdown: u64,
}

/// A broken ledger invariant: a bug in the sender, never the receiver's
/// fault.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum LedgerError {
    /// Counts that should add up do not.
    #[error(
        "ledger does not balance for {what}: accepted {accepted} != delivered {delivered} + discarded {discarded} + pending {pending}"
    )]
    Unbalanced {
        /// "messages" or "events".
        what: &'static str,
        /// Accepted.
        accepted: u64,
        /// Delivered.
        delivered: u64,
        /// Discarded.
        discarded: u64,
        /// Pending.
        pending: u64,
    },
    /// A message was closed twice or never opened.
    #[error("message {0} was closed twice or never opened")]
    UnknownMessage(MessageId),
}

/// Latency percentiles of attempts that got an HTTP response.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Attempts measured.
    pub count: u64,
    /// Fastest, in milliseconds.
    pub min_ms: f64,
    /// Median, in milliseconds.
    pub median_ms: f64,
    /// 95th percentile, in milliseconds.
    pub p95_ms: f64,
    /// Slowest, in milliseconds.
    pub max_ms: f64,
}

/// The account itself.
#[derive(Debug)]
pub struct Ledger {
    counts: LedgerCounts,
    /// Messages not yet closed: their event count, for the pending totals.
    open: HashMap<MessageId, usize>,
    /// Every message with its attempts, when full records are kept.
    records: Option<Vec<MessageRecord>>,
    /// Attempt latency in microseconds, up to one hour.
    latency: Histogram<u64>,
    errors: Vec<LedgerError>,
    next_id: MessageId,
}

impl Ledger {
    /// Builds an empty ledger; `keep_records` keeps every message and
    /// attempt for the final report.
    pub fn new(keep_records: bool) -> Ledger {
        Ledger {
            counts: LedgerCounts::default(),
            open: HashMap::new(),
            records: keep_records.then(Vec::new),
            latency: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("constant histogram bounds are valid"),
            errors: Vec::new(),
            next_id: 1,
        }
    }

    /// Opens a message and returns its id.
    pub fn open(&mut self, meta: MessageMeta) -> MessageId {
        let id = self.next_id;
        self.next_id += 1;
        self.counts.messages_accepted += 1;
        self.counts.messages_pending += 1;
        self.counts.events_accepted += meta.events as u64;
        self.counts.events_pending += meta.events as u64;
        self.open.insert(id, meta.events);
        if let Some(records) = &mut self.records {
            records.push(MessageRecord {
                id,
                meta,
                state: MessageState::Pending,
                attempts: Vec::new(),
            });
        }
        id
    }

    /// Records one attempt of message `id`.
    pub fn record_attempt(&mut self, id: MessageId, record: AttemptRecord) {
        self.counts.attempts += 1;
        match &record.attempt.outcome {
            Outcome::Delivered { .. } => {}
            Outcome::Rejected { .. } => self.counts.attempts_rejected += 1,
            Outcome::TimedOut { .. } => self.counts.attempts_timed_out += 1,
            Outcome::ConnectionFailed { .. } => self.counts.attempts_connection_failed += 1,
            Outcome::RedirectNotFollowed { .. } => self.counts.attempts_redirect_not_followed += 1,
        }
        if record.attempt.outcome.status().is_some() {
            let micros = record.attempt.total.as_micros().clamp(1, 3_600_000_000) as u64;
            // The value is clamped into the histogram's range, so it fits.
            let _ = self.latency.record(micros);
        }
        if let Some(message) = self.record_mut(id) {
            message.attempts.push(record);
        }
    }

    /// Closes message `id` as delivered by attempt `attempt_number`.
    pub fn mark_delivered(&mut self, id: MessageId, attempt_number: u32) {
        let Some(events) = self.close(id, MessageState::Delivered) else {
            return;
        };
        self.counts.messages_delivered += 1;
        self.counts.events_delivered += events as u64;
        if attempt_number <= 1 {
            self.counts.delivered_first_attempt += 1;
        } else {
            self.counts.delivered_after_retry += 1;
        }
    }

    /// Closes message `id` as discarded after its last attempt.
    pub fn mark_discarded(&mut self, id: MessageId) {
        let Some(events) = self.close(id, MessageState::Discarded) else {
            return;
        };
        self.counts.messages_discarded += 1;
        self.counts.events_discarded += events as u64;
    }

    /// Closes every open message as discarded, for a shutdown that cannot
    /// wait for retries. Returns how many there were.
    pub fn discard_open(&mut self) -> u64 {
        let mut open: Vec<MessageId> = self.open.keys().copied().collect();
        open.sort_unstable();
        for id in &open {
            self.mark_discarded(*id);
        }
        self.counts.discarded_at_shutdown += open.len() as u64;
        open.len() as u64
    }

    fn close(&mut self, id: MessageId, state: MessageState) -> Option<usize> {
        let Some(events) = self.open.remove(&id) else {
            self.errors.push(LedgerError::UnknownMessage(id));
            return None;
        };
        self.counts.messages_pending -= 1;
        self.counts.events_pending -= events as u64;
        if let Some(message) = self.record_mut(id) {
            message.state = state;
        }
        Some(events)
    }

    fn record_mut(&mut self, id: MessageId) -> Option<&mut MessageRecord> {
        // Ids are handed out in order from 1, so the record sits at id - 1.
        let records = self.records.as_mut()?;
        records.get_mut(id.checked_sub(1)? as usize)
    }

    /// Returns the running totals.
    pub fn counts(&self) -> &LedgerCounts {
        &self.counts
    }

    /// Messages neither delivered nor discarded yet.
    pub fn pending(&self) -> u64 {
        self.counts.messages_pending
    }

    /// Returns every message, when full records are kept.
    pub fn records(&self) -> Option<&[MessageRecord]> {
        self.records.as_deref()
    }

    /// Latency of the attempts that got an HTTP response.
    pub fn latency(&self) -> LatencySummary {
        if self.latency.is_empty() {
            return LatencySummary::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        LatencySummary {
            count: self.latency.len(),
            min_ms: ms(self.latency.min()),
            median_ms: ms(self.latency.value_at_quantile(0.5)),
            p95_ms: ms(self.latency.value_at_quantile(0.95)),
            max_ms: ms(self.latency.max()),
        }
    }

    /// Checks conservation and that no message was closed twice.
    pub fn check(&self) -> Result<(), LedgerError> {
        if let Some(error) = self.errors.first() {
            return Err(error.clone());
        }
        let c = &self.counts;
        let sides = [
            (
                "messages",
                c.messages_accepted,
                c.messages_delivered,
                c.messages_discarded,
                c.messages_pending,
            ),
            (
                "events",
                c.events_accepted,
                c.events_delivered,
                c.events_discarded,
                c.events_pending,
            ),
        ];
        for (what, accepted, delivered, discarded, pending) in sides {
            if accepted != delivered + discarded + pending {
                return Err(LedgerError::Unbalanced {
                    what,
                    accepted,
                    delivered,
                    discarded,
                    pending,
                });
            }
        }
        let open_events: u64 = self.open.values().map(|events| *events as u64).sum();
        if open_events != c.events_pending || self.open.len() as u64 != c.messages_pending {
            return Err(LedgerError::Unbalanced {
                what: "open messages",
                accepted: c.events_accepted,
                delivered: c.events_delivered,
                discarded: c.events_discarded,
                pending: open_events,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::Outcome;

    fn meta(events: usize) -> MessageMeta {
        MessageMeta {
            kind: WebhookKind::General,
            enterprise_id: None,
            integration_id: None,
            action: None,
            events,
            body_bytes: 10,
        }
    }

    fn attempt(outcome: Outcome) -> AttemptRecord {
        AttemptRecord {
            number: 1,
            started_at: Duration::ZERO,
            attempt: Attempt {
                outcome,
                headers_after: None,
                total: Duration::from_millis(3),
                redirects: vec![],
                response_excerpt: String::new(),
            },
        }
    }

    #[test]
    fn balances_through_every_state() {
        let mut ledger = Ledger::new(true);
        let delivered = ledger.open(meta(3));
        let discarded = ledger.open(meta(2));
        let pending = ledger.open(meta(5));
        ledger.record_attempt(delivered, attempt(Outcome::Delivered { status: 202 }));
        ledger.mark_delivered(delivered, 1);
        ledger.record_attempt(discarded, attempt(Outcome::Rejected { status: 500 }));
        ledger.mark_discarded(discarded);
        assert_eq!(ledger.check(), Ok(()));

        let counts = ledger.counts();
        assert_eq!(counts.events_accepted, 10);
        assert_eq!(counts.events_delivered, 3);
        assert_eq!(counts.events_discarded, 2);
        assert_eq!(counts.events_pending, 5);
        assert_eq!(
            ledger.records().unwrap()[(pending - 1) as usize].state,
            MessageState::Pending
        );
        assert_eq!(ledger.latency().count, 2);
    }

    #[test]
    fn double_close_breaks_the_check() {
        let mut ledger = Ledger::new(false);
        let id = ledger.open(meta(1));
        ledger.mark_delivered(id, 1);
        ledger.mark_discarded(id);
        assert_eq!(ledger.check(), Err(LedgerError::UnknownMessage(id)));
        assert_eq!(ledger.counts().messages_discarded, 0);
    }

    #[test]
    fn discard_open_closes_pending() {
        let mut ledger = Ledger::new(true);
        let delivered = ledger.open(meta(1));
        ledger.open(meta(4));
        ledger.mark_delivered(delivered, 1);
        assert_eq!(ledger.discard_open(), 1);
        assert_eq!(ledger.check(), Ok(()));
        assert_eq!(ledger.counts().events_discarded, 4);
        assert_eq!(ledger.counts().discarded_at_shutdown, 1);
        assert_eq!(ledger.pending(), 0);
    }

    #[test]
    fn retry_delivery_is_counted_apart() {
        let mut ledger = Ledger::new(false);
        let first = ledger.open(meta(1));
        let second = ledger.open(meta(1));
        ledger.mark_delivered(first, 1);
        ledger.mark_delivered(second, 3);
        assert_eq!(ledger.counts().delivered_first_attempt, 1);
        assert_eq!(ledger.counts().delivered_after_retry, 1);
        assert!(ledger.records().is_none());
    }
}
