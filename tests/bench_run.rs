//! Whole benchmark runs over real HTTP on loopback: statistics against a
//! receiver with a fixed delay, hostile receivers, the two clients, and
//! the token kept out of every output. Bounds are generous because the
//! machine may be busy; exact figures are checked on the paused clock in
//! bench_schedule.rs.

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use bytes::Bytes;
use mewshook::bench::bodies::{BodySource, EventsPerMessage};
use mewshook::bench::load::{Control, Limit, LoadPlan, Mode, Pacing};
use mewshook::bench::report::BenchReport;
use mewshook::bench::stall::StallPlan;
use mewshook::bench::stats::RecordRules;
use mewshook::bench::{BenchConfig, BenchError, Engine, MEWS_DEADLINE};
use mewshook::delivery::{ConnectionErrorKind, DeliveryConfig};
use mewshook::receiver::{ReceiverConfig, RunningReceiver};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

const TOKEN: &str = "s3cret-t0ken";

fn config(url: Url, mode: Mode, limit: Limit, concurrency: usize) -> BenchConfig {
    BenchConfig {
        url,
        token: None,
        token_param: "Token".to_string(),
        embedded_receiver: false,
        stall: None,
        engine: Engine::Auto,
        plan: LoadPlan {
            mode,
            limit,
            warmup: Duration::ZERO,
            concurrency,
            rules: RecordRules {
                deadline: MEWS_DEADLINE,
                late_after: Duration::from_millis(2),
            },
            pacing: Pacing::Thread,
            threads: 2,
        },
        delivery: DeliveryConfig::default(),
        source: BodySource::General {
            events: EventsPerMessage::fixed(3),
            enterprises: 1,
        },
        body_file: None,
        pool_size: 16,
        seed: 7,
        thresholds: Vec::new(),
    }
}

/// Serves `router` on a loopback port for the rest of the test.
async fn serve(router: Router) -> Url {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Url::parse(&format!("http://{addr}/hooks")).unwrap()
}

/// Starts a receiver that responds with `status` after `delay`.
async fn delayed_receiver(delay: Duration, status: StatusCode) -> Url {
    serve(Router::new().fallback(move || async move {
        tokio::time::sleep(delay).await;
        status
    }))
    .await
}

async fn run(config: &BenchConfig) -> BenchReport {
    mewshook::bench::run(config, &Control::new()).await.unwrap()
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

fn assert_every_request_accounted(report: &BenchReport) {
    let counts = &report.result.measurements.counts;
    assert_eq!(
        counts.responded() + counts.timeouts() + counts.connection_errors_total(),
        counts.requests,
        "{counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_delay_closed_loop_statistics() {
    // The reference receiver, validating every body, with a fixed delay.
    let receiver = RunningReceiver::start(ReceiverConfig {
        delay: Duration::from_millis(20),
        keep_requests: false,
        ..ReceiverConfig::default()
    })
    .await
    .unwrap();
    let report = run(&config(
        receiver.url(),
        Mode::Closed,
        Limit::Requests(80),
        4,
    ))
    .await;
    receiver.stop().await;
    let measured = &report.result.measurements;

    assert_eq!(measured.counts.requests, 80);
    assert_eq!(measured.counts.status_counts(), vec![(202, 80)]);
    assert_eq!(measured.counts.breaches(), 0);
    assert_eq!(measured.service.len(), 80);
    assert!(
        ms(measured.service.min()) >= 19.9,
        "{}",
        ms(measured.service.min())
    );
    let p50 = ms(measured.service.value_at_quantile(0.5));
    assert!((19.9..500.0).contains(&p50), "p50 {p50} ms");
    // Four connections at 20 ms each cannot exceed 200 per second.
    let rate = report.achieved_rate();
    assert!(rate > 0.0, "rate {rate}");
    assert!(rate <= 205.0, "rate {rate}");
    let timeline_requests: u64 = measured
        .timeline
        .points()
        .iter()
        .map(|point| point.requests)
        .sum();
    assert_eq!(timeline_requests, 80);
    assert_every_request_accounted(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_delay_open_loop_statistics() {
    let url = delayed_receiver(Duration::from_millis(20), StatusCode::NO_CONTENT).await;
    let report = run(&config(
        url,
        Mode::Open { rate: 100.0 },
        Limit::Requests(40),
        8,
    ))
    .await;
    let measured = &report.result.measurements;

    assert_eq!(measured.counts.requests, 40);
    assert_eq!(measured.counts.succeeded, 40);
    assert_eq!(measured.corrected.len(), 40);
    assert_eq!(measured.lag.len(), 40);
    assert!(ms(measured.service.min()) >= 19.9);
    for quantile in [0.5, 0.9, 0.99, 1.0] {
        let corrected = measured.corrected.value_at_quantile(quantile);
        let service = measured.service.value_at_quantile(quantile);
        assert!(corrected >= service, "q{quantile}: {corrected} < {service}");
    }
    // 40 requests at 100 per second take at least 0.4 s.
    assert!(report.result.window >= Duration::from_millis(400));
    assert!(
        report.achieved_rate() <= 101.0,
        "{}",
        report.achieved_rate()
    );
}

/// Starts a raw TCP receiver that handles each connection with `respond`.
async fn raw_receiver<F, Fut>(respond: F) -> Url
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let respond = std::sync::Arc::new(respond);
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(respond(socket));
        }
    });
    Url::parse(&format!("http://{addr}/")).unwrap()
}

async fn read_request(socket: &mut tokio::net::TcpStream) {
    let mut buffer = vec![0u8; 64 * 1024];
    let _ = socket.read(&mut buffer).await;
}

fn hostile_config(url: Url, engine: Engine) -> BenchConfig {
    let mut config = config(url, Mode::Closed, Limit::Requests(6), 2);
    config.delivery.timeout = Duration::from_millis(300);
    config.engine = engine;
    config
}

/// The plain-HTTP clients every hostile receiver is tried with.
const CLIENTS: [Engine; 2] = [Engine::Raw, Engine::Hyper];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resetting_receiver_is_counted() {
    let url = raw_receiver(|mut socket| async move {
        read_request(&mut socket).await;
        drop(socket);
    })
    .await;
    for engine in CLIENTS {
        let report = run(&hostile_config(url.clone(), engine)).await;
        let counts = &report.result.measurements.counts;

        assert_eq!(counts.requests, 6);
        assert_eq!(counts.connection_errors_of(ConnectionErrorKind::Reset), 6);
        assert_eq!(counts.errors(), 6);
        assert!(report.result.measurements.service.is_empty());
        assert!(!report.result.measurements.examples.is_empty());
        assert_every_request_accounted(&report);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_response_is_counted() {
    let url = raw_receiver(|mut socket| async move {
        read_request(&mut socket).await;
        let _ = socket.write_all(b"NOT HTTP AT ALL\r\n\r\n").await;
    })
    .await;
    for engine in CLIENTS {
        let report = run(&hostile_config(url.clone(), engine)).await;
        let counts = &report.result.measurements.counts;

        assert_eq!(counts.requests, 6);
        assert_eq!(counts.connection_errors_total(), 6, "{engine:?} {counts:?}");
        assert_every_request_accounted(&report);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_receiver_times_out() {
    let url = raw_receiver(|mut socket| async move {
        read_request(&mut socket).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    for engine in CLIENTS {
        let report = run(&hostile_config(url.clone(), engine)).await;
        let counts = &report.result.measurements.counts;

        assert_eq!(counts.requests, 6);
        assert_eq!(counts.timeouts_headers, 6);
        // A timeout is a deadline breach whatever --timeout is.
        assert_eq!(counts.breaches(), 6);
        let service = &report.result.measurements.service;
        assert_eq!(service.len(), 6);
        assert!(ms(service.min()) >= 299.0, "{}", ms(service.min()));
        assert_every_request_accounted(&report);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_body_times_out_in_body_phase() {
    let url = raw_receiver(|mut socket| async move {
        read_request(&mut socket).await;
        let _ = socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
            .await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    for engine in CLIENTS {
        let report = run(&hostile_config(url.clone(), engine)).await;
        let counts = &report.result.measurements.counts;

        assert_eq!(counts.timeouts_body, 6, "{engine:?} {counts:?}");
        assert_eq!(counts.succeeded, 0);
        assert_every_request_accounted(&report);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_response_is_capped_and_counted() {
    let body = Bytes::from(vec![b'x'; 4 * 1024 * 1024]);
    let url = serve(Router::new().fallback(move || {
        let body = body.clone();
        async move { (StatusCode::OK, body) }
    }))
    .await;
    for engine in CLIENTS {
        let report = run(&hostile_config(url.clone(), engine)).await;
        let counts = &report.result.measurements.counts;

        assert_eq!(counts.requests, 6);
        assert_eq!(
            counts.status_counts(),
            vec![(200, 6)],
            "{engine:?} {counts:?}"
        );
        assert_every_request_accounted(&report);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_count_as_errors() {
    let url = delayed_receiver(Duration::ZERO, StatusCode::SERVICE_UNAVAILABLE).await;
    for engine in CLIENTS {
        let report = run(&hostile_config(url.clone(), engine)).await;
        let counts = &report.result.measurements.counts;

        assert_eq!(counts.status_counts(), vec![(503, 6)]);
        assert_eq!(counts.errors(), 6);
        assert_eq!(report.error_rate(), Some(1.0));
        // A response has a latency whatever its status.
        assert_eq!(report.result.measurements.service.len(), 6);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_differ_on_redirects() {
    let url = serve(
        Router::new()
            .route(
                "/a",
                post(|| async { (StatusCode::TEMPORARY_REDIRECT, [("location", "/b")]) }),
            )
            .route("/b", post(|| async { StatusCode::ACCEPTED })),
    )
    .await;
    let url = url.join("/a").unwrap();

    let mut delivery = config(url.clone(), Mode::Closed, Limit::Requests(5), 1);
    delivery.engine = Engine::Delivery;
    let report = run(&delivery).await;
    assert_eq!(report.settings.client, "delivery");
    assert_eq!(
        report.result.measurements.counts.status_counts(),
        vec![(202, 5)]
    );

    // The two plain-HTTP clients send one exchange and count the 307.
    for engine in [Engine::Raw, Engine::Hyper] {
        let mut plain = config(url.clone(), Mode::Closed, Limit::Requests(5), 1);
        plain.engine = engine;
        let report = run(&plain).await;
        assert_eq!(report.settings.client, engine.name());
        assert_eq!(
            report.result.measurements.counts.status_counts(),
            vec![(307, 5)],
            "{engine:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_reaches_receiver_and_no_output() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorded = seen.clone();
    let url = serve(Router::new().fallback(move |uri: axum::http::Uri| {
        let recorded = recorded.clone();
        async move {
            recorded.lock().unwrap().push(uri.to_string());
            // A receiver that echoes the token back must not leak it.
            (StatusCode::UNAUTHORIZED, format!("bad token in {uri}"))
        }
    }))
    .await;
    let mut config = config(url, Mode::Open { rate: 200.0 }, Limit::Requests(10), 2);
    config.token = Some(TOKEN.to_string());
    let report = run(&config).await;

    let uris = seen.lock().unwrap().clone();
    assert_eq!(uris.len(), 10);
    assert!(
        uris[0].ends_with(&format!("/hooks?Token={TOKEN}")),
        "{}",
        uris[0]
    );
    let outputs = [
        report.summary(),
        mewshook::bench::json::render(&report).unwrap(),
        mewshook::bench::html::render(&report),
    ];
    for output in outputs {
        assert!(!output.contains(TOKEN), "{output}");
        assert!(output.contains("Token=&lt;redacted&gt;") || output.contains("Token=<redacted>"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_receiver_fails_at_once() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = Url::parse(&format!("http://{addr}/hooks")).unwrap();
    let mut config = config(
        url,
        Mode::Closed,
        Limit::Duration(Duration::from_secs(60)),
        2,
    );
    config.token = Some(TOKEN.to_string());

    let error = mewshook::bench::run(&config, &Control::new())
        .await
        .unwrap_err();
    assert!(matches!(error, BenchError::Unreachable { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&addr.to_string()), "{message}");
    assert!(message.contains("start the receiver"), "{message}");
    assert!(!message.contains(TOKEN), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalling_receiver_shows_in_open_loop() {
    let plan = StallPlan::new(Duration::from_millis(300), Duration::from_millis(100)).unwrap();
    let receiver = mewshook::bench::stall::StallingReceiver::start(
        ReceiverConfig {
            token_param: "Token".to_string(),
            ..ReceiverConfig::default()
        },
        plan,
    )
    .await
    .unwrap();
    let config = config(
        receiver.url(),
        Mode::Open { rate: 200.0 },
        Limit::Duration(Duration::from_millis(600)),
        50,
    );
    let report = run(&config).await;
    receiver.stop().await;

    let measured = &report.result.measurements;
    assert!(measured.counts.requests >= 100, "{:?}", measured.counts);
    // A third of the time is stalled, so a tenth of the requests easily
    // waits 50 ms or more.
    let p90 = ms(measured.corrected.value_at_quantile(0.9));
    assert!(p90 >= 50.0, "corrected p90 {p90} ms");
}

#[test]
fn config_debug_hides_token() {
    let url = Url::parse(&format!("http://127.0.0.1:9/hooks?Token={TOKEN}")).unwrap();
    let mut config = config(url, Mode::Closed, Limit::Requests(1), 1);
    config.token = Some(TOKEN.to_string());
    let debug = format!("{config:?}");
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(debug.contains("<redacted>"), "{debug}");
}

/// Starts a raw TCP receiver that responds to every request on a
/// connection with `response`, then closes the connection if `close_after` is set.
async fn scripted_receiver(response: &'static [u8], close_after: bool) -> Url {
    raw_receiver(move |mut socket| async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if socket.write_all(response).await.is_err() {
                return;
            }
            if close_after {
                return;
            }
        }
    })
    .await
}

async fn raw_client_statuses(response: &'static [u8], close_after: bool) -> BenchReport {
    let url = scripted_receiver(response, close_after).await;
    let mut config = hostile_config(url, Engine::Raw);
    config.plan.concurrency = 1;
    run(&config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_client_reads_every_framing() {
    // Each response is sent whole in one write; the raw client must find
    // its end, or the next request on the connection would read garbage.
    let keep_alive: [&'static [u8]; 4] = [
        b"HTTP/1.1 202 Accepted\r\ncontent-length: 5\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\nx-trailer: 1\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\ncontent-length: 10\r\n\r\n",
    ];
    for response in keep_alive {
        let report = raw_client_statuses(response, false).await;
        let counts = &report.result.measurements.counts;
        let shown = String::from_utf8_lossy(response);
        assert_eq!(counts.requests, 6, "{shown}");
        assert_eq!(counts.responded(), 6, "{shown}: {counts:?}");
        assert_eq!(counts.connection_errors_total(), 0, "{shown}: {counts:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_client_handles_closing_receivers() {
    let closing: [&'static [u8]; 2] = [
        // HTTP/1.0 without a length: the body ends with the connection.
        b"HTTP/1.0 200 OK\r\n\r\nbody until close",
        b"HTTP/1.1 202 Accepted\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
    ];
    for response in closing {
        let report = raw_client_statuses(response, true).await;
        let counts = &report.result.measurements.counts;
        let shown = String::from_utf8_lossy(response);
        assert_eq!(counts.responded(), 6, "{shown}: {counts:?}");
        assert_eq!(counts.connection_errors_total(), 0, "{shown}: {counts:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_client_accounts_for_silent_close() {
    // Closed after the response without saying so. Whether the next
    // request sees the close before it is written depends on timing, so
    // it may reconnect or fail, but every request is accounted for.
    let response = b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n";
    let report = raw_client_statuses(response, true).await;
    let counts = &report.result.measurements.counts;
    assert_eq!(counts.requests, 6, "{counts:?}");
    assert!(counts.responded() >= 1, "{counts:?}");
    assert_every_request_accounted(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_client_rejects_broken_framing() {
    let broken: [&'static [u8]; 3] = [
        b"HTTP/1.1 200 OK\r\ncontent-length: ten\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort",
    ];
    for response in broken {
        let report = raw_client_statuses(response, true).await;
        let counts = &report.result.measurements.counts;
        let shown = String::from_utf8_lossy(response);
        assert_eq!(counts.requests, 6, "{shown}");
        assert_eq!(counts.connection_errors_total(), 6, "{shown}: {counts:?}");
        assert_every_request_accounted(&report);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_client_counts_dropped_request() {
    // Each connection responds to one request, then reads the next one and
    // closes without responding. The receiver may have acted on that
    // request, so it is a connection error, never sent again.
    let url = raw_receiver(|mut socket| async move {
        read_request(&mut socket).await;
        let _ = socket
            .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
            .await;
        read_request(&mut socket).await;
    })
    .await;
    let mut config = hostile_config(url, Engine::Raw);
    config.plan.concurrency = 1;
    let report = run(&config).await;
    let counts = &report.result.measurements.counts;

    assert_eq!(counts.requests, 6);
    assert_eq!(counts.status_counts(), vec![(202, 3)], "{counts:?}");
    assert_eq!(counts.connection_errors_total(), 3, "{counts:?}");
    assert_every_request_accounted(&report);
}
