//! The receiver conformance runner: plays each scenario against a target
//! and judges every response.
//!
//! A conformance check judges the receiver's response to each attempt, so the
//! runner makes single attempts with [`Client::attempt`] and never retries:
//! a retry would hide exactly the failures the checks look for. Bodies come
//! from the generator and the batcher, as `send` builds them. Checks run one
//! after another, so one check's traffic never skews another's latency;
//! within a step, `concurrency` messages are in flight at once.
//!
//! [`Runner::run`] reports each check as it finishes and returns a
//! [`SuiteReport`] with every attempt, status, latency and redirect chain.

mod filter;
mod judge;
mod messages;
mod result;
mod target;

use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use url::Url;

use crate::delivery::{
    Attempt, Client, ConnectionErrorKind, DeliveryConfig, Outcome, Request, url_with_token,
};
use crate::payload::WebhookKind;
use crate::receiver::{ReceiverConfig, RunningReceiver};
use crate::scenario::{Scenario, Severity, Step, TokenMode};
use crate::secret::Redactor;

pub use filter::{NameFilter, selects};
pub use result::{
    AttemptReport, CheckReport, CheckStatus, Finding, LatencyStats, StatusCounts, StepReport,
    SuiteReport, TargetSummary, format_duration, percentile,
};
pub use target::{Target, TargetError, UNKNOWN_TOKEN, WRONG_TOKEN};

/// The characters a generated token contains, because check 13 needs a
/// token with characters that are reserved in a query string.
pub const RESERVED_TOKEN_CHARACTERS: &str = "+/=&%";

/// Settings of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The deadline of one attempt; Mews allows 5 s.
    pub deadline: Duration,
    /// The most 307/308 hops one attempt follows.
    pub max_redirects: usize,
    /// The seed of generated ids and mixes; the same seed sends the same
    /// General Webhook bodies.
    pub seed: u64,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            deadline: Duration::from_secs(5),
            max_redirects: 10,
            seed: 1,
        }
    }
}

/// The runner could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The HTTP client could not be built, for example without TLS roots.
    #[error("failed to build the HTTP client: {0}")]
    Client(String),
    /// The token parameter name is empty.
    #[error("the token parameter name is empty; give one such as Token")]
    EmptyTokenParam,
}

/// Runs scenarios against one target.
#[derive(Debug, Clone)]
pub struct Runner {
    client: Client,
    target: Target,
    options: RunOptions,
}

impl Runner {
    /// Builds a runner whose every output hides the target's token.
    pub fn new(target: Target, options: RunOptions) -> Result<Runner, RunnerError> {
        if target.token_param.is_empty() {
            return Err(RunnerError::EmptyTokenParam);
        }
        let config = DeliveryConfig {
            timeout: options.deadline,
            max_redirects: options.max_redirects,
            ..DeliveryConfig::default()
        };
        let mut redactor = Redactor::for_target(
            target.token.as_deref(),
            &target.token_param,
            [&target.general_url, &target.integration_url],
        );
        for derived in target.derived_secrets() {
            redactor.add(&derived);
        }
        let client = Client::new(config, redactor)
            .map_err(|error| RunnerError::Client(error.to_string()))?;
        Ok(Runner {
            client,
            target,
            options,
        })
    }

    /// Returns the redactor that hides the token; callers pass their own
    /// output through it as well.
    pub fn redactor(&self) -> &Redactor {
        self.client.redactor()
    }

    /// Describes the target as reports show it, token redacted.
    pub fn target_summary(&self) -> TargetSummary {
        let show = |url: &Url| {
            let full = match &self.target.token {
                Some(token) => url_with_token(url, &self.target.token_param, token),
                None => url.clone(),
            };
            self.redactor().redact_url(full.as_str())
        };
        TargetSummary {
            general_url: show(&self.target.general_url),
            integration_url: show(&self.target.integration_url),
            embedded_receiver: self.target.embedded_receiver,
            token_known: self.target.token.is_some(),
        }
    }

    /// Runs `scenarios` in order and calls `on_check` as each one
    /// finishes, for progress output.
    pub async fn run(
        &self,
        scenarios: &[Scenario],
        on_check: impl FnMut(&CheckReport),
    ) -> SuiteReport {
        self.run_until(scenarios, on_check, std::future::pending())
            .await
    }

    /// Runs like [`run`](Self::run) until `stop` completes. Then the check
    /// in progress is abandoned without a record, no further check starts,
    /// and the report holds the finished checks with `interrupted` set.
    /// Attempts of the abandoned check that are in flight run on in the
    /// background until their deadline.
    pub async fn run_until(
        &self,
        scenarios: &[Scenario],
        mut on_check: impl FnMut(&CheckReport),
        stop: impl Future<Output = ()>,
    ) -> SuiteReport {
        let started_at = chrono::Utc::now();
        let started = Instant::now();
        let mut checks = Vec::with_capacity(scenarios.len());
        let mut interrupted = false;
        let mut stop = std::pin::pin!(stop);
        for scenario in scenarios {
            let check = tokio::select! {
                check = self.run_check(scenario) => check,
                () = &mut stop => {
                    tracing::info!(check = %scenario.name, "run interrupted");
                    interrupted = true;
                    break;
                }
            };
            on_check(&check);
            checks.push(check);
        }
        SuiteReport {
            interrupted,
            target: self.target_summary(),
            deadline: self.options.deadline,
            seed: self.options.seed,
            started_at,
            elapsed: started.elapsed(),
            summary: StatusCounts::of(&checks),
            token_rejected: token_rejected(scenarios, &checks),
            checks,
        }
    }

    /// Runs one scenario, or skips it when the target cannot show what it
    /// checks.
    pub async fn run_check(&self, scenario: &Scenario) -> CheckReport {
        let started = Instant::now();
        let mut report = CheckReport {
            name: scenario.name.clone(),
            summary: scenario.summary.clone(),
            file: scenario.file.display().to_string(),
            severity: scenario.worst_severity(),
            status: CheckStatus::Pass,
            elapsed: Duration::ZERO,
            skip_reason: None,
            findings: Vec::new(),
            fix: scenario.fix.clone(),
            steps: Vec::new(),
        };
        if let Some(reason) = self.skip_reason(scenario) {
            tracing::debug!(check = %scenario.name, %reason, "skipping check");
            report.status = CheckStatus::Skip;
            report.skip_reason = Some(reason);
            return report;
        }

        tracing::debug!(check = %scenario.name, "running check");
        for (index, step) in scenario.steps.iter().enumerate() {
            let step_seed = step
                .seed
                .unwrap_or_else(|| messages::derive_seed(self.options.seed, &scenario.name, index));
            let step_report = self.run_step(step, step_seed).await;
            report.findings.extend(judge::judge_step(
                step,
                &step_report.attempts,
                self.options.deadline,
            ));
            report.steps.push(step_report);
        }

        report.status = status_of(&report.findings);
        if report.steps.iter().all(|step| step.skip_reason.is_some()) {
            report.status = CheckStatus::Skip;
            report.skip_reason = report
                .steps
                .iter()
                .find_map(|step| step.skip_reason.clone());
        }
        report.elapsed = started.elapsed();
        report
    }

    /// Returns the reason `scenario` cannot run against this target, if it
    /// cannot.
    fn skip_reason(&self, scenario: &Scenario) -> Option<String> {
        if !scenario.needs_token() {
            return None;
        }
        let Some(token) = &self.target.token else {
            return Some(UNKNOWN_TOKEN.to_string());
        };
        let characters = scenario.requires.token_characters.as_deref()?;
        if token.contains(|c: char| characters.contains(c)) {
            return None;
        }
        let spaced: Vec<String> = characters.chars().map(String::from).collect();
        Some(format!(
            "the token contains none of {}, so it cannot show how the receiver decodes them; \
             use a token with at least one of them to run this check",
            spaced.join(" ")
        ))
    }

    /// Sends the step's messages and records every attempt.
    async fn run_step(&self, step: &Step, step_seed: u64) -> StepReport {
        let token = match self.target.token_value(step.token) {
            Ok(token) => token,
            Err(reason) => {
                tracing::debug!(step = %step.name, %reason, "skipping step");
                return StepReport::skipped(&step.name, reason);
            }
        };
        let param = step
            .token_param
            .as_deref()
            .unwrap_or(&self.target.token_param);
        // The record says what was sent: without a known token, a step that
        // asks for the right one sends none.
        let (sent_token, sent_param) = match &token {
            Some(_) => (step.token, Some(param.to_string())),
            None => (TokenMode::Missing, None),
        };

        let built = messages::build(step, step_seed, self.options.seed);
        let distinct = built.len();
        let sends = messages::sequence(step, built, step_seed);

        let step_url = |base: &Url| match &token {
            Some(token) => url_with_token(base, param, token),
            None => base.clone(),
        };
        let general = Arc::new(step_url(&self.target.general_url));
        let integration = Arc::new(step_url(&self.target.integration_url));
        let semaphore = Arc::new(Semaphore::new(step.concurrency));
        let mut tasks = Vec::with_capacity(sends.len());

        // Permits are taken here, in send order, rather than inside the
        // tasks, so that messages start in the step's order even on a
        // multi-threaded runtime.
        for send in &sends {
            // Acquiring fails only on a closed semaphore, and this one is
            // never closed, so every send gets a task and a record.
            let permit = match Arc::clone(&semaphore).acquire_owned().await {
                Ok(permit) => permit,
                Err(_closed) => break,
            };
            let url = match send.message.kind {
                WebhookKind::General => Arc::clone(&general),
                WebhookKind::Integration => Arc::clone(&integration),
            };
            let request = Request {
                url: (*url).clone(),
                body: send.message.body.clone(),
                content_type: step.content_type.clone(),
            };
            let client = self.client.clone();
            tasks.push(tokio::spawn(async move {
                let attempt = client.attempt(&request).await;
                drop(permit);
                attempt
            }));
        }

        let mut attempts = Vec::with_capacity(sends.len());
        for (index, (send, task)) in sends.iter().zip(tasks).enumerate() {
            let attempt = task.await.unwrap_or_else(|error| lost_attempt(&error));
            attempts.push(AttemptReport {
                send: index + 1,
                message: send.message.number,
                copy: send.copy,
                kind: send.message.kind,
                label: send.message.label.clone(),
                events: send.message.events,
                token: sent_token,
                token_param: sent_param.clone(),
                outcome: attempt.outcome,
                latency: attempt.total,
                headers_after: attempt.headers_after,
                redirects: attempt.redirects,
                response_excerpt: attempt.response_excerpt,
            });
        }

        let latencies: Vec<Duration> = attempts.iter().map(|attempt| attempt.latency).collect();
        StepReport {
            name: step.name.clone(),
            messages: distinct,
            skip_reason: None,
            latency: LatencyStats::of(&latencies),
            attempts,
        }
    }
}

/// Returns whether the receiver answered 401 or 403 to every attempt of
/// the steps that send the run's token in the usual parameter, or would
/// have sent it had it been known. Then the token is probably wrong or
/// missing, and most other findings follow from that.
fn token_rejected(scenarios: &[Scenario], checks: &[CheckReport]) -> bool {
    let mut attempts = 0;
    for (scenario, check) in scenarios.iter().zip(checks) {
        for (step, report) in scenario.steps.iter().zip(&check.steps) {
            if step.token != TokenMode::Right || step.token_param.is_some() {
                continue;
            }
            for attempt in &report.attempts {
                if !matches!(attempt.outcome, Outcome::Rejected { status: 401 | 403 }) {
                    return false;
                }
                attempts += 1;
            }
        }
    }
    attempts > 0
}

/// Derives a check's status from its findings.
fn status_of(findings: &[Finding]) -> CheckStatus {
    match findings.iter().map(|finding| finding.severity).max() {
        None => CheckStatus::Pass,
        Some(Severity::Warn) => CheckStatus::Warn,
        Some(Severity::Fail) => CheckStatus::Fail,
    }
}

/// Records an attempt whose task ended without a result, so that it still
/// counts as a failed attempt instead of vanishing from the report.
fn lost_attempt(error: &tokio::task::JoinError) -> Attempt {
    tracing::error!(%error, "an attempt task ended without a result");
    Attempt {
        outcome: Outcome::ConnectionFailed {
            kind: ConnectionErrorKind::Other,
            detail: format!("the attempt ended without a result: {error}"),
        },
        headers_after: None,
        total: Duration::ZERO,
        redirects: Vec::new(),
        response_excerpt: String::new(),
    }
}

/// Generates a token for the embedded receiver: 24 random letters and
/// digits with the characters of [`RESERVED_TOKEN_CHARACTERS`] spread
/// through them, so that the token checks run in full.
pub fn generate_token() -> String {
    const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let mut token = String::new();
    for reserved in RESERVED_TOKEN_CHARACTERS.chars() {
        for _ in 0..5 {
            let index = rng.random_range(0..ALPHANUMERIC.len());
            token.push(char::from(ALPHANUMERIC[index]));
        }
        token.push(reserved);
    }
    token
}

/// The embedded reference receiver and the target that points at it.
pub struct EmbeddedReceiver {
    /// The running receiver; stop it when the run is over.
    pub receiver: RunningReceiver,
    /// Both URLs point at the receiver, with its token.
    pub target: Target,
}

/// Starts the reference receiver on a loopback port with `token`, or a
/// generated one, so that every check, the token checks included, can run.
pub async fn start_embedded_receiver(
    token: Option<String>,
    token_param: &str,
) -> std::io::Result<EmbeddedReceiver> {
    let token = token.unwrap_or_else(generate_token);
    let config = ReceiverConfig {
        token: Some(token.clone()),
        token_param: token_param.to_string(),
        keep_requests: false,
        ..ReceiverConfig::default()
    };
    let receiver = RunningReceiver::start(config).await?;
    let url = receiver.url();
    Ok(EmbeddedReceiver {
        target: Target {
            general_url: url.clone(),
            integration_url: url,
            token: Some(token),
            token_param: token_param.to_string(),
            embedded_receiver: true,
        },
        receiver,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_token_has_reserved_characters() {
        let token = generate_token();
        for reserved in RESERVED_TOKEN_CHARACTERS.chars() {
            assert!(token.contains(reserved), "{reserved} missing");
        }
        assert_eq!(token.len(), 30);
        assert_ne!(generate_token(), token);
    }

    #[test]
    fn worst_finding_decides_status() {
        let finding = |severity| Finding {
            step: "s".to_string(),
            severity,
            message: "m".to_string(),
        };
        assert_eq!(status_of(&[]), CheckStatus::Pass);
        assert_eq!(status_of(&[finding(Severity::Warn)]), CheckStatus::Warn);
        assert_eq!(
            status_of(&[finding(Severity::Warn), finding(Severity::Fail)]),
            CheckStatus::Fail
        );
    }
}
