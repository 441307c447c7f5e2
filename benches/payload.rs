//! Payload generation and serialization: what the body pool costs before
//! a benchmark starts, and what `send` pays per message.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mewshook::bench::bodies::{BodyPool, BodySource, EventsPerMessage};
use mewshook::generator::Generator;
use mewshook::payload::GeneralWebhook;

fn generation(c: &mut Criterion) {
    let mut group = c.benchmark_group("generate_events");
    for count in [10usize, 500] {
        group.throughput(Throughput::Elements(count as u64));
        group.bench_with_input(BenchmarkId::from_parameter(count), &count, |b, &count| {
            let mut generator = Generator::new(1, 3);
            b.iter(|| black_box(generator.realistic(count)));
        });
    }
    group.bench_function("integration_created", |b| {
        let mut generator = Generator::new(1, 3);
        b.iter(|| black_box(generator.integration("IntegrationCreated")));
    });
    group.finish();
}

fn serialization(c: &mut Criterion) {
    let mut group = c.benchmark_group("serialize_general");
    for count in [1usize, 10, 500] {
        let mut generator = Generator::new(2, 1);
        let key = generator.keys()[0];
        let events = generator
            .realistic(count)
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        let message = GeneralWebhook::new(key, events);
        group.throughput(Throughput::Bytes(message.to_bytes().len() as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(count),
            &message,
            |b, message| {
                b.iter(|| black_box(message.to_bytes()));
            },
        );
    }
    group.finish();

    let mut generator = Generator::new(3, 1);
    let hook = generator.integration("IntegrationCreated");
    c.bench_function("serialize_integration", |b| {
        b.iter(|| black_box(hook.to_bytes()));
    });
}

fn body_pool(c: &mut Criterion) {
    let source = BodySource::General {
        events: EventsPerMessage { min: 1, max: 20 },
        enterprises: 4,
    };
    c.bench_function("body_pool_256_general", |b| {
        b.iter(|| black_box(BodyPool::generate(&source, 256, 9)));
    });
}

criterion_group!(benches, generation, serialization, body_pool);
criterion_main!(benches);
