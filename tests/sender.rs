//! The sender engine end to end: batching, retries, discards and the
//! ledger, against wiremock on loopback with short scaled delays.

mod support;

use support::server_answering;

use std::time::Duration;

use mewshook::generator::Generator;
use mewshook::ledger::MessageState;
use mewshook::payload::{Event, IntegrationKey};
use mewshook::retry::RetryPolicy;
use mewshook::sender::{Sender, SenderConfig};
use url::Url;
use uuid::Uuid;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Returns a schedule of minutes scaled down to milliseconds.
fn fast_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        delays: vec![Duration::from_secs(60), Duration::from_secs(120)],
        max_attempts,
        time_scale: 0.0001,
    }
}

fn config(server: &MockServer) -> SenderConfig {
    let mut config = SenderConfig::new(Url::parse(&server.uri()).unwrap());
    config.retry = fast_retries(3);
    config
}

fn key() -> IntegrationKey {
    IntegrationKey {
        enterprise_id: Uuid::from_u128(1),
        integration_id: Uuid::from_u128(2),
    }
}

fn event_counts(server_requests: &[wiremock::Request]) -> Vec<usize> {
    server_requests
        .iter()
        .map(|request| {
            let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
            body["Events"].as_array().unwrap().len()
        })
        .collect()
}

#[tokio::test]
async fn batches_roll_over_at_cap() {
    let server = server_answering(202).await;
    let handle = Sender::start(config(&server)).unwrap();
    for i in 0..1200u128 {
        handle
            .event(key(), Event::new("ServiceOrderUpdated", Uuid::from_u128(i)))
            .await
            .unwrap();
    }
    let report = handle.finish().await;

    let mut sizes = event_counts(&server.received_requests().await.unwrap());
    sizes.sort();
    assert_eq!(sizes, vec![200, 500, 500]);
    assert_eq!(report.counts.messages_delivered, 3);
    assert_eq!(report.counts.events_delivered, 1200);
}

#[tokio::test]
async fn integration_webhooks_are_never_batched() {
    let server = server_answering(202).await;
    let handle = Sender::start(config(&server)).unwrap();
    let mut generator = Generator::new(7, 1);
    for action in [
        "IntegrationCreated",
        "IntegrationEnabled",
        "IntegrationDeleted",
    ] {
        handle.action(generator.integration(action)).await.unwrap();
    }
    let report = handle.finish().await;

    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 3);
    for request in &received {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        assert!(body["Action"].is_string());
        assert!(body["Data"].is_object());
    }
    assert_eq!(report.counts.messages_delivered, 3);
}

#[tokio::test]
async fn kinds_go_to_their_own_urls() {
    let general = server_answering(202).await;
    let integration = server_answering(202).await;
    let mut config = config(&general);
    config.integration_url = Url::parse(&integration.uri()).unwrap();
    let handle = Sender::start(config).unwrap();
    handle
        .event(key(), Event::new("ResourceUpdated", Uuid::from_u128(9)))
        .await
        .unwrap();
    handle
        .action(Generator::new(1, 1).integration("IntegrationEnabled"))
        .await
        .unwrap();
    handle.finish().await;

    assert_eq!(general.received_requests().await.unwrap().len(), 1);
    assert_eq!(integration.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn retries_then_delivers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202))
        .with_priority(2)
        .mount(&server)
        .await;
    let handle = Sender::start(config(&server)).unwrap();
    handle
        .event(key(), Event::new("PaymentUpdated", Uuid::from_u128(3)))
        .await
        .unwrap();
    let report = handle.finish().await;

    assert_eq!(report.counts.attempts, 3);
    assert_eq!(report.counts.messages_delivered, 1);
    assert_eq!(report.counts.delivered_after_retry, 1);
    let message = &report.messages.as_ref().unwrap()[0];
    assert_eq!(message.state, MessageState::Delivered);
    let numbers: Vec<u32> = message
        .attempts
        .iter()
        .map(|attempt| attempt.number)
        .collect();
    assert_eq!(numbers, vec![1, 2, 3]);
}

#[tokio::test]
async fn retries_wait_for_scaled_delays() {
    let server = server_answering(500).await;
    let mut config = config(&server);
    // 60 s and 120 s of Mews time become 30 ms and 60 ms.
    config.retry.time_scale = 0.0005;
    let handle = Sender::start(config).unwrap();
    handle
        .event(key(), Event::new("PaymentUpdated", Uuid::from_u128(3)))
        .await
        .unwrap();
    let report = handle.finish().await;

    let attempts = &report.messages.as_ref().unwrap()[0].attempts;
    let gap = |a: usize, b: usize| attempts[b].started_at - attempts[a].started_at;
    assert!(gap(0, 1) >= Duration::from_millis(30), "{:?}", gap(0, 1));
    assert!(gap(1, 2) >= Duration::from_millis(60), "{:?}", gap(1, 2));
}

#[tokio::test]
async fn discards_after_last_attempt() {
    let server = server_answering(500).await;
    let handle = Sender::start(config(&server)).unwrap();
    for i in 0..3u128 {
        handle
            .event(key(), Event::new("ResourceUpdated", Uuid::from_u128(i)))
            .await
            .unwrap();
    }
    let report = handle.finish().await;

    assert_eq!(report.counts.messages_discarded, 1);
    assert_eq!(report.counts.events_discarded, 3);
    assert_eq!(report.counts.attempts, 3);
    assert_eq!(report.counts.attempts_rejected, 3);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    assert_eq!(
        report.messages.as_ref().unwrap()[0].state,
        MessageState::Discarded
    );
}

#[tokio::test]
async fn retries_send_identical_bytes() {
    let server = server_answering(500).await;
    let handle = Sender::start(config(&server)).unwrap();
    let mut generator = Generator::new(11, 2);
    for (key, event) in generator.realistic(40) {
        handle.event(key, event).await.unwrap();
    }
    handle.finish().await;

    let received = server.received_requests().await.unwrap();
    let mut bodies: Vec<Vec<u8>> = received
        .iter()
        .map(|request| request.body.clone())
        .collect();
    bodies.sort();
    let distinct = {
        let mut distinct = bodies.clone();
        distinct.dedup();
        distinct
    };
    // Each distinct body appears exactly once per attempt.
    assert_eq!(bodies.len(), distinct.len() * 3);
    for body in &distinct {
        assert_eq!(
            bodies.iter().filter(|candidate| *candidate == body).count(),
            3
        );
    }
}

#[tokio::test]
async fn ledger_balances_under_mixed_failures() {
    let server = MockServer::start().await;
    // Every third request fails, so some messages need one retry and a
    // few may need two; none may go missing from the account.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(10)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .with_priority(2)
        .mount(&server)
        .await;
    let mut config = config(&server);
    config.batch_cap = 7;
    config.concurrency = 8;
    let handle = Sender::start(config).unwrap();
    let mut generator = Generator::new(3, 3);
    let events = generator.realistic(300);
    for (key, event) in events {
        handle.event(key, event).await.unwrap();
    }
    let report = handle.finish().await;

    let counts = &report.counts;
    assert!(report.ledger_error.is_none(), "{:?}", report.ledger_error);
    assert_eq!(counts.events_accepted, 300);
    assert_eq!(counts.events_delivered + counts.events_discarded, 300);
    assert_eq!(counts.messages_pending, 0);
    assert_eq!(
        counts.attempts,
        server.received_requests().await.unwrap().len() as u64
    );
    let recorded: u64 = report
        .messages
        .as_ref()
        .unwrap()
        .iter()
        .map(|message| message.attempts.len() as u64)
        .sum();
    assert_eq!(recorded, counts.attempts);
}

#[tokio::test]
async fn unreachable_receiver_discards_everything() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut config = SenderConfig::new(Url::parse(&format!("http://{addr}/")).unwrap());
    config.retry = fast_retries(2);
    let handle = Sender::start(config).unwrap();
    handle
        .event(key(), Event::new("ResourceUpdated", Uuid::from_u128(1)))
        .await
        .unwrap();
    let report = handle.finish().await;

    assert_eq!(report.counts.messages_discarded, 1);
    assert_eq!(report.counts.attempts_connection_failed, 2);
}

#[tokio::test]
async fn batch_window_sends_without_flush() {
    let server = server_answering(202).await;
    let mut config = config(&server);
    config.batch_window = Some(Duration::from_millis(20));
    let handle = Sender::start(config).unwrap();
    let submitter = handle.submitter();
    submitter
        .event(key(), Event::new("ResourceUpdated", Uuid::from_u128(1)))
        .await
        .unwrap();

    // Poll rather than sleep a fixed time: the window is 20 ms.
    for _ in 0..200 {
        if submitter.counts().messages_delivered == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(submitter.counts().messages_delivered, 1);
    handle.finish().await;
}

#[tokio::test]
async fn rejects_non_http_scheme() {
    let config = SenderConfig::new(Url::parse("ftp://127.0.0.1/").unwrap());
    let error = Sender::start(config).err().unwrap();
    assert!(error.to_string().contains("ftp"), "{error}");
}

#[tokio::test]
async fn shutdown_discards_what_is_still_pending() {
    let server = server_answering(500).await;
    let mut config = config(&server);
    // A retry an hour away cannot happen before the shutdown grace ends.
    config.retry = RetryPolicy {
        delays: vec![Duration::from_secs(3600)],
        max_attempts: 2,
        time_scale: 1.0,
    };
    let handle = Sender::start(config).unwrap();
    handle
        .event(key(), Event::new("ResourceUpdated", Uuid::from_u128(1)))
        .await
        .unwrap();
    let report = handle.shutdown(Duration::from_millis(200)).await;

    assert!(report.ledger_error.is_none(), "{:?}", report.ledger_error);
    assert_eq!(report.counts.attempts, 1);
    assert_eq!(report.counts.messages_discarded, 1);
    assert_eq!(report.counts.discarded_at_shutdown, 1);
    assert_eq!(report.counts.messages_pending, 0);
}
