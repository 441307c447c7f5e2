//! Errors in scenario files, with their `file:line:column` position and,
//! for a misspelt word, the nearest valid one.

use std::ops::Range;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::payload::suggest;

/// The kind of mistake a [`ScenarioError`] reports, so that callers and
/// tests can tell them apart without matching on text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScenarioErrorKind {
    /// A path given on the command line does not exist.
    NotFound,
    /// A folder contains no `*.toml` file.
    NoFiles,
    /// A file could not be read.
    Read,
    /// A file is larger than [`MAX_SCENARIO_FILE_BYTES`](super::MAX_SCENARIO_FILE_BYTES).
    TooLarge,
    /// A file is not valid UTF-8.
    Encoding,
    /// The file is not valid TOML.
    Syntax,
    /// A key that the format does not have.
    UnknownKey,
    /// A required key is missing.
    MissingKey,
    /// A value of the wrong type, for example a string where a number
    /// belongs.
    WrongType,
    /// A value of the right type that is out of range or malformed, such as
    /// a bad duration or id.
    InvalidValue,
    /// A discriminator Mews does not document, without `allow_unknown`.
    UnknownDiscriminator,
    /// An Integration action Mews does not document, without
    /// `allow_unknown`.
    UnknownAction,
    /// Two scenarios have the same name.
    DuplicateName,
    /// Mistakes of a file left out of the output, after the first
    /// [`MAX_ERRORS_PER_FILE`](super::MAX_ERRORS_PER_FILE).
    Omitted {
        /// How many were left out.
        count: usize,
    },
}

/// A 1-based line and column; the column counts characters, not bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The line, from 1.
    pub line: usize,
    /// The character in the line, from 1.
    pub column: usize,
}

impl Position {
    /// Returns the position of byte `offset` in `text`. An offset past the
    /// end or inside a character is moved back to the nearest character
    /// start.
    pub fn of_offset(text: &str, offset: usize) -> Position {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |index| index + 1);
        Position {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

/// A mistake in a scenario file or in the paths given to find them.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}{}: {message}", file.display(), position.map(|p| format!(":{}:{}", p.line, p.column)).unwrap_or_default())]
pub struct ScenarioError {
    /// The file or path the mistake is in.
    pub file: PathBuf,
    /// The place in the file, when the mistake has one.
    pub position: Option<Position>,
    /// The kind of mistake.
    pub kind: ScenarioErrorKind,
    /// The description of the mistake and how to fix it.
    pub message: String,
}

impl ScenarioError {
    /// Creates an error about a whole file or path.
    pub fn file(file: &Path, kind: ScenarioErrorKind, message: impl Into<String>) -> Self {
        ScenarioError {
            file: file.to_path_buf(),
            position: None,
            kind,
            message: message.into(),
        }
    }

    /// Creates an error at byte range `span` of `text`, the file's contents.
    pub fn at(
        file: &Path,
        text: &str,
        span: Range<usize>,
        kind: ScenarioErrorKind,
        message: impl Into<String>,
    ) -> Self {
        ScenarioError {
            file: file.to_path_buf(),
            position: Some(Position::of_offset(text, span.start)),
            kind,
            message: message.into(),
        }
    }

    /// Converts an error from the TOML parser or from serde into a
    /// message in this format's words, with a suggestion for a misspelt
    /// key or value.
    pub(super) fn from_toml(file: &Path, text: &str, error: &toml::de::Error) -> Self {
        let (kind, message) = describe_toml_error(error.message());
        ScenarioError {
            file: file.to_path_buf(),
            position: error
                .span()
                .map(|span| Position::of_offset(text, span.start)),
            kind,
            message,
        }
    }
}

/// Sorts a serde or TOML message into a kind and rewrites it.
///
/// serde words its errors in a fixed form ("unknown field `x`, expected
/// one of `a`, `b`", "missing field `x`", "invalid type: ..., expected
/// ..."), so the words can be taken apart reliably. Anything else comes
/// from the TOML parser and is a syntax error.
fn describe_toml_error(message: &str) -> (ScenarioErrorKind, String) {
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let (word, expected) = split_quoted(rest);
        return (
            ScenarioErrorKind::UnknownKey,
            with_suggestion(&format!("unknown key \"{word}\""), &word, &expected, "keys"),
        );
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        let (word, expected) = split_quoted(rest);
        return (
            ScenarioErrorKind::InvalidValue,
            with_suggestion(
                &format!("unknown value \"{word}\""),
                &word,
                &expected,
                "values",
            ),
        );
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        let (word, _) = split_quoted(rest);
        return (
            ScenarioErrorKind::MissingKey,
            format!(
                "missing required key \"{word}\" in this table; add it (see docs/scenarios.md)"
            ),
        );
    }
    if let Some(rest) = message.strip_prefix("invalid type: ")
        && let Some((number, _)) = rest
            .strip_prefix("integer `")
            .and_then(|rest| rest.split_once("` as i128"))
    {
        // The TOML parser reads integers beyond 64 bits as i128, which
        // serde then words as a type mismatch.
        return (
            ScenarioErrorKind::InvalidValue,
            format!(
                "invalid number {number}: it is too large; use a number in the range \
                 docs/scenarios.md gives for this key"
            ),
        );
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        return (
            ScenarioErrorKind::WrongType,
            format!("wrong type: {}", plain_type_words(rest)),
        );
    }
    if let Some(rest) = message.strip_prefix("invalid value: ") {
        return (
            ScenarioErrorKind::InvalidValue,
            format!("invalid value: {}", plain_type_words(rest)),
        );
    }
    (
        ScenarioErrorKind::Syntax,
        format!("invalid TOML: {}", message.trim_end()),
    )
}

/// Splits "`word`, expected one of `a`, `b`" into the word and the list.
fn split_quoted(text: &str) -> (String, Vec<String>) {
    let mut quoted = text.split('`').skip(1).step_by(2).map(str::to_string);
    let word = quoted.next().unwrap_or_default();
    (word, quoted.collect())
}

/// Appends "did you mean ...?" when a valid word is close, and the list of
/// valid words.
fn with_suggestion(lead: &str, word: &str, valid: &[String], noun: &str) -> String {
    let candidates: Vec<&str> = valid.iter().map(String::as_str).collect();
    let list = candidates.join(", ");
    match suggest(word, &candidates) {
        Some(nearest) => format!("{lead}; did you mean \"{nearest}\"? Valid {noun} here: {list}"),
        None if candidates.is_empty() => format!("{lead}; this table takes no {noun}"),
        None => format!("{lead}. Valid {noun} here: {list}"),
    }
}

/// Replaces Rust type names in serde messages with TOML words.
fn plain_type_words(text: &str) -> String {
    let mut text = text
        .replace("expected i64", "expected an integer")
        .replace("expected f64", "expected a number")
        .replace("expected a sequence", "expected an array")
        .replace("expected a map", "expected a table")
        .replace("sequence,", "array,")
        .replace("map,", "table,");
    if let Some(index) = text.find("expected struct ") {
        text.replace_range(index.., "expected a table");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_counts_lines_and_characters() {
        let text = "a = 1\nnäme = 2\n";
        assert_eq!(
            Position::of_offset(text, 0),
            Position { line: 1, column: 1 }
        );
        let offset = text.find('=').unwrap();
        assert_eq!(
            Position::of_offset(text, offset),
            Position { line: 1, column: 3 }
        );
        let offset = text.rfind('=').unwrap();
        assert_eq!(
            Position::of_offset(text, offset),
            Position { line: 2, column: 6 }
        );
    }

    #[test]
    fn position_past_end_is_clamped() {
        let position = Position::of_offset("ab\nc", 99);
        assert_eq!(position, Position { line: 2, column: 2 });
    }

    #[test]
    fn unknown_field_gets_suggestion() {
        let (kind, message) =
            describe_toml_error("unknown field `repeet`, expected one of `repeat`, `order`");
        assert_eq!(kind, ScenarioErrorKind::UnknownKey);
        assert_eq!(
            message,
            "unknown key \"repeet\"; did you mean \"repeat\"? Valid keys here: repeat, order"
        );
    }

    #[test]
    fn unknown_variant_gets_suggestion() {
        let (kind, message) =
            describe_toml_error("unknown variant `acepted`, expected `accepted` or `rejected`");
        assert_eq!(kind, ScenarioErrorKind::InvalidValue);
        assert!(message.contains("did you mean \"accepted\"?"), "{message}");
    }

    #[test]
    fn type_names_become_toml_words() {
        let (kind, message) = describe_toml_error("invalid type: string \"two\", expected i64");
        assert_eq!(kind, ScenarioErrorKind::WrongType);
        assert_eq!(message, "wrong type: string \"two\", expected an integer");
    }

    #[test]
    fn parser_message_is_syntax() {
        let (kind, message) = describe_toml_error("invalid basic string, expected `\"`");
        assert_eq!(kind, ScenarioErrorKind::Syntax);
        assert!(message.starts_with("invalid TOML: "), "{message}");
    }
}
