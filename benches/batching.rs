//! Batching General events into messages per enterprise integration.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mewshook::batcher::batch_all;
use mewshook::generator::Generator;

fn batching(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch_10000_events");
    group.throughput(Throughput::Elements(10_000));
    for (enterprises, cap) in [(1usize, 500usize), (10, 500), (10, 50)] {
        let events = Generator::new(4, enterprises).realistic(10_000);
        let id = BenchmarkId::new(format!("{enterprises}_enterprises"), format!("cap_{cap}"));
        group.bench_with_input(id, &events, |b, events| {
            b.iter(|| black_box(batch_all(cap, events.iter().cloned())));
        });
    }
    group.finish();
}

criterion_group!(benches, batching);
criterion_main!(benches);
