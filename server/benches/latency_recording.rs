//! What timing a connection's round for `/metrics` adds per round
//! (`server/src/latency.rs`): one clock read at the round's end and the
//! histogram update, for a round of one GET (pipeline depth 1, where a
//! round is a request) and a round of 16 requests of two commands; and,
//! for scale, the clock read alone.

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use tagcached::latency::{CommandLatency, RoundTally};
use tagcached_protocol::Opcode;

fn recording(c: &mut Criterion) {
    let mut latency = CommandLatency::default();
    let mut tally = RoundTally::default();
    let started = Instant::now();
    c.bench_function("clock_read", |b| b.iter(|| black_box(Instant::now())));
    c.bench_function("record_round_of_1_get", |b| {
        b.iter(|| {
            tally.add(black_box(Opcode::GET));
            latency.record(&mut tally, black_box(started).elapsed());
        })
    });
    c.bench_function("record_round_of_16_get_set", |b| {
        b.iter(|| {
            for _ in 0..14 {
                tally.add(black_box(Opcode::GET));
            }
            tally.add(black_box(Opcode::SET));
            tally.add(black_box(Opcode::SET));
            latency.record(&mut tally, black_box(started).elapsed());
        })
    });
    black_box(latency);
}

criterion_group!(benches, recording);
criterion_main!(benches);
