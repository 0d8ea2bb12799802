//! Fenced SET (protocol.md §8.2): a value built from data read before an
//! invalidation of its tags can never be stored after it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tagcached_protocol::response::Outcome;
use tagcached_tests::{keys_on_shard, within, Stats, TestServer};

#[tokio::test]
async fn a_fence_from_before_an_invalidation_of_a_tag_is_refused() {
    within(async {
        let server = TestServer::start();
        // The reader and the invalidator on different shards, and the key
        // owned by a third party's shard: the refusal must not depend on
        // where anything runs.
        let mut reader = server.connect_to_shard(0).await;
        let mut writer = server.connect_to_shard(1).await;
        for key in [keys_on_shard("f", 0, 2, 1), keys_on_shard("f", 1, 2, 1)].concat() {
            let fence = reader.get_miss(&key).await.fence;
            let seq = writer.invalidate(&["user:1"]).await;
            assert!(seq > fence);
            let refused = reader
                .set(&key, "stale", &["user:1", "other"], 0, Some(fence))
                .await;
            assert_eq!(refused, Outcome::Fenced);
            reader.get_miss(&key).await;

            // Read again, with the fresh fence the SET goes through.
            let fresh = reader.get_miss(&key).await.fence;
            assert_eq!(fresh, seq);
            let stored = reader
                .set(&key, "fresh", &["user:1", "other"], 0, Some(fresh))
                .await;
            assert!(matches!(stored, Outcome::Stored { .. }), "{stored:?}");
            assert_eq!(writer.value(&key).await.as_deref(), Some(&b"fresh"[..]));
        }
        let stats = reader.stats().await;
        assert!(stats.text("set_fenced").parse::<u64>().expect("number") >= 2);
    })
    .await;
}

#[tokio::test]
async fn an_old_fence_passes_when_none_of_the_sets_tags_was_invalidated() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        let fence = conn.get_miss("k").await.fence;
        conn.invalidate(&["unrelated"]).await;
        let outcome = conn.set("k", "v", &["mine"], 0, Some(fence)).await;
        assert!(matches!(outcome, Outcome::Stored { .. }), "{outcome:?}");
        assert_eq!(conn.value("k").await.as_deref(), Some(&b"v"[..]));
        // No fence (0 on the wire): never refused.
        conn.invalidate(&["mine"]).await;
        let outcome = conn.set("k", "v2", &["mine"], 0, None).await;
        assert!(matches!(outcome, Outcome::Stored { .. }), "{outcome:?}");
    })
    .await;
}

/// The fence from a hit works like the fence from a miss, and a refused SET
/// leaves the existing entry alone.
#[tokio::test]
async fn a_refused_set_leaves_the_current_entry_in_place() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        conn.store("k", "original", &["a"]).await;
        let fence = conn.get_hit("k").await.fence;
        conn.invalidate(&["b"]).await;
        assert_eq!(
            conn.set("k", "stale", &["a", "b"], 0, Some(fence)).await,
            Outcome::Fenced
        );
        assert_eq!(conn.value("k").await.as_deref(), Some(&b"original"[..]));
    })
    .await;
}

#[tokio::test]
async fn a_fence_from_before_a_flush_all_is_refused() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        let keys = [keys_on_shard("fl", 0, 2, 1), keys_on_shard("fl", 1, 2, 1)].concat();
        let mut fences = Vec::new();
        for key in &keys {
            fences.push(conn.get_miss(key).await.fence);
        }
        let seq = conn.flush_all().await;
        for (key, fence) in keys.iter().zip(&fences) {
            // Tags never seen, never invalidated by name: the flush covers
            // them, and an untagged value too.
            for tags in [&["never-seen"][..], &[]] {
                let outcome = conn.set(key, "stale", tags, 0, Some(*fence)).await;
                assert_eq!(outcome, Outcome::Fenced, "tags {tags:?}");
                conn.get_miss(key).await;
            }
            let fresh = conn.get_miss(key).await.fence;
            assert_eq!(fresh, seq);
            let outcome = conn
                .set(key, "fresh", &["never-seen"], 0, Some(fresh))
                .await;
            assert!(matches!(outcome, Outcome::Stored { .. }), "{outcome:?}");
        }
    })
    .await;
}

/// Waits until the clock's millisecond has passed the boot time in
/// `sequence` (a server's sequence starts at its boot time in Unix
/// milliseconds, shifted left by 20 bits), so that a server started next
/// starts above every sequence the first one has handed out. Bounded by
/// the test's [`within`].
async fn until_the_clock_passes(sequence: u64) {
    let boot_ms = u128::from(sequence >> 20);
    loop {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis();
        if now_ms > boot_ms + 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Regression (issue 8): a fence greater than the server's sequence was
/// accepted. With two servers, the later-started one's fences are above
/// the other's sequence; a value computed after a miss on the later one,
/// before an invalidation that both applied, was stored on the earlier one
/// with the later one's fence.
#[tokio::test]
async fn a_fence_from_a_server_further_along_is_refused() {
    within(async {
        let behind = TestServer::start();
        let mut b = behind.connect().await;
        until_the_clock_passes(b.get_miss("k").await.fence).await;
        let ahead = TestServer::start();
        let mut a = ahead.connect().await;

        // Read on A, then the data changes and both servers hear of it.
        let fence = a.get_miss("k").await.fence;
        a.invalidate(&["user:1"]).await;
        let applied = b.invalidate(&["user:1"]).await;
        assert!(fence > applied, "A's fence is above B's sequence");

        // The stale value, with A's fence, reaches B.
        for tags in [&["user:1"][..], &["unrelated"], &[]] {
            let outcome = b.set("k", "stale", tags, 0, Some(fence)).await;
            assert_eq!(outcome, Outcome::Fenced, "tags {tags:?}");
        }
        b.get_miss("k").await;
        // B's own current sequence is a fence B may have issued.
        let own = b.get_miss("k").await.fence;
        assert_eq!(own, applied);
        let outcome = b.set("k", "fresh", &["user:1"], 0, Some(own)).await;
        assert!(matches!(outcome, Outcome::Stored { .. }), "{outcome:?}");
        // One above it is not, on any shard.
        for key in [
            keys_on_shard("ahead", 0, 2, 1),
            keys_on_shard("ahead", 1, 2, 1),
        ]
        .concat()
        {
            let outcome = b.set(&key, "v", &[], 0, Some(own + 1)).await;
            assert_eq!(outcome, Outcome::Fenced, "{key}");
        }
    })
    .await;
}

/// protocol.md §8.2: a restart acts like a FLUSH_ALL for fences.
#[tokio::test]
async fn a_fence_from_before_a_restart_is_refused_whatever_the_tags() {
    within(async {
        let before = TestServer::start();
        let addr = before.addr();
        let mut conn = before.connect().await;
        let fence = conn.get_miss("k").await.fence;
        let stop = tokio::task::spawn_blocking(move || before.stop());
        stop.await.expect("stop task").expect("a clean stop");
        until_the_clock_passes(fence).await;

        let after = TestServer::with_config(|config| config.listen = vec![addr]);
        assert_eq!(after.addr(), addr, "restarted on the same address");
        let mut conn = after.connect().await;
        for key in [keys_on_shard("re", 0, 2, 1), keys_on_shard("re", 1, 2, 1)].concat() {
            for tags in [&["never-invalidated"][..], &[]] {
                let outcome = conn.set(&key, "stale", tags, 0, Some(fence)).await;
                assert_eq!(outcome, Outcome::Fenced, "{key} {tags:?}");
            }
            let fresh = conn.get_miss(&key).await.fence;
            let outcome = conn
                .set(&key, "v", &["never-invalidated"], 0, Some(fresh))
                .await;
            assert!(matches!(outcome, Outcome::Stored { .. }), "{outcome:?}");
        }
    })
    .await;
}

/// protocol.md §8.2: tags are tracked per shard, so the same fenced SET can
/// be FENCED on one shard and STORED on another. Shard 0 is filled to the
/// byte, so the invalidation of a tag no entry carries does not fit there
/// and is forgotten at once (raising shard 0's floor), while shard 1 keeps
/// it.
#[tokio::test]
async fn the_same_fenced_set_can_be_fenced_on_one_shard_and_stored_on_another() {
    within(async {
        let server = TestServer::with_config(|config| config.memory = 2 << 20);
        let mut conn = server.connect().await;
        let shard_bytes = |stats: &Stats, shard: u16| stats.num(&format!("shard.{shard}.bytes"));

        // What an entry costs beyond its key and value, from a probe.
        let probe = keys_on_shard("probe", 0, 2, 1).remove(0);
        let empty = shard_bytes(&conn.stats().await, 0);
        conn.store(&probe, "x", &[]).await;
        let stats = conn.stats().await;
        let overhead = shard_bytes(&stats, 0) - empty - probe.len() as u64 - 1;
        let limit = stats.num("shard.0.limit_maxbytes");
        let mut room = limit - shard_bytes(&stats, 0);
        for key in keys_on_shard("fill", 0, 2, 64) {
            let Some(value_len) = room.checked_sub(overhead + key.len() as u64) else {
                break;
            };
            let value_len = value_len.min(512 * 1024);
            conn.store(&key, vec![b'f'; value_len as usize], &[]).await;
            room -= overhead + key.len() as u64 + value_len;
            if room == 0 {
                break;
            }
        }
        let stats = conn.stats().await;
        assert_eq!(shard_bytes(&stats, 0), limit - room);
        assert!(room < overhead + 64, "shard 0 is full: {room} bytes left");
        assert_eq!(stats.num("shard.0.evictions"), 0);

        let fence = conn.get_miss("anything").await.fence;
        let forgotten = "u".repeat(1000);
        conn.invalidate(&[&forgotten]).await;
        let stats = conn.stats().await;
        assert_eq!(stats.num("shard.0.tags_tracked"), 0, "forgotten on shard 0");
        assert_eq!(stats.num("shard.1.tags_tracked"), 1, "tracked on shard 1");

        // A tag never invalidated anywhere, the same fence: shard 0 reads
        // it as invalidated at what it forgot; shard 1 knows better.
        let on_0 = keys_on_shard("same", 0, 2, 1).remove(0);
        let on_1 = keys_on_shard("same", 1, 2, 1).remove(0);
        let outcome = conn.set(&on_0, "v", &["t"], 0, Some(fence)).await;
        assert_eq!(outcome, Outcome::Fenced);
        let outcome = conn.set(&on_1, "v", &["t"], 0, Some(fence)).await;
        assert!(matches!(outcome, Outcome::Stored { .. }), "{outcome:?}");
    })
    .await;
}
