//! The scenario file as serde reads it, before validation.
//!
//! Every table denies unknown keys, so a misspelt key is an error rather
//! than a silently ignored setting. Values whose errors need a position
//! after parsing (names, ids, durations, counts) are wrapped in
//! [`Spanned`], which records their byte range in the file.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use toml::Spanned;

use super::{ExpectedOutcome, Severity, TokenMode};

/// The top-level table of a scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub name: Spanned<String>,
    pub summary: Spanned<String>,
    pub description: Spanned<String>,
    pub fix: Spanned<String>,
    #[serde(default)]
    pub severity: Option<Severity>,
    #[serde(default)]
    pub requires: Option<RawRequires>,
    pub steps: Spanned<Vec<Spanned<RawStep>>>,
}

/// `[requires]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRequires {
    #[serde(default)]
    pub token: bool,
    #[serde(default)]
    pub token_characters: Option<Spanned<String>>,
}

/// One `[[steps]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    #[serde(default)]
    pub name: Option<String>,

    #[serde(default)]
    pub events: Option<Spanned<Vec<Spanned<RawEvent>>>>,
    #[serde(default)]
    pub counts: Option<Spanned<BTreeMap<Spanned<String>, Spanned<i64>>>>,
    #[serde(default)]
    pub realistic: Option<Spanned<i64>>,
    #[serde(default)]
    pub actions: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub body_file: Option<Spanned<String>>,
    #[serde(default)]
    pub body_kind: Option<RawBodyKind>,
    #[serde(default)]
    pub allow_unknown: bool,

    #[serde(default)]
    pub enterprises: Option<Spanned<i64>>,
    #[serde(default)]
    pub enterprise_id: Option<Spanned<String>>,
    #[serde(default)]
    pub integration_id: Option<Spanned<String>>,

    #[serde(default)]
    pub token: Option<TokenMode>,
    #[serde(default)]
    pub token_param: Option<Spanned<String>>,
    #[serde(default)]
    pub content_type: Option<Spanned<String>>,
    #[serde(default)]
    pub batch_cap: Option<Spanned<i64>>,
    #[serde(default)]
    pub repeat: Option<Spanned<i64>>,
    #[serde(default)]
    pub concurrency: Option<Spanned<i64>>,
    #[serde(default)]
    pub order: Option<RawOrder>,
    #[serde(default)]
    pub seed: Option<Spanned<i64>>,

    #[serde(default)]
    pub expect: Option<RawExpect>,
}

/// One entry of `events = [...]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEvent {
    pub discriminator: Spanned<String>,
    #[serde(default)]
    pub id: Option<Spanned<String>>,
    #[serde(default)]
    pub enterprise_id: Option<Spanned<String>>,
    #[serde(default)]
    pub integration_id: Option<Spanned<String>>,
}

/// `body_kind`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawBodyKind {
    General,
    Integration,
}

/// `order`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum RawOrder {
    AsGenerated,
    Reversed,
    Shuffled,
}

/// `[steps.expect]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpect {
    #[serde(default)]
    pub outcome: Option<ExpectedOutcome>,
    #[serde(default)]
    pub status: Option<Spanned<RawStatus>>,
    #[serde(default)]
    pub max_latency: Option<Spanned<LatencyText>>,
    #[serde(default)]
    pub allow_redirects: Option<bool>,
    #[serde(default)]
    pub severity: Option<Severity>,
    #[serde(default)]
    pub latency_percentile: Option<RawPercentile>,
}

/// `latency_percentile = { percentile = 95, max = "50%", severity = "warn" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPercentile {
    pub percentile: Spanned<f64>,
    pub max: Spanned<LatencyText>,
    #[serde(default)]
    pub severity: Option<Severity>,
}

/// A latency limit as written: a duration such as `"2s"` or a share of the
/// deadline such as `"50%"`, checked after parsing. It is read through its
/// own visitor so that a bare number such as `500` is reported with an
/// example of the expected string.
#[derive(Debug)]
pub(super) struct LatencyText(pub String);

impl<'de> Deserialize<'de> for LatencyText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LatencyVisitor)
    }
}

struct LatencyVisitor;

impl Visitor<'_> for LatencyVisitor {
    type Value = LatencyText;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "a string with a duration such as \"2s\" or \"250ms\", or a share of the \
             deadline such as \"50%\"",
        )
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<LatencyText, E> {
        Ok(LatencyText(value.to_string()))
    }
}

/// `status`: one code, a list of codes, or a class such as `"2xx"`.
#[derive(Debug)]
pub(super) enum RawStatus {
    Codes(Vec<i64>),
    Class(String),
}

impl<'de> Deserialize<'de> for RawStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StatusVisitor)
    }
}

struct StatusVisitor;

impl<'de> Visitor<'de> for StatusVisitor {
    type Value = RawStatus;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "a status code such as 202, a list such as [401, 403], or a class such as \"2xx\"",
        )
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<RawStatus, E> {
        Ok(RawStatus::Codes(vec![value]))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<RawStatus, E> {
        let value = i64::try_from(value).unwrap_or(i64::MAX);
        Ok(RawStatus::Codes(vec![value]))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<RawStatus, E> {
        Ok(RawStatus::Class(value.to_string()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawStatus, A::Error> {
        let mut codes = Vec::new();
        while let Some(code) = seq.next_element::<i64>()? {
            codes.push(code);
        }
        Ok(RawStatus::Codes(codes))
    }
}
