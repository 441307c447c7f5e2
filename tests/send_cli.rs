//! `mewshook send` through the binary: exit codes, output formats, and the
//! token kept out of every output stream.

mod support;

use support::{received_token, server_answering};

use std::process::Output;

use tokio::net::TcpListener;
use tokio::process::Command;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A token with every character that needs encoding in a query.
const TOKEN: &str = "tok+en/with=&%chars secret";

async fn mewshook(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mewshook"))
        .args(args)
        .env_remove("MEWSHOOK_TOKEN")
        .env_remove("RUST_LOG")
        .output()
        .await
        .expect("the mewshook binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts that no spelling of the token reaches stdout or stderr.
fn assert_token_absent(output: &Output) {
    let encoded = mewshook::secret::encode_query_value(TOKEN);
    for (name, stream) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        let stream = text(stream);
        assert!(
            !stream.contains(TOKEN),
            "{name} contains the raw token:\n{stream}"
        );
        assert!(
            !stream.contains(&encoded),
            "{name} contains the encoded token:\n{stream}"
        );
        assert!(
            !stream.contains("secret"),
            "{name} contains part of the token:\n{stream}"
        );
    }
}

#[tokio::test]
async fn delivered_run_exits_zero_with_summary() {
    let server = server_answering(202).await;
    let output = mewshook(&[
        "send",
        "--url",
        &server.uri(),
        "--events",
        "ServiceOrderUpdated=1200,CustomerAdded=3",
        "--seed",
        "1",
    ])
    .await;

    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        text(&output.stderr)
    );
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("messages   3 (3 general, 0 integration)"),
        "{stdout}"
    );
    assert!(stdout.contains("events     1203"), "{stdout}");
    assert!(stdout.contains("discarded  0"), "{stdout}");
}

#[tokio::test]
async fn discard_exits_one() {
    let server = server_answering(503).await;
    let output = mewshook(&[
        "send",
        "--url",
        &server.uri(),
        "--count",
        "10",
        "--max-attempts",
        "2",
        "--retry-delays",
        "1m",
        "--time-scale",
        "0.0001",
    ])
    .await;

    assert_eq!(
        output.status.code(),
        Some(1),
        "stderr: {}",
        text(&output.stderr)
    );
    assert!(text(&output.stdout).contains("discarded  1 (10 events)"));
    assert!(text(&output.stderr).contains("rejected with 503; retry in"));
    assert!(text(&output.stderr).contains("rejected with 503; discarded"));
}

#[tokio::test]
async fn json_output_lists_every_attempt() {
    let server = server_answering(500).await;
    let output = mewshook(&[
        "send",
        "--url",
        &server.uri(),
        "--action",
        "IntegrationCreated",
        "--max-attempts",
        "3",
        "--retry-delays",
        "2m",
        "--time-scale",
        "0.0001",
        "--output",
        "json",
        "--quiet",
    ])
    .await;

    assert_eq!(output.status.code(), Some(1));
    let document: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("stdout is one JSON document");
    assert_eq!(document["schema"], "mewshook.send.v1");
    assert_eq!(document["counts"]["messages_discarded"], 1);
    let attempts = document["messages"][0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    assert_eq!(attempts[0]["outcome"], "rejected");
    assert_eq!(attempts[0]["status"], 500);
    assert!(attempts[0]["total_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(document["messages"][0]["action"], "IntegrationCreated");
    assert_eq!(document["messages"][0]["state"], "discarded");
}

#[tokio::test]
async fn token_absent_from_outputs_on_success() {
    let server = server_answering(202).await;
    for format in ["text", "json"] {
        let output = mewshook(&[
            "send",
            "--url",
            &server.uri(),
            "--token",
            TOKEN,
            "--count",
            "5",
            "--output",
            format,
            "-vv",
        ])
        .await;
        assert_eq!(
            output.status.code(),
            Some(0),
            "stderr: {}",
            text(&output.stderr)
        );
        assert_token_absent(&output);
    }
    // The receiver did get the token, decoded intact.
    let received = server.received_requests().await.unwrap();
    let token = received_token(&received[0]).unwrap();
    assert_eq!(token, TOKEN);
}

#[tokio::test]
async fn token_absent_from_outputs_on_failure() {
    // Nothing listens on this port, so every attempt fails to connect and
    // the error text is printed.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("http://127.0.0.1:{port}/hook");
    let output = mewshook(&[
        "send",
        "--url",
        &url,
        "--token",
        TOKEN,
        "--count",
        "3",
        "--max-attempts",
        "2",
        "--retry-delays",
        "1m",
        "--time-scale",
        "0.0001",
        "--output",
        "json",
        "-vv",
    ])
    .await;

    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stdout).contains("connection_failed"));
    assert_token_absent(&output);
}

#[tokio::test]
async fn token_absent_when_receiver_echoes_it() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_string(format!("bad token {TOKEN}")))
        .mount(&server)
        .await;
    let output = mewshook(&[
        "send",
        "--url",
        &server.uri(),
        "--token",
        TOKEN,
        "--count",
        "1",
        "--max-attempts",
        "1",
        "--output",
        "json",
        "-vv",
    ])
    .await;

    assert_eq!(output.status.code(), Some(1));
    assert_token_absent(&output);
}

#[tokio::test]
async fn unknown_event_type_is_invalid_input() {
    let output = mewshook(&[
        "send",
        "--url",
        "http://127.0.0.1:9/",
        "--events",
        "CustomerAded=3",
    ])
    .await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("\"CustomerAded\""), "{stderr}");
    assert!(
        stderr.contains("did you mean \"CustomerAdded\""),
        "{stderr}"
    );
}

#[tokio::test]
async fn unknown_action_is_invalid_input() {
    let output = mewshook(&[
        "send",
        "--url",
        "http://127.0.0.1:9/",
        "--action",
        "IntegrationCreatd",
    ])
    .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("did you mean \"IntegrationCreated\""));
}

#[tokio::test]
async fn bad_flags_are_invalid_input() {
    for args in [
        &["send", "--url", "ftp://127.0.0.1/"][..],
        &["send", "--url", "not a url"][..],
        &["send", "--timeout", "soon"][..],
        &["send", "--time-scale", "0"][..],
        &["send", "--retry-delays", "2m,later"][..],
        &["send", "--batch-cap", "0"][..],
        &["send", "--body", "/nonexistent/body.json"][..],
    ] {
        let output = mewshook(args).await;
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&output.stderr)
        );
        assert!(!text(&output.stderr).contains("panicked"), "{args:?}");
    }
}

#[tokio::test]
async fn body_file_is_sent_byte_for_byte() {
    let server = server_answering(202).await;
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("body.json");
    let body = b"{ \"EnterpriseId\" : \"x\",\n  \"Odd\": [1,2,3] }\n";
    std::fs::write(&path, body).unwrap();
    let output = mewshook(&[
        "send",
        "--url",
        &server.uri(),
        "--body",
        path.to_str().unwrap(),
    ])
    .await;

    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        text(&output.stderr)
    );
    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body, body.to_vec());
}

#[tokio::test]
async fn seed_reproduces_general_bodies() {
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let server = server_answering(202).await;
        let output = mewshook(&[
            "send",
            "--url",
            &server.uri(),
            "--count",
            "50",
            "--seed",
            "42",
            "--enterprises",
            "2",
        ])
        .await;
        assert_eq!(output.status.code(), Some(0));
        let mut received: Vec<Vec<u8>> = server
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.body)
            .collect();
        received.sort();
        bodies.push(received);
    }
    assert_eq!(bodies[0], bodies[1]);
}

#[tokio::test]
async fn token_file_wins_over_environment() {
    let server = server_answering(202).await;
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("token.txt");
    std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mewshook"))
        .args(["send", "--url", &server.uri(), "--count", "1"])
        .args(["--token-file", path.to_str().unwrap()])
        .env("MEWSHOOK_TOKEN", "from-environment")
        .output()
        .await
        .unwrap();

    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let received = server.received_requests().await.unwrap();
    let token = received_token(&received[0]).unwrap();
    assert_eq!(token, TOKEN);
}

#[tokio::test]
async fn token_read_from_environment() {
    let server = server_answering(202).await;
    let output = Command::new(env!("CARGO_BIN_EXE_mewshook"))
        .args(["send", "--url", &server.uri(), "--count", "1"])
        .env("MEWSHOOK_TOKEN", TOKEN)
        .output()
        .await
        .unwrap();

    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_token_absent(&output);
    let received = server.received_requests().await.unwrap();
    let token = received_token(&received[0]).unwrap();
    assert_eq!(token, TOKEN);
}

#[tokio::test]
async fn token_written_in_url_is_hidden() {
    let server = server_answering(202).await;
    let url = format!(
        "{}/hook?Token=SuperSecret99",
        server.uri().replace("http://", "http://user:hunter2@")
    );
    for format in ["text", "json"] {
        let output = mewshook(&[
            "send", "--url", &url, "--count", "1", "--output", format, "-vv",
        ])
        .await;
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        for stream in [text(&output.stdout), text(&output.stderr)] {
            assert!(!stream.contains("SuperSecret99"), "{stream}");
            assert!(!stream.contains("hunter2"), "{stream}");
        }
        assert!(text(&output.stdout).contains("Token=<redacted>"));
    }
}

#[tokio::test]
async fn rejection_reason_is_printed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400).set_body_string("Events[0].Value.Id:\n expected a GUID"),
        )
        .mount(&server)
        .await;
    let output = mewshook(&[
        "send",
        "--url",
        &server.uri(),
        "--count",
        "1",
        "--max-attempts",
        "1",
    ])
    .await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("rejected with 400 \"Events[0].Value.Id: expected a GUID\"; discarded"),
        "{stderr}"
    );
}

#[tokio::test]
async fn oversized_counts_are_invalid_input() {
    for args in [
        &["send", "--count", "18446744073709551615"][..],
        &[
            "send",
            "--events",
            "CustomerAdded=99999999999,CustomerUpdated=5",
        ][..],
    ] {
        let output = mewshook(args).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            text(&output.stderr).contains("limit"),
            "{}",
            text(&output.stderr)
        );
    }
}

#[tokio::test]
async fn invalid_url_error_hides_token() {
    for url in [
        "http://127.0.0.1:99999/?Token=SeCrEtXyZ987",
        "localhost:80/?Token=SeCrEtXyZ987",
        "http://user:SeCrEtXyZ987@[bad/",
    ] {
        let output = mewshook(&["send", "--url", url]).await;
        assert_eq!(output.status.code(), Some(2), "{url}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains("<redacted>"), "{stderr}");
        assert!(!stderr.contains("SeCrEtXyZ987"), "{stderr}");
    }
}
