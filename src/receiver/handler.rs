//! The request handler: the checks in order, the response, and the account of
//! each request in counters, printed lines, the record file and the log.

use std::borrow::Cow;
use std::fmt;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use http_body_util::BodyExt;
use serde_json::Value;

use super::REDIRECT_PATH;
use super::redact::RequestRedactor;
use super::state::{CLIENT_CLOSED_REQUEST, ReceivedRequest, ReceiverState, bump};
use super::validate::{
    BodyError, BodySummary, GeneralSummary, IntegrationSummary, MAX_SHOWN_CHARS, validate_body,
};

/// The maximum bytes past the size limit that are read and thrown away
/// before a 413 is sent. [`read_body`] explains why they are read at all.
const MAX_DISCARDED_BODY: u64 = 64 * 1024 * 1024;

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
    /// The client closed the connection or reset the stream before the
    /// response, so none is sent.
    ClientGone,
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
            Verdict::ClientGone => f.write_str("client gone before the response"),
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
    let (parts, body) = request.into_parts();
    let mut exchange = Exchange::begin(state, parts);
    let verdict = exchange.judge(body).await;
    exchange.respond(verdict)
}

/// One request from arrival to response.
///
/// Hyper drops the handler's future when the client closes the connection
/// or resets the stream, for example when it times out during the
/// configured delay. An exchange dropped before [`Exchange::respond`]
/// therefore accounts for its request as [`Verdict::ClientGone`], so that
/// every request that arrived is counted, printed and recorded.
struct Exchange {
    state: ReceiverState,
    parts: Parts,
    /// The body after it has been read in full, and empty before.
    body: Bytes,
    started: Instant,
    received_at: Option<DateTime<Utc>>,
    responded: bool,
}

impl Exchange {
    fn begin(state: ReceiverState, parts: Parts) -> Self {
        bump(&state.inner.counters.in_flight, 1);
        let received_at = state.inner.needs_details.then(Utc::now);
        Exchange {
            state,
            parts,
            body: Bytes::new(),
            started: Instant::now(),
            received_at,
            responded: false,
        }
    }

    /// Runs the checks in order: method, body size, redirect, token,
    /// `fail_first`, delay, body shape.
    async fn judge(&mut self, body: Body) -> Verdict {
        if self.parts.method != Method::POST {
            return Verdict::MethodNotAllowed(self.parts.method.clone());
        }
        // The body is read before any other check so that every request,
        // even one rejected for its token, is logged and recorded with its
        // body.
        let limit = self.state.inner.config.max_body;
        match read_body(body, &self.parts.headers, limit).await {
            Ok(bytes) => self.body = bytes,
            Err(verdict) => return verdict,
        }
        judge_message(&self.state, &self.parts, &self.body).await
    }

    /// Builds the response and accounts for the request.
    fn respond(mut self, verdict: Verdict) -> Response {
        let response = respond(&self.state, &verdict);
        self.responded = true;
        self.finish(&verdict, response.status());
        response
    }

    fn finish(&mut self, verdict: &Verdict, status: StatusCode) {
        let body = std::mem::take(&mut self.body);
        let started = self.started;
        let received_at = self.received_at;
        self.state
            .finish(&self.parts, body, verdict, status, started, received_at);
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        // A panic in the handler also drops the exchange, and is not a
        // client going away.
        if !self.responded && !std::thread::panicking() {
            let status = StatusCode::from_u16(CLIENT_CLOSED_REQUEST)
                .expect("499 is within the valid range 100..=999");
            self.finish(&Verdict::ClientGone, status);
        }
        let in_flight = &self.state.inner.counters.in_flight;
        in_flight.fetch_sub(1, Ordering::Relaxed);
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
///
/// The rest of an oversized body is read and thrown away before the 413 is
/// sent. Hyper 1.x drains only what it has already buffered of a body the
/// handler dropped, then closes the connection (`poll_drain_or_close_read`
/// in hyper's HTTP/1 code). Closing a socket with unread data makes the
/// kernel send a reset, so a client still writing the body fails with
/// "broken pipe" or "connection reset" instead of returning the 413. Discarding costs
/// time but no memory, and is bounded by [`MAX_DISCARDED_BODY`]. A declared
/// length beyond that bound gets the 413 at once, and so does a client
/// waiting for `100 Continue`, which then never sends the body.
async fn read_body(mut body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, Verdict> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    if let Some(length) = declared
        && length > limit as u64
    {
        // Hyper sends `100 Continue` when the body is first read, so a
        // client that asked for it sends nothing until then.
        if !expects_continue(headers) && length <= limit as u64 + MAX_DISCARDED_BODY {
            discard(body).await;
        }
        return Err(Verdict::TooLarge(limit));
    }

    let mut chunks: Vec<Bytes> = Vec::new();
    let mut length = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| Verdict::Unreadable(error.to_string()))?;
        // Trailers carry nothing the receiver checks.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        length += data.len();
        if length > limit {
            discard(body).await;
            return Err(Verdict::TooLarge(limit));
        }
        chunks.push(data);
    }
    // A body that arrived in one frame is kept without copying.
    if chunks.len() == 1 {
        return Ok(chunks.swap_remove(0));
    }
    Ok(Bytes::from(chunks.concat()))
}

fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(header::EXPECT)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Reads and throws away the rest of `body`, up to [`MAX_DISCARDED_BODY`]
/// bytes. When more remains, hyper closes the connection after the
/// response.
async fn discard(mut body: Body) {
    let mut discarded: u64 = 0;
    while discarded <= MAX_DISCARDED_BODY {
        match body.frame().await {
            Some(Ok(frame)) => {
                discarded += frame.data_ref().map_or(0, |data| data.len() as u64);
            }
            Some(Err(error)) => {
                tracing::debug!(
                    %error,
                    discarded,
                    "failed to read the rest of an oversized body"
                );
                return;
            }
            None => return,
        }
    }
    tracing::debug!(
        discarded,
        "oversized body still arriving; closing the connection after the 413"
    );
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
        // Only a dropped exchange builds this verdict, and it sends nothing,
        // so this arm only completes the match.
        Verdict::ClientGone => (StatusCode::BAD_REQUEST, verdict.to_string()),
    };
    (status, format!("{reason}\n")).into_response()
}

impl ReceiverState {
    /// Accounts for one request after its response is built, or once its
    /// client has gone: counters and the debug log always, then the printed
    /// line, the record file and the request log when configured.
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
        log_outcome(parts, verdict, status, redactor);

        let Some(received_at) = received_at else {
            return;
        };
        let elapsed = started.elapsed();
        let config = &self.inner.config;
        let path = redactor.path(parts.uri.path());

        if config.print {
            let millis = elapsed.as_secs_f64() * 1000.0;
            let outcome = redactor.text(&verdict.to_string());
            let line = format!("{} {outcome}  {millis:.1} ms  {path}", status.as_u16());
            // Ignore write errors: a closed stdout must not stop the receiver.
            let _ = writeln!(std::io::stdout().lock(), "{}", redactor.text(&line));
        }
        if !config.keep_requests && config.record.is_none() {
            return;
        }

        let request = ReceivedRequest {
            method: parts.method.to_string(),
            path,
            query: redactor.query(parts.uri.query().unwrap_or("")),
            headers: redactor.headers(&parts.headers),
            body,
            kind: None,
            event_count: 0,
            enterprise_id: None,
            integration_id: None,
            action: None,
            status: status.as_u16(),
            error: verdict.error().map(|error| redactor.text(&error)),
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
            Verdict::ClientGone => &counters.client_gone,
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

/// Logs the outcome at debug level, with the token hidden.
fn log_outcome(parts: &Parts, verdict: &Verdict, status: StatusCode, redactor: &RequestRedactor) {
    let path = || redactor.path(parts.uri.path());
    if let Verdict::ClientGone = verdict {
        tracing::debug!(
            method = %parts.method,
            path = %path(),
            "client went away before the response"
        );
        return;
    }
    tracing::debug!(
        status = status.as_u16(),
        method = %parts.method,
        path = %path(),
        outcome = %redactor.text(&verdict.to_string()),
        "responded to request"
    );
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

/// Returns whether the token matched: `None` when no token is configured, or
/// when the request got its response, or its client went away, before the
/// token check.
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
        | Verdict::Redirected { .. }
        | Verdict::ClientGone => None,
    }
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
fn record_line(request: &ReceivedRequest, redactor: &RequestRedactor) -> String {
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
        body: redactor.body_value(&request.body),
    };
    // serde_json fails only on maps with non-string keys and on failing
    // Serialize impls, and this struct has neither.
    let line = serde_json::to_string(&line).unwrap_or_default();
    // Fields are redacted one by one above so the JSON stays valid. This
    // pass over the whole line catches what field-wise redaction cannot
    // see, such as a token that equals a number in the body.
    let mut text = redactor.redact_listed_spellings(&line);
    text.push('\n');
    text
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
    fn constant_time_eq_compares_bytes() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
