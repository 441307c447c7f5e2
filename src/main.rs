//! The `mewshook` command line: parses arguments, sets up diagnostics on
//! stderr, calls the library and maps the outcome to an exit code.

mod cli;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Plays the Mews side of Mews Connector API webhooks, so that a webhook
/// receiver can be tested before Mews ever calls it.
#[derive(Debug, Parser)]
#[command(name = "mewshook", version, propagate_version = true)]
#[command(after_help = "\
Exit codes:
  0  success: every message delivered, every check passed
  1  the receiver fell short: a message discarded or a check failed
  2  invalid input: a bad flag, scenario or body file
  3  runtime error, for example a port that cannot be bound
  4  bench: a --fail-if threshold was crossed")]
struct Cli {
    /// Log more on stderr: -v for debug, -vv for trace. RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

// The arguments are parsed once per process, so the size of the largest
// variant costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Send Mews webhooks to a receiver, as Mews would.
    Send(cli::send::SendArgs),
    /// Take events over HTTP and deliver them as Mews would, until stopped.
    Serve(cli::serve::ServeArgs),
    /// Run the reference receiver, the default target of every command.
    Receive(cli::receive::ReceiveArgs),
    /// Run the receiver conformance suite and write CI reports.
    Run(cli::run::RunArgs),
    /// Measure a receiver's latency under Mews webhook load.
    Bench(cli::bench::BenchArgs),
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            // Help and version go to stdout with code 0.
            let _ = error.print();
            std::process::exit(error.exit_code());
        }
        Err(error) => {
            // Usage errors exit with code 2, our invalid-input code. clap
            // repeats the rejected value, which may be a URL that carries
            // the token, so the message is redacted first.
            let redactor = argument_redactor(std::env::args().collect());
            eprint!(
                "{}",
                redactor.redact_text_with_urls(&error.render().to_string())
            );
            std::process::exit(error.exit_code());
        }
    };
    init_tracing(cli.verbose);

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: failed to start the async runtime: {error}");
            std::process::exit(mewshook::exit::RUNTIME_ERROR);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Send(args) => cli::send::run(args).await,
            Command::Serve(args) => cli::serve::run(args).await,
            Command::Receive(args) => cli::receive::run(args).await,
            Command::Run(args) => cli::run::run(args).await,
            Command::Bench(args) => cli::bench::run(args).await,
        }
    });
    std::process::exit(code);
}

/// Builds a redactor from the raw arguments, for messages printed before
/// they are parsed: it hides `--token` values and the values of `Token`
/// and any `--token-param` parameter.
fn argument_redactor(args: Vec<String>) -> mewshook::secret::Redactor {
    let mut redactor = mewshook::secret::Redactor::default();
    redactor.add_param("Token");
    let mut previous: Option<&str> = None;
    for arg in &args {
        match (previous, arg.split_once('=')) {
            (Some("--token"), _) => redactor.add(arg),
            (Some("--token-param"), _) => redactor.add_param(arg),
            (_, Some(("--token", value))) => redactor.add(value),
            (_, Some(("--token-param", value))) => redactor.add_param(value),
            _ => {}
        }
        previous = Some(arg.as_str());
    }
    redactor
}

/// Sends diagnostics to stderr, at `warn` by default.
fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "mewshook=debug,info",
        _ => "mewshook=trace,debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
