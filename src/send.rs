//! The `send` job: a finite set of messages pushed through the sender
//! engine, and the summary and JSON document that describe the result.

use std::fmt::Write as _;

use bytes::Bytes;
use serde::Serialize;

use crate::payload::{Event, IntegrationKey, IntegrationWebhook, WebhookKind};
use crate::sender::{SenderConfig, SenderHandle, SenderReport, Stopped};

/// The messages of one `send` run, in submission order.
#[derive(Debug, Clone, Default)]
pub struct Traffic {
    /// General events, batched by the engine.
    pub events: Vec<(IntegrationKey, Event)>,
    /// Integration Webhooks, one message each.
    pub actions: Vec<IntegrationWebhook>,
    /// Bodies sent byte for byte: kind, bytes and the events they count as.
    pub raw: Vec<(WebhookKind, Bytes, usize)>,
}

impl Traffic {
    /// Submits everything to `handle`.
    pub async fn submit(self, handle: &SenderHandle) -> Result<(), Stopped> {
        for (key, event) in self.events {
            handle.event(key, event).await?;
        }
        for webhook in self.actions {
            handle.action(webhook).await?;
        }
        for (kind, body, events) in self.raw {
            handle.raw(kind, body, events).await?;
        }
        Ok(())
    }

    /// Returns whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.actions.is_empty() && self.raw.is_empty()
    }
}

/// The settings a run used, as printed and written to JSON. URLs carry the
/// token placeholder, never the token.
#[derive(Debug, Clone, Serialize)]
pub struct RunSettings {
    /// The General Webhook URL, token redacted.
    pub general_url: String,
    /// The Integration Webhook URL, token redacted.
    pub integration_url: String,
    /// Whether the target was the embedded reference receiver.
    pub embedded_receiver: bool,
    /// The generator seed.
    pub seed: u64,
    /// Events per General message.
    pub batch_cap: usize,
    /// The attempt deadline in milliseconds.
    pub timeout_ms: u128,
    /// Attempts per message.
    pub max_attempts: u32,
    /// Retry delays in Mews time, in milliseconds.
    pub retry_delays_ms: Vec<u128>,
    /// The factor applied to Mews-time delays.
    pub time_scale: f64,
}

impl RunSettings {
    /// Describes `config` with its URLs already redacted by the caller.
    pub fn new(
        config: &SenderConfig,
        urls: (String, String),
        embedded: bool,
        seed: u64,
    ) -> RunSettings {
        RunSettings {
            general_url: urls.0,
            integration_url: urls.1,
            embedded_receiver: embedded,
            seed,
            batch_cap: config.batch_cap,
            timeout_ms: config.delivery.timeout.as_millis(),
            max_attempts: config.retry.max_attempts,
            retry_delays_ms: config
                .retry
                .delays
                .iter()
                .map(|delay| delay.as_millis())
                .collect(),
            time_scale: config.retry.time_scale,
        }
    }
}

/// The JSON document `send --output json` writes.
#[derive(Debug, Clone, Serialize)]
pub struct SendDocument<'a> {
    /// The document format version.
    pub schema: &'static str,
    /// The settings used.
    pub settings: &'a RunSettings,
    /// The engine's account, with every message and attempt.
    #[serde(flatten)]
    pub report: &'a SenderReport,
}

/// The schema name of [`SendDocument`].
pub const SEND_SCHEMA: &str = "mewshook.send.v1";

/// Renders the terminal summary of a run.
pub fn render_summary(settings: &RunSettings, report: &SenderReport) -> String {
    let counts = &report.counts;
    let latency = &report.latency;
    let mut text = String::new();
    // The split by kind needs the records, which a service does not keep.
    let by_kind = match &report.messages {
        Some(messages) => {
            let general = messages
                .iter()
                .filter(|m| m.meta.kind == WebhookKind::General)
                .count();
            format!(
                " ({general} general, {} integration)",
                messages.len() - general
            )
        }
        None => String::new(),
    };

    let target = if settings.embedded_receiver {
        format!("{} (embedded reference receiver)", settings.general_url)
    } else if settings.general_url == settings.integration_url {
        settings.general_url.clone()
    } else {
        format!(
            "general {} / integration {}",
            settings.general_url, settings.integration_url
        )
    };
    let _ = writeln!(text, "target     {target}");
    let _ = writeln!(text, "messages   {}{by_kind}", counts.messages_accepted);
    let _ = writeln!(text, "events     {}", counts.events_accepted);
    let _ = writeln!(text, "attempts   {}", counts.attempts);
    let _ = writeln!(
        text,
        "delivered  {} ({} on the first attempt, {} after retries)",
        counts.messages_delivered, counts.delivered_first_attempt, counts.delivered_after_retry
    );
    let _ = writeln!(
        text,
        "discarded  {} ({} events)",
        counts.messages_discarded, counts.events_discarded
    );
    if counts.attempts > counts.messages_delivered {
        let _ = writeln!(
            text,
            "failures   {} rejected, {} timed out, {} connection failed, {} redirect not followed",
            counts.attempts_rejected,
            counts.attempts_timed_out,
            counts.attempts_connection_failed,
            counts.attempts_redirect_not_followed
        );
    }
    if latency.count > 0 {
        let _ = writeln!(
            text,
            "latency    min {:.1} ms, median {:.1} ms, max {:.1} ms",
            latency.min_ms, latency.median_ms, latency.max_ms
        );
    } else {
        let _ = writeln!(text, "latency    no responses");
    }
    let _ = writeln!(
        text,
        "elapsed    {:.2} s (seed {}, batch cap {})",
        report.elapsed.as_secs_f64(),
        settings.seed,
        settings.batch_cap
    );
    if let Some(error) = &report.ledger_error {
        let _ = writeln!(text, "LEDGER ERROR {error}");
    }
    text
}
