//! The sender service: an HTTP intake in front of the sender engine.
//!
//! `mewshook serve` takes events over HTTP and delivers them the way
//! Mews does, so that a staging system can drive webhooks from its own
//! actions. The intake responds as soon as the events are queued; delivery,
//! batching and retries happen in the engine. Routes:
//!
//! - `POST /v1/general`: a General Webhook body (`EnterpriseId`,
//!   `IntegrationId`, `Events`); the events are batched again by the
//!   engine, so several posts can share one message;
//! - `POST /v1/integration`: `{"Action": ..., "Data": {...}}`, sent as one
//!   message; without `Data`, realistic data is generated;
//! - `POST /v1/generate`: `{"count": N, "actions": [...]}`, realistic
//!   traffic from the seeded generator;
//! - `POST /v1/flush`: sends open batches now;
//! - `GET /v1/status`: the ledger's running totals;
//! - `GET /healthz`: liveness.
//!
//! With a lag configured, each submission waits a random time in the lag
//! range (Mews time, scaled like retry delays) before it reaches the
//! engine, as Mews events reach webhooks minutes after they happen.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Json, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, body::Bytes};
use rand::RngExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::generator::Generator;
use crate::payload::{
    ACTIONS, DISCRIMINATORS, Event, IntegrationKey, IntegrationWebhook, is_known_action,
    is_known_discriminator, suggest,
};
use crate::retry::scale;
use crate::sender::{SenderHandle, SenderReport, Submitter};

/// Largest `count` one `/v1/generate` call may ask for, so that one call
/// cannot make the service allocate without bound.
pub const MAX_GENERATE: usize = 100_000;

/// Settings of the intake.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Accept discriminators and actions Mews does not document.
    pub allow_unknown: bool,
    /// The simulated delivery lag range in Mews time, if any.
    pub lag: Option<(Duration, Duration)>,
    /// The factor applied to the lag, the same as for retry delays.
    pub time_scale: f64,
    /// The seed of the generator behind `/v1/generate`.
    pub seed: u64,
    /// Enterprise integrations the generator spreads events over.
    pub enterprises: usize,
}

/// A running intake in front of an engine.
pub struct Service {
    state: Arc<ServiceState>,
    handle: SenderHandle,
    lagged: Arc<Mutex<JoinSet<()>>>,
    skip_lag_tx: watch::Sender<bool>,
}

struct ServiceState {
    config: ServiceConfig,
    submitter: Submitter,
    generator: Mutex<Generator>,
    lagged: Arc<Mutex<JoinSet<()>>>,
    skip_lag_rx: watch::Receiver<bool>,
    /// Events accepted by the intake but still waiting out their lag, so
    /// not yet in the sender's ledger.
    lagging_events: Arc<AtomicU64>,
    /// Events handed to the engine; those not yet in a message are in
    /// open batches.
    submitted_events: Arc<AtomicU64>,
}

/// A queued submission: events of one key, or Integration actions.
enum Submission {
    Events(IntegrationKey, Vec<Event>),
    Actions(Vec<IntegrationWebhook>),
}

impl Submission {
    fn event_count(&self) -> u64 {
        match self {
            Submission::Events(_, events) => events.len() as u64,
            Submission::Actions(actions) => actions.len() as u64,
        }
    }
}

impl Service {
    /// Puts an intake in front of the running engine `handle`.
    pub fn new(config: ServiceConfig, handle: SenderHandle) -> Service {
        let (skip_lag_tx, skip_lag_rx) = watch::channel(false);
        let lagged = Arc::new(Mutex::new(JoinSet::new()));
        let generator = Generator::new(config.seed, config.enterprises);
        let state = Arc::new(ServiceState {
            config,
            submitter: handle.submitter(),
            generator: Mutex::new(generator),
            lagged: lagged.clone(),
            skip_lag_rx,
            lagging_events: Arc::new(AtomicU64::new(0)),
            submitted_events: Arc::new(AtomicU64::new(0)),
        });
        Service {
            state,
            handle,
            lagged,
            skip_lag_tx,
        }
    }

    /// Builds the intake's router.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/general", post(post_general))
            .route("/v1/integration", post(post_integration))
            .route("/v1/generate", post(post_generate))
            .route("/v1/flush", post(post_flush))
            .route("/v1/status", get(get_status))
            .route("/healthz", get(|| async { "ok\n" }))
            .with_state(self.state.clone())
    }

    /// Stops the service: submissions still waiting out their lag go to
    /// the engine at once, then the engine finishes what is pending until
    /// `give_up` completes, and the rest is discarded.
    pub async fn shutdown(self, give_up: impl Future<Output = ()>) -> SenderReport {
        self.skip_lag_tx.send_replace(true);
        let mut lagged = std::mem::take(&mut *lock(&self.lagged));
        while lagged.join_next().await.is_some() {}
        drop(self.state);
        self.handle.shutdown_when(give_up).await
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An intake error, sent to the client as JSON with a 4xx or 5xx status.
struct IntakeError {
    status: StatusCode,
    message: String,
}

impl IntakeError {
    fn invalid(message: impl Into<String>) -> IntakeError {
        IntakeError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl IntoResponse for IntakeError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(error = %self.message, "intake request failed");
        } else {
            tracing::debug!(error = %self.message, "intake request rejected");
        }
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

type IntakeResult = Result<(StatusCode, Json<Value>), IntakeError>;

/// Parses a JSON body, naming the position of a syntax error.
fn parse_json(body: &Bytes) -> Result<Value, IntakeError> {
    serde_json::from_slice(body).map_err(|error| {
        IntakeError::invalid(format!(
            "the body is not valid JSON: {error}; send a JSON object"
        ))
    })
}

async fn post_general(State(state): State<Arc<ServiceState>>, body: Bytes) -> IntakeResult {
    let value = parse_json(&body)?;
    let (key, events) = general_events(&value, state.config.allow_unknown)?;
    let count = events.len();
    state.queue(Submission::Events(key, events)).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "accepted_events": count })),
    ))
}

async fn post_integration(State(state): State<Arc<ServiceState>>, body: Bytes) -> IntakeResult {
    let value = parse_json(&body)?;
    let action = value
        .get("Action")
        .and_then(Value::as_str)
        .ok_or_else(|| IntakeError::invalid("Action: missing or not a string"))?;
    check_action(action, state.config.allow_unknown)?;
    let webhook = match value.get("Data") {
        Some(Value::Object(_)) => IntegrationWebhook {
            action: action.to_string(),
            data: value["Data"].clone(),
        },
        Some(_) => return Err(IntakeError::invalid("Data: expected an object")),
        None => lock(&state.generator).integration(action),
    };
    state.queue(Submission::Actions(vec![webhook])).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "accepted_events": 1 }))))
}

/// The body of `/v1/generate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerateRequest {
    /// Realistic General events to generate.
    #[serde(default)]
    count: usize,
    /// Integration actions to generate, one message each.
    #[serde(default)]
    actions: Vec<String>,
}

async fn post_generate(State(state): State<Arc<ServiceState>>, body: Bytes) -> IntakeResult {
    let request: GenerateRequest = serde_json::from_slice(&body).map_err(|error| {
        IntakeError::invalid(format!(
            "invalid generate request: {error}; send {{\"count\": 100, \"actions\": [\"IntegrationCreated\"]}}"
        ))
    })?;
    if request.count > MAX_GENERATE {
        return Err(IntakeError::invalid(format!(
            "count {} is above the limit of {MAX_GENERATE} per call; split it into several calls",
            request.count
        )));
    }
    for action in &request.actions {
        check_action(action, state.config.allow_unknown)?;
    }

    let (events, actions) = {
        let mut generator = lock(&state.generator);
        let events = generator.realistic(request.count);
        let actions: Vec<IntegrationWebhook> = request
            .actions
            .iter()
            .map(|action| generator.integration(action))
            .collect();
        (events, actions)
    };
    let accepted = events.len() + actions.len();
    for (key, group) in group_by_key(events) {
        state.queue(Submission::Events(key, group)).await?;
    }
    if !actions.is_empty() {
        state.queue(Submission::Actions(actions)).await?;
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "accepted_events": accepted })),
    ))
}

async fn post_flush(State(state): State<Arc<ServiceState>>) -> IntakeResult {
    state.submitter.flush().await.map_err(stopped)?;
    Ok((StatusCode::OK, Json(state.status())))
}

async fn get_status(State(state): State<Arc<ServiceState>>) -> Json<Value> {
    Json(state.status())
}

fn stopped(error: crate::sender::Stopped) -> IntakeError {
    IntakeError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: error.to_string(),
    }
}

impl ServiceState {
    /// Returns the ledger's totals plus `events_lagging`, the events the
    /// intake accepted that are still waiting out their lag, and
    /// `events_batching`, those in open batches that are not yet messages.
    fn status(&self) -> Value {
        let counts = self.submitter.counts();
        let submitted = self.submitted_events.load(Ordering::Relaxed);
        let mut status = json!(counts);
        status["events_lagging"] = json!(self.lagging_events.load(Ordering::Relaxed));
        status["events_batching"] = json!(submitted.saturating_sub(counts.events_accepted));
        status
    }

    /// Hands a submission to the engine now, or after a random lag.
    async fn queue(self: &Arc<Self>, submission: Submission) -> Result<(), IntakeError> {
        let Some((low, high)) = self.config.lag else {
            let events = submission.event_count();
            submit(&self.submitter, submission).await.map_err(stopped)?;
            self.submitted_events.fetch_add(events, Ordering::Relaxed);
            return Ok(());
        };

        let lag = {
            let mut rng = rand::rng();
            let millis = rng.random_range(low.as_millis()..=high.as_millis().max(low.as_millis()));
            scale(Duration::from_millis(millis as u64), self.config.time_scale)
        };
        let submitter = self.submitter.clone();
        let mut skip_lag_rx = self.skip_lag_rx.clone();
        let lagging_events = self.lagging_events.clone();
        let submitted_events = self.submitted_events.clone();
        let events = submission.event_count();
        lagging_events.fetch_add(events, Ordering::Relaxed);
        lock(&self.lagged).spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(lag) => {}
                _ = skip_lag_rx.wait_for(|skip| *skip) => {}
            }
            let result = submit(&submitter, submission).await;
            if result.is_ok() {
                submitted_events.fetch_add(events, Ordering::Relaxed);
            }
            lagging_events.fetch_sub(events, Ordering::Relaxed);
            if let Err(error) = result {
                tracing::error!(%error, events, "a lagged submission could not reach the sender");
            }
        });
        Ok(())
    }
}

async fn submit(
    submitter: &Submitter,
    submission: Submission,
) -> Result<(), crate::sender::Stopped> {
    match submission {
        Submission::Events(key, events) => {
            for event in events {
                submitter.event(key, event).await?;
            }
        }
        Submission::Actions(actions) => {
            for webhook in actions {
                submitter.action(webhook).await?;
            }
        }
    }
    Ok(())
}

/// Groups generated events by key, keeping their order within each key.
fn group_by_key(events: Vec<(IntegrationKey, Event)>) -> Vec<(IntegrationKey, Vec<Event>)> {
    let mut groups: Vec<(IntegrationKey, Vec<Event>)> = Vec::new();
    for (key, event) in events {
        match groups.iter_mut().find(|(known, _)| *known == key) {
            Some((_, group)) => group.push(event),
            None => groups.push((key, vec![event])),
        }
    }
    groups
}

fn check_action(action: &str, allow_unknown: bool) -> Result<(), IntakeError> {
    if allow_unknown || is_known_action(action) {
        return Ok(());
    }
    let hint = suggest(action, &ACTIONS)
        .map(|word| format!(" did you mean \"{word}\"?"))
        .unwrap_or_default();
    Err(IntakeError::invalid(format!(
        "unknown action \"{action}\";{hint} start the service with --allow-unknown to send it anyway"
    )))
}

/// Reads a General Webhook body into its key and events.
fn general_events(
    value: &Value,
    allow_unknown: bool,
) -> Result<(IntegrationKey, Vec<Event>), IntakeError> {
    let guid = |field: &str, value: Option<&Value>| -> Result<uuid::Uuid, IntakeError> {
        value
            .and_then(Value::as_str)
            .and_then(|text| uuid::Uuid::parse_str(text).ok())
            .ok_or_else(|| IntakeError::invalid(format!("{field}: missing or not a GUID string")))
    };
    let key = IntegrationKey {
        enterprise_id: guid("EnterpriseId", value.get("EnterpriseId"))?,
        integration_id: guid("IntegrationId", value.get("IntegrationId"))?,
    };
    let list = value
        .get("Events")
        .and_then(Value::as_array)
        .ok_or_else(|| IntakeError::invalid("Events: missing or not an array"))?;

    let mut events = Vec::with_capacity(list.len());
    for (index, item) in list.iter().enumerate() {
        let discriminator = item
            .get("Discriminator")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                IntakeError::invalid(format!(
                    "Events[{index}].Discriminator: missing or not a string"
                ))
            })?;
        if !allow_unknown && !is_known_discriminator(discriminator) {
            let hint = suggest(discriminator, &DISCRIMINATORS)
                .map(|word| format!(" did you mean \"{word}\"?"))
                .unwrap_or_default();
            return Err(IntakeError::invalid(format!(
                "Events[{index}].Discriminator: unknown event type \"{discriminator}\";{hint} \
                 start the service with --allow-unknown to send it anyway"
            )));
        }
        let id = guid(
            &format!("Events[{index}].Value.Id"),
            item.get("Value").and_then(|value| value.get("Id")),
        )?;
        events.push(Event::new(discriminator, id));
    }
    Ok((key, events))
}
