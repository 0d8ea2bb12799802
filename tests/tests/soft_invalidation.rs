//! Soft INVALIDATE_TAGS and FLUSH_ALL (protocol.md §6.8, §6.9, §8.3):
//! entries stored before are stale for the window, served only to reads
//! that allow it, and misses once it has passed or a hard invalidation
//! follows; entries stored after are fresh.
//!
//! Times are bounded from what the test sees: the server numbers an
//! invalidation between the test sending it and receiving the OK, and
//! answers a read between sending it and receiving the answer.

use std::time::{Duration, Instant};

use tagcached_protocol::request::{Command, FlushAll, Set};
use tagcached_protocol::response::Outcome;
use tagcached_protocol::{ErrorCode, Flags, Limits};
use tagcached_tests::{
    assert_error, keys_on_both_shards, set_cmd, soft_invalidate_cmd, within, Deadline, RawConn,
    TestServer, CLOCK_SLACK,
};

/// A window far longer than any test.
const LONG: u32 = 600;

async fn stale_value(conn: &mut RawConn, key: &str) -> bytes::Bytes {
    match conn.get_with(Flags::ALLOW_STALE, key).await {
        Outcome::Stale(hit) => hit.value,
        other => panic!("{key}: expected STALE, got {other:?}"),
    }
}

async fn allow_stale_miss(conn: &mut RawConn, key: &str) {
    match conn.get_with(Flags::ALLOW_STALE, key).await {
        Outcome::Miss(_) => {}
        other => panic!("{key}: expected MISS, got {other:?}"),
    }
}

/// Polls `key` with ALLOW_STALE until it misses, checking each answer
/// against the window of `window` that the server numbered between `sent`
/// and `acked`: STALE only for reads sent before its end, MISS only for
/// reads answered after it. Returns when it missed.
async fn until_the_window_ends(
    conn: &mut RawConn,
    key: &str,
    window: Duration,
    sent: Instant,
    acked: Instant,
) -> Instant {
    let deadline = Deadline::new(format!("{key} to die"), window + Duration::from_secs(3));
    loop {
        let read_sent = Instant::now();
        let outcome = conn.get_with(Flags::ALLOW_STALE, key).await;
        let answered = Instant::now();
        match outcome {
            Outcome::Stale(_) => assert!(
                read_sent < acked + window + CLOCK_SLACK,
                "{key}: STALE {:?} after the OK, past the window of {window:?}",
                read_sent - acked
            ),
            Outcome::Miss(_) => {
                assert!(
                    answered + CLOCK_SLACK >= sent + window,
                    "{key}: MISS {:?} after sending the invalidation, within its window of {window:?}",
                    answered - sent
                );
                return answered;
            }
            other => panic!("{key}: expected STALE, then MISS, got {other:?}"),
        }
        deadline.tick().await;
    }
}

#[tokio::test]
async fn entries_are_stale_for_the_window_then_misses() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        let keys = keys_on_both_shards("soft");
        for key in &keys {
            conn.store(key, format!("old-{key}"), &["page", "other"])
                .await;
        }
        conn.store("untouched", "v", &["other"]).await;

        let sent = Instant::now();
        conn.invalidate_soft(&["page"], 1).await;
        let acked = Instant::now();
        for key in &keys {
            // A v1 read sees soft exactly as hard.
            conn.get_miss(key).await;
            assert_eq!(stale_value(&mut conn, key).await, format!("old-{key}"));
            // Asking does not use it up.
            assert_eq!(stale_value(&mut conn, key).await, format!("old-{key}"));
        }
        assert_eq!(conn.get_hit("untouched").await.value, "v");

        for key in &keys {
            until_the_window_ends(&mut conn, key, Duration::from_secs(1), sent, acked).await;
            conn.get_miss(key).await;
        }
        assert_eq!(conn.get_hit("untouched").await.value, "v");
    })
    .await;
}

/// §8.3, "Windows of one tag": a second soft invalidation while the first
/// window is open never extends it, for entries stored before either.
#[tokio::test]
async fn a_later_longer_window_does_not_outlive_the_open_one() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        conn.store("before-both", "v", &["t"]).await;
        let sent = Instant::now();
        conn.invalidate_soft(&["t"], 1).await;
        let acked = Instant::now();
        conn.store("between", "v", &["t"]).await;
        conn.invalidate_soft(&["t"], LONG).await;
        conn.store("after-both", "v", &["t"]).await;
        for key in ["before-both", "between"] {
            assert_eq!(stale_value(&mut conn, key).await, "v");
        }
        for key in ["before-both", "between"] {
            until_the_window_ends(&mut conn, key, Duration::from_secs(1), sent, acked).await;
        }
        assert_eq!(conn.get_hit("after-both").await.value, "v");
    })
    .await;
}

/// Regression: each worker took its shard's boot floor from the counter
/// when its thread started, so an invalidation numbered by a client of a
/// worker that was up before another one was at or below the late shard's
/// floor, and that shard did not record it: its soft window was lost, and
/// an entry stored on that shard between two soft invalidations of a tag
/// outlived the first window (one run of the test above in twenty). Every
/// shard now starts from the one sequence read when the server started, so
/// an invalidation sent at once is recorded by both shards of a new server,
/// and none of them has forgotten anything.
#[tokio::test]
async fn every_shard_records_an_invalidation_sent_as_the_server_starts() {
    within(async {
        for _ in 0..40 {
            let server = TestServer::start();
            let mut conn = server.connect().await;
            let seq = conn.invalidate_soft(&["first"], LONG).await;
            let status = conn.tag_status(&["first"]).await;
            assert!(
                status.forgotten_seq < seq,
                "a shard's floor {} is at or above the first invalidation {seq}",
                status.forgotten_seq
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_soft_invalidation_with_expire_0_is_a_hard_one() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        conn.store("k", "v", &["t"]).await;
        let before = conn.stats().await;
        let seq = conn.invalidate_soft(&["t"], 0).await;
        allow_stale_miss(&mut conn, "k").await;
        let after = conn.stats().await;
        assert_eq!(after.num("invalidations"), before.num("invalidations") + 1);
        assert_eq!(
            after.num("soft_invalidations"),
            before.num("soft_invalidations"),
            "not counted as soft"
        );
        let status = conn.tag_status(&["t"]).await.statuses[0];
        assert_eq!((status.hard_seq, status.soft_seq), (seq, 0));
    })
    .await;
}

#[tokio::test]
async fn a_hard_invalidation_after_a_soft_one_makes_its_stale_entries_misses_at_once() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        let keys = keys_on_both_shards("hard-after-soft");
        for key in &keys {
            conn.store(key, "v", &["t"]).await;
        }
        conn.invalidate_soft(&["t"], LONG).await;
        for key in &keys {
            stale_value(&mut conn, key).await;
        }
        conn.invalidate(&["t"]).await;
        for key in &keys {
            allow_stale_miss(&mut conn, key).await;
        }
    })
    .await;
}

#[tokio::test]
async fn entries_stored_after_a_soft_invalidation_are_fresh() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        let keys = keys_on_both_shards("after-soft");
        for key in &keys {
            conn.store(key, "old", &["t"]).await;
        }
        conn.invalidate_soft(&["t"], LONG).await;
        for key in &keys {
            conn.store(key, "new", &["t"]).await;
            conn.store(format!("{key}-new"), "new", &["t"]).await;
        }
        for key in &keys {
            assert_eq!(conn.get_hit(key).await.value, "new");
            assert_eq!(conn.get_hit(format!("{key}-new")).await.value, "new");
            match conn.get_with(Flags::ALLOW_STALE, key).await {
                Outcome::Hit(hit) => assert_eq!(hit.value, "new"),
                other => panic!("{key}: a fresh entry read with ALLOW_STALE: {other:?}"),
            }
        }
    })
    .await;
}

/// §8.3: to fences a soft invalidation counts like a hard one.
#[tokio::test]
async fn a_fence_from_before_a_soft_invalidation_of_a_tag_is_refused() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        for key in keys_on_both_shards("fenced-soft") {
            let fence = conn.get_miss(&key).await.fence;
            let seq = conn.invalidate_soft(&["t"], LONG).await;
            assert_eq!(
                conn.set(&key, "v", &["t", "u"], 0, Some(fence)).await,
                Outcome::Fenced
            );
            let stored = conn.set(&key, "v", &["u"], 0, Some(fence)).await;
            assert!(
                matches!(stored, Outcome::Stored { .. }),
                "other tags: {stored:?}"
            );
            let stored = conn.set(&key, "v", &["t"], 0, Some(seq)).await;
            assert!(
                matches!(stored, Outcome::Stored { .. }),
                "a new fence: {stored:?}"
            );
        }
    })
    .await;
}

/// `expire` of a soft INVALIDATE_TAGS or FLUSH_ALL, and `stale_after`, are
/// bounded by `max_ttl` (§6.5, §6.8, §6.9); a refused request changes
/// nothing.
#[tokio::test]
async fn windows_above_max_ttl_are_bad_ttl() {
    within(async {
        let limits = Limits {
            max_ttl: 100,
            ..Limits::default()
        }
        .with_fitted_max_frame();
        let server = TestServer::with_config(|config| config.limits = limits);
        let mut conn = server.connect().await;
        conn.store("k", "v", &["t"]).await;
        let seq = conn.stats().await.num("invalidation_seq");

        assert_error(
            &conn.run(soft_invalidate_cmd(&["t"], 101)).await,
            ErrorCode::BadTtl,
        );
        // `expire` comes before `tag_count` in the body, so it is checked
        // first (§6).
        assert_error(
            &conn.run(soft_invalidate_cmd(&[], 101)).await,
            ErrorCode::BadTtl,
        );
        assert_error(
            &conn.run(soft_invalidate_cmd(&[], 100)).await,
            ErrorCode::Malformed,
        );
        let flush = Command::FlushAll(FlushAll {
            soft_expire: Some(101),
        });
        assert_error(&conn.run(flush).await, ErrorCode::BadTtl);
        let set = Set {
            stale_after: Some(101),
            ..set_cmd("k", "new", &["t"])
        };
        assert_error(&conn.run(Command::Set(set)).await, ErrorCode::BadTtl);
        assert_eq!(
            conn.stats().await.num("invalidation_seq"),
            seq,
            "not numbered"
        );
        assert_eq!(conn.get_hit("k").await.value, "v", "nothing changed");

        // At the bound itself, accepted.
        conn.invalidate_soft(&["t"], 100).await;
        assert_eq!(stale_value(&mut conn, "k").await, "v");
        conn.flush_all_soft(100).await;
        let set = Set {
            stale_after: Some(100),
            ..set_cmd("k", "new", &["t"])
        };
        let stored = conn.run(Command::Set(set)).await;
        assert!(matches!(stored, Outcome::Stored { .. }), "{stored:?}");
    })
    .await;
}

/// §6.9: a soft FLUSH_ALL makes every entry stored before it stale for the
/// window, keeps leases, refuses older fences; entries stored after are
/// fresh.
#[tokio::test]
async fn a_soft_flush_all_makes_every_entry_stale_then_dead() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        let mut holder = server.connect().await;
        let keys = keys_on_both_shards("flushed");
        for (i, key) in keys.iter().enumerate() {
            // Tagged or not, it makes no difference.
            let tags: &[&str] = if i == 0 { &["t"] } else { &[] };
            conn.store(key, "old", tags).await;
        }
        let fence = conn.get_miss("fenced").await.fence;
        let lease = match holder.get_with(Flags::LEASE, "leased").await {
            Outcome::Miss(miss) => miss.lease.token().expect("a lease"),
            other => panic!("{other:?}"),
        };

        let sent = Instant::now();
        conn.flush_all_soft(1).await;
        let acked = Instant::now();
        conn.store("after", "new", &["t"]).await;
        for key in &keys {
            conn.get_miss(key).await;
            assert_eq!(stale_value(&mut conn, key).await, "old");
        }
        assert_eq!(conn.get_hit("after").await.value, "new");
        assert_eq!(
            conn.set("fenced", "v", &[], 0, Some(fence)).await,
            Outcome::Fenced,
            "a fence from before the flush"
        );
        // The lease is kept: another reader finds it held.
        assert!(matches!(
            conn.get_with(Flags::LEASE, "leased").await,
            Outcome::HotMiss(_)
        ));

        for key in &keys {
            until_the_window_ends(&mut conn, key, Duration::from_secs(1), sent, acked).await;
        }
        assert_eq!(conn.get_hit("after").await.value, "new");
        // Granted before the flush, so fenced by it.
        let refresh = Set {
            lease: Some(lease),
            ..set_cmd("leased", "v", &[])
        };
        assert_eq!(holder.run(Command::Set(refresh)).await, Outcome::Fenced);
    })
    .await;
}

#[tokio::test]
async fn a_soft_flush_all_with_expire_0_is_a_hard_one_and_ends_leases() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        for key in keys_on_both_shards("flushed-hard") {
            conn.store(&key, "old", &[]).await;
        }
        assert!(matches!(
            conn.get_with(Flags::LEASE, "leased").await,
            Outcome::Miss(_)
        ));
        let before = conn.stats().await.num("soft_invalidations");
        conn.flush_all_soft(0).await;
        for key in keys_on_both_shards("flushed-hard") {
            allow_stale_miss(&mut conn, &key).await;
        }
        let stats = conn.stats().await;
        assert_eq!(stats.num("curr_items"), 0, "removed");
        assert_eq!(stats.num("leases_held"), 0, "leases ended");
        assert_eq!(stats.num("soft_invalidations"), before);
        match conn.get_with(Flags::LEASE, "leased").await {
            Outcome::Miss(miss) => assert!(miss.lease.token().is_some(), "a new lease"),
            other => panic!("{other:?}"),
        }
    })
    .await;
}
