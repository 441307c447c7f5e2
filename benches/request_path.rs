//! The request path of `mewshook bench` against the in-process reference
//! receiver: one exchange at a time through each client, and the cost of
//! recording its outcome. The client runs on the calling thread and the
//! receiver on the runtime's workers, so each figure is a whole loopback
//! round trip with its thread wake-ups, not the client's cost alone.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use mewshook::bench::bodies::{BodyPool, BodySource, EventsPerMessage};
use mewshook::bench::client::{Connection, DeliveryTransport, Exchange, Transport};
use mewshook::bench::hyper_client::HyperTransport;
use mewshook::bench::raw::RawTransport;
use mewshook::bench::stats::{RecordRules, Recorder, Sample};
use mewshook::delivery::DeliveryConfig;
use mewshook::receiver::{ReceiverConfig, RunningReceiver};
use mewshook::secret::Redactor;

/// Sends `iters` requests one after another and returns the time taken.
fn time_exchanges<C: Connection>(
    runtime: &tokio::runtime::Runtime,
    connection: &mut C,
    iters: u64,
) -> Duration {
    runtime.block_on(async {
        let start = Instant::now();
        for index in 0..iters {
            let exchange = connection.exchange(index as usize).await;
            debug_assert_eq!(exchange, Exchange::Responded { status: 202 });
            black_box(exchange);
        }
        start.elapsed()
    })
}

fn request_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
    let receiver = runtime
        .block_on(RunningReceiver::start(ReceiverConfig {
            keep_requests: false,
            ..ReceiverConfig::default()
        }))
        .expect("the reference receiver starts");
    let url = receiver.url();
    let source = BodySource::General {
        events: EventsPerMessage::fixed(10),
        enterprises: 1,
    };
    let bodies = BodyPool::generate(&source, 64, 1).bodies().to_vec();
    let config = DeliveryConfig::default();

    let mut group = c.benchmark_group("exchange_10_events");
    let raw = runtime
        .block_on(RawTransport::new(
            &url,
            bodies.clone(),
            &config,
            Redactor::default(),
        ))
        .expect("the raw client is prepared");
    let mut connection = raw.open();
    group.bench_function("raw", |b| {
        b.iter_custom(|iters| time_exchanges(&runtime, &mut connection, iters));
    });

    let hyper = runtime
        .block_on(HyperTransport::new(
            &url,
            bodies.clone(),
            &config,
            Redactor::default(),
        ))
        .expect("the hyper client is prepared");
    let mut connection = hyper.open();
    group.bench_function("hyper", |b| {
        b.iter_custom(|iters| time_exchanges(&runtime, &mut connection, iters));
    });

    let delivery = DeliveryTransport::new(&url, bodies, &config, Redactor::default())
        .expect("the delivery client is prepared");
    let mut connection = delivery.open();
    group.bench_function("delivery", |b| {
        b.iter_custom(|iters| time_exchanges(&runtime, &mut connection, iters));
    });
    group.finish();
    runtime.block_on(receiver.stop());
}

fn record_sample(c: &mut Criterion) {
    let recorder = Recorder::new(
        2,
        RecordRules {
            deadline: Duration::from_secs(5),
            late_after: Duration::from_millis(2),
        },
    );
    let now = tokio::time::Instant::now();
    let sample = Sample {
        intended: Some(now),
        waited_for_connection: false,
        sent: now + Duration::from_micros(40),
        finished: now + Duration::from_micros(250),
        exchange: Exchange::Responded { status: 202 },
    };
    c.bench_function("record_open_loop_sample", |b| {
        b.iter(|| recorder.record(0, black_box(&sample)));
    });
}

criterion_group!(benches, request_path, record_sample);
criterion_main!(benches);
