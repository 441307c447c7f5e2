//! `mewshook bench`: a latency benchmark of a webhook receiver, sending
//! real Mews messages on the sender's transport rules.
//!
//! A run flows through these modules:
//!
//! - [`bodies`]: the pool of General or Integration bodies, generated
//!   before the load starts;
//! - [`client`], [`raw`] and [`hyper_client`]: the HTTP clients, one
//!   connection per worker;
//! - [`load`]: the workers in closed or open loop, and the collector; a
//!   private `pacer` releases open-loop requests as they fall due;
//! - [`schedule`]: the open-loop arithmetic of intended send times and
//!   lag;
//! - [`stats`]: HDR histograms, counters and the bounded time series;
//! - [`thresholds`]: `--fail-if` parsing and evaluation;
//! - [`report`], [`json`], [`html`]: the terminal summary, the JSON
//!   document and the self-contained HTML page;
//! - [`stall`]: a receiver wrapper that stalls on a fixed period, to show
//!   what open loop measures and closed loop hides.
//!
//! [`run`] ties them together.

pub mod bodies;
pub mod client;
pub mod html;
pub mod hyper_client;
pub mod json;
pub mod load;
mod pacer;
pub mod raw;
pub mod report;
pub mod schedule;
pub mod stall;
pub mod stats;
pub mod thresholds;

use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use url::Url;

use crate::delivery::{DeliveryConfig, url_with_token};
use crate::secret::Redactor;
use bodies::{BodyPool, BodySource};
use client::{DeliveryTransport, TargetError};
use hyper_client::HyperTransport;
use load::{Control, LoadPlan};
use raw::RawTransport;

use report::{BenchReport, BenchSettings};
use stall::StallPlan;
use thresholds::Threshold;

/// The Mews deadline: a response later than this is retried by Mews, so the
/// benchmark counts it as a deadline breach whatever `--timeout` is.
pub const MEWS_DEADLINE: Duration = Duration::from_secs(5);

/// The HTTP client that sends the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// [`Engine::Raw`] for `http://` targets, [`Engine::Delivery`] for
    /// `https://`.
    Auto,
    /// The minimal HTTP/1.1 client of [`raw`], `http://` only.
    Raw,
    /// hyper 1 from [`hyper_client`], one HTTP/1.1 connection per worker,
    /// `http://` only.
    Hyper,
    /// The `send` path: reqwest, 307/308 followed, TLS.
    Delivery,
}

impl Engine {
    /// Picks the client for `url`.
    pub fn resolve(self, url: &Url) -> Result<Engine, BenchError> {
        match (self, url.scheme()) {
            (Engine::Auto, "https") => Ok(Engine::Delivery),
            (Engine::Auto, _) => Ok(Engine::Raw),
            (Engine::Raw | Engine::Hyper, "https") => Err(BenchError::Input(format!(
                "--client {} speaks plain HTTP only; use --client delivery (or leave \
                 --client out) for an https:// URL",
                self.name()
            ))),
            (engine, _) => Ok(engine),
        }
    }

    /// Returns the name used in flags and output.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Auto => "auto",
            Engine::Raw => "raw",
            Engine::Hyper => "hyper",
            Engine::Delivery => "delivery",
        }
    }
}

/// Everything a benchmark run needs. Its `Debug` output shows whether a
/// token is set, never the token.
#[derive(Clone)]
pub struct BenchConfig {
    /// The receiver URL, without the token.
    pub url: Url,
    /// The secret appended to the URL, if any.
    pub token: Option<String>,
    /// The query parameter carrying the token; Mews uses `Token`.
    pub token_param: String,
    /// Whether the target is the embedded reference receiver, for the
    /// report.
    pub embedded_receiver: bool,
    /// The stall the embedded receiver was started with, for the report.
    pub stall: Option<StallPlan>,
    /// The client that sends.
    pub engine: Engine,
    /// Pacing, limits and rules.
    pub plan: LoadPlan,
    /// The deadline, idle timeout and response cap of every request.
    pub delivery: DeliveryConfig,
    /// The source of the bodies.
    pub source: BodySource,
    /// The path of a fixed body, for the report.
    pub body_file: Option<String>,
    /// Distinct bodies to generate.
    pub pool_size: usize,
    /// The generator seed.
    pub seed: u64,
    /// `--fail-if` thresholds.
    pub thresholds: Vec<Threshold>,
}

impl std::fmt::Debug for BenchConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redactor = Redactor::for_target(self.token.as_deref(), &self.token_param, [&self.url]);
        f.debug_struct("BenchConfig")
            .field("url", &redactor.redact_url(self.url.as_str()))
            .field(
                "token",
                &self.token.as_ref().map(|_| crate::secret::PLACEHOLDER),
            )
            .field("token_param", &self.token_param)
            .field("embedded_receiver", &self.embedded_receiver)
            .field("stall", &self.stall)
            .field("engine", &self.engine)
            .field("plan", &self.plan)
            .field("delivery", &self.delivery)
            .field("source", &self.source)
            .field("body_file", &self.body_file)
            .field("pool_size", &self.pool_size)
            .field("seed", &self.seed)
            .field("thresholds", &self.thresholds)
            .finish()
    }
}

/// A reason a run could not start or finish. A failing receiver is not an
/// error: its failures are counted in the report.
#[derive(Debug, Error)]
pub enum BenchError {
    /// The configuration cannot run.
    #[error("{0}")]
    Input(String),
    /// The target cannot be reached at all.
    #[error("cannot connect to {url}: {cause}; start the receiver or check --url")]
    Unreachable {
        /// The URL, redacted.
        url: String,
        /// Why, redacted.
        cause: String,
    },
    /// The target could not be prepared.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// Something failed inside the benchmark itself.
    #[error("{0}")]
    Runtime(String),
}

/// Runs a benchmark and returns its report, with thresholds evaluated.
/// `control` stops the run early and publishes its live view.
pub async fn run(config: &BenchConfig, control: &Control) -> Result<BenchReport, BenchError> {
    let redactor =
        Redactor::for_target(config.token.as_deref(), &config.token_param, [&config.url]);
    if config.token.is_some() && config.token_param.is_empty() {
        return Err(BenchError::Input(
            "--token-param is empty; give a query parameter name such as Token".to_string(),
        ));
    }
    let engine = config.engine.resolve(&config.url)?;
    let target = match &config.token {
        Some(token) => url_with_token(&config.url, &config.token_param, token),
        None => config.url.clone(),
    };

    // Generating thousands of events can take a while, and must not hold
    // up the runtime's other tasks (the embedded receiver among them).
    let source = config.source.clone();
    let (size, seed) = (config.pool_size, config.seed);
    let pool = tokio::task::spawn_blocking(move || BodyPool::generate(&source, size, seed))
        .await
        .map_err(|error| BenchError::Runtime(format!("failed to generate the bodies: {error}")))?;

    let started_at = chrono::Utc::now();
    let settings = BenchSettings::new(config, engine, &pool, &redactor.redact_url(target.as_str()));
    let bodies = pool.bodies().to_vec();
    let result = match engine {
        Engine::Delivery => {
            let transport =
                DeliveryTransport::new(&target, bodies, &config.delivery, redactor.clone())?;
            probe(&target, &config.delivery, &redactor).await?;
            load::drive(&config.plan, Arc::new(transport), control).await
        }
        Engine::Hyper => {
            let transport =
                HyperTransport::new(&target, bodies, &config.delivery, redactor.clone()).await?;
            probe(&target, &config.delivery, &redactor).await?;
            load::drive(&config.plan, Arc::new(transport), control).await
        }
        Engine::Raw | Engine::Auto => {
            let transport =
                RawTransport::new(&target, bodies, &config.delivery, redactor.clone()).await?;
            probe(&target, &config.delivery, &redactor).await?;
            load::drive(&config.plan, Arc::new(transport), control).await
        }
    };

    Ok(BenchReport::new(
        settings,
        started_at,
        result,
        &config.thresholds,
    ))
}

/// Opens one TCP connection to the target before the load starts, so
/// that a receiver that is not running fails the run at once with one
/// clear message instead of filling it with connection errors.
async fn probe(
    url: &Url,
    delivery: &DeliveryConfig,
    redactor: &Redactor,
) -> Result<(), BenchError> {
    let shown = redactor.redact_url(url.as_str());
    let unreachable = |cause: String| BenchError::Unreachable {
        url: shown.clone(),
        cause: redactor.redact(&cause),
    };
    let host = url
        .host_str()
        .ok_or_else(|| unreachable("the URL has no host".to_string()))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_or_known_default().unwrap_or(80);
    let connect = tokio::net::TcpStream::connect((host, port));
    match tokio::time::timeout(delivery.timeout, connect).await {
        Ok(Ok(_stream)) => Ok(()),
        Ok(Err(error)) => Err(unreachable(error.to_string())),
        Err(_elapsed) => Err(unreachable(format!(
            "no connection within {}",
            humantime::format_duration(delivery.timeout)
        ))),
    }
}
