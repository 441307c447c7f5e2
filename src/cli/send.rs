//! `mewshook send`: deliver a set of Mews webhooks and report what
//! happened.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, ValueEnum};
use mewshook::exit;
use mewshook::generator::{Generator, parse_event_counts};
use mewshook::payload::{ACTIONS, WebhookKind, is_known_action, suggest};
use mewshook::send::{RunSettings, SEND_SCHEMA, SendDocument, Traffic, render_summary};
use mewshook::sender::{Notice, Sender};
use tokio::sync::{broadcast, oneshot};

use super::engine::{EngineArgs, Failure, show_url};

/// The maximum number of events one run generates. Every event is held in memory from
/// generation to delivery, by estimate about 200 bytes each with its share
/// of the serialized body, so this keeps a run near 200 MB.
const MAX_EVENTS: usize = 1_000_000;

/// Parses an event count and checks it against [`MAX_EVENTS`].
fn parse_event_total(text: &str) -> Result<usize, String> {
    let count: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("invalid event count \"{text}\": give a whole number"))?;
    if count > MAX_EVENTS {
        return Err(format!(
            "{count} events is above the limit of {MAX_EVENTS} per run; split the traffic into several runs"
        ));
    }
    Ok(count)
}

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
    #[command(flatten)]
    engine: EngineArgs,

    /// General events to send, as counts per discriminator, e.g.
    /// ServiceOrderUpdated=1200,CustomerAdded=3.
    #[arg(long, value_name = "TYPE=N,...")]
    events: Option<String>,

    /// Realistic General events to send when --events is not given
    /// [default: 1200 if nothing else is sent].
    #[arg(long, value_name = "N", conflicts_with = "events", value_parser = parse_event_total)]
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
        Err(failure) => failure.report(),
    }
}

async fn execute(args: SendArgs) -> Result<i32, Failure> {
    let token = args.engine.token()?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let traffic = build_traffic(&args, seed)?;
    let retry = args.engine.retry_policy()?;
    let target = args.engine.target(token).await?;

    let config = args.engine.sender_config(&target, retry);
    let shown_urls = (
        show_url(&config.general_url, &config),
        show_url(&config.integration_url, &config),
    );
    let settings = RunSettings::new(&config, shown_urls, target.receiver.is_some(), seed);

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
    if let Some(receiver) = target.receiver {
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
        let total = counts
            .iter()
            .fold(0usize, |sum, (_, count)| sum.saturating_add(*count));
        parse_event_total(&total.to_string())
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
    let reason = match notice.response_excerpt.as_str() {
        "" => String::new(),
        excerpt => format!(" \"{excerpt}\""),
    };
    eprintln!(
        "message {} ({} events) attempt {}: {}{reason}; {next}",
        notice.id,
        notice.events,
        notice.attempt,
        notice.outcome.describe()
    );
}

fn round_ms(duration: Duration) -> Duration {
    Duration::from_millis(duration.as_millis() as u64)
}
