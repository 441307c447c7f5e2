//! `mewshook receive`: run the reference receiver until Ctrl-C.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use mewshook::exit;
use mewshook::receiver::{REDIRECT_STATUSES, ReceiverConfig, ReceiverError, RunningReceiver};

use super::common::{parse_duration, resolve_token};
use super::signal::StopSignal;

/// Arguments of `mewshook receive`.
#[derive(Args)]
#[command(after_help = "\
Examples:
  mewshook receive --port 8080 --token s3cret
      accept webhooks at http://127.0.0.1:8080/?Token=s3cret
  mewshook receive --fail-first 2 --delay 250ms
      respond 500 twice, then accept every message after 250 ms
  mewshook receive --redirect 307 --record requests.jsonl
      redirect every request to /redirected and record each one

Each request prints one line, for example:
  202 general  3 events  2 discriminators  enterprise 851df8c8-90f2-4c4a-8e01-a4fc46b25178  0.4 ms  /
  401 missing token  0.1 ms  /
  499 client gone before the response  1001.2 ms  /

A client that closes the connection before the response, for example a sender
whose timeout is shorter than --delay, gets no response. Its request prints with
status 499, as nginx logs it, and counts as \"client gone, no response\". A body
over the size limit is read to its end, up to 64 MiB past the limit, and thrown
away before the 413 is sent, so that a client still sending receives the 413.

Ctrl-C stops the receiver after responding to requests in flight and prints the
counts; a second Ctrl-C stops it at once.")]
pub struct ReceiveArgs {
    /// TCP port to listen on at 127.0.0.1; 0 picks a free port, printed at
    /// start.
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    port: u16,

    /// Token that every request must carry in the --token-param query
    /// parameter: a missing token gets 401, a wrong one 403. Never printed,
    /// in any encoding. Must not be empty [env: MEWSHOOK_TOKEN] [default:
    /// no token check].
    // The variable is read in `to_config`, not by clap, because clap counts
    // a value from the environment as given, so a token file would then
    // conflict with the variable.
    #[arg(long, conflicts_with = "token_file")]
    token: Option<String>,

    /// Read the token from the first line of this file.
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,

    /// Query parameter that carries the token.
    #[arg(long, value_name = "NAME", default_value = "Token")]
    token_param: String,

    /// Respond 500 to the first N requests that pass the token check.
    #[arg(long, value_name = "N", default_value_t = 0)]
    fail_first: u64,

    /// Time to wait before checking the body and responding, for example
    /// 250ms or 6s. Mews times out a request after 5 s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0s")]
    delay: Duration,

    /// HTTP status for valid messages, 200 to 599.
    #[arg(
        long,
        value_name = "CODE",
        default_value_t = 202,
        value_parser = clap::value_parser!(u16).range(200..=599)
    )]
    status: u16,

    /// Redirect every request not on /redirected there with this status,
    /// keeping the query string. Without it, nothing is redirected.
    ///
    /// 307 and 308 keep the method and body, so Mews follows them. 301, 302
    /// and 303 make HTTP clients repeat a POST as a GET, so Mews treats them
    /// as failed attempts.
    #[arg(long, value_name = "CODE", value_parser = parse_redirect)]
    redirect: Option<u16>,

    /// Append one JSON line per request to this file, with the token
    /// redacted. Its directory must exist [default: no record].
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,

    /// Print no line per request; the start line and the final counts still
    /// print.
    #[arg(long, short)]
    quiet: bool,
}

impl std::fmt::Debug for ReceiveArgs {
    /// Shows every argument except the token's value.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiveArgs")
            .field("port", &self.port)
            .field(
                "token",
                &self.token.as_ref().map(|_| mewshook::secret::PLACEHOLDER),
            )
            .field("token_file", &self.token_file)
            .field("token_param", &self.token_param)
            .field("fail_first", &self.fail_first)
            .field("delay", &self.delay)
            .field("status", &self.status)
            .field("redirect", &self.redirect)
            .field("record", &self.record)
            .field("quiet", &self.quiet)
            .finish()
    }
}

/// Parses a redirect status for clap.
fn parse_redirect(text: &str) -> Result<u16, String> {
    match text.trim().parse::<u16>() {
        Ok(code) if REDIRECT_STATUSES.contains(&code) => Ok(code),
        _ => Err(format!(
            "invalid redirect status \"{text}\": use 307 or 308, which Mews follows, \
             or 301, 302 or 303, which Mews treats as a failure"
        )),
    }
}

impl ReceiveArgs {
    fn to_config(&self) -> Result<ReceiverConfig, String> {
        // Checked before `resolve_token`, whose message is shared with the
        // senders, so that this one names the token check.
        if self.token.as_deref() == Some("") {
            return Err(
                "--token is empty; give the token, or omit --token to run without a token check"
                    .to_string(),
            );
        }
        let token = resolve_token(self.token.clone(), self.token_file.as_deref())?;
        if self.token_param.is_empty() {
            return Err("--token-param is empty; give a parameter name such as Token".to_string());
        }
        Ok(ReceiverConfig {
            token,
            token_param: self.token_param.clone(),
            fail_first: self.fail_first,
            delay: self.delay,
            status: Some(self.status),
            redirect: self.redirect,
            record: self.record.clone(),
            print: !self.quiet,
            // A receiver may run for days; keeping every request would grow
            // without bound.
            keep_requests: false,
            ..ReceiverConfig::default()
        })
    }
}

/// Runs the receiver until Ctrl-C (or SIGTERM on Unix) and returns the exit
/// code.
pub async fn run(args: ReceiveArgs) -> i32 {
    let config = match args.to_config() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("error: {message}");
            return exit::INVALID_INPUT;
        }
    };

    // Listen for the stop signal before announcing the port, so that a
    // signal sent right after the announcement is not fatal.
    let mut stop_signal = match StopSignal::new() {
        Ok(signal) => signal,
        Err(error) => {
            eprintln!("error: failed to listen for Ctrl-C: {error}");
            return exit::RUNTIME_ERROR;
        }
    };

    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let receiver = match RunningReceiver::start_on(addr, config).await {
        Ok(receiver) => receiver,
        Err(error) => {
            eprintln!("error: {error}");
            return start_error_code(&error);
        }
    };
    println!("listening on {}", receiver.url());

    stop_signal.recv().await;
    let state = receiver.state().clone();
    tokio::select! {
        () = receiver.stop() => println!("stopped"),
        () = stop_signal.recv() => println!("stopped without waiting for requests in flight"),
    }
    print!("{}", state.counts());
    exit::SUCCESS
}

/// Returns the exit code for a receiver that failed to start. An invalid
/// setting and a record file that cannot be opened are invalid input,
/// because the user fixes them by changing the command. A port in use is a
/// runtime error.
fn start_error_code(error: &io::Error) -> i32 {
    let cause = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<ReceiverError>());
    match cause {
        Some(ReceiverError::InvalidConfig(_) | ReceiverError::Record { .. }) => exit::INVALID_INPUT,
        Some(ReceiverError::Bind { .. }) => exit::RUNTIME_ERROR,
        None if error.kind() == io::ErrorKind::InvalidInput => exit::INVALID_INPUT,
        None => exit::RUNTIME_ERROR,
    }
}
