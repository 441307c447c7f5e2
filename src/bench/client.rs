//! The HTTP clients a benchmark drives, behind one small trait.
//!
//! Two clients implement [`Transport`]:
//!
//! - [`HyperTransport`], the default for `http://` targets: one hyper 1
//!   HTTP/1.1 connection per worker, opened lazily and kept alive, with no
//!   pool between the worker and the socket. It sends one exchange per
//!   request and does not follow redirects, so a 307 or 308 is counted as
//!   that status.
//! - [`DeliveryTransport`]: the `send` path itself ([`crate::delivery::Client`],
//!   on reqwest), which follows 307/308 under one deadline and speaks TLS.
//!   `https://` targets use it.
//!
//! Both apply the same deadline to the whole exchange (connecting, sending,
//! and reading the response body) and sort every failure into an
//! [`Exchange`], never a Rust error: a failing receiver is data.

use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use url::Url;

use crate::delivery::{self, ConnectionErrorKind, DeliveryConfig, Outcome, TimeoutPhase};
use crate::secret::Redactor;

/// How one request ended, as the statistics count it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exchange {
    /// A response arrived in time, with any status.
    Answered {
        /// The final status code.
        status: u16,
    },
    /// The deadline passed before the response was complete.
    TimedOut {
        /// How far the exchange got.
        phase: TimeoutPhase,
    },
    /// No response: the connection could not be made or broke.
    Failed {
        /// The failure class.
        kind: ConnectionErrorKind,
        /// The underlying error, with secrets redacted.
        detail: String,
    },
}

/// A way to open connections to the target. Implemented by the two HTTP
/// clients; tests implement it to simulate a receiver on tokio's paused
/// clock.
pub trait Transport: Send + Sync + 'static {
    /// One worker's connection.
    type Connection: Connection;

    /// Returns a connection for one worker. It may connect lazily, on its
    /// first exchange, so that connecting counts against that exchange's
    /// deadline as it does for the sender.
    fn open(&self) -> Self::Connection;
}

/// One worker's connection to the target, used for one request at a time.
pub trait Connection: Send + 'static {
    /// Sends body number `body` of the pool and waits for the outcome,
    /// within the deadline.
    fn exchange(&mut self, body: usize) -> impl Future<Output = Exchange> + Send;
}

/// The target could not be prepared.
#[derive(Debug, Error)]
pub enum TargetError {
    /// The URL has no host.
    #[error(
        "the URL {url} has no host; give an absolute URL such as http://127.0.0.1:8080/webhooks"
    )]
    NoHost {
        /// The URL, redacted.
        url: String,
    },
    /// The host name did not resolve.
    #[error("failed to resolve {host}: {cause}; check the host name in --url")]
    Resolve {
        /// The host name.
        host: String,
        /// Why.
        cause: String,
    },
    /// The URL cannot be written as an HTTP request target.
    #[error("the URL {url} cannot be sent as an HTTP request: {cause}")]
    InvalidRequest {
        /// The URL, redacted.
        url: String,
        /// Why.
        cause: String,
    },
    /// The client could not be built.
    #[error("failed to build the HTTP client: {0}")]
    Client(String),
}

/// The part of the target every hyper connection shares.
#[derive(Debug)]
struct HyperTarget {
    addrs: Vec<SocketAddr>,
    path_and_query: Uri,
    host: HeaderValue,
    content_type: HeaderValue,
    user_agent: HeaderValue,
    bodies: Vec<Bytes>,
    timeout: Duration,
    idle_timeout: Duration,
    max_response_body: usize,
    redactor: Redactor,
}

/// The default client for `http://` targets: hyper 1, one HTTP/1.1
/// connection per worker.
#[derive(Debug, Clone)]
pub struct HyperTransport {
    target: Arc<HyperTarget>,
}

impl HyperTransport {
    /// Prepares requests to `url` (token already in its query) carrying
    /// `bodies`, under the deadline, idle timeout and response cap of
    /// `config`. The host is resolved once, here, so that connecting later
    /// costs no DNS lookup.
    pub async fn new(
        url: &Url,
        bodies: Vec<Bytes>,
        config: &DeliveryConfig,
        redactor: Redactor,
    ) -> Result<HyperTransport, TargetError> {
        let shown = redactor.redact(url.as_str());
        let host = url
            .host_str()
            .ok_or_else(|| TargetError::NoHost { url: shown.clone() })?;
        let port = url.port_or_known_default().unwrap_or(80);
        // A bracketed IPv6 literal must lose its brackets for lookup.
        let lookup_host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((lookup_host, port))
            .await
            .map_err(|error| TargetError::Resolve {
                host: host.to_string(),
                cause: error.to_string(),
            })?
            .collect();
        if addrs.is_empty() {
            return Err(TargetError::Resolve {
                host: host.to_string(),
                cause: "no addresses".to_string(),
            });
        }

        let invalid = |cause: String| TargetError::InvalidRequest {
            url: shown.clone(),
            cause: redactor.redact(&cause),
        };
        let mut target = url.path().to_string();
        if let Some(query) = url.query() {
            target.push('?');
            target.push_str(query);
        }
        let path_and_query: Uri = target
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| invalid(e.to_string()))?;
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let host_header =
            HeaderValue::from_str(&authority).map_err(|error| invalid(error.to_string()))?;
        let content_type = HeaderValue::from_str(&config.content_type)
            .map_err(|error| invalid(format!("Content-Type: {error}")))?;

        Ok(HyperTransport {
            target: Arc::new(HyperTarget {
                addrs,
                path_and_query,
                host: host_header,
                content_type,
                user_agent: HeaderValue::from_static(concat!(
                    "mewshook/",
                    env!("CARGO_PKG_VERSION")
                )),
                bodies,
                timeout: config.timeout,
                idle_timeout: config.pool_idle_timeout,
                max_response_body: config.max_response_body,
                redactor,
            }),
        })
    }

    /// The addresses the host resolved to, tried in order.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.target.addrs
    }
}

impl Transport for HyperTransport {
    type Connection = HyperConnection;

    fn open(&self) -> HyperConnection {
        HyperConnection {
            target: self.target.clone(),
            open: None,
        }
    }
}

/// An open HTTP/1.1 connection and the task that drives it.
struct OpenConnection {
    sender: SendRequest<Full<Bytes>>,
    driver: AbortHandle,
    idle_since: Instant,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        // Closing the socket here means a timed-out or broken exchange
        // never leaves a half-read response behind for the next request.
        self.driver.abort();
    }
}

/// One worker's hyper connection; reconnects whenever the last one broke,
/// timed out, was closed by the receiver or sat idle too long.
pub struct HyperConnection {
    target: Arc<HyperTarget>,
    open: Option<OpenConnection>,
}

impl Connection for HyperConnection {
    async fn exchange(&mut self, body: usize) -> Exchange {
        let timeout = self.target.timeout;
        let mut phase = TimeoutPhase::Headers;
        let result = tokio::time::timeout(timeout, self.exchange_within(body, &mut phase)).await;
        match result {
            Ok(exchange) => exchange,
            Err(_elapsed) => {
                self.open = None;
                Exchange::TimedOut { phase }
            }
        }
    }
}

impl HyperConnection {
    /// The part of an exchange that the deadline bounds.
    async fn exchange_within(&mut self, body: usize, phase: &mut TimeoutPhase) -> Exchange {
        let target = self.target.clone();
        let mut request = Some(self.build_request(body));

        // A connection the receiver closed while it sat idle hands the
        // request back unsent; such a request goes out once more on a new
        // connection instead of counting as a failure, as a pool would.
        let mut fresh_tries = 0;
        let response = loop {
            if let Err(failed) = self.ensure_open().await {
                return failed;
            }
            let Some(outgoing) = request.take() else {
                return self.failed_other("the request was lost before it was sent");
            };
            let Some(open) = self.open.as_mut() else {
                return self.failed_other("the connection closed before the request was sent");
            };
            match open.sender.try_send_request(outgoing).await {
                Ok(response) => break response,
                Err(mut error) => {
                    self.open = None;
                    match error.take_message() {
                        Some(unsent) if fresh_tries == 0 => {
                            fresh_tries += 1;
                            request = Some(unsent);
                        }
                        _ => return self.failed(error.error()),
                    }
                }
            }
        };

        let status = response.status().as_u16();
        *phase = TimeoutPhase::Body;
        let mut body = response.into_body();
        let mut seen = 0usize;
        while seen <= target.max_response_body {
            match body.frame().await {
                None => break,
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        seen += data.len();
                    }
                }
                Some(Err(error)) => {
                    self.open = None;
                    return self.failed(&error);
                }
            }
        }
        if seen > target.max_response_body {
            // The rest of an oversized body is never read, so the
            // connection cannot carry another request.
            self.open = None;
        } else if let Some(open) = self.open.as_mut() {
            open.idle_since = Instant::now();
        }
        Exchange::Answered { status }
    }

    fn build_request(&self, body: usize) -> Request<Full<Bytes>> {
        let target = &self.target;
        let bytes = target.bodies[body % target.bodies.len()].clone();
        let mut request = Request::new(Full::new(bytes));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = target.path_and_query.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, target.host.clone());
        headers.insert(CONTENT_TYPE, target.content_type.clone());
        headers.insert(USER_AGENT, target.user_agent.clone());
        request
    }

    /// Makes sure a ready connection is open, connecting if needed.
    async fn ensure_open(&mut self) -> Result<(), Exchange> {
        if let Some(open) = self.open.as_mut() {
            let stale = open.idle_since.elapsed() >= self.target.idle_timeout;
            if stale || open.sender.is_closed() || open.sender.ready().await.is_err() {
                self.open = None;
            }
        }
        if self.open.is_none() {
            self.open = Some(self.connect().await?);
        }
        Ok(())
    }

    async fn connect(&self) -> Result<OpenConnection, Exchange> {
        let mut last_error: Option<std::io::Error> = None;
        let mut stream = None;
        for addr in &self.target.addrs {
            match TcpStream::connect(addr).await {
                Ok(connected) => {
                    stream = Some(connected);
                    break;
                }
                Err(error) => last_error = Some(error),
            }
        }
        let Some(stream) = stream else {
            let error = last_error
                .unwrap_or_else(|| std::io::Error::other("the host resolved to no address"));
            return Err(self.failed(&error));
        };
        // Small requests must not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);

        let (sender, connection) =
            match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
                Ok(parts) => parts,
                Err(error) => return Err(self.failed(&error)),
            };
        let driver = tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::trace!(%error, "bench connection closed");
            }
        })
        .abort_handle();
        Ok(OpenConnection {
            sender,
            driver,
            idle_since: Instant::now(),
        })
    }

    fn failed(&self, error: &(dyn StdError + 'static)) -> Exchange {
        Exchange::Failed {
            kind: classify(error),
            detail: self.target.redactor.redact(&error_chain(error)),
        }
    }

    fn failed_other(&self, detail: &str) -> Exchange {
        Exchange::Failed {
            kind: ConnectionErrorKind::Other,
            detail: detail.to_string(),
        }
    }
}

/// Sorts a transport error into a [`ConnectionErrorKind`] by walking its
/// chain of causes.
pub fn classify(error: &(dyn StdError + 'static)) -> ConnectionErrorKind {
    let mut source = Some(error);
    while let Some(current) = source {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return ConnectionErrorKind::Refused,
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof => return ConnectionErrorKind::Reset,
                _ => {}
            }
        }
        if let Some(hyper_error) = current.downcast_ref::<hyper::Error>()
            && (hyper_error.is_incomplete_message()
                || hyper_error.is_closed()
                || hyper_error.is_canceled())
        {
            return ConnectionErrorKind::Reset;
        }
        source = current.source();
    }
    ConnectionErrorKind::Other
}

/// Joins an error and its causes with ": ".
fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(current) = source {
        let text = current.to_string();
        if !parts.last().is_some_and(|last| last.contains(&text)) {
            parts.push(text);
        }
        source = current.source();
    }
    parts.join(": ")
}

/// The `send` path as a benchmark client: every request is one
/// [`delivery::Client::attempt`], with 307/308 followed and TLS available.
#[derive(Debug, Clone)]
pub struct DeliveryTransport {
    client: delivery::Client,
    requests: Arc<Vec<delivery::Request>>,
}

impl DeliveryTransport {
    /// Prepares requests to `url` (token already in its query) carrying
    /// `bodies`. All workers share the client's connection pool.
    pub fn new(
        url: &Url,
        bodies: Vec<Bytes>,
        config: &DeliveryConfig,
        redactor: Redactor,
    ) -> Result<DeliveryTransport, TargetError> {
        let client = delivery::Client::new(config.clone(), redactor.clone())
            .map_err(|error| TargetError::Client(redactor.redact(&error.to_string())))?;
        let requests = bodies
            .into_iter()
            .map(|body| delivery::Request {
                url: url.clone(),
                body,
                content_type: None,
            })
            .collect();
        Ok(DeliveryTransport {
            client,
            requests: Arc::new(requests),
        })
    }
}

impl Transport for DeliveryTransport {
    type Connection = DeliveryConnection;

    fn open(&self) -> DeliveryConnection {
        DeliveryConnection {
            transport: self.clone(),
        }
    }
}

/// A worker's handle on the shared delivery client.
pub struct DeliveryConnection {
    transport: DeliveryTransport,
}

impl Connection for DeliveryConnection {
    async fn exchange(&mut self, body: usize) -> Exchange {
        let requests = &self.transport.requests;
        let request = &requests[body % requests.len()];
        let attempt = self.transport.client.attempt(request).await;
        match attempt.outcome {
            Outcome::Delivered { status }
            | Outcome::Rejected { status }
            | Outcome::RedirectNotFollowed { status, .. } => Exchange::Answered { status },
            Outcome::TimedOut { phase } => Exchange::TimedOut { phase },
            Outcome::ConnectionFailed { kind, detail } => Exchange::Failed { kind, detail },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_io_error_is_classified() {
        let error = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(classify(&error), ConnectionErrorKind::Refused);
        let error = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert_eq!(classify(&error), ConnectionErrorKind::Reset);
        let error = std::io::Error::other("odd");
        assert_eq!(classify(&error), ConnectionErrorKind::Other);
    }
}
