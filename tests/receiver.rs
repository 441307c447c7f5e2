//! The reference receiver over real HTTP on loopback: the checks in order,
//! the responses, the counters, the record file and the `receive` command.

use std::time::{Duration, Instant};

use mewshook::payload::WebhookKind;
use mewshook::receiver::{ReceiverConfig, ReceiverCounts, RunningReceiver, router, serve};
use mewshook::secret::{PLACEHOLDER, encode_query_value};
use reqwest::StatusCode;
use reqwest::header::{ALLOW, CONTENT_TYPE, LOCATION};

const ENTERPRISE: &str = "851df8c8-90f2-4c4a-8e01-a4fc46b25178";
const INTEGRATION: &str = "c8bee838-7fb1-4f4e-8fac-ac87008b2f90";
const ENTITY: &str = "bfee2c44-1f84-4326-a862-5289598f6e2d";

/// A token with every character that query encoding must protect.
const HARD_TOKEN: &str = "p+ss/w=rd&x%y z";

/// A token whose encodings differ in hex case and between percent and form
/// encoding: `se%20cr%2Bet%2Fx`, `se%20cr%2bet%2fx`, `se+cr%2Bet%2Fx`.
const SPACED_TOKEN: &str = "se cr+et/x";

/// Bounds every wait, so a broken receiver fails a test instead of hanging it.
const DEADLINE: Duration = Duration::from_secs(10);

fn event(discriminator: &str) -> String {
    format!(r#"{{"Discriminator":"{discriminator}","Value":{{"Id":"{ENTITY}"}}}}"#)
}

fn general_body(discriminators: &[&str]) -> String {
    let events: Vec<String> = discriminators.iter().map(|name| event(name)).collect();
    format!(
        r#"{{"EnterpriseId":"{ENTERPRISE}","IntegrationId":"{INTEGRATION}","Events":[{}]}}"#,
        events.join(",")
    )
}

fn integration_body(action: &str) -> String {
    format!(
        r#"{{"Action":"{action}","Data":{{"Integration":{{"Id":"{INTEGRATION}","Name":"Test"}}}}}}"#
    )
}

/// Builds a client that reports redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(DEADLINE)
        .build()
        .expect("a plain HTTP client builds")
}

/// `path` on the receiver, with `param=token` when a token is given.
fn url(receiver: &RunningReceiver, path: &str, param: &str, token: Option<&str>) -> String {
    let base = receiver.url().join(path).expect("a relative path joins");
    match token {
        Some(token) => format!("{base}?{param}={}", encode_query_value(token)),
        None => base.to_string(),
    }
}

async fn post(url: &str, body: &str) -> reqwest::Response {
    client()
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("the receiver responds")
}

async fn post_status(url: &str, body: &str) -> StatusCode {
    post(url, body).await.status()
}

async fn start(config: ReceiverConfig) -> RunningReceiver {
    RunningReceiver::start(config)
        .await
        .expect("the receiver starts on a free port")
}

fn with_token(token: &str) -> ReceiverConfig {
    ReceiverConfig {
        token: Some(token.to_string()),
        ..ReceiverConfig::default()
    }
}

/// The sum of the outcome counters, which must equal `requests`.
fn outcome_sum(counts: &ReceiverCounts) -> u64 {
    counts.accepted
        + counts.valid_non_2xx
        + counts.rejected_auth
        + counts.invalid_body
        + counts.too_large
        + counts.injected_failures
        + counts.redirected
        + counts.method_not_allowed
        + counts.client_gone
}

/// Lists every spelling of `token` that could leak: raw, query-encoded and
/// form-encoded.
fn spellings(token: &str) -> Vec<String> {
    let form: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
    vec![token.to_string(), encode_query_value(token), form]
}

/// Asserts that `text` contains `token` in no spelling: the text is also
/// checked after percent-decoding and after form-decoding, which covers
/// either hex case and mixed ones.
fn assert_token_hidden(text: &str, token: &str, source: &str) {
    let percent_decoded = percent_encoding::percent_decode_str(text).decode_utf8_lossy();
    let plus_as_space = text.replace('+', " ");
    let form_decoded = percent_encoding::percent_decode_str(&plus_as_space).decode_utf8_lossy();
    assert!(!text.contains(token), "{source} contains the token: {text}");
    assert!(
        !percent_decoded.contains(token),
        "{source} contains the token percent-encoded: {text}"
    );
    assert!(
        !form_decoded.contains(token),
        "{source} contains the token form-encoded: {text}"
    );
}

#[tokio::test]
async fn token_missing_wrong_and_right() {
    let receiver = start(with_token(HARD_TOKEN)).await;
    let body = general_body(&["CustomerAdded"]);

    let missing = post(&url(&receiver, "/", "Token", None), &body).await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert!(missing.text().await.unwrap().contains("Token"));

    let wrong = url(&receiver, "/", "Token", Some("p+ss/w=rd&x%y"));
    assert_eq!(post_status(&wrong, &body).await, StatusCode::FORBIDDEN);

    let right = url(&receiver, "/", "Token", Some(HARD_TOKEN));
    assert_eq!(post_status(&right, &body).await, StatusCode::ACCEPTED);

    let requests = receiver.state().requests();
    let token_ok: Vec<Option<bool>> = requests.iter().map(|request| request.token_ok).collect();
    assert_eq!(token_ok, [Some(false), Some(false), Some(true)]);
    assert_eq!(receiver.state().counts().rejected_auth, 2);
    receiver.stop().await;
}

#[tokio::test]
async fn token_in_other_query_parameters() {
    let receiver = start(with_token("s3cret")).await;
    let body = general_body(&["CustomerAdded"]);

    // The token joins a query the URL already has, as Mews keeps it.
    let base = receiver.url().join("/hooks").unwrap();
    let status = post_status(&format!("{base}?tenant=7&Token=s3cret&x=y"), &body).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    // The parameter name is case-sensitive.
    assert_eq!(
        post_status(&format!("{base}?token=s3cret"), &body).await,
        StatusCode::UNAUTHORIZED
    );

    // An empty value counts as missing.
    assert_eq!(
        post_status(&format!("{base}?Token="), &body).await,
        StatusCode::UNAUTHORIZED
    );
    receiver.stop().await;
}

#[tokio::test]
async fn custom_token_parameter_name() {
    let config = ReceiverConfig {
        token_param: "key".to_string(),
        ..with_token("s3cret")
    };
    let receiver = start(config).await;
    let body = integration_body("IntegrationEnabled");

    let custom = url(&receiver, "/", "key", Some("s3cret"));
    assert_eq!(post_status(&custom, &body).await, StatusCode::ACCEPTED);
    let default_name = url(&receiver, "/", "Token", Some("s3cret"));
    assert_eq!(
        post_status(&default_name, &body).await,
        StatusCode::UNAUTHORIZED
    );
    receiver.stop().await;
}

#[tokio::test]
async fn fail_first_counts_across_paths() {
    let config = ReceiverConfig {
        fail_first: 2,
        ..ReceiverConfig::default()
    };
    let receiver = start(config).await;
    let body = general_body(&["CustomerAdded"]);

    let mut statuses = Vec::new();
    for path in ["/general", "/integration", "/general", "/other"] {
        statuses.push(post_status(&url(&receiver, path, "Token", None), &body).await);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::ACCEPTED,
            StatusCode::ACCEPTED
        ]
    );
    let counts = receiver.state().counts();
    assert_eq!(counts.injected_failures, 2);
    assert_eq!(counts.general_messages, 2);
    receiver.stop().await;
}

#[tokio::test]
async fn fail_first_skips_rejected_tokens() {
    let config = ReceiverConfig {
        fail_first: 1,
        ..with_token("s3cret")
    };
    let receiver = start(config).await;
    let body = general_body(&["CustomerAdded"]);

    assert_eq!(
        post_status(&url(&receiver, "/", "Token", None), &body).await,
        StatusCode::UNAUTHORIZED
    );
    let right = url(&receiver, "/", "Token", Some("s3cret"));
    assert_eq!(
        post_status(&right, &body).await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(post_status(&right, &body).await, StatusCode::ACCEPTED);
    receiver.stop().await;
}

#[tokio::test]
async fn configured_status_204() {
    let config = ReceiverConfig {
        status: Some(204),
        ..ReceiverConfig::default()
    };
    let receiver = start(config).await;

    let response = post(
        &url(&receiver, "/", "Token", None),
        &general_body(&["CustomerAdded"]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(response.text().await.unwrap(), "");
    assert_eq!(receiver.state().counts().accepted, 1);
    receiver.stop().await;
}

#[tokio::test]
async fn configured_non_2xx_status_counts_message() {
    let config = ReceiverConfig {
        status: Some(503),
        ..ReceiverConfig::default()
    };
    let receiver = start(config).await;

    let status = post_status(
        &url(&receiver, "/", "Token", None),
        &general_body(&["CustomerAdded"]),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let counts = receiver.state().counts();
    assert_eq!(counts.valid_non_2xx, 1);
    assert_eq!(counts.accepted, 0);
    assert_eq!(counts.general_messages, 1);
    receiver.stop().await;
}

#[tokio::test]
async fn redirect_307_keeps_query() {
    let config = ReceiverConfig {
        redirect: Some(307),
        ..with_token(HARD_TOKEN)
    };
    let receiver = start(config).await;
    let body = general_body(&["CustomerAdded"]);
    let first = url(&receiver, "/general", "Token", Some(HARD_TOKEN));

    let response = post(&first, &body).await;
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    let location = response.headers()[LOCATION].to_str().unwrap().to_string();
    assert_eq!(
        location,
        format!("/redirected?Token={}", encode_query_value(HARD_TOKEN))
    );

    let target = receiver.url().join(&location).unwrap();
    assert_eq!(
        post_status(target.as_str(), &body).await,
        StatusCode::ACCEPTED
    );

    let counts = receiver.state().counts();
    assert_eq!(counts.redirected, 1);
    assert_eq!(counts.accepted, 1);
    receiver.stop().await;
}

#[tokio::test]
async fn redirect_307_followed_by_client() {
    let config = ReceiverConfig {
        redirect: Some(307),
        ..ReceiverConfig::default()
    };
    let receiver = start(config).await;
    let following = reqwest::Client::builder()
        .timeout(DEADLINE)
        .build()
        .unwrap();

    let response = following
        .post(url(&receiver, "/general", "Token", None))
        .body(general_body(&["CustomerAdded"]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.url().path(), "/redirected");
    receiver.stop().await;
}

#[tokio::test]
async fn redirect_302_responds_302() {
    let config = ReceiverConfig {
        redirect: Some(302),
        ..ReceiverConfig::default()
    };
    let receiver = start(config).await;

    let base = receiver.url().join("/general").unwrap();
    let response = post(&format!("{base}?a=1"), &general_body(&["CustomerAdded"])).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(response.headers()[LOCATION], "/redirected?a=1");
    receiver.stop().await;
}

#[tokio::test]
async fn delay_holds_the_response() {
    let config = ReceiverConfig {
        delay: Duration::from_millis(50),
        ..ReceiverConfig::default()
    };
    let receiver = start(config).await;

    let started = Instant::now();
    let status = post_status(
        &url(&receiver, "/", "Token", None),
        &general_body(&["CustomerAdded"]),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(
        started.elapsed() >= Duration::from_millis(50),
        "responded after {:?}",
        started.elapsed()
    );
    receiver.stop().await;
}

#[tokio::test]
async fn delay_skips_token_rejections() {
    // A long delay, so that a rejection within it shows the delay was skipped.
    let config = ReceiverConfig {
        delay: Duration::from_secs(5),
        ..with_token("s3cret")
    };
    let receiver = start(config).await;

    let started = Instant::now();
    let status = post_status(
        &url(&receiver, "/", "Token", None),
        &general_body(&["CustomerAdded"]),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "responded after {:?}",
        started.elapsed()
    );
    receiver.stop().await;
}

#[tokio::test]
async fn invalid_bodies_name_the_field() {
    let receiver = start(ReceiverConfig::default()).await;
    let target = url(&receiver, "/", "Token", None);
    let bad_id = format!(
        r#"{{"EnterpriseId":"{ENTERPRISE}","IntegrationId":"{INTEGRATION}","Events":[{},{},{},{{"Discriminator":"CustomerAdded","Value":{{"Id":42}}}}]}}"#,
        event("CustomerAdded"),
        event("CustomerUpdated"),
        event("PaymentUpdated")
    );
    let cases = [
        ("", "body is empty"),
        ("{\"EnterpriseId\":", "invalid JSON"),
        ("[]", "expected a JSON object"),
        ("{}", "neither"),
        (
            r#"{"Action":"IntegrationEnabled","Data":{},"Events":[]}"#,
            "both",
        ),
        (
            &format!(r#"{{"IntegrationId":"{INTEGRATION}","Events":[]}}"#),
            "EnterpriseId: missing",
        ),
        (
            &format!(
                r#"{{"EnterpriseId":"not-a-guid","IntegrationId":"{INTEGRATION}","Events":[]}}"#
            ),
            "EnterpriseId: expected a GUID string",
        ),
        (
            &format!(
                r#"{{"EnterpriseId":"{ENTERPRISE}","IntegrationId":"{INTEGRATION}","Events":{{}}}}"#
            ),
            "Events: expected an array",
        ),
        (&bad_id, "Events[3].Value.Id: expected a GUID string"),
        (
            &format!(
                r#"{{"EnterpriseId":"{ENTERPRISE}","IntegrationId":"{INTEGRATION}","Events":[{{"Value":{{"Id":"{ENTITY}"}}}}]}}"#
            ),
            "Events[0].Discriminator: missing",
        ),
        (
            &format!(
                r#"{{"EnterpriseId":"{ENTERPRISE}","IntegrationId":"{INTEGRATION}","Events":[{{"Discriminator":"CustomerAdded","Value":"x"}}]}}"#
            ),
            "Events[0].Value: expected an object",
        ),
        (r#"{"Data":{}}"#, "Action: missing"),
        (
            r#"{"Action":"IntegrationEnabled","Data":[]}"#,
            "Data: expected an object",
        ),
    ];

    for (body, expected) in cases {
        let response = post(&target, body).await;
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "status for {body:?}"
        );
        let reason = response.text().await.unwrap();
        assert!(
            reason.contains(expected),
            "reason for {body:?} is {reason:?}, expected {expected:?}"
        );
    }
    assert_eq!(receiver.state().counts().invalid_body, cases.len() as u64);
    receiver.stop().await;
}

#[tokio::test]
async fn unknown_names_and_fields_accepted() {
    let receiver = start(ReceiverConfig::default()).await;
    let target = url(&receiver, "/", "Token", None);
    let extra_fields = format!(
        r#"{{"EnterpriseId":"{ENTERPRISE}","IntegrationId":"{INTEGRATION}","Future":true,"Events":[{{"Discriminator":"CustomerAdded","Value":{{"Id":"{ENTITY}","Name":"x"}},"At":"now"}}]}}"#
    );
    let bodies = [
        general_body(&["ReservationTeleported"]),
        integration_body("IntegrationTransferred"),
        extra_fields,
        r#"{"Action":"IntegrationEnabled","Data":{"Integration":{},"NewThing":1},"Version":2}"#
            .to_string(),
    ];

    for body in &bodies {
        assert_eq!(
            post_status(&target, body).await,
            StatusCode::ACCEPTED,
            "{body}"
        );
    }
    let counts = receiver.state().counts();
    assert_eq!(counts.messages(WebhookKind::General), 2);
    assert_eq!(counts.messages(WebhookKind::Integration), 2);
    receiver.stop().await;
}

#[tokio::test]
async fn added_and_updated_for_one_id_accepted_twice() {
    let receiver = start(ReceiverConfig::default()).await;
    let target = url(&receiver, "/", "Token", None);
    let body = general_body(&["CustomerAdded", "CustomerUpdated"]);

    // The same message twice, as after a retry whose response was lost.
    assert_eq!(post_status(&target, &body).await, StatusCode::ACCEPTED);
    assert_eq!(post_status(&target, &body).await, StatusCode::ACCEPTED);
    assert_eq!(receiver.state().counts().events, 4);
    receiver.stop().await;
}

#[tokio::test]
async fn any_content_type_accepted() {
    let receiver = start(ReceiverConfig::default()).await;
    let target = url(&receiver, "/", "Token", None);
    let body = general_body(&["CustomerAdded"]);

    for content_type in [
        "application/json; charset=utf-8",
        "text/plain",
        "application/octet-stream",
    ] {
        let response = client()
            .post(&target)
            .header(CONTENT_TYPE, content_type)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED, "{content_type}");
    }
    let without = client()
        .post(&target)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(without.status(), StatusCode::ACCEPTED, "no content type");
    receiver.stop().await;
}

#[tokio::test]
async fn get_is_method_not_allowed() {
    let receiver = start(ReceiverConfig::default()).await;

    let response = client()
        .get(url(&receiver, "/general", "Token", None))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[ALLOW], "POST");
    assert_eq!(receiver.state().counts().method_not_allowed, 1);
    receiver.stop().await;
}

#[tokio::test]
async fn body_over_limit_is_413() {
    let config = ReceiverConfig {
        max_body: 1024,
        ..ReceiverConfig::default()
    };
    let receiver = start(config).await;
    let target = url(&receiver, "/", "Token", None);

    let names = vec!["CustomerAdded"; 40];
    let status = post_status(&target, &general_body(&names)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        post_status(&target, &general_body(&["CustomerAdded"])).await,
        StatusCode::ACCEPTED
    );
    assert_eq!(receiver.state().counts().too_large, 1);
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_just_over_limit_always_gets_413() {
    // Large enough that the body is still on its way when the headers
    // arrive, which is when an early 413 made clients see a reset. The
    // server runs on its own worker thread, so it can respond while the
    // client is still writing.
    const LIMIT: usize = 1024 * 1024;
    let config = ReceiverConfig {
        max_body: LIMIT,
        ..ReceiverConfig::default()
    };
    let receiver = start(config).await;
    let target = url(&receiver, "/", "Token", None);
    let body = "x".repeat(LIMIT + 1);
    let sender = client();

    for attempt in 1..=20 {
        let response = sender.post(&target).body(body.clone()).send().await;
        match response {
            Ok(response) => assert_eq!(
                response.status(),
                StatusCode::PAYLOAD_TOO_LARGE,
                "attempt {attempt}"
            ),
            Err(error) => panic!("attempt {attempt} failed: {error:?}"),
        }
    }
    let accepted = sender
        .post(&target)
        .body(general_body(&["CustomerAdded"]))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    assert_eq!(receiver.state().counts().too_large, 20);
    receiver.stop().await;
}

/// Writes a raw HTTP/1.1 request head and returns the stream.
async fn raw_request(receiver: &RunningReceiver, head: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;

    let mut stream = tokio::net::TcpStream::connect(receiver.addr())
        .await
        .unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// Reads until the end of the response head and returns it.
async fn read_response_head(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;

    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = tokio::time::timeout(DEADLINE, stream.read(&mut byte))
            .await
            .expect("the receiver responds in time")
            .unwrap();
        assert_eq!(read, 1, "connection closed after {head:?}");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_over_limit_gets_413() {
    use tokio::io::AsyncWriteExt;

    const LIMIT: usize = 64 * 1024;
    let config = ReceiverConfig {
        max_body: LIMIT,
        ..ReceiverConfig::default()
    };
    let receiver = start(config).await;
    let head = "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    // 16 MiB in 16 KiB chunks, more than the socket buffers hold, sent in
    // full before the response is read, as simple clients do.
    let chunk = format!("4000\r\n{}\r\n", "x".repeat(0x4000));

    for attempt in 1..=3 {
        let mut stream = raw_request(&receiver, head).await;
        // Bounded, because a server that stops reading without closing
        // would block the writes forever.
        let write_body = async {
            for _ in 0..1024 {
                stream.write_all(chunk.as_bytes()).await?;
            }
            stream.write_all(b"0\r\n\r\n").await
        };
        let written = tokio::time::timeout(DEADLINE, write_body)
            .await
            .expect("the receiver reads the whole body in time");
        assert!(written.is_ok(), "attempt {attempt}: {written:?}");

        let response = read_response_head(&mut stream).await;
        assert!(
            response.starts_with("HTTP/1.1 413"),
            "attempt {attempt}: {response}"
        );
    }
    assert_eq!(receiver.state().counts().too_large, 3);
    receiver.stop().await;
}

#[tokio::test]
async fn expect_continue_gets_413_at_once() {
    let config = ReceiverConfig {
        max_body: 1024,
        ..ReceiverConfig::default()
    };
    let receiver = start(config).await;
    // The body is never sent: a client that asks for 100 Continue waits
    // for it, and must get the 413 instead.
    let head = "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1025\r\n\
                Expect: 100-continue\r\n\r\n";
    let mut stream = raw_request(&receiver, head).await;

    let response = read_response_head(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    receiver.stop().await;
}

#[tokio::test]
async fn record_file_has_one_line_per_request() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("requests.jsonl");
    let config = ReceiverConfig {
        record: Some(path.clone()),
        ..with_token(HARD_TOKEN)
    };
    let receiver = start(config).await;
    let right = url(&receiver, "/general", "Token", Some(HARD_TOKEN));
    let wrong = url(&receiver, "/general", "Token", Some("guess"));
    // A body that carries the token too, in a field the receiver does not know.
    let leaky = format!(
        r#"{{"Action":"IntegrationEnabled","Data":{{"Integration":{{}}}},"Note":"{}"}}"#,
        HARD_TOKEN
    );

    assert_eq!(
        post_status(&right, &general_body(&["CustomerAdded"])).await,
        StatusCode::ACCEPTED
    );
    assert_eq!(post_status(&wrong, "{}").await, StatusCode::FORBIDDEN);
    assert_eq!(
        post_status(&right, "not json").await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(post_status(&right, &leaky).await, StatusCode::ACCEPTED);
    receiver.stop().await;

    let text = std::fs::read_to_string(&path).unwrap();
    for spelling in spellings(HARD_TOKEN) {
        assert!(
            !text.contains(&spelling),
            "record file contains the token as {spelling:?}"
        );
    }
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);

    let statuses: Vec<u64> = lines
        .iter()
        .map(|line| line["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [202, 403, 400, 202]);
    assert_eq!(lines[0]["method"], "POST");
    assert_eq!(lines[0]["path"], "/general");
    assert_eq!(lines[0]["query"], format!("Token={PLACEHOLDER}"));
    assert_eq!(lines[0]["kind"], "general");
    assert_eq!(lines[0]["body"]["EnterpriseId"], ENTERPRISE);
    assert_eq!(lines[0]["headers"]["content-type"], "application/json");
    assert!(lines[0]["error"].is_null());
    assert_eq!(lines[1]["query"], format!("Token={PLACEHOLDER}"));
    assert_eq!(lines[1]["error"], "wrong token");
    assert_eq!(lines[2]["body"], "not json");
    assert!(
        lines[2]["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid body: invalid JSON")
    );
    assert_eq!(lines[3]["body"]["Note"], PLACEHOLDER);

    let received_at = lines[0]["received_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(received_at).is_ok(),
        "{received_at}"
    );
    assert!(received_at.ends_with('Z'), "{received_at}");
}

#[tokio::test]
async fn record_file_in_missing_directory_fails_start() {
    let directory = tempfile::tempdir().unwrap();
    let config = ReceiverConfig {
        record: Some(directory.path().join("absent").join("requests.jsonl")),
        ..ReceiverConfig::default()
    };

    let error = RunningReceiver::start(config).await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    assert!(error.to_string().contains("record file"), "{error}");
}

#[tokio::test]
async fn request_log_never_contains_token() {
    let receiver = start(with_token(HARD_TOKEN)).await;
    let body = general_body(&["CustomerAdded"]);
    let base = receiver.url().join("/general").unwrap();
    let encoded = encode_query_value(HARD_TOKEN);

    post(&format!("{base}?Token={encoded}&other={encoded}"), &body).await;
    post(&format!("{base}?Token=wrong"), &body).await;
    let with_auth = client()
        .post(base.as_str())
        .header("Authorization", format!("Bearer {HARD_TOKEN}"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(with_auth.status(), StatusCode::UNAUTHORIZED);

    let requests = receiver.state().requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        requests[0].query,
        format!("Token={PLACEHOLDER}&other={PLACEHOLDER}")
    );
    assert_eq!(requests[1].query, format!("Token={PLACEHOLDER}"));
    let logged = format!("{requests:?}");
    for spelling in spellings(HARD_TOKEN) {
        assert!(
            !logged.contains(&spelling),
            "request log contains the token as {spelling:?}"
        );
    }
    receiver.stop().await;
}

/// Paths and queries that carry [`SPACED_TOKEN`] in one spelling each,
/// relative to the receiver's base URL.
const SPACED_TOKEN_TARGETS: [&str; 10] = [
    // In the path: lower-case, upper-case and mixed-case hex.
    "se%20cr%2bet%2fx?Token=wrong",
    "se%20cr%2Bet%2Fx",
    "se%20cr%2Bet%2fx/next",
    // In the path with a raw `+` and `/`, so it spans two segments.
    "se%20cr+et/x",
    // As the token parameter whose name differs in case.
    "b?token=se%20cr%2bet%2fx",
    "b?TOKEN=se+cr%2Bet%2Fx",
    // In another parameter, in mixed-case hex and inside a longer value.
    "b?other=se%20cr%2Bet%2fx",
    "b?other=x-se%20cr%2Bet%2fx-y&z=1",
    // As a parameter name.
    "b?se%20cr%2Bet%2fx",
    // The right token in lower-case hex.
    "b?Token=se%20cr%2bet%2fx",
];

#[tokio::test]
async fn token_hidden_in_every_spelling() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("requests.jsonl");
    let config = ReceiverConfig {
        record: Some(path.clone()),
        ..with_token(SPACED_TOKEN)
    };
    let receiver = start(config).await;
    let body = r#"{"Note":"se%20cr%2Bet%2fx","Other":"se cr+et/x"}"#;

    for target in SPACED_TOKEN_TARGETS {
        let response = client()
            .post(format!("{}{target}", receiver.url()))
            .header("Referer", "http://127.0.0.1/hooks?token=se%20cr%2Bet%2fx")
            .header("X-Note", "mixed se%20cr%2bet%2Fx")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_ne!(response.status(), StatusCode::ACCEPTED, "{target}");
    }
    receiver.stop().await;

    let requests = record_lines(&path);
    assert_eq!(requests.len(), SPACED_TOKEN_TARGETS.len());
    for (target, line) in SPACED_TOKEN_TARGETS.iter().zip(&requests) {
        assert_token_hidden(line, SPACED_TOKEN, &format!("record line for {target}"));
    }

    let lines: Vec<serde_json::Value> = requests
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines[0]["path"], format!("/{PLACEHOLDER}"));
    assert_eq!(lines[0]["status"], 403);
    assert_eq!(lines[2]["path"], format!("/{PLACEHOLDER}/next"));
    assert_eq!(lines[4]["query"], format!("token={PLACEHOLDER}"));
    assert_eq!(lines[6]["query"], format!("other={PLACEHOLDER}"));
    assert_eq!(lines[7]["query"], format!("other={PLACEHOLDER}&z=1"));
    assert_eq!(lines[9]["status"], 400);
    assert_eq!(lines[9]["path"], "/b");
}

/// Reads the record file, one string per line.
fn record_lines(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().map(str::to_string).collect()
}

#[tokio::test]
async fn request_log_hides_token_spellings() {
    let receiver = start(with_token(SPACED_TOKEN)).await;
    for target in SPACED_TOKEN_TARGETS {
        post(&format!("{}{target}", receiver.url()), "{}").await;
    }
    let requests = receiver.state().requests();
    receiver.stop().await;

    assert_eq!(requests.len(), SPACED_TOKEN_TARGETS.len());
    for (target, request) in SPACED_TOKEN_TARGETS.iter().zip(&requests) {
        let source = format!("request log for {target}");
        assert_token_hidden(&request.path, SPACED_TOKEN, &source);
        assert_token_hidden(&request.query, SPACED_TOKEN, &source);
        let error = request.error.as_deref().unwrap_or("");
        assert_token_hidden(error, SPACED_TOKEN, &source);
    }
}

#[tokio::test]
async fn request_log_describes_messages() {
    let receiver = start(ReceiverConfig::default()).await;
    let target = url(&receiver, "/general", "Token", None);
    let body = general_body(&["CustomerAdded", "CustomerUpdated", "Mystery"]);

    post(&target, &body).await;
    post(&target, &integration_body("IntegrationCreated")).await;

    let requests = receiver.state().requests();
    assert_eq!(requests[0].kind, Some(WebhookKind::General));
    assert_eq!(requests[0].event_count, 3);
    assert_eq!(requests[0].enterprise_id.unwrap().to_string(), ENTERPRISE);
    assert_eq!(requests[0].integration_id.unwrap().to_string(), INTEGRATION);
    assert_eq!(requests[0].body, body.as_bytes());
    assert_eq!(requests[0].path, "/general");
    assert_eq!(requests[0].status, 202);
    assert_eq!(requests[0].token_ok, None);
    assert_eq!(requests[1].kind, Some(WebhookKind::Integration));
    assert_eq!(requests[1].action.as_deref(), Some("IntegrationCreated"));
    receiver.stop().await;
}

#[tokio::test]
async fn requests_not_kept_when_disabled() {
    let config = ReceiverConfig {
        keep_requests: false,
        ..ReceiverConfig::default()
    };
    let receiver = start(config).await;

    post(
        &url(&receiver, "/", "Token", None),
        &general_body(&["CustomerAdded"]),
    )
    .await;
    assert!(receiver.state().requests().is_empty());
    assert_eq!(receiver.state().counts().accepted, 1);
    receiver.stop().await;
}

#[tokio::test]
async fn counts_add_up() {
    let config = ReceiverConfig {
        fail_first: 1,
        max_body: 4096,
        ..with_token("s3cret")
    };
    let receiver = start(config).await;
    let right = url(&receiver, "/", "Token", Some("s3cret"));
    let general = general_body(&["CustomerAdded", "CustomerUpdated", "PaymentUpdated"]);

    post(&right, &general).await; // injected failure
    post(&right, &general).await; // accepted, 3 events
    post(&right, &integration_body("IntegrationDeleted")).await; // accepted
    post(&url(&receiver, "/", "Token", None), &general).await; // missing token
    post(&url(&receiver, "/", "Token", Some("x")), &general).await; // wrong token
    post(&right, "{}").await; // invalid body
    post(&right, &"x".repeat(5000)).await; // too large
    client().get(&right).send().await.unwrap(); // method not allowed

    let counts = receiver.state().counts();
    assert_eq!(counts.requests, 8);
    assert_eq!(counts.injected_failures, 1);
    assert_eq!(counts.accepted, 2);
    assert_eq!(counts.rejected_auth, 2);
    assert_eq!(counts.invalid_body, 1);
    assert_eq!(counts.too_large, 1);
    assert_eq!(counts.method_not_allowed, 1);
    assert_eq!(counts.events, 3);
    assert_eq!(counts.general_messages, 1);
    assert_eq!(counts.integration_messages, 1);
    assert_eq!(outcome_sum(&counts), counts.requests);
    receiver.stop().await;
}

#[tokio::test]
async fn stop_waits_for_request_in_flight() {
    let config = ReceiverConfig {
        delay: Duration::from_millis(200),
        ..ReceiverConfig::default()
    };
    let receiver = start(config).await;
    let target = url(&receiver, "/", "Token", None);
    let state = receiver.state().clone();

    let in_flight =
        tokio::spawn(async move { post_status(&target, &general_body(&["CustomerAdded"])).await });
    // Stop only once the request is in the handler, waiting out the delay.
    let arrived = state
        .wait_for(DEADLINE, |counts| counts.in_flight == 1)
        .await;
    assert!(arrived);
    receiver.stop().await;

    assert_eq!(in_flight.await.unwrap(), StatusCode::ACCEPTED);
    assert_eq!(state.counts().accepted, 1);
}

/// Sends a valid message with a client that gives up after 100 ms, and
/// returns the client's error.
async fn post_and_give_up(target: &str) -> reqwest::Error {
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    give_up_with(&impatient, target).await
}

async fn give_up_with(impatient: &reqwest::Client, target: &str) -> reqwest::Error {
    impatient
        .post(target)
        .body(general_body(&["CustomerAdded"]))
        .send()
        .await
        .expect_err("the delay outlasts the client's timeout")
}

#[tokio::test]
async fn client_gone_during_delay_counted() {
    // The delay far outlasts the test: the request must be accounted for
    // as soon as the client goes away, not when the delay ends.
    let config = ReceiverConfig {
        delay: Duration::from_secs(60),
        ..ReceiverConfig::default()
    };
    let receiver = start(config).await;

    let error = post_and_give_up(&url(&receiver, "/general", "Token", None)).await;
    assert!(error.is_timeout(), "{error:?}");

    let counted = receiver
        .state()
        .wait_for(DEADLINE, |counts| counts.requests == 1)
        .await;
    let counts = receiver.state().counts();
    assert!(counted, "{counts:?}");
    assert_eq!(counts.client_gone, 1);
    assert_eq!(counts.accepted, 0);
    assert_eq!(counts.in_flight, 0);
    assert_eq!(outcome_sum(&counts), counts.requests);

    let requests = receiver.state().requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].status, 499);
    assert_eq!(requests[0].path, "/general");
    assert_eq!(
        requests[0].error.as_deref(),
        Some("client gone before the response")
    );
    // Measured to the moment the client went away, not to the delay's end.
    assert!(requests[0].elapsed < DEADLINE, "{:?}", requests[0].elapsed);
    receiver.stop().await;
}

#[tokio::test]
async fn client_gone_over_http2_counted() {
    let config = ReceiverConfig {
        delay: Duration::from_secs(60),
        ..ReceiverConfig::default()
    };
    let receiver = start(config).await;
    let impatient = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();

    // The client resets the stream but may keep the connection open.
    let error = give_up_with(&impatient, &url(&receiver, "/", "Token", None)).await;
    assert!(error.is_timeout(), "{error:?}");
    let counted = receiver
        .state()
        .wait_for(DEADLINE, |counts| counts.client_gone == 1)
        .await;
    assert!(counted, "{:?}", receiver.state().counts());
    assert_eq!(receiver.state().counts().requests, 1);
    receiver.stop().await;
}

#[tokio::test]
async fn wait_for_sees_counts() {
    let receiver = start(ReceiverConfig::default()).await;
    let target = url(&receiver, "/", "Token", None);
    let state = receiver.state().clone();

    assert!(
        !state
            .wait_for(Duration::from_millis(20), |counts| counts.accepted >= 1)
            .await
    );
    tokio::spawn(async move { post(&target, &general_body(&["CustomerAdded"])).await });
    assert!(
        state
            .wait_for(DEADLINE, |counts| counts.accepted >= 1)
            .await
    );
    receiver.stop().await;
}

#[tokio::test]
async fn http2_prior_knowledge_served() {
    let receiver = start(ReceiverConfig::default()).await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(DEADLINE)
        .build()
        .unwrap();

    let response = h2
        .post(url(&receiver, "/", "Token", None))
        .body(general_body(&["CustomerAdded"]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    receiver.stop().await;
}

#[tokio::test]
async fn port_in_use_is_addr_in_use() {
    let first = start(ReceiverConfig::default()).await;

    let error = RunningReceiver::start_on(first.addr(), ReceiverConfig::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse);
    assert!(
        error.to_string().contains(&first.addr().to_string()),
        "{error}"
    );
    first.stop().await;
}

#[tokio::test]
async fn invalid_settings_rejected() {
    let cases = [
        ReceiverConfig {
            status: Some(199),
            ..ReceiverConfig::default()
        },
        ReceiverConfig {
            redirect: Some(304),
            ..ReceiverConfig::default()
        },
        with_token(""),
        ReceiverConfig {
            token_param: String::new(),
            ..ReceiverConfig::default()
        },
    ];
    for config in cases {
        let described = format!("{config:?}");
        let error = RunningReceiver::start(config).await.unwrap_err();
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::InvalidInput,
            "{described}"
        );
    }
}

#[tokio::test]
async fn router_invalid_setting_responds_500() {
    let (app, _state) = router(ReceiverConfig {
        status: Some(99),
        ..ReceiverConfig::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, app, async move {
        let _ = stopped.await;
    }));

    let response = post(
        &format!("http://{addr}/"),
        &general_body(&["CustomerAdded"]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(response.text().await.unwrap().contains("status 99"));
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn config_debug_hides_token() {
    let config = with_token(HARD_TOKEN);
    assert!(!format!("{config:?}").contains(HARD_TOKEN));
    let receiver = start(config).await;
    assert!(!format!("{:?}", receiver.state()).contains(HARD_TOKEN));
    receiver.stop().await;
}

/// The `receive` command: its printed lines, its counts and its exit code.
#[cfg(unix)]
mod command {
    use std::process::Stdio;

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    use tokio::process::{Child, ChildStdout, Command};

    use super::*;

    fn receive() -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mewshook"));
        command
            .arg("receive")
            .env_remove("MEWSHOOK_TOKEN")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Reads the start line and returns the URL it announces.
    async fn listening_url(stdout: &mut BufReader<ChildStdout>) -> url::Url {
        let mut line = String::new();
        tokio::time::timeout(DEADLINE, stdout.read_line(&mut line))
            .await
            .unwrap()
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("start line {line:?}"));
        url::Url::parse(url).unwrap()
    }

    fn interrupt(child: &Child) {
        let pid = child.id().expect("the child is running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[tokio::test]
    async fn prints_lines_without_token() {
        let mut child = receive().env("MEWSHOOK_TOKEN", HARD_TOKEN).spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let base = listening_url(&mut stdout).await;
        assert_eq!(base.host_str(), Some("127.0.0.1"));

        let right = format!("{base}general?Token={}", encode_query_value(HARD_TOKEN));
        let wrong = format!("{base}general?Token=guess");
        assert_eq!(
            post_status(&right, &general_body(&["CustomerAdded", "Mystery"])).await,
            StatusCode::ACCEPTED
        );
        assert_eq!(
            post_status(&right, &integration_body("IntegrationCreated")).await,
            StatusCode::ACCEPTED
        );
        assert_eq!(post_status(&wrong, "{}").await, StatusCode::FORBIDDEN);
        assert_eq!(
            post_status(&format!("{base}general"), "{}").await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(post_status(&right, "{}").await, StatusCode::BAD_REQUEST);

        interrupt(&child);
        let status = tokio::time::timeout(DEADLINE, child.wait())
            .await
            .unwrap()
            .unwrap();
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).await.unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .await
            .unwrap();
        assert_eq!(status.code(), Some(0), "stderr: {stderr}");

        let lines: Vec<&str> = rest.lines().collect();
        assert!(
            lines[0].starts_with("202 general  2 events  2 discriminators (1 unknown: Mystery)"),
            "{}",
            lines[0]
        );
        assert!(
            lines[0].contains(&format!("enterprise {ENTERPRISE}")),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with("202 integration  IntegrationCreated"),
            "{}",
            lines[1]
        );
        assert!(lines[2].starts_with("403 wrong token"), "{}", lines[2]);
        assert!(lines[3].starts_with("401 missing token"), "{}", lines[3]);
        assert!(
            lines[4].starts_with("400 invalid body: body has neither"),
            "{}",
            lines[4]
        );
        assert_eq!(lines[5], "stopped");
        assert!(
            rest.contains("requests                             5"),
            "{rest}"
        );
        for spelling in spellings(HARD_TOKEN) {
            assert!(
                !rest.contains(&spelling),
                "stdout contains the token as {spelling:?}"
            );
            assert!(
                !stderr.contains(&spelling),
                "stderr contains the token as {spelling:?}"
            );
        }
    }

    #[tokio::test]
    async fn quiet_prints_no_request_lines() {
        let mut child = receive().arg("--quiet").spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let base = listening_url(&mut stdout).await;

        assert_eq!(
            post_status(base.as_str(), &general_body(&["CustomerAdded"])).await,
            StatusCode::ACCEPTED
        );
        interrupt(&child);
        let status = tokio::time::timeout(DEADLINE, child.wait())
            .await
            .unwrap()
            .unwrap();
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).await.unwrap();
        assert_eq!(status.code(), Some(0));
        assert!(rest.starts_with("stopped\n"), "{rest}");
    }

    #[tokio::test]
    async fn port_in_use_exits_3() {
        let occupied = start(ReceiverConfig::default()).await;
        let port = occupied.addr().port().to_string();

        let output = receive().args(["--port", &port]).output().await.unwrap();
        assert_eq!(output.status.code(), Some(mewshook::exit::RUNTIME_ERROR));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("failed to listen on"), "{stderr}");
        occupied.stop().await;
    }

    #[tokio::test]
    async fn empty_token_file_exits_2() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("token");
        std::fs::write(&path, "\n").unwrap();

        let output = receive()
            .arg("--token-file")
            .arg(&path)
            .output()
            .await
            .unwrap();
        assert_eq!(output.status.code(), Some(mewshook::exit::INVALID_INPUT));
    }

    /// Runs `command` to its end. A receiver that starts instead of
    /// rejecting its arguments runs until killed, so the wait is bounded.
    async fn output_within_deadline(command: &mut Command) -> std::process::Output {
        tokio::time::timeout(DEADLINE, command.output())
            .await
            .expect("the command exits without serving")
            .unwrap()
    }

    /// Output of a `receive` process stopped with Ctrl-C.
    struct Stopped {
        code: Option<i32>,
        /// Everything printed after the start line.
        stdout: String,
        stderr: String,
    }

    /// Sends Ctrl-C and collects the exit code and the output.
    async fn stop(mut child: Child, mut stdout: BufReader<ChildStdout>) -> Stopped {
        interrupt(&child);
        let status = tokio::time::timeout(DEADLINE, child.wait())
            .await
            .unwrap()
            .unwrap();
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).await.unwrap();
        let mut stderr = String::new();
        let mut pipe = child.stderr.take().unwrap();
        pipe.read_to_string(&mut stderr).await.unwrap();
        Stopped {
            code: status.code(),
            stdout: rest,
            stderr,
        }
    }

    #[tokio::test]
    async fn token_hidden_from_lines_logs_and_record() {
        let directory = tempfile::tempdir().unwrap();
        let record = directory.path().join("rec.jsonl");
        let mut child = receive()
            .args(["--verbose", "--token", SPACED_TOKEN, "--record"])
            .arg(&record)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let base = listening_url(&mut stdout).await;

        for target in SPACED_TOKEN_TARGETS {
            post(&format!("{base}{target}"), "{}").await;
        }
        let stopped = stop(child, stdout).await;
        assert_eq!(stopped.code, Some(0), "stderr: {}", stopped.stderr);

        let lines: Vec<&str> = stopped.stdout.lines().collect();
        assert!(
            lines[0].starts_with("403 wrong token"),
            "{}",
            stopped.stdout
        );
        assert!(
            lines[0].ends_with(&format!("/{PLACEHOLDER}")),
            "{}",
            lines[0]
        );
        assert_token_hidden(&stopped.stdout, SPACED_TOKEN, "stdout");
        // --verbose logs every response on stderr.
        assert!(
            stopped.stderr.contains("responded to request"),
            "{}",
            stopped.stderr
        );
        assert_token_hidden(&stopped.stderr, SPACED_TOKEN, "stderr");
        let recorded = std::fs::read_to_string(&record).unwrap();
        assert_eq!(recorded.lines().count(), SPACED_TOKEN_TARGETS.len());
        assert_token_hidden(&recorded, SPACED_TOKEN, "record file");
    }

    #[tokio::test]
    async fn client_gone_prints_line_and_counts() {
        let mut child = receive().args(["--delay", "60s"]).spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let base = listening_url(&mut stdout).await;

        let error = post_and_give_up(&format!("{base}general")).await;
        assert!(error.is_timeout(), "{error:?}");
        let mut line = String::new();
        tokio::time::timeout(DEADLINE, stdout.read_line(&mut line))
            .await
            .expect("a line for the request")
            .unwrap();
        assert!(
            line.starts_with("499 client gone before the response"),
            "{line}"
        );
        assert!(line.trim_end().ends_with(" /general"), "{line}");

        let stopped = stop(child, stdout).await;
        assert_eq!(stopped.code, Some(0), "stderr: {}", stopped.stderr);
        assert!(
            stopped
                .stdout
                .contains("requests                             1"),
            "{}",
            stopped.stdout
        );
        let client_gone_row = format!("{:<28}{:>10}", "  client gone, no response", 1);
        assert!(
            stopped.stdout.contains(&client_gone_row),
            "{}",
            stopped.stdout
        );
    }

    #[tokio::test]
    async fn record_in_missing_directory_exits_2() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("absent").join("x.jsonl");

        let output = output_within_deadline(receive().arg("--record").arg(&path)).await;
        assert_eq!(output.status.code(), Some(mewshook::exit::INVALID_INPUT));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(&path.display().to_string()), "{stderr}");
        assert!(stderr.contains("directory exists"), "{stderr}");
    }

    #[tokio::test]
    async fn empty_token_exits_2() {
        let output = output_within_deadline(receive().args(["--token", ""])).await;
        assert_eq!(output.status.code(), Some(mewshook::exit::INVALID_INPUT));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--token is empty"), "{stderr}");
        assert!(
            stderr.contains("omit --token to run without a token check"),
            "{stderr}"
        );
    }

    #[tokio::test]
    async fn empty_token_variable_exits_2() {
        let output = output_within_deadline(receive().env("MEWSHOOK_TOKEN", "")).await;
        assert_eq!(output.status.code(), Some(mewshook::exit::INVALID_INPUT));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("MEWSHOOK_TOKEN is empty"), "{stderr}");
    }

    #[tokio::test]
    async fn token_file_bom_stripped() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("token");
        std::fs::write(&path, "\u{feff}from-file\r\n").unwrap();

        let mut child = receive().arg("--token-file").arg(&path).spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let base = listening_url(&mut stdout).await;

        let status = post_status(
            &format!("{base}?Token=from-file"),
            &general_body(&["CustomerAdded"]),
        )
        .await;
        let stopped = stop(child, stdout).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{}", stopped.stdout);
    }

    #[tokio::test]
    async fn token_file_overrides_environment() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("token");
        std::fs::write(&path, "from-file\n").unwrap();

        let mut child = receive()
            .env("MEWSHOOK_TOKEN", "from-env")
            .arg("--token-file")
            .arg(&path)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let base = listening_url(&mut stdout).await;

        let body = general_body(&["CustomerAdded"]);
        assert_eq!(
            post_status(&format!("{base}?Token=from-file"), &body).await,
            StatusCode::ACCEPTED
        );
        assert_eq!(
            post_status(&format!("{base}?Token=from-env"), &body).await,
            StatusCode::FORBIDDEN
        );
        interrupt(&child);
        let status = tokio::time::timeout(DEADLINE, child.wait())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status.code(), Some(0));
    }
}
