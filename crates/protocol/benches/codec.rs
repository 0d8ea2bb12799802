//! Codec throughput: the server's hot path is decoding pipelined GETs and
//! encoding their hits; SET with tags is the heaviest common request.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tokio_util::codec::{Decoder, Encoder};

use tagcached_protocol::request::{Command, Get, Set, SetMode};
use tagcached_protocol::response::{Hit, Lease, Outcome};
use tagcached_protocol::{ClientCodec, Opcode, Request, Response, ServerCodec};

/// Requests per pipelined batch.
const BATCH: usize = 64;

fn encode_requests(requests: &[Request]) -> Bytes {
    let mut wire = BytesMut::new();
    let mut codec = ClientCodec::default();
    for request in requests {
        codec.encode(request, &mut wire).unwrap();
    }
    wire.freeze()
}

fn decode_all(codec: &mut ServerCodec, buf: &mut BytesMut) -> usize {
    let mut count = 0;
    while let Some(request) = codec.decode(buf).unwrap() {
        black_box(request.unwrap());
        count += 1;
    }
    count
}

fn pipelined_gets(c: &mut Criterion) {
    let requests: Vec<Request> = (0..BATCH)
        .map(|i| {
            let key = Bytes::from(format!("user:{i:08}:profile"));
            Request::new(
                i as u32,
                Command::Get(Get {
                    key,
                    request_tags: None,
                }),
            )
        })
        .collect();
    let wire = encode_requests(&requests);
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("64 pipelined GETs", |b| {
        let mut codec = ServerCodec::default();
        b.iter_batched_ref(
            || BytesMut::from(&wire[..]),
            |buf| assert_eq!(decode_all(&mut codec, buf), BATCH),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn get_hits(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode GET hit");
    for (name, size) in [("100 B value", 100), ("4 KiB value", 4096)] {
        let response = Response {
            opaque: 42,
            opcode: Opcode::GET,
            outcome: Outcome::Hit(Hit {
                key_index: None,
                fence: 1 << 40,
                lease: Lease::NotRequested,
                cas: 12345,
                client_flags: 0,
                tags: Vec::new(),
                value: Bytes::from(vec![b'x'; size]),
            }),
        };
        group.throughput(Throughput::Bytes(response.encoded_len() as u64));
        group.bench_function(name, |b| {
            let mut codec = ServerCodec::default();
            let mut buf = BytesMut::with_capacity(response.encoded_len());
            b.iter(|| {
                buf.clear();
                codec.encode(black_box(&response), &mut buf).unwrap();
                black_box(buf.len())
            });
        });
    }
    group.finish();
}

fn set_with_tags(c: &mut Criterion) {
    let request = Request::new(
        7,
        Command::Set(Set {
            mode: SetMode::Set,
            client_flags: 0,
            ttl: 300,
            fence: Some(1 << 40),
            lease: None,
            stale_after: None,
            key: Bytes::from_static(b"page:/products/42"),
            tags: [
                "product:42",
                "category:7",
                "user:1001",
                "site:main",
                "locale:en-GB",
            ]
            .into_iter()
            .map(|tag| Bytes::from_static(tag.as_bytes()))
            .collect(),
            value: Bytes::from(vec![b'v'; 1024]),
        }),
    );
    let wire = encode_requests(std::slice::from_ref(&request));
    let mut group = c.benchmark_group("SET 5 tags 1 KiB");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode", |b| {
        let mut codec = ServerCodec::default();
        b.iter_batched_ref(
            || BytesMut::from(&wire[..]),
            |buf| black_box(codec.decode(buf).unwrap().unwrap().unwrap()),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("encode", |b| {
        let mut codec = ClientCodec::default();
        let mut buf = BytesMut::with_capacity(request.encoded_len());
        b.iter(|| {
            buf.clear();
            codec.encode(black_box(&request), &mut buf).unwrap();
            black_box(buf.len())
        });
    });
    group.finish();
}

/// Criterion's statistics without the long default warm-up: the numbers
/// here are for spotting regressions, not for publication.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = pipelined_gets, get_hits, set_with_tags
}
criterion_main!(benches);
