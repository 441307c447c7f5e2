//! Scenario files: the TOML format, its validation and loading.
//!
//! A scenario file describes one conformance check: what Mews does, what a
//! good receiver must do, how to fix a failure, and the steps that send
//! messages and judge the responses. `docs/scenarios.md` is the reference of
//! the format. This module turns files into [`Scenario`] values that the
//! [`conformance`](crate::conformance) runner executes:
//!
//! - [`load`] finds the files under the given paths and parses each one;
//! - parsing goes through serde with unknown keys denied, and every error
//!   becomes a [`ScenarioError`] that names `file:line:column` and, for a
//!   misspelt word, the nearest valid one;
//! - [`load_builtin`] loads the copy of the conformance suite compiled
//!   into the binary, for runs outside a checkout of this repository.

mod builtin;
mod error;
mod format;
mod load;
mod validate;

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::payload::WebhookKind;

pub use builtin::{
    BUILTIN_ROOT, builtin_file_names, builtin_sources, default_folder, load_builtin,
};
pub use error::{Position, ScenarioError, ScenarioErrorKind};
pub use load::{
    LoadOutcome, MAX_SCENARIO_FILE_BYTES, SourceFile, discover, load, load_sources, parse_scenario,
};
pub use validate::{
    BodyReader, MAX_CONCURRENCY, MAX_ENTERPRISES, MAX_ERRORS_PER_FILE, MAX_STEP_EVENTS,
    MAX_STEP_SENDS,
};

/// Whether a finding fails the check or only warns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The finding is printed but the run still passes.
    Warn,
    /// The finding fails the check and the run.
    Fail,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Severity::Warn => f.write_str("warn"),
            Severity::Fail => f.write_str("fail"),
        }
    }
}

/// One conformance check, loaded from one file.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The check name, unique within a run, for example `missing-token`.
    pub name: String,
    /// One line for `--list`.
    pub summary: String,
    /// The explanation: what Mews does, what a good receiver must do, and
    /// why.
    pub description: String,
    /// How to fix a receiver that fails the check.
    pub fix: String,
    /// The severity of the check's expectations unless a step overrides
    /// it.
    pub severity: Severity,
    /// The conditions the target must meet for the check to be meaningful.
    pub requires: Requirements,
    /// The steps, run in order.
    pub steps: Vec<Step>,
    /// The file the scenario came from, as given or found.
    pub file: PathBuf,
}

impl Scenario {
    /// Returns whether the check needs the receiver's real token: its
    /// `[requires]` table asks for one, or a step's meaning depends on it
    /// (see [`Step::needs_token`]).
    pub fn needs_token(&self) -> bool {
        self.requires.token
            || self.requires.token_characters.is_some()
            || self.steps.iter().any(Step::needs_token)
    }

    /// Returns the highest severity of the steps' expectations, shown by
    /// `--list`.
    pub fn worst_severity(&self) -> Severity {
        self.steps
            .iter()
            .flat_map(|step| {
                let percentile = step.expect.latency_percentile.map(|limit| limit.severity);
                [Some(step.expect.severity), percentile]
            })
            .flatten()
            .max()
            .unwrap_or(self.severity)
    }
}

/// Conditions under which a check is skipped instead of run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirements {
    /// Skip when the receiver's token is unknown.
    pub token: bool,
    /// Skip unless the token contains at least one of these characters.
    pub token_characters: Option<String>,
}

/// One step of a check: the messages it sends, how, and what it expects.
#[derive(Debug, Clone)]
pub struct Step {
    /// A label for output; `step N` unless the file names it.
    pub name: String,
    /// The messages the step sends.
    pub source: MessageSource,
    /// How many enterprise integrations generated events are spread over.
    pub enterprises: usize,
    /// The enterprise of every generated or listed event, unless an event
    /// sets its own.
    pub enterprise_id: Option<Uuid>,
    /// The integration of every generated or listed event, unless an event
    /// sets its own.
    pub integration_id: Option<Uuid>,
    /// The token the step sends.
    pub token: TokenMode,
    /// A query parameter name that replaces the run's token parameter.
    pub token_param: Option<String>,
    /// A `Content-Type` that replaces `application/json`.
    pub content_type: Option<String>,
    /// Events per General Webhook message.
    pub batch_cap: usize,
    /// How many times each message is sent, byte for byte.
    pub repeat: usize,
    /// Messages in flight at once.
    pub concurrency: usize,
    /// The order messages are sent in.
    pub order: Order,
    /// The seed of the step's generated ids and shuffle, when the file
    /// sets one. Otherwise the runner derives one from the run's seed.
    pub seed: Option<u64>,
    /// The expectations the responses must meet.
    pub expect: Expectation,
}

impl Step {
    /// Returns whether the step shows something only when the receiver's
    /// token is known. A missing, wrong or derived token is accepted by a
    /// receiver that has no token, and the right token under another
    /// parameter name cannot be sent without one.
    pub fn needs_token(&self) -> bool {
        self.token.needs_token() || self.token_param.is_some()
    }
}

/// The messages a step sends.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageSource {
    /// General events listed one by one.
    Events(Vec<EventSpec>),
    /// A number of General events per discriminator, from the generator.
    Counts(Vec<(String, usize)>),
    /// A number of General events in the generator's realistic mix.
    Realistic(usize),
    /// Integration Webhooks, one message per action.
    Actions(Vec<String>),
    /// A file sent byte for byte as one message.
    Body {
        /// The file, resolved against the scenario file's folder.
        path: PathBuf,
        /// Its bytes, read when the scenario was loaded.
        bytes: Bytes,
        /// The kind, which selects the URL it goes to.
        kind: WebhookKind,
    },
}

/// One General event listed in a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    /// The event type.
    pub discriminator: String,
    /// The entity id; a generated one when `None`.
    pub id: Option<Uuid>,
    /// The enterprise, when this event's differs from the step's.
    pub enterprise_id: Option<Uuid>,
    /// The integration, when this event's differs from the step's.
    pub integration_id: Option<Uuid>,
}

/// The token a step sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenMode {
    /// The receiver's token, when one is known.
    Right,
    /// No token parameter at all.
    Missing,
    /// A token that is not the receiver's.
    Wrong,
    /// The token parameter with an empty value.
    Empty,
    /// The receiver's token without its last character, which a receiver
    /// that accepts any prefix of its secret lets through.
    Prefix,
    /// The receiver's token with one more character, which a receiver that
    /// compares only the length of its secret lets through.
    Extended,
    /// The receiver's token with the case of every letter swapped, which a
    /// receiver that compares without case lets through.
    SwappedCase,
    /// The receiver's token with its last character replaced, the same
    /// length, which a receiver that compares only the length or only part
    /// of the token lets through.
    Altered,
}

impl TokenMode {
    /// Returns whether a step in this mode sends a value derived from the
    /// receiver's token, or is meant to send none, so that it shows
    /// something only when the token is known.
    pub fn needs_token(self) -> bool {
        self != TokenMode::Right
    }
}

/// The order a step's messages are sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// The order they were generated or listed in.
    AsGenerated,
    /// Last first.
    Reversed,
    /// Shuffled by the step's seed.
    Shuffled,
}

/// Whether a message must be accepted or rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedOutcome {
    /// A 2xx response, as Mews counts success.
    Accepted,
    /// An HTTP response outside 2xx.
    Rejected,
}

/// The expected statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusSet {
    /// Any of these codes.
    Codes(Vec<u16>),
    /// Any code of this class: 2 for `2xx`, 4 for `4xx`.
    Class(u16),
}

impl StatusSet {
    /// Returns whether `status` is in the set.
    pub fn contains(&self, status: u16) -> bool {
        match self {
            StatusSet::Codes(codes) => codes.contains(&status),
            StatusSet::Class(class) => status / 100 == *class,
        }
    }
}

impl std::fmt::Display for StatusSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatusSet::Class(class) => write!(f, "{class}xx"),
            StatusSet::Codes(codes) => {
                let texts: Vec<String> = codes.iter().map(u16::to_string).collect();
                match texts.split_last() {
                    Some((last, [])) => f.write_str(last),
                    Some((last, rest)) => write!(f, "{} or {last}", rest.join(", ")),
                    None => f.write_str("no status"),
                }
            }
        }
    }
}

/// A latency limit, absolute or relative to the run's deadline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LatencyLimit {
    /// A fixed duration.
    Absolute(Duration),
    /// A percentage of the deadline, for example 50.0 for half.
    DeadlineShare(f64),
}

impl LatencyLimit {
    /// Returns the limit for a run whose attempt deadline is `deadline`.
    pub fn resolve(self, deadline: Duration) -> Duration {
        match self {
            LatencyLimit::Absolute(duration) => duration,
            LatencyLimit::DeadlineShare(percent) => deadline.mul_f64(percent / 100.0),
        }
    }
}

/// A limit on one percentile of a step's latencies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PercentileLimit {
    /// The percentile, in (0, 100], for example 95.0.
    pub percentile: f64,
    /// The highest allowed latency at that percentile.
    pub max: LatencyLimit,
    /// Whether a percentile above `max` fails the check or only warns;
    /// the expectation's severity unless the file sets its own.
    pub severity: Severity,
}

/// The expectations a step's responses must meet.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    /// Accepted or rejected.
    pub outcome: ExpectedOutcome,
    /// The allowed statuses; any that fits `outcome` when `None`.
    pub status: Option<StatusSet>,
    /// The maximum time any one response may take; the deadline by
    /// default.
    pub max_latency: LatencyLimit,
    /// Whether a 307 or 308 redirect before the response is allowed. Other
    /// redirects are never followed, so they fail every expectation of a
    /// response.
    pub allow_redirects: bool,
    /// Whether a miss fails the check or only warns. A percentile limit
    /// may set its own.
    pub severity: Severity,
    /// A limit on a percentile of the step's latencies.
    pub latency_percentile: Option<PercentileLimit>,
}
