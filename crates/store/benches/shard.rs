//! Per-operation cost of one shard, for comparison with memcached's item
//! path: GET hit and miss, SET (overwrite, and under eviction pressure), and
//! an INVALIDATE of 10 tags.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use tagcached_store::{InvalidationSeq, SetArgs, SetOutcome, Shard, ShardConfig};

const ENTRIES: u64 = 100_000;
const VALUE_LEN: usize = 100;
const TAG_POOL: u64 = 1_000;

fn key(i: u64) -> [u8; 16] {
    let mut key = *b"key:000000000000";
    key[8..].copy_from_slice(&i.to_be_bytes());
    key
}

fn tag_names() -> Vec<String> {
    (0..TAG_POOL).map(|i| format!("tenant:{i}")).collect()
}

/// A shard holding `ENTRIES` entries of `VALUE_LEN` bytes, two tags each.
fn filled(config: ShardConfig, tags: &[String]) -> Shard {
    let mut shard = Shard::new(config, InvalidationSeq::ZERO);
    let value = Bytes::from(vec![7u8; VALUE_LEN]);
    for i in 0..ENTRIES {
        let key = key(i);
        let entry_tags = [
            &tags[(i % TAG_POOL) as usize],
            &tags[(i * 7 % TAG_POOL) as usize],
        ];
        let args = SetArgs::new(&key, value.clone()).with_tags(&entry_tags);
        assert!(matches!(
            shard.set(args, InvalidationSeq::new(1), 0),
            SetOutcome::Stored { .. }
        ));
    }
    shard
}

fn benches(c: &mut Criterion) {
    let tags = tag_names();
    let mut shard = filled(ShardConfig::default(), &tags);
    let keys: Vec<[u8; 16]> = (0..ENTRIES).map(key).collect();
    let absent: Vec<[u8; 16]> = (ENTRIES..2 * ENTRIES).map(key).collect();

    let mut i = 0usize;
    c.bench_function("get_hit", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            black_box(shard.get(black_box(&keys[i]), 1, false))
        })
    });

    c.bench_function("get_miss", |b| {
        b.iter(|| {
            i = (i + 7919) % absent.len();
            black_box(shard.get(black_box(&absent[i]), 1, false))
        })
    });

    let value = Bytes::from(vec![9u8; VALUE_LEN]);
    c.bench_function("set_overwrite_2_tags", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            let entry_tags = [&tags[i % 1000], &tags[i * 7 % 1000]];
            let args = SetArgs::new(&keys[i], value.clone()).with_tags(&entry_tags);
            black_box(shard.set(args, InvalidationSeq::new(1), 1))
        })
    });

    c.bench_function("set_overwrite_no_tags", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            let args = SetArgs::new(&keys[i], value.clone());
            black_box(shard.set(args, InvalidationSeq::new(1), 1))
        })
    });

    // Room for about half the keys, so every new key evicts.
    let mut tight = filled(
        ShardConfig::default().with_memory_limit(ENTRIES as usize * 200),
        &tags,
    );
    let mut next = ENTRIES;
    c.bench_function("set_evicting", |b| {
        b.iter(|| {
            next += 1;
            let key = key(next);
            let args = SetArgs::new(&key, value.clone());
            black_box(tight.set(args, InvalidationSeq::new(1), 1))
        })
    });

    let mut seq = 1u64;
    let mut start = 0usize;
    c.bench_function("invalidate_10_tags", |b| {
        b.iter(|| {
            seq += 1;
            start = (start + 10) % (TAG_POOL as usize - 10);
            shard.invalidate(
                black_box(&tags[start..start + 10]),
                InvalidationSeq::new(seq),
            );
        })
    });
}

criterion_group!(shard, benches);
criterion_main!(shard);
