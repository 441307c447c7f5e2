//! The Mews transport rules of one attempt, against wiremock and small
//! hand-written servers on loopback.

use std::time::Duration;

use bytes::Bytes;
use mewshook::delivery::{Client, DeliveryConfig, Outcome, Request, TimeoutPhase, url_with_token};
use mewshook::secret::Redactor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(timeout: Duration) -> Client {
    let config = DeliveryConfig {
        timeout,
        ..DeliveryConfig::default()
    };
    Client::new(config, Redactor::new(["secret-token"])).unwrap()
}

fn request(url: &str) -> Request {
    Request {
        url: Url::parse(url).unwrap(),
        body: Bytes::from_static(br#"{"EnterpriseId":"x","IntegrationId":"y","Events":[]}"#),
        content_type: None,
    }
}

async fn redirect_server(status: u16, location: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path("/a"))
        .respond_with(ResponseTemplate::new(status).insert_header("Location", location))
        .mount(&server)
        .await;
    Mock::given(path("/b"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn token_is_percent_encoded_after_existing_query() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    let token = "a+b&c=d%e f";
    let base = Url::parse(&format!("{}/hook?tenant=7", server.uri())).unwrap();
    let url = url_with_token(&base, "Token", token);

    let attempt = client(Duration::from_secs(5))
        .attempt(&request(url.as_str()))
        .await;
    assert_eq!(attempt.outcome, Outcome::Delivered { status: 202 });

    let received = server.received_requests().await.unwrap();
    let query: Vec<(String, String)> = received[0].url.query_pairs().into_owned().collect();
    assert_eq!(
        query,
        vec![
            ("tenant".to_string(), "7".to_string()),
            ("Token".to_string(), token.to_string())
        ]
    );
    assert_eq!(
        received[0].url.query(),
        Some("tenant=7&Token=a%2Bb%26c%3Dd%25e%20f")
    );
}

#[tokio::test]
async fn sends_json_post_with_content_length() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let sent = request(&server.uri());
    client(Duration::from_secs(5)).attempt(&sent).await;

    let received = &server.received_requests().await.unwrap()[0];
    assert_eq!(received.method.as_str(), "POST");
    assert_eq!(
        received.headers.get("content-type").unwrap(),
        "application/json"
    );
    let length = received
        .headers
        .get("content-length")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(length, sent.body.len().to_string());
    assert!(received.headers.get("transfer-encoding").is_none());
    assert_eq!(received.body, sent.body.to_vec());
}

#[tokio::test]
async fn any_2xx_is_delivered_and_others_rejected() {
    for (status, delivered) in [
        (200, true),
        (202, true),
        (204, true),
        (400, false),
        (401, false),
        (500, false),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status))
            .mount(&server)
            .await;
        let attempt = client(Duration::from_secs(5))
            .attempt(&request(&server.uri()))
            .await;
        assert_eq!(attempt.outcome.is_delivered(), delivered, "status {status}");
        assert_eq!(attempt.outcome.status(), Some(status));
    }
}

#[tokio::test]
async fn redirect_307_308_resends_same_bytes() {
    for status in [307, 308] {
        let server = redirect_server(status, "/b").await;
        let sent = request(&format!("{}/a", server.uri()));
        let attempt = client(Duration::from_secs(5)).attempt(&sent).await;

        assert_eq!(
            attempt.outcome,
            Outcome::Delivered { status: 202 },
            "status {status}"
        );
        assert_eq!(attempt.redirects.len(), 1);
        assert_eq!(attempt.redirects[0].status, status);
        let received = server.received_requests().await.unwrap();
        assert_eq!(received.len(), 2);
        for hop in &received {
            assert_eq!(hop.method.as_str(), "POST");
            assert_eq!(hop.body, sent.body.to_vec());
            assert_eq!(hop.headers.get("content-type").unwrap(), "application/json");
        }
        assert_eq!(received[1].url.path(), "/b");
    }
}

#[tokio::test]
async fn follows_absolute_location() {
    let target = MockServer::start().await;
    Mock::given(path("/b"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&target)
        .await;
    let server = redirect_server(308, &format!("{}/b", target.uri())).await;
    let attempt = client(Duration::from_secs(5))
        .attempt(&request(&format!("{}/a", server.uri())))
        .await;
    assert_eq!(attempt.outcome, Outcome::Delivered { status: 204 });
    assert_eq!(target.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn does_not_follow_301_302_303() {
    for status in [301, 302, 303] {
        let server = redirect_server(status, "/b").await;
        let attempt = client(Duration::from_secs(5))
            .attempt(&request(&format!("{}/a", server.uri())))
            .await;

        let Outcome::RedirectNotFollowed {
            status: got,
            reason,
        } = &attempt.outcome
        else {
            panic!(
                "status {status}: expected a redirect failure, got {:?}",
                attempt.outcome
            );
        };
        assert_eq!(*got, status);
        assert!(reason.contains("GET"), "reason for {status}: {reason}");
        assert_eq!(
            server.received_requests().await.unwrap().len(),
            1,
            "status {status}"
        );
    }
}

#[tokio::test]
async fn missing_location_fails() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(307))
        .mount(&server)
        .await;
    let attempt = client(Duration::from_secs(5))
        .attempt(&request(&server.uri()))
        .await;
    assert!(
        matches!(&attempt.outcome, Outcome::RedirectNotFollowed { reason, .. } if reason.contains("no Location")),
        "{:?}",
        attempt.outcome
    );
}

#[tokio::test]
async fn redirect_loop_fails() {
    let server = MockServer::start().await;
    Mock::given(path("/a"))
        .respond_with(ResponseTemplate::new(307).insert_header("Location", "/b"))
        .mount(&server)
        .await;
    Mock::given(path("/b"))
        .respond_with(ResponseTemplate::new(307).insert_header("Location", "/a"))
        .mount(&server)
        .await;
    let attempt = client(Duration::from_secs(5))
        .attempt(&request(&format!("{}/a", server.uri())))
        .await;
    assert!(
        matches!(&attempt.outcome, Outcome::RedirectNotFollowed { reason, .. } if reason.contains("loop")),
        "{:?}",
        attempt.outcome
    );
    assert_eq!(attempt.redirects.len(), 1);
}

#[tokio::test]
async fn hop_limit_ends_attempt() {
    let server = MockServer::start().await;
    // /hop/N redirects to /hop/N+1 forever, so only the hop limit stops it.
    for hop in 0..20 {
        Mock::given(path(format!("/hop/{hop}")))
            .respond_with(
                ResponseTemplate::new(307).insert_header("Location", format!("/hop/{}", hop + 1)),
            )
            .mount(&server)
            .await;
    }
    let config = DeliveryConfig {
        max_redirects: 3,
        ..DeliveryConfig::default()
    };
    let client = Client::new(config, Redactor::default()).unwrap();
    let attempt = client
        .attempt(&request(&format!("{}/hop/0", server.uri())))
        .await;

    assert!(
        matches!(&attempt.outcome, Outcome::RedirectNotFollowed { reason, .. } if reason.contains("more than 3")),
        "{:?}",
        attempt.outcome
    );
    assert_eq!(attempt.redirects.len(), 3);
    assert_eq!(server.received_requests().await.unwrap().len(), 4);
}

#[tokio::test]
async fn slow_headers_time_out() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let attempt = client(Duration::from_millis(200))
        .attempt(&request(&server.uri()))
        .await;
    assert_eq!(
        attempt.outcome,
        Outcome::TimedOut {
            phase: TimeoutPhase::Headers
        }
    );
    assert!(attempt.total >= Duration::from_millis(200));
    assert!(attempt.total < Duration::from_secs(2));
}

/// Serves one response whose headers arrive at once and whose body never
/// finishes.
async fn stalling_body_server() -> Url {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buffer = vec![0u8; 64 * 1024];
        let _ = socket.read(&mut buffer).await;
        let _ = socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\nstarted")
            .await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    });
    Url::parse(&format!("http://{addr}/")).unwrap()
}

#[tokio::test]
async fn slow_body_times_out_despite_early_headers() {
    let url = stalling_body_server().await;
    let attempt = client(Duration::from_millis(300))
        .attempt(&request(url.as_str()))
        .await;
    assert_eq!(
        attempt.outcome,
        Outcome::TimedOut {
            phase: TimeoutPhase::Body
        }
    );
    assert!(attempt.headers_after.is_some());
}

#[tokio::test]
async fn timeout_covers_every_redirect_hop() {
    let server = MockServer::start().await;
    Mock::given(path("/a"))
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("Location", "/b")
                .set_delay(Duration::from_millis(200)),
        )
        .mount(&server)
        .await;
    Mock::given(path("/b"))
        .respond_with(ResponseTemplate::new(202).set_delay(Duration::from_millis(200)))
        .mount(&server)
        .await;
    // Each hop fits in the deadline alone, but the two together do not.
    let attempt = client(Duration::from_millis(300))
        .attempt(&request(&format!("{}/a", server.uri())))
        .await;
    assert!(
        matches!(attempt.outcome, Outcome::TimedOut { .. }),
        "{:?}",
        attempt.outcome
    );
    assert_eq!(attempt.redirects.len(), 1);
}

#[tokio::test]
async fn refused_connection_is_classified() {
    // Bind and drop to find a port with nothing listening.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = url_with_token(
        &Url::parse(&format!("http://{addr}/")).unwrap(),
        "Token",
        "secret-token",
    );
    let attempt = client(Duration::from_secs(5))
        .attempt(&request(url.as_str()))
        .await;

    let Outcome::ConnectionFailed { kind, detail } = &attempt.outcome else {
        panic!("expected a connection failure, got {:?}", attempt.outcome);
    };
    assert_eq!(*kind, mewshook::delivery::ConnectionErrorKind::Refused);
    assert!(!detail.contains("secret-token"), "{detail}");
}

#[tokio::test]
async fn reset_connection_is_classified() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buffer = vec![0u8; 1024];
        let _ = socket.read(&mut buffer).await;
        // Closing without a response is how a crashing receiver looks.
        drop(socket);
    });
    let attempt = client(Duration::from_secs(5))
        .attempt(&request(&format!("http://{addr}/")))
        .await;
    assert!(
        matches!(
            attempt.outcome,
            Outcome::ConnectionFailed {
                kind: mewshook::delivery::ConnectionErrorKind::Reset,
                ..
            }
        ),
        "{:?}",
        attempt.outcome
    );
}

#[tokio::test]
async fn response_body_read_is_capped() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; 4 * 1024 * 1024]))
        .mount(&server)
        .await;
    let attempt = client(Duration::from_secs(5))
        .attempt(&request(&server.uri()))
        .await;
    assert_eq!(attempt.outcome, Outcome::Delivered { status: 200 });
    assert_eq!(attempt.response_excerpt.len(), 512);
}

#[tokio::test]
async fn echoed_token_is_redacted_in_excerpt_and_redirects() {
    let server = MockServer::start().await;
    Mock::given(path("/a"))
        .respond_with(ResponseTemplate::new(307).insert_header("Location", "/b?Token=secret-token"))
        .mount(&server)
        .await;
    Mock::given(path("/b"))
        .respond_with(ResponseTemplate::new(401).set_body_string("bad token secret-token"))
        .mount(&server)
        .await;
    let attempt = client(Duration::from_secs(5))
        .attempt(&request(&format!("{}/a", server.uri())))
        .await;
    let json = serde_json::to_string(&attempt).unwrap();
    assert!(!json.contains("secret-token"), "{json}");
    assert!(json.contains("<redacted>"));
}

#[tokio::test]
async fn redirect_to_other_scheme_is_not_followed() {
    let server = redirect_server(307, "ftp://127.0.0.1/b").await;
    let attempt = client(Duration::from_secs(5))
        .attempt(&request(&format!("{}/a", server.uri())))
        .await;
    assert!(
        matches!(&attempt.outcome, Outcome::RedirectNotFollowed { status: 307, reason } if reason.contains("not an http")),
        "{:?}",
        attempt.outcome
    );
    assert!(attempt.redirects.is_empty());
}

#[tokio::test]
async fn token_hidden_in_every_echoed_spelling() {
    let token = "ab+cd/ef=gh ü";
    let lower_hex = "ab%2bcd%2fef%3dgh%20%c3%bc";
    let python_quote = "ab%2Bcd/ef%3Dgh%20%C3%BC";
    let server = MockServer::start().await;
    Mock::given(path("/a"))
        .respond_with(
            ResponseTemplate::new(307).insert_header("Location", format!("/b?Next={lower_hex}")),
        )
        .mount(&server)
        .await;
    // The echo sits across the 512-character excerpt boundary.
    let padding = "x".repeat(505);
    Mock::given(path("/b"))
        .respond_with(ResponseTemplate::new(401).set_body_string(format!(
            "{padding}{token} {python_quote} {}",
            serde_json::to_string(token).unwrap()
        )))
        .mount(&server)
        .await;
    let client = Client::new(DeliveryConfig::default(), Redactor::new([token])).unwrap();
    let attempt = client
        .attempt(&request(&format!("{}/a", server.uri())))
        .await;

    let json = serde_json::to_string(&attempt).unwrap();
    for leaked in [token, lower_hex, python_quote, "ab+cd", "ab%2"] {
        assert!(!json.contains(leaked), "{leaked} in {json}");
    }
    assert_eq!(attempt.redirects.len(), 1);
    assert!(
        attempt.redirects[0]
            .location
            .ends_with("/b?Next=<redacted>")
    );
    // The cut falls inside the placeholder, never inside the token.
    assert_eq!(attempt.response_excerpt, format!("{padding}<redact"));
}

/// Serves HTTP/1.1 keep-alive responses and closes each connection after
/// it has been idle for `idle`, as servers with a keep-alive timeout do.
/// Returns the URL and a counter of accepted connections.
async fn idle_closing_server(
    idle: Duration,
) -> (Url, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 64 * 1024];
                loop {
                    // A read that waits longer than `idle` ends the
                    // connection, like a server's keep-alive timeout.
                    let Ok(Ok(read)) = tokio::time::timeout(idle, socket.read(&mut buffer)).await
                    else {
                        return;
                    };
                    if read == 0 {
                        return;
                    }
                    let answer = b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n";
                    if socket.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (Url::parse(&format!("http://{addr}/")).unwrap(), connections)
}

#[tokio::test]
async fn idle_closed_connection_not_failure() {
    let (url, connections) = idle_closing_server(Duration::from_millis(200)).await;
    let client = client(Duration::from_secs(5));

    let first = client.attempt(&request(url.as_str())).await;
    assert_eq!(first.outcome, Outcome::Delivered { status: 202 });
    // The server has closed the pooled connection by now; the next
    // attempt must notice and open a fresh one.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = client.attempt(&request(url.as_str())).await;

    assert_eq!(second.outcome, Outcome::Delivered { status: 202 });
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn busy_connection_is_reused() {
    let (url, connections) = idle_closing_server(Duration::from_secs(5)).await;
    let client = client(Duration::from_secs(5));
    for _ in 0..5 {
        let attempt = client.attempt(&request(url.as_str())).await;
        assert_eq!(attempt.outcome, Outcome::Delivered { status: 202 });
    }
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1);
}
