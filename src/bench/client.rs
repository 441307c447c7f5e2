//! The HTTP clients a benchmark drives, behind one small trait, and what
//! they share.
//!
//! Three clients implement [`Transport`]:
//!
//! - [`RawTransport`](super::raw::RawTransport), the default for `http://`
//!   targets: a minimal HTTP/1.1 client on a plain TCP socket.
//! - [`HyperTransport`](super::hyper_client::HyperTransport): one hyper 1
//!   HTTP/1.1 connection per worker, opened lazily and kept alive, with no
//!   pool between the worker and the socket.
//! - [`DeliveryTransport`]: the `send` path itself
//!   ([`crate::delivery::Client`], on reqwest), which follows 307/308 under
//!   one deadline and speaks TLS. `https://` targets use it.
//!
//! The first two send one exchange per request and do not follow
//! redirects, so a 307 or 308 is counted as that status. All three apply
//! the same deadline to the whole exchange (connecting, sending, and
//! reading the response body) and sort every failure into an
//! [`Exchange`], never a Rust error: a failing receiver is data.

use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio::time::Instant;
use url::Url;

use crate::delivery::{self, ConnectionErrorKind, DeliveryConfig, Outcome, TimeoutPhase};
use crate::secret::Redactor;

/// The outcome of one request, as the statistics count it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exchange {
    /// A response arrived in time, with any status.
    Responded {
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

    /// Whether the connections share state that belongs to one runtime,
    /// so that every worker must run on the calling runtime.
    fn shares_runtime(&self) -> bool {
        false
    }
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

/// The destination of requests: the resolved addresses and the request
/// target.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    /// The addresses the host resolved to, tried in order.
    pub addrs: Vec<SocketAddr>,
    /// The `Host` header value: the host, and the port when the URL names
    /// one.
    pub authority: String,
    /// The path and query, token included.
    pub path_and_query: String,
}

impl Endpoint {
    /// Resolves the host of `url` once, so that connecting later costs no
    /// DNS lookup.
    pub(super) async fn resolve(url: &Url, redactor: &Redactor) -> Result<Endpoint, TargetError> {
        let shown = redactor.redact_url(url.as_str());
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

        let mut path_and_query = url.path().to_string();
        if let Some(query) = url.query() {
            path_and_query.push('?');
            path_and_query.push_str(query);
        }
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        Ok(Endpoint {
            addrs,
            authority,
            path_and_query,
        })
    }

    /// Opens a TCP connection to the first address that accepts one, with
    /// Nagle's algorithm off so that small requests leave at once.
    pub(super) async fn connect(&self) -> std::io::Result<TcpStream> {
        let mut last_error = None;
        for addr in &self.addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| std::io::Error::other("the host resolved to no address")))
    }
}

/// A per-connection deadline timer that is registered once and moved
/// forward only when it fires.
///
/// Each request's deadline is its start plus the timeout, so deadlines
/// only grow. The timer keeps an older, earlier deadline. When it fires,
/// the request in flight is checked against its own deadline, and the
/// timer moves to that deadline. On a fast receiver that costs one timer update
/// per timeout period instead of a new timer per request, which
/// `tokio::time::timeout` would register and remove.
pub(super) struct Deadline {
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Deadline {
    /// Creates a timer that is armed by the first exchange.
    pub(super) fn new() -> Deadline {
        Deadline { timer: None }
    }

    /// Runs `future` until it ends or `deadline` passes; `None` means the
    /// deadline passed first.
    pub(super) async fn run<F: Future>(
        &mut self,
        deadline: Instant,
        future: F,
    ) -> Option<F::Output> {
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        let mut future = std::pin::pin!(future);
        std::future::poll_fn(|context| {
            if let Poll::Ready(output) = future.as_mut().poll(context) {
                return Poll::Ready(Some(output));
            }
            while timer.as_mut().poll(context).is_ready() {
                if Instant::now() >= deadline {
                    return Poll::Ready(None);
                }
                timer.as_mut().reset(deadline);
            }
            Poll::Pending
        })
        .await
    }
}

/// Turns a transport error into an [`Exchange::Failed`] with a redacted
/// detail.
pub(super) fn failure(error: &(dyn StdError + 'static), redactor: &Redactor) -> Exchange {
    Exchange::Failed {
        kind: classify(error),
        detail: redactor.redact(&error_chain(error)),
    }
}

/// Builds an [`Exchange::Failed`] for a failure that no Rust error
/// describes, such as a malformed response.
pub(super) fn protocol_failure(detail: impl Into<String>) -> Exchange {
    Exchange::Failed {
        kind: ConnectionErrorKind::Other,
        detail: detail.into(),
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
pub(super) fn error_chain(error: &(dyn StdError + 'static)) -> String {
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

    // The shared pool's connections are driven by tasks of the runtime
    // that opened them, so a worker on another runtime that outlives it
    // would find them gone.
    fn shares_runtime(&self) -> bool {
        true
    }

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
            | Outcome::RedirectNotFollowed { status, .. } => Exchange::Responded { status },
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
