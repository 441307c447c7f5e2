//! Keeping the webhook token out of every output stream.
//!
//! The token travels in the query string, so any URL, error message or
//! response excerpt may carry it, raw or in one of many encodings: a
//! receiver may echo it percent-encoded with upper- or lower-case hex, form
//! encoded, or escaped inside JSON. [`Redactor`] replaces every spelling
//! it knows with a placeholder before text leaves the process, and
//! [`Redactor::redact_url`] also hides the values of token parameters and
//! URL passwords whatever they contain.

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

/// The unreserved set plus `/`, which many URL libraries leave unencoded
/// (Python's `quote` among them), so a receiver may echo that spelling.
const PATH_VALUE: &AsciiSet = &QUERY_VALUE.remove(b'/');

/// Secrets shorter than this are replaced in free text only where they
/// stand as a whole word. Replacing every "t" of a one-letter token would
/// make messages unreadable and point at the token anyway.
const MIN_SUBSTRING_SECRET: usize = 6;

/// Percent-encodes `value` for use as a query parameter value.
pub fn encode_query_value(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// Replaces known secrets in text with [`PLACEHOLDER`].
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Every spelling to hide anywhere in text, longest first so that an
    /// encoded form is replaced whole before a shorter raw form inside it.
    needles: Vec<String>,
    /// Spellings of short secrets, hidden only as whole words.
    words: Vec<String>,
    /// The raw secrets, compared with decoded query values.
    secrets: Vec<String>,
    /// Query parameter names, lower-cased, whose values are always hidden.
    params: Vec<String>,
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

    /// Builds the redactor for a target: it hides `token`, every value of
    /// the `token_param` query parameter, and any such value or password
    /// already written into `urls`, which a user may have copied from the
    /// form Mews documents (`https://host/path?Token=...`).
    pub fn for_target<'a>(
        token: Option<&str>,
        token_param: &str,
        urls: impl IntoIterator<Item = &'a url::Url>,
    ) -> Redactor {
        let mut redactor = Redactor::new(token);
        redactor.add_param(token_param);
        for url in urls {
            for (name, value) in url.query_pairs() {
                if name.eq_ignore_ascii_case(token_param) {
                    redactor.add(&value);
                }
            }
            if let Some(password) = url.password() {
                redactor.add(password);
            }
        }
        redactor
    }

    /// Adds one more secret to hide.
    pub fn add(&mut self, secret: &str) {
        if secret.is_empty() || self.secrets.iter().any(|known| known == secret) {
            return;
        }
        self.secrets.push(secret.to_string());
        let target = if secret.chars().count() < MIN_SUBSTRING_SECRET {
            &mut self.words
        } else {
            &mut self.needles
        };
        for spelling in spellings(secret) {
            if !target.contains(&spelling) {
                target.push(spelling);
            }
        }
        target.sort_by_key(|needle| std::cmp::Reverse(needle.len()));
    }

    /// Hides the value of query parameter `name` (compared without case)
    /// in every URL passed to [`redact_url`](Self::redact_url), whatever
    /// the value is.
    pub fn add_param(&mut self, name: &str) {
        let name = name.to_ascii_lowercase();
        if !name.is_empty() && !self.params.contains(&name) {
            self.params.push(name);
        }
    }

    /// Returns `text` with every secret spelling replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut output = text.to_string();
        for needle in &self.needles {
            if output.contains(needle.as_str()) {
                output = output.replace(needle.as_str(), PLACEHOLDER);
            }
        }
        for word in &self.words {
            output = replace_whole_words(&output, word);
        }
        output
    }

    /// Returns `text` redacted as a URL: the password, the values of token
    /// parameters and any query value that decodes to a secret are
    /// replaced, then the rest as by [`redact`](Self::redact). Text that
    /// does not parse as a URL is only redacted as text.
    pub fn redact_url(&self, text: &str) -> String {
        let Ok(mut url) = url::Url::parse(text) else {
            return self.redact(text);
        };
        let query = url.query().map(|query| self.redact_query(query));
        let fragment = url.fragment().map(str::to_string);
        url.set_query(None);
        url.set_fragment(None);
        // A sentinel of URL-safe characters goes in first, because the url
        // crate would percent-encode the placeholder's angle brackets.
        let has_password = url.password().is_some();
        if has_password {
            let _ = url.set_password(Some("MEWSHOOKREDACTEDPASSWORD"));
        }

        let mut output = url.to_string();
        if has_password {
            output = output.replace("MEWSHOOKREDACTEDPASSWORD", PLACEHOLDER);
        }
        if let Some(query) = query {
            output.push('?');
            output.push_str(&query);
        }
        if let Some(fragment) = fragment {
            output.push('#');
            output.push_str(&fragment);
        }
        self.redact(&output)
    }

    fn redact_query(&self, query: &str) -> String {
        let pieces: Vec<String> = query
            .split('&')
            .map(|piece| {
                let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
                let decoded_name = decode_form(name).to_ascii_lowercase();
                let decoded_value = decode_form(value);
                let hidden =
                    self.params.contains(&decoded_name) || self.secrets.contains(&decoded_value);
                if hidden && piece.contains('=') {
                    format!("{name}={PLACEHOLDER}")
                } else {
                    piece.to_string()
                }
            })
            .collect();
        pieces.join("&")
    }

    /// Whether there is nothing to hide.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty() && self.params.is_empty()
    }
}

/// Every spelling of `secret` a receiver or library is likely to produce.
fn spellings(secret: &str) -> Vec<String> {
    let mut spellings = vec![secret.to_string()];
    let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let encoded = [
        utf8_percent_encode(secret, QUERY_VALUE).to_string(),
        utf8_percent_encode(secret, PATH_VALUE).to_string(),
        utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string(),
        form,
    ];
    for spelling in encoded {
        spellings.push(lower_hex(&spelling));
        spellings.push(spelling);
    }

    // Inside a JSON string: serde_json's escapes, and the ASCII-only form
    // that escapes every non-ASCII character as \uXXXX.
    let json = serde_json::to_string(secret).unwrap_or_default();
    let json = json.trim_matches('"').to_string();
    spellings.push(ascii_json(&json));
    spellings.push(json.replace('/', "\\/"));
    spellings.push(json);
    spellings.sort();
    spellings.dedup();
    spellings
}

/// Lower-cases the two hex digits after every `%`.
fn lower_hex(encoded: &str) -> String {
    let mut output = String::with_capacity(encoded.len());
    let mut hex_left = 0;
    for character in encoded.chars() {
        if hex_left > 0 {
            output.push(character.to_ascii_lowercase());
            hex_left -= 1;
        } else {
            if character == '%' {
                hex_left = 2;
            }
            output.push(character);
        }
    }
    output
}

/// Escapes every non-ASCII character of JSON string content as `\uXXXX`.
fn ascii_json(json: &str) -> String {
    let mut output = String::with_capacity(json.len());
    for character in json.chars() {
        if character.is_ascii() {
            output.push(character);
            continue;
        }
        let mut units = [0u16; 2];
        for unit in character.encode_utf16(&mut units) {
            output.push_str(&format!("\\u{unit:04x}"));
        }
    }
    output
}

fn decode_form(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

/// Replaces `word` where it is not part of a longer alphanumeric run.
fn replace_whole_words(text: &str, word: &str) -> String {
    let mut output = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(position) = rest.find(word) {
        let before = rest[..position].chars().next_back();
        let after = rest[position + word.len()..].chars().next();
        let bounded = |neighbour: Option<char>| !neighbour.is_some_and(char::is_alphanumeric);
        output.push_str(&rest[..position]);
        if bounded(before) && bounded(after) {
            output.push_str(PLACEHOLDER);
        } else {
            output.push_str(word);
        }
        rest = &rest[position + word.len()..];
    }
    output.push_str(rest);
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "p+s/w=d&x%y ü";

    #[test]
    fn encoding_keeps_reserved_characters_apart() {
        assert_eq!(
            encode_query_value("a+b&c=d%e f/g"),
            "a%2Bb%26c%3Dd%25e%20f%2Fg"
        );
        assert_eq!(encode_query_value("A-z_0.9~"), "A-z_0.9~");
    }

    #[test]
    fn redacts_every_echoed_spelling() {
        let redactor = Redactor::new([TOKEN]);
        let echoes = [
            TOKEN.to_string(),
            encode_query_value(TOKEN),
            encode_query_value(TOKEN).to_lowercase(),
            "p%2Bs/w%3Dd%26x%25y%20%C3%BC".to_string(),
            "p%2bs/w%3dd%26x%25y%20%c3%bc".to_string(),
            "p%2Bs%2Fw%3Dd%26x%25y+%C3%BC".to_string(),
            "p+s/w=d&x%y \\u00fc".to_string(),
            "p+s\\/w=d&x%y ü".to_string(),
        ];
        for echo in echoes {
            let text = format!("before {echo} after");
            assert_eq!(redactor.redact(&text), "before <redacted> after", "{echo}");
        }
    }

    #[test]
    fn short_secret_is_hidden_only_as_a_word() {
        let redactor = Redactor::new(["t"]);
        assert_eq!(
            redactor.redact("client error: Token=t"),
            "client error: Token=<redacted>"
        );
    }

    #[test]
    fn url_hides_token_parameter_and_password() {
        let mut redactor = Redactor::default();
        redactor.add_param("Token");
        let url = "http://user:hunter2@127.0.0.1:1/hook?a=1&token=SuperSecret99#top";
        assert_eq!(
            redactor.redact_url(url),
            "http://user:<redacted>@127.0.0.1:1/hook?a=1&token=<redacted>#top"
        );
    }

    #[test]
    fn url_hides_query_values_equal_to_secret() {
        let redactor = Redactor::new(["ab+cd/ef=gh"]);
        assert_eq!(
            redactor.redact_url("http://h/next?other=ab%2bcd%2fef%3dgh"),
            "http://h/next?other=<redacted>"
        );
    }

    #[test]
    fn text_that_is_not_a_url_is_still_redacted() {
        let redactor = Redactor::new(["secret-token"]);
        assert_eq!(
            redactor.redact_url("http://[bad?Token=secret-token"),
            "http://[bad?Token=<redacted>"
        );
    }

    #[test]
    fn empty_secret_changes_nothing() {
        let redactor = Redactor::new([""]);
        assert!(redactor.is_empty());
        assert_eq!(redactor.redact("Token="), "Token=");
    }
}
