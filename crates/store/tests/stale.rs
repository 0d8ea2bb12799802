//! Soft invalidation, stale windows, refresh leases, request-scoped tags and
//! tag status, through the shard's public API (protocol.md §6.3, §6.5,
//! §6.11, §8.3 to §8.5). Time and sequences are driven by hand.

use bytes::Bytes;
use tagcached_store::{
    InvalidationSeq, MissReason, Read, ReadOptions, SetArgs, SetOutcome, Shard, ShardConfig,
    SoftWindow, TagStatus,
};

const LEASE_MS: u64 = 10_000;

fn seq(n: u64) -> InvalidationSeq {
    InvalidationSeq::new(n)
}

fn shard() -> Shard {
    Shard::new(
        ShardConfig::default().with_lease_ms(LEASE_MS),
        InvalidationSeq::ZERO,
    )
}

fn put(shard: &mut Shard, key: &str, value: &'static str, tags: &[&str], stamp: u64, now: u64) {
    let args = SetArgs::new(key.as_bytes(), Bytes::from_static(value.as_bytes())).with_tags(tags);
    let outcome = shard.set(args, seq(stamp), now);
    assert!(matches!(outcome, SetOutcome::Stored { .. }), "{outcome:?}");
}

/// A soft window numbered `at` ms, `secs` long.
fn window(n: u64, at: u64, secs: u64) -> SoftWindow {
    SoftWindow {
        seq: n,
        at_ms: at,
        until_ms: at + secs * 1000,
    }
}

/// What a read sees, in the terms of protocol.md §6.3's table.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Hit(String, Option<u64>),
    Stale(String, Option<u64>),
    Miss(MissReason, Option<u64>),
    HotMiss,
}

fn read_with(shard: &mut Shard, key: &str, now: u64, options: &ReadOptions) -> Seen {
    match shard.read(key.as_bytes(), now, options, |_| true) {
        Read::Hit {
            entry,
            stale,
            lease,
        } => {
            let value = String::from_utf8(entry.value.to_vec()).expect("utf-8 values");
            if stale {
                Seen::Stale(value, lease)
            } else {
                Seen::Hit(value, lease)
            }
        }
        Read::Miss { reason, lease } => Seen::Miss(reason, lease),
        Read::HotMiss => Seen::HotMiss,
        Read::Declined => panic!("every hit accepted"),
    }
}

fn options(allow_stale: bool, lease: bool) -> ReadOptions {
    ReadOptions {
        allow_stale,
        lease: lease.then_some(seq(100)),
        request_tags: None,
    }
}

fn plain(shard: &mut Shard, key: &str, now: u64) -> Seen {
    read_with(shard, key, now, &options(false, false))
}

fn stale_ok(shard: &mut Shard, key: &str, now: u64) -> Seen {
    read_with(shard, key, now, &options(true, false))
}

fn hit(value: &str) -> Seen {
    Seen::Hit(value.into(), None)
}

fn stale(value: &str) -> Seen {
    Seen::Stale(value.into(), None)
}

#[test]
fn a_soft_invalidation_makes_older_entries_stale_for_its_window_then_dead() {
    let mut shard = shard();
    put(&mut shard, "old", "v1", &["post:3"], 1, 0);
    put(&mut shard, "other", "o", &["post:4"], 1, 0);
    shard.invalidate_soft(&["post:3"], window(2, 1_000, 60));
    put(&mut shard, "new", "v2", &["post:3"], 2, 1_000);

    assert_eq!(
        plain(&mut shard, "old", 1_000),
        Seen::Miss(MissReason::Stale, None)
    );
    assert_eq!(stale_ok(&mut shard, "old", 1_000), stale("v1"));
    assert_eq!(stale_ok(&mut shard, "old", 60_999), stale("v1"));
    assert_eq!(
        stale_ok(&mut shard, "new", 1_000),
        hit("v2"),
        "stored after"
    );
    assert_eq!(plain(&mut shard, "other", 1_000), hit("o"), "other tag");
    assert_eq!(
        stale_ok(&mut shard, "old", 61_000),
        Seen::Miss(MissReason::Invalidated, None),
        "the window has ended"
    );
    assert_eq!(shard.len(), 2, "the dead entry was reclaimed");
    let stats = shard.stats();
    assert_eq!((stats.get_stale, stats.get_hits), (2, 4));
    shard.assert_invariants();
}

#[test]
fn a_hard_invalidation_kills_stale_entries_at_once() {
    let mut shard = shard();
    put(&mut shard, "k", "v", &["t"], 1, 0);
    shard.invalidate_soft(&["t"], window(2, 0, 60));
    put(&mut shard, "between", "b", &["t"], 2, 0);
    assert_eq!(stale_ok(&mut shard, "k", 0), stale("v"));
    shard.invalidate(&["t"], seq(3), 0);
    assert_eq!(
        stale_ok(&mut shard, "k", 0),
        Seen::Miss(MissReason::Invalidated, None)
    );
    assert_eq!(
        stale_ok(&mut shard, "between", 0),
        Seen::Miss(MissReason::Invalidated, None)
    );
    shard.assert_invariants();
}

#[test]
fn a_second_soft_window_never_outlives_the_first() {
    let mut shard = shard();
    put(&mut shard, "first", "1", &["t"], 1, 0);
    shard.invalidate_soft(&["t"], window(2, 0, 10));
    put(&mut shard, "second", "2", &["t"], 2, 0);
    shard.invalidate_soft(&["t"], window(3, 5_000, 100));
    // Stored before both: dead when the first window ends.
    assert_eq!(stale_ok(&mut shard, "first", 9_999), stale("1"));
    assert_eq!(stale_ok(&mut shard, "second", 9_999), stale("2"));
    assert_eq!(
        stale_ok(&mut shard, "first", 10_000),
        Seen::Miss(MissReason::Invalidated, None)
    );
    // Stored between them: its window ends early, never late.
    assert_eq!(
        stale_ok(&mut shard, "second", 10_000),
        Seen::Miss(MissReason::Invalidated, None)
    );
    shard.assert_invariants();
}

#[test]
fn an_ended_window_is_folded_before_a_new_one_opens() {
    let mut shard = shard();
    put(&mut shard, "k", "v", &["t"], 1, 0);
    shard.invalidate_soft(&["t"], window(2, 0, 1));
    put(&mut shard, "between", "b", &["t"], 2, 500);
    // The first window has ended when the second is numbered: `k` must not
    // become stale (readable) again under the new one.
    shard.invalidate_soft(&["t"], window(3, 2_000, 60));
    assert_eq!(
        stale_ok(&mut shard, "k", 2_000),
        Seen::Miss(MissReason::Invalidated, None)
    );
    assert_eq!(stale_ok(&mut shard, "between", 2_000), stale("b"));
    let status = shard.tag_status(b"t");
    assert_eq!(
        (status.hard_seq, status.hard_at_ms),
        (2, 1_000),
        "folded at its end"
    );
    assert_eq!(status.soft, Some(window(3, 2_000, 60)));
    shard.assert_invariants();
}

#[test]
fn fences_count_soft_invalidations() {
    let mut shard = shard();
    shard.invalidate_soft(&["t"], window(5, 0, 60));
    let fenced = |fence| {
        SetArgs::new(b"k", Bytes::from_static(b"v"))
            .with_tags(&["t"])
            .fence(seq(fence))
    };
    assert_eq!(shard.set(fenced(4), seq(5), 0), SetOutcome::Fenced);
    assert!(matches!(
        shard.set(fenced(5), seq(5), 0),
        SetOutcome::Stored { .. }
    ));
    assert_eq!(stale_ok(&mut shard, "k", 0), hit("v"));
}

#[test]
fn a_soft_flush_makes_everything_older_stale_then_dead_and_refuses_older_fences() {
    let mut shard = shard();
    put(&mut shard, "a", "1", &[], 1, 0);
    put(&mut shard, "b", "2", &["t"], 1, 0);
    shard.flush_all_soft(window(2, 0, 30));
    put(&mut shard, "c", "3", &[], 2, 0);
    assert_eq!(
        plain(&mut shard, "a", 0),
        Seen::Miss(MissReason::Stale, None)
    );
    assert_eq!(stale_ok(&mut shard, "b", 29_999), stale("2"));
    assert_eq!(stale_ok(&mut shard, "c", 29_999), hit("3"));
    assert_eq!(
        stale_ok(&mut shard, "a", 30_000),
        Seen::Miss(MissReason::Invalidated, None)
    );
    let fenced = SetArgs::new(b"d", Bytes::from_static(b"v")).fence(seq(1));
    assert_eq!(shard.set(fenced, seq(2), 30_000), SetOutcome::Fenced);
    // A later soft flush after the window ended keeps `b` dead.
    shard.flush_all_soft(window(3, 40_000, 30));
    assert_eq!(
        stale_ok(&mut shard, "b", 40_000),
        Seen::Miss(MissReason::Invalidated, None)
    );
    assert_eq!(stale_ok(&mut shard, "c", 40_000), stale("3"));
    shard.assert_invariants();
}

#[test]
fn a_stale_window_turns_an_entry_stale_before_its_ttl_ends() {
    let mut shard = shard();
    let args = SetArgs::new(b"page", Bytes::from_static(b"html"))
        .ttl_secs(60)
        .stale_after_secs(10);
    assert!(matches!(
        shard.set(args, seq(1), 0),
        SetOutcome::Stored { .. }
    ));
    assert_eq!(plain(&mut shard, "page", 9_999), hit("html"));
    assert_eq!(
        plain(&mut shard, "page", 10_000),
        Seen::Miss(MissReason::Stale, None)
    );
    assert_eq!(stale_ok(&mut shard, "page", 59_999), stale("html"));
    assert!(
        shard.touch(b"page", 120, 20_000),
        "a stale entry is present"
    );
    assert_eq!(
        stale_ok(&mut shard, "page", 130_000),
        stale("html"),
        "still stale"
    );
    assert_eq!(
        stale_ok(&mut shard, "page", 140_000),
        Seen::Miss(MissReason::Expired, None)
    );
    // A stale window at or past the TTL never shows.
    let args = SetArgs::new(b"short", Bytes::from_static(b"v"))
        .ttl_secs(5)
        .stale_after_secs(5);
    assert!(matches!(
        shard.set(args, seq(1), 0),
        SetOutcome::Stored { .. }
    ));
    assert_eq!(plain(&mut shard, "short", 4_999), hit("v"));
    shard.assert_invariants();
}

#[test]
fn one_reader_gets_the_lease_on_a_miss_and_the_others_a_hot_miss() {
    let mut shard = shard();
    let Seen::Miss(MissReason::Absent, Some(token)) =
        read_with(&mut shard, "k", 0, &options(false, true))
    else {
        panic!("the first reader gets a lease");
    };
    for now in [0, LEASE_MS - 1] {
        assert_eq!(
            read_with(&mut shard, "k", now, &options(true, true)),
            Seen::HotMiss
        );
    }
    assert_eq!(
        plain(&mut shard, "k", 0),
        Seen::Miss(MissReason::Absent, None)
    );
    let args = SetArgs::new(b"k", Bytes::from_static(b"fresh")).lease(token);
    assert!(matches!(
        shard.set(args, seq(100), 5),
        SetOutcome::Stored { .. }
    ));
    assert_eq!(
        read_with(&mut shard, "k", 6, &options(true, true)),
        Seen::Hit("fresh".into(), None)
    );
    let stats = shard.stats();
    assert_eq!(
        (
            stats.leases_granted,
            stats.get_hot_misses,
            stats.leases_held
        ),
        (1, 2, 0)
    );
    shard.assert_invariants();
}

#[test]
fn on_a_stale_entry_one_reader_refreshes_and_the_others_get_the_stale_copy() {
    let mut shard = shard();
    put(&mut shard, "k", "old", &["t"], 1, 0);
    shard.invalidate_soft(&["t"], window(2, 0, 60));
    let Seen::Stale(value, Some(token)) = read_with(&mut shard, "k", 0, &options(true, true))
    else {
        panic!("the first stale reader gets a lease");
    };
    assert_eq!(value, "old");
    for _ in 0..100 {
        assert_eq!(
            read_with(&mut shard, "k", 1, &options(true, true)),
            stale("old")
        );
    }
    assert_eq!(
        read_with(&mut shard, "k", 1, &options(false, true)),
        Seen::HotMiss
    );
    let args = SetArgs::new(b"k", Bytes::from_static(b"new"))
        .with_tags(&["t"])
        .lease(token);
    assert!(matches!(
        shard.set(args, seq(100), 2),
        SetOutcome::Stored { .. }
    ));
    assert_eq!(
        read_with(&mut shard, "k", 3, &options(true, true)),
        Seen::Hit("new".into(), None)
    );
    shard.assert_invariants();
}

#[test]
fn a_lease_ends_when_its_time_passes_and_the_next_reader_takes_it() {
    let mut shard = shard();
    let Seen::Miss(_, Some(first)) = read_with(&mut shard, "k", 0, &options(false, true)) else {
        panic!("lease");
    };
    let Seen::Miss(_, Some(second)) = read_with(&mut shard, "k", LEASE_MS, &options(false, true))
    else {
        panic!("the lease time has passed: a new lease");
    };
    assert_ne!(first, second);
    let late = SetArgs::new(b"k", Bytes::from_static(b"late")).lease(first);
    assert_eq!(shard.set(late, seq(100), LEASE_MS), SetOutcome::LeaseLost);
    assert_eq!(shard.stats().set_lease_lost, 1);
    let args = SetArgs::new(b"k", Bytes::from_static(b"v")).lease(second);
    assert!(matches!(
        shard.set(args, seq(100), LEASE_MS),
        SetOutcome::Stored { .. }
    ));
}

#[test]
fn a_slow_holder_may_still_store_if_nobody_took_the_lease_since() {
    let mut shard = shard();
    let Seen::Miss(_, Some(token)) = read_with(&mut shard, "k", 0, &options(false, true)) else {
        panic!("lease");
    };
    let args = SetArgs::new(b"k", Bytes::from_static(b"slow")).lease(token);
    assert!(matches!(
        shard.set(args, seq(100), 2 * LEASE_MS - 1),
        SetOutcome::Stored { .. }
    ));
    // Past twice the lease time the record is gone.
    let Seen::Miss(_, Some(token)) = read_with(&mut shard, "j", 0, &options(false, true)) else {
        panic!("lease");
    };
    let report = shard.sweep(2 * LEASE_MS, 10);
    assert_eq!(report.slots_scanned, 1);
    let args = SetArgs::new(b"j", Bytes::from_static(b"too slow")).lease(token);
    assert_eq!(
        shard.set(args, seq(100), 2 * LEASE_MS),
        SetOutcome::LeaseLost
    );
}

#[test]
fn delete_set_and_flush_supersede_a_lease() {
    let mut shard = shard();
    let lease = |shard: &mut Shard| match read_with(shard, "k", 0, &options(false, true)) {
        Seen::Miss(_, Some(token)) => token,
        other => panic!("no lease: {other:?}"),
    };
    let with = |token| SetArgs::new(b"k", Bytes::from_static(b"v")).lease(token);

    let token = lease(&mut shard);
    assert!(!shard.delete(b"k", 0));
    assert_eq!(shard.set(with(token), seq(100), 0), SetOutcome::LeaseLost);

    let token = lease(&mut shard);
    put(&mut shard, "k", "other writer", &[], 100, 0);
    assert_eq!(shard.set(with(token), seq(100), 0), SetOutcome::LeaseLost);
    assert!(shard.delete(b"k", 0));

    let token = lease(&mut shard);
    shard.flush_all(seq(101), 0);
    assert_eq!(shard.set(with(token), seq(101), 0), SetOutcome::LeaseLost);
    assert_eq!(shard.stats().leases_held, 0);
    shard.assert_invariants();
}

#[test]
fn a_lease_set_is_fenced_at_its_grant_and_ends_the_lease_even_when_refused() {
    let mut shard = shard();
    let opts = ReadOptions {
        allow_stale: false,
        lease: Some(seq(10)),
        request_tags: None,
    };
    let Seen::Miss(_, Some(token)) = read_with(&mut shard, "k", 0, &opts) else {
        panic!("lease");
    };
    shard.invalidate(&["t"], seq(11), 0);
    let args = SetArgs::new(b"k", Bytes::from_static(b"computed before 11"))
        .with_tags(&["t"])
        .lease(token);
    assert_eq!(shard.set(args.clone(), seq(11), 0), SetOutcome::Fenced);
    assert_eq!(shard.set(args, seq(11), 0), SetOutcome::LeaseLost, "ended");
    // The refused holder reads again and gets a new lease at once.
    assert!(matches!(
        read_with(&mut shard, "k", 0, &opts),
        Seen::Miss(_, Some(_))
    ));
}

#[test]
fn request_scoped_tags_apply_to_this_read_only() {
    let mut shard = shard();
    put(&mut shard, "page", "html", &["post:1"], 5, 0);
    let scoped = |shard: &mut Shard, tags: &[&str]| {
        let options = ReadOptions {
            allow_stale: true,
            lease: None,
            request_tags: Some(shard.resolve_request_tags(tags, 0)),
        };
        read_with(shard, "page", 0, &options)
    };
    assert_eq!(scoped(&mut shard, &["_N_T_/blog"]), hit("html"));
    shard.invalidate_soft(&["_N_T_/blog"], window(6, 0, 60));
    assert_eq!(scoped(&mut shard, &["_N_T_/blog"]), stale("html"));
    shard.invalidate(&["_N_T_/layout"], seq(7), 0);
    assert_eq!(
        scoped(&mut shard, &["_N_T_/blog", "_N_T_/layout"]),
        Seen::Miss(MissReason::RequestTags, None)
    );
    // Resolved later, a window that has ended is dead.
    let late = ReadOptions {
        allow_stale: true,
        lease: None,
        request_tags: Some(shard.resolve_request_tags(&["_N_T_/blog"], 60_000)),
    };
    assert_eq!(
        read_with(&mut shard, "page", 60_000, &late),
        Seen::Miss(MissReason::RequestTags, None)
    );
    // The entry itself is untouched.
    assert_eq!(plain(&mut shard, "page", 0), hit("html"));
    assert_eq!(shard.len(), 1);
    shard.assert_invariants();
}

#[test]
fn a_request_scoped_tag_the_shard_forgot_reads_as_the_floor() {
    let mut shard = Shard::new(
        ShardConfig::default().with_tag_retention(0),
        InvalidationSeq::ZERO,
    );
    put(&mut shard, "page", "html", &[], 5, 0);
    shard.invalidate(&["_N_T_/blog"], seq(6), 0);
    shard.sweep(0, 100);
    assert_eq!(shard.floor(), seq(6), "forgotten");
    let options = ReadOptions {
        allow_stale: true,
        lease: None,
        request_tags: Some(shard.resolve_request_tags(&["never-seen"], 0)),
    };
    assert_eq!(
        read_with(&mut shard, "page", 0, &options),
        Seen::Miss(MissReason::RequestTags, None)
    );
    put(&mut shard, "newer", "n", &[], 6, 0);
    assert_eq!(read_with(&mut shard, "newer", 0, &options), hit("n"));
}

#[test]
fn tag_status_reports_invalidations_and_entries_carrying_the_tag() {
    let mut shard = shard();
    assert_eq!(shard.tag_status(b"t"), TagStatus::default());
    put(&mut shard, "a", "1", &["t"], 1, 0);
    put(&mut shard, "b", "2", &["t", "u"], 1, 0);
    shard.invalidate(&["t"], seq(2), 1_500);
    shard.invalidate_soft(&["t"], window(3, 2_000, 60));
    let status = shard.tag_status(b"t");
    assert_eq!(status.entries, 2, "dead entries not yet reclaimed count");
    assert_eq!((status.hard_seq, status.hard_at_ms), (2, 1_500));
    assert_eq!(status.soft, Some(window(3, 2_000, 60)));
    assert_eq!(shard.tag_status(b"u").entries, 1);
    assert_eq!(shard.tag_status(b"u").hard_seq, 0);
}

#[test]
fn a_declined_read_grants_no_lease() {
    let mut shard = shard();
    put(&mut shard, "k", "v", &["t"], 1, 0);
    shard.invalidate_soft(&["t"], window(2, 0, 60));
    let declined = shard.read(b"k", 0, &options(true, true), |_| false);
    assert_eq!(declined, Read::Declined);
    assert_eq!(shard.stats().leases_granted, 0);
    assert!(matches!(
        read_with(&mut shard, "k", 0, &options(true, true)),
        Seen::Stale(_, Some(_))
    ));
}

#[test]
fn lease_records_stay_within_their_share_of_memory() {
    let limit = 64 * 1024;
    let mut shard = Shard::new(
        ShardConfig::default().with_memory_limit(limit),
        InvalidationSeq::ZERO,
    );
    for i in 0..10_000u32 {
        let key = format!("missing:{i}");
        assert!(matches!(
            read_with(&mut shard, &key, 0, &options(false, true)),
            Seen::Miss(_, Some(_))
        ));
    }
    let share = ShardConfig::default()
        .with_memory_limit(limit)
        .lease_limit();
    assert!(
        shard.bytes_used() <= share,
        "{} > {share}",
        shard.bytes_used()
    );
    assert!(shard.stats().leases_held > 10);
    shard.assert_invariants();
}
