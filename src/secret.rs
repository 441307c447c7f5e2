//! Keeping the webhook token out of every output stream.
//!
//! The token travels in the query string, so any URL, error message or
//! response excerpt may carry it, raw or percent-encoded. [`Redactor`]
//! replaces every known spelling of every secret with a placeholder before
//! text leaves the process.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// The text printed in place of a secret.
pub const PLACEHOLDER: &str = "<redacted>";

/// Characters left as they are when a token goes into a query string: the
/// RFC 3986 unreserved set. Everything else, space included, is
/// percent-encoded, so `+`, `&`, `=` and `%` reach the receiver intact
/// whether it decodes the query as a form or as a plain URI component.
pub const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes `value` for use as a query parameter value.
pub fn encode_query_value(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// Replaces known secrets in text with [`PLACEHOLDER`].
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Every spelling to hide, longest first so that an encoded form is
    /// replaced whole before a shorter raw form inside it.
    needles: Vec<String>,
}

impl Redactor {
    /// Builds a redactor for `secrets`; empty strings are ignored.
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut redactor = Redactor::default();
        for secret in secrets {
            redactor.add(secret.as_ref());
        }
        redactor
    }

    /// Adds one more secret to hide.
    pub fn add(&mut self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let form_encoded: String =
            url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        for spelling in [
            secret.to_string(),
            encode_query_value(secret),
            form_encoded,
            utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string(),
        ] {
            if !self.needles.contains(&spelling) {
                self.needles.push(spelling);
            }
        }
        self.needles
            .sort_by_key(|needle| std::cmp::Reverse(needle.len()));
    }

    /// Returns `text` with every secret spelling replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut output = text.to_string();
        for needle in &self.needles {
            if output.contains(needle.as_str()) {
                output = output.replace(needle.as_str(), PLACEHOLDER);
            }
        }
        output
    }

    /// Whether there is nothing to hide.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_keeps_reserved_characters_apart() {
        assert_eq!(
            encode_query_value("a+b&c=d%e f/g"),
            "a%2Bb%26c%3Dd%25e%20f%2Fg"
        );
        assert_eq!(encode_query_value("A-z_0.9~"), "A-z_0.9~");
    }

    #[test]
    fn redacts_raw_and_encoded_forms() {
        let redactor = Redactor::new(["s3cr+t &x"]);
        let url = format!("http://h/p?Token={}", encode_query_value("s3cr+t &x"));
        assert_eq!(redactor.redact(&url), "http://h/p?Token=<redacted>");
        assert_eq!(redactor.redact("raw s3cr+t &x here"), "raw <redacted> here");
        assert_eq!(redactor.redact("form s3cr%2Bt+%26x"), "form <redacted>");
    }

    #[test]
    fn empty_secret_changes_nothing() {
        let redactor = Redactor::new([""]);
        assert!(redactor.is_empty());
        assert_eq!(redactor.redact("Token="), "Token=");
    }
}
