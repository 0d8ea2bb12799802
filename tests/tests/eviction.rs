//! A full cache: eviction keeps the server within its memory budget and
//! answering; a value that can never fit is refused.

use tagcached_protocol::request::Command;
use tagcached_protocol::response::Outcome;
use tagcached_protocol::{ErrorCode, Flags, Request};
use tagcached_tests::{assert_error, request, set_cmd, within, TestServer};

const MIB: usize = 1 << 20;

#[tokio::test]
async fn writing_far_more_than_fits_evicts_and_stays_within_the_budget() {
    within(async {
        let server = TestServer::with_config(|config| {
            config.threads = 1;
            config.memory = 2 * MIB;
        });
        let mut conn = server.connect().await;
        const KEYS: usize = 2000;
        const VALUE: usize = 10 * 1024;
        // 20 MiB through a 2 MiB cache, in quiet batches ended by a NOOP.
        for batch in 0..KEYS / 100 {
            let mut requests: Vec<Request> = (batch * 100..(batch + 1) * 100)
                .map(|i| {
                    let value = vec![(i % 251) as u8; VALUE];
                    let set = set_cmd(format!("evict-{i}"), value, &["bulk"]);
                    request(i as u32, Flags::QUIET, Command::Set(set))
                })
                .collect();
            requests.push(Request::new(u32::MAX, Command::Noop));
            conn.send_batch(&requests).await;
            let response = conn.recv().await;
            assert_eq!(
                (response.opaque, response.outcome),
                (u32::MAX, Outcome::Ok),
                "every quiet SET stored"
            );
        }
        let stats = conn.stats().await;
        assert!(stats.num("bytes") <= stats.num("limit_maxbytes"));
        assert_eq!(stats.num("limit_maxbytes"), 2 * MIB as u64);
        assert!(stats.num("evictions") > 0);
        assert!(stats.num("curr_items") < KEYS as u64);
        assert_eq!(stats.num("cmd_set"), KEYS as u64);
        // The most recent writes are still there, intact.
        for i in KEYS - 20..KEYS {
            let hit = conn.get_hit(format!("evict-{i}")).await;
            assert_eq!(hit.value.len(), VALUE);
            assert!(hit.value.iter().all(|&b| b == (i % 251) as u8));
        }
        conn.get_miss("evict-0").await;
        conn.ping().await;
        let mut other = server.connect().await;
        other.ping().await;
    })
    .await;
}

#[tokio::test]
async fn a_value_larger_than_a_shards_memory_is_refused_and_the_connection_goes_on() {
    within(async {
        let server = TestServer::with_config(|config| {
            config.threads = 2;
            config.memory = 2 * MIB; // 1 MiB per shard
        });
        let mut conn = server.connect().await;
        conn.store("huge", "small", &["t"]).await;
        // Within max_value_length (1 MiB), but with its key and overhead it
        // cannot fit in a shard of 1 MiB.
        let value = vec![0u8; MIB];
        let outcome = conn.set("huge", &value, &["t"], 0, None).await;
        assert_error(&outcome, ErrorCode::ValueTooLarge);
        // Nothing was evicted for it and the old entry is untouched.
        assert_eq!(conn.value("huge").await.as_deref(), Some(&b"small"[..]));
        conn.ping().await;
        let fits = vec![1u8; MIB / 2];
        let outcome = conn.set("half", &fits, &[], 0, None).await;
        assert!(matches!(outcome, Outcome::Stored { .. }), "{outcome:?}");
        assert_eq!(conn.get_hit("half").await.value.len(), MIB / 2);
        assert_eq!(conn.stats().await.num("evictions"), 0);
    })
    .await;
}
