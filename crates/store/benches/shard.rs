//! Per-operation cost of one shard, for comparison with memcached's item
//! path: GET hit (no tags, and 3 tags with invalidations applied so the tag
//! check runs; 16-byte keys, held inline in the slot, and 32-byte keys like
//! the load generator's, held in the entry's data block) and miss, SET
//! (overwrite with 0 and 3 tags, and under eviction pressure), INVALIDATE of
//! 10 tags, and the O(tags) claim itself: invalidating a tag carried by one
//! entry against one carried by 1,000,000.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use tagcached_store::{InvalidationSeq, SetArgs, SetOutcome, Shard, ShardConfig};

const ENTRIES: u64 = 100_000;
const VALUE_LEN: usize = 100;
const TAG_POOL: u64 = 1_000;
const TAGS_PER_ENTRY: u64 = 3;
/// Entries of the large shard in `get_16_hits`.
const BIG_SHARD_ENTRIES: u64 = 1_000_000;
/// Entries carrying the one tag in `invalidate_tag_on_1m_entries`.
const BIG_TAG_ENTRIES: u64 = 1_000_000;

fn key(i: u64) -> [u8; 16] {
    let mut key = *b"key:000000000000";
    key[8..].copy_from_slice(&i.to_be_bytes());
    key
}

/// Key `i` as the load generator renders it: `k`, then `i` in decimal,
/// zero-padded to 32 bytes. Too long to be held inline in an entry's slot.
fn long_key(i: u64) -> [u8; 32] {
    let mut key = [b'0'; 32];
    key[0] = b'k';
    let digits = i.to_string();
    key[32 - digits.len()..].copy_from_slice(digits.as_bytes());
    key
}

fn tag_names() -> Vec<String> {
    (0..TAG_POOL).map(|i| format!("tenant:{i}")).collect()
}

/// The tags of entry `i`: `count` distinct names from the pool.
fn tags_of(tags: &[String], i: u64, count: u64) -> Vec<&String> {
    (0..count)
        .map(|n| &tags[((i * 7 + n * 331) % TAG_POOL) as usize])
        .collect()
}

/// A shard holding `ENTRIES` entries of `VALUE_LEN` bytes under `key(i)`,
/// `tag_count` tags each, stored at sequence 1.
fn filled<K: AsRef<[u8]>>(
    config: ShardConfig,
    tags: &[String],
    tag_count: u64,
    key: impl Fn(u64) -> K,
) -> Shard {
    filled_with(ENTRIES, config, tags, tag_count, key)
}

/// [`filled`] with `entries` entries.
fn filled_with<K: AsRef<[u8]>>(
    entries: u64,
    config: ShardConfig,
    tags: &[String],
    tag_count: u64,
    key: impl Fn(u64) -> K,
) -> Shard {
    let mut shard = Shard::new(config, InvalidationSeq::ZERO);
    for i in 0..entries {
        let key = key(i);
        // One allocation per value, as the server stores them.
        let value = Bytes::from(vec![7u8; VALUE_LEN]);
        let entry_tags = tags_of(tags, i, tag_count);
        let args = SetArgs::new(key.as_ref(), value).with_tags(&entry_tags);
        assert!(matches!(
            shard.set(args, InvalidationSeq::new(1), 0),
            SetOutcome::Stored { .. }
        ));
    }
    shard
}

fn get_and_set(c: &mut Criterion) {
    let tags = tag_names();
    let keys: Vec<[u8; 16]> = (0..ENTRIES).map(key).collect();
    let absent: Vec<[u8; 16]> = (ENTRIES..2 * ENTRIES).map(key).collect();
    let mut i = 0usize;

    let mut plain = filled(ShardConfig::default(), &tags, 0, key);
    c.bench_function("get_hit_0_tags", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            black_box(plain.get(black_box(&keys[i]), 1, false))
        })
    });
    // What the server's plain GET runs: the value lent, not copied.
    c.bench_function("get_hit_0_tags_borrowed", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            black_box(plain.get_borrowed(black_box(&keys[i]), 1).is_ok())
        })
    });
    c.bench_function("get_miss", |b| {
        b.iter(|| {
            i = (i + 7919) % absent.len();
            black_box(plain.get(black_box(&absent[i]), 1, false))
        })
    });
    let value = Bytes::from(vec![9u8; VALUE_LEN]);
    c.bench_function("set_overwrite_0_tags", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            let args = SetArgs::new(&keys[i], value.clone());
            black_box(plain.set(args, InvalidationSeq::new(1), 1))
        })
    });
    drop(plain);

    let mut tagged = filled(ShardConfig::default(), &tags, TAGS_PER_ENTRY, key);
    // A tag no entry carries, invalidated after every store: each read must
    // now check its entry's tags rather than take the nothing-newer path.
    tagged.invalidate(&["unrelated"], InvalidationSeq::new(2), 0);
    c.bench_function("get_hit_3_tags", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            black_box(tagged.get(black_box(&keys[i]), 1, false))
        })
    });
    c.bench_function("set_overwrite_3_tags", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            let entry_tags = tags_of(&tags, i as u64, TAGS_PER_ENTRY);
            let args = SetArgs::new(&keys[i], value.clone()).with_tags(&entry_tags);
            black_box(tagged.set(args, InvalidationSeq::new(3), 1))
        })
    });

    let mut seq = 3u64;
    let mut start = 0usize;
    c.bench_function("invalidate_10_tags", |b| {
        b.iter(|| {
            seq += 1;
            start = (start + 10) % (TAG_POOL as usize - 10);
            tagged.invalidate(
                black_box(&tags[start..start + 10]),
                InvalidationSeq::new(seq),
                0,
            );
        })
    });
    drop(tagged);

    // Room for about half the keys, so every new key evicts.
    let mut tight = filled(
        ShardConfig::default().with_memory_limit(ENTRIES as usize * 200),
        &tags,
        2,
        key,
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
}

/// GET hits on keys too long for the slot (the profiled workload's 32-byte
/// keys): comparing the key is what differs from `get_hit_0_tags`. The
/// `_borrowed_read` forms also read the lent value, copying it into a reused
/// buffer as the server does when it encodes the response (unlike
/// `get_hit_0_tags_borrowed`, which never touches the value).
///
/// Each runs on the freshly filled shard, then again (`_after_overwrite`)
/// once every key has been overwritten in a scattered order, as the load
/// generator's SETs do within seconds. In a fresh fill the blocks an entry
/// keeps on the heap were allocated back to back and tend to sit side by
/// side; after overwrites, new values land in blocks freed by other keys.
fn get_long_key(c: &mut Criterion) {
    let keys: Vec<[u8; 32]> = (0..ENTRIES).map(long_key).collect();
    let mut shard = filled(ShardConfig::default(), &[], 0, long_key);
    let mut out = Vec::with_capacity(VALUE_LEN);
    let mut i = 0usize;
    for suffix in ["", "_after_overwrite"] {
        if !suffix.is_empty() {
            for _ in 0..keys.len() {
                i = (i + 7919) % keys.len();
                let args = SetArgs::new(&keys[i], Bytes::from(vec![8u8; VALUE_LEN]));
                let stored = shard.set(args, InvalidationSeq::new(1), 1);
                assert!(matches!(stored, SetOutcome::Stored { .. }));
            }
        }
        c.bench_function(&format!("get_hit_32b_key{suffix}"), |b| {
            b.iter(|| {
                i = (i + 7919) % keys.len();
                black_box(shard.get(black_box(&keys[i]), 1, false))
            })
        });
        c.bench_function(&format!("get_hit_32b_key{suffix}_borrowed_read"), |b| {
            b.iter(|| {
                i = (i + 7919) % keys.len();
                out.clear();
                if let Ok(hit) = shard.get_borrowed(black_box(&keys[i]), 1) {
                    out.extend_from_slice(hit.value);
                }
                black_box(out.as_slice());
            })
        });
    }
}

/// Batches of 16 GET hits on scattered 32-byte keys, as the server runs a
/// pipeline of 16, each value copied out: one after the other, and
/// (`_prefetched`) with [`Shard::prefetch`] asking for all their entries
/// first. In a shard of `ENTRIES` (about 20 MB, inside this machine's L3
/// when nothing else runs) and of `BIG_SHARD_ENTRIES` (about 200 MB, well
/// past it), whose misses go to memory as a busy server's do.
fn get_16_hits(c: &mut Criterion) {
    for (entries, size) in [(ENTRIES, "100k"), (BIG_SHARD_ENTRIES, "1m")] {
        let keys: Vec<[u8; 32]> = (0..entries).map(long_key).collect();
        let config = ShardConfig::default().with_memory_limit(1 << 30);
        let mut shard = filled_with(entries, config, &[], 0, long_key);
        let mut out = Vec::with_capacity(16 * VALUE_LEN);
        let mut i = 0usize;
        for prefetch in [false, true] {
            let suffix = if prefetch { "_prefetched" } else { "" };
            c.bench_function(&format!("get_16_hits_32b_key_{size}{suffix}"), |b| {
                b.iter(|| {
                    let batch: [&[u8]; 16] = std::array::from_fn(|_| {
                        i = (i + 7919) % keys.len();
                        &keys[i][..]
                    });
                    if prefetch {
                        shard.prefetch(batch);
                    }
                    out.clear();
                    for key in batch {
                        if let Ok(hit) = shard.get_borrowed(black_box(key), 1) {
                            out.extend_from_slice(hit.value);
                        }
                    }
                    black_box(out.as_slice());
                })
            });
        }
    }
}

/// Invalidation is O(tags): the cost must not depend on how many entries
/// carry the tag. One shard holds `BIG_TAG_ENTRIES` entries tagged `big` and
/// one tagged `small`; each iteration invalidates one of them at a new
/// sequence.
fn invalidate_by_tag_population(c: &mut Criterion) {
    let mut shard = Shard::new(
        ShardConfig::default().with_memory_limit(1 << 30),
        InvalidationSeq::ZERO,
    );
    let value = Bytes::from_static(b"0123456789");
    for i in 0..BIG_TAG_ENTRIES {
        let key = key(i);
        let args = SetArgs::new(&key, value.clone()).with_tags(&["big"]);
        assert!(matches!(
            shard.set(args, InvalidationSeq::new(1), 0),
            SetOutcome::Stored { .. }
        ));
    }
    let args = SetArgs::new(b"the-small-one", value).with_tags(&["small"]);
    assert!(matches!(
        shard.set(args, InvalidationSeq::new(1), 0),
        SetOutcome::Stored { .. }
    ));
    let mut seq = 1u64;
    c.bench_function("invalidate_tag_on_1_entry", |b| {
        b.iter(|| {
            seq += 1;
            shard.invalidate(black_box(&["small"]), InvalidationSeq::new(seq), 0);
        })
    });
    c.bench_function("invalidate_tag_on_1m_entries", |b| {
        b.iter(|| {
            seq += 1;
            shard.invalidate(black_box(&["big"]), InvalidationSeq::new(seq), 0);
        })
    });
    assert_eq!(shard.len() as u64, BIG_TAG_ENTRIES + 1, "nothing walked");
}

criterion_group!(
    shard,
    get_and_set,
    get_long_key,
    get_16_hits,
    invalidate_by_tag_population
);
criterion_main!(shard);
