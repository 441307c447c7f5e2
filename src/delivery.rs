//! One delivery attempt under the Mews transport rules.
//!
//! An attempt is a JSON `POST` of buffered bytes with `Content-Length`,
//! bounded by one deadline that covers connecting, every redirect hop and
//! reading the response. Only 307 and 308 are followed, because they keep
//! the method and body; any 2xx is success. Each attempt ends in a typed
//! [`Outcome`] with its timings and redirect chain, and never in a Rust
//! error: a failing receiver is data, not a fault of the sender.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tokio::time::Instant;
use url::Url;

use crate::secret::{Redactor, encode_query_value};

/// Settings shared by every attempt a [`Client`] makes.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// The deadline of one attempt. Mews requires a response within 5 s.
    pub timeout: Duration,
    /// How many 307/308 hops one attempt follows before giving up.
    pub max_redirects: usize,
    /// How much of a response body is read. The body only matters for
    /// diagnostics, and a hostile receiver must not make the sender buffer
    /// without bound.
    pub max_response_body: usize,
    /// How long an idle pooled connection is kept. Node.js and Apache httpd
    /// close idle keep-alive connections after 5 s by default. A request
    /// sent on a connection the server has just closed fails where a fresh
    /// connection would deliver it, so the pool lets go well before 5 s.
    pub pool_idle_timeout: Duration,
    /// The `Content-Type` header sent with every body.
    pub content_type: String,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            timeout: Duration::from_secs(5),
            max_redirects: 10,
            max_response_body: 64 * 1024,
            pool_idle_timeout: Duration::from_secs(2),
            content_type: "application/json".to_string(),
        }
    }
}

/// The class of a connection failure before any HTTP response arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionErrorKind {
    /// Nothing listens on the port.
    Refused,
    /// The peer reset or closed the connection mid-exchange.
    Reset,
    /// The host name could not be resolved.
    Dns,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// Any other transport failure.
    Other,
}

impl ConnectionErrorKind {
    /// Returns a short label for summaries.
    pub fn label(self) -> &'static str {
        match self {
            ConnectionErrorKind::Refused => "connection refused",
            ConnectionErrorKind::Reset => "connection reset",
            ConnectionErrorKind::Dns => "DNS lookup failed",
            ConnectionErrorKind::Tls => "TLS handshake failed",
            ConnectionErrorKind::Other => "connection failed",
        }
    }
}

/// The phase an attempt was in when its deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeoutPhase {
    /// Connecting, sending, or waiting for response headers.
    Headers,
    /// The headers arrived in time but the body did not finish.
    Body,
}

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The receiver responded with 2xx in time.
    Delivered {
        /// The status code.
        status: u16,
    },
    /// The receiver responded with a status that is neither 2xx nor a
    /// followed redirect (1xx, 4xx, 5xx).
    Rejected {
        /// The status code.
        status: u16,
    },
    /// The deadline passed before the response was complete.
    TimedOut {
        /// How far the attempt got.
        phase: TimeoutPhase,
    },
    /// No HTTP response: the connection could not be made or broke.
    ConnectionFailed {
        /// The failure class.
        kind: ConnectionErrorKind,
        /// The underlying error, with secrets redacted.
        detail: String,
    },
    /// A redirect that Mews does not follow, or one that went wrong.
    RedirectNotFollowed {
        /// The status of the redirect response.
        status: u16,
        /// The reason it was not followed.
        reason: String,
    },
}

impl Outcome {
    /// Returns whether the message counts as delivered.
    pub fn is_delivered(&self) -> bool {
        matches!(self, Outcome::Delivered { .. })
    }

    /// Returns the final HTTP status, when a response arrived.
    pub fn status(&self) -> Option<u16> {
        match self {
            Outcome::Delivered { status }
            | Outcome::Rejected { status }
            | Outcome::RedirectNotFollowed { status, .. } => Some(*status),
            Outcome::TimedOut { .. } | Outcome::ConnectionFailed { .. } => None,
        }
    }

    /// Returns a one-line description for terminal output.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Delivered { status } => format!("delivered ({status})"),
            Outcome::Rejected { status } => format!("rejected with {status}"),
            Outcome::TimedOut {
                phase: TimeoutPhase::Headers,
            } => "timed out waiting for the response headers".to_string(),
            Outcome::TimedOut {
                phase: TimeoutPhase::Body,
            } => "timed out reading the response body".to_string(),
            Outcome::ConnectionFailed { kind, detail } => format!("{}: {detail}", kind.label()),
            Outcome::RedirectNotFollowed { status, reason } => {
                format!("redirect {status} not followed: {reason}")
            }
        }
    }
}

/// One redirect hop that was followed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedirectHop {
    /// The redirect status, 307 or 308.
    pub status: u16,
    /// The absolute URL followed, with secrets redacted.
    pub location: String,
}

/// Everything known about one attempt.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Time from the start of the attempt to the final response headers.
    #[serde(rename = "headers_after_ms", with = "duration_ms_option")]
    pub headers_after: Option<Duration>,
    /// Time from the start of the attempt to its end.
    #[serde(rename = "total_ms", with = "duration_ms")]
    pub total: Duration,
    /// The 307/308 hops followed, in order.
    pub redirects: Vec<RedirectHop>,
    /// The first 512 characters of the final response body, lossily
    /// decoded and redacted, for diagnostics.
    pub response_excerpt: String,
}

/// A prepared request: where to send which bytes.
#[derive(Debug, Clone)]
pub struct Request {
    /// The full URL, token included.
    pub url: Url,
    /// The exact bytes of the body; every attempt of one message sends
    /// these.
    pub body: Bytes,
    /// A `Content-Type` that replaces the client's default, if any.
    pub content_type: Option<String>,
}

/// Appends `param=token` to `url`, percent-encoded, after any query the URL
/// already has.
pub fn url_with_token(url: &Url, param: &str, token: &str) -> Url {
    let pair = format!(
        "{}={}",
        encode_query_value(param),
        encode_query_value(token)
    );
    let mut url = url.clone();
    let query = match url.query() {
        Some(existing) if !existing.is_empty() => format!("{existing}&{pair}"),
        _ => pair,
    };
    url.set_query(Some(&query));
    url
}

/// The HTTP client that makes attempts. Cheap to clone; clones share the
/// connection pool.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    config: DeliveryConfig,
    redactor: Redactor,
}

/// Characters of the response body kept for diagnostics.
const EXCERPT_CHARS: usize = 512;

/// Bytes of the response body redacted before the excerpt is cut. The
/// margin beyond the excerpt lets a token that straddles the cut be
/// recognised whole.
// NOTE: a token whose encoded spelling is longer than this margin (over
// about a thousand characters) could still be cut before redaction.
const EXCERPT_SOURCE_BYTES: usize = 16 * 1024;

impl Client {
    /// Builds a client. `redactor` hides the token in everything the client
    /// records.
    pub fn new(config: DeliveryConfig, redactor: Redactor) -> Result<Client, reqwest::Error> {
        let http = reqwest::Client::builder()
            // Redirects are followed by hand: Mews follows only 307 and
            // 308, and every hop must count against one deadline.
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(config.pool_idle_timeout)
            .user_agent(concat!("mewshook/", env!("CARGO_PKG_VERSION")))
            // An HTTP proxy from the environment would change what the
            // receiver sees; Mews connects directly.
            .no_proxy()
            .build()?;
        Ok(Client {
            http,
            config,
            redactor,
        })
    }

    /// The settings the client was built with.
    pub fn config(&self) -> &DeliveryConfig {
        &self.config
    }

    /// The redactor that hides secrets in what this client records.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Makes one attempt: sends `request`, follows 307/308, and classifies
    /// the result. The deadline covers the whole attempt.
    pub async fn attempt(&self, request: &Request) -> Attempt {
        let started = Instant::now();
        let phase = AtomicU8::new(PHASE_HEADERS);
        let mut record = Progress::default();

        let result = tokio::time::timeout(
            self.config.timeout,
            self.exchange(request, started, &phase, &mut record),
        )
        .await;
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(_elapsed) => Outcome::TimedOut {
                phase: if phase.load(Ordering::Relaxed) == PHASE_BODY {
                    TimeoutPhase::Body
                } else {
                    TimeoutPhase::Headers
                },
            },
        };
        Attempt {
            outcome,
            headers_after: record.headers_after,
            total: started.elapsed(),
            redirects: record.redirects,
            response_excerpt: record.excerpt,
        }
    }

    /// The part of an attempt that the deadline bounds.
    async fn exchange(
        &self,
        request: &Request,
        started: Instant,
        phase: &AtomicU8,
        record: &mut Progress,
    ) -> Outcome {
        let content_type = request
            .content_type
            .as_deref()
            .unwrap_or(&self.config.content_type);
        let mut url = request.url.clone();
        let mut visited = HashSet::from([url.clone()]);

        loop {
            phase.store(PHASE_HEADERS, Ordering::Relaxed);
            let sent = self
                .http
                .post(url.clone())
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(request.body.clone())
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(error) => return self.connection_failed(&error),
            };
            record.headers_after = Some(started.elapsed());
            let status = response.status().as_u16();

            if !response.status().is_redirection() {
                phase.store(PHASE_BODY, Ordering::Relaxed);
                if let Err(error) = self.read_body(response, record).await {
                    return self.connection_failed(&error);
                }
                return if response_is_success(status) {
                    Outcome::Delivered { status }
                } else {
                    Outcome::Rejected { status }
                };
            }

            let next = match self.redirect_target(&url, status, &response) {
                Ok(next) => next,
                Err(reason) => return Outcome::RedirectNotFollowed { status, reason },
            };
            if record.redirects.len() >= self.config.max_redirects {
                return Outcome::RedirectNotFollowed {
                    status,
                    reason: format!(
                        "more than {} redirects; raise --max-redirects or remove the redirect chain",
                        self.config.max_redirects
                    ),
                };
            }
            if !visited.insert(next.clone()) {
                return Outcome::RedirectNotFollowed {
                    status,
                    reason: format!(
                        "redirect loop: {} was already visited",
                        self.redactor.redact_url(next.as_str())
                    ),
                };
            }
            record.redirects.push(RedirectHop {
                status,
                location: self.redactor.redact_url(next.as_str()),
            });
            tracing::debug!(status, location = %self.redactor.redact_url(next.as_str()), "following redirect");
            url = next;
        }
    }

    /// Decides whether a 3xx response is followed and where to.
    fn redirect_target(
        &self,
        current: &Url,
        status: u16,
        response: &reqwest::Response,
    ) -> Result<Url, String> {
        match status {
            307 | 308 => {}
            301..=303 => {
                return Err(format!(
                    "{status} would turn the POST into a GET and drop the body, \
                     and Mews follows only 307 and 308; redirect with 307 or 308, \
                     or register the final URL"
                ));
            }
            _ => {
                return Err(
                    "Mews follows only 307 and 308; answer 2xx or redirect with 307 or 308"
                        .to_string(),
                );
            }
        }
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .ok_or_else(|| "the response has no Location header".to_string())?;
        let location = location
            .to_str()
            .map_err(|_| "the Location header is not valid ASCII".to_string())?;
        let next = current.join(location).map_err(|error| {
            format!(
                "invalid Location \"{}\": {error}",
                self.redactor.redact_url(location)
            )
        })?;
        if !matches!(next.scheme(), "http" | "https") {
            return Err(format!(
                "the Location {} is not an http or https URL",
                self.redactor.redact_url(next.as_str())
            ));
        }
        Ok(next)
    }

    /// Reads up to the configured cap of the body, keeping an excerpt.
    async fn read_body(
        &self,
        mut response: reqwest::Response,
        record: &mut Progress,
    ) -> Result<(), reqwest::Error> {
        let mut seen = 0usize;
        let mut head = Vec::new();
        while seen < self.config.max_response_body {
            let Some(chunk) = response.chunk().await? else {
                break;
            };
            seen += chunk.len();
            let room = EXCERPT_SOURCE_BYTES.saturating_sub(head.len());
            head.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }

        // Redact before cutting, so that the cut cannot leave part of a
        // token that the redactor would no longer recognise.
        let redacted = self.redactor.redact(&String::from_utf8_lossy(&head));
        record.excerpt = redacted.chars().take(EXCERPT_CHARS).collect();
        Ok(())
    }

    fn connection_failed(&self, error: &reqwest::Error) -> Outcome {
        let (kind, detail) = classify(error);
        Outcome::ConnectionFailed {
            kind,
            detail: self.redactor.redact(&detail),
        }
    }
}

/// Whether a final status counts as success: Mews treats any 2xx so.
pub fn response_is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

const PHASE_HEADERS: u8 = 0;
const PHASE_BODY: u8 = 1;

/// What an attempt has learned so far; kept outside the deadline so that a
/// timed-out attempt still reports its redirects.
#[derive(Default)]
struct Progress {
    headers_after: Option<Duration>,
    redirects: Vec<RedirectHop>,
    excerpt: String,
}

/// Sorts a transport error into a [`ConnectionErrorKind`] and a message
/// without the URL, which would carry the token.
fn classify(error: &reqwest::Error) -> (ConnectionErrorKind, String) {
    let mut chain = Vec::new();
    let mut kind = None;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            kind = kind.or(match io.kind() {
                std::io::ErrorKind::ConnectionRefused => Some(ConnectionErrorKind::Refused),
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof => Some(ConnectionErrorKind::Reset),
                _ => None,
            });
        }
        if let Some(hyper_error) = current.downcast_ref::<hyper::Error>()
            && (hyper_error.is_incomplete_message() || hyper_error.is_closed())
        {
            kind = kind.or(Some(ConnectionErrorKind::Reset));
        }
        let text = current.to_string();
        let lower = text.to_ascii_lowercase();
        if lower.contains("dns error") || lower.contains("failed to lookup") {
            kind = kind.or(Some(ConnectionErrorKind::Dns));
        }
        if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
            kind = kind.or(Some(ConnectionErrorKind::Tls));
        }
        chain.push(text);
        source = current.source();
    }

    // reqwest's own message names the URL; the causes below it do not.
    let detail = match std::error::Error::source(error) {
        Some(_) => chain[1..].join(": "),
        None => error.to_string(),
    };
    (kind.unwrap_or(ConnectionErrorKind::Other), detail)
}

/// Serializes a duration as fractional milliseconds.
pub mod duration_ms {
    use serde::Serializer;
    use std::time::Duration;

    /// Writes `duration` as a number of milliseconds, to the microsecond.
    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(as_ms(*duration))
    }

    /// Converts to milliseconds with three decimals, so that JSON shows
    /// 5001.759 rather than 5001.759008999999.
    pub fn as_ms(duration: Duration) -> f64 {
        duration.as_micros() as f64 / 1000.0
    }
}

/// Serializes an optional duration as fractional milliseconds or null.
pub mod duration_ms_option {
    use serde::Serializer;
    use std::time::Duration;

    /// Writes `duration` as a number of milliseconds, or null.
    pub fn serialize<S: Serializer>(
        duration: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => serializer.serialize_f64(super::duration_ms::as_ms(*duration)),
            None => serializer.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_joins_existing_query() {
        let url = Url::parse("http://h/hook?a=1").unwrap();
        let with = url_with_token(&url, "Token", "x+y");
        assert_eq!(with.as_str(), "http://h/hook?a=1&Token=x%2By");
    }

    #[test]
    fn token_starts_query_when_none() {
        let url = Url::parse("http://h/hook").unwrap();
        assert_eq!(
            url_with_token(&url, "Token", "a b").as_str(),
            "http://h/hook?Token=a%20b"
        );
    }

    #[test]
    fn only_2xx_is_success() {
        assert!(response_is_success(200));
        assert!(response_is_success(299));
        assert!(!response_is_success(199));
        assert!(!response_is_success(300));
    }
}
