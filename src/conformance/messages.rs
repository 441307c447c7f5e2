//! Building a step's messages: bodies from the generator and the batcher,
//! then repetition and order.

use std::sync::Arc;

use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::batcher::batch_all;
use crate::generator::Generator;
use crate::payload::{Event, GeneralWebhook, IntegrationKey, WebhookKind};
use crate::scenario::{MessageSource, Order, Step};

/// One message ready to send.
#[derive(Debug, Clone)]
pub(super) struct Message {
    /// Its number in build order, from 1.
    pub number: usize,
    /// The kind, which selects the URL it goes to.
    pub kind: WebhookKind,
    /// The exact bytes; every copy sends these.
    pub body: Bytes,
    /// A short description for findings.
    pub label: String,
    /// General events carried; 1 for an Integration Webhook.
    pub events: usize,
}

/// One send: a message and which copy of it.
#[derive(Debug, Clone)]
pub(super) struct Send {
    pub message: Arc<Message>,
    pub copy: usize,
}

/// Returns the enterprise integrations a run's generated events belong to.
///
/// Keys come from the run's seed, while ids and mixes come from each
/// step's own seed. Every check therefore talks about the same
/// enterprises, as one integration's traffic would, without two checks
/// sending identical events.
pub(super) fn run_keys(run_seed: u64, count: usize) -> Vec<IntegrationKey> {
    Generator::new(run_seed, count).keys().to_vec()
}

/// Builds the step's distinct messages, in the order they were generated
/// or listed.
pub(super) fn build(step: &Step, step_seed: u64, run_seed: u64) -> Vec<Message> {
    let mut generator = Generator::new(step_seed, step.enterprises);
    let keys = run_keys(run_seed, step.enterprises);
    let step_keys = generator.keys().to_vec();
    let override_key = |key: IntegrationKey| IntegrationKey {
        enterprise_id: step.enterprise_id.unwrap_or(key.enterprise_id),
        integration_id: step.integration_id.unwrap_or(key.integration_id),
    };
    // The step's generator draws its own keys; map each to the run's key at
    // the same index.
    let to_run_key = |key: IntegrationKey| {
        let index = step_keys.iter().position(|k| *k == key).unwrap_or(0);
        override_key(keys[index.min(keys.len() - 1)])
    };

    match &step.source {
        MessageSource::Events(specs) => {
            let events: Vec<(IntegrationKey, Event)> = specs
                .iter()
                .map(|spec| {
                    let base = override_key(keys[0]);
                    let key = IntegrationKey {
                        enterprise_id: spec.enterprise_id.unwrap_or(base.enterprise_id),
                        integration_id: spec.integration_id.unwrap_or(base.integration_id),
                    };
                    let id = spec.id.unwrap_or_else(|| generator.uuid());
                    (key, Event::new(spec.discriminator.clone(), id))
                })
                .collect();
            general_messages(step.batch_cap, events)
        }
        MessageSource::Counts(counts) => {
            let events = generator
                .from_counts(counts)
                .into_iter()
                .map(|(key, event)| (to_run_key(key), event));
            general_messages(step.batch_cap, events)
        }
        MessageSource::Realistic(count) => {
            let events = generator
                .realistic(*count)
                .into_iter()
                .map(|(key, event)| (to_run_key(key), event));
            general_messages(step.batch_cap, events)
        }
        MessageSource::Actions(actions) => actions
            .iter()
            .enumerate()
            .map(|(index, action)| Message {
                number: index + 1,
                kind: WebhookKind::Integration,
                body: Bytes::from(generator.integration(action).to_bytes()),
                label: format!("Integration action {action}"),
                events: 1,
            })
            .collect(),
        MessageSource::Body { path, bytes, kind } => {
            let name = path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string());
            vec![Message {
                number: 1,
                kind: *kind,
                body: bytes.clone(),
                label: format!("body file {name}"),
                events: count_body_events(bytes, *kind),
            }]
        }
    }
}

fn general_messages(
    batch_cap: usize,
    events: impl IntoIterator<Item = (IntegrationKey, Event)>,
) -> Vec<Message> {
    batch_all(batch_cap, events)
        .into_iter()
        .enumerate()
        .map(|(index, webhook)| Message {
            number: index + 1,
            kind: WebhookKind::General,
            label: general_label(&webhook),
            events: webhook.events.len(),
            body: Bytes::from(webhook.to_bytes()),
        })
        .collect()
}

/// Describes a General message by its size and first few event types.
fn general_label(webhook: &GeneralWebhook) -> String {
    const SHOWN: usize = 3;
    let mut types: Vec<&str> = Vec::new();
    for event in &webhook.events {
        if !types.contains(&event.discriminator.as_str()) {
            types.push(&event.discriminator);
        }
    }
    let count = webhook.events.len();
    let noun = if count == 1 { "event" } else { "events" };
    let mut label = format!("{count} General {noun}, ");
    if types.len() <= SHOWN {
        label.push_str(&types.join(", "));
    } else {
        let more = types.len() - SHOWN;
        let noun = if more == 1 { "type" } else { "types" };
        label.push_str(&format!(
            "{} and {more} more {noun}",
            types[..SHOWN].join(", ")
        ));
    }
    label
}

/// Counts the events of a raw body: the length of `Events` in a General
/// body, otherwise 1, because even a body that is not JSON is one message.
fn count_body_events(body: &[u8], kind: WebhookKind) -> usize {
    if kind == WebhookKind::Integration {
        return 1;
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| value.get("Events")?.as_array().map(Vec::len))
        .unwrap_or(1)
}

/// Repeats each message `step.repeat` times, each copy right after the
/// one before as a retry would be, then applies the step's order.
pub(super) fn sequence(step: &Step, messages: Vec<Message>, step_seed: u64) -> Vec<Send> {
    let mut sends: Vec<Send> = messages
        .into_iter()
        .flat_map(|message| {
            let message = Arc::new(message);
            (1..=step.repeat).map(move |copy| Send {
                message: Arc::clone(&message),
                copy,
            })
        })
        .collect();
    match step.order {
        Order::AsGenerated => {}
        Order::Reversed => sends.reverse(),
        Order::Shuffled => sends.shuffle(&mut StdRng::seed_from_u64(step_seed)),
    }
    sends
}

/// Derives a step's seed from the run's seed, the check name and the step's
/// index with FNV-1a, which, unlike the standard library's hasher, is fixed
/// across Rust versions.
pub(super) fn derive_seed(run_seed: u64, check: &str, step_index: usize) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let bytes = run_seed
        .to_le_bytes()
        .into_iter()
        .chain(check.bytes())
        .chain((step_index as u64).to_le_bytes());
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(PRIME);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{
        EventSpec, Expectation, ExpectedOutcome, LatencyLimit, Severity, TokenMode,
    };
    use uuid::Uuid;

    fn step(source: MessageSource) -> Step {
        Step {
            name: "step 1".to_string(),
            source,
            enterprises: 1,
            enterprise_id: None,
            integration_id: None,
            token: TokenMode::Right,
            token_param: None,
            content_type: None,
            batch_cap: 500,
            repeat: 1,
            concurrency: 1,
            order: Order::AsGenerated,
            seed: None,
            expect: Expectation {
                outcome: ExpectedOutcome::Accepted,
                status: None,
                max_latency: LatencyLimit::DeadlineShare(100.0),
                allow_redirects: true,
                severity: Severity::Fail,
                latency_percentile: None,
            },
        }
    }

    fn listed(discriminators: &[&str]) -> MessageSource {
        MessageSource::Events(
            discriminators
                .iter()
                .enumerate()
                .map(|(index, name)| EventSpec {
                    discriminator: name.to_string(),
                    id: Some(Uuid::from_u128(index as u128 + 1)),
                    enterprise_id: None,
                    integration_id: None,
                })
                .collect(),
        )
    }

    #[test]
    fn listed_events_keep_order_and_ids() {
        let mut step = step(listed(&[
            "CustomerAdded",
            "CustomerUpdated",
            "PaymentUpdated",
        ]));
        step.batch_cap = 1;
        let messages = build(&step, 7, 1);
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[2].label, "1 General event, PaymentUpdated");
        let body: serde_json::Value = serde_json::from_slice(&messages[2].body).unwrap();
        assert_eq!(
            body["Events"][0]["Value"]["Id"],
            Uuid::from_u128(3).to_string()
        );
    }

    #[test]
    fn steps_share_run_keys_but_not_ids() {
        let first = build(&step(MessageSource::Realistic(5)), 11, 1);
        let second = build(&step(MessageSource::Realistic(5)), 12, 1);
        let parse = |message: &Message| -> serde_json::Value {
            serde_json::from_slice(&message.body).unwrap()
        };
        assert_eq!(
            parse(&first[0])["EnterpriseId"],
            parse(&second[0])["EnterpriseId"]
        );
        assert_ne!(first[0].body, second[0].body);
        let key = run_keys(1, 1)[0];
        assert_eq!(
            parse(&first[0])["EnterpriseId"],
            key.enterprise_id.to_string()
        );
    }

    #[test]
    fn repeat_sends_identical_bytes_back_to_back() {
        let mut step = step(MessageSource::Realistic(4));
        step.batch_cap = 2;
        step.repeat = 2;
        let sends = sequence(&step, build(&step, 3, 1), 3);
        let numbers: Vec<(usize, usize)> = sends
            .iter()
            .map(|send| (send.message.number, send.copy))
            .collect();
        assert_eq!(numbers, vec![(1, 1), (1, 2), (2, 1), (2, 2)]);
        assert_eq!(sends[0].message.body, sends[1].message.body);
    }

    #[test]
    fn reversed_and_shuffled_orders() {
        let mut step = step(listed(&["ResourceUpdated"; 6]));
        step.batch_cap = 1;
        step.order = Order::Reversed;
        let reversed: Vec<usize> = sequence(&step, build(&step, 3, 1), 3)
            .iter()
            .map(|send| send.message.number)
            .collect();
        assert_eq!(reversed, vec![6, 5, 4, 3, 2, 1]);

        step.order = Order::Shuffled;
        let shuffled = |seed| -> Vec<usize> {
            sequence(&step, build(&step, 3, 1), seed)
                .iter()
                .map(|send| send.message.number)
                .collect()
        };
        assert_eq!(shuffled(5), shuffled(5));
        let mut sorted = shuffled(5);
        sorted.sort();
        assert_eq!(sorted, vec![1, 2, 3, 4, 5, 6]);
        assert!((0..20).any(|seed| shuffled(seed) != vec![1, 2, 3, 4, 5, 6]));
    }

    #[test]
    fn derived_seeds_differ_per_check_and_step() {
        assert_eq!(derive_seed(1, "a", 0), derive_seed(1, "a", 0));
        assert_ne!(derive_seed(1, "a", 0), derive_seed(1, "a", 1));
        assert_ne!(derive_seed(1, "a", 0), derive_seed(1, "b", 0));
        assert_ne!(derive_seed(1, "a", 0), derive_seed(2, "a", 0));
    }

    #[test]
    fn label_names_a_few_types() {
        let key = run_keys(1, 1)[0];
        let events = DISCRIMINATORS_FOR_TEST
            .iter()
            .map(|name| Event::new(*name, Uuid::from_u128(1)))
            .collect();
        let label = general_label(&GeneralWebhook::new(key, events));
        assert_eq!(
            label,
            "5 General events, ServiceOrderUpdated, ResourceUpdated, MessageAdded and 2 more types"
        );
    }

    const DISCRIMINATORS_FOR_TEST: [&str; 5] = [
        "ServiceOrderUpdated",
        "ResourceUpdated",
        "MessageAdded",
        "CustomerAdded",
        "PaymentUpdated",
    ];
}
