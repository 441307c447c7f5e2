//! The request handler: the checks in order, the response, and the account of
//! each request in counters, printed lines, the record file and the log.

use std::borrow::Cow;
use std::fmt;
use std::io::Write;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::Value;

use super::REDIRECT_PATH;
use super::state::{InFlightGuard, ReceivedRequest, ReceiverState, bump};
use super::validate::{
    BodyError, BodySummary, GeneralSummary, IntegrationSummary, MAX_SHOWN_CHARS, validate_body,
};
use crate::secret::{PLACEHOLDER, Redactor};

/// Headers whose values are credentials by convention, so the log and the
/// record file never show them.
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

/// The number of unknown discriminator names a printed line lists.
const MAX_LISTED_UNKNOWN: usize = 3;

/// The receiver's decision on one request.
pub(super) enum Verdict {
    /// A valid message, to be acknowledged with the configured success status.
    Valid(BodySummary),
    /// A method other than POST.
    MethodNotAllowed(Method),
    /// A body over the limit, in bytes.
    TooLarge(usize),
    /// A body that failed to arrive, for example because the client hung up.
    Unreadable(String),
    /// A redirect to [`REDIRECT_PATH`] with the original query.
    Redirected {
        status: StatusCode,
        location: HeaderValue,
    },
    MissingToken,
    WrongToken,
    /// The `number`th of `of` injected 500 responses.
    InjectedFailure {
        number: u64,
        of: u64,
    },
    InvalidBody(BodyError),
}

impl Verdict {
    /// Returns the reason the request was not accepted: `None` for a valid
    /// message or a redirect.
    fn error(&self) -> Option<String> {
        match self {
            Verdict::Valid(_) | Verdict::Redirected { .. } => None,
            other => Some(other.to_string()),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Valid(BodySummary::General(general)) => write_general(f, general),
            Verdict::Valid(BodySummary::Integration(integration)) => {
                write_integration(f, integration)
            }
            Verdict::MethodNotAllowed(method) => write!(f, "method {method} not allowed"),
            Verdict::TooLarge(limit) => write!(f, "body larger than {limit} bytes"),
            Verdict::Unreadable(reason) => write!(f, "failed to read body: {reason}"),
            Verdict::Redirected { .. } => write!(f, "redirect to {REDIRECT_PATH}"),
            Verdict::MissingToken => f.write_str("missing token"),
            Verdict::WrongToken => f.write_str("wrong token"),
            Verdict::InjectedFailure { number, of } => {
                write!(f, "injected failure {number} of {of}")
            }
            Verdict::InvalidBody(error) => write!(f, "invalid body: {error}"),
        }
    }
}

/// Writes for example
/// `general  3 events  2 discriminators  enterprise 851df8c8-…`.
fn write_general(f: &mut fmt::Formatter<'_>, general: &GeneralSummary) -> fmt::Result {
    let events = general.event_count;
    let discriminators = general.distinct_discriminators();
    write!(
        f,
        "general  {events} event{}  {discriminators} discriminator{}",
        plural(events),
        plural(discriminators)
    )?;
    let unknown = &general.unknown_discriminators;
    if !unknown.is_empty() {
        // Names come from the body: escape them so a line stays one line.
        let names: Vec<String> = unknown
            .iter()
            .take(MAX_LISTED_UNKNOWN)
            .map(|name| {
                name.chars()
                    .take(MAX_SHOWN_CHARS)
                    .collect::<String>()
                    .escape_debug()
                    .to_string()
            })
            .collect();
        let more = if unknown.len() > MAX_LISTED_UNKNOWN {
            ", …"
        } else {
            ""
        };
        write!(
            f,
            " ({} unknown: {}{more})",
            unknown.len(),
            names.join(", ")
        )?;
    }
    write_unknown_fields(f, general.unknown_fields)?;
    write!(f, "  enterprise {}", general.enterprise_id)
}

/// Writes for example `integration  IntegrationCreated`.
fn write_integration(f: &mut fmt::Formatter<'_>, integration: &IntegrationSummary) -> fmt::Result {
    let action: String = integration.action.chars().take(MAX_SHOWN_CHARS).collect();
    write!(f, "integration  {}", action.escape_debug())?;
    if !integration.known_action {
        f.write_str(" (unknown action)")?;
    }
    write_unknown_fields(f, integration.unknown_fields)
}

fn write_unknown_fields(f: &mut fmt::Formatter<'_>, count: usize) -> fmt::Result {
    match count {
        0 => Ok(()),
        _ => write!(f, "  {count} unknown field{}", plural(count)),
    }
}

/// Returns the plural ending for `count` of an English noun.
fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// Handles every request on every path.
pub(super) async fn handle(State(state): State<ReceiverState>, request: Request) -> Response {
    let started = Instant::now();
    let _in_flight = InFlightGuard::enter(&state.inner.counters.in_flight);
    let received_at = state.inner.needs_details.then(Utc::now);
    let (parts, body) = request.into_parts();

    let (verdict, body) = judge(&state, &parts, body).await;
    let response = respond(&state, &verdict);
    state.finish(
        &parts,
        body,
        &verdict,
        response.status(),
        started,
        received_at,
    );
    response
}

/// Runs the checks in order: method, body size, redirect, token,
/// `fail_first`, delay, body shape. Returns the verdict and the body read.
async fn judge(state: &ReceiverState, parts: &Parts, body: Body) -> (Verdict, Bytes) {
    if parts.method != Method::POST {
        return (
            Verdict::MethodNotAllowed(parts.method.clone()),
            Bytes::new(),
        );
    }
    // The body is read before any other check so that every request, even
    // one rejected for its token, is logged and recorded with its body.
    match read_body(body, &parts.headers, state.inner.config.max_body).await {
        Ok(bytes) => {
            let verdict = judge_message(state, parts, &bytes).await;
            (verdict, bytes)
        }
        Err(verdict) => (verdict, Bytes::new()),
    }
}

async fn judge_message(state: &ReceiverState, parts: &Parts, body: &Bytes) -> Verdict {
    let inner = &state.inner;
    let config = &inner.config;

    if let Some(status) = inner.redirect_status
        && parts.uri.path() != REDIRECT_PATH
    {
        let location = redirect_location(parts.uri.query());
        return Verdict::Redirected { status, location };
    }

    if let Some(token) = &config.token {
        match check_token(parts.uri.query(), &config.token_param, token) {
            TokenCheck::Missing => return Verdict::MissingToken,
            TokenCheck::Wrong => return Verdict::WrongToken,
            TokenCheck::Matched => {}
        }
    }

    if config.fail_first > 0 {
        let number = bump(&inner.counters.fail_first_seen, 1);
        if number <= config.fail_first {
            return Verdict::InjectedFailure {
                number,
                of: config.fail_first,
            };
        }
    }

    // The delay stands for slow processing of an authenticated message, so
    // rejections and injected failures above get their response at once.
    if !config.delay.is_zero() {
        tokio::time::sleep(config.delay).await;
    }

    match validate_body(body) {
        Ok(summary) => Verdict::Valid(summary),
        Err(error) => Verdict::InvalidBody(error),
    }
}

/// Reads the whole body, or returns the verdict for a body over `limit`
/// bytes or one that failed to arrive.
async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, Verdict> {
    // A declared length over the limit is rejected before reading a byte.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(Verdict::TooLarge(limit));
    }

    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(Verdict::TooLarge(limit)),
        Err(error) => Err(Verdict::Unreadable(error.to_string())),
    }
}

/// Builds `/redirected` with the original query, which carries the token
/// on to the second request.
fn redirect_location(query: Option<&str>) -> HeaderValue {
    let location = match query {
        Some(query) => Cow::Owned(format!("{REDIRECT_PATH}?{query}")),
        None => Cow::Borrowed(REDIRECT_PATH),
    };
    // A query taken from a parsed URI contains only visible ASCII, which is
    // always a valid header value; the fallback only guards that assumption.
    HeaderValue::from_str(&location).unwrap_or_else(|_| HeaderValue::from_static(REDIRECT_PATH))
}

#[derive(Debug, PartialEq, Eq)]
enum TokenCheck {
    Missing,
    Wrong,
    Matched,
}

/// Compares every `param` value in `query` with `expected`.
///
/// The query is decoded as a form, as web frameworks do: `%2B` is `+` and
/// a bare `+` is a space. The parameter name is case-sensitive. An empty
/// value counts as missing, and when the parameter occurs more than once
/// every occurrence must match.
fn check_token(query: Option<&str>, param: &str, expected: &str) -> TokenCheck {
    let mut found = false;
    let mut all_match = true;
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if name != param || value.is_empty() {
            continue;
        }
        found = true;
        all_match &= constant_time_eq(value.as_bytes(), expected.as_bytes());
    }
    match (found, all_match) {
        (false, _) => TokenCheck::Missing,
        (true, false) => TokenCheck::Wrong,
        (true, true) => TokenCheck::Matched,
    }
}

/// Compares two byte strings in time that depends on their lengths only,
/// so response times do not reveal how much of a guessed token is right.
fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    let difference = left
        .iter()
        .zip(right)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    difference == 0
}

/// Builds the response: an empty body for a valid message or a redirect, and
/// a one-line plain-text reason otherwise.
fn respond(state: &ReceiverState, verdict: &Verdict) -> Response {
    let param = &state.inner.config.token_param;
    let (status, reason) = match verdict {
        Verdict::Valid(_) => return state.inner.success_status.into_response(),
        Verdict::Redirected { status, location } => {
            return (*status, [(header::LOCATION, location.clone())]).into_response();
        }
        Verdict::MethodNotAllowed(_) => {
            let reason = format!("{verdict}; Mews sends webhooks with POST\n");
            let allow = [(header::ALLOW, HeaderValue::from_static("POST"))];
            return (StatusCode::METHOD_NOT_ALLOWED, allow, reason).into_response();
        }
        Verdict::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, verdict.to_string()),
        Verdict::MissingToken => (
            StatusCode::UNAUTHORIZED,
            format!("missing token: add the query parameter {param}"),
        ),
        Verdict::WrongToken => (
            StatusCode::FORBIDDEN,
            format!("wrong token in query parameter {param}"),
        ),
        Verdict::InjectedFailure { .. } => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{verdict} (fail-first)"),
        ),
        Verdict::Unreadable(_) | Verdict::InvalidBody(_) => {
            (StatusCode::BAD_REQUEST, verdict.to_string())
        }
    };
    (status, format!("{reason}\n")).into_response()
}

impl ReceiverState {
    /// Accounts for one request after its response is built: counters and
    /// the debug log always, then the printed line, the record file and
    /// the request log when configured.
    fn finish(
        &self,
        parts: &Parts,
        body: Bytes,
        verdict: &Verdict,
        status: StatusCode,
        started: Instant,
        received_at: Option<DateTime<Utc>>,
    ) {
        self.count(verdict, status);

        let redactor = &self.inner.redactor;
        tracing::debug!(
            status = status.as_u16(),
            method = %parts.method,
            path = %redactor.redact(parts.uri.path()),
            outcome = %redactor.redact(&verdict.to_string()),
            "responded to request"
        );

        let Some(received_at) = received_at else {
            return;
        };
        let elapsed = started.elapsed();
        let config = &self.inner.config;
        let path = redactor.redact(parts.uri.path());

        if config.print {
            let millis = elapsed.as_secs_f64() * 1000.0;
            let line = format!("{} {verdict}  {millis:.1} ms  {path}", status.as_u16());
            // Ignore write errors: a closed stdout must not stop the receiver.
            let _ = writeln!(std::io::stdout().lock(), "{}", redactor.redact(&line));
        }
        if !config.keep_requests && config.record.is_none() {
            return;
        }

        let request = ReceivedRequest {
            method: parts.method.to_string(),
            path,
            query: redact_query(
                parts.uri.query().unwrap_or(""),
                &config.token_param,
                redactor,
            ),
            headers: redact_headers(&parts.headers, redactor),
            body,
            kind: None,
            event_count: 0,
            enterprise_id: None,
            integration_id: None,
            action: None,
            status: status.as_u16(),
            error: verdict.error().map(|error| redactor.redact(&error)),
            token_ok: token_ok(verdict, config.token.is_some()),
            received_at,
            elapsed,
        };
        let request = describe_message(request, verdict);
        if config.record.is_some() {
            let line = record_line(&request, redactor);
            self.write_record(line.as_bytes());
        }
        self.keep(request);
    }

    fn count(&self, verdict: &Verdict, status: StatusCode) {
        let counters = &self.inner.counters;
        let outcome = match verdict {
            Verdict::Valid(summary) => {
                match summary {
                    BodySummary::General(general) => {
                        bump(&counters.general_messages, 1);
                        bump(&counters.events, general.event_count as u64);
                    }
                    BodySummary::Integration(_) => {
                        bump(&counters.integration_messages, 1);
                    }
                }
                if status.is_success() {
                    &counters.accepted
                } else {
                    &counters.valid_non_2xx
                }
            }
            Verdict::MethodNotAllowed(_) => &counters.method_not_allowed,
            Verdict::TooLarge(_) => &counters.too_large,
            Verdict::Unreadable(_) | Verdict::InvalidBody(_) => &counters.invalid_body,
            Verdict::Redirected { .. } => &counters.redirected,
            Verdict::MissingToken | Verdict::WrongToken => &counters.rejected_auth,
            Verdict::InjectedFailure { .. } => &counters.injected_failures,
        };
        bump(outcome, 1);
        // Counted last with Release, paired with the Acquire load in the
        // snapshot, so a snapshot that includes this request in `requests`
        // also includes it in its outcome counter.
        counters
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }
}

/// Fills the message fields of `request` from a valid verdict.
fn describe_message(mut request: ReceivedRequest, verdict: &Verdict) -> ReceivedRequest {
    let Verdict::Valid(summary) = verdict else {
        return request;
    };
    request.kind = Some(summary.kind());
    request.event_count = summary.event_count();
    match summary {
        BodySummary::General(general) => {
            request.enterprise_id = Some(general.enterprise_id);
            request.integration_id = Some(general.integration_id);
        }
        BodySummary::Integration(integration) => request.action = Some(integration.action.clone()),
    }
    request
}

/// Returns whether the token matched: `None` when no token is configured or the
/// request got its response before the token check.
fn token_ok(verdict: &Verdict, token_configured: bool) -> Option<bool> {
    if !token_configured {
        return None;
    }
    match verdict {
        Verdict::MissingToken | Verdict::WrongToken => Some(false),
        Verdict::InjectedFailure { .. } | Verdict::InvalidBody(_) | Verdict::Valid(_) => Some(true),
        Verdict::MethodNotAllowed(_)
        | Verdict::TooLarge(_)
        | Verdict::Unreadable(_)
        | Verdict::Redirected { .. } => None,
    }
}

/// Replaces the value of every `token_param` parameter with the
/// placeholder, whether or not it matched, then any other spelling of the
/// configured token. The rest of the query stays as received.
pub(super) fn redact_query(query: &str, token_param: &str, redactor: &Redactor) -> String {
    let pieces: Vec<Cow<'_, str>> = query
        .split('&')
        .map(|piece| match piece.split_once('=') {
            Some((name, _)) if decode_name(name) == token_param => {
                Cow::Owned(format!("{name}={PLACEHOLDER}"))
            }
            _ => Cow::Borrowed(piece),
        })
        .collect();
    redactor.redact(&pieces.join("&"))
}

fn decode_name(name: &str) -> Cow<'_, str> {
    url::form_urlencoded::parse(name.as_bytes())
        .next()
        .map_or(Cow::Borrowed(""), |(decoded, _)| decoded)
}

fn redact_headers(headers: &HeaderMap, redactor: &Redactor) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let value = if CREDENTIAL_HEADERS.contains(&name.as_str()) {
                PLACEHOLDER.to_string()
            } else {
                redactor.redact(&String::from_utf8_lossy(value.as_bytes()))
            };
            (name.as_str().to_string(), value)
        })
        .collect()
}

/// One line of the record file, fields in reading order.
#[derive(serde::Serialize)]
struct RecordLine<'a> {
    /// RFC 3339 UTC with microseconds.
    received_at: String,
    method: &'a str,
    path: &'a str,
    query: &'a str,
    status: u16,
    error: Option<&'a str>,
    kind: Option<crate::payload::WebhookKind>,
    event_count: usize,
    elapsed_ms: f64,
    headers: serde_json::Map<String, Value>,
    /// The body as JSON when it parses, else as a string; null when empty.
    body: Value,
}

/// Builds one record-file line, ending in a newline.
fn record_line(request: &ReceivedRequest, redactor: &Redactor) -> String {
    let mut headers = serde_json::Map::new();
    for (name, value) in &request.headers {
        // Repeated headers are joined as HTTP allows for request headers.
        match headers.get_mut(name) {
            Some(Value::String(joined)) => {
                joined.push_str(", ");
                joined.push_str(value);
            }
            _ => {
                headers.insert(name.clone(), Value::String(value.clone()));
            }
        }
    }

    let line = RecordLine {
        received_at: request
            .received_at
            .to_rfc3339_opts(SecondsFormat::Micros, true),
        method: &request.method,
        path: &request.path,
        query: &request.query,
        status: request.status,
        error: request.error.as_deref(),
        kind: request.kind,
        event_count: request.event_count,
        // Whole microseconds, so the number prints without float noise.
        elapsed_ms: request.elapsed.as_micros() as f64 / 1000.0,
        headers,
        body: body_value(&request.body, redactor),
    };
    // serde_json fails only on maps with non-string keys and on failing
    // Serialize impls, and this struct has neither.
    let line = serde_json::to_string(&line).unwrap_or_default();
    // Fields are redacted one by one above so the JSON stays valid. This
    // pass over the whole line catches what field-wise redaction cannot
    // see, such as a token that equals a number in the body.
    let mut text = redactor.redact(&line);
    text.push('\n');
    text
}

/// Converts the body to JSON when it parses, else to a string, with the
/// token redacted from every string and key.
fn body_value(body: &Bytes, redactor: &Redactor) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(mut value) => {
            if !redactor.is_empty() {
                redact_value(&mut value, redactor);
            }
            value
        }
        Err(_) => Value::String(redactor.redact(&String::from_utf8_lossy(body))),
    }
}

fn redact_value(value: &mut Value, redactor: &Redactor) {
    match value {
        Value::String(text) => *text = redactor.redact(text),
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| redact_value(item, redactor)),
        Value::Object(object) => {
            let fields = std::mem::take(object);
            for (name, mut field) in fields {
                redact_value(&mut field, redactor);
                object.insert(redactor.redact(&name), field);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_check_decodes_query() {
        let token = "a+b/c=d&e%f g";
        let encoded = crate::secret::encode_query_value(token);
        assert_eq!(
            check_token(Some(&format!("Token={encoded}")), "Token", token),
            TokenCheck::Matched
        );
        assert_eq!(
            check_token(Some("x=1&Token=nope"), "Token", token),
            TokenCheck::Wrong
        );
        assert_eq!(
            check_token(Some("x=1"), "Token", token),
            TokenCheck::Missing
        );
        assert_eq!(check_token(None, "Token", token), TokenCheck::Missing);
        assert_eq!(
            check_token(Some("Token="), "Token", token),
            TokenCheck::Missing
        );
        assert_eq!(
            check_token(Some(&format!("token={encoded}")), "Token", token),
            TokenCheck::Missing
        );
        let twice = format!("Token={encoded}&Token=other");
        assert_eq!(check_token(Some(&twice), "Token", token), TokenCheck::Wrong);
    }

    #[test]
    fn query_redaction_hides_any_token_value() {
        let redactor = Redactor::new(["s3cret"]);
        assert_eq!(
            redact_query("a=1&Token=s3cret&b=2", "Token", &redactor),
            format!("a=1&Token={PLACEHOLDER}&b=2")
        );
        assert_eq!(
            redact_query("Token=guess", "Token", &redactor),
            format!("Token={PLACEHOLDER}")
        );
        assert_eq!(
            redact_query("other=s3cret", "Token", &redactor),
            format!("other={PLACEHOLDER}")
        );
        assert_eq!(redact_query("", "Token", &redactor), "");
    }

    #[test]
    fn constant_time_eq_compares_bytes() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn body_value_redacts_strings_and_keys() {
        let redactor = Redactor::new(["s3cret"]);
        let body = Bytes::from_static(br#"{"s3cret":["x s3cret y", 1]}"#);
        let value = body_value(&body, &redactor);
        assert_eq!(
            value,
            serde_json::json!({ PLACEHOLDER: [format!("x {PLACEHOLDER} y"), 1] })
        );
        assert_eq!(
            body_value(&Bytes::from_static(b"not json s3cret"), &redactor),
            Value::String(format!("not json {PLACEHOLDER}"))
        );
    }
}
