//! `mewshook serve` through the binary: the HTTP intake, delivery, the
//! simulated lag and the shutdown account.

mod support;

use support::{received_token, server_answering};

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

const TOKEN: &str = "serve+secret/token";

/// A running `serve` process and the intake's base URL.
struct Service {
    child: Child,
    stdout: BufReader<ChildStdout>,
    base: String,
}

async fn start(args: &[&str]) -> Service {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mewshook"))
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("MEWSHOOK_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the mewshook binary starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).await.unwrap();
    let address = first
        .strip_prefix("listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line: {first}"));
    Service {
        child,
        stdout,
        base: address.trim_end_matches('/').to_string(),
    }
}

impl Service {
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .body(serde_json::to_vec(&body).unwrap())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    async fn status(&self) -> Value {
        let response = reqwest::get(format!("{}/v1/status", self.base))
            .await
            .unwrap();
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
    }

    /// Polls the status until `field` reaches `value`, for up to 5 s.
    async fn wait_for(&self, field: &str, value: u64) -> Value {
        for _ in 0..500 {
            let status = self.status().await;
            if status[field] == value {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{field} never reached {value}: {}", self.status().await);
    }

    /// Sends Ctrl-C and returns the exit code, the rest of stdout, and
    /// stderr.
    async fn stop(self) -> (Option<i32>, String, String) {
        self.stop_with("-INT").await
    }

    /// Sends `signal` (a `kill` flag) and returns what `stop` returns.
    async fn stop_with(mut self, signal: &str) -> (Option<i32>, String, String) {
        let pid = self.child.id().unwrap().to_string();
        let killed = Command::new("kill")
            .args([signal, &pid])
            .status()
            .await
            .unwrap();
        assert!(killed.success());
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).await.unwrap();
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .await
            .unwrap();
        let status = self.child.wait().await.unwrap();
        (status.code(), rest, stderr)
    }
}

fn general_body(events: usize) -> Value {
    let events: Vec<Value> = (0..events)
        .map(|i| json!({"Discriminator": "ResourceUpdated", "Value": {"Id": format!("00000000-0000-4000-8000-{i:012}")}}))
        .collect();
    json!({
        "EnterpriseId": "851df8c8-90f2-4c4a-8e01-a4fc46b25178",
        "IntegrationId": "c8bee838-7fb1-4f4e-8fac-ac87008b2f90",
        "Events": events,
    })
}

#[tokio::test]
async fn posted_events_are_batched_and_delivered() {
    let server = server_answering(202).await;
    let service = start(&[
        "--url",
        &server.uri(),
        "--token",
        TOKEN,
        "--batch-window",
        "50ms",
        "--batch-cap",
        "10",
    ])
    .await;

    // Two posts for one integration share messages: 15 events, cap 10.
    assert_eq!(service.post("/v1/general", general_body(8)).await.0, 202);
    assert_eq!(service.post("/v1/general", general_body(7)).await.0, 202);
    let status = service.wait_for("events_delivered", 15).await;
    assert_eq!(status["messages_delivered"], 2);

    let received = server.received_requests().await.unwrap();
    let mut sizes: Vec<usize> = received
        .iter()
        .map(|request| {
            serde_json::from_slice::<Value>(&request.body).unwrap()["Events"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    sizes.sort();
    assert_eq!(sizes, vec![5, 10]);
    let token = received_token(&received[0]).unwrap();
    assert_eq!(token, TOKEN);

    let (code, stdout, stderr) = service.stop().await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("delivered  2"), "{stdout}");
    assert!(!stdout.contains(TOKEN), "{stdout}");
    assert!(!stderr.contains(TOKEN), "{stderr}");
    assert!(!stdout.contains("serve%2Bsecret"), "{stdout}");
}

#[tokio::test]
async fn intake_rejects_invalid_bodies() {
    let service = start(&["--quiet"]).await;
    let cases = [
        (
            "/v1/general",
            json!({"EnterpriseId": "nope", "IntegrationId": "c8bee838-7fb1-4f4e-8fac-ac87008b2f90", "Events": []}),
            "EnterpriseId",
        ),
        (
            "/v1/general",
            json!({"EnterpriseId": "851df8c8-90f2-4c4a-8e01-a4fc46b25178", "IntegrationId": "c8bee838-7fb1-4f4e-8fac-ac87008b2f90"}),
            "Events",
        ),
        (
            "/v1/general",
            json!({"EnterpriseId": "851df8c8-90f2-4c4a-8e01-a4fc46b25178", "IntegrationId": "c8bee838-7fb1-4f4e-8fac-ac87008b2f90", "Events": [{"Discriminator": "PaymentUpdatd", "Value": {"Id": "c2f1d888-232e-49eb-87ac-5f75363af13b"}}]}),
            "did you mean \"PaymentUpdated\"",
        ),
        ("/v1/integration", json!({"Data": {}}), "Action"),
        (
            "/v1/integration",
            json!({"Action": "IntegrationDisable"}),
            "did you mean \"IntegrationDisabled\"",
        ),
        ("/v1/generate", json!({"count": 1_000_000}), "limit"),
        ("/v1/generate", json!({"cuont": 3}), "unknown field"),
    ];
    for (path, body, expected) in cases {
        let (status, answer) = service.post(path, body.clone()).await;
        assert_eq!(status, 400, "{path} {body}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(expected), "{path}: {error}");
    }
    let (code, _, _) = service.stop().await;
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn generate_delivers_to_embedded_receiver() {
    let service = start(&["--batch-window", "20ms"]).await;
    let (status, answer) = service
        .post(
            "/v1/generate",
            json!({"count": 120, "actions": ["IntegrationCreated"]}),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(answer["accepted_events"], 121);
    service.wait_for("events_delivered", 121).await;
    let (code, stdout, _) = service.stop().await;
    assert_eq!(code, Some(0));
    assert!(stdout.contains("attempt 1: delivered (202)"), "{stdout}");
}

#[tokio::test]
async fn lag_delays_delivery() {
    let server = server_answering(202).await;
    // 1 minute of Mews lag at a time scale of 0.005 is 300 ms.
    let service = start(&[
        "--url",
        &server.uri(),
        "--lag",
        "1m",
        "--time-scale",
        "0.005",
        "--batch-window",
        "10ms",
        "--quiet",
    ])
    .await;
    service.post("/v1/general", general_body(1)).await;
    let status = service.status().await;
    assert_eq!(status["events_accepted"], 0);
    assert_eq!(status["events_lagging"], 1);
    assert_eq!(status["events_batching"], 0);
    let status = service.wait_for("events_delivered", 1).await;
    assert_eq!(status["messages_delivered"], 1);
    service.stop().await;
}

#[tokio::test]
async fn shutdown_discards_pending_retries() {
    let server = server_answering(503).await;
    let service = start(&[
        "--url",
        &server.uri(),
        "--batch-window",
        "10ms",
        "--retry-delays",
        "1h",
        "--shutdown-grace",
        "100ms",
        "--quiet",
    ])
    .await;
    service.post("/v1/general", general_body(3)).await;
    service.wait_for("attempts", 1).await;
    let (code, stdout, _) = service.stop().await;

    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("discarded  1 (3 events)"), "{stdout}");
}

#[tokio::test]
async fn busy_port_is_a_runtime_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_mewshook"))
        .args(["serve", "--listen", &address])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--listen"));
}

#[tokio::test]
async fn sigterm_sends_lagged_events_and_reports() {
    let server = server_answering(202).await;
    // A lag of one hour would hold the events far past the test.
    let service = start(&["--url", &server.uri(), "--lag", "1h", "--quiet"]).await;
    let (status, _) = service.post("/v1/generate", json!({"count": 50})).await;
    assert_eq!(status, 202);
    let (code, stdout, stderr) = service.stop_with("-TERM").await;

    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("events     50"), "{stdout}");
    assert!(stdout.contains("discarded  0"), "{stdout}");
    let delivered: usize = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|request| {
            serde_json::from_slice::<Value>(&request.body).unwrap()["Events"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(delivered, 50);
}

#[tokio::test]
async fn stalled_client_does_not_block_shutdown() {
    use tokio::io::AsyncWriteExt;

    let service = start(&["--shutdown-grace", "200ms", "--quiet"]).await;
    // Half a request: the headers promise a body that never comes.
    let address = service.base.trim_start_matches("http://").to_string();
    let mut stalled = tokio::net::TcpStream::connect(&address).await.unwrap();
    stalled
        .write_all(b"POST /v1/general HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;

    let stopping = tokio::time::timeout(Duration::from_secs(10), service.stop());
    let (code, stdout, _) = stopping
        .await
        .expect("serve stops despite the stalled client");
    assert_eq!(code, Some(0), "{stdout}");
    drop(stalled);
}

#[tokio::test]
async fn status_counts_events_in_open_batches() {
    let server = server_answering(202).await;
    // An hour-long window keeps the batch open for the whole test.
    let service = start(&["--url", &server.uri(), "--batch-window", "1h", "--quiet"]).await;
    service.post("/v1/general", general_body(3)).await;
    let status = service.status().await;
    assert_eq!(status["events_batching"], 3, "{status}");
    assert_eq!(status["events_accepted"], 0, "{status}");
    service.post("/v1/flush", json!({})).await;
    let status = service.wait_for("events_delivered", 3).await;
    assert_eq!(status["events_batching"], 0, "{status}");
    service.stop().await;
}
