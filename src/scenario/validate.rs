//! Turning a parsed file into a [`Scenario`], collecting every mistake.
//!
//! serde stops at the first error it meets, so a file with a syntax or
//! type error reports one. Once the file has the right shape, this module
//! checks the values (names, ids, event types, ranges, durations) and
//! reports all mistakes it finds, each at its own position.

use std::collections::HashMap;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use toml::Spanned;
use uuid::Uuid;

use super::error::{Position, ScenarioError, ScenarioErrorKind};
use super::format::{
    LatencyText, RawBodyKind, RawEvent, RawExpect, RawOrder, RawPercentile, RawScenario, RawStatus,
    RawStep,
};
use super::{
    EventSpec, Expectation, ExpectedOutcome, LatencyLimit, MessageSource, Order, PercentileLimit,
    Requirements, Scenario, Severity, StatusSet, Step, TokenMode,
};
use crate::batcher::DEFAULT_BATCH_CAP;
use crate::payload::{
    ACTIONS, DISCRIMINATORS, WebhookKind, is_known_action, is_known_discriminator, suggest,
};

/// The maximum number of events one step may generate. A step is a test, not a load
/// run, and this keeps a typo such as an extra zero from exhausting memory.
pub const MAX_STEP_EVENTS: usize = 100_000;

/// The maximum number of messages one step may send, repetitions included.
pub const MAX_STEP_SENDS: usize = 10_000;

/// The maximum number of messages a step may have in flight at once.
pub const MAX_CONCURRENCY: usize = 1024;

/// The maximum number of enterprise integrations a step may spread events
/// over.
pub const MAX_ENTERPRISES: usize = 1000;

/// Reads a body file; the loader passes the file system or the built-in
/// copy of the suite.
pub type BodyReader<'a> = &'a dyn Fn(&Path) -> io::Result<Vec<u8>>;

/// The maximum number of mistakes reported per scenario file; the rest
/// are counted. Finding a mistake's line scans the file from its start, so
/// the cap also keeps a file with many thousands of mistakes from taking
/// quadratic time.
pub const MAX_ERRORS_PER_FILE: usize = 50;

/// Collects the mistakes of one file.
pub(super) struct Checker<'a> {
    file: &'a Path,
    text: &'a str,
    read_body: BodyReader<'a>,
    /// The first [`MAX_ERRORS_PER_FILE`] mistakes found.
    pub errors: Vec<ScenarioError>,
    /// Every mistake found, those left out of `errors` included.
    pub found: usize,
}

impl<'a> Checker<'a> {
    pub fn new(file: &'a Path, text: &'a str, read_body: BodyReader<'a>) -> Self {
        Checker {
            file,
            text,
            read_body,
            errors: Vec::new(),
            found: 0,
        }
    }

    fn error(&mut self, span: Range<usize>, kind: ScenarioErrorKind, message: String) {
        self.error_with(span, kind, || message);
    }

    /// Records a mistake, building its message only when it will be shown,
    /// because a suggestion costs an edit-distance search.
    fn error_with(
        &mut self,
        span: Range<usize>,
        kind: ScenarioErrorKind,
        message: impl FnOnce() -> String,
    ) {
        self.found += 1;
        if self.errors.len() < MAX_ERRORS_PER_FILE {
            self.errors.push(ScenarioError::at(
                self.file,
                self.text,
                span,
                kind,
                message(),
            ));
        }
    }

    fn invalid(&mut self, span: Range<usize>, message: String) {
        self.error(span, ScenarioErrorKind::InvalidValue, message);
    }

    pub fn position(&self, span: &Range<usize>) -> Position {
        Position::of_offset(self.text, span.start)
    }

    /// Validates the whole file. Returns `None` when any mistake was found;
    /// the mistakes are in `self.errors`.
    pub fn scenario(&mut self, raw: RawScenario) -> Option<Scenario> {
        let name = self.check_name(&raw.name);
        let summary = self.check_summary(&raw.summary);
        let description = self.check_text(&raw.description, "description");
        let fix = self.check_text(&raw.fix, "fix");
        let severity = raw.severity.unwrap_or(Severity::Fail);
        let requires = self.check_requires(raw.requires);

        if raw.steps.get_ref().is_empty() {
            self.error(
                raw.steps.span(),
                ScenarioErrorKind::MissingKey,
                "the scenario has no steps; add at least one [[steps]] table".to_string(),
            );
        }
        let steps: Vec<Step> = raw
            .steps
            .into_inner()
            .into_iter()
            .enumerate()
            .filter_map(|(index, step)| self.check_step(index, step, severity))
            .collect();

        if self.found > 0 {
            return None;
        }
        Some(Scenario {
            name,
            summary,
            description,
            fix,
            severity,
            requires,
            steps,
            file: self.file.to_path_buf(),
        })
    }

    fn check_name(&mut self, name: &Spanned<String>) -> String {
        let text = name.get_ref();
        let valid = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            self.invalid(
                name.span(),
                format!(
                    "invalid check name \"{text}\"; use letters, digits, \"-\", \"_\" and \".\" only, \
                     for example \"missing-token\""
                ),
            );
        }
        text.clone()
    }

    fn check_summary(&mut self, summary: &Spanned<String>) -> String {
        let text = summary.get_ref().trim();
        if text.is_empty() || text.contains('\n') {
            self.invalid(
                summary.span(),
                "summary must be one non-empty line; put details in description".to_string(),
            );
        }
        text.to_string()
    }

    fn check_text(&mut self, value: &Spanned<String>, key: &str) -> String {
        let text = value.get_ref().trim();
        if text.is_empty() {
            self.invalid(value.span(), format!("{key} is empty; write it out"));
        }
        text.to_string()
    }

    fn check_requires(&mut self, raw: Option<super::format::RawRequires>) -> Requirements {
        let Some(raw) = raw else {
            return Requirements::default();
        };
        let token_characters = raw.token_characters.map(|characters| {
            if characters.get_ref().is_empty() {
                self.invalid(
                    characters.span(),
                    "token_characters is empty; list the characters, for example \"+/=&%\""
                        .to_string(),
                );
            }
            characters.into_inner()
        });
        Requirements {
            token: raw.token,
            token_characters,
        }
    }

    fn check_step(
        &mut self,
        index: usize,
        step: Spanned<RawStep>,
        scenario_severity: Severity,
    ) -> Option<Step> {
        let errors_before = self.found;
        let span = step.span();
        let raw = step.into_inner();

        let enterprise_id = self.optional_uuid(raw.enterprise_id.as_ref(), "enterprise_id");
        let integration_id = self.optional_uuid(raw.integration_id.as_ref(), "integration_id");
        let enterprises = self.integer_in(
            raw.enterprises.as_ref(),
            "enterprises",
            1,
            MAX_ENTERPRISES,
            1,
        );
        if enterprises > 1
            && (enterprise_id.is_some() || integration_id.is_some())
            && let Some(value) = &raw.enterprises
        {
            self.invalid(
                value.span(),
                format!(
                    "enterprises = {enterprises} conflicts with a fixed enterprise_id or \
                     integration_id, which gives every event the same key; remove one of them"
                ),
            );
        }
        let batch_cap = self.integer_in(
            raw.batch_cap.as_ref(),
            "batch_cap",
            1,
            MAX_STEP_EVENTS,
            DEFAULT_BATCH_CAP,
        );
        let repeat = self.integer_in(raw.repeat.as_ref(), "repeat", 1, MAX_STEP_SENDS, 1);
        let concurrency = self.integer_in(
            raw.concurrency.as_ref(),
            "concurrency",
            1,
            MAX_CONCURRENCY,
            1,
        );
        let seed = raw.seed.as_ref().and_then(|seed| {
            let value = *seed.get_ref();
            if value < 0 {
                self.invalid(
                    seed.span(),
                    format!("invalid seed {value}; use a number from 0"),
                );
            }
            u64::try_from(value).ok()
        });

        let source = self.check_source(span.clone(), &raw, batch_cap, repeat, enterprises);
        let token_param = raw.token_param.map(|param| {
            if param.get_ref().is_empty() {
                self.invalid(
                    param.span(),
                    "token_param is empty; give a query parameter name such as Token".to_string(),
                );
            }
            param.into_inner()
        });
        let content_type = raw.content_type.map(|value| {
            if axum::http::HeaderValue::from_str(value.get_ref()).is_err()
                || value.get_ref().is_empty()
            {
                self.invalid(
                    value.span(),
                    format!(
                        "invalid content_type \"{}\"; give a header value such as \
                         \"application/json; charset=utf-8\"",
                        value.get_ref().escape_debug()
                    ),
                );
            }
            value.into_inner()
        });

        let expect = self.check_expect(raw.expect, scenario_severity);

        if self.found > errors_before {
            return None;
        }
        Some(Step {
            name: raw.name.unwrap_or_else(|| format!("step {}", index + 1)),
            source: source?,
            enterprises,
            enterprise_id,
            integration_id,
            token: raw.token.unwrap_or(TokenMode::Right),
            token_param,
            content_type,
            batch_cap,
            repeat,
            concurrency,
            order: match raw.order {
                None | Some(RawOrder::AsGenerated) => Order::AsGenerated,
                Some(RawOrder::Reversed) => Order::Reversed,
                Some(RawOrder::Shuffled) => Order::Shuffled,
            },
            seed,
            expect,
        })
    }

    /// Checks that the step has exactly one source and that it is valid.
    fn check_source(
        &mut self,
        step_span: Range<usize>,
        raw: &RawStep,
        batch_cap: usize,
        repeat: usize,
        enterprises: usize,
    ) -> Option<MessageSource> {
        let present: Vec<&str> = [
            ("events", raw.events.is_some()),
            ("counts", raw.counts.is_some()),
            ("realistic", raw.realistic.is_some()),
            ("actions", raw.actions.is_some()),
            ("body_file", raw.body_file.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect();
        if present.len() != 1 {
            let found = if present.is_empty() {
                "none".to_string()
            } else {
                present.join(" and ")
            };
            self.error(
                step_span,
                ScenarioErrorKind::MissingKey,
                format!(
                    "a step sends exactly one of events, counts, realistic, actions or body_file; \
                     this one has {found}"
                ),
            );
            return None;
        }
        if raw.body_kind.is_some() && raw.body_file.is_none() {
            self.invalid(
                step_span.clone(),
                "body_kind applies only to body_file; remove it".to_string(),
            );
        }

        let source = if let Some(events) = &raw.events {
            self.check_events(events, raw.allow_unknown)
        } else if let Some(counts) = &raw.counts {
            self.check_counts(counts, raw.allow_unknown)
        } else if let Some(count) = &raw.realistic {
            let count = self.integer_in(Some(count), "realistic", 1, MAX_STEP_EVENTS, 1);
            Some(MessageSource::Realistic(count))
        } else if let Some(actions) = &raw.actions {
            self.check_actions(actions, raw.allow_unknown)
        } else {
            raw.body_file
                .as_ref()
                .and_then(|file| self.read_body_file(file, raw.body_kind))
        }?;

        let messages = upper_bound_messages(&source, batch_cap, enterprises);
        if messages.saturating_mul(repeat) > MAX_STEP_SENDS {
            self.invalid(
                step_span,
                format!(
                    "this step may send up to {} messages, more than the limit of {MAX_STEP_SENDS}; \
                     lower repeat, raise batch_cap or send fewer events",
                    messages.saturating_mul(repeat)
                ),
            );
        }
        Some(source)
    }

    fn check_events(
        &mut self,
        events: &Spanned<Vec<Spanned<RawEvent>>>,
        allow_unknown: bool,
    ) -> Option<MessageSource> {
        if events.get_ref().is_empty() {
            self.invalid(
                events.span(),
                "events is empty; list at least one event".to_string(),
            );
            return None;
        }
        if events.get_ref().len() > MAX_STEP_EVENTS {
            self.invalid(
                events.span(),
                format!("more than {MAX_STEP_EVENTS} events in one step; split them into steps"),
            );
        }
        let specs = events
            .get_ref()
            .iter()
            .map(|event| {
                let event = event.get_ref();
                self.check_discriminator(&event.discriminator, allow_unknown);
                EventSpec {
                    discriminator: event.discriminator.get_ref().clone(),
                    id: self.optional_uuid(event.id.as_ref(), "id"),
                    enterprise_id: self
                        .optional_uuid(event.enterprise_id.as_ref(), "enterprise_id"),
                    integration_id: self
                        .optional_uuid(event.integration_id.as_ref(), "integration_id"),
                }
            })
            .collect();
        Some(MessageSource::Events(specs))
    }

    fn check_counts(
        &mut self,
        counts: &Spanned<std::collections::BTreeMap<Spanned<String>, Spanned<i64>>>,
        allow_unknown: bool,
    ) -> Option<MessageSource> {
        let mut plan = Vec::new();
        let mut total: usize = 0;
        for (name, count) in counts.get_ref() {
            self.check_discriminator(name, allow_unknown);
            let value = *count.get_ref();
            match usize::try_from(value) {
                Ok(value) => {
                    total = total.saturating_add(value);
                    plan.push((name.get_ref().clone(), value));
                }
                Err(_) => self.invalid(
                    count.span(),
                    format!(
                        "invalid count {value} for {}; use a number from 0",
                        name.get_ref()
                    ),
                ),
            }
        }
        if total == 0 {
            self.invalid(
                counts.span(),
                "the counts add up to 0; give at least one event".to_string(),
            );
        } else if total > MAX_STEP_EVENTS {
            self.invalid(
                counts.span(),
                format!("the counts add up to {total}, more than the limit of {MAX_STEP_EVENTS}"),
            );
        }
        Some(MessageSource::Counts(plan))
    }

    fn check_actions(
        &mut self,
        actions: &Spanned<Vec<Spanned<String>>>,
        allow_unknown: bool,
    ) -> Option<MessageSource> {
        if actions.get_ref().is_empty() {
            self.invalid(
                actions.span(),
                "actions is empty; list at least one action".to_string(),
            );
            return None;
        }
        for action in actions.get_ref() {
            let name = action.get_ref();
            if allow_unknown || is_known_action(name) {
                continue;
            }
            self.error_with(action.span(), ScenarioErrorKind::UnknownAction, || {
                let lead = format!("unknown action \"{name}\"");
                unknown_word_message(&lead, name, &ACTIONS, "actions")
            });
        }
        Some(MessageSource::Actions(
            actions
                .get_ref()
                .iter()
                .map(|a| a.get_ref().clone())
                .collect(),
        ))
    }

    fn check_discriminator(&mut self, name: &Spanned<String>, allow_unknown: bool) {
        let text = name.get_ref();
        if allow_unknown || is_known_discriminator(text) {
            return;
        }
        self.error_with(name.span(), ScenarioErrorKind::UnknownDiscriminator, || {
            let lead = format!("unknown discriminator \"{text}\"");
            unknown_word_message(&lead, text, &DISCRIMINATORS, "discriminators")
        });
    }

    fn read_body_file(
        &mut self,
        file: &Spanned<String>,
        kind: Option<RawBodyKind>,
    ) -> Option<MessageSource> {
        let relative = Path::new(file.get_ref());
        let folder = self.file.parent().unwrap_or(Path::new(""));
        let path: PathBuf = folder.join(relative);
        if let Some(problem) = body_path_problem(folder, relative, &path) {
            self.invalid(
                file.span(),
                format!(
                    "invalid body_file \"{}\": {problem}; give a path inside the scenario file's \
                     folder, relative to it, such as \"bodies/message.json\"",
                    file.get_ref()
                ),
            );
            return None;
        }
        match (self.read_body)(&path) {
            Ok(bytes) => Some(MessageSource::Body {
                path,
                bytes: Bytes::from(bytes),
                kind: match kind {
                    None | Some(RawBodyKind::General) => WebhookKind::General,
                    Some(RawBodyKind::Integration) => WebhookKind::Integration,
                },
            }),
            Err(error) => {
                self.invalid(
                    file.span(),
                    format!(
                        "failed to read body_file {}: {error}; the path is relative to the \
                         scenario file's folder",
                        path.display()
                    ),
                );
                None
            }
        }
    }

    fn check_expect(&mut self, raw: Option<RawExpect>, scenario_severity: Severity) -> Expectation {
        let raw = raw.unwrap_or(RawExpect {
            outcome: None,
            status: None,
            max_latency: None,
            allow_redirects: None,
            severity: None,
            latency_percentile: None,
        });
        let status = raw
            .status
            .as_ref()
            .and_then(|status| self.check_status(status));
        let outcome = self.check_outcome(raw.outcome, status.as_ref(), raw.status.as_ref());
        let max_latency = match &raw.max_latency {
            Some(text) => self.latency_limit(text, "max_latency"),
            None => LatencyLimit::DeadlineShare(100.0),
        };
        let severity = raw.severity.unwrap_or(scenario_severity);
        let latency_percentile = raw
            .latency_percentile
            .as_ref()
            .map(|raw| self.check_percentile(raw, severity));
        Expectation {
            outcome,
            status,
            max_latency,
            allow_redirects: raw.allow_redirects.unwrap_or(true),
            severity,
            latency_percentile,
        }
    }

    fn check_status(&mut self, status: &Spanned<RawStatus>) -> Option<StatusSet> {
        match status.get_ref() {
            RawStatus::Codes(codes) => {
                if codes.is_empty() {
                    self.invalid(
                        status.span(),
                        "status is an empty list; give at least one code".to_string(),
                    );
                    return None;
                }
                let mut valid = Vec::new();
                for code in codes {
                    match u16::try_from(*code) {
                        Ok(code) if (100..=599).contains(&code) => valid.push(code),
                        _ => self.invalid(
                            status.span(),
                            format!("invalid status {code}; HTTP status codes run from 100 to 599"),
                        ),
                    }
                }
                // An invalid code is reported above; comparing the rest with
                // `outcome` would only add a second, confusing mistake.
                (valid.len() == codes.len()).then_some(StatusSet::Codes(valid))
            }
            RawStatus::Class(text) => {
                let bytes = text.as_bytes();
                let valid = bytes.len() == 3
                    && (b'1'..=b'5').contains(&bytes[0])
                    && bytes[1..].eq_ignore_ascii_case(b"xx");
                if !valid {
                    self.invalid(
                        status.span(),
                        format!(
                            "invalid status class \"{text}\"; write one of 1xx, 2xx, 3xx, 4xx, 5xx"
                        ),
                    );
                    return None;
                }
                Some(StatusSet::Class(u16::from(bytes[0] - b'0')))
            }
        }
    }

    /// Takes the outcome as written, or infers it from the statuses, and
    /// checks that the two agree.
    fn check_outcome(
        &mut self,
        outcome: Option<ExpectedOutcome>,
        status: Option<&StatusSet>,
        status_raw: Option<&Spanned<RawStatus>>,
    ) -> ExpectedOutcome {
        let (Some(status), Some(status_raw)) = (status, status_raw) else {
            return outcome.unwrap_or(ExpectedOutcome::Accepted);
        };
        let successes = match status {
            StatusSet::Class(class) => vec![*class == 2],
            StatusSet::Codes(codes) => codes.iter().map(|code| code / 100 == 2).collect(),
        };
        let all_success = successes.iter().all(|success| *success);
        let no_success = successes.iter().all(|success| !*success);
        let span = status_raw.span();

        if !all_success && !no_success {
            self.invalid(
                span,
                "status mixes 2xx and other codes; a step either expects acceptance or rejection, \
                 so split it into two steps"
                    .to_string(),
            );
            return outcome.unwrap_or(ExpectedOutcome::Accepted);
        }
        let implied = if all_success {
            ExpectedOutcome::Accepted
        } else {
            ExpectedOutcome::Rejected
        };
        if let Some(outcome) = outcome
            && outcome != implied
        {
            self.invalid(
                span,
                format!(
                    "status {status} contradicts outcome = \"{}\"; Mews counts exactly the 2xx \
                     codes as accepted",
                    match outcome {
                        ExpectedOutcome::Accepted => "accepted",
                        ExpectedOutcome::Rejected => "rejected",
                    }
                ),
            );
        }
        implied
    }

    fn check_percentile(&mut self, raw: &RawPercentile, severity: Severity) -> PercentileLimit {
        let percentile = *raw.percentile.get_ref();
        if !(percentile > 0.0 && percentile <= 100.0) {
            self.invalid(
                raw.percentile.span(),
                format!("invalid percentile {percentile}; use a number above 0 and up to 100, such as 95"),
            );
        }
        PercentileLimit {
            percentile,
            max: self.latency_limit(&raw.max, "max"),
            severity: raw.severity.unwrap_or(severity),
        }
    }

    /// Parses a duration such as `2s`, or a share of the deadline such as
    /// `50%`.
    fn latency_limit(&mut self, text: &Spanned<LatencyText>, key: &str) -> LatencyLimit {
        let value = text.get_ref().0.trim();
        if let Some(number) = value.strip_suffix('%') {
            return match number.trim().parse::<f64>() {
                Ok(percent) if percent > 0.0 && percent <= 100.0 => {
                    LatencyLimit::DeadlineShare(percent)
                }
                _ => {
                    self.invalid(
                        text.span(),
                        format!(
                            "invalid share of the deadline \"{value}\" for {key}; use a \
                             percentage above 0 and up to 100, such as 50%"
                        ),
                    );
                    LatencyLimit::DeadlineShare(100.0)
                }
            };
        }
        match humantime::parse_duration(value) {
            Ok(duration) if duration > Duration::ZERO => LatencyLimit::Absolute(duration),
            Ok(_) => {
                self.invalid(
                    text.span(),
                    format!("{key} is zero; give a positive duration such as 250ms or 2s"),
                );
                LatencyLimit::DeadlineShare(100.0)
            }
            Err(error) => {
                self.invalid(
                    text.span(),
                    format!(
                        "invalid duration \"{value}\" for {key}: {}; write a number with the unit \
                         ms, s or m, such as 250ms, 2s or 1m30s, or a share of the deadline such \
                         as 50%",
                        duration_problem(value, &error)
                    ),
                );
                LatencyLimit::DeadlineShare(100.0)
            }
        }
    }

    fn optional_uuid(&mut self, value: Option<&Spanned<String>>, key: &str) -> Option<Uuid> {
        let value = value?;
        match Uuid::parse_str(value.get_ref()) {
            Ok(id) => Some(id),
            Err(_) => {
                self.invalid(
                    value.span(),
                    format!(
                        "invalid {key} \"{}\"; write a GUID such as \
                         851df8c8-90f2-4c4a-8e01-a4fc46b25178",
                        value.get_ref()
                    ),
                );
                None
            }
        }
    }

    /// Reads an optional integer that must lie in `min..=max`.
    fn integer_in(
        &mut self,
        value: Option<&Spanned<i64>>,
        key: &str,
        min: usize,
        max: usize,
        default: usize,
    ) -> usize {
        let Some(value) = value else {
            return default;
        };
        let number = *value.get_ref();
        match usize::try_from(number) {
            Ok(number) if (min..=max).contains(&number) => number,
            _ => {
                self.invalid(
                    value.span(),
                    format!("invalid {key} {number}; use a number from {min} to {max}"),
                );
                default
            }
        }
    }
}

/// Says why a body file may not be read: an absolute path, or one that
/// leaves the scenario file's folder through `..` or a symbolic link. A
/// scenario file can come from someone else, and must not send the
/// contents of arbitrary files to a receiver.
fn body_path_problem(folder: &Path, relative: &Path, path: &Path) -> Option<&'static str> {
    use std::path::Component;
    if relative.has_root() || relative.is_absolute() {
        return Some("the path is absolute");
    }
    let mut depth = 0usize;
    for component in relative.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir if depth > 0 => depth -= 1,
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Some("the path leaves the scenario file's folder");
            }
        }
    }
    // Links are resolved only where both paths exist on disk; the built-in
    // suite's bodies, for one, are not files.
    let folder = if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    };
    if let (Ok(real_folder), Ok(real_path)) = (folder.canonicalize(), path.canonicalize())
        && !real_path.starts_with(&real_folder)
    {
        return Some("the path leads out of the scenario file's folder through a symbolic link");
    }
    None
}

/// Says what is wrong with a duration that did not parse, in place of the
/// parser's message, which lists units such as months and years that make
/// no sense for a latency.
fn duration_problem(value: &str, error: &humantime::DurationError) -> String {
    use humantime::DurationError;
    match error {
        DurationError::UnknownUnit { unit, value, .. } if unit.is_empty() => {
            format!("the number {value} has no unit")
        }
        DurationError::UnknownUnit { unit, .. } => format!("unknown unit \"{unit}\""),
        DurationError::NumberOverflow if value.contains('.') => {
            "the number is too large or finer than 1 ns".to_string()
        }
        DurationError::NumberOverflow => "the number is too large".to_string(),
        DurationError::Empty => "it is empty".to_string(),
        DurationError::InvalidCharacter(_) | DurationError::NumberExpected(_) => {
            "it is not a number followed by a unit".to_string()
        }
    }
}

/// Words an unknown discriminator or action: the nearest documented one,
/// the full list, and how to send it on purpose.
fn unknown_word_message(lead: &str, word: &str, known: &[&str], noun: &str) -> String {
    let tail = format!(
        "known {noun} are {}. Set allow_unknown = true in this step to send an unknown one \
         on purpose",
        known.join(", ")
    );
    match suggest(word, known) {
        Some(nearest) => format!("{lead}; did you mean \"{nearest}\"? The {tail}"),
        None => format!("{lead}. The {tail}"),
    }
}

/// Returns the maximum number of messages `source` can turn into at
/// `batch_cap` events each. The batcher starts a message per enterprise
/// integration, so each key's events fill their own messages: for listed
/// events the count is exact per key, and for generated ones it is at most
/// one partly filled message per enterprise beyond the full ones.
fn upper_bound_messages(source: &MessageSource, batch_cap: usize, enterprises: usize) -> usize {
    let batch_cap = batch_cap.max(1);
    match source {
        MessageSource::Events(events) => {
            // Events without their own ids share the step's key; one with
            // its own ids may still equal it, which only lowers the count.
            let mut per_key: HashMap<(Option<Uuid>, Option<Uuid>), usize> = HashMap::new();
            for event in events {
                *per_key
                    .entry((event.enterprise_id, event.integration_id))
                    .or_default() += 1;
            }
            per_key
                .values()
                .map(|count| count.div_ceil(batch_cap))
                .sum()
        }
        MessageSource::Counts(counts) => {
            let total: usize = counts.iter().map(|(_, n)| *n).sum();
            generated_bound(total, batch_cap, enterprises)
        }
        MessageSource::Realistic(total) => generated_bound(*total, batch_cap, enterprises),
        MessageSource::Actions(actions) => actions.len(),
        MessageSource::Body { .. } => 1,
    }
}

/// Bounds the messages of `total` generated events spread over
/// `enterprises` keys: at most one message per event, and at most one
/// partly filled message per key beyond the full ones.
fn generated_bound(total: usize, batch_cap: usize, enterprises: usize) -> usize {
    total.min(total.div_ceil(batch_cap) + enterprises.saturating_sub(1))
}
