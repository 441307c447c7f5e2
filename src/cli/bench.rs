//! `mewshook bench`: measure a receiver's latency under Mews traffic.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mewshook::bench::bodies::{BodySource, DEFAULT_POOL_SIZE, EventsPerMessage};
use mewshook::bench::load::{Control, Limit, LoadPlan, Mode, Pacing};
use mewshook::bench::schedule::{DEFAULT_LATE_AFTER, validate_rate};
use mewshook::bench::stall::{StallPlan, StallingReceiver};
use mewshook::bench::stats::{Live, RecordRules};
use mewshook::bench::thresholds::Threshold;
use mewshook::bench::{BenchConfig, BenchError, Engine, MEWS_DEADLINE};
use mewshook::delivery::DeliveryConfig;
use mewshook::exit;
use mewshook::receiver::{ReceiverConfig, RunningReceiver};

use super::common::{TokenArgs, parse_duration, parse_http_url, resolve_token};

/// Arguments of `mewshook bench`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  mewshook bench --duration 10s
      closed loop against the embedded reference receiver
  mewshook bench --url http://127.0.0.1:8080/hooks --token-file token.txt --concurrency 16
  mewshook bench --url http://127.0.0.1:8080/hooks --rate 500 --duration 1m --json bench.json --html bench.html
      open loop: 500 messages per second, latency measured from each intended send time
  mewshook bench --url http://127.0.0.1:8080/hooks --events-per-message 1..200 --fail-if 'p99>200ms' --fail-if 'breaches>0'
  mewshook bench --rate 1000 --stall-for 200ms --stall-every 5s --duration 30s
      open loop against an embedded receiver that stalls, to see the stall in the percentiles

Exit codes: 0 done, 2 invalid input, 3 runtime error (such as an unreachable receiver),
4 a --fail-if threshold was crossed. Failed requests alone do not change the exit code;
use --fail-if 'errors>0' for that.")]
pub struct BenchArgs {
    /// Receiver URL. Without it, the embedded reference receiver is started
    /// on a loopback port.
    #[arg(long, value_parser = parse_http_url)]
    url: Option<url::Url>,

    #[command(flatten)]
    token: TokenArgs,

    /// Kind of generated message.
    #[arg(long, value_enum, default_value = "general")]
    kind: KindArg,

    /// Events per General message: a count, or a range N..M (both ends
    /// included) drawn per message [default: 10].
    #[arg(long, value_name = "N|N..M")]
    events_per_message: Option<EventsPerMessage>,

    /// Enterprise integrations the General messages are spread over.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    enterprises: u32,

    /// Send this file byte for byte as every message instead of generated
    /// ones.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["events_per_message", "kind"])]
    body: Option<PathBuf>,

    /// Distinct bodies generated before the run; requests cycle through
    /// them.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_POOL_SIZE, value_parser = parse_pool)]
    pool: usize,

    /// Seed of the body generator [default: random, shown in the report].
    #[arg(long, value_name = "N")]
    seed: Option<u64>,

    /// Connections, each with one request in flight; in open loop, the
    /// maximum number of requests in flight.
    #[arg(short, long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    concurrency: u32,

    /// Load-generator threads, each with its own event loop and a share
    /// of the connections [default: the CPUs this process may use].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: Option<u32>,

    /// Open loop: messages per second, sent on schedule whatever the
    /// receiver does. Without it, the run is closed loop.
    #[arg(long, value_name = "PER_SECOND", value_parser = parse_rate)]
    rate: Option<f64>,

    /// How long to measure, after the warmup [default: 10s].
    #[arg(short, long, value_name = "DURATION", value_parser = parse_positive_duration, conflicts_with = "requests")]
    duration: Option<Duration>,

    /// Measure this many requests instead of a duration.
    #[arg(short = 'n', long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    requests: Option<u64>,

    /// Time spent sending before measuring; those requests are not counted.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,

    /// Deadline of one request, covering connect and the response body;
    /// Mews allows 5 s.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_positive_duration)]
    timeout: Duration,

    /// Open loop: a send leaving later than this after its intended time
    /// counts as late.
    #[arg(long, value_name = "DURATION", default_value = "2ms", value_parser = parse_duration, requires = "rate")]
    late_after: Duration,

    /// HTTP client that sends the requests.
    #[arg(long, value_enum, default_value = "auto")]
    client: ClientArg,

    /// Write the JSON report to this file (schema mewshook.bench.v1).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,

    /// Write a self-contained HTML report with charts to this file.
    #[arg(long, value_name = "PATH")]
    html: Option<PathBuf>,

    /// Exit with code 4 when this holds, e.g. 'p99>200ms', 'errors>1%',
    /// 'breaches>0' (repeatable).
    #[arg(long, value_name = "EXPR", value_parser = parse_threshold)]
    fail_if: Vec<Threshold>,

    /// Demonstration: make the embedded receiver hold every response for this
    /// long once per --stall-every.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "stall_every", conflicts_with = "url")]
    stall_for: Option<Duration>,

    /// Demonstration: the period of the embedded receiver's stalls.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "stall_for", conflicts_with = "url")]
    stall_every: Option<Duration>,
}

/// Kinds of generated message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum KindArg {
    /// General Webhooks, batched events.
    General,
    /// Integration Webhooks, one action each.
    Integration,
}

/// HTTP clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ClientArg {
    /// raw for http://, the send path for https://.
    Auto,
    /// A minimal HTTP/1.1 client, one write per request; http:// only.
    Raw,
    /// hyper 1, one HTTP/1.1 connection per worker; http:// only.
    Hyper,
    /// The send path: reqwest, 307/308 followed, TLS.
    Delivery,
}

/// Returns the number of CPUs this process may run on, which `taskset`
/// narrows.
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |count| count.get())
}

fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text.trim().parse().map_err(|_| {
        format!("invalid rate \"{text}\": give messages per second such as 500 or 0.5")
    })?;
    validate_rate(rate)?;
    Ok(rate)
}

fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!(
            "invalid duration \"{text}\": it must be longer than zero"
        ));
    }
    Ok(duration)
}

fn parse_pool(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(size) if (1..=1_000_000).contains(&size) => Ok(size),
        _ => Err(format!(
            "invalid pool size \"{text}\": give a number of bodies from 1 to 1000000"
        )),
    }
}

fn parse_threshold(text: &str) -> Result<Threshold, String> {
    mewshook::bench::thresholds::parse(text)
}

/// Runs `bench` and returns the exit code.
pub async fn run(args: BenchArgs) -> i32 {
    match execute(args).await {
        Ok(code) => code,
        Err(BenchError::Input(message)) => {
            eprintln!("error: {message}");
            exit::INVALID_INPUT
        }
        Err(error) => {
            eprintln!("error: {error}");
            exit::RUNTIME_ERROR
        }
    }
}

async fn execute(args: BenchArgs) -> Result<i32, BenchError> {
    let token = resolve_token(args.token.token.clone(), args.token.token_file.as_deref())
        .map_err(BenchError::Input)?;
    let stall = match (args.stall_for, args.stall_every) {
        (Some(length), Some(every)) => {
            Some(StallPlan::new(every, length).map_err(BenchError::Input)?)
        }
        _ => None,
    };
    for path in [&args.json, &args.html].into_iter().flatten() {
        check_output_path(path)?;
    }
    let mut config = bench_config(&args, token.clone(), stall)?;

    // With no URL, the reference receiver takes the place of the
    // integrator's.
    let receiver = match &args.url {
        Some(_) => Embedded::None,
        None => start_embedded(&config, stall).await?,
    };
    if let Some(url) = receiver.url() {
        config.url = url;
    }

    let control = Control::new();
    let progress = show_progress().then(|| spawn_progress(&control));
    let interrupt = tokio::spawn(stop_on_interrupt(control.clone()));
    let outcome = mewshook::bench::run(&config, &control).await;
    interrupt.abort();
    if let Some(progress) = progress {
        progress.abort();
        let _ = progress.await;
    }
    receiver.stop().await;
    let report = outcome?;

    print!("{}", report.summary());
    if let Some(path) = &args.json {
        let json = mewshook::bench::json::render(&report).map_err(BenchError::Runtime)?;
        write_output(path, "--json", json.as_bytes())?;
    }
    if let Some(path) = &args.html {
        let html = mewshook::bench::html::render(&report);
        write_output(path, "--html", html.as_bytes())?;
    }
    if report.thresholds_crossed() {
        return Ok(exit::THRESHOLD_CROSSED);
    }
    Ok(exit::SUCCESS)
}

/// Builds the library configuration from the flags; `url` is a
/// placeholder until the embedded receiver has a port.
fn bench_config(
    args: &BenchArgs,
    token: Option<String>,
    stall: Option<StallPlan>,
) -> Result<BenchConfig, BenchError> {
    let mode = match args.rate {
        Some(rate) => Mode::Open { rate },
        None => Mode::Closed,
    };
    if mode == Mode::Closed
        && let Some(threshold) = args.fail_if.iter().find(|t| t.needs_open_loop())
    {
        return Err(BenchError::Input(format!(
            "--fail-if '{threshold}' needs an open-loop run: add --rate, or drop the threshold"
        )));
    }
    if args.kind == KindArg::Integration && args.events_per_message.is_some() {
        return Err(BenchError::Input(
            "--events-per-message applies to General messages; drop it or use --kind general"
                .to_string(),
        ));
    }

    let (source, body_file) = match &args.body {
        Some(path) => {
            let body = std::fs::read(path).map_err(|error| {
                BenchError::Input(format!("failed to read --body {}: {error}", path.display()))
            })?;
            (
                BodySource::Fixed(Bytes::from(body)),
                Some(path.display().to_string()),
            )
        }
        None => match args.kind {
            KindArg::General => (
                BodySource::General {
                    events: args.events_per_message.unwrap_or_default(),
                    enterprises: args.enterprises,
                },
                None,
            ),
            KindArg::Integration => (BodySource::Integration, None),
        },
    };
    let limit = match (args.requests, args.duration) {
        (Some(count), _) => Limit::Requests(count),
        (None, Some(duration)) => Limit::Duration(duration),
        (None, None) => Limit::Duration(Duration::from_secs(10)),
    };
    let url = match &args.url {
        Some(url) => url.clone(),
        None => url::Url::parse("http://127.0.0.1/").expect("a constant URL parses"),
    };

    Ok(BenchConfig {
        url,
        token,
        token_param: args.token.token_param.clone(),
        embedded_receiver: args.url.is_none(),
        stall,
        engine: match args.client {
            ClientArg::Auto => Engine::Auto,
            ClientArg::Raw => Engine::Raw,
            ClientArg::Hyper => Engine::Hyper,
            ClientArg::Delivery => Engine::Delivery,
        },
        plan: LoadPlan {
            mode,
            limit,
            warmup: args.warmup,
            concurrency: args.concurrency as usize,
            rules: RecordRules {
                deadline: MEWS_DEADLINE,
                late_after: if args.rate.is_some() {
                    args.late_after
                } else {
                    DEFAULT_LATE_AFTER
                },
            },
            pacing: Pacing::Thread,
            threads: args
                .threads
                .map_or_else(default_threads, |threads| threads as usize),
        },
        delivery: DeliveryConfig {
            timeout: args.timeout,
            ..DeliveryConfig::default()
        },
        source,
        body_file,
        pool_size: args.pool,
        seed: args.seed.unwrap_or_else(rand::random),
        thresholds: args.fail_if.clone(),
    })
}

/// Fails before the run, not after it, when a report cannot be written.
fn check_output_path(path: &Path) -> Result<(), BenchError> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(BenchError::Input(format!(
            "cannot write {}: the directory {} does not exist; create it or choose another path",
            path.display(),
            parent.display()
        )));
    }
    Ok(())
}

fn write_output(path: &Path, flag: &str, bytes: &[u8]) -> Result<(), BenchError> {
    std::fs::write(path, bytes).map_err(|error| {
        BenchError::Runtime(format!(
            "failed to write {flag} {}: {error}",
            path.display()
        ))
    })
}

/// The embedded receiver, plain or stalling, or none.
enum Embedded {
    None,
    Plain(RunningReceiver),
    Stalling(StallingReceiver),
}

impl Embedded {
    fn url(&self) -> Option<url::Url> {
        match self {
            Embedded::None => None,
            Embedded::Plain(receiver) => Some(receiver.url()),
            Embedded::Stalling(receiver) => Some(receiver.url()),
        }
    }

    async fn stop(self) {
        match self {
            Embedded::None => {}
            Embedded::Plain(receiver) => receiver.stop().await,
            Embedded::Stalling(receiver) => receiver.stop().await,
        }
    }
}

async fn start_embedded(
    config: &BenchConfig,
    stall: Option<StallPlan>,
) -> Result<Embedded, BenchError> {
    // Quiet and without request records, so that the receiver's hot path
    // is validation and counters only.
    let receiver_config = ReceiverConfig {
        token: config.token.clone(),
        token_param: config.token_param.clone(),
        keep_requests: false,
        ..ReceiverConfig::default()
    };
    let failed = |error: std::io::Error| {
        BenchError::Runtime(format!(
            "failed to start the embedded reference receiver: {error}"
        ))
    };
    match stall {
        Some(plan) => StallingReceiver::start(receiver_config, plan)
            .await
            .map(Embedded::Stalling)
            .map_err(failed),
        None => RunningReceiver::start(receiver_config)
            .await
            .map(Embedded::Plain)
            .map_err(failed),
    }
}

/// Decides whether to show the live line. It is for a person watching,
/// so it stays off when the output goes to a file or a CI log.
fn show_progress() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("CI").is_none()
}

fn spawn_progress(control: &Control) -> tokio::task::JoinHandle<()> {
    let mut live = control.subscribe();
    tokio::spawn(async move {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{spinner} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        // The bar is cleared when the task is aborted at the end of the run.
        let _clear = ClearOnDrop(bar.clone());
        while live.changed().await.is_ok() {
            let view = live.borrow_and_update().clone();
            bar.set_message(progress_line(&view));
        }
    })
}

struct ClearOnDrop(ProgressBar);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

fn progress_line(view: &Live) -> String {
    if view.warming_up {
        return format!("warming up {:.0}s", view.elapsed.as_secs_f64());
    }
    let p99 = match view.p99 {
        Some(p99) => format!("{:.3} ms", p99.as_secs_f64() * 1000.0),
        None => "-".to_string(),
    };
    format!(
        "{:.0}s  {:.0}/s  p99 {p99}  {} requests  {} errors",
        view.elapsed.as_secs_f64(),
        view.rate,
        view.requests,
        view.errors
    )
}

/// Stops the run on the first Ctrl-C, so that the report still covers
/// what was measured; a second one quits at once.
async fn stop_on_interrupt(control: Control) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    eprintln!("stopping: waiting for the requests in flight; press Ctrl-C again to quit now");
    control.stop();
    if tokio::signal::ctrl_c().await.is_ok() {
        std::process::exit(130);
    }
}
