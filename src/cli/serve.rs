//! `mewshook serve`: the sender service, which takes events over HTTP and
//! delivers them the way Mews does until it is stopped.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use mewshook::exit;
use mewshook::send::{RunSettings, render_summary};
use mewshook::sender::{Notice, Sender};
use mewshook::service::{Service, ServiceConfig};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, oneshot};

use super::common::parse_duration;
use super::engine::{EngineArgs, Failure, show_url};
use super::signal::StopSignal;

/// Arguments of `mewshook serve`.
#[derive(Debug, Args)]
#[command(after_help = "\
Routes:
  POST /v1/general       a General Webhook body; its events are batched again
  POST /v1/integration   {\"Action\": ..., \"Data\": {...}}; Data is generated when absent
  POST /v1/generate      {\"count\": 100, \"actions\": [\"IntegrationCreated\"]}
  POST /v1/flush         send open batches now
  GET  /v1/status        running totals as JSON
  GET  /healthz          liveness

Examples:
  mewshook serve
      intake on 127.0.0.1:8686, delivering to an embedded reference receiver
  mewshook serve --url http://127.0.0.1:8080/mews --token-file token.txt --lag 2m..5m --time-scale 0.01
  curl -X POST 127.0.0.1:8686/v1/generate -d '{\"count\": 1200}'

Stop with Ctrl-C or SIGTERM: submissions waiting out their lag are sent at
once, and requests in flight and pending retries get --shutdown-grace
before the rest is discarded. A second signal skips the wait.
Exit codes: 0 all delivered, 1 a message was discarded, 2 invalid input, 3 runtime error.")]
pub struct ServeArgs {
    /// Address the intake listens on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8686")]
    listen: SocketAddr,

    #[command(flatten)]
    engine: EngineArgs,

    /// How long an open batch waits for more events before it is sent.
    /// Mews batches events that happen at about the same time.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    batch_window: Duration,

    /// Simulated delay from submission to delivery, in Mews time, as a
    /// range MIN..MAX (Mews: typically 2m..5m) [default: none].
    #[arg(long, value_name = "RANGE", value_parser = parse_lag)]
    lag: Option<(Duration, Duration)>,

    /// Accept discriminators and actions Mews does not document.
    #[arg(long)]
    allow_unknown: bool,

    /// Seed of the generator behind /v1/generate [default: random].
    #[arg(long, value_name = "N")]
    seed: Option<u64>,

    /// Enterprise integrations /v1/generate spreads events over.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    enterprises: u32,

    /// Time pending messages get to finish when the service stops.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    shutdown_grace: Duration,

    /// Do not print a line per attempt on stdout.
    #[arg(short, long)]
    quiet: bool,
}

/// Parses a lag range such as `2m..5m`, or a single duration.
fn parse_lag(text: &str) -> Result<(Duration, Duration), String> {
    let (low, high) = match text.split_once("..") {
        Some((low, high)) => (parse_duration(low)?, parse_duration(high)?),
        None => {
            let lag = parse_duration(text)?;
            (lag, lag)
        }
    };
    if low > high {
        return Err(format!(
            "invalid lag range \"{text}\": the minimum is above the maximum; write it as MIN..MAX, such as 2m..5m"
        ));
    }
    Ok((low, high))
}

/// Runs `serve` until Ctrl-C and returns the exit code.
pub async fn run(args: ServeArgs) -> i32 {
    match execute(args).await {
        Ok(code) => code,
        Err(failure) => failure.report(),
    }
}

async fn execute(args: ServeArgs) -> Result<i32, Failure> {
    let token = args.engine.token()?;
    let retry = args.engine.retry_policy()?;
    let mut stop_signal = StopSignal::new()
        .map_err(|error| Failure::Runtime(format!("failed to listen for stop signals: {error}")))?;
    let listener = TcpListener::bind(args.listen).await.map_err(|error| {
        Failure::Runtime(format!(
            "failed to listen on {}: {error}; pick another address with --listen",
            args.listen
        ))
    })?;
    let target = args.engine.target(token).await?;

    let mut config = args.engine.sender_config(&target, retry);
    config.batch_window = Some(args.batch_window);
    // A service runs for days: keep counters, not every attempt.
    config.keep_records = false;
    let seed = args.seed.unwrap_or_else(rand::random);
    let settings = RunSettings::new(
        &config,
        (
            show_url(&config.general_url, &config),
            show_url(&config.integration_url, &config),
        ),
        target.receiver.is_some(),
        seed,
    );
    let service_config = ServiceConfig {
        allow_unknown: args.allow_unknown,
        lag: args.lag,
        time_scale: config.retry.time_scale,
        seed,
        enterprises: args.enterprises as usize,
    };

    let handle = Sender::start(config).map_err(|error| Failure::Input(error.to_string()))?;
    let printer = (!args.quiet).then(|| tokio::spawn(print_attempts(handle.subscribe())));
    let service = Service::new(service_config, handle);
    let address = listener
        .local_addr()
        .map_err(|error| Failure::Runtime(format!("failed to read the bound address: {error}")))?;
    println!(
        "listening on http://{address}/ and delivering to {}",
        settings.general_url
    );
    tracing::info!(%address, "sender service started");

    // The first Ctrl-C or SIGTERM stops the intake. Requests in flight get
    // the shutdown grace, because a stalled client must not keep the
    // service alive, and a second signal ends every wait at once.
    let (intake_stop_tx, intake_stop_rx) = oneshot::channel::<()>();
    let intake = axum::serve(listener, service.router())
        .with_graceful_shutdown(async {
            let _ = intake_stop_rx.await;
        })
        .into_future();
    tokio::pin!(intake);
    tokio::select! {
        served = &mut intake => log_intake_end(served),
        () = stop_signal.recv() => {}
    }
    let _ = intake_stop_tx.send(());
    println!(
        "stopping: waiting up to {} for pending messages (stop again to skip the wait)",
        humantime::format_duration(args.shutdown_grace)
    );
    let mut hurried = false;
    tokio::select! {
        served = &mut intake => log_intake_end(served),
        () = tokio::time::sleep(args.shutdown_grace) => {
            tracing::warn!("intake requests still in flight after the grace; stopping without them");
        }
        () = stop_signal.recv() => hurried = true,
    }

    let give_up = async {
        if hurried {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(args.shutdown_grace) => {}
            () = stop_signal.recv() => {}
        }
    };
    let report = service.shutdown(give_up).await;
    if let Some(printer) = printer {
        printer.abort();
    }
    if let Some(receiver) = target.receiver {
        receiver.stop().await;
    }
    print!("{}", render_summary(&settings, &report));
    tracing::info!("sender service stopped");

    if report.ledger_error.is_some() {
        return Ok(exit::RUNTIME_ERROR);
    }
    if report.counts.messages_discarded > 0 {
        return Ok(exit::FAILURE);
    }
    Ok(exit::SUCCESS)
}

fn log_intake_end(served: std::io::Result<()>) {
    if let Err(error) = served {
        tracing::error!(%error, "the intake stopped with an error");
    }
}

/// Prints one line per attempt on stdout.
async fn print_attempts(mut notices: broadcast::Receiver<Notice>) {
    loop {
        match notices.recv().await {
            Ok(notice) => {
                let next = match notice.retry_in {
                    Some(delay) => format!(
                        "; retry in {}",
                        humantime::format_duration(Duration::from_millis(delay.as_millis() as u64))
                    ),
                    None if !notice.outcome.is_delivered() => "; discarded".to_string(),
                    None => String::new(),
                };
                let reason = match notice.response_excerpt.as_str() {
                    _ if notice.outcome.is_delivered() => String::new(),
                    "" => String::new(),
                    excerpt => format!(" \"{excerpt}\""),
                };
                println!(
                    "message {} {} ({} events) attempt {}: {}{reason} in {:.1} ms{next}",
                    notice.id,
                    notice.kind,
                    notice.events,
                    notice.attempt,
                    notice.outcome.describe(),
                    notice.total.as_secs_f64() * 1000.0
                );
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                println!("({missed} attempt lines skipped)");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
