//! Hiding the token in what the receiver prints, logs and records.
//!
//! [`Redactor`] replaces the spellings of the token that it lists: raw,
//! percent-encoded with upper- or lower-case hex, form-encoded and
//! JSON-escaped. A client can send other spellings, such as mixed-case hex
//! (`se%20cr%2Bet%2fx`) or needlessly encoded letters, so every piece of a
//! request is also percent-decoded and checked again. A piece that still
//! contains the token after decoding is replaced whole.

use std::borrow::Cow;

use axum::http::HeaderMap;
use bytes::Bytes;
use percent_encoding::percent_decode_str;
use serde_json::Value;

use crate::secret::{PLACEHOLDER, Redactor};

/// Headers whose values are credentials by convention, so the log and the
/// record file never show them.
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

/// The maximum rounds of percent-decoding applied to one piece, so that a
/// token encoded twice or three times is found too.
const MAX_DECODE_ROUNDS: usize = 3;

/// The receiver's redaction: the token in every spelling, and every value of
/// the token parameter, its name compared without case.
#[derive(Debug, Clone)]
pub(super) struct RequestRedactor {
    redactor: Redactor,
    token_param: String,
    /// Whether a token is configured. Without one only the token parameter
    /// is hidden, and the decoding checks are skipped.
    has_token: bool,
}

impl RequestRedactor {
    pub(super) fn new(token: Option<&str>, token_param: &str) -> Self {
        RequestRedactor {
            redactor: Redactor::for_target(token, token_param, std::iter::empty()),
            token_param: token_param.to_string(),
            has_token: token.is_some_and(|token| !token.is_empty()),
        }
    }

    /// Returns `text` with only the spellings [`Redactor`] lists replaced,
    /// for text such as a JSON line that splitting into words would break.
    pub(super) fn redact_listed_spellings(&self, text: &str) -> String {
        self.redactor.redact(text)
    }

    /// Returns free text, such as a printed line or an error, with the token
    /// hidden. Each space-separated word that decodes to text containing
    /// the token is replaced, and the whole text when the token spans words.
    pub(super) fn text(&self, text: &str) -> String {
        self.redact_parts(text, ' ', PLACEHOLDER)
    }

    /// Returns a request path with the token hidden: segment by segment, or
    /// as a whole when the token spans segments, as a token containing a
    /// raw `/` does.
    pub(super) fn path(&self, path: &str) -> String {
        self.redact_parts(path, '/', &format!("/{PLACEHOLDER}"))
    }

    /// Returns a raw query string with the value of every token parameter
    /// hidden, the name compared without case, whether or not the value
    /// matched. A parameter whose name contains the token is hidden whole,
    /// and a parameter whose value contains it has its value hidden. The
    /// rest of the query stays as received.
    pub(super) fn query(&self, query: &str) -> String {
        // Spellings that span parameters, as a raw token with `&` does,
        // are replaced before the query is split.
        let redacted = self.redactor.redact(query);
        let pieces: Vec<Cow<'_, str>> = redacted
            .split('&')
            .map(|piece| self.query_piece(piece))
            .collect();
        let joined = pieces.join("&");
        if self.decodes_to_token(&joined) {
            return PLACEHOLDER.to_string();
        }
        joined
    }

    fn query_piece<'a>(&self, piece: &'a str) -> Cow<'a, str> {
        let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
        if decode_name(name).eq_ignore_ascii_case(&self.token_param) {
            return Cow::Owned(format!("{name}={PLACEHOLDER}"));
        }
        if self.decodes_to_token(name) {
            return Cow::Borrowed(PLACEHOLDER);
        }
        if self.decodes_to_token(value) {
            return Cow::Owned(format!("{name}={PLACEHOLDER}"));
        }
        Cow::Borrowed(piece)
    }

    /// Returns the headers with credential headers replaced and the token
    /// hidden in the others. Values that are URLs, such as `Referer`, also
    /// have their token parameter hidden.
    pub(super) fn headers(&self, headers: &HeaderMap) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(name, value)| {
                let value = if CREDENTIAL_HEADERS.contains(&name.as_str()) {
                    PLACEHOLDER.to_string()
                } else {
                    let text = String::from_utf8_lossy(value.as_bytes());
                    let text = if text.contains("://") {
                        Cow::Owned(self.redactor.redact_url(&text))
                    } else {
                        text
                    };
                    self.text(&text)
                };
                (name.as_str().to_string(), value)
            })
            .collect()
    }

    /// Converts the body to JSON when it parses, else to a string, with the
    /// token hidden in every string and key.
    pub(super) fn body_value(&self, body: &Bytes) -> Value {
        if body.is_empty() {
            return Value::Null;
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(mut value) => {
                if self.has_token {
                    self.redact_value(&mut value);
                }
                value
            }
            Err(_) => Value::String(self.text(&String::from_utf8_lossy(body))),
        }
    }

    fn redact_value(&self, value: &mut Value) {
        match value {
            Value::String(text) => *text = self.text(text),
            Value::Array(items) => items.iter_mut().for_each(|item| self.redact_value(item)),
            Value::Object(object) => {
                let fields = std::mem::take(object);
                for (name, mut field) in fields {
                    self.redact_value(&mut field);
                    object.insert(self.text(&name), field);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// Replaces the listed spellings in `text`, then every
    /// `separator`-delimited part that still decodes to the token, and
    /// returns `whole` instead when the token spans parts.
    fn redact_parts(&self, text: &str, separator: char, whole: &str) -> String {
        let redacted = self.redactor.redact(text);
        if !self.decodes_to_token(&redacted) {
            return redacted;
        }
        let parts: Vec<&str> = redacted
            .split(separator)
            .map(|part| {
                if self.decodes_to_token(part) {
                    PLACEHOLDER
                } else {
                    part
                }
            })
            .collect();
        let joined = parts.join(separator.encode_utf8(&mut [0; 4]));
        if self.decodes_to_token(&joined) {
            return whole.to_string();
        }
        joined
    }

    /// Returns whether `text` contains the token once percent-decoded, with
    /// `+` read both as itself and as a space, in up to
    /// [`MAX_DECODE_ROUNDS`] rounds. Spellings the [`Redactor`] lists are
    /// found without decoding.
    fn decodes_to_token(&self, text: &str) -> bool {
        if !self.has_token {
            return false;
        }
        if self.contains_token(text) {
            return true;
        }
        let mut layer = Cow::Borrowed(text);
        for _ in 0..MAX_DECODE_ROUNDS {
            if !layer.contains(['%', '+']) {
                return false;
            }
            let decoded = percent_decode_str(&layer).decode_utf8_lossy().into_owned();
            let plus_as_space = layer.replace('+', " ");
            let form_decoded = percent_decode_str(&plus_as_space).decode_utf8_lossy();
            if self.contains_token(&decoded) || self.contains_token(&form_decoded) {
                return true;
            }
            if decoded == *layer {
                return false;
            }
            layer = Cow::Owned(decoded);
        }
        false
    }

    fn contains_token(&self, text: &str) -> bool {
        self.redactor.redact(text) != text
    }
}

/// Form-decodes a query parameter name.
fn decode_name(name: &str) -> Cow<'_, str> {
    url::form_urlencoded::parse(name.as_bytes())
        .next()
        .map_or(Cow::Borrowed(""), |(decoded, _)| decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "se cr+et/x";

    fn redactor() -> RequestRedactor {
        RequestRedactor::new(Some(TOKEN), "Token")
    }

    #[test]
    fn query_hides_any_token_value() {
        let redactor = RequestRedactor::new(Some("s3cret"), "Token");
        assert_eq!(
            redactor.query("a=1&Token=s3cret&b=2"),
            format!("a=1&Token={PLACEHOLDER}&b=2")
        );
        assert_eq!(
            redactor.query("Token=guess"),
            format!("Token={PLACEHOLDER}")
        );
        assert_eq!(
            redactor.query("other=s3cret"),
            format!("other={PLACEHOLDER}")
        );
        assert_eq!(redactor.query(""), "");
    }

    #[test]
    fn query_hides_token_parameter_in_any_case() {
        let redactor = redactor();
        for name in ["token", "TOKEN", "tOkEn", "%54oken"] {
            assert_eq!(
                redactor.query(&format!("{name}=anything&a=1")),
                format!("{name}={PLACEHOLDER}&a=1")
            );
        }
    }

    #[test]
    fn query_hides_mixed_hex_spellings() {
        let redactor = redactor();
        assert_eq!(
            redactor.query("a=se%20cr%2Bet%2fx&b=2"),
            format!("a={PLACEHOLDER}&b=2")
        );
        assert_eq!(
            redactor.query("a=before%20se%20cr%2bet%2Fx&b=2"),
            format!("a={PLACEHOLDER}&b=2")
        );
        assert_eq!(
            redactor.query("se%20cr%2Bet%2fx&b=2"),
            format!("{PLACEHOLDER}&b=2")
        );
        // Encoded twice, as a proxy that re-encodes `%` would send it.
        assert_eq!(
            redactor.query("a=se%2520cr%252Bet%252fx"),
            format!("a={PLACEHOLDER}")
        );
    }

    #[test]
    fn query_without_token_hides_only_parameter() {
        let redactor = RequestRedactor::new(None, "Token");
        assert_eq!(
            redactor.query("Token=guess&a=se%20cr%2Bet%2fx"),
            format!("Token={PLACEHOLDER}&a=se%20cr%2Bet%2fx")
        );
    }

    #[test]
    fn path_hides_segments_and_spanning_token() {
        let redactor = redactor();
        assert_eq!(redactor.path("/hooks/general"), "/hooks/general");
        assert_eq!(
            redactor.path("/hooks/se%20cr%2Bet%2fx/general"),
            format!("/hooks/{PLACEHOLDER}/general")
        );
        assert_eq!(
            redactor.path("/se%20cr%2bet%2fx"),
            format!("/{PLACEHOLDER}")
        );
        assert_eq!(redactor.path("/se%20cr+et/x"), format!("/{PLACEHOLDER}"));
        assert_eq!(
            redactor.path("/hooks/%73e%20cr%2Bet/x"),
            format!("/{PLACEHOLDER}")
        );
    }

    #[test]
    fn text_hides_words_and_spanning_token() {
        let redactor = redactor();
        assert_eq!(
            redactor.text("unknown action se%20cr%2Bet%2fx here"),
            format!("unknown action {PLACEHOLDER} here")
        );
        assert_eq!(redactor.text("se%20cr+et/x"), PLACEHOLDER);
        assert_eq!(redactor.text("100% of a+b"), "100% of a+b");
    }

    #[test]
    fn header_urls_hide_token_parameter() {
        let redactor = RequestRedactor::new(Some("s3cret"), "Token");
        let mut headers = HeaderMap::new();
        headers.insert("referer", "http://127.0.0.1/x?token=guess".parse().unwrap());
        headers.insert("authorization", "Bearer s3cret".parse().unwrap());
        headers.insert("x-note", "a s%33cret b".parse().unwrap());
        let redacted = redactor.headers(&headers);
        assert_eq!(
            redacted,
            [
                (
                    "referer".to_string(),
                    format!("http://127.0.0.1/x?token={PLACEHOLDER}")
                ),
                ("authorization".to_string(), PLACEHOLDER.to_string()),
                ("x-note".to_string(), format!("a {PLACEHOLDER} b")),
            ]
        );
    }

    #[test]
    fn body_value_redacts_strings_and_keys() {
        let redactor = RequestRedactor::new(Some("s3cret"), "Token");
        let body = Bytes::from_static(br#"{"s3cret":["x s3cret y", 1, "s%33cret"]}"#);
        assert_eq!(
            redactor.body_value(&body),
            serde_json::json!({ PLACEHOLDER: [format!("x {PLACEHOLDER} y"), 1, PLACEHOLDER] })
        );
        assert_eq!(
            redactor.body_value(&Bytes::from_static(b"not json s3cret")),
            Value::String(format!("not json {PLACEHOLDER}"))
        );
    }
}
