//! The long-lived sender engine.
//!
//! [`Sender::start`] spawns three stages joined by channels and returns a
//! [`SenderHandle`]:
//!
//! 1. the batcher task takes submitted events and actions from a bounded
//!    queue, groups General events per enterprise integration up to the
//!    cap, serializes each message once and opens it in the ledger;
//! 2. the dispatcher runs up to `concurrency` attempts at once;
//! 3. after a failed attempt a retry timer puts the message back on the
//!    dispatch queue after the next delay of the schedule, or the message
//!    is discarded after its last attempt.
//!
//! Every message ends delivered or discarded, and [`SenderHandle::finish`]
//! waits for that before it returns the ledger's account.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use thiserror::Error;
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use url::Url;

use crate::batcher::{Batcher, DEFAULT_BATCH_CAP};
use crate::delivery::{Client, DeliveryConfig, Outcome, Request, url_with_token};
use crate::ledger::{
    AttemptRecord, LatencySummary, Ledger, LedgerCounts, LedgerError, MessageId, MessageMeta,
    MessageRecord, MessageState,
};
use crate::payload::{Event, GeneralWebhook, IntegrationKey, IntegrationWebhook, WebhookKind};
use crate::retry::{RetryError, RetryPolicy};
use crate::secret::Redactor;

/// Everything the engine needs to run.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// The URL General Webhooks are sent to.
    pub general_url: Url,
    /// The URL Integration Webhooks are sent to; Mews allows a separate URL
    /// per kind.
    pub integration_url: Url,
    /// The secret appended to both URLs, if any.
    pub token: Option<String>,
    /// The query parameter that carries the token; Mews uses `Token`.
    pub token_param: String,
    /// The transport rules of one attempt.
    pub delivery: DeliveryConfig,
    /// Events per General Webhook message.
    pub batch_cap: usize,
    /// How long an open batch may wait for more events before it is sent.
    /// `None` sends open batches only when the caller flushes or finishes.
    pub batch_window: Option<Duration>,
    /// When to retry and when to give up.
    pub retry: RetryPolicy,
    /// Attempts in flight at once.
    pub concurrency: usize,
    /// Keep every message and attempt for the final report. A long-running
    /// service turns this off so that memory stays flat.
    pub keep_records: bool,
    /// Submissions that may wait before `submit` applies back-pressure.
    pub queue_capacity: usize,
}

impl SenderConfig {
    /// Builds a configuration with the Mews defaults that sends both kinds
    /// to `url`.
    pub fn new(url: Url) -> SenderConfig {
        SenderConfig {
            general_url: url.clone(),
            integration_url: url,
            token: None,
            token_param: "Token".to_string(),
            delivery: DeliveryConfig::default(),
            batch_cap: DEFAULT_BATCH_CAP,
            batch_window: None,
            retry: RetryPolicy::default(),
            concurrency: 4,
            keep_records: true,
            queue_capacity: 10_000,
        }
    }
}

/// A configuration the engine cannot run with.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// A target URL is not http or https.
    #[error("unsupported URL scheme \"{scheme}\" in {url}; use an http:// or https:// URL")]
    Scheme {
        /// The scheme given.
        scheme: String,
        /// The URL, redacted.
        url: String,
    },
    /// The URL with the token cannot be sent over HTTP.
    #[error(
        "the URL {url} with the token appended ({length} characters) is not a valid HTTP request target: {reason}; use a shorter token or URL"
    )]
    InvalidUri {
        /// The URL, redacted.
        url: String,
        /// The reason it is invalid.
        reason: String,
        /// The length of the full URL.
        length: usize,
    },
    /// The retry settings are invalid.
    #[error(transparent)]
    Retry(#[from] RetryError),
    /// The token parameter name is empty.
    #[error("--token-param is empty; give a query parameter name such as Token")]
    EmptyTokenParam,
    /// The HTTP client could not be built (for example no TLS roots).
    #[error("failed to build the HTTP client: {0}")]
    Client(String),
}

/// A report of one attempt, published for live output.
#[derive(Debug, Clone)]
pub struct Notice {
    /// The message.
    pub id: MessageId,
    /// The message kind.
    pub kind: WebhookKind,
    /// Events carried.
    pub events: usize,
    /// The attempt number, 1 for the first.
    pub attempt: u32,
    /// The attempt's result.
    pub outcome: Outcome,
    /// The attempt's duration.
    pub total: Duration,
    /// The message's state after the attempt.
    pub state: MessageState,
    /// The wait before the next attempt, when one is scheduled.
    pub retry_in: Option<Duration>,
    /// The start of the response body, redacted, on one line: often the
    /// receiver's reason for a rejection.
    pub response_excerpt: String,
}

/// The engine's final account.
#[derive(Debug, Clone, Serialize)]
pub struct SenderReport {
    /// The totals.
    pub counts: LedgerCounts,
    /// Latency of attempts that got a response.
    pub latency: LatencySummary,
    /// Every message and attempt, when records were kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<MessageRecord>>,
    /// Wall time from start to finish.
    #[serde(rename = "elapsed_ms", with = "crate::delivery::duration_ms")]
    pub elapsed: Duration,
    /// A broken ledger invariant, if any: a sender bug.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger_error: Option<String>,
}

/// The handle was used after the engine stopped.
#[derive(Debug, Error)]
#[error("the sender has stopped and accepts no more events")]
pub struct Stopped;

enum Input {
    Event(IntegrationKey, Event),
    Action(IntegrationWebhook),
    Raw {
        kind: WebhookKind,
        body: Bytes,
        events: usize,
    },
    Flush(oneshot::Sender<()>),
}

struct Job {
    id: MessageId,
    attempt: u32,
    request: Arc<Request>,
    kind: WebhookKind,
    events: usize,
}

struct Shared {
    ledger: Mutex<Ledger>,
    pending_tx: watch::Sender<u64>,
    notices: broadcast::Sender<Notice>,
    dispatch_tx: mpsc::UnboundedSender<Job>,
    retry: RetryPolicy,
    started: Instant,
}

impl Shared {
    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // A panic while holding the lock is a sender bug; the counts are
        // still the best account there is, so keep using them.
        self.ledger
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn publish_pending(&self, pending: u64) {
        self.pending_tx.send_replace(pending);
    }
}

/// A cheap, cloneable way to submit work to a running sender.
#[derive(Clone)]
pub struct Submitter {
    input_tx: mpsc::Sender<Input>,
    shared: Arc<Shared>,
}

impl Submitter {
    /// Queues a General event for `key`.
    pub async fn event(&self, key: IntegrationKey, event: Event) -> Result<(), Stopped> {
        self.send(Input::Event(key, event)).await
    }

    /// Queues an Integration Webhook; it becomes one message.
    pub async fn action(&self, webhook: IntegrationWebhook) -> Result<(), Stopped> {
        self.send(Input::Action(webhook)).await
    }

    /// Queues a body sent byte for byte as one message of `kind`, counted
    /// as carrying `events` events.
    pub async fn raw(&self, kind: WebhookKind, body: Bytes, events: usize) -> Result<(), Stopped> {
        self.send(Input::Raw { kind, body, events }).await
    }

    /// Sends every open batch now and waits until they are in the ledger.
    pub async fn flush(&self) -> Result<(), Stopped> {
        let (done_tx, done_rx) = oneshot::channel();
        self.send(Input::Flush(done_tx)).await?;
        done_rx.await.map_err(|_| Stopped)
    }

    /// Live notices of every attempt.
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.shared.notices.subscribe()
    }

    /// Returns the running totals.
    pub fn counts(&self) -> LedgerCounts {
        self.shared.ledger().counts().clone()
    }

    async fn send(&self, input: Input) -> Result<(), Stopped> {
        self.input_tx.send(input).await.map_err(|_| Stopped)
    }
}

/// The running engine. Dropping it without [`finish`](Self::finish) stops
/// the tasks and loses what was pending.
pub struct SenderHandle {
    submitter: Submitter,
    batcher_task: JoinHandle<()>,
    dispatcher_task: JoinHandle<()>,
}

/// The engine's entry point.
pub struct Sender;

impl Sender {
    /// Checks `config` and starts the engine's tasks on the current tokio
    /// runtime.
    pub fn start(config: SenderConfig) -> Result<SenderHandle, ConfigError> {
        let redactor = Redactor::for_target(
            config.token.as_deref(),
            &config.token_param,
            [&config.general_url, &config.integration_url],
        );
        let (general_url, integration_url) = target_urls(&config, &redactor)?;
        config.retry.validate()?;
        let client = Client::new(config.delivery.clone(), redactor.clone())
            .map_err(|error| ConfigError::Client(redactor.redact(&error.to_string())))?;

        let (input_tx, input_rx) = mpsc::channel(config.queue_capacity.max(1));
        let (dispatch_tx, dispatch_rx) = mpsc::unbounded_channel();
        let (pending_tx, _) = watch::channel(0);
        let (notices, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            ledger: Mutex::new(Ledger::new(config.keep_records)),
            pending_tx,
            notices,
            dispatch_tx,
            retry: config.retry.clone(),
            started: Instant::now(),
        });

        let batching = Batching {
            batcher: Batcher::new(config.batch_cap),
            window: config.batch_window,
            general_url: Arc::new(general_url),
            integration_url: Arc::new(integration_url),
            shared: shared.clone(),
        };
        let batcher_task = tokio::spawn(batching.run(input_rx));
        let dispatcher_task = tokio::spawn(dispatch(
            dispatch_rx,
            client,
            shared.clone(),
            config.concurrency.max(1),
        ));
        tracing::info!(
            general_url = %redactor.redact_url(config.general_url.as_str()),
            integration_url = %redactor.redact_url(config.integration_url.as_str()),
            batch_cap = config.batch_cap,
            concurrency = config.concurrency,
            "sender started"
        );

        Ok(SenderHandle {
            submitter: Submitter { input_tx, shared },
            batcher_task,
            dispatcher_task,
        })
    }
}

impl SenderHandle {
    /// Returns a cloneable submitter for this engine.
    pub fn submitter(&self) -> Submitter {
        self.submitter.clone()
    }

    /// Queues a General event; see [`Submitter::event`].
    pub async fn event(&self, key: IntegrationKey, event: Event) -> Result<(), Stopped> {
        self.submitter.event(key, event).await
    }

    /// Queues an Integration Webhook; see [`Submitter::action`].
    pub async fn action(&self, webhook: IntegrationWebhook) -> Result<(), Stopped> {
        self.submitter.action(webhook).await
    }

    /// Queues a raw body; see [`Submitter::raw`].
    pub async fn raw(&self, kind: WebhookKind, body: Bytes, events: usize) -> Result<(), Stopped> {
        self.submitter.raw(kind, body, events).await
    }

    /// Live notices of every attempt.
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.submitter.subscribe()
    }

    /// Sends the open batches, waits until every message is delivered or
    /// discarded, stops the engine and returns its account. Submitters
    /// cloned from this handle fail with [`Stopped`] afterwards.
    pub async fn finish(self) -> SenderReport {
        self.close(std::future::pending()).await
    }

    /// Like [`finish`](Self::finish), but waits at most `grace` for
    /// pending messages. Those still pending then, in flight or waiting
    /// for a retry, are closed as discarded and counted in
    /// `discarded_at_shutdown`, so the account still balances.
    pub async fn shutdown(self, grace: Duration) -> SenderReport {
        self.close(tokio::time::sleep(grace)).await
    }

    /// Like [`shutdown`](Self::shutdown), but the wait for pending messages
    /// ends when `give_up` completes, for example on a second Ctrl-C.
    pub async fn shutdown_when(self, give_up: impl Future<Output = ()>) -> SenderReport {
        self.close(give_up).await
    }

    async fn close(self, give_up: impl Future<Output = ()>) -> SenderReport {
        let SenderHandle {
            submitter,
            batcher_task,
            dispatcher_task,
        } = self;
        let shared = submitter.shared.clone();
        let mut pending_rx = shared.pending_tx.subscribe();

        // Closing the input makes the batcher flush and exit, but only
        // once every other submitter is gone too, so flush explicitly.
        let _ = submitter.flush().await;
        drop(submitter);
        tokio::select! {
            _ = pending_rx.wait_for(|pending| *pending == 0) => {}
            () = give_up => {}
        }

        // Aborting the dispatcher also aborts its attempts and retry
        // timers, so nothing can change the ledger after this point.
        batcher_task.abort();
        dispatcher_task.abort();
        let _ = dispatcher_task.await;

        let mut ledger = shared.ledger();
        let abandoned = ledger.discard_open();
        if abandoned > 0 {
            tracing::warn!(
                messages = abandoned,
                "pending messages discarded at shutdown"
            );
        }
        let ledger_error = ledger
            .check()
            .err()
            .map(|error: LedgerError| error.to_string());
        if let Some(error) = &ledger_error {
            tracing::error!(%error, "ledger check failed");
        }
        tracing::info!(
            delivered = ledger.counts().messages_delivered,
            discarded = ledger.counts().messages_discarded,
            "sender finished"
        );
        SenderReport {
            counts: ledger.counts().clone(),
            latency: ledger.latency(),
            messages: ledger.records().map(<[MessageRecord]>::to_vec),
            elapsed: shared.started.elapsed(),
            ledger_error,
        }
    }
}

/// Builds the two target URLs with the token appended.
fn target_urls(config: &SenderConfig, redactor: &Redactor) -> Result<(Url, Url), ConfigError> {
    if config.token.is_some() && config.token_param.is_empty() {
        return Err(ConfigError::EmptyTokenParam);
    }
    let prepare = |url: &Url| -> Result<Url, ConfigError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError::Scheme {
                scheme: url.scheme().to_string(),
                url: redactor.redact_url(url.as_str()),
            });
        }
        let full = match &config.token {
            Some(token) => url_with_token(url, &config.token_param, token),
            None => url.clone(),
        };
        // The HTTP stack rejects some URLs that the url crate accepts, most
        // often one longer than 64 KiB; better to say so before sending.
        if let Err(error) = axum::http::Uri::try_from(full.as_str()) {
            return Err(ConfigError::InvalidUri {
                url: redactor.redact_url(url.as_str()),
                reason: error.to_string(),
                length: full.as_str().len(),
            });
        }
        Ok(full)
    };
    Ok((
        prepare(&config.general_url)?,
        prepare(&config.integration_url)?,
    ))
}

/// The batcher stage: turns submissions into serialized messages.
struct Batching {
    batcher: Batcher,
    window: Option<Duration>,
    general_url: Arc<Url>,
    integration_url: Arc<Url>,
    shared: Arc<Shared>,
}

impl Batching {
    async fn run(mut self, mut input_rx: mpsc::Receiver<Input>) {
        // When the oldest open batch must go out, if a window is set.
        let mut window_ends: Option<Instant> = None;
        loop {
            let input = match window_ends {
                Some(deadline) => match tokio::time::timeout_at(deadline, input_rx.recv()).await {
                    Ok(input) => input,
                    Err(_window_over) => {
                        self.flush();
                        window_ends = None;
                        continue;
                    }
                },
                None => input_rx.recv().await,
            };
            let Some(input) = input else {
                self.flush();
                return;
            };

            match input {
                Input::Event(key, event) => {
                    if let Some(message) = self.batcher.push(key, event) {
                        self.emit_general(message);
                    }
                    if self.batcher.pending_events() == 0 {
                        window_ends = None;
                    } else if window_ends.is_none() {
                        window_ends = self.window.map(|window| Instant::now() + window);
                    }
                }
                Input::Action(webhook) => {
                    let meta = MessageMeta {
                        kind: WebhookKind::Integration,
                        enterprise_id: None,
                        integration_id: None,
                        action: Some(webhook.action.clone()),
                        events: 1,
                        body_bytes: 0,
                    };
                    self.emit(meta, Bytes::from(webhook.to_bytes()));
                }
                Input::Raw { kind, body, events } => {
                    let meta = MessageMeta {
                        kind,
                        enterprise_id: None,
                        integration_id: None,
                        action: None,
                        events,
                        body_bytes: 0,
                    };
                    self.emit(meta, body);
                }
                Input::Flush(done_tx) => {
                    self.flush();
                    window_ends = None;
                    let _ = done_tx.send(());
                }
            }
        }
    }

    fn flush(&mut self) {
        for message in self.batcher.flush() {
            self.emit_general(message);
        }
    }

    fn emit_general(&self, message: GeneralWebhook) {
        let meta = MessageMeta {
            kind: WebhookKind::General,
            enterprise_id: Some(message.enterprise_id),
            integration_id: Some(message.integration_id),
            action: None,
            events: message.events.len(),
            body_bytes: 0,
        };
        self.emit(meta, Bytes::from(message.to_bytes()));
    }

    /// Opens the message in the ledger and queues its first attempt. The
    /// body is serialized once here, so every attempt sends the same bytes.
    fn emit(&self, mut meta: MessageMeta, body: Bytes) {
        meta.body_bytes = body.len();
        let url = match meta.kind {
            WebhookKind::General => &self.general_url,
            WebhookKind::Integration => &self.integration_url,
        };
        let (kind, events) = (meta.kind, meta.events);
        let id = {
            let mut ledger = self.shared.ledger();
            let id = ledger.open(meta);
            self.shared.publish_pending(ledger.pending());
            id
        };
        let request = Arc::new(Request {
            url: Url::clone(url),
            body,
            content_type: None,
        });
        let job = Job {
            id,
            attempt: 1,
            request,
            kind,
            events,
        };
        // The dispatcher lives as long as the shared state, so this only
        // fails while the engine is being torn down.
        let _ = self.shared.dispatch_tx.send(job);
    }
}

/// Runs the dispatcher stage: attempts, at most `concurrency` at once.
async fn dispatch(
    mut dispatch_rx: mpsc::UnboundedReceiver<Job>,
    client: Client,
    shared: Arc<Shared>,
    concurrency: usize,
) {
    let slots = Arc::new(Semaphore::new(concurrency));
    // Attempts and retry timers live in this set, so that aborting the
    // dispatcher at shutdown also stops every attempt and timer.
    let mut tasks = JoinSet::new();
    while let Some(job) = dispatch_rx.recv().await {
        while tasks.try_join_next().is_some() {}
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let client = client.clone();
        let shared = shared.clone();
        tasks.spawn(async move {
            let retry = attempt(job, &client, &shared).await;
            drop(slot);
            if let Some((delay, next)) = retry {
                tokio::time::sleep(delay).await;
                let _ = shared.dispatch_tx.send(next);
            }
        });
    }
}

/// Makes one attempt of `job` and records it. Returns the wait and the job
/// of the next attempt, or `None` once the message is closed.
async fn attempt(job: Job, client: &Client, shared: &Arc<Shared>) -> Option<(Duration, Job)> {
    let started_at = shared.started.elapsed();
    let result = client.attempt(&job.request).await;
    let outcome = result.outcome.clone();
    let total = result.total;
    let response_excerpt = one_line(&result.response_excerpt, 160);
    let delivered = outcome.is_delivered();
    let retry_in = if delivered {
        None
    } else {
        shared.retry.delay_before(job.attempt + 1)
    };

    // The notice and the pending count are published under the ledger
    // lock, so a task that observes zero pending has every notice.
    let state = {
        let mut ledger = shared.ledger();
        ledger.record_attempt(
            job.id,
            AttemptRecord {
                number: job.attempt,
                started_at,
                attempt: result,
            },
        );
        let state = if delivered {
            ledger.mark_delivered(job.id, job.attempt);
            MessageState::Delivered
        } else if retry_in.is_some() {
            MessageState::Pending
        } else {
            ledger.mark_discarded(job.id);
            MessageState::Discarded
        };
        let _ = shared.notices.send(Notice {
            id: job.id,
            kind: job.kind,
            events: job.events,
            attempt: job.attempt,
            outcome: outcome.clone(),
            total,
            state,
            retry_in,
            response_excerpt,
        });
        shared.publish_pending(ledger.pending());
        state
    };
    log_attempt(&job, &outcome, retry_in, state);

    let delay = retry_in?;
    let next = Job {
        attempt: job.attempt + 1,
        ..job
    };
    Some((delay, next))
}

/// Joins the lines of `text` and cuts it to `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() <= max {
        return joined;
    }
    let mut cut: String = joined.chars().take(max).collect();
    cut.push('…');
    cut
}

fn log_attempt(job: &Job, outcome: &Outcome, retry_in: Option<Duration>, state: MessageState) {
    // The caller shows per-message results as output. The log keeps them at
    // debug and info, so a large failing run does not flood stderr at the
    // default level.
    let description = outcome.describe();
    match (state, retry_in) {
        (MessageState::Delivered, _) => {
            tracing::debug!(message_id = job.id, attempt = job.attempt, outcome = %description, "delivered");
        }
        (MessageState::Pending, Some(delay)) => {
            tracing::info!(
                message_id = job.id,
                attempt = job.attempt,
                outcome = %description,
                retry_in = ?delay,
                "attempt failed, retry scheduled"
            );
        }
        _ => {
            tracing::info!(
                message_id = job.id,
                attempt = job.attempt,
                outcome = %description,
                "last attempt failed, message discarded"
            );
        }
    }
}
