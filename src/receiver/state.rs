//! The receiver's shared state: counters, the request log and the record
//! file.

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::ReceiverConfig;
use super::redact::RequestRedactor;
use crate::payload::WebhookKind;

/// One request as the receiver saw it, with the response status.
///
/// Every text field has the token replaced by a placeholder, except `body`,
/// which contains the bytes exactly as received.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedRequest {
    /// The HTTP method, for example `POST`.
    pub method: String,
    /// The request path, for example `/general`.
    pub path: String,
    /// The raw query string with the value of the token parameter redacted;
    /// empty when the URL has no query.
    pub query: String,
    /// The request headers in arrival order, names in lower case. Values of
    /// `authorization`, `proxy-authorization` and `cookie` are redacted.
    pub headers: Vec<(String, String)>,
    /// The body as received; empty when it was over the size limit, the
    /// method was not POST, or the client went away before it arrived.
    pub body: Bytes,
    /// The webhook kind, for a valid body.
    pub kind: Option<WebhookKind>,
    /// The number of General Webhook events, for a valid body.
    pub event_count: usize,
    /// `EnterpriseId`, for a valid General Webhook.
    pub enterprise_id: Option<Uuid>,
    /// `IntegrationId`, for a valid General Webhook.
    pub integration_id: Option<Uuid>,
    /// `Action`, for a valid Integration Webhook.
    pub action: Option<String>,
    /// The HTTP status of the response, or [`CLIENT_CLOSED_REQUEST`] (499)
    /// when the client went away before the response and none was sent.
    pub status: u16,
    /// The reason the request was not accepted, for any response other
    /// than to a valid message or a redirect.
    pub error: Option<String>,
    /// Whether the token matched: `None` when no token is configured, or
    /// when the request got its response, or its client went away, before
    /// the token check.
    pub token_ok: Option<bool>,
    /// When the request arrived.
    pub received_at: DateTime<Utc>,
    /// The time from arrival to response, including any configured delay,
    /// or to the moment the client went away.
    pub elapsed: Duration,
}

/// The status recorded for a request whose client went away before the
/// response, as nginx logs it. No response with this status is sent.
pub const CLIENT_CLOSED_REQUEST: u16 = 499;

/// A snapshot of the receiver's counters.
///
/// Every request adds 1 to `requests` and to exactly one of `accepted`,
/// `valid_non_2xx`, `rejected_auth`, `invalid_body`, `too_large`,
/// `injected_failures`, `redirected`, `method_not_allowed` and
/// `client_gone`, so those nine add up to `requests` once no request is in
/// flight. While requests are in flight, the nine may add up to more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReceiverCounts {
    /// Requests that got a response or whose client went away first.
    pub requests: u64,
    /// Valid messages acknowledged with a 2xx status.
    pub accepted: u64,
    /// Valid messages that got a non-2xx status because
    /// [`ReceiverConfig::status`] says so.
    pub valid_non_2xx: u64,
    /// Requests rejected with 401 (token missing) or 403 (token wrong).
    pub rejected_auth: u64,
    /// Requests rejected with 400: invalid JSON, a wrong shape, or a body that
    /// could not be read.
    pub invalid_body: u64,
    /// Requests rejected with 413 because the body was over the size limit.
    pub too_large: u64,
    /// Requests that got 500 from [`ReceiverConfig::fail_first`].
    pub injected_failures: u64,
    /// Requests redirected by [`ReceiverConfig::redirect`].
    pub redirected: u64,
    /// Requests with a method other than POST, rejected with 405.
    pub method_not_allowed: u64,
    /// Requests whose client closed the connection or reset the stream
    /// before the response, for example while the configured delay ran.
    pub client_gone: u64,
    /// General Webhook events in valid messages, whatever the response
    /// status.
    pub events: u64,
    /// Valid General Webhook messages, whatever the response status.
    pub general_messages: u64,
    /// Valid Integration Webhook messages, whatever the response status.
    pub integration_messages: u64,
    /// Lines that could not be written to the record file.
    pub record_errors: u64,
    /// Requests received that have no response yet.
    pub in_flight: u64,
}

impl ReceiverCounts {
    /// Returns the valid messages of `kind`, whatever the response status.
    pub fn messages(&self, kind: WebhookKind) -> u64 {
        match kind {
            WebhookKind::General => self.general_messages,
            WebhookKind::Integration => self.integration_messages,
        }
    }
}

impl fmt::Display for ReceiverCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = [
            ("requests", self.requests),
            ("  accepted (2xx)", self.accepted),
            ("  valid, non-2xx --status", self.valid_non_2xx),
            ("  token missing or wrong", self.rejected_auth),
            ("  invalid body", self.invalid_body),
            ("  body too large", self.too_large),
            ("  injected failures", self.injected_failures),
            ("  redirected", self.redirected),
            ("  method not allowed", self.method_not_allowed),
            ("  client gone, no response", self.client_gone),
            ("general messages", self.general_messages),
            ("  events", self.events),
            ("integration messages", self.integration_messages),
        ];
        for (label, value) in rows {
            writeln!(f, "{label:<28}{value:>10}")?;
        }
        if self.in_flight > 0 {
            writeln!(
                f,
                "{:<28}{:>10}",
                "requests without response", self.in_flight
            )?;
        }
        if self.record_errors > 0 {
            writeln!(f, "{:<28}{:>10}", "record write errors", self.record_errors)?;
        }
        Ok(())
    }
}

/// The live counters behind [`ReceiverCounts`]. All but `requests` use
/// relaxed atomics, so a snapshot taken while requests are in flight may
/// count a request in its outcome counter before counting it in
/// `requests`.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) requests: AtomicU64,
    pub(super) accepted: AtomicU64,
    pub(super) valid_non_2xx: AtomicU64,
    pub(super) rejected_auth: AtomicU64,
    pub(super) invalid_body: AtomicU64,
    pub(super) too_large: AtomicU64,
    pub(super) injected_failures: AtomicU64,
    pub(super) redirected: AtomicU64,
    pub(super) method_not_allowed: AtomicU64,
    pub(super) client_gone: AtomicU64,
    pub(super) events: AtomicU64,
    pub(super) general_messages: AtomicU64,
    pub(super) integration_messages: AtomicU64,
    pub(super) record_errors: AtomicU64,
    pub(super) in_flight: AtomicU64,
    /// Requests that reached the `fail_first` step.
    pub(super) fail_first_seen: AtomicU64,
}

/// Adds `amount` to `counter` and returns the new value.
pub(super) fn bump(counter: &AtomicU64, amount: u64) -> u64 {
    counter.fetch_add(amount, Ordering::Relaxed) + amount
}

impl Counters {
    fn snapshot(&self) -> ReceiverCounts {
        // Loaded first with Acquire, paired with the Release increment in
        // the handler: every request included here is also included in its
        // outcome counter below.
        let requests = self.requests.load(Ordering::Acquire);
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ReceiverCounts {
            requests,
            accepted: load(&self.accepted),
            valid_non_2xx: load(&self.valid_non_2xx),
            rejected_auth: load(&self.rejected_auth),
            invalid_body: load(&self.invalid_body),
            too_large: load(&self.too_large),
            injected_failures: load(&self.injected_failures),
            redirected: load(&self.redirected),
            method_not_allowed: load(&self.method_not_allowed),
            client_gone: load(&self.client_gone),
            events: load(&self.events),
            general_messages: load(&self.general_messages),
            integration_messages: load(&self.integration_messages),
            record_errors: load(&self.record_errors),
            in_flight: load(&self.in_flight),
        }
    }
}

/// The handle shared by the router and its owner: counters, the request log
/// and the settings the handler reads. Cloning is cheap.
#[derive(Clone)]
pub struct ReceiverState {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) config: ReceiverConfig,
    /// The status for valid messages, checked when the router was built.
    pub(super) success_status: StatusCode,
    /// The redirect status, checked when the router was built.
    pub(super) redirect_status: Option<StatusCode>,
    pub(super) redactor: RequestRedactor,
    /// Whether any of `print`, `record` or `keep_requests` needs more than
    /// the counters.
    pub(super) needs_details: bool,
    pub(super) counters: Counters,
    /// Present when `config.keep_requests` is set.
    pub(super) requests: Option<Mutex<Vec<ReceivedRequest>>>,
    /// Present when `config.record` is set.
    pub(super) record: Option<Mutex<File>>,
}

impl fmt::Debug for ReceiverState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiverState")
            .field("config", &self.inner.config)
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}

/// Locks `mutex`, recovering the data if a holder panicked: the log and the
/// file stay usable because every write under the lock is a single push or
/// write call.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ReceiverState {
    pub(super) fn new(
        config: ReceiverConfig,
        success_status: StatusCode,
        redirect_status: Option<StatusCode>,
        record: Option<File>,
    ) -> Self {
        let redactor = RequestRedactor::new(config.token.as_deref(), &config.token_param);
        let needs_details = config.print || config.keep_requests || record.is_some();
        let requests = config.keep_requests.then(|| Mutex::new(Vec::new()));
        ReceiverState {
            inner: Arc::new(Inner {
                config,
                success_status,
                redirect_status,
                redactor,
                needs_details,
                counters: Counters::default(),
                requests,
                record: record.map(Mutex::new),
            }),
        }
    }

    /// Returns every request responded to so far, and every request whose
    /// client went away first, oldest first. Empty unless
    /// [`ReceiverConfig::keep_requests`] is set.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        match &self.inner.requests {
            Some(requests) => lock(requests).clone(),
            None => Vec::new(),
        }
    }

    /// Returns a snapshot of the counters. The handler updates them before
    /// it sends the response, so a client that has its response sees its
    /// request counted.
    pub fn counts(&self) -> ReceiverCounts {
        self.inner.counters.snapshot()
    }

    /// Waits until `condition` holds for the counters or `timeout` passes,
    /// and returns whether it held. Polls every millisecond, so the request
    /// path pays nothing for waiters.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        condition: impl Fn(&ReceiverCounts) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if condition(&self.counts()) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Returns the settings this receiver runs with.
    pub fn config(&self) -> &ReceiverConfig {
        &self.inner.config
    }

    pub(super) fn keep(&self, request: ReceivedRequest) {
        if let Some(requests) = &self.inner.requests {
            lock(requests).push(request);
        }
    }

    /// Appends one line to the record file, counting and logging failures.
    pub(super) fn write_record(&self, line: &[u8]) {
        let Some(file) = &self.inner.record else {
            return;
        };
        // The caller passes a whole line, and the lock keeps concurrent
        // handlers from interleaving lines.
        let result = lock(file).write_all(line);
        if let Err(error) = result {
            let failures = bump(&self.inner.counters.record_errors, 1);
            // Log the first failure and then only at powers of two, so a full
            // disk does not flood the log.
            if failures.is_power_of_two() {
                let path = self
                    .inner
                    .config
                    .record
                    .as_deref()
                    .unwrap_or(std::path::Path::new(""));
                tracing::warn!(
                    path = %path.display(),
                    %error,
                    failures,
                    "failed to write to the record file"
                );
            }
        }
    }
}
