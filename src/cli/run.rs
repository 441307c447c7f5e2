//! `mewshook run`: run the receiver conformance suite and write CI
//! reports.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use mewshook::conformance::{
    CheckReport, NameFilter, RunOptions, Runner, RunnerError, SuiteReport, Target, selects,
    start_embedded_receiver,
};
use mewshook::exit;
use mewshook::report::{ReportKind, ReportRequest, json, junit, terminal};
use mewshook::scenario::{self, LoadOutcome, Scenario};

use super::common::{TokenArgs, parse_duration, parse_http_url, resolve_token};
use super::signal::StopSignal;

/// Arguments of `mewshook run`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  mewshook run
      the whole suite against the embedded reference receiver
  mewshook run --url https://hooks.example.com/mews --token-file token.txt
  mewshook run --url http://127.0.0.1:8080/ --filter token --report junit=conformance.xml
  mewshook run --general-url http://127.0.0.1:8080/general --integration-url http://127.0.0.1:8080/integration
  mewshook run my-scenarios/ scenarios/conformance/11-missing-token.toml --list

Without PATH, run reads scenarios/ when that folder exists and the built-in
conformance suite otherwise. Checks 11-13 need the receiver's token; without
one they are reported as skipped. A token in the URL (?Token=...) is taken
out of it and used as the token.

Exit codes:
  0  every check passed (warnings and skips allowed)
  1  a check failed
  2  invalid input: a bad flag or scenario file, or no check matches --filter
  3  runtime error, for example the embedded receiver cannot bind a port or a
     report cannot be written, or the run was interrupted

Ctrl-C (or SIGTERM) stops the run between checks: the check in progress is
abandoned, the summary and the reports cover the finished checks and say
that the run was interrupted, and run exits with 3.")]
pub struct RunArgs {
    /// Scenario files or folders; folders are searched recursively for
    /// *.toml [default: scenarios/, or the built-in suite].
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,

    /// Receiver URL for both kinds. Without any URL, an embedded reference
    /// receiver is started on a loopback port with a generated token.
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

    /// Print each check's name, severity and summary, then exit without
    /// sending anything.
    #[arg(long)]
    list: bool,

    /// Run only checks whose name contains PATTERN, or matches it whole as
    /// a glob when it has * or ?, ignoring case (repeatable: a check runs
    /// when any pattern matches).
    #[arg(long, value_name = "PATTERN")]
    filter: Vec<String>,

    /// Deadline of one attempt, covering connect, redirects and the
    /// response body; at least 1ms. Mews allows 5 s.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,

    /// Maximum 307/308 redirects followed in one attempt.
    #[arg(long, value_name = "N", default_value_t = 10)]
    max_redirects: usize,

    /// Seed of generated ids and event mixes; the same seed sends the same
    /// General Webhook bodies.
    #[arg(long, value_name = "N", default_value_t = 1)]
    seed: u64,

    /// Write a report: junit=PATH for JUnit XML or json=PATH for JSON
    /// (repeatable).
    #[arg(long, value_name = "KIND=PATH")]
    report: Vec<ReportRequest>,
}

/// Runs `run` and returns the exit code.
pub async fn run(args: RunArgs) -> i32 {
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

async fn execute(args: RunArgs) -> Result<i32, Failure> {
    let token = resolve_token(args.token.token.clone(), args.token.token_file.as_deref())
        .map_err(Failure::Input)?;
    if args.token.token_param.is_empty() {
        return Err(Failure::Input(
            "--token-param is empty; give a query parameter name such as Token".to_string(),
        ));
    }
    if args.timeout < Duration::from_millis(1) {
        return Err(Failure::Input(format!(
            "--timeout {} is below 1 ms, too short for any response; give a deadline such as 5s",
            humantime::format_duration(args.timeout)
        )));
    }
    let scenarios = select(load_scenarios(&args.paths)?, &args.filter)?;
    if args.list {
        print!("{}", terminal::list(&scenarios));
        return Ok(exit::SUCCESS);
    }
    check_report_folders(&args.report)?;

    let (target, receiver) = match args.url.clone().or(args.general_url.clone()) {
        Some(url) => {
            let integration_url = args.integration_url.clone().unwrap_or_else(|| url.clone());
            let target = Target::from_urls(&url, &integration_url, token, &args.token.token_param)
                .map_err(|error| Failure::Input(error.to_string()))?;
            (target, None)
        }
        None => {
            let embedded = start_embedded_receiver(token, &args.token.token_param)
                .await
                .map_err(|error| {
                    Failure::Runtime(format!(
                        "failed to start the embedded reference receiver: {error}"
                    ))
                })?;
            (embedded.target, Some(embedded.receiver))
        }
    };

    let options = RunOptions {
        deadline: args.timeout,
        max_redirects: args.max_redirects,
        seed: args.seed,
    };
    let runner = Runner::new(target, options).map_err(|error| match error {
        RunnerError::EmptyTokenParam => Failure::Input(error.to_string()),
        RunnerError::Client(_) => Failure::Runtime(error.to_string()),
    })?;
    // Ctrl-C or SIGTERM ends the run between checks rather than the
    // process, so that the finished checks still reach the reports.
    let mut stop_signal = StopSignal::new()
        .map_err(|error| Failure::Runtime(format!("failed to listen for Ctrl-C: {error}")))?;
    let report = run_with_progress(&runner, &scenarios, args.timeout, stop_signal.recv()).await;
    if let Some(receiver) = receiver {
        if report.interrupted {
            // Attempts of the abandoned check may still be in flight; do
            // not keep an interrupted user waiting for their deadline.
            let _ = tokio::time::timeout(RECEIVER_STOP_GRACE, receiver.stop()).await;
        } else {
            receiver.stop().await;
        }
    }

    write_reports(&args.report, &report)?;
    Ok(if report.interrupted {
        exit::RUNTIME_ERROR
    } else if report.passed() {
        exit::SUCCESS
    } else {
        exit::FAILURE
    })
}

/// How long an interrupted run waits for the embedded receiver to stop.
const RECEIVER_STOP_GRACE: Duration = Duration::from_secs(1);

/// Loads the scenarios, printing every mistake found before giving up.
fn load_scenarios(paths: &[PathBuf]) -> Result<Vec<Scenario>, Failure> {
    let outcome: LoadOutcome = if !paths.is_empty() {
        scenario::load(paths)
    } else if scenario::default_folder().is_dir() {
        scenario::load(&[scenario::default_folder()])
    } else {
        eprintln!(
            "note: no {}/ folder here; running the built-in conformance suite",
            scenario::BUILTIN_ROOT
        );
        scenario::load_builtin()
    };
    if outcome.errors.is_empty() {
        return Ok(outcome.scenarios);
    }
    for error in &outcome.errors {
        eprintln!("error: {error}");
    }
    let count = outcome.mistake_count();
    let noun = if count == 1 { "mistake" } else { "mistakes" };
    Err(Failure::Input(format!(
        "found {count} {noun} in the scenario files; fix them and run again"
    )))
}

/// Keeps the scenarios that `--filter` selects.
fn select(scenarios: Vec<Scenario>, patterns: &[String]) -> Result<Vec<Scenario>, Failure> {
    let filters: Vec<NameFilter> = patterns.iter().map(|p| NameFilter::new(p)).collect();
    let selected: Vec<Scenario> = scenarios
        .into_iter()
        .filter(|scenario| selects(&filters, &scenario.name))
        .collect();
    if selected.is_empty() {
        return Err(Failure::Input(format!(
            "no check matches --filter {}; run with --list to see the check names",
            patterns.join(", ")
        )));
    }
    Ok(selected)
}

/// Fails early when a report's folder does not exist, or two reports
/// would write the same file, rather than after the whole suite has run.
fn check_report_folders(reports: &[ReportRequest]) -> Result<(), Failure> {
    let mut targets: Vec<(PathBuf, &ReportRequest)> = Vec::new();
    for request in reports {
        let folder = request.path.parent().unwrap_or(Path::new(""));
        if !folder.as_os_str().is_empty() && !folder.is_dir() {
            return Err(Failure::Input(format!(
                "the folder of report {} does not exist; create it or choose another path",
                request.path.display()
            )));
        }
        let target = resolved_report_path(folder, &request.path);
        if let Some((_, first)) = targets.iter().find(|(other, _)| *other == target) {
            return Err(Failure::Input(format!(
                "--report {} and --report {} write the same file; give each report its own path",
                describe_request(first),
                describe_request(request)
            )));
        }
        targets.push((target, request));
    }
    Ok(())
}

/// Returns the file a report is written to, with its folder resolved, so
/// that `out.json` and `./out.json` compare equal.
fn resolved_report_path(folder: &Path, path: &Path) -> PathBuf {
    let folder = if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    };
    let folder = folder
        .canonicalize()
        .unwrap_or_else(|_| folder.to_path_buf());
    match path.file_name() {
        Some(name) => folder.join(name),
        None => folder,
    }
}

fn describe_request(request: &ReportRequest) -> String {
    let kind = match request.kind {
        ReportKind::Junit => "junit",
        ReportKind::Json => "json",
    };
    format!("{kind}={}", request.path.display())
}

/// Runs the suite, printing the header, each check as it finishes and the
/// summary on stdout.
async fn run_with_progress(
    runner: &Runner,
    scenarios: &[Scenario],
    deadline: Duration,
    stop: impl Future<Output = ()>,
) -> SuiteReport {
    let width = terminal::name_width(scenarios.iter().map(|s| s.name.as_str()));
    let header = terminal::header(&runner.target_summary(), scenarios.len(), deadline);
    print_now(&header);

    let on_check = |check: &CheckReport| print_now(&terminal::check_block(check, width));
    let report = runner.run_until(scenarios, on_check, stop).await;
    print_now(&terminal::summary_line(&report));
    report
}

/// Prints `text` as it is. The report's strings are redacted where they
/// are recorded (URLs, response excerpts, transport errors), so a second
/// pass over the rendered text is not needed, and it would replace a
/// common-word token such as `test` inside check names, JSON keys and XML
/// markup.
fn print_now(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Writes every requested report, trying all of them before reporting
/// the failures together.
fn write_reports(reports: &[ReportRequest], report: &SuiteReport) -> Result<(), Failure> {
    let mut failures = Vec::new();
    for request in reports {
        let rendered = match request.kind {
            ReportKind::Junit => junit::render(report).map_err(|error| error.to_string()),
            ReportKind::Json => json::render(report).map_err(|error| error.to_string()),
        };
        let written = rendered.and_then(|text| {
            std::fs::write(&request.path, text).map_err(|error| error.to_string())
        });
        if let Err(error) = written {
            failures.push(format!(
                "failed to write report {}: {error}",
                request.path.display()
            ));
        }
    }
    match failures.is_empty() {
        true => Ok(()),
        false => Err(Failure::Runtime(failures.join("; "))),
    }
}
