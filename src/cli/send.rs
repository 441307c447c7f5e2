//! `mewshook send`: deliver a set of Mews webhooks and report what
//! happened.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, ValueEnum};
use mewshook::delivery::DeliveryConfig;
use mewshook::exit;
use mewshook::generator::{Generator, parse_event_counts};
use mewshook::payload::{ACTIONS, WebhookKind, is_known_action, suggest};
use mewshook::receiver::{ReceiverConfig, RunningReceiver};
use mewshook::retry::{DEFAULT_MAX_ATTEMPTS, RetryPolicy, parse_delays};
use mewshook::secret::Redactor;
use mewshook::send::{RunSettings, SEND_SCHEMA, SendDocument, Traffic, render_summary};
use mewshook::sender::Notice;
use mewshook::sender::{Sender, SenderConfig};
use tokio::sync::{broadcast, oneshot};

use super::common::{TokenArgs, parse_duration, parse_http_url, parse_time_scale, resolve_token};

/// Events sent when no --events, --action or --body is given.
const DEFAULT_EVENT_COUNT: usize = 1200;

/// Output formats of `send`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A human-readable summary.
    Text,
    /// One JSON document with every message, attempt and timing.
    Json,
}

/// Arguments of `mewshook send`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  mewshook send
      1200 realistic events and one IntegrationCreated to the embedded receiver
  mewshook send --url https://hooks.example.com/mews --token-file token.txt
  mewshook send --url http://127.0.0.1:8080/ --events ServiceOrderUpdated=1200,CustomerAdded=3
  mewshook send --url http://127.0.0.1:8080/ --action IntegrationCreated --action IntegrationDeleted
  mewshook send --url http://127.0.0.1:8080/ --retry-delays 2m,5m --time-scale 0.001 --output json

Exit codes: 0 all delivered, 1 a message was discarded, 2 invalid input, 3 runtime error.")]
pub struct SendArgs {
    /// Receiver URL for both kinds. Without any URL, an embedded reference
    /// receiver is started on a loopback port.
    #[arg(long, value_parser = parse_http_url)]
    url: Option<url::Url>,

    /// Receiver URL for General Webhooks [default: --url].
    #[arg(long, value_parser = parse_http_url, requires = "integration_url", conflicts_with = "url")]
    general_url: Option<url::Url>,

    /// Receiver URL for Integration Webhooks [default: --url].
    #[arg(long, value_parser = parse_http_url, requires = "general_url", conflicts_with = "url")]
    integration_url: Option<url::Url>,

    #[command(flatten)]
    token: TokenArgs,

    /// General events to send, as counts per discriminator, e.g.
    /// ServiceOrderUpdated=1200,CustomerAdded=3.
    #[arg(long, value_name = "TYPE=N,...")]
    events: Option<String>,

    /// Realistic General events to send when --events is not given
    /// [default: 1200 if nothing else is sent].
    #[arg(long, value_name = "N", conflicts_with = "events")]
    count: Option<usize>,

    /// Allow discriminators Mews does not document in --events, to test a
    /// receiver's tolerance of new types.
    #[arg(long)]
    allow_unknown: bool,

    /// Integration Webhook action to send, one message each (repeatable).
    #[arg(long, value_name = "ACTION")]
    action: Vec<String>,

    /// Send this file byte for byte as one message.
    #[arg(long, value_name = "FILE")]
    body: Option<PathBuf>,

    /// Kind of the --body message, which picks its URL.
    #[arg(long, value_enum, default_value = "general", requires = "body")]
    body_kind: BodyKind,

    /// Enterprise integrations the generated events are spread over.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    enterprises: u32,

    /// Events per General Webhook message; Mews caps batches "in the order
    /// of hundreds".
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    batch_cap: u32,

    /// Deadline of one attempt, covering connect, redirects and the
    /// response body; Mews allows 5 s.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,

    /// Maximum 307/308 redirects followed in one attempt.
    #[arg(long, value_name = "N", default_value_t = 10)]
    max_redirects: usize,

    /// Delays before each retry, in Mews time; the last one repeats
    /// [default: 2m,5m,10m,30m].
    #[arg(long, value_name = "LIST")]
    retry_delays: Option<String>,

    /// Attempts per message, the first included.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_ATTEMPTS, value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: u32,

    /// Factor applied to every Mews-time delay (retries), never to the
    /// deadline; 0.001 turns minutes into milliseconds.
    #[arg(long, value_name = "FACTOR", default_value = "1", value_parser = parse_time_scale)]
    time_scale: f64,

    /// Attempts in flight at once.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    concurrency: u32,

    /// Seed of the event generator [default: random, printed in the
    /// summary].
    #[arg(long, value_name = "N")]
    seed: Option<u64>,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "text")]
    output: OutputFormat,

    /// Do not print a line per failed attempt on stderr.
    #[arg(short, long)]
    quiet: bool,
}

/// Kinds a --body file can be sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BodyKind {
    /// Sent to the General Webhook URL.
    General,
    /// Sent to the Integration Webhook URL.
    Integration,
}

/// Runs `send` and returns the exit code.
pub async fn run(args: SendArgs) -> i32 {
    match execute(args).await {
        Ok(code) => code,
        Err(Failure::Input(message)) => {
            eprintln!("error: {message}");
            exit::INVALID_INPUT
        }
        Err(Failure::Runtime(message)) => {
            eprintln!("error: {message}");
            exit::RUNTIME_ERROR
        }
    }
}

enum Failure {
    Input(String),
    Runtime(String),
}

async fn execute(args: SendArgs) -> Result<i32, Failure> {
    let token = resolve_token(args.token.token.clone(), args.token.token_file.as_deref())
        .map_err(Failure::Input)?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let traffic = build_traffic(&args, seed)?;
    let retry = retry_policy(&args)?;

    // With no URL, the reference receiver stands in for the integrator's.
    let explicit = args.url.clone().or(args.general_url.clone());
    let (receiver, general_url, integration_url) = match explicit {
        Some(url) => {
            let integration = args.integration_url.clone().unwrap_or_else(|| url.clone());
            (None, url, integration)
        }
        None => {
            let config = ReceiverConfig {
                token: token.clone(),
                token_param: args.token.token_param.clone(),
                keep_requests: false,
                ..ReceiverConfig::default()
            };
            let receiver = RunningReceiver::start(config).await.map_err(|error| {
                Failure::Runtime(format!(
                    "failed to start the embedded reference receiver: {error}"
                ))
            })?;
            let url = receiver.url();
            (Some(receiver), url.clone(), url)
        }
    };

    let config = sender_config(&args, general_url, integration_url, token.clone(), retry);
    let redactor = Redactor::new(token.iter());
    let shown_urls = (
        show_url(&config.general_url, &config, &redactor),
        show_url(&config.integration_url, &config, &redactor),
    );
    let settings = RunSettings::new(&config, shown_urls, receiver.is_some(), seed);

    let handle = Sender::start(config).map_err(|error| Failure::Input(error.to_string()))?;
    let (stop_tx, stop_rx) = oneshot::channel();
    let progress = (!args.quiet).then(|| tokio::spawn(print_failures(handle.subscribe(), stop_rx)));
    traffic
        .submit(&handle)
        .await
        .map_err(|error| Failure::Runtime(error.to_string()))?;
    let report = handle.finish().await;
    // Every notice is in the channel once finish returns; let the printer
    // drain them before the summary.
    let _ = stop_tx.send(());
    if let Some(progress) = progress {
        let _ = progress.await;
    }
    if let Some(receiver) = receiver {
        receiver.stop().await;
    }

    match args.output {
        OutputFormat::Text => print!("{}", render_summary(&settings, &report)),
        OutputFormat::Json => {
            let document = SendDocument {
                schema: SEND_SCHEMA,
                settings: &settings,
                report: &report,
            };
            let json = serde_json::to_string_pretty(&document).map_err(|error| {
                Failure::Runtime(format!("failed to write the JSON output: {error}"))
            })?;
            println!("{json}");
        }
    }

    if report.ledger_error.is_some() {
        return Ok(exit::RUNTIME_ERROR);
    }
    if report.counts.messages_discarded > 0 {
        return Ok(exit::FAILURE);
    }
    Ok(exit::SUCCESS)
}

/// Builds what to send from --events, --count, --action and --body.
fn build_traffic(args: &SendArgs, seed: u64) -> Result<Traffic, Failure> {
    let mut generator = Generator::new(seed, args.enterprises as usize);
    let mut traffic = Traffic::default();
    let nothing_chosen = args.events.is_none()
        && args.count.is_none()
        && args.action.is_empty()
        && args.body.is_none();

    if let Some(spec) = &args.events {
        let counts = parse_event_counts(spec, args.allow_unknown)
            .map_err(|error| Failure::Input(format!("--events: {error}")))?;
        traffic.events = generator.from_counts(&counts);
    } else if let Some(count) = args.count {
        traffic.events = generator.realistic(count);
    } else if nothing_chosen {
        traffic.events = generator.realistic(DEFAULT_EVENT_COUNT);
        traffic
            .actions
            .push(generator.integration("IntegrationCreated"));
    }

    for action in &args.action {
        if !is_known_action(action) && !args.allow_unknown {
            let hint = suggest(action, &ACTIONS)
                .map(|word| format!("did you mean \"{word}\"? "))
                .unwrap_or_default();
            return Err(Failure::Input(format!(
                "unknown action \"{action}\" in --action; {hint}the known actions are {}; \
                 pass --allow-unknown to send it anyway",
                ACTIONS.join(", ")
            )));
        }
        traffic.actions.push(generator.integration(action));
    }

    if let Some(path) = &args.body {
        let body = std::fs::read(path).map_err(|error| {
            Failure::Input(format!("failed to read --body {}: {error}", path.display()))
        })?;
        let kind = match args.body_kind {
            BodyKind::General => WebhookKind::General,
            BodyKind::Integration => WebhookKind::Integration,
        };
        let events = count_body_events(&body, kind);
        traffic.raw.push((kind, Bytes::from(body), events));
    }

    if traffic.is_empty() {
        return Err(Failure::Input(
            "nothing to send: the event counts add up to 0; raise a count or add --action"
                .to_string(),
        ));
    }
    Ok(traffic)
}

/// Counts the events a raw body carries, for the ledger: the length of
/// `Events` in a General body, 1 otherwise. A body that is not JSON still
/// counts as one event, because it is still one message to account for.
fn count_body_events(body: &[u8], kind: WebhookKind) -> usize {
    if kind == WebhookKind::Integration {
        return 1;
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| {
            value
                .get("Events")
                .and_then(|events| events.as_array().map(Vec::len))
        })
        .unwrap_or(1)
}

/// Reads and checks the retry flags before anything starts.
fn retry_policy(args: &SendArgs) -> Result<RetryPolicy, Failure> {
    let delays = match &args.retry_delays {
        Some(text) => parse_delays(text).map_err(|error| Failure::Input(error.to_string()))?,
        None => RetryPolicy::default().delays,
    };
    let policy = RetryPolicy {
        delays,
        max_attempts: args.max_attempts,
        time_scale: args.time_scale,
    };
    policy
        .validate()
        .map_err(|error| Failure::Input(error.to_string()))?;
    Ok(policy)
}

fn sender_config(
    args: &SendArgs,
    general_url: url::Url,
    integration_url: url::Url,
    token: Option<String>,
    retry: RetryPolicy,
) -> SenderConfig {
    let mut config = SenderConfig::new(general_url);
    config.integration_url = integration_url;
    config.token = token;
    config.token_param = args.token.token_param.clone();
    config.delivery = DeliveryConfig {
        timeout: args.timeout,
        max_redirects: args.max_redirects,
        ..DeliveryConfig::default()
    };
    config.batch_cap = args.batch_cap as usize;
    config.retry = retry;
    config.concurrency = args.concurrency as usize;
    config
}

/// The URL as the receiver sees it, with the token replaced.
fn show_url(url: &url::Url, config: &SenderConfig, redactor: &Redactor) -> String {
    let full = match &config.token {
        Some(token) => mewshook::delivery::url_with_token(url, &config.token_param, token),
        None => url.clone(),
    };
    redactor.redact(full.as_str())
}

/// Prints one line on stderr per failed attempt, so that a long retry
/// schedule shows what it is waiting for. After `stop_rx` fires it prints
/// what is still buffered and returns.
async fn print_failures(
    mut notices: broadcast::Receiver<Notice>,
    mut stop_rx: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            received = notices.recv() => match received {
                Ok(notice) => print_failure(&notice),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    eprintln!("({missed} attempt notices skipped)");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = &mut stop_rx => break,
        }
    }
    while let Ok(notice) = notices.try_recv() {
        print_failure(&notice);
    }
}

fn print_failure(notice: &Notice) {
    if notice.outcome.is_delivered() {
        return;
    }
    let next = match notice.retry_in {
        Some(delay) => format!("retry in {}", humantime::format_duration(round_ms(delay))),
        None => "discarded".to_string(),
    };
    eprintln!(
        "message {} ({} events) attempt {}: {}; {next}",
        notice.id,
        notice.events,
        notice.attempt,
        notice.outcome.describe()
    );
}

fn round_ms(duration: Duration) -> Duration {
    Duration::from_millis(duration.as_millis() as u64)
}
