//! Golden-file comparison and report checks shared by the report and CLI
//! tests.
//!
//! A golden file contains the expected output byte for byte. To accept new
//! output after a deliberate change, run the tests with
//! `MEWSHOOK_BLESS=1 cargo test`, which rewrites every golden file that a
//! test compares, and review the diff before committing it.

// Each test crate that includes this module uses only some of it.
#![allow(dead_code)]

use std::path::PathBuf;

/// The environment variable that rewrites golden files instead of
/// comparing with them.
pub const BLESS_VARIABLE: &str = "MEWSHOOK_BLESS";

/// Compares `actual` with `tests/golden/<name>`, or rewrites the file when
/// `MEWSHOOK_BLESS=1`.
pub fn assert_golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var(BLESS_VARIABLE).as_deref() == Ok("1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "failed to read {}: {error}; run with {BLESS_VARIABLE}=1 to create it",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "output differs from {}; if the change is deliberate, rerun with {BLESS_VARIABLE}=1 \
         and review the diff\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

/// Replaces what changes from run to run in terminal output: durations
/// (with the padding before them, which depends on their width) and
/// loopback ports.
pub fn normalize_run_output(text: &str) -> String {
    let durations = regex::Regex::new(r" +\d+(\.\d+)? (ms|s)\b").unwrap();
    let ports = regex::Regex::new(r"127\.0\.0\.1:\d+").unwrap();
    let text = durations.replace_all(text, " <time>");
    ports.replace_all(&text, "127.0.0.1:<port>").into_owned()
}

/// Checks that `xml` is well-formed: one root element, tags that nest and
/// close in order, quoted attributes, and `&` only in entity references.
/// It covers what the JUnit renderer writes, not all of XML (no DTDs or
/// CDATA sections).
pub fn check_well_formed_xml(xml: &str) -> Result<(), String> {
    let mut open: Vec<String> = Vec::new();
    let mut roots = 0;
    let mut rest = xml;
    while !rest.is_empty() {
        let Some(start) = rest.find('<') else {
            check_text(rest)?;
            break;
        };
        check_text(&rest[..start])?;
        if open.is_empty() && !rest[..start].trim().is_empty() {
            return Err(format!("text outside the root: {:?}", &rest[..start]));
        }
        rest = &rest[start..];
        if let Some(after) = rest.strip_prefix("<?") {
            let end = after.find("?>").ok_or("unclosed <?")?;
            rest = &after[end + 2..];
            continue;
        }
        if let Some(after) = rest.strip_prefix("<!--") {
            let end = after.find("-->").ok_or("unclosed comment")?;
            rest = &after[end + 3..];
            continue;
        }
        let end = rest.find('>').ok_or("unclosed tag")?;
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let expected = open.pop().ok_or(format!("</{name}> closes nothing"))?;
            if expected != name.trim() {
                return Err(format!("</{name}> closes <{expected}>"));
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let (name, attributes) = tag.split_once(char::is_whitespace).unwrap_or((tag, ""));
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || "-_:.".contains(c))
        {
            return Err(format!("invalid tag name {name:?}"));
        }
        check_attributes(attributes)?;
        if open.is_empty() {
            roots += 1;
        }
        if !self_closing {
            open.push(name.to_string());
        }
    }
    if let Some(name) = open.last() {
        return Err(format!("<{name}> is never closed"));
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok(())
}

fn check_attributes(text: &str) -> Result<(), String> {
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once("=\"")
            .ok_or(format!("attribute without a quoted value: {rest:?}"))?;
        if name.trim().is_empty() || name.trim().contains(char::is_whitespace) {
            return Err(format!("invalid attribute name {name:?}"));
        }
        let end = after.find('"').ok_or("unclosed attribute value")?;
        check_text(&after[..end])?;
        rest = after[end + 1..].trim_start();
    }
    Ok(())
}

fn check_text(text: &str) -> Result<(), String> {
    if text.contains('<') {
        return Err(format!("unescaped < in {text:?}"));
    }
    let entity = regex::Regex::new(r"^&(amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);").unwrap();
    for (index, _) in text.match_indices('&') {
        if !entity.is_match(&text[index..]) {
            return Err(format!("bare & in {text:?}"));
        }
    }
    Ok(())
}

/// Starts a wiremock server that responds to every POST with `status`.
pub async fn server_answering(status: u16) -> wiremock::MockServer {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(status))
        .mount(&server)
        .await;
    server
}

/// Returns the decoded value of the `Token` query parameter a request
/// carried.
pub fn received_token(request: &wiremock::Request) -> Option<String> {
    request
        .url
        .query_pairs()
        .find(|(name, _)| name == "Token")
        .map(|(_, value)| value.into_owned())
}
