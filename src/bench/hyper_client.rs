//! The hyper 1 client of a benchmark: one HTTP/1.1 connection per worker,
//! opened lazily and kept alive, with no pool between the worker and the
//! socket. It is the `--client hyper` choice, kept beside the raw client
//! to cross-check its figures.

use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;
use url::Url;

use super::client::{
    Connection, Deadline, Endpoint, Exchange, TargetError, Transport, failure, protocol_failure,
};
use crate::delivery::{DeliveryConfig, TimeoutPhase};
use crate::secret::Redactor;

/// The part of the target every hyper connection shares.
#[derive(Debug)]
struct HyperTarget {
    endpoint: Endpoint,
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
        let endpoint = Endpoint::resolve(url, &redactor).await?;
        let shown = redactor.redact_url(url.as_str());
        let invalid = |cause: String| TargetError::InvalidRequest {
            url: shown.clone(),
            cause: redactor.redact(&cause),
        };
        let path_and_query: Uri = endpoint
            .path_and_query
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| invalid(e.to_string()))?;
        let host_header = HeaderValue::from_str(&endpoint.authority)
            .map_err(|error| invalid(error.to_string()))?;
        let content_type = HeaderValue::from_str(&config.content_type)
            .map_err(|error| invalid(format!("Content-Type: {error}")))?;

        Ok(HyperTransport {
            target: Arc::new(HyperTarget {
                endpoint,
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

    /// Returns the addresses the host resolved to, in the order they are
    /// tried.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.target.endpoint.addrs
    }
}

impl Transport for HyperTransport {
    type Connection = HyperConnection;

    fn open(&self) -> HyperConnection {
        HyperConnection {
            target: self.target.clone(),
            open: None,
            deadline: Deadline::new(),
        }
    }
}

/// hyper's HTTP/1.1 connection state machine for one socket.
type Http1Connection = hyper::client::conn::http1::Connection<TokioIo<TcpStream>, Full<Bytes>>;

/// An open HTTP/1.1 connection.
///
/// The worker's own task polls it while an exchange is under way (see
/// [`drive`]), instead of a task of its own. That saves two task wake-ups
/// per request, a large share of the client's cost on a fast receiver.
/// Dropping it closes the socket, so a timed-out or broken exchange never
/// leaves a half-read response behind for the next request.
struct OpenConnection {
    sender: SendRequest<Full<Bytes>>,
    connection: Pin<Box<Http1Connection>>,
    /// Whether the connection future has completed: the socket is closed.
    ended: bool,
    idle_since: Instant,
}

/// Awaits `future` while polling `connection` in the same task, which
/// moves the request out and the response in.
async fn drive<F: Future>(
    connection: &mut Pin<Box<Http1Connection>>,
    ended: &mut bool,
    future: F,
) -> F::Output {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|context| {
        if let Poll::Ready(output) = future.as_mut().poll(context) {
            return Poll::Ready(output);
        }
        if !*ended && let Poll::Ready(result) = connection.as_mut().poll(context) {
            *ended = true;
            if let Err(error) = result {
                tracing::trace!(%error, "bench connection closed");
            }
            // Ending the connection fails every request in flight, so the
            // future is ready now or will be woken.
            return future.as_mut().poll(context);
        }
        Poll::Pending
    })
    .await
}

/// One worker's hyper connection; reconnects whenever the last one broke,
/// timed out, was closed by the receiver or sat idle too long.
pub struct HyperConnection {
    target: Arc<HyperTarget>,
    open: Option<OpenConnection>,
    deadline: Deadline,
}

impl Connection for HyperConnection {
    async fn exchange(&mut self, body: usize) -> Exchange {
        let deadline = Instant::now() + self.target.timeout;
        let mut phase = TimeoutPhase::Headers;
        let mut timer = std::mem::replace(&mut self.deadline, Deadline::new());
        let result = timer
            .run(deadline, self.exchange_within(body, &mut phase))
            .await;
        self.deadline = timer;
        match result {
            Some(exchange) => exchange,
            None => {
                self.open = None;
                Exchange::TimedOut { phase }
            }
        }
    }
}

impl HyperConnection {
    /// Runs the part of an exchange that the deadline bounds.
    async fn exchange_within(&mut self, body: usize, phase: &mut TimeoutPhase) -> Exchange {
        let target = self.target.clone();
        let mut request = Some(self.build_request(body));

        // A connection that the receiver closed while it sat idle hands the
        // request back unsent. Such a request goes out once more on a new
        // connection instead of counting as a failure, as a pool would do.
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
            let sending = open.sender.try_send_request(outgoing);
            match drive(&mut open.connection, &mut open.ended, sending).await {
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
            let Some(open) = self.open.as_mut() else {
                return self.failed_other("the connection closed while the body was read");
            };
            match drive(&mut open.connection, &mut open.ended, body.frame()).await {
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
        Exchange::Responded { status }
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
            let unusable = stale
                || open.ended
                || open.sender.is_closed()
                || drive(&mut open.connection, &mut open.ended, open.sender.ready())
                    .await
                    .is_err();
            if unusable {
                self.open = None;
            }
        }
        if self.open.is_none() {
            self.open = Some(self.connect().await?);
        }
        Ok(())
    }

    async fn connect(&self) -> Result<OpenConnection, Exchange> {
        let stream = match self.target.endpoint.connect().await {
            Ok(stream) => stream,
            Err(error) => return Err(self.failed(&error)),
        };
        let (sender, connection) =
            match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
                Ok(parts) => parts,
                Err(error) => return Err(self.failed(&error)),
            };
        Ok(OpenConnection {
            sender,
            connection: Box::pin(connection),
            ended: false,
            idle_since: Instant::now(),
        })
    }

    fn failed(&self, error: &(dyn StdError + 'static)) -> Exchange {
        failure(error, &self.target.redactor)
    }

    fn failed_other(&self, detail: &str) -> Exchange {
        protocol_failure(detail)
    }
}
