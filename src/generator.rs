//! Seedable webhook traffic: General events spread over enterprise
//! integrations, and Integration Webhooks with realistic facts.
//!
//! Every id, name and choice comes from one [`StdRng`] seeded by the
//! caller, so the same seed and the same calls give the same traffic. The
//! one input outside the seed is the reference time that Integration
//! Webhook timestamps are counted back from (see
//! [`Generator::with_reference_time`]).
//!
//! NOTE: `rand` 0.10 documents `StdRng` as non-portable. A later `rand`
//! release may change its algorithm, and `rand` does not promise the same
//! stream on every platform, so a seed reproduces its traffic only under
//! the `rand` version pinned in `Cargo.lock` on the same kind of machine.

use std::collections::VecDeque;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use uuid::Uuid;

use crate::payload::{
    DISCRIMINATORS, Event, IntegrationFacts, IntegrationKey, IntegrationWebhook, NamedRef,
    Requestor, suggest,
};

/// The relative weights of each discriminator in [`Generator::realistic`].
///
/// Mews publishes no traffic mix, so these are an emulation choice. In a
/// property management system, reservation changes dominate, then guest
/// profile edits, room state (housekeeping) and payments, with resource
/// blocks and messages rarer. Each `CustomerAdded` also brings its own
/// `CustomerUpdated`, so the share of `CustomerUpdated` events is 25 of
/// 105 rather than 20 of 100.
const REALISTIC_MIX: [(&str, u32); 7] = [
    ("ServiceOrderUpdated", 40),
    ("CustomerUpdated", 20),
    ("ResourceUpdated", 15),
    ("PaymentUpdated", 10),
    ("ResourceBlockUpdated", 6),
    ("CustomerAdded", 5),
    ("MessageAdded", 4),
];

/// Place names that enterprise names are built from.
const CITIES: [&str; 10] = [
    "Prague",
    "Amsterdam",
    "Lisbon",
    "Vienna",
    "Berlin",
    "Brno",
    "London",
    "Paris",
    "Barcelona",
    "Copenhagen",
];

/// Kinds of property that enterprise names are built from.
const PROPERTY_KINDS: [&str; 6] = [
    "Hotel",
    "Grand Hotel",
    "Boutique Hotel",
    "Hostel",
    "Apartments",
    "Residence",
];

/// Names an integration (the partner application) may have.
const INTEGRATION_NAMES: [&str; 7] = [
    "WebhookTEST",
    "Revenue Manager",
    "Channel Manager",
    "Door Locks",
    "Guest Messaging",
    "Accounting Export",
    "POS Connector",
];

/// People who may request an integration. The non-ASCII names check that a
/// receiver handles UTF-8, and the addresses use the reserved
/// `example.com` domain.
const REQUESTORS: [(&str, &str); 5] = [
    ("Jana Nováková", "jana.novakova@example.com"),
    ("Pieter de Vries", "pieter.devries@example.com"),
    ("Inês Carvalho", "ines.carvalho@example.com"),
    ("Jonas Müller", "jonas.mueller@example.com"),
    ("Amelia Clarke", "amelia.clarke@example.com"),
];

/// Names an API key may have in `IntegrationApiKeyCreated`.
const API_KEY_NAMES: [&str; 3] = ["Production", "Staging", "Default"];

/// The share of `IntegrationCreated` webhooks with `"Requestor": null`.
/// Mews documents that the field may be null but not how often.
const NULL_REQUESTOR_PROBABILITY: f64 = 0.3;

/// The share of `IntegrationCreated` webhooks with `"Service": null`.
const NULL_SERVICE_PROBABILITY: f64 = 0.1;

/// The share of `IntegrationCreated` webhooks with `"IsEnabled": true`.
const ENABLED_PROBABILITY: f64 = 0.8;

/// How far back from the reference time `CreatedUtc` may lie.
const MAX_CREATED_AGE: TimeDelta = TimeDelta::days(30);

/// How far back from the reference time `DeletedUtc` may lie.
const MAX_DELETED_AGE: TimeDelta = TimeDelta::hours(1);

/// A bounded pool of recently seen entity ids.
///
/// Real traffic touches the same entity again and again: a reservation is
/// updated at booking, check-in and check-out, and a hotel has a fixed set
/// of rooms. The pool returns a known id with `reuse_probability` and
/// otherwise a new one, which evicts the oldest once `capacity` is reached.
#[derive(Debug, Clone)]
struct RecentIds {
    ids: VecDeque<Uuid>,
    capacity: usize,
    reuse_probability: f64,
}

impl RecentIds {
    fn new(capacity: usize, reuse_probability: f64) -> Self {
        RecentIds {
            ids: VecDeque::with_capacity(capacity),
            capacity,
            reuse_probability,
        }
    }

    /// Returns a recent id or a new one, as the pool's reuse rule decides.
    fn next_id(&mut self, rng: &mut StdRng) -> Uuid {
        if !self.ids.is_empty() && rng.random_bool(self.reuse_probability) {
            let index = rng.random_range(0..self.ids.len());
            return self.ids[index];
        }
        let id = random_uuid(rng);
        self.remember(id);
        id
    }

    /// Adds `id` as the most recent entry, evicting the oldest when full.
    fn remember(&mut self, id: Uuid) {
        if self.ids.len() == self.capacity {
            self.ids.pop_front();
        }
        self.ids.push_back(id);
    }
}

/// Per-enterprise state: display names and pools of recent entity ids.
#[derive(Debug, Clone)]
struct Enterprise {
    name: String,
    integration_name: String,
    service_id: Uuid,
    reservations: RecentIds,
    customers: RecentIds,
    resources: RecentIds,
    resource_blocks: RecentIds,
    payments: RecentIds,
}

impl Enterprise {
    /// Creates the state of one enterprise. The pool sizes and reuse
    /// probabilities are emulation choices. Rooms are nearly a fixed set,
    /// reservations and customers recur often, and payments move through
    /// a few states before they settle.
    fn new(rng: &mut StdRng, name: String) -> Self {
        let integration_name = choose(rng, &INTEGRATION_NAMES).to_string();
        Enterprise {
            name,
            integration_name,
            service_id: random_uuid(rng),
            reservations: RecentIds::new(8, 0.6),
            customers: RecentIds::new(32, 0.5),
            resources: RecentIds::new(40, 0.9),
            resource_blocks: RecentIds::new(6, 0.5),
            payments: RecentIds::new(8, 0.3),
        }
    }
}

/// A unit of work in [`Generator::from_counts`]: either a `CustomerAdded`
/// with its `CustomerUpdated`, or a single event of one type.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unit {
    NewCustomer,
    Single(String),
}

/// A seeded source of webhook traffic for a fixed set of enterprise
/// integrations.
#[derive(Debug)]
pub struct Generator {
    rng: StdRng,
    keys: Vec<IntegrationKey>,
    enterprises: Vec<Enterprise>,
    /// Each enterprise's relative share of all traffic, drawn from 1 to 4
    /// so that a large hotel sends more than a small one.
    enterprise_weights: Vec<u64>,
    reference_time: DateTime<Utc>,
}

impl Generator {
    /// Creates a generator whose ids and choices all follow from `seed`,
    /// with one [`IntegrationKey`] per enterprise.
    ///
    /// An `enterprises` of 0 is treated as 1, because traffic needs at
    /// least one integration to belong to. The generator keeps a key and a
    /// few small id pools per enterprise, so memory grows with
    /// `enterprises`. The reference time for Integration Webhooks is the
    /// current second.
    pub fn new(seed: u64, enterprises: usize) -> Generator {
        let mut rng = StdRng::seed_from_u64(seed);
        let count = enterprises.max(1);

        let mut keys = Vec::with_capacity(count);
        let mut states = Vec::with_capacity(count);
        let mut weights = Vec::with_capacity(count);
        for index in 0..count {
            keys.push(IntegrationKey {
                enterprise_id: random_uuid(&mut rng),
                integration_id: random_uuid(&mut rng),
            });
            let name = enterprise_name(&mut rng, index, &states);
            states.push(Enterprise::new(&mut rng, name));
            weights.push(rng.random_range(1..=4));
        }

        Generator {
            rng,
            keys,
            enterprises: states,
            enterprise_weights: weights,
            reference_time: truncate_to_second(Utc::now()),
        }
    }

    /// Sets the time that Integration Webhook timestamps are counted back
    /// from, so that a seeded run is reproducible to the byte. It is
    /// truncated to whole seconds, as Mews sends them.
    pub fn with_reference_time(mut self, time: DateTime<Utc>) -> Generator {
        self.reference_time = truncate_to_second(time);
        self
    }

    /// Returns the enterprise integrations, in the order they were
    /// generated.
    pub fn keys(&self) -> &[IntegrationKey] {
        &self.keys
    }

    /// Returns a version 4 UUID drawn from the seeded generator.
    pub fn uuid(&mut self) -> Uuid {
        random_uuid(&mut self.rng)
    }

    /// Generates `count` General events in the order they happen, each with
    /// the enterprise integration it belongs to.
    ///
    /// Event types are drawn by the weights in `REALISTIC_MIX` in this
    /// module, an emulation choice in which `ServiceOrderUpdated` is the most
    /// common and `MessageAdded` the rarest. Traffic is spread over the keys
    /// by a per-enterprise weight drawn from the seed. Every
    /// `CustomerAdded` is immediately followed by a `CustomerUpdated` for
    /// the same customer and key, because Mews sends both when a customer
    /// is created. When only one slot is left, a `CustomerAdded` draw
    /// becomes a `CustomerUpdated`, so the result always has exactly
    /// `count` events. Ids of reservations, customers, rooms, resource
    /// blocks and payments recur within an enterprise.
    pub fn realistic(&mut self, count: usize) -> Vec<(IntegrationKey, Event)> {
        let weights: Vec<u64> = REALISTIC_MIX.iter().map(|(_, w)| u64::from(*w)).collect();
        let mut events = Vec::with_capacity(count);

        while events.len() < count {
            let enterprise = self.pick_enterprise();
            let discriminator = REALISTIC_MIX[pick_weighted(&mut self.rng, &weights)].0;
            let room_for_pair = count - events.len() >= 2;

            if discriminator == "CustomerAdded" && room_for_pair {
                self.push_new_customer(enterprise, &mut events);
            } else if discriminator == "CustomerAdded" {
                self.push_single(enterprise, "CustomerUpdated", &mut events);
            } else {
                self.push_single(enterprise, discriminator, &mut events);
            }
        }
        events
    }

    /// Generates exactly the requested number of events of each type,
    /// interleaved at random and spread over the keys.
    ///
    /// Counts are kept exact: `CustomerAdded=3` gives three
    /// `CustomerAdded` events and no `CustomerUpdated` unless that type is
    /// requested too. When both are requested, as many `CustomerUpdated`
    /// events as possible are paired with the new customers, each placed
    /// right after its `CustomerAdded` with the same id and key. Any
    /// `CustomerAdded` left without a partner is sent alone, and so are the
    /// remaining `CustomerUpdated` events. A type listed more than once
    /// gets the sum of its counts. Types outside [`DISCRIMINATORS`] are
    /// sent as given, each with a new id.
    pub fn from_counts(&mut self, counts: &[(String, usize)]) -> Vec<(IntegrationKey, Event)> {
        let mut units = plan_units(counts);
        let total: usize = units
            .iter()
            .map(|(unit, n)| match unit {
                Unit::NewCustomer => n.saturating_mul(2),
                Unit::Single(_) => *n,
            })
            .fold(0, usize::saturating_add);
        let mut events = Vec::with_capacity(total);

        // Drawing each unit with a weight equal to what is left of it gives
        // a uniformly random interleaving that still ends at the exact
        // counts.
        loop {
            let remaining: Vec<u64> = units.iter().map(|(_, n)| *n as u64).collect();
            if remaining.iter().all(|n| *n == 0) {
                break;
            }
            let chosen = pick_weighted(&mut self.rng, &remaining);
            units[chosen].1 -= 1;

            let enterprise = self.pick_enterprise();
            match &units[chosen].0 {
                Unit::NewCustomer => self.push_new_customer(enterprise, &mut events),
                Unit::Single(name) => {
                    let name = name.clone();
                    self.push_single(enterprise, &name, &mut events);
                }
            }
        }
        events
    }

    /// Builds an Integration Webhook for `action` about one of the keys,
    /// with realistic facts.
    ///
    /// The enterprise and integration ids are those of a key, and the names
    /// stay the same for that key across calls. `AccessToken` has the shape
    /// Mews uses: the integration id as 32 upper-case hex digits, a hyphen,
    /// and 31 more upper-case hex digits. `Requestor` is null in about 30%
    /// of webhooks and `Service` (always named "Accommodation") in about
    /// 10%. `CreatedUtc` lies up to 30 days and `DeletedUtc` up to one hour
    /// before the reference time. An action outside the documented seven
    /// carries only `Integration`, as [`IntegrationWebhook::from_facts`]
    /// builds it.
    pub fn integration(&mut self, action: &str) -> IntegrationWebhook {
        let facts = self.integration_facts();
        IntegrationWebhook::from_facts(action, &facts)
    }

    fn integration_facts(&mut self) -> IntegrationFacts {
        let index = self.pick_enterprise();
        let key = self.keys[index];
        let enterprise = &self.enterprises[index];
        let rng = &mut self.rng;

        let service = (!rng.random_bool(NULL_SERVICE_PROBABILITY)).then(|| NamedRef {
            id: enterprise.service_id,
            name: "Accommodation".to_string(),
        });
        let requestor = (!rng.random_bool(NULL_REQUESTOR_PROBABILITY)).then(|| {
            let (name, email) = *choose(rng, &REQUESTORS);
            Requestor {
                name: name.to_string(),
                email: email.to_string(),
            }
        });

        let created_age = rng.random_range(0..=MAX_CREATED_AGE.num_seconds());
        let deleted_age = rng.random_range(0..=MAX_DELETED_AGE.num_seconds());
        let api_key = NamedRef {
            id: random_uuid(rng),
            name: choose(rng, &API_KEY_NAMES).to_string(),
        };

        IntegrationFacts {
            enterprise: NamedRef {
                id: key.enterprise_id,
                name: enterprise.name.clone(),
            },
            service,
            requestor,
            access_token: access_token(rng, key.integration_id),
            created_utc: self.reference_time - TimeDelta::seconds(created_age),
            deleted_utc: self.reference_time - TimeDelta::seconds(deleted_age),
            is_enabled: rng.random_bool(ENABLED_PROBABILITY),
            integration: NamedRef {
                id: key.integration_id,
                name: enterprise.integration_name.clone(),
            },
            api_key,
        }
    }

    /// Picks an enterprise index by the enterprises' traffic weights.
    fn pick_enterprise(&mut self) -> usize {
        pick_weighted(&mut self.rng, &self.enterprise_weights)
    }

    /// Appends a `CustomerAdded` and its `CustomerUpdated` for a new
    /// customer of `enterprise`.
    fn push_new_customer(&mut self, enterprise: usize, events: &mut Vec<(IntegrationKey, Event)>) {
        let id = random_uuid(&mut self.rng);
        self.enterprises[enterprise].customers.remember(id);

        let key = self.keys[enterprise];
        events.push((key, Event::new("CustomerAdded", id)));
        events.push((key, Event::new("CustomerUpdated", id)));
    }

    /// Appends one event of `discriminator` for `enterprise`, with an id
    /// from the pool that fits the entity type.
    fn push_single(
        &mut self,
        enterprise: usize,
        discriminator: &str,
        events: &mut Vec<(IntegrationKey, Event)>,
    ) {
        let id = self.entity_id(enterprise, discriminator);
        events.push((self.keys[enterprise], Event::new(discriminator, id)));
    }

    /// Returns the entity id for one event. A `CustomerAdded` always gets a
    /// new customer, and messages and unknown types get a new id.
    fn entity_id(&mut self, enterprise: usize, discriminator: &str) -> Uuid {
        let rng = &mut self.rng;
        let state = &mut self.enterprises[enterprise];
        match discriminator {
            "ServiceOrderUpdated" => state.reservations.next_id(rng),
            "CustomerUpdated" => state.customers.next_id(rng),
            "ResourceUpdated" => state.resources.next_id(rng),
            "ResourceBlockUpdated" => state.resource_blocks.next_id(rng),
            "PaymentUpdated" => state.payments.next_id(rng),
            "CustomerAdded" => {
                let id = random_uuid(rng);
                state.customers.remember(id);
                id
            }
            _ => random_uuid(rng),
        }
    }
}

/// Turns requested counts into units for [`Generator::from_counts`],
/// summing repeated types and pairing `CustomerAdded` with
/// `CustomerUpdated` where both are requested.
fn plan_units(counts: &[(String, usize)]) -> Vec<(Unit, usize)> {
    let mut totals: Vec<(String, usize)> = Vec::new();
    for (name, count) in counts {
        match totals.iter_mut().find(|(known, _)| known == name) {
            Some((_, total)) => *total = total.saturating_add(*count),
            None => totals.push((name.clone(), *count)),
        }
    }

    let total_of = |name: &str| {
        totals
            .iter()
            .find(|(known, _)| known == name)
            .map_or(0, |(_, n)| *n)
    };
    let pairs = total_of("CustomerAdded").min(total_of("CustomerUpdated"));

    let mut units = vec![(Unit::NewCustomer, pairs)];
    for (name, count) in totals {
        let paired = name == "CustomerAdded" || name == "CustomerUpdated";
        let left = if paired { count - pairs } else { count };
        units.push((Unit::Single(name), left));
    }
    units
}

/// Returns an index into `weights`, each chosen with probability
/// proportional to its weight. All-zero or empty weights return 0, which
/// callers never pass.
fn pick_weighted(rng: &mut StdRng, weights: &[u64]) -> usize {
    let total: u64 = weights.iter().sum();
    if total == 0 {
        return 0;
    }
    let mut target = rng.random_range(0..total);
    for (index, weight) in weights.iter().enumerate() {
        if target < *weight {
            return index;
        }
        target -= weight;
    }
    weights.len() - 1
}

/// Returns one element of a non-empty constant list.
fn choose<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    // The lists passed here are non-empty constants, so `choose` always
    // returns an element.
    items.choose(rng).unwrap_or(&items[0])
}

fn random_uuid(rng: &mut StdRng) -> Uuid {
    let bytes: [u8; 16] = rng.random();
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// Builds an access token in Mews' shape: the integration id as 32
/// upper-case hex digits, a hyphen, then 31 random upper-case hex digits.
fn access_token(rng: &mut StdRng, integration_id: Uuid) -> String {
    let secret: [u8; 16] = rng.random();
    let secret_hex: String = secret.iter().map(|byte| format!("{byte:02X}")).collect();
    format!("{:X}-{}", integration_id.simple(), &secret_hex[..31])
}

/// Builds a hotel name such as "Boutique Hotel Lisbon", with the
/// enterprise's position appended if an earlier enterprise has that name.
fn enterprise_name(rng: &mut StdRng, index: usize, earlier: &[Enterprise]) -> String {
    let kind = choose(rng, &PROPERTY_KINDS);
    let city = choose(rng, &CITIES);
    let name = format!("{kind} {city}");
    if earlier.iter().any(|e| e.name == name) {
        format!("{name} {}", index + 1)
    } else {
        name
    }
}

fn truncate_to_second(time: DateTime<Utc>) -> DateTime<Utc> {
    time.duration_trunc(TimeDelta::seconds(1)).unwrap_or(time)
}

/// Parses an event plan such as `ServiceOrderUpdated=1200,CustomerAdded=3`
/// into `(discriminator, count)` pairs in the order given.
///
/// Whitespace around names, counts and commas is ignored, and a count of 0
/// is allowed. Types outside [`DISCRIMINATORS`] are rejected with the
/// nearest known type as a hint, unless `allow_unknown` is set, which lets
/// a scenario send a type Mews may add later on purpose.
pub fn parse_event_counts(
    spec: &str,
    allow_unknown: bool,
) -> Result<Vec<(String, usize)>, CountsError> {
    if spec.trim().is_empty() {
        return Err(CountsError::Empty);
    }

    let mut counts: Vec<(String, usize)> = Vec::new();
    for (index, entry) in spec.split(',').enumerate() {
        let (name, count) = parse_entry(entry, index + 1, allow_unknown)?;
        if counts.iter().any(|(known, _)| *known == name) {
            return Err(CountsError::Duplicate { name });
        }
        counts.push((name, count));
    }
    Ok(counts)
}

/// Parses one `TYPE=COUNT` entry. `position` counts from 1 and is shown in
/// error messages.
fn parse_entry(
    entry: &str,
    position: usize,
    allow_unknown: bool,
) -> Result<(String, usize), CountsError> {
    let entry = entry.trim();
    if entry.is_empty() {
        return Err(CountsError::EmptyEntry { position });
    }
    let Some((name, value)) = entry.split_once('=') else {
        return Err(CountsError::MissingCount {
            entry: entry.to_string(),
        });
    };

    let name = name.trim();
    if name.is_empty() {
        return Err(CountsError::MissingName {
            entry: entry.to_string(),
        });
    }
    if !allow_unknown && !DISCRIMINATORS.contains(&name) {
        return Err(CountsError::UnknownDiscriminator {
            name: name.to_string(),
            suggestion: suggest(name, &DISCRIMINATORS).map(str::to_string),
        });
    }

    let value = value.trim();
    let count = value
        .parse::<usize>()
        .map_err(|_| CountsError::InvalidCount {
            name: name.to_string(),
            value: value.to_string(),
        })?;
    Ok((name.to_string(), count))
}

/// An invalid event plan passed to [`parse_event_counts`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CountsError {
    /// The plan has no entries at all.
    #[error(
        "the event plan is empty; give TYPE=COUNT entries separated by commas, such as \"ServiceOrderUpdated=1200,CustomerAdded=3\""
    )]
    Empty,

    /// Two commas, or a leading or trailing comma, leave an entry empty.
    #[error("entry {position} of the event plan is empty; remove the extra comma")]
    EmptyEntry {
        /// The entry's position, counting from 1.
        position: usize,
    },

    /// An entry has no `=COUNT` part.
    #[error(
        "event plan entry \"{entry}\" has no count; write it as TYPE=COUNT, such as \"CustomerAdded=3\""
    )]
    MissingCount {
        /// The entry as given, trimmed.
        entry: String,
    },

    /// An entry has nothing before its `=`.
    #[error(
        "event plan entry \"{entry}\" has no event type; write it as TYPE=COUNT, such as \"CustomerAdded=3\""
    )]
    MissingName {
        /// The entry as given, trimmed.
        entry: String,
    },

    /// An entry's count is not a whole number of 0 or more.
    #[error(
        "invalid count \"{value}\" for event type \"{name}\"; expected a whole number of 0 or more"
    )]
    InvalidCount {
        /// The event type of the entry.
        name: String,
        /// The count as given.
        value: String,
    },

    /// An event type outside the documented discriminators, while unknown
    /// types are not allowed.
    #[error(
        "unknown event type \"{name}\"{hint} The known types are {known}. To send an undocumented type on purpose, allow unknown types (--allow-unknown)",
        hint = suggestion_hint(.suggestion.as_deref()),
        known = DISCRIMINATORS.join(", ")
    )]
    UnknownDiscriminator {
        /// The event type as given.
        name: String,
        /// The nearest documented discriminator, if one is close enough to
        /// be a likely typo.
        suggestion: Option<String>,
    },

    /// The same event type appears in two entries.
    #[error(
        "event type \"{name}\" is listed twice in the event plan; list it once with its total count"
    )]
    Duplicate {
        /// The repeated event type.
        name: String,
    },
}

fn suggestion_hint(suggestion: Option<&str>) -> String {
    match suggestion {
        Some(known) => format!("; did you mean \"{known}\"?"),
        None => ".".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::payload::ACTIONS;

    fn fixed_time() -> DateTime<Utc> {
        DateTime::from_timestamp(1_576_248_172, 0).unwrap()
    }

    fn counts(pairs: &[(&str, usize)]) -> Vec<(String, usize)> {
        pairs.iter().map(|(n, c)| (n.to_string(), *c)).collect()
    }

    fn tally(events: &[(IntegrationKey, Event)]) -> HashMap<String, usize> {
        let mut tally = HashMap::new();
        for (_, event) in events {
            *tally.entry(event.discriminator.clone()).or_insert(0) += 1;
        }
        tally
    }

    #[test]
    fn same_seed_gives_same_traffic() {
        let mut first = Generator::new(42, 3).with_reference_time(fixed_time());
        let mut second = Generator::new(42, 3).with_reference_time(fixed_time());
        let plan = counts(&[("ServiceOrderUpdated", 50), ("CustomerAdded", 5)]);

        assert_eq!(first.keys(), second.keys());
        assert_eq!(first.uuid(), second.uuid());
        assert_eq!(first.realistic(500), second.realistic(500));
        assert_eq!(first.from_counts(&plan), second.from_counts(&plan));
        for action in ACTIONS {
            assert_eq!(first.integration(action), second.integration(action));
        }
    }

    #[test]
    fn different_seeds_give_different_traffic() {
        let mut first = Generator::new(1, 2);
        let mut second = Generator::new(2, 2);
        assert_ne!(first.keys(), second.keys());
        assert_ne!(first.realistic(100), second.realistic(100));
    }

    #[test]
    fn uuid_is_version_4() {
        let mut generator = Generator::new(7, 1);
        let id = generator.uuid();
        assert_eq!(id.get_version(), Some(uuid::Version::Random));
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(id.to_string(), id.to_string().to_lowercase());
    }

    #[test]
    fn zero_enterprises_becomes_one() {
        let mut generator = Generator::new(7, 0);
        assert_eq!(generator.keys().len(), 1);
        assert_eq!(generator.realistic(10).len(), 10);
    }

    #[test]
    fn realistic_returns_exact_count() {
        let mut generator = Generator::new(3, 2);
        for count in [0, 1, 2, 3, 17, 1000] {
            assert_eq!(generator.realistic(count).len(), count, "count {count}");
        }
    }

    #[test]
    fn realistic_customer_added_precedes_updated() {
        let mut generator = Generator::new(11, 3);
        let events = generator.realistic(1000);
        let mut added = 0;
        for (index, (key, event)) in events.iter().enumerate() {
            if event.discriminator != "CustomerAdded" {
                continue;
            }
            added += 1;
            let Some((next_key, next)) = events.get(index + 1) else {
                panic!("CustomerAdded at {index} is the last event");
            };
            assert_eq!(next.discriminator, "CustomerUpdated", "event {index}");
            assert_eq!(next.value.id, event.value.id, "event {index}");
            assert_eq!(next_key, key, "event {index}");
        }
        assert!(added > 0, "no CustomerAdded in 1000 events");
    }

    #[test]
    fn realistic_repeats_reservation_ids() {
        let mut generator = Generator::new(5, 2);
        let events = generator.realistic(1000);
        let orders: Vec<Uuid> = events
            .iter()
            .filter(|(_, e)| e.discriminator == "ServiceOrderUpdated")
            .map(|(_, e)| e.value.id)
            .collect();
        let distinct: HashSet<Uuid> = orders.iter().copied().collect();
        assert!(
            distinct.len() * 2 < orders.len(),
            "{} distinct ids in {} ServiceOrderUpdated events",
            distinct.len(),
            orders.len()
        );
    }

    #[test]
    fn realistic_has_all_discriminators() {
        let mut generator = Generator::new(9, 1);
        let tally = tally(&generator.realistic(1000));
        for discriminator in DISCRIMINATORS {
            assert!(tally.contains_key(discriminator), "missing {discriminator}");
        }
    }

    #[test]
    fn realistic_mix_favors_service_orders() {
        let mut generator = Generator::new(9, 1);
        let tally = tally(&generator.realistic(2000));
        let orders = tally["ServiceOrderUpdated"];
        for (discriminator, count) in &tally {
            if discriminator != "ServiceOrderUpdated" {
                assert!(orders > *count, "{discriminator}: {count} >= {orders}");
            }
        }
    }

    #[test]
    fn realistic_ids_are_lower_case_v4() {
        let mut generator = Generator::new(4, 2);
        for (key, event) in generator.realistic(200) {
            let text = serde_json::to_string(&event.value).unwrap();
            assert_eq!(text, text.to_lowercase().replace("\"id\"", "\"Id\""));
            assert_eq!(event.value.id.get_version(), Some(uuid::Version::Random));
            assert_eq!(key.enterprise_id.get_version(), Some(uuid::Version::Random));
        }
    }

    #[test]
    fn from_counts_is_exact() {
        let mut generator = Generator::new(13, 3);
        let plan = counts(&[
            ("ServiceOrderUpdated", 1200),
            ("CustomerAdded", 3),
            ("PaymentUpdated", 0),
            ("MessageAdded", 7),
        ]);
        let events = generator.from_counts(&plan);
        let tally = tally(&events);

        assert_eq!(events.len(), 1210);
        assert_eq!(tally.get("ServiceOrderUpdated"), Some(&1200));
        assert_eq!(tally.get("CustomerAdded"), Some(&3));
        assert_eq!(tally.get("MessageAdded"), Some(&7));
        assert_eq!(tally.get("CustomerUpdated"), None);
        assert_eq!(tally.get("PaymentUpdated"), None);
    }

    #[test]
    fn from_counts_pairs_added_with_updated() {
        let mut generator = Generator::new(17, 2);
        let plan = counts(&[
            ("CustomerAdded", 5),
            ("CustomerUpdated", 3),
            ("ResourceUpdated", 20),
        ]);
        let events = generator.from_counts(&plan);
        let tally = tally(&events);
        assert_eq!(tally.get("CustomerAdded"), Some(&5));
        assert_eq!(tally.get("CustomerUpdated"), Some(&3));

        let mut paired = 0;
        for (index, (key, event)) in events.iter().enumerate() {
            if event.discriminator != "CustomerAdded" {
                continue;
            }
            if let Some((next_key, next)) = events.get(index + 1)
                && next.discriminator == "CustomerUpdated"
                && next.value.id == event.value.id
                && next_key == key
            {
                paired += 1;
            }
        }
        assert_eq!(paired, 3);
    }

    #[test]
    fn from_counts_sums_repeated_types() {
        let mut generator = Generator::new(17, 1);
        let plan = counts(&[("MessageAdded", 2), ("MessageAdded", 3)]);
        assert_eq!(
            tally(&generator.from_counts(&plan)).get("MessageAdded"),
            Some(&5)
        );
    }

    #[test]
    fn from_counts_sends_unknown_types() {
        let mut generator = Generator::new(17, 1);
        let events = generator.from_counts(&counts(&[("FutureThing", 2)]));
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|(_, e)| e.discriminator == "FutureThing"));
    }

    #[test]
    fn from_counts_interleaves_types() {
        let mut generator = Generator::new(19, 1);
        let events = generator.from_counts(&counts(&[
            ("ServiceOrderUpdated", 100),
            ("ResourceUpdated", 100),
        ]));
        let first_half = tally(&events[..100]);
        assert!(first_half.get("ServiceOrderUpdated").copied().unwrap_or(0) > 20);
        assert!(first_half.get("ResourceUpdated").copied().unwrap_or(0) > 20);
    }

    #[test]
    fn three_enterprises_all_get_events() {
        let mut generator = Generator::new(23, 3);
        let keys: HashSet<IntegrationKey> = generator.keys().iter().copied().collect();
        assert_eq!(keys.len(), 3);
        let enterprise_ids: HashSet<Uuid> = keys.iter().map(|k| k.enterprise_id).collect();
        assert_eq!(enterprise_ids.len(), 3);

        let realistic: HashSet<IntegrationKey> = generator
            .realistic(1000)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(realistic, keys);
        let planned: HashSet<IntegrationKey> = generator
            .from_counts(&counts(&[("ServiceOrderUpdated", 300)]))
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(planned, keys);
    }

    #[test]
    fn reservation_ids_stay_with_one_enterprise() {
        let mut generator = Generator::new(29, 3);
        let mut owner: HashMap<Uuid, IntegrationKey> = HashMap::new();
        for (key, event) in generator.realistic(1000) {
            if event.discriminator == "ServiceOrderUpdated" {
                let first = *owner.entry(event.value.id).or_insert(key);
                assert_eq!(first, key, "reservation {}", event.value.id);
            }
        }
    }

    #[test]
    fn integration_actions_have_documented_fields() {
        let cases: [(&str, &[&str]); 7] = [
            (
                "IntegrationCreated",
                &[
                    "AccessToken",
                    "CreatedUtc",
                    "Enterprise",
                    "Integration",
                    "IsEnabled",
                    "Requestor",
                    "Service",
                ],
            ),
            ("IntegrationEnabled", &["Integration"]),
            ("IntegrationDisabled", &["Integration"]),
            ("IntegrationCanceled", &["Integration"]),
            ("IntegrationReinstated", &["Integration"]),
            ("IntegrationDeleted", &["DeletedUtc", "Integration"]),
            ("IntegrationApiKeyCreated", &["ApiKey", "Integration"]),
        ];
        assert_eq!(cases.map(|(action, _)| action), ACTIONS);

        let mut generator = Generator::new(31, 2).with_reference_time(fixed_time());
        for (action, expected) in cases {
            let hook = generator.integration(action);
            assert_eq!(hook.action, action);
            let fields: Vec<&String> = hook.data.as_object().unwrap().keys().collect();
            assert_eq!(fields, expected.to_vec(), "fields of {action}");
        }
    }

    #[test]
    fn integration_created_facts_are_realistic() {
        let mut generator = Generator::new(37, 3).with_reference_time(fixed_time());
        let keys = generator.keys().to_vec();
        let oldest = fixed_time() - MAX_CREATED_AGE;
        let mut null_requestors = 0;

        for _ in 0..200 {
            let data = generator.integration("IntegrationCreated").data;
            let integration_id: Uuid = data["Integration"]["Id"].as_str().unwrap().parse().unwrap();
            let enterprise_id: Uuid = data["Enterprise"]["Id"].as_str().unwrap().parse().unwrap();
            let key = IntegrationKey {
                enterprise_id,
                integration_id,
            };
            assert!(keys.contains(&key), "{key:?} is not a generated key");

            assert!(!data["Enterprise"]["Name"].as_str().unwrap().is_empty());
            assert!(!data["Integration"]["Name"].as_str().unwrap().is_empty());
            if !data["Service"].is_null() {
                assert_eq!(data["Service"]["Name"], "Accommodation");
            }
            if data["Requestor"].is_null() {
                null_requestors += 1;
            } else {
                assert!(data["Requestor"]["Email"].as_str().unwrap().contains('@'));
            }

            let created_text = data["CreatedUtc"].as_str().unwrap();
            assert!(created_text.ends_with('Z'), "{created_text}");
            assert_eq!(
                created_text.len(),
                "2019-12-13T14:42:52Z".len(),
                "{created_text}"
            );
            let created: DateTime<Utc> = created_text.parse().unwrap();
            assert!(
                created <= fixed_time() && created >= oldest,
                "{created_text}"
            );
        }
        assert!(null_requestors > 0, "Requestor was never null");
        assert!(null_requestors < 200, "Requestor was always null");
    }

    #[test]
    fn access_token_has_mews_shape() {
        let mut generator = Generator::new(41, 2);
        let upper_hex = |part: &str| {
            part.chars()
                .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c))
        };

        for _ in 0..50 {
            let data = generator.integration("IntegrationCreated").data;
            let token = data["AccessToken"].as_str().unwrap();
            let (prefix, secret) = token.split_once('-').unwrap();
            assert_eq!(prefix.len(), 32, "{token}");
            assert_eq!(secret.len(), 31, "{token}");
            assert!(upper_hex(prefix), "{token}");
            assert!(upper_hex(secret), "{token}");

            let integration_id = data["Integration"]["Id"].as_str().unwrap().replace('-', "");
            assert_eq!(prefix, integration_id.to_uppercase(), "{token}");
        }
    }

    #[test]
    fn parse_counts_happy_path() {
        let parsed = parse_event_counts(
            " ServiceOrderUpdated=1200 , CustomerAdded = 3,MessageAdded=0",
            false,
        );
        assert_eq!(
            parsed,
            Ok(counts(&[
                ("ServiceOrderUpdated", 1200),
                ("CustomerAdded", 3),
                ("MessageAdded", 0)
            ]))
        );
    }

    #[test]
    fn parse_counts_suggests_nearest_type() {
        let error = parse_event_counts("CustomerAded=3", false).unwrap_err();
        assert_eq!(
            error,
            CountsError::UnknownDiscriminator {
                name: "CustomerAded".to_string(),
                suggestion: Some("CustomerAdded".to_string()),
            }
        );
        let message = error.to_string();
        assert!(
            message.contains("unknown event type \"CustomerAded\""),
            "{message}"
        );
        assert!(
            message.contains("did you mean \"CustomerAdded\"?"),
            "{message}"
        );
        assert!(
            message.contains("ServiceOrderUpdated, ResourceUpdated"),
            "{message}"
        );
    }

    #[test]
    fn parse_counts_unknown_without_suggestion() {
        let error = parse_event_counts("Zebra=1", false).unwrap_err();
        assert_eq!(
            error,
            CountsError::UnknownDiscriminator {
                name: "Zebra".to_string(),
                suggestion: None
            }
        );
        assert!(!error.to_string().contains("did you mean"), "{error}");
    }

    #[test]
    fn parse_counts_rejects_bad_number() {
        for value in ["many", "-3", "1.5", "", "99999999999999999999999"] {
            let error = parse_event_counts(&format!("CustomerAdded={value}"), false).unwrap_err();
            assert_eq!(
                error,
                CountsError::InvalidCount {
                    name: "CustomerAdded".to_string(),
                    value: value.to_string()
                },
                "value {value:?}"
            );
        }
        let message = parse_event_counts("CustomerAdded=many", false)
            .unwrap_err()
            .to_string();
        assert!(message.contains("\"many\""), "{message}");
        assert!(message.contains("\"CustomerAdded\""), "{message}");
    }

    #[test]
    fn parse_counts_rejects_empty() {
        assert_eq!(parse_event_counts("", false), Err(CountsError::Empty));
        assert_eq!(parse_event_counts("  ", true), Err(CountsError::Empty));
        assert_eq!(
            parse_event_counts("CustomerAdded=1,,MessageAdded=2", false),
            Err(CountsError::EmptyEntry { position: 2 })
        );
        assert_eq!(
            parse_event_counts("CustomerAdded=1,", false),
            Err(CountsError::EmptyEntry { position: 2 })
        );
    }

    #[test]
    fn parse_counts_rejects_malformed_entry() {
        assert_eq!(
            parse_event_counts("CustomerAdded", false),
            Err(CountsError::MissingCount {
                entry: "CustomerAdded".to_string()
            })
        );
        assert_eq!(
            parse_event_counts("=3", true),
            Err(CountsError::MissingName {
                entry: "=3".to_string()
            })
        );
    }

    #[test]
    fn parse_counts_rejects_duplicate() {
        let error =
            parse_event_counts("MessageAdded=1,CustomerAdded=2,MessageAdded=3", false).unwrap_err();
        assert_eq!(
            error,
            CountsError::Duplicate {
                name: "MessageAdded".to_string()
            }
        );
        assert!(error.to_string().contains("\"MessageAdded\""), "{error}");
    }

    #[test]
    fn parse_counts_allows_unknown_on_request() {
        assert_eq!(
            parse_event_counts("FutureThing=2", true),
            Ok(counts(&[("FutureThing", 2)]))
        );
        assert!(parse_event_counts("FutureThing=2", false).is_err());
    }
}
