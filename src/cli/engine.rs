//! Flags of the sender engine shared by `send` and `serve`: the target,
//! the token, and the delivery and retry rules.

use std::time::Duration;

use clap::Args;
use mewshook::delivery::{DeliveryConfig, url_with_token};
use mewshook::exit;
use mewshook::receiver::{ReceiverConfig, RunningReceiver};
use mewshook::retry::{DEFAULT_MAX_ATTEMPTS, RetryPolicy, parse_delays};
use mewshook::secret::Redactor;
use mewshook::sender::SenderConfig;

use super::common::{
    TokenArgs, parse_http_url, parse_positive_duration, parse_time_scale, resolve_token,
};

/// A failure before or around the engine, sorted by exit code.
pub enum Failure {
    /// Bad flags or files: exit code 2.
    Input(String),
    /// Anything else that stops the command: exit code 3.
    Runtime(String),
}

impl Failure {
    /// Prints the message on stderr and returns the exit code.
    pub fn report(self) -> i32 {
        match self {
            Failure::Input(message) => {
                eprintln!("error: {message}");
                exit::INVALID_INPUT
            }
            Failure::Runtime(message) => {
                eprintln!("error: {message}");
                exit::RUNTIME_ERROR
            }
        }
    }
}

/// Target, token, delivery and retry flags.
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// Receiver URL for both kinds. Without any URL, an embedded reference
    /// receiver is started on a loopback port.
    #[arg(long, value_parser = parse_http_url)]
    pub url: Option<url::Url>,

    /// Receiver URL for General Webhooks [default: --url].
    #[arg(long, value_parser = parse_http_url, requires = "integration_url", conflicts_with = "url")]
    pub general_url: Option<url::Url>,

    /// Receiver URL for Integration Webhooks [default: --url].
    #[arg(long, value_parser = parse_http_url, requires = "general_url", conflicts_with = "url")]
    pub integration_url: Option<url::Url>,

    #[command(flatten)]
    pub token: TokenArgs,

    /// Events per General Webhook message; Mews caps batches "in the order
    /// of hundreds".
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_cap: u32,

    /// Deadline of one attempt, covering connect, redirects and the
    /// response body; Mews allows 5 s.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_positive_duration)]
    pub timeout: Duration,

    /// Maximum 307/308 redirects followed in one attempt.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_redirects: usize,

    /// Delays before each retry, in Mews time; the last one repeats
    /// [default: 2m,5m,10m,30m].
    #[arg(long, value_name = "LIST")]
    pub retry_delays: Option<String>,

    /// Attempts per message, the first included.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_ATTEMPTS, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: u32,

    /// Factor applied to every Mews-time delay (retries, lag), never to
    /// the deadline; 0.001 turns minutes into milliseconds.
    #[arg(long, value_name = "FACTOR", default_value = "1", value_parser = parse_time_scale)]
    pub time_scale: f64,

    /// Attempts in flight at once.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
}

/// The resolved target: URLs, token, and the embedded receiver if it
/// is the target.
pub struct Target {
    /// The embedded reference receiver, when no URL was given.
    pub receiver: Option<RunningReceiver>,
    /// The URL General Webhooks are sent to.
    pub general_url: url::Url,
    /// The URL Integration Webhooks are sent to.
    pub integration_url: url::Url,
    /// The token to send: the one given, or one made up for the embedded
    /// receiver so that the token path is exercised too.
    pub token: Option<String>,
}

impl EngineArgs {
    /// Reads the token from the flags, the environment or the token file,
    /// after checking the token flags, so that bad ones are reported
    /// before anything starts.
    pub fn token(&self) -> Result<Option<String>, Failure> {
        if self.token.token_param.is_empty() {
            return Err(Failure::Input(
                "--token-param is empty; give a query parameter name such as Token".to_string(),
            ));
        }
        resolve_token(self.token.token.clone(), self.token.token_file.as_deref())
            .map_err(Failure::Input)
    }

    /// Reads and checks the retry flags before anything starts.
    pub fn retry_policy(&self) -> Result<RetryPolicy, Failure> {
        let delays = match &self.retry_delays {
            Some(text) => parse_delays(text).map_err(|error| Failure::Input(error.to_string()))?,
            None => RetryPolicy::default().delays,
        };
        let policy = RetryPolicy {
            delays,
            max_attempts: self.max_attempts,
            time_scale: self.time_scale,
        };
        policy
            .validate()
            .map_err(|error| Failure::Input(error.to_string()))?;
        Ok(policy)
    }

    /// Resolves the target URLs, starting the embedded reference receiver
    /// when no URL was given. The embedded receiver checks `token`, or a
    /// random one when none was given.
    pub async fn target(&self, token: Option<String>) -> Result<Target, Failure> {
        if let Some(url) = self.url.clone().or(self.general_url.clone()) {
            let integration_url = self.integration_url.clone().unwrap_or_else(|| url.clone());
            return Ok(Target {
                receiver: None,
                general_url: url,
                integration_url,
                token,
            });
        }

        let token = token.unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()));
        let config = ReceiverConfig {
            token: Some(token.clone()),
            token_param: self.token.token_param.clone(),
            keep_requests: false,
            ..ReceiverConfig::default()
        };
        let receiver = RunningReceiver::start(config).await.map_err(|error| {
            Failure::Runtime(format!(
                "failed to start the embedded reference receiver: {error}"
            ))
        })?;
        let url = receiver.url();
        Ok(Target {
            receiver: Some(receiver),
            general_url: url.clone(),
            integration_url: url,
            token: Some(token),
        })
    }

    /// Builds the engine configuration for `target`.
    pub fn sender_config(&self, target: &Target, retry: RetryPolicy) -> SenderConfig {
        let mut config = SenderConfig::new(target.general_url.clone());
        config.integration_url = target.integration_url.clone();
        config.token = target.token.clone();
        config.token_param = self.token.token_param.clone();
        config.delivery = DeliveryConfig {
            timeout: self.timeout,
            max_redirects: self.max_redirects,
            ..DeliveryConfig::default()
        };
        config.batch_cap = self.batch_cap as usize;
        config.retry = retry;
        config.concurrency = self.concurrency as usize;
        config
    }
}

/// Returns the URL the receiver gets, with the token and any password
/// replaced.
pub fn show_url(url: &url::Url, config: &SenderConfig) -> String {
    let full = match &config.token {
        Some(token) => url_with_token(url, &config.token_param, token),
        None => url.clone(),
    };
    let redactor = Redactor::for_target(
        config.token.as_deref(),
        &config.token_param,
        [&config.general_url, &config.integration_url],
    );
    redactor.redact_url(full.as_str())
}
