//! The reference receiver: an HTTP server that accepts Mews webhooks the
//! way a well-behaved integration should, and that can misbehave on
//! request so that a sender's retries and redirects can be tested.
//!
//! It accepts POST on every path and responds to each request after these
//! checks, in this order:
//!
//! 1. method: anything but POST gets 405;
//! 2. body size: a body over [`ReceiverConfig::max_body`] gets 413, after
//!    the rest of it has been read and thrown away so that a client still
//!    sending receives the 413 rather than a reset connection;
//! 3. redirect: with [`ReceiverConfig::redirect`] set, every path except
//!    [`REDIRECT_PATH`] is redirected there, query string kept;
//! 4. token: with [`ReceiverConfig::token`] set, a missing token gets 401
//!    and a wrong one 403;
//! 5. injected failures: the first [`ReceiverConfig::fail_first`] requests
//!    that pass the token check get 500;
//! 6. delay: [`ReceiverConfig::delay`] passes before the body is checked;
//! 7. body shape: a body that is not a valid General or Integration Webhook
//!    gets 400 with the failing field named (see [`validate_body`]);
//! 8. otherwise [`ReceiverConfig::status`], 202 by default, with an empty
//!    body.
//!
//! The delay comes after the token check and the injected failures because
//! it stands for the time a receiver spends processing a genuine message:
//! a real receiver rejects a bad token before doing any work.
//!
//! A request whose client closes the connection or resets the stream before
//! the response, for example because it timed out during the delay, is
//! still counted in [`ReceiverCounts::client_gone`], printed and recorded,
//! with status [`CLIENT_CLOSED_REQUEST`] (499) although nothing is sent.
//!
//! Content-Type is not checked, because Mews documents no special
//! content-type header. The token never appears in printed lines, the log,
//! the record file or [`ReceivedRequest`] text fields, in any spelling:
//! text that still contains it after percent-decoding is hidden too, as is
//! every value of the token parameter, its name compared without case.

mod handler;
mod redact;
mod state;
mod validate;

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use state::{CLIENT_CLOSED_REQUEST, ReceivedRequest, ReceiverCounts, ReceiverState};
pub use validate::{
    BodyError, BodySummary, FieldProblem, GeneralSummary, IntegrationSummary, validate_body,
};

/// The path that [`ReceiverConfig::redirect`] sends requests to. Requests on
/// this path are never redirected, so one redirect hop always ends here.
pub const REDIRECT_PATH: &str = "/redirected";

/// The default body size limit: 16 MiB. A General Webhook at a batch cap
/// of several hundred events is well under 1 MiB, so this leaves room for
/// oversized test batches while bounding the memory per request.
pub const DEFAULT_MAX_BODY: usize = 16 * 1024 * 1024;

/// The redirect statuses a receiver can be configured with.
pub const REDIRECT_STATUSES: [u16; 5] = [301, 302, 303, 307, 308];

/// The receiver's behaviour.
#[derive(Clone)]
pub struct ReceiverConfig {
    /// The token every request must carry in the query parameter
    /// `token_param`. `None` accepts requests without a token.
    pub token: Option<String>,
    /// The query parameter that carries the token. Default: `Token`, as
    /// Mews sends it.
    pub token_param: String,
    /// The number of requests, counted across all paths after the token
    /// check, that get 500 before any is accepted. Default: 0.
    pub fail_first: u64,
    /// The time to wait before checking the body and responding, for
    /// requests that pass the token check and are not injected failures.
    /// Default: zero.
    pub delay: Duration,
    /// The status for a valid message, in 200..=599. `None` means 202.
    pub status: Option<u16>,
    /// The redirect status (301, 302, 303, 307 or 308) for every request
    /// not on [`REDIRECT_PATH`]. `None` disables redirects.
    pub redirect: Option<u16>,
    /// A file that gets one JSON line per request, appended. Default: none.
    pub record: Option<PathBuf>,
    /// Whether to print one line per request to stdout. Default: false.
    pub print: bool,
    /// Whether to keep every request in memory for
    /// [`ReceiverState::requests`]. Default: true. Turn it off for long runs
    /// so that memory stays flat.
    pub keep_requests: bool,
    /// The maximum body size in bytes; larger bodies get 413. Default:
    /// [`DEFAULT_MAX_BODY`].
    pub max_body: usize,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            token: None,
            token_param: "Token".to_string(),
            fail_first: 0,
            delay: Duration::ZERO,
            status: None,
            redirect: None,
            record: None,
            print: false,
            keep_requests: true,
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

impl fmt::Debug for ReceiverConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiverConfig")
            .field(
                "token",
                &self.token.as_ref().map(|_| crate::secret::PLACEHOLDER),
            )
            .field("token_param", &self.token_param)
            .field("fail_first", &self.fail_first)
            .field("delay", &self.delay)
            .field("status", &self.status)
            .field("redirect", &self.redirect)
            .field("record", &self.record)
            .field("print", &self.print)
            .field("keep_requests", &self.keep_requests)
            .field("max_body", &self.max_body)
            .finish()
    }
}

/// An error that prevents setting up a receiver.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// A setting is out of range. The message names it and the valid values.
    #[error("invalid receiver setting: {0}")]
    InvalidConfig(String),
    /// The record file could not be opened for appending.
    #[error(
        "failed to open record file {}: {source}; check that its directory exists and is writable",
        path.display()
    )]
    Record {
        /// The record file.
        path: PathBuf,
        /// The error from the file system.
        source: io::Error,
    },
    /// The listening socket could not be bound.
    #[error("failed to listen on {addr}: {source}; choose another port, or port 0 for a free one")]
    Bind {
        /// The address requested.
        addr: SocketAddr,
        /// The error from the operating system.
        source: io::Error,
    },
}

impl From<ReceiverError> for io::Error {
    /// Wraps the error so that `get_ref` and `downcast_ref` recover it. An
    /// invalid setting maps to [`io::ErrorKind::InvalidInput`]; the others
    /// keep the kind of their source.
    fn from(error: ReceiverError) -> Self {
        let kind = match &error {
            ReceiverError::InvalidConfig(_) => io::ErrorKind::InvalidInput,
            ReceiverError::Record { source, .. } | ReceiverError::Bind { source, .. } => {
                source.kind()
            }
        };
        io::Error::new(kind, error)
    }
}

/// Builds the receiver app and its state, or returns an error naming the
/// invalid setting or the record file that cannot be opened.
pub fn try_router(config: ReceiverConfig) -> Result<(Router, ReceiverState), ReceiverError> {
    let success_status = match config.status {
        None => StatusCode::ACCEPTED,
        Some(code) => match StatusCode::from_u16(code) {
            Ok(status) if (200..=599).contains(&code) => status,
            _ => {
                return Err(ReceiverError::InvalidConfig(format!(
                    "status {code} is outside 200..=599"
                )));
            }
        },
    };
    let redirect_status = match config.redirect {
        None => None,
        Some(code) if REDIRECT_STATUSES.contains(&code) => StatusCode::from_u16(code).ok(),
        Some(code) => {
            return Err(ReceiverError::InvalidConfig(format!(
                "redirect status {code} is not one of 301, 302, 303, 307 or 308"
            )));
        }
    };
    if config.token.as_deref() == Some("") {
        return Err(ReceiverError::InvalidConfig(
            "the token is empty; give a non-empty token, or none to accept requests without one"
                .to_string(),
        ));
    }
    if config.token_param.is_empty() {
        return Err(ReceiverError::InvalidConfig(
            "the token parameter name is empty; Mews uses Token".to_string(),
        ));
    }

    let record = match &config.record {
        None => None,
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path);
            let file = file.map_err(|source| ReceiverError::Record {
                path: path.clone(),
                source,
            })?;
            Some(file)
        }
    };

    let state = ReceiverState::new(config, success_status, redirect_status, record);
    let router = Router::new()
        .fallback(handler::handle)
        .with_state(state.clone());
    Ok((router, state))
}

/// Builds the receiver app and its state, for serving or for `oneshot`
/// tests.
///
/// An invalid setting or a record file that cannot be opened is logged as
/// an error, and the returned app then responds to every request with 500 and
/// the reason. Use [`try_router`] to get the error instead.
pub fn router(config: ReceiverConfig) -> (Router, ReceiverState) {
    match try_router(config.clone()) {
        Ok(built) => built,
        Err(error) => {
            tracing::error!(%error, "receiver not set up; responding 500 to every request");
            let reason = format!("receiver not set up: {error}\n");
            let state = ReceiverState::new(
                ReceiverConfig {
                    record: None,
                    ..config
                },
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                None,
            );
            let router = Router::new()
                .fallback(move || async move { (StatusCode::INTERNAL_SERVER_ERROR, reason) });
            (router, state)
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then waits for
/// requests in flight to get their responses.
///
/// HTTP/1.1 and cleartext HTTP/2 are both served. Nagle's algorithm is off
/// on every connection, so small responses leave at once.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let listener = listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::trace!(%error, "failed to set TCP_NODELAY");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// A receiver serving in the background. Dropping it shuts the server down
/// without waiting; [`RunningReceiver::stop`] waits.
pub struct RunningReceiver {
    addr: SocketAddr,
    url: url::Url,
    state: ReceiverState,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
}

impl fmt::Debug for RunningReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningReceiver")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RunningReceiver {
    /// Starts a receiver on a free port of 127.0.0.1.
    pub async fn start(config: ReceiverConfig) -> io::Result<RunningReceiver> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    /// Starts a receiver on `addr`; port 0 picks a free port.
    ///
    /// The error wraps a [`ReceiverError`]: an invalid setting has kind
    /// [`io::ErrorKind::InvalidInput`], and a port in use has kind
    /// [`io::ErrorKind::AddrInUse`].
    pub async fn start_on(addr: SocketAddr, config: ReceiverConfig) -> io::Result<RunningReceiver> {
        let (router, state) = try_router(config)?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ReceiverError::Bind { addr, source })?;
        let addr = listener.local_addr()?;
        let url = url::Url::parse(&format!("http://{addr}/")).map_err(io::Error::other)?;

        let (shutdown, shutdown_received) = oneshot::channel::<()>();
        // The receiver also ends when the sender is dropped, which is how
        // dropping a RunningReceiver stops the server.
        let signal = async move {
            let _ = shutdown_received.await;
        };
        let task = tokio::spawn(serve(listener, router, signal));
        tracing::info!(%addr, config = ?state.config(), "receiver listening");

        Ok(RunningReceiver {
            addr,
            url,
            state,
            shutdown,
            task,
        })
    }

    /// Returns the address the receiver listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Returns the base URL, `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> url::Url {
        self.url.clone()
    }

    /// Returns the shared counters and request log.
    pub fn state(&self) -> &ReceiverState {
        &self.state
    }

    /// Stops accepting connections, waits until requests in flight get
    /// their responses, and waits for the server task to end.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        match self.task.await {
            Ok(Ok(())) => tracing::info!(addr = %self.addr, "receiver stopped"),
            Ok(Err(error)) => {
                tracing::error!(addr = %self.addr, %error, "receiver stopped with an error")
            }
            Err(error) => tracing::error!(addr = %self.addr, %error, "receiver task failed"),
        }
    }
}
