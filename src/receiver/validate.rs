//! Validation of request bodies against the two Mews webhook shapes.
//!
//! The check is strict on the fields Mews documents as required and
//! tolerant of everything else: unknown discriminators, unknown actions and
//! extra fields pass, because Mews adds them over time, and are counted so
//! that the receiver can report them.
//!
//! Two passes share one contract. [`fast`] deserializes straight from the
//! bytes with hand-written visitors, so a valid body costs no allocation
//! beyond unknown names and the action. It gives up on the first surprise
//! without saying why. [`detailed`] then parses into `serde_json::Value`
//! and walks it to name the failing field. The detailed pass is the
//! authority: the fast pass only ever accepts bodies that the detailed pass
//! accepts with the same summary, which the unit tests check case by case.

use std::collections::BTreeSet;
use std::fmt;

use uuid::Uuid;

use crate::payload::{DISCRIMINATORS, WebhookKind, is_known_action};

/// Top-level fields of a General Webhook.
const GENERAL_FIELDS: [&str; 3] = ["EnterpriseId", "IntegrationId", "Events"];
/// Top-level fields of an Integration Webhook.
const INTEGRATION_FIELDS: [&str; 2] = ["Action", "Data"];
/// Every top-level field of either shape, in the order the fast pass indexes them.
const TOP_FIELDS: [&str; 5] = ["EnterpriseId", "IntegrationId", "Events", "Action", "Data"];
/// Fields of one General Webhook event.
const EVENT_FIELDS: [&str; 2] = ["Discriminator", "Value"];
/// Fields of an event's `Value` object.
const VALUE_FIELDS: [&str; 1] = ["Id"];
/// Every `Data` field that some documented action uses. Bit `i` of a data
/// mask stands for `DATA_FIELDS[i]`.
const DATA_FIELDS: [&str; 9] = [
    "Enterprise",
    "Service",
    "Requestor",
    "AccessToken",
    "CreatedUtc",
    "IsEnabled",
    "Integration",
    "DeletedUtc",
    "ApiKey",
];

/// Returns the mask of `Data` fields Mews documents for `action`, or `None`
/// for an action it does not document.
fn documented_data_mask(action: &str) -> Option<u16> {
    let names: &[&str] = match action {
        "IntegrationCreated" => &[
            "Enterprise",
            "Service",
            "Requestor",
            "AccessToken",
            "CreatedUtc",
            "IsEnabled",
            "Integration",
        ],
        "IntegrationEnabled"
        | "IntegrationDisabled"
        | "IntegrationCanceled"
        | "IntegrationReinstated" => &["Integration"],
        "IntegrationDeleted" => &["DeletedUtc", "Integration"],
        "IntegrationApiKeyCreated" => &["Integration", "ApiKey"],
        _ => return None,
    };
    Some(
        names
            .iter()
            .fold(0, |mask, name| mask | data_field_bit(name)),
    )
}

fn data_field_bit(name: &str) -> u16 {
    DATA_FIELDS
        .iter()
        .position(|field| *field == name)
        .map_or(0, |index| 1 << index)
}

/// Parses a GUID in the hyphenated 8-4-4-4-12 form Mews uses. Upper-case hex
/// digits pass too, but the braced, URN and unhyphenated forms that
/// `Uuid::try_parse` also accepts do not.
fn parse_guid(text: &str) -> Option<Uuid> {
    if text.len() != 36 {
        return None;
    }
    Uuid::try_parse(text).ok()
}

/// The contents of a valid body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodySummary {
    /// A General Webhook: a batch of events for one enterprise integration.
    General(GeneralSummary),
    /// An Integration Webhook: one lifecycle action.
    Integration(IntegrationSummary),
}

impl BodySummary {
    /// Returns the webhook kind.
    pub fn kind(&self) -> WebhookKind {
        match self {
            BodySummary::General(_) => WebhookKind::General,
            BodySummary::Integration(_) => WebhookKind::Integration,
        }
    }

    /// Returns the number of events: the length of `Events`, or 0 for an
    /// Integration Webhook.
    pub fn event_count(&self) -> usize {
        match self {
            BodySummary::General(general) => general.event_count,
            BodySummary::Integration(_) => 0,
        }
    }

    /// Returns the number of fields the receiver does not know, counted
    /// per occurrence.
    pub fn unknown_fields(&self) -> usize {
        match self {
            BodySummary::General(general) => general.unknown_fields,
            BodySummary::Integration(integration) => integration.unknown_fields,
        }
    }
}

/// The facts of a valid General Webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneralSummary {
    /// `EnterpriseId`.
    pub enterprise_id: Uuid,
    /// `IntegrationId`.
    pub integration_id: Uuid,
    /// The length of `Events`.
    pub event_count: usize,
    /// Discriminators outside [`DISCRIMINATORS`], each once.
    pub unknown_discriminators: BTreeSet<String>,
    /// Extra fields at the top level, in events and in event values, counted
    /// per occurrence.
    pub unknown_fields: usize,
    /// Bit `i` is set when `DISCRIMINATORS[i]` occurs.
    known_discriminators: u8,
}

impl GeneralSummary {
    /// Lists the documented discriminators that occur, in [`DISCRIMINATORS`]
    /// order.
    pub fn known_discriminators(&self) -> impl Iterator<Item = &'static str> + '_ {
        DISCRIMINATORS
            .iter()
            .enumerate()
            .filter(|(index, _)| self.known_discriminators & (1 << index) != 0)
            .map(|(_, name)| *name)
    }

    /// Counts the distinct discriminators, known and unknown.
    pub fn distinct_discriminators(&self) -> usize {
        self.known_discriminators.count_ones() as usize + self.unknown_discriminators.len()
    }
}

/// The facts of a valid Integration Webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationSummary {
    /// `Action`.
    pub action: String,
    /// Whether `Action` is one of the documented actions.
    pub known_action: bool,
    /// Extra top-level fields, plus `Data` fields that a documented action
    /// does not list. `Data` of an unknown action adds nothing because its
    /// fields are unknown.
    pub unknown_fields: usize,
}

impl IntegrationSummary {
    fn new(
        action: String,
        data_mask: u16,
        data_other_fields: usize,
        top_unknown_fields: usize,
    ) -> Self {
        let data_unknown_fields = match documented_data_mask(&action) {
            Some(documented) => data_other_fields + (data_mask & !documented).count_ones() as usize,
            None => 0,
        };
        IntegrationSummary {
            known_action: is_known_action(&action),
            action,
            unknown_fields: top_unknown_fields + data_unknown_fields,
        }
    }
}

/// A discriminator, classified.
enum Discriminator {
    /// The index into [`DISCRIMINATORS`].
    Known(usize),
    Unknown(String),
}

fn classify_discriminator(name: &str) -> Discriminator {
    match DISCRIMINATORS.iter().position(|known| *known == name) {
        Some(index) => Discriminator::Known(index),
        None => Discriminator::Unknown(name.to_string()),
    }
}

/// The running totals over `Events`, shared by both passes.
#[derive(Default)]
struct EventTally {
    count: usize,
    known: u8,
    unknown: BTreeSet<String>,
    unknown_fields: usize,
}

impl EventTally {
    fn add(&mut self, discriminator: Discriminator, unknown_fields: usize) {
        self.count += 1;
        self.unknown_fields += unknown_fields;
        match discriminator {
            Discriminator::Known(index) => self.known |= 1 << index,
            Discriminator::Unknown(name) => {
                self.unknown.insert(name);
            }
        }
    }

    fn into_summary(
        self,
        enterprise_id: Uuid,
        integration_id: Uuid,
        top_unknown_fields: usize,
    ) -> GeneralSummary {
        GeneralSummary {
            enterprise_id,
            integration_id,
            event_count: self.count,
            unknown_discriminators: self.unknown,
            unknown_fields: self.unknown_fields + top_unknown_fields,
            known_discriminators: self.known,
        }
    }
}

/// The reason a body is not a valid Mews webhook.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The body has no bytes.
    #[error("body is empty; expected a JSON object")]
    Empty,
    /// The body does not parse as JSON.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// The body is JSON but not an object.
    #[error("body: expected a JSON object, got {0}")]
    NotAnObject(&'static str),
    /// The body has fields of both shapes.
    #[error(
        "body has both General Webhook fields (EnterpriseId, IntegrationId, Events) \
         and Integration Webhook fields (Action, Data); send one shape per message"
    )]
    BothShapes,
    /// The body has fields of neither shape.
    #[error(
        "body has neither General Webhook fields (EnterpriseId, IntegrationId, Events) \
         nor Integration Webhook fields (Action, Data)"
    )]
    NeitherShape,
    /// A required field is missing or has the wrong type.
    #[error("{path}: {problem}")]
    Field {
        /// The field, for example `Events[3].Value.Id`.
        path: String,
        /// The problem with the field.
        problem: FieldProblem,
    },
}

/// The problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldProblem {
    /// The field is absent.
    Missing,
    /// The field has a JSON type other than the one required.
    WrongType {
        /// The required type, for example "a string".
        expected: &'static str,
        /// The type found, for example "a number".
        found: &'static str,
    },
    /// The field is a string but not a hyphenated GUID. Holds the string,
    /// shortened to 40 characters.
    NotAGuid(String),
}

/// The number of characters of an offending value that an error shows.
pub const MAX_SHOWN_CHARS: usize = 40;

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldProblem::Missing => f.write_str("missing"),
            FieldProblem::WrongType { expected, found } => {
                write!(f, "expected {expected}, got {found}")
            }
            FieldProblem::NotAGuid(text) => write!(
                f,
                "expected a GUID string such as 851df8c8-90f2-4c4a-8e01-a4fc46b25178, got {text:?}"
            ),
        }
    }
}

/// Checks `body` against the General and Integration Webhook shapes and
/// returns what it contains, or the first field that is wrong.
///
/// The kind comes from the top-level keys: any of `EnterpriseId`,
/// `IntegrationId` or `Events` makes a General Webhook, any of `Action` or
/// `Data` an Integration Webhook, and a body with both or neither is
/// rejected. A General Webhook requires `EnterpriseId` and `IntegrationId`
/// as GUID strings and `Events` as an array whose items are objects with a
/// string `Discriminator` and an object `Value` with a GUID string `Id`. An
/// Integration Webhook requires a string `Action` and an object `Data`,
/// whose content is not checked.
pub fn validate_body(body: &[u8]) -> Result<BodySummary, BodyError> {
    match fast::check(body) {
        Some(summary) => Ok(summary),
        None => detailed::check(body),
    }
}

/// The allocation-free pass: hand-written serde visitors that accept only
/// what the detailed pass accepts, and give up on anything else.
mod fast {
    use std::fmt;

    use serde::de::{
        self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
    };
    use uuid::Uuid;

    use super::{
        BodySummary, DATA_FIELDS, Discriminator, EVENT_FIELDS, EventTally, IntegrationSummary,
        TOP_FIELDS, VALUE_FIELDS, classify_discriminator, parse_guid,
    };

    /// Returns the summary of a valid body, or `None` when the detailed pass
    /// must decide.
    pub(super) fn check(body: &[u8]) -> Option<BodySummary> {
        serde_json::from_slice::<Top>(body).ok()?.into_summary()
    }

    /// Builds the error every visitor gives up with. Its text is never shown.
    fn give_up<E: de::Error>() -> E {
        E::custom("left to the detailed pass")
    }

    /// Rejects a second occurrence of a field. `serde_json::Value` keeps
    /// the last one silently, so the detailed pass decides such bodies.
    fn ensure_first<T, E: de::Error>(slot: &Option<T>) -> Result<(), E> {
        match slot {
            Some(_) => Err(give_up()),
            None => Ok(()),
        }
    }

    /// Reads a map key as its index in a list of names, or `None` for any
    /// other name, without allocating.
    struct KeyIndex(&'static [&'static str]);

    impl<'de> DeserializeSeed<'de> for KeyIndex {
        type Value = Option<usize>;

        fn deserialize<D: Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_identifier(self)
        }
    }

    impl Visitor<'_> for KeyIndex {
        type Value = Option<usize>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a field name")
        }

        fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
            Ok(self.0.iter().position(|known| *known == name))
        }
    }

    /// A GUID string.
    struct Guid(Uuid);

    impl<'de> Deserialize<'de> for Guid {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_str(GuidVisitor)
        }
    }

    struct GuidVisitor;

    impl Visitor<'_> for GuidVisitor {
        type Value = Guid;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a GUID string")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Guid, E> {
            parse_guid(text).map(Guid).ok_or_else(give_up)
        }
    }

    /// A discriminator string, classified while it is borrowed.
    struct DiscriminatorName(Discriminator);

    impl<'de> Deserialize<'de> for DiscriminatorName {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_str(DiscriminatorVisitor)
        }
    }

    struct DiscriminatorVisitor;

    impl Visitor<'_> for DiscriminatorVisitor {
        type Value = DiscriminatorName;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a discriminator string")
        }

        fn visit_str<E: de::Error>(self, name: &str) -> Result<DiscriminatorName, E> {
            Ok(DiscriminatorName(classify_discriminator(name)))
        }
    }

    /// An event's `Value` object, reduced to its count of extra fields.
    struct EventValue {
        unknown_fields: usize,
    }

    impl<'de> Deserialize<'de> for EventValue {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            // `deserialize_map` rejects arrays, unlike the `deserialize_struct`
            // that derived impls use.
            deserializer.deserialize_map(EventValueVisitor)
        }
    }

    struct EventValueVisitor;

    impl<'de> Visitor<'de> for EventValueVisitor {
        type Value = EventValue;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an event value object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EventValue, A::Error> {
            let mut id = None;
            let mut unknown_fields = 0;
            while let Some(key) = map.next_key_seed(KeyIndex(&VALUE_FIELDS))? {
                match key {
                    Some(_) => {
                        ensure_first(&id)?;
                        id = Some(map.next_value::<Guid>()?);
                    }
                    None => {
                        map.next_value::<IgnoredAny>()?;
                        unknown_fields += 1;
                    }
                }
            }
            id.ok_or_else(give_up)?;
            Ok(EventValue { unknown_fields })
        }
    }

    /// One event, reduced to its discriminator and count of extra fields.
    struct Event {
        discriminator: Discriminator,
        unknown_fields: usize,
    }

    impl<'de> Deserialize<'de> for Event {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_map(EventVisitor)
        }
    }

    struct EventVisitor;

    impl<'de> Visitor<'de> for EventVisitor {
        type Value = Event;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an event object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
            let mut discriminator = None;
            let mut value = None;
            let mut unknown_fields = 0;
            while let Some(key) = map.next_key_seed(KeyIndex(&EVENT_FIELDS))? {
                match key {
                    Some(0) => {
                        ensure_first(&discriminator)?;
                        discriminator = Some(map.next_value::<DiscriminatorName>()?.0);
                    }
                    Some(_) => {
                        ensure_first(&value)?;
                        value = Some(map.next_value::<EventValue>()?);
                    }
                    None => {
                        map.next_value::<IgnoredAny>()?;
                        unknown_fields += 1;
                    }
                }
            }
            let discriminator = discriminator.ok_or_else(give_up)?;
            let value = value.ok_or_else(give_up)?;
            Ok(Event {
                discriminator,
                unknown_fields: unknown_fields + value.unknown_fields,
            })
        }
    }

    /// The `Events` array, reduced to its tally.
    struct Events(EventTally);

    impl<'de> Deserialize<'de> for Events {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_seq(EventsVisitor)
        }
    }

    struct EventsVisitor;

    impl<'de> Visitor<'de> for EventsVisitor {
        type Value = Events;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of events")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Events, A::Error> {
            let mut tally = EventTally::default();
            while let Some(event) = seq.next_element::<Event>()? {
                tally.add(event.discriminator, event.unknown_fields);
            }
            Ok(Events(tally))
        }
    }

    /// The `Data` object, reduced to which documented fields it has and how
    /// many others.
    struct Data {
        mask: u16,
        other_fields: usize,
    }

    impl<'de> Deserialize<'de> for Data {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_map(DataVisitor)
        }
    }

    struct DataVisitor;

    impl<'de> Visitor<'de> for DataVisitor {
        type Value = Data;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a data object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Data, A::Error> {
            let mut data = Data {
                mask: 0,
                other_fields: 0,
            };
            while let Some(key) = map.next_key_seed(KeyIndex(&DATA_FIELDS))? {
                map.next_value::<IgnoredAny>()?;
                match key {
                    Some(index) if data.mask & (1 << index) != 0 => return Err(give_up()),
                    Some(index) => data.mask |= 1 << index,
                    // NOTE: a repeated unknown key counts twice here but once
                    // in the detailed pass. Only the unknown-field count
                    // differs, and only for such malformed JSON.
                    None => data.other_fields += 1,
                }
            }
            Ok(data)
        }
    }

    /// The top-level object, with each field of either shape when present.
    #[derive(Default)]
    struct Top {
        enterprise_id: Option<Uuid>,
        integration_id: Option<Uuid>,
        events: Option<EventTally>,
        action: Option<String>,
        data: Option<Data>,
        unknown_fields: usize,
    }

    impl Top {
        fn into_summary(self) -> Option<BodySummary> {
            let general = self.enterprise_id.is_some()
                || self.integration_id.is_some()
                || self.events.is_some();
            let integration = self.action.is_some() || self.data.is_some();
            match (general, integration) {
                (true, false) => {
                    let summary = self.events?.into_summary(
                        self.enterprise_id?,
                        self.integration_id?,
                        self.unknown_fields,
                    );
                    Some(BodySummary::General(summary))
                }
                (false, true) => {
                    let data = self.data?;
                    let summary = IntegrationSummary::new(
                        self.action?,
                        data.mask,
                        data.other_fields,
                        self.unknown_fields,
                    );
                    Some(BodySummary::Integration(summary))
                }
                _ => None,
            }
        }
    }

    impl<'de> Deserialize<'de> for Top {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_map(TopVisitor)
        }
    }

    struct TopVisitor;

    impl<'de> Visitor<'de> for TopVisitor {
        type Value = Top;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a webhook object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
            let mut top = Top::default();
            while let Some(key) = map.next_key_seed(KeyIndex(&TOP_FIELDS))? {
                match key {
                    Some(0) => {
                        ensure_first(&top.enterprise_id)?;
                        top.enterprise_id = Some(map.next_value::<Guid>()?.0);
                    }
                    Some(1) => {
                        ensure_first(&top.integration_id)?;
                        top.integration_id = Some(map.next_value::<Guid>()?.0);
                    }
                    Some(2) => {
                        ensure_first(&top.events)?;
                        top.events = Some(map.next_value::<Events>()?.0);
                    }
                    Some(3) => {
                        ensure_first(&top.action)?;
                        top.action = Some(map.next_value::<String>()?);
                    }
                    Some(_) => {
                        ensure_first(&top.data)?;
                        top.data = Some(map.next_value::<Data>()?);
                    }
                    None => {
                        map.next_value::<IgnoredAny>()?;
                        top.unknown_fields += 1;
                    }
                }
            }
            Ok(top)
        }
    }
}

/// The pass that names the failing field, over `serde_json::Value`.
mod detailed {
    use serde_json::{Map, Value};
    use uuid::Uuid;

    use super::{
        BodyError, BodySummary, DATA_FIELDS, EVENT_FIELDS, EventTally, FieldProblem,
        GENERAL_FIELDS, INTEGRATION_FIELDS, IntegrationSummary, MAX_SHOWN_CHARS, VALUE_FIELDS,
        classify_discriminator, data_field_bit, parse_guid,
    };

    pub(super) fn check(body: &[u8]) -> Result<BodySummary, BodyError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(BodyError::Empty);
        }
        let value: Value = serde_json::from_slice(body)
            .map_err(|error| BodyError::InvalidJson(error.to_string()))?;
        let Value::Object(object) = &value else {
            return Err(BodyError::NotAnObject(type_name(&value)));
        };

        let general = GENERAL_FIELDS.iter().any(|name| object.contains_key(*name));
        let integration = INTEGRATION_FIELDS
            .iter()
            .any(|name| object.contains_key(*name));
        match (general, integration) {
            (true, true) => Err(BodyError::BothShapes),
            (false, false) => Err(BodyError::NeitherShape),
            (true, false) => check_general(object),
            (false, true) => check_integration(object),
        }
    }

    fn check_general(object: &Map<String, Value>) -> Result<BodySummary, BodyError> {
        let enterprise_id = require_guid(object, "EnterpriseId", "")?;
        let integration_id = require_guid(object, "IntegrationId", "")?;
        let events = match object.get("Events") {
            Some(Value::Array(events)) => events,
            Some(other) => return Err(wrong_type("Events".to_string(), "an array", other)),
            None => return Err(missing("Events".to_string())),
        };

        let mut tally = EventTally::default();
        for (index, event) in events.iter().enumerate() {
            let path = format!("Events[{index}]");
            let Value::Object(event) = event else {
                return Err(wrong_type(path, "an object", event));
            };
            let discriminator = match event.get("Discriminator") {
                Some(Value::String(name)) => classify_discriminator(name),
                Some(other) => {
                    return Err(wrong_type(
                        format!("{path}.Discriminator"),
                        "a string",
                        other,
                    ));
                }
                None => return Err(missing(format!("{path}.Discriminator"))),
            };
            let value = match event.get("Value") {
                Some(Value::Object(value)) => value,
                Some(other) => return Err(wrong_type(format!("{path}.Value"), "an object", other)),
                None => return Err(missing(format!("{path}.Value"))),
            };
            require_guid(value, "Id", &format!("{path}.Value."))?;
            let unknown_fields =
                count_unknown(event, &EVENT_FIELDS) + count_unknown(value, &VALUE_FIELDS);
            tally.add(discriminator, unknown_fields);
        }

        let top_unknown_fields = count_unknown(object, &GENERAL_FIELDS);
        let summary = tally.into_summary(enterprise_id, integration_id, top_unknown_fields);
        Ok(BodySummary::General(summary))
    }

    fn check_integration(object: &Map<String, Value>) -> Result<BodySummary, BodyError> {
        let action = match object.get("Action") {
            Some(Value::String(action)) => action,
            Some(other) => return Err(wrong_type("Action".to_string(), "a string", other)),
            None => return Err(missing("Action".to_string())),
        };
        let data = match object.get("Data") {
            Some(Value::Object(data)) => data,
            Some(other) => return Err(wrong_type("Data".to_string(), "an object", other)),
            None => return Err(missing("Data".to_string())),
        };

        let data_mask = data
            .keys()
            .fold(0, |mask, name| mask | data_field_bit(name));
        let data_other_fields = count_unknown(data, &DATA_FIELDS);
        let top_unknown_fields = count_unknown(object, &INTEGRATION_FIELDS);
        let summary = IntegrationSummary::new(
            action.clone(),
            data_mask,
            data_other_fields,
            top_unknown_fields,
        );
        Ok(BodySummary::Integration(summary))
    }

    /// Reads `object[name]` as a GUID; `prefix` is the path of `object`
    /// with a trailing dot, or empty at the top level.
    fn require_guid(
        object: &Map<String, Value>,
        name: &str,
        prefix: &str,
    ) -> Result<Uuid, BodyError> {
        let path = || format!("{prefix}{name}");
        match object.get(name) {
            Some(Value::String(text)) => parse_guid(text).ok_or_else(|| BodyError::Field {
                path: path(),
                problem: FieldProblem::NotAGuid(text.chars().take(MAX_SHOWN_CHARS).collect()),
            }),
            Some(other) => Err(wrong_type(path(), "a GUID string", other)),
            None => Err(missing(path())),
        }
    }

    fn count_unknown(object: &Map<String, Value>, known: &[&str]) -> usize {
        object
            .keys()
            .filter(|name| !known.contains(&name.as_str()))
            .count()
    }

    fn missing(path: String) -> BodyError {
        BodyError::Field {
            path,
            problem: FieldProblem::Missing,
        }
    }

    fn wrong_type(path: String, expected: &'static str, found: &Value) -> BodyError {
        BodyError::Field {
            path,
            problem: FieldProblem::WrongType {
                expected,
                found: type_name(found),
            },
        }
    }

    fn type_name(value: &Value) -> &'static str {
        match value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTERPRISE: &str = "851df8c8-90f2-4c4a-8e01-a4fc46b25178";
    const INTEGRATION: &str = "c8bee838-7fb1-4f4e-8fac-ac87008b2f90";
    const ENTITY: &str = "bfee2c44-1f84-4326-a862-5289598f6e2d";

    fn general(events: &str) -> String {
        format!(
            r#"{{"EnterpriseId":"{ENTERPRISE}","IntegrationId":"{INTEGRATION}","Events":{events}}}"#
        )
    }

    fn event(discriminator: &str) -> String {
        format!(r#"{{"Discriminator":"{discriminator}","Value":{{"Id":"{ENTITY}"}}}}"#)
    }

    /// Bodies that must pass, each with the expected (kind, events, unknown fields).
    fn valid_cases() -> Vec<(String, WebhookKind, usize, usize)> {
        let three = format!(
            "[{},{},{}]",
            event("ServiceOrderUpdated"),
            event("CustomerAdded"),
            event("CustomerUpdated")
        );
        vec![
            (general(&three), WebhookKind::General, 3, 0),
            (general("[]"), WebhookKind::General, 0, 0),
            (general(&format!("[{}]", event("SomethingNew"))), WebhookKind::General, 1, 0),
            (
                general(&format!(r#"[{{"Discriminator":"CustomerAdded","Value":{{"Id":"{ENTITY}","Extra":1}},"Extra":[1]}}]"#)),
                WebhookKind::General,
                1,
                2,
            ),
            (
                format!(r#"{{"Future":{{"a":[1,2]}},"EnterpriseId":"{ENTERPRISE}","IntegrationId":"{INTEGRATION}","Events":[]}}"#),
                WebhookKind::General,
                0,
                1,
            ),
            (
                // Escaped strings take the owned path through the visitors.
                general(&format!(r#"[{{"Discriminator":"Customer\u0041dded","Value":{{"Id":"{ENTITY}"}}}}]"#)),
                WebhookKind::General,
                1,
                0,
            ),
            (
                general(&format!(r#"[{{"Value":{{"Id":"{}"}},"Discriminator":"PaymentUpdated"}}]"#, ENTITY.to_uppercase())),
                WebhookKind::General,
                1,
                0,
            ),
            (
                r#"{"Action":"IntegrationCreated","Data":{"Enterprise":{"Id":"x"},"Requestor":null,"AccessToken":"a","IsEnabled":true,"Integration":{}}}"#.to_string(),
                WebhookKind::Integration,
                0,
                0,
            ),
            (
                r#"{"Action":"IntegrationEnabled","Data":{"Integration":{},"DeletedUtc":"x","Novel":1},"Extra":null}"#.to_string(),
                WebhookKind::Integration,
                0,
                3,
            ),
            (
                r#"{"Action":"IntegrationTransferred","Data":{"Anything":1}}"#.to_string(),
                WebhookKind::Integration,
                0,
                0,
            ),
        ]
    }

    /// Bodies that must fail, each with the start of the expected message.
    fn invalid_cases() -> Vec<(String, &'static str)> {
        vec![
            (String::new(), "body is empty"),
            ("{".to_string(), "invalid JSON"),
            (
                "[1]".to_string(),
                "body: expected a JSON object, got an array",
            ),
            ("{}".to_string(), "body has neither"),
            (r#"{"Foo":1}"#.to_string(), "body has neither"),
            (
                r#"{"Action":"A","Data":{},"Events":[]}"#.to_string(),
                "body has both",
            ),
            (
                format!(r#"{{"IntegrationId":"{INTEGRATION}","Events":[]}}"#),
                "EnterpriseId: missing",
            ),
            (
                format!(r#"{{"EnterpriseId":"{ENTERPRISE}","IntegrationId":"nope","Events":[]}}"#),
                "IntegrationId: expected a GUID string such as",
            ),
            (
                format!(
                    r#"{{"EnterpriseId":"{{{ENTERPRISE}}}","IntegrationId":"{INTEGRATION}","Events":[]}}"#
                ),
                "EnterpriseId: expected a GUID string such as",
            ),
            (
                format!(r#"{{"EnterpriseId":5,"IntegrationId":"{INTEGRATION}","Events":[]}}"#),
                "EnterpriseId: expected a GUID string, got a number",
            ),
            (
                format!(r#"{{"EnterpriseId":"{ENTERPRISE}","IntegrationId":"{INTEGRATION}"}}"#),
                "Events: missing",
            ),
            (general("{}"), "Events: expected an array, got an object"),
            (
                general("[1]"),
                "Events[0]: expected an object, got a number",
            ),
            (
                general(&format!(
                    r#"[{},{{"Value":{{"Id":"{ENTITY}"}}}}]"#,
                    event("CustomerAdded")
                )),
                "Events[1].Discriminator: missing",
            ),
            (
                general(r#"[{"Discriminator":7,"Value":{}}]"#),
                "Events[0].Discriminator: expected a string, got a number",
            ),
            (
                general(r#"[{"Discriminator":"CustomerAdded"}]"#),
                "Events[0].Value: missing",
            ),
            (
                general(r#"[{"Discriminator":"CustomerAdded","Value":["x"]}]"#),
                "Events[0].Value: expected an object, got an array",
            ),
            (
                general(r#"[{"Discriminator":"CustomerAdded","Value":{}}]"#),
                "Events[0].Value.Id: missing",
            ),
            (
                general(r#"[{"Discriminator":"CustomerAdded","Value":{"Id":null}}]"#),
                "Events[0].Value.Id: expected a GUID string, got null",
            ),
            (r#"{"Data":{}}"#.to_string(), "Action: missing"),
            (
                r#"{"Action":1,"Data":{}}"#.to_string(),
                "Action: expected a string, got a number",
            ),
            (
                r#"{"Action":"IntegrationEnabled"}"#.to_string(),
                "Data: missing",
            ),
            (
                r#"{"Action":"IntegrationEnabled","Data":null}"#.to_string(),
                "Data: expected an object, got null",
            ),
        ]
    }

    #[test]
    fn valid_bodies_pass_with_expected_counts() {
        for (body, kind, events, unknown_fields) in valid_cases() {
            let summary =
                validate_body(body.as_bytes()).unwrap_or_else(|error| panic!("{body}: {error}"));
            assert_eq!(summary.kind(), kind, "kind of {body}");
            assert_eq!(summary.event_count(), events, "events of {body}");
            assert_eq!(
                summary.unknown_fields(),
                unknown_fields,
                "unknown fields of {body}"
            );
        }
    }

    #[test]
    fn invalid_bodies_name_the_field() {
        for (body, expected) in invalid_cases() {
            let error = validate_body(body.as_bytes()).expect_err(&body).to_string();
            assert!(
                error.starts_with(expected),
                "{body}: got {error:?}, expected it to start with {expected:?}"
            );
        }
    }

    #[test]
    fn fast_pass_agrees_with_detailed_pass() {
        let bodies = valid_cases()
            .into_iter()
            .map(|case| case.0)
            .chain(invalid_cases().into_iter().map(|case| case.0));
        for body in bodies {
            if let Some(fast) = fast::check(body.as_bytes()) {
                assert_eq!(detailed::check(body.as_bytes()), Ok(fast), "{body}");
            }
        }
    }

    #[test]
    fn fast_pass_accepts_every_valid_case() {
        // Without this, a fast pass that always defers would pass every other test.
        for (body, ..) in valid_cases() {
            assert!(fast::check(body.as_bytes()).is_some(), "{body}");
        }
    }

    #[test]
    fn duplicate_keys_keep_the_last_value() {
        let body = format!(
            r#"{{"EnterpriseId":"x","EnterpriseId":"{ENTERPRISE}","IntegrationId":"{INTEGRATION}","Events":[]}}"#
        );
        assert_eq!(fast::check(body.as_bytes()), None);
        let summary = validate_body(body.as_bytes()).expect("the last EnterpriseId is valid");
        assert_eq!(summary.kind(), WebhookKind::General);
    }

    #[test]
    fn general_summary_lists_discriminators() {
        let events = format!(
            "[{},{},{},{}]",
            event("CustomerUpdated"),
            event("CustomerAdded"),
            event("Mystery"),
            event("CustomerAdded")
        );
        let Ok(BodySummary::General(summary)) = validate_body(general(&events).as_bytes()) else {
            panic!("expected a valid General Webhook");
        };
        assert_eq!(summary.event_count, 4);
        assert_eq!(summary.distinct_discriminators(), 3);
        assert_eq!(
            summary.known_discriminators().collect::<Vec<_>>(),
            ["CustomerAdded", "CustomerUpdated"]
        );
        assert_eq!(
            summary.unknown_discriminators.iter().collect::<Vec<_>>(),
            ["Mystery"]
        );
        assert_eq!(summary.enterprise_id.to_string(), ENTERPRISE);
    }

    #[test]
    fn integration_summary_flags_unknown_action() {
        let body = r#"{"Action":"IntegrationTransferred","Data":{}}"#;
        let Ok(BodySummary::Integration(summary)) = validate_body(body.as_bytes()) else {
            panic!("expected a valid Integration Webhook");
        };
        assert_eq!(summary.action, "IntegrationTransferred");
        assert!(!summary.known_action);
    }

    #[test]
    fn long_bad_guid_is_shortened() {
        let long = "z".repeat(500);
        let body =
            format!(r#"{{"EnterpriseId":"{long}","IntegrationId":"{INTEGRATION}","Events":[]}}"#);
        let error = validate_body(body.as_bytes()).unwrap_err().to_string();
        assert!(error.len() < 200, "{error}");
    }
}
