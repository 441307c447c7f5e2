//! Grouping General events into messages.
//!
//! Mews puts events that happen together into one General Webhook per
//! enterprise integration, and starts a new message above a cap that it
//! describes only as "in the order of hundreds" and may change. The default
//! cap of 500 sits in the middle of that range. The conformance suite also
//! sends 999 events, the top of it, because a receiver must not depend on
//! the cap.

use std::collections::HashMap;

use crate::payload::{Event, GeneralWebhook, IntegrationKey};

/// The default number of events per General Webhook message.
pub const DEFAULT_BATCH_CAP: usize = 500;

/// Collects events per [`IntegrationKey`] and emits a message whenever one
/// key reaches the cap.
#[derive(Debug)]
pub struct Batcher {
    cap: usize,
    open: HashMap<IntegrationKey, Vec<Event>>,
    /// Keys in the order their open batch started, so that flushing emits
    /// messages in the order the events arrived.
    order: Vec<IntegrationKey>,
    pending: usize,
}

impl Batcher {
    /// Builds a batcher; a cap of 0 is treated as 1.
    pub fn new(cap: usize) -> Batcher {
        Batcher {
            cap: cap.max(1),
            open: HashMap::new(),
            order: Vec::new(),
            pending: 0,
        }
    }

    /// Returns the number of events per message.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Adds an event; returns the message it completes, if it fills the
    /// batch of its key to the cap.
    pub fn push(&mut self, key: IntegrationKey, event: Event) -> Option<GeneralWebhook> {
        let batch = self.open.entry(key).or_insert_with(|| {
            self.order.push(key);
            Vec::with_capacity(self.cap.min(1024))
        });
        batch.push(event);
        self.pending += 1;
        if batch.len() < self.cap {
            return None;
        }

        let events = self.open.remove(&key).unwrap_or_default();
        self.order.retain(|open_key| *open_key != key);
        self.pending -= events.len();
        Some(GeneralWebhook::new(key, events))
    }

    /// Emits every open batch, oldest first.
    pub fn flush(&mut self) -> Vec<GeneralWebhook> {
        let mut messages = Vec::with_capacity(self.order.len());
        for key in self.order.drain(..) {
            if let Some(events) = self.open.remove(&key) {
                messages.push(GeneralWebhook::new(key, events));
            }
        }
        self.pending = 0;
        messages
    }

    /// Events waiting in open batches.
    pub fn pending_events(&self) -> usize {
        self.pending
    }
}

/// Batches a finished list of events in one go.
pub fn batch_all(
    cap: usize,
    events: impl IntoIterator<Item = (IntegrationKey, Event)>,
) -> Vec<GeneralWebhook> {
    let mut batcher = Batcher::new(cap);
    let mut messages: Vec<GeneralWebhook> = events
        .into_iter()
        .filter_map(|(key, event)| batcher.push(key, event))
        .collect();
    messages.extend(batcher.flush());
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn key(n: u128) -> IntegrationKey {
        IntegrationKey {
            enterprise_id: Uuid::from_u128(n),
            integration_id: Uuid::from_u128(n + 100),
        }
    }

    fn events(key: IntegrationKey, count: usize) -> Vec<(IntegrationKey, Event)> {
        (0..count)
            .map(|i| {
                (
                    key,
                    Event::new("ResourceUpdated", Uuid::from_u128(i as u128)),
                )
            })
            .collect()
    }

    #[test]
    fn rolls_over_at_cap() {
        let messages = batch_all(500, events(key(1), 1200));
        let sizes: Vec<usize> = messages.iter().map(|m| m.events.len()).collect();
        assert_eq!(sizes, vec![500, 500, 200]);
    }

    #[test]
    fn exact_multiple_leaves_no_empty_message() {
        let messages = batch_all(3, events(key(1), 6));
        assert_eq!(messages.len(), 2);
        assert!(messages.iter().all(|m| m.events.len() == 3));
    }

    #[test]
    fn keys_never_share_a_message() {
        let mut mixed = events(key(1), 3);
        mixed.extend(events(key(2), 2));
        mixed.extend(events(key(1), 1));
        let messages = batch_all(10, mixed);
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].enterprise_id, key(1).enterprise_id);
        assert_eq!(messages[0].events.len(), 4);
        assert_eq!(messages[1].enterprise_id, key(2).enterprise_id);
        assert_eq!(messages[1].events.len(), 2);
    }

    #[test]
    fn event_order_is_kept() {
        let messages = batch_all(2, events(key(1), 5));
        let ids: Vec<u128> = messages
            .iter()
            .flat_map(|m| m.events.iter().map(|e| e.value.id.as_u128()))
            .collect();
        assert_eq!(ids, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn pending_counts_open_events() {
        let mut batcher = Batcher::new(3);
        for (key, event) in events(key(1), 4) {
            batcher.push(key, event);
        }
        assert_eq!(batcher.pending_events(), 1);
        assert_eq!(batcher.flush().len(), 1);
        assert_eq!(batcher.pending_events(), 0);
    }
}
