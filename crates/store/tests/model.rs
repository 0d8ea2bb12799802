//! Random operation sequences against a reference model.
//!
//! `model_agrees` runs every operation on a [`Shard`] with a memory limit too
//! large to evict and on a plain `HashMap` model of the documented semantics,
//! and compares every answer. Invalidations can be numbered and delivered
//! later, so SETs (fenced and not) race them the way they do in the server,
//! and SETs can be stamped with a sequence older than invalidations the shard
//! has already applied, as a SET forwarded from another shard is (it reads
//! the counter before the hop).
//! `small_limit_*` squeezes the budget and checks the memory contract.
//! Keys are drawn on both sides of the store's inline-key limit (22 bytes)
//! up to the protocol's 250, so both ways an entry holds its key are covered.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use proptest::prelude::*;
use tagcached_store::{
    InvalidationSeq, Lookup, MissReason, Read, ReadOptions, SetArgs, SetMode, SetOutcome, Shard,
    ShardConfig, SoftWindow, ENTRY_OVERHEAD, TAG_OVERHEAD,
};

const KEYS: u8 = 6;

/// 256 cases (proptest's default), or `PROPTEST_CASES` for a longer soak.
fn config() -> ProptestConfig {
    ProptestConfig::default()
}
const TAGS: u8 = 5;

#[derive(Clone, Debug)]
enum Mode {
    Set,
    Add,
    Replace,
    CasCurrent,
    CasWrong,
}

#[derive(Clone, Debug)]
enum Op {
    Set {
        key: u8,
        value: Vec<u8>,
        flags: u32,
        ttl_secs: u32,
        tags: Vec<u8>,
        mode: Mode,
        /// How far behind the counter the SET's stamp is: 0 for a SET the
        /// shard runs as it is planned, more for one that was planned
        /// before invalidations numbered since (a forwarded SET).
        stamp_lag: u64,
        /// How far behind the stamp the fence was taken, if fenced.
        fence_lag: Option<u64>,
    },
    Get {
        key: u8,
        with_tags: bool,
        allow_stale: bool,
    },
    Delete {
        key: u8,
    },
    Touch {
        key: u8,
        ttl_secs: u32,
    },
    /// Number an invalidation now; apply it now or leave it in flight. A
    /// soft one's window outlasts any run (`Advance` adds at most 300 s),
    /// so the model need not merge windows: unit tests in `stale.rs` cover
    /// windows that end.
    Invalidate {
        tags: Vec<u8>,
        in_flight: bool,
        soft: bool,
    },
    /// Apply an in-flight invalidation (index modulo the number pending).
    Deliver {
        index: usize,
    },
    Advance {
        ms: u64,
    },
    Sweep {
        steps: usize,
    },
    Flush,
}

fn tag_name(tag: u8) -> String {
    format!("tag-{tag}")
}

/// A key length: short enough to be held inline, either side of the limit,
/// or long enough to go in the entry's data block.
fn key_len() -> impl Strategy<Value = usize> {
    prop_oneof![1..=21usize, 22..=23usize, 24..=250usize]
}

/// One distinct key per length, all cut from the same pattern: keys of one
/// length differ only in their last byte, so the store must compare them
/// to the end.
fn keys(lens: &[usize]) -> Vec<Vec<u8>> {
    lens.iter()
        .enumerate()
        .map(|(index, &len)| {
            let mut key: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            key[len - 1] = b'0' + u8::try_from(index).expect("few keys");
            key
        })
        .collect()
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS;
    let tags = proptest::collection::vec(0..TAGS, 0..4);
    let mode = prop_oneof![
        4 => Just(Mode::Set),
        1 => Just(Mode::Add),
        1 => Just(Mode::Replace),
        1 => Just(Mode::CasCurrent),
        1 => Just(Mode::CasWrong),
    ];
    prop_oneof![
        6 => (
            key.clone(),
            proptest::collection::vec(any::<u8>(), 0..8),
            any::<u32>(),
            prop_oneof![3 => Just(0u32), 1 => 1..4u32],
            tags.clone(),
            mode,
            prop_oneof![2 => Just(0u64), 1 => 1..6u64],
            proptest::option::weighted(0.4, 0..4u64),
        )
            .prop_map(
                |(key, value, flags, ttl_secs, tags, mode, stamp_lag, fence_lag)| Op::Set {
                    key,
                    value,
                    flags,
                    ttl_secs,
                    tags,
                    mode,
                    stamp_lag,
                    fence_lag,
                }
            ),
        6 => (key.clone(), any::<bool>(), any::<bool>()).prop_map(|(key, with_tags, allow_stale)| {
            Op::Get { key, with_tags, allow_stale }
        }),
        1 => key.clone().prop_map(|key| Op::Delete { key }),
        1 => (key, 0..4u32).prop_map(|(key, ttl_secs)| Op::Touch { key, ttl_secs }),
        3 => (proptest::collection::vec(0..TAGS, 1..3), any::<bool>(), any::<bool>())
            .prop_map(|(tags, in_flight, soft)| Op::Invalidate { tags, in_flight, soft }),
        2 => any::<usize>().prop_map(|index| Op::Deliver { index }),
        2 => (0..2_500u64).prop_map(|ms| Op::Advance { ms }),
        2 => (0..8usize).prop_map(|steps| Op::Sweep { steps }),
        1 => Just(Op::Flush),
    ]
}

struct ModelEntry {
    value: Vec<u8>,
    flags: u32,
    cas: u64,
    expire_at_ms: u64,
    stored_seq: u64,
    tags: BTreeSet<u8>,
}

/// The documented semantics, without reclamation or eviction.
///
/// An entry is invalid once one of its tags has an invalidation numbered
/// after the entry's stamp, counting every invalidation the shard applies
/// after the entry arrives, and, of those it applied before, the ones of
/// tags it still remembers. A SET stamped before invalidations the shard has
/// applied and forgotten (a forwarded SET) is ordered after them: it is
/// readable, once STORED, until an invalidation of one of its tags numbered
/// after its stamp, a delete, expiry or flush removes it, never lost to
/// invalidations of other tags (see "Stale stamps" in the store's `tags`
/// module). A fence, in contrast, counts every invalidation ever applied.
struct Model {
    entries: HashMap<u8, ModelEntry>,
    /// Highest applied invalidation per tag: what a fence is checked
    /// against.
    tag_last: HashMap<u8, u64>,
    /// Highest invalidation per tag applied since the shard last did not
    /// remember the tag: what an entry is checked against. Cleared for a
    /// tag the shard has forgotten when a SET brings it back.
    tag_since_remembered: HashMap<u8, u64>,
    /// The same, for soft invalidations only: an entry stamped before is
    /// stale.
    soft_since_remembered: HashMap<u8, u64>,
    /// Highest flush (or boot) sequence applied.
    flush_floor: u64,
    /// The server's global counter: the last sequence numbered.
    counter: u64,
    /// Numbered invalidations not yet applied: tags, sequence, soft.
    pending: Vec<(Vec<u8>, u64, bool)>,
    now_ms: u64,
    last_cas: u64,
}

impl Model {
    fn reading(&self, tag: u8) -> u64 {
        self.tag_last
            .get(&tag)
            .copied()
            .unwrap_or(0)
            .max(self.flush_floor)
    }

    /// `Ok(stale)` for a live entry.
    fn liveness(&self, key: u8) -> Option<Result<bool, MissReason>> {
        let entry = self.entries.get(&key)?;
        let after = |readings: &HashMap<u8, u64>| {
            entry
                .tags
                .iter()
                .any(|tag| readings.get(tag).copied().unwrap_or(0) > entry.stored_seq)
        };
        Some(if self.now_ms >= entry.expire_at_ms {
            Err(MissReason::Expired)
        } else if after(&self.tag_since_remembered) {
            Err(MissReason::Invalidated)
        } else {
            Ok(after(&self.soft_since_remembered))
        })
    }

    /// Like a shard read: drops a dead entry, returns whether one is live
    /// (fresh or stale).
    fn live(&mut self, key: u8) -> bool {
        match self.liveness(key) {
            Some(Ok(_)) => true,
            Some(Err(_)) => {
                self.entries.remove(&key);
                false
            }
            None => false,
        }
    }
}

fn expire_at(now_ms: u64, ttl_secs: u32) -> u64 {
    if ttl_secs == 0 {
        u64::MAX
    } else {
        now_ms + u64::from(ttl_secs) * 1000
    }
}

/// Runs `ops` on a shard and the model; key `i` of an op is `keys[i]`.
fn run_model(
    ops: Vec<Op>,
    keys: &[Vec<u8>],
    boot: u64,
    retention: usize,
) -> Result<(), TestCaseError> {
    let config = ShardConfig::default()
        .with_memory_limit(1 << 30)
        .with_tag_retention(retention);
    let mut shard = Shard::new(config, InvalidationSeq::new(boot));
    let mut model = Model {
        entries: HashMap::new(),
        tag_last: HashMap::new(),
        tag_since_remembered: HashMap::new(),
        soft_since_remembered: HashMap::new(),
        flush_floor: boot,
        counter: boot,
        pending: Vec::new(),
        now_ms: 1_000,
        last_cas: 0,
    };
    let wrong_cas = u64::MAX;

    for op in ops {
        match op {
            Op::Set {
                key,
                value,
                flags,
                ttl_secs,
                tags,
                mode,
                stamp_lag,
                fence_lag,
            } => {
                let live = model.live(key);
                let current_cas = model.entries.get(&key).map_or(wrong_cas, |e| e.cas);
                let shard_mode = match mode {
                    Mode::Set => SetMode::Set,
                    Mode::Add => SetMode::Add,
                    Mode::Replace => SetMode::Replace,
                    Mode::CasCurrent => SetMode::Cas(current_cas),
                    Mode::CasWrong => SetMode::Cas(wrong_cas),
                };
                // Never below boot: the server's counter starts there. A
                // fence is read before the SET is planned.
                let stamp = model.counter.saturating_sub(stamp_lag).max(boot);
                let fence = fence_lag.map(|lag| stamp.saturating_sub(lag));
                let names: Vec<String> = tags.iter().copied().map(tag_name).collect();
                for (&tag, name) in tags.iter().zip(&names) {
                    if !shard.remembers_tag(name.as_bytes()) {
                        forget_tag(&mut model, tag)?;
                    }
                }
                let mut args = SetArgs::new(&keys[usize::from(key)], Bytes::from(value.clone()))
                    .with_tags(&names)
                    .client_flags(flags)
                    .ttl_secs(ttl_secs)
                    .mode(shard_mode);
                if let Some(fence) = fence {
                    args = args.fence(InvalidationSeq::new(fence));
                }
                let got = shard.set(args, InvalidationSeq::new(stamp), model.now_ms);

                let mode_refusal = match shard_mode {
                    SetMode::Set => None,
                    SetMode::Add if live => Some(SetOutcome::NotStored),
                    SetMode::Add => None,
                    SetMode::Replace if !live => Some(SetOutcome::NotStored),
                    SetMode::Replace => None,
                    SetMode::Cas(_) if !live => Some(SetOutcome::NotFound),
                    SetMode::Cas(cas) if cas != current_cas => Some(SetOutcome::Exists),
                    SetMode::Cas(_) => None,
                };
                if let Some(expected) = mode_refusal {
                    prop_assert_eq!(got, expected);
                    continue;
                }
                // Refused if a tag was invalidated, or the shard flushed (or
                // booted), after the fence.
                let fenced = fence.is_some_and(|f| {
                    f < model.flush_floor || tags.iter().any(|&t| model.reading(t) > f)
                });
                match got {
                    SetOutcome::Stored { cas } => {
                        prop_assert!(!fenced, "stored despite fence");
                        prop_assert!(cas > model.last_cas, "cas not increasing");
                        model.last_cas = cas;
                        let stored_seq = fence.map_or(stamp, |f| f.min(stamp));
                        model.entries.insert(
                            key,
                            ModelEntry {
                                value,
                                flags,
                                cas,
                                expire_at_ms: expire_at(model.now_ms, ttl_secs),
                                stored_seq,
                                tags: tags.into_iter().collect(),
                            },
                        );
                    }
                    SetOutcome::Fenced => {
                        let f = fence.expect("fenced without a fence");
                        // Forgetting tags may refuse more, never less, and
                        // only through the floor.
                        prop_assert!(fenced || shard.floor().get() > f, "spurious fence");
                    }
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
            Op::Get {
                key,
                with_tags,
                allow_stale: true,
            } => {
                let options = ReadOptions {
                    allow_stale: true,
                    ..ReadOptions::PLAIN
                };
                let got = shard.read(&keys[usize::from(key)], model.now_ms, &options, |_| true);
                match (model.liveness(key), got) {
                    (
                        Some(Ok(expect_stale)),
                        Read::Hit {
                            entry: hit,
                            stale,
                            lease,
                        },
                    ) => {
                        let entry = &model.entries[&key];
                        prop_assert_eq!(hit.value, &entry.value[..]);
                        prop_assert_eq!((hit.client_flags, hit.cas), (entry.flags, entry.cas));
                        prop_assert_eq!(stale, expect_stale);
                        prop_assert_eq!(lease, None);
                        let _ = with_tags;
                    }
                    (
                        None,
                        Read::Miss {
                            reason,
                            lease: None,
                        },
                    ) => {
                        prop_assert_eq!(reason, MissReason::Absent)
                    }
                    (
                        Some(Err(why)),
                        Read::Miss {
                            reason,
                            lease: None,
                        },
                    ) => {
                        // The sweep may have got there first.
                        prop_assert!(reason == why || reason == MissReason::Absent);
                        model.entries.remove(&key);
                    }
                    (expected, got) => {
                        prop_assert!(false, "model {:?}, shard {:?}", expected, got)
                    }
                }
            }
            Op::Get {
                key,
                with_tags,
                allow_stale: false,
            } => {
                let got = shard.get(&keys[usize::from(key)], model.now_ms, with_tags);
                match (model.liveness(key), got) {
                    (Some(Ok(false)), Lookup::Hit(hit)) => {
                        let entry = &model.entries[&key];
                        prop_assert_eq!(&hit.value[..], &entry.value[..]);
                        prop_assert_eq!(hit.client_flags, entry.flags);
                        prop_assert_eq!(hit.cas, entry.cas);
                        let expected_tags = with_tags.then(|| {
                            let mut names: Vec<String> =
                                entry.tags.iter().copied().map(tag_name).collect();
                            names.sort();
                            names.into_iter().map(Bytes::from).collect::<Vec<_>>()
                        });
                        prop_assert_eq!(hit.tags, expected_tags);
                    }
                    // A stale entry is a miss to a read that does not allow
                    // it, and stays for reads that do.
                    (Some(Ok(true)), Lookup::Miss(reason)) => {
                        prop_assert_eq!(reason, MissReason::Stale)
                    }
                    (None, Lookup::Miss(reason)) => prop_assert_eq!(reason, MissReason::Absent),
                    (Some(Err(why)), Lookup::Miss(reason)) => {
                        // The sweep may have got there first.
                        prop_assert!(reason == why || reason == MissReason::Absent);
                        model.entries.remove(&key);
                    }
                    (expected, got) => {
                        prop_assert!(false, "model {:?}, shard {:?}", expected, got)
                    }
                }
            }
            Op::Delete { key } => {
                let live = model.live(key);
                prop_assert_eq!(shard.delete(&keys[usize::from(key)], model.now_ms), live);
                model.entries.remove(&key);
            }
            Op::Touch { key, ttl_secs } => {
                let live = model.live(key);
                prop_assert_eq!(
                    shard.touch(&keys[usize::from(key)], ttl_secs, model.now_ms),
                    live
                );
                if live {
                    model.entries.get_mut(&key).unwrap().expire_at_ms =
                        expire_at(model.now_ms, ttl_secs);
                }
            }
            Op::Invalidate {
                tags,
                in_flight,
                soft,
            } => {
                model.counter += 1;
                model.pending.push((tags, model.counter, soft));
                if !in_flight {
                    let last = model.pending.len() - 1;
                    deliver(&mut shard, &mut model, last)?;
                }
            }
            Op::Deliver { index } => {
                if !model.pending.is_empty() {
                    let index = index % model.pending.len();
                    deliver(&mut shard, &mut model, index)?;
                }
            }
            Op::Advance { ms } => model.now_ms += ms,
            Op::Sweep { steps } => {
                let _ = shard.sweep(model.now_ms, steps);
            }
            Op::Flush => {
                model.counter += 1;
                shard.flush_all(InvalidationSeq::new(model.counter), 0);
                model.entries.clear();
                model.tag_since_remembered.clear();
                model.soft_since_remembered.clear();
                model.flush_floor = model.counter;
            }
        }
        shard.assert_invariants();
        let live = model
            .entries
            .keys()
            .filter(|&&key| matches!(model.liveness(key), Some(Ok(_))))
            .count();
        prop_assert!(shard.len() >= live, "nothing is evicted under this limit");
    }
    Ok(())
}

/// The shard has forgotten `tag`. It only forgets tags no entry carries, so
/// an entry the model still holds with it must be dead (and reclaimed by the
/// shard already): drop those, then start the tag afresh.
fn forget_tag(model: &mut Model, tag: u8) -> Result<(), TestCaseError> {
    let carriers: Vec<u8> = model
        .entries
        .iter()
        .filter(|(_, entry)| entry.tags.contains(&tag))
        .map(|(&key, _)| key)
        .collect();
    for key in carriers {
        prop_assert!(
            !matches!(model.liveness(key), Some(Ok(_))),
            "the shard forgot a tag a live entry carries"
        );
        model.entries.remove(&key);
    }
    model.tag_since_remembered.remove(&tag);
    model.soft_since_remembered.remove(&tag);
    Ok(())
}

fn deliver(shard: &mut Shard, model: &mut Model, index: usize) -> Result<(), TestCaseError> {
    let (tags, seq, soft) = model.pending.swap_remove(index);
    let names: Vec<String> = tags.iter().copied().map(tag_name).collect();
    // A tag the shard forgot starts afresh, as when a SET brings it back.
    for (&tag, name) in tags.iter().zip(&names) {
        if !shard.remembers_tag(name.as_bytes()) {
            forget_tag(model, tag)?;
        }
    }
    if soft {
        let window = SoftWindow {
            seq,
            at_ms: model.now_ms,
            until_ms: u64::MAX,
        };
        shard.invalidate_soft(&names, window);
    } else {
        shard.invalidate(&names, InvalidationSeq::new(seq), model.now_ms);
    }
    // Fences count soft invalidations like hard ones.
    let since = if soft {
        &mut model.soft_since_remembered
    } else {
        &mut model.tag_since_remembered
    };
    for tag in tags {
        for readings in [&mut model.tag_last, &mut *since] {
            let last = readings.entry(tag).or_insert(0);
            *last = (*last).max(seq);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn model_agrees(
        ops in proptest::collection::vec(op(), 1..120),
        key_lens in proptest::collection::vec(key_len(), usize::from(KEYS)),
        boot in 0..3u64,
        retention in prop_oneof![Just(0usize), Just(2), Just(65_536)],
    ) {
        run_model(ops, &keys(&key_lens), boot, retention)?;
    }
}

/// Keys in `small_limit_*`.
const SMALL_KEYS: u8 = 32;

#[derive(Clone, Debug)]
enum SmallOp {
    Set {
        key: u8,
        len: usize,
        tags: Vec<u8>,
    },
    Get {
        key: u8,
    },
    Delete {
        key: u8,
    },
    Invalidate {
        tags: Vec<u8>,
    },
    /// Invalidate a tag no SET uses, `len` bytes long.
    InvalidateUnused {
        len: usize,
    },
    Sweep,
}

fn small_op() -> impl Strategy<Value = SmallOp> {
    let tags = proptest::collection::vec(0..12u8, 0..4);
    prop_oneof![
        5 => (0..SMALL_KEYS, prop_oneof![8 => 0..400usize, 1 => 0..5_000usize], tags.clone())
            .prop_map(|(key, len, tags)| SmallOp::Set { key, len, tags }),
        4 => (0..SMALL_KEYS).prop_map(|key| SmallOp::Get { key }),
        1 => (0..SMALL_KEYS).prop_map(|key| SmallOp::Delete { key }),
        2 => tags.prop_map(|tags| SmallOp::Invalidate { tags }),
        2 => (1..600usize).prop_map(|len| SmallOp::InvalidateUnused { len }),
        1 => Just(SmallOp::Sweep),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// With a budget small enough to evict constantly, `bytes_used` never
    /// exceeds it, a SET is refused as too large exactly when it could never
    /// fit, and every hit is the last value stored under its key. Tags no
    /// entry carries stay within their share of the budget
    /// (`assert_invariants`), however many are invalidated.
    #[test]
    fn small_limit_stays_in_budget_and_hits_are_latest(
        ops in proptest::collection::vec(small_op(), 1..200),
        key_lens in proptest::collection::vec(key_len(), usize::from(SMALL_KEYS)),
        limit in 1_000..6_000usize,
        retention in prop_oneof![Just(0usize), Just(4), Just(65_536)],
    ) {
        let keys = keys(&key_lens);
        let config = ShardConfig::default().with_memory_limit(limit).with_tag_retention(retention);
        let mut shard = Shard::new(config, InvalidationSeq::ZERO);
        let mut latest: HashMap<Vec<u8>, (Vec<u8>, u64, BTreeSet<u8>)> = HashMap::new();
        let mut tag_last: HashMap<u8, u64> = HashMap::new();
        let mut counter = 0u64;
        for (step, op) in ops.into_iter().enumerate() {
            match op {
                SmallOp::Set { key, len, tags } => {
                    let value: Vec<u8> = (0..len).map(|i| (i + step) as u8).collect();
                    let names: Vec<String> = tags.iter().copied().map(tag_name).collect();
                    let unique: BTreeSet<u8> = tags.iter().copied().collect();
                    let key = &keys[usize::from(key)];
                    let need = ENTRY_OVERHEAD + key.len() + len + 4 * unique.len()
                        + unique.iter().map(|&t| TAG_OVERHEAD + tag_name(t).len()).sum::<usize>();
                    let args = SetArgs::new(key, Bytes::from(value.clone())).with_tags(&names);
                    match shard.set(args, InvalidationSeq::new(counter), 0) {
                        SetOutcome::Stored { .. } => {
                            prop_assert!(need <= limit);
                            latest.insert(key.clone(), (value, counter, unique));
                        }
                        SetOutcome::TooLarge => prop_assert!(need > limit, "refused a fitting entry"),
                        other => prop_assert!(false, "unexpected {:?}", other),
                    }
                }
                SmallOp::Get { key } => {
                    let key = &keys[usize::from(key)];
                    if let Lookup::Hit(hit) = shard.get(key, 0, false) {
                        let (value, stored_seq, tags) = latest.get(key).expect("hit of a never-set key");
                        prop_assert_eq!(&hit.value[..], &value[..]);
                        prop_assert!(
                            tags.iter().all(|t| tag_last.get(t).copied().unwrap_or(0) <= *stored_seq),
                            "hit of an invalidated entry"
                        );
                    }
                }
                SmallOp::Delete { key } => {
                    let key = &keys[usize::from(key)];
                    let _ = shard.delete(key, 0);
                    latest.remove(key);
                }
                SmallOp::Invalidate { tags } => {
                    counter += 1;
                    let names: Vec<String> = tags.iter().copied().map(tag_name).collect();
                    shard.invalidate(&names, InvalidationSeq::new(counter), 0);
                    for tag in tags {
                        tag_last.insert(tag, counter);
                    }
                }
                SmallOp::InvalidateUnused { len } => {
                    counter += 1;
                    let name = format!("unused-{step}-{}", "x".repeat(len));
                    shard.invalidate(&[name], InvalidationSeq::new(counter), 0);
                }
                SmallOp::Sweep => {
                    let _ = shard.sweep(0, 16);
                }
            }
            prop_assert!(shard.bytes_used() <= limit, "{} > {}", shard.bytes_used(), limit);
            shard.assert_invariants();
        }
    }
}
