//! The Mews webhook payload model: General Webhooks (batched events) and
//! Integration Webhooks (one action each).
//!
//! Field names are PascalCase as Mews sends them, GUIDs are lower-case and
//! timestamps are UTC with a trailing `Z`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The seven General Webhook discriminators Mews documents.
pub const DISCRIMINATORS: [&str; 7] = [
    "ServiceOrderUpdated",
    "ResourceUpdated",
    "MessageAdded",
    "ResourceBlockUpdated",
    "CustomerAdded",
    "CustomerUpdated",
    "PaymentUpdated",
];

/// The seven Integration Webhook actions Mews documents.
pub const ACTIONS: [&str; 7] = [
    "IntegrationCreated",
    "IntegrationEnabled",
    "IntegrationDisabled",
    "IntegrationCanceled",
    "IntegrationReinstated",
    "IntegrationDeleted",
    "IntegrationApiKeyCreated",
];

/// Returns whether `name` is one of the documented discriminators.
pub fn is_known_discriminator(name: &str) -> bool {
    DISCRIMINATORS.contains(&name)
}

/// Returns whether `name` is one of the documented Integration actions.
pub fn is_known_action(name: &str) -> bool {
    ACTIONS.contains(&name)
}

/// Returns the documented word closest to `word`, if one is close enough to
/// be a likely typo.
pub fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|candidate| (strsim::damerau_levenshtein(word, candidate), *candidate))
        .filter(|(distance, _)| *distance <= 3)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// The pair that owns a General Webhook message: Mews sends one message per
/// enterprise integration, so batches never mix two keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IntegrationKey {
    /// The enterprise (hotel or chain member) the events happened in.
    pub enterprise_id: Uuid,
    /// The integration registered for that enterprise.
    pub integration_id: Uuid,
}

/// One General Webhook event: a discriminator and the id of the entity it
/// concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Event {
    /// The event type, for example `CustomerAdded`. Unknown types are
    /// allowed because Mews adds discriminators over time.
    pub discriminator: String,
    /// The entity reference; today always `{ "Id": ... }`.
    pub value: EventValue,
}

/// The `Value` object of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventValue {
    /// The entity id, a lower-case GUID.
    pub id: Uuid,
}

impl Event {
    /// Builds an event of type `discriminator` for entity `id`.
    pub fn new(discriminator: impl Into<String>, id: Uuid) -> Self {
        Event {
            discriminator: discriminator.into(),
            value: EventValue { id },
        }
    }
}

/// A General Webhook message body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GeneralWebhook {
    /// The enterprise all events belong to.
    pub enterprise_id: Uuid,
    /// The integration the message is sent for.
    pub integration_id: Uuid,
    /// The events, in the order they happened.
    pub events: Vec<Event>,
}

impl GeneralWebhook {
    /// Builds a message for `key` carrying `events`.
    pub fn new(key: IntegrationKey, events: Vec<Event>) -> Self {
        GeneralWebhook {
            enterprise_id: key.enterprise_id,
            integration_id: key.integration_id,
            events,
        }
    }

    /// Serializes the message to the JSON bytes sent on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain structs of strings and UUIDs cannot fail.
        serde_json::to_vec(self).expect("a General Webhook always serializes")
    }
}

/// A `{ "Id", "Name" }` reference used throughout Integration Webhook data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NamedRef {
    /// The referenced object's id.
    pub id: Uuid,
    /// Its display name.
    pub name: String,
}

/// The person who requested an integration, when Mews has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Requestor {
    /// The requestor's name.
    pub name: String,
    /// The requestor's e-mail address.
    pub email: String,
}

/// An Integration Webhook message body: one action and its data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IntegrationWebhook {
    /// The action name, for example `IntegrationCreated`.
    pub action: String,
    /// The action's data, with exactly the fields Mews documents for it.
    pub data: serde_json::Value,
}

/// The facts an Integration Webhook is built from. Each action picks the
/// fields Mews documents for it.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationFacts {
    /// The enterprise the integration belongs to.
    pub enterprise: NamedRef,
    /// The service the integration is connected to, if any.
    pub service: Option<NamedRef>,
    /// The person who requested the integration, if known.
    pub requestor: Option<Requestor>,
    /// The access token issued to the integration.
    pub access_token: String,
    /// When the integration was created.
    pub created_utc: DateTime<Utc>,
    /// When the integration was deleted (used by `IntegrationDeleted`).
    pub deleted_utc: DateTime<Utc>,
    /// Whether the integration is enabled.
    pub is_enabled: bool,
    /// The integration itself.
    pub integration: NamedRef,
    /// The API key created (used by `IntegrationApiKeyCreated`).
    pub api_key: NamedRef,
}

/// Formats a timestamp the way Mews does: UTC, whole seconds, trailing `Z`.
pub fn format_utc(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl IntegrationWebhook {
    /// Builds the webhook for `action` from `facts`. An action outside the
    /// documented seven gets only `Integration`, which is how a receiver
    /// meets an action Mews adds later.
    pub fn from_facts(action: &str, facts: &IntegrationFacts) -> Self {
        use serde_json::json;

        let integration = json!(facts.integration);
        let data = match action {
            "IntegrationCreated" => json!({
                "Enterprise": facts.enterprise,
                "Service": facts.service,
                "Requestor": facts.requestor,
                "AccessToken": facts.access_token,
                "CreatedUtc": format_utc(facts.created_utc),
                "IsEnabled": facts.is_enabled,
                "Integration": integration,
            }),
            "IntegrationDeleted" => json!({
                "DeletedUtc": format_utc(facts.deleted_utc),
                "Integration": integration,
            }),
            "IntegrationApiKeyCreated" => json!({
                "Integration": integration,
                "ApiKey": facts.api_key,
            }),
            _ => json!({ "Integration": integration }),
        };
        IntegrationWebhook {
            action: action.to_string(),
            data,
        }
    }

    /// Serializes the message to the JSON bytes sent on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an Integration Webhook always serializes")
    }
}

/// The two kinds of Mews webhook, each registered at its own URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookKind {
    /// General Webhooks: batched entity events.
    General,
    /// Integration Webhooks: one lifecycle action per message.
    Integration,
}

impl std::fmt::Display for WebhookKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebhookKind::General => f.write_str("general"),
            WebhookKind::Integration => f.write_str("integration"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> IntegrationFacts {
        let id = |n: u128| Uuid::from_u128(n);
        let named = |n: u128, name: &str| NamedRef {
            id: id(n),
            name: name.to_string(),
        };
        IntegrationFacts {
            enterprise: named(1, "Sample Hotel"),
            service: Some(named(2, "Accommodation")),
            requestor: None,
            access_token: "TOKEN-1".to_string(),
            created_utc: DateTime::from_timestamp(1_576_248_172, 0).unwrap(),
            deleted_utc: DateTime::from_timestamp(1_576_248_200, 0).unwrap(),
            is_enabled: true,
            integration: named(3, "WebhookTEST"),
            api_key: named(4, "Key"),
        }
    }

    #[test]
    fn general_webhook_field_casing() {
        let key = IntegrationKey {
            enterprise_id: Uuid::from_u128(0xABCD),
            integration_id: Uuid::from_u128(0xEF01),
        };
        let body = GeneralWebhook::new(key, vec![Event::new("CustomerAdded", key.enterprise_id)]);
        let text = String::from_utf8(body.to_bytes()).unwrap();
        assert!(text.starts_with(r#"{"EnterpriseId":"00000000-0000-0000-0000-00000000abcd""#));
        assert!(text.contains(r#""Events":[{"Discriminator":"CustomerAdded","Value":{"Id":"#));
        assert!(!text.contains("ABCD"));
    }

    #[test]
    fn integration_created_has_documented_fields() {
        let hook = IntegrationWebhook::from_facts("IntegrationCreated", &facts());
        let fields: Vec<&String> = hook.data.as_object().unwrap().keys().collect();
        let mut expected = vec![
            "AccessToken",
            "CreatedUtc",
            "Enterprise",
            "Integration",
            "IsEnabled",
            "Requestor",
            "Service",
        ];
        expected.sort();
        assert_eq!(fields, expected);
        assert_eq!(hook.data["CreatedUtc"], "2019-12-13T14:42:52Z");
        assert!(hook.data["Requestor"].is_null());
    }

    #[test]
    fn each_action_has_its_documented_fields() {
        let cases: [(&str, &[&str]); 6] = [
            ("IntegrationEnabled", &["Integration"]),
            ("IntegrationDisabled", &["Integration"]),
            ("IntegrationCanceled", &["Integration"]),
            ("IntegrationReinstated", &["Integration"]),
            ("IntegrationDeleted", &["DeletedUtc", "Integration"]),
            ("IntegrationApiKeyCreated", &["ApiKey", "Integration"]),
        ];
        for (action, expected) in cases {
            let hook = IntegrationWebhook::from_facts(action, &facts());
            let fields: Vec<&String> = hook.data.as_object().unwrap().keys().collect();
            assert_eq!(fields, expected.to_vec(), "fields of {action}");
        }
    }

    #[test]
    fn suggest_finds_close_discriminator() {
        assert_eq!(
            suggest("CustomerAded", &DISCRIMINATORS),
            Some("CustomerAdded")
        );
        assert_eq!(suggest("Nothing", &DISCRIMINATORS), None);
    }
}
