//! Keeping the webhook token out of every output stream.
//!
//! The token travels in the query string, so any URL, error message or
//! response excerpt may carry it, raw or in one of many encodings. A
//! receiver may echo it percent-encoded with upper- or lower-case hex, form
//! encoded, or escaped inside JSON or HTML by one of the common encoders.
//! [`Redactor`] replaces every spelling it can derive with a placeholder before
//! text leaves the process, and [`Redactor::redact_url`] also hides the
//! values of token parameters and URL passwords whatever they contain.

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

/// The characters JavaScript's `encodeURIComponent` leaves unencoded: the
/// unreserved set plus `! * ' ( )`.
const JS_COMPONENT: &AsciiSet = &QUERY_VALUE
    .remove(b'!')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// The characters Go's `url.PathEscape` leaves unencoded: the unreserved set plus
/// `$ & + , : ; = @`.
const GO_PATH_SEGMENT: &AsciiSet = &QUERY_VALUE
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b',')
    .remove(b':')
    .remove(b';')
    .remove(b'=')
    .remove(b'@');

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
    /// replaced, then the path, query and fragment as by
    /// [`redact`](Self::redact). The scheme, user name, host and port are
    /// kept. Text that does not parse as a URL is redacted as by
    /// [`redact_text_with_urls`](Self::redact_text_with_urls).
    pub fn redact_url(&self, text: &str) -> String {
        let Ok(mut url) = url::Url::parse(text) else {
            return self.redact_text_with_urls(text);
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

        // The scheme, host and port are left out of the text pass: a short
        // secret such as "1" would otherwise replace part of 127.0.0.1.
        let mut output = url[..url::Position::BeforePath].to_string();
        if has_password {
            output = output.replace("MEWSHOOKREDACTEDPASSWORD", PLACEHOLDER);
        }
        output.push_str(&self.redact(&url[url::Position::BeforePath..]));
        if let Some(query) = query {
            output.push('?');
            output.push_str(&self.redact(&query));
        }
        if let Some(fragment) = fragment {
            output.push('#');
            output.push_str(&self.redact(&fragment));
        }
        output
    }

    /// Redacts free text that may contain URLs, parsed or not, such as an
    /// argument parser's error that repeats an invalid `--url`. The values
    /// of token parameters (`?Token=...`, `&token=...`) and passwords in
    /// `scheme://user:password@` are hidden textually. Then the rest is
    /// redacted as by [`redact`](Self::redact).
    pub fn redact_text_with_urls(&self, text: &str) -> String {
        let mut output = hide_passwords(text);
        for param in &self.params {
            output = hide_param_values(&output, param);
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

    /// Returns whether there is nothing to hide.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty() && self.params.is_empty()
    }
}

/// Characters that end a query value in free text.
fn ends_value(character: char) -> bool {
    matches!(character, '&' | '#' | ';' | '\'' | '"' | '`') || character.is_whitespace()
}

/// Replaces the value after every `?name=`, `&name=` or `;name=` (name
/// compared without case) in free text.
fn hide_param_values(text: &str, name: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let needle = format!("{name}=");
    let mut output = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = lower[search..].find(&needle) {
        let start = search + found;
        let value_start = start + needle.len();
        search = value_start;
        let preceded = text[..start].chars().next_back();
        if !matches!(preceded, Some('?' | '&' | ';')) {
            continue;
        }
        let value_end = text[value_start..]
            .find(ends_value)
            .map_or(text.len(), |offset| value_start + offset);
        if value_end == value_start {
            continue;
        }
        output.push_str(&text[copied..value_start]);
        output.push_str(PLACEHOLDER);
        copied = value_end;
        search = value_end;
    }
    output.push_str(&text[copied..]);
    output
}

/// Replaces the password in every `scheme://user:password@` of free text.
fn hide_passwords(text: &str) -> String {
    let mut output = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(found) = rest.find("://") {
        let authority_start = found + 3;
        output.push_str(&rest[..authority_start]);
        rest = &rest[authority_start..];
        let authority_end = rest.find(['/', '?', '#', '\'', '"']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some(at) = authority.rfind('@')
            && let Some(colon) = authority[..at].find(':')
        {
            output.push_str(&authority[..=colon]);
            output.push_str(PLACEHOLDER);
            output.push_str(&authority[at..]);
            rest = &rest[authority_end..];
        }
    }
    output.push_str(rest);
    output
}

/// Lists every spelling of `secret` a receiver or library is likely to
/// produce.
fn spellings(secret: &str) -> Vec<String> {
    let mut spellings = vec![secret.to_string()];
    let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let encoded = [
        utf8_percent_encode(secret, QUERY_VALUE).to_string(),
        utf8_percent_encode(secret, PATH_VALUE).to_string(),
        utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string(),
        utf8_percent_encode(secret, JS_COMPONENT).to_string(),
        utf8_percent_encode(secret, GO_PATH_SEGMENT).to_string(),
        // .NET's HttpUtility.UrlEncode: a form encoding that keeps ! * ( ).
        utf8_percent_encode(secret, JS_COMPONENT)
            .to_string()
            .replace("%20", "+")
            .replace('\'', "%27"),
        form,
    ];
    for spelling in encoded {
        spellings.push(lower_hex(&spelling));
        spellings.push(spelling);
    }

    // Inside a JSON string, as encoders write it. PHP escapes `/`, Go
    // escapes `<`, `>` and `&`, and .NET those and `'`, `"`, `+` and `` ` ``.
    // Python, PHP and .NET escape non-ASCII characters, in lower- or
    // upper-case hex.
    for escape_slash in [false, true] {
        for escaped in ["", "<>&", "<>&'\"+`"] {
            for escape_non_ascii in [false, true] {
                for upper_hex in [false, true] {
                    let style = JsonStyle {
                        escape_slash,
                        escaped,
                        escape_non_ascii,
                        upper_hex,
                    };
                    let escaped = json_escape(secret, &style);
                    // A JSON document quoted inside another JSON string,
                    // as a receiver that logs its request may echo it.
                    spellings.push(json_escape(&escaped, &JsonStyle::default()));
                    spellings.push(escaped);
                }
            }
        }
    }

    // In HTML text or an attribute: Go, Python and PHP spell quotes
    // differently.
    for apostrophe in ["'", "&#39;", "&#x27;", "&#039;", "&apos;"] {
        for quote in ["\"", "&quot;", "&#34;"] {
            spellings.push(html_escape(secret, apostrophe, quote));
        }
    }
    // Decimal character references, as Go's html/template writes `+`.
    let numeric: String = secret
        .chars()
        .map(|character| match character.is_ascii_alphanumeric() {
            true => character.to_string(),
            false => format!("&#{};", u32::from(character)),
        })
        .collect();
    spellings.push(numeric);
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

/// The escaping rules of one JSON encoder for the content of a string.
#[derive(Default)]
struct JsonStyle {
    /// Whether `/` is written `\/`.
    escape_slash: bool,
    /// ASCII characters written as `\uXXXX`.
    escaped: &'static str,
    /// Whether every non-ASCII character is written as `\uXXXX`.
    escape_non_ascii: bool,
    /// Whether `\uXXXX` uses upper-case hex digits.
    upper_hex: bool,
}

/// Returns `secret` as the content of a JSON string written in `style`.
fn json_escape(secret: &str, style: &JsonStyle) -> String {
    let unicode_escape = |unit: u16| {
        if style.upper_hex {
            format!("\\u{unit:04X}")
        } else {
            format!("\\u{unit:04x}")
        }
    };
    let mut output = String::with_capacity(secret.len());
    for character in secret.chars() {
        let mut units = [0u16; 2];
        if style.escaped.contains(character) || (style.escape_non_ascii && !character.is_ascii()) {
            for unit in character.encode_utf16(&mut units) {
                output.push_str(&unicode_escape(*unit));
            }
            continue;
        }
        match character {
            '"' => output.push_str("\\\""),
            '\\' => output.push_str("\\\\"),
            '/' if style.escape_slash => output.push_str("\\/"),
            '\n' => output.push_str("\\n"),
            '\r' => output.push_str("\\r"),
            '\t' => output.push_str("\\t"),
            '\u{8}' => output.push_str("\\b"),
            '\u{c}' => output.push_str("\\f"),
            control if control.is_control() && control.is_ascii() => {
                output.push_str(&unicode_escape(control as u16));
            }
            other => output.push(other),
        }
    }
    output
}

/// Returns `secret` with the characters that HTML escapes replaced by
/// entities, writing `'` and `"` as given.
fn html_escape(secret: &str, apostrophe: &str, quote: &str) -> String {
    let mut output = String::with_capacity(secret.len());
    for character in secret.chars() {
        match character {
            '&' => output.push_str("&amp;"),
            '<' => output.push_str("&lt;"),
            '>' => output.push_str("&gt;"),
            '\'' => output.push_str(apostrophe),
            '"' => output.push_str(quote),
            other => output.push(other),
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
    let bounded = |neighbour: Option<char>| !neighbour.is_some_and(char::is_alphanumeric);
    let mut output = String::with_capacity(text.len());
    let mut copied = 0;
    for (position, _) in text.match_indices(word) {
        let before = text[..position].chars().next_back();
        let after = text[position + word.len()..].chars().next();
        if bounded(before) && bounded(after) {
            output.push_str(&text[copied..position]);
            output.push_str(PLACEHOLDER);
            copied = position + word.len();
        }
    }
    output.push_str(&text[copied..]);
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
    fn redacts_library_escapes() {
        let token = "p+s/w=d&x<y>z'q\"\u{fc}";
        let redactor = Redactor::new([token]);
        let echoes = [
            // PHP json_encode
            "p+s\\/w=d&x<y>z'q\\\"\\u00fc",
            // Go encoding/json
            "p+s/w=d\\u0026x\\u003cy\\u003ez'q\\\"\u{fc}",
            // .NET System.Text.Json
            "p\\u002Bs/w=d\\u0026x\\u003Cy\\u003Ez\\u0027q\\u0022\\u00FC",
            // Python json.dumps
            "p+s/w=d&x<y>z'q\\\"\\u00fc",
            // Python html.escape
            "p+s/w=d&amp;x&lt;y&gt;z&#x27;q&quot;\u{fc}",
            // Go html.EscapeString
            "p+s/w=d&amp;x&lt;y&gt;z&#39;q&#34;\u{fc}",
            // percent-encoding with lower-case hex
            "p%2bs%2fw%3dd%26x%3cy%3ez%27q%22%c3%bc",
        ];
        for echo in echoes {
            let text = format!("before {echo} after");
            assert_eq!(redactor.redact(&text), "before <redacted> after", "{echo}");
        }
    }

    #[test]
    fn redacts_other_encoders_spellings() {
        let base64 = Redactor::new(["Zm9v+YmFy/YmF6=="]);
        for echo in ["Zm9v+YmFy%2FYmF6==", "Zm9v&#43;YmFy&#47;YmF6&#61;&#61;"] {
            assert_eq!(base64.redact(echo), "<redacted>", "{echo}");
        }
        let password = Redactor::new(["Pa55w0rd!2024#x"]);
        assert_eq!(password.redact("Pa55w0rd!2024%23x"), "<redacted>");
        let unicode = Redactor::new([TOKEN]);
        let nested = r#"\"p+s/w=d&x%y \\u00fc\""#;
        assert_eq!(unicode.redact(nested), r#"\"<redacted>\""#);
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
    fn short_secret_leaves_host_and_port() {
        let redactor = Redactor::new(["1"]);
        assert_eq!(
            redactor.redact_url("http://127.0.0.1:1/1/x?a=1&b=11#1"),
            "http://127.0.0.1:1/<redacted>/x?a=<redacted>&b=11#<redacted>"
        );
    }

    #[test]
    fn unparsed_url_still_redacted() {
        let redactor = Redactor::new(["secret-token"]);
        assert_eq!(
            redactor.redact_url("http://[bad?Token=secret-token"),
            "http://[bad?Token=<redacted>"
        );
    }

    #[test]
    fn free_text_hides_token_values_and_passwords() {
        let mut redactor = Redactor::default();
        redactor.add_param("Token");
        let message = "invalid value 'http://u:pw@[bad/?a=1&TOKEN=S3cr3t;x' for '--url <URL>'";
        assert_eq!(
            redactor.redact_text_with_urls(message),
            "invalid value 'http://u:<redacted>@[bad/?a=1&TOKEN=<redacted>;x' for '--url <URL>'"
        );
        assert_eq!(
            redactor.redact_text_with_urls("write it as http://localhost:80/?Token=abc"),
            "write it as http://localhost:80/?Token=<redacted>"
        );
        assert_eq!(redactor.redact_text_with_urls("MyToken=abc"), "MyToken=abc");
    }

    #[test]
    fn empty_secret_changes_nothing() {
        let redactor = Redactor::new([""]);
        assert!(redactor.is_empty());
        assert_eq!(redactor.redact("Token="), "Token=");
    }
}
