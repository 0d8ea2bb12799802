//! TTLs (whole seconds), TOUCH, and the background sweep.
//!
//! The server's clock is real time, so these tests use TTLs of one second
//! and poll with a deadline rather than sleeping a guessed amount.

use std::time::Duration;

use tagcached_protocol::response::Outcome;
use tagcached_tests::{within, Deadline, RawConn, TestServer};

/// How long a one-second TTL may take to be seen as expired.
const EXPIRY_DEADLINE: Duration = Duration::from_secs(3);

/// Polls GET until `key` misses.
async fn until_missing(conn: &mut RawConn, key: &str) {
    let deadline = Deadline::new(format!("{key} to expire"), EXPIRY_DEADLINE);
    while conn.value(key).await.is_some() {
        deadline.tick().await;
    }
}

#[tokio::test]
async fn an_entry_expires_after_its_ttl() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        let stored = conn.set("short", "v", &[], 1, None).await;
        assert!(matches!(stored, Outcome::Stored { .. }));
        conn.store("forever", "v", &[]).await;
        assert_eq!(conn.value("short").await.as_deref(), Some(&b"v"[..]));

        until_missing(&mut conn, "short").await;
        assert_eq!(conn.value("forever").await.as_deref(), Some(&b"v"[..]));
        // The expired entry is gone for every command, not only GET.
        assert_eq!(conn.touch("short", 10).await, Outcome::NotFound);
        assert_eq!(conn.delete("short").await, Outcome::NotFound);
    })
    .await;
}

#[tokio::test]
async fn touch_extends_or_clears_a_ttl() {
    within(async {
        // No sweep: expired entries stay until a reader finds them, so the
        // expired reads are counted as such.
        let server = TestServer::with_config(|config| {
            config.sweep_interval = Duration::from_secs(3600);
        });
        let mut conn = server.connect().await;
        for key in ["cleared", "extended", "control"] {
            let stored = conn.set(key, "v", &[], 1, None).await;
            assert!(matches!(stored, Outcome::Stored { .. }));
        }
        assert_eq!(conn.touch("cleared", 0).await, Outcome::Ok);
        assert_eq!(conn.touch("extended", 30).await, Outcome::Ok);

        // Once the untouched key has expired, the touched ones would have.
        until_missing(&mut conn, "control").await;
        assert_eq!(conn.value("cleared").await.as_deref(), Some(&b"v"[..]));
        assert_eq!(conn.value("extended").await.as_deref(), Some(&b"v"[..]));

        // TOUCH can shorten a TTL too.
        assert_eq!(conn.touch("extended", 1).await, Outcome::Ok);
        until_missing(&mut conn, "extended").await;
        assert_eq!(conn.value("cleared").await.as_deref(), Some(&b"v"[..]));
        // Reads count why they missed (the sweep is off, its start-up run
        // long done).
        conn.store("tagged", "v", &["x"]).await;
        conn.invalidate(&["x"]).await;
        conn.get_miss("tagged").await;
        let stats = conn.stats().await;
        assert_eq!(stats.num("get_expired"), 2);
        assert_eq!(stats.num("get_invalidated"), 1);
    })
    .await;
}

/// Expired and invalidated entries nobody reads are reclaimed by the sweep:
/// `curr_items` falls without a single GET of those keys.
#[tokio::test]
async fn the_sweep_reclaims_expired_and_invalidated_entries_nobody_reads() {
    within(async {
        let server = TestServer::with_config(|config| {
            config.sweep_interval = Duration::from_millis(20);
            config.sweep_batch = 64;
        });
        let mut conn = server.connect().await;
        for i in 0..100 {
            let stored = conn.set(format!("ttl-{i}"), "v", &[], 1, None).await;
            assert!(matches!(stored, Outcome::Stored { .. }));
            conn.store(format!("tagged-{i}"), "v", &["doomed"]).await;
        }
        for i in 0..10 {
            conn.store(format!("kept-{i}"), "v", &["kept"]).await;
        }
        let stats = conn.stats().await;
        assert_eq!(stats.num("curr_items"), 210);
        let bytes_before = stats.num("bytes");
        conn.invalidate(&["doomed"]).await;

        let deadline = Deadline::new("the sweep", EXPIRY_DEADLINE);
        let stats = loop {
            let stats = conn.stats().await;
            if stats.num("curr_items") == 10 {
                break stats;
            }
            deadline.tick().await;
        };
        assert!(stats.num("bytes") < bytes_before / 10);
        assert_eq!(
            stats.num("get_hits") + stats.num("get_misses"),
            0,
            "nobody read"
        );
        assert_eq!(stats.num("expired_reclaimed"), 100);
        assert_eq!(stats.num("invalidated_reclaimed"), 100);
        for i in 0..10 {
            assert_eq!(
                conn.value(format!("kept-{i}")).await.as_deref(),
                Some(&b"v"[..])
            );
        }
    })
    .await;
}
