//! Every command of protocol.md §6 against the real server, one behaviour
//! per test.

use bytes::Bytes;
use tagcached_protocol::request::{Command, Set, SetMode};
use tagcached_protocol::response::{Features, HelloInfo, Outcome};
use tagcached_protocol::{Flags, Limits, Opcode, Request};
use tagcached_tests::{get_cmd, get_many_cmd, keys_on_shard, set_cmd, within, TestServer};

/// Keeps the background sweep (all but its first run, at start-up) out of a
/// test that counts entries and how reads found them.
fn no_sweep(config: &mut tagcached::Config) {
    config.sweep_interval = std::time::Duration::from_secs(3600);
}

#[tokio::test]
async fn hello_reports_version_shards_hash_features_and_limits() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        let info: HelloInfo = conn.hello(None).await;
        assert_eq!(info.version, 1);
        assert_eq!(info.shard_count, 2);
        assert!(info.shard < 2);
        assert_eq!(info.hash, HelloInfo::HASH_FNV1A_64);
        assert_eq!(
            info.features,
            Features::FENCED_SET
                | Features::SHARD_AWARE
                | Features::STALE_WHILE_REVALIDATE
                | Features::LEASES,
            "bits 0 to 3: no pending invalidation or authentication yet"
        );
        assert_eq!(info.limits, Limits::default());
        assert_eq!(info.limits.max_frame, 2_099_492, "protocol.md §7");
        assert_eq!(
            info.server_version,
            Bytes::from(format!("tagcached {}", env!("CARGO_PKG_VERSION")))
        );
    })
    .await;
}

#[tokio::test]
async fn hello_reports_configured_limits() {
    within(async {
        let limits = Limits {
            max_key_length: 100,
            max_tags: 8,
            max_keys_per_getm: 16,
            max_ttl: 3600,
            ..Limits::with_max_value_length(4096)
        }
        .with_fitted_max_frame();
        let server = TestServer::with_config(|config| {
            config.threads = 3;
            config.limits = limits;
        });
        let mut conn = server.connect().await;
        let info = conn.hello(None).await;
        assert_eq!(info.shard_count, 3);
        assert_eq!(info.limits, limits);
        // And they are the limits in force.
        let long_key = "k".repeat(101);
        tagcached_tests::assert_error(
            &conn.get(&long_key).await,
            tagcached_protocol::ErrorCode::KeyInvalid,
        );
        conn.get_miss("k".repeat(100)).await;
    })
    .await;
}

#[tokio::test]
async fn ping_and_noop_answer_ok_echoing_the_opaque() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        for (opaque, command) in [
            (0, Command::Ping),
            (u32::MAX, Command::Noop),
            (0xDEAD_BEEF, Command::Ping),
        ] {
            let response = conn.call(Request::new(opaque, command)).await;
            assert_eq!(response.outcome, Outcome::Ok);
        }
    })
    .await;
}

#[tokio::test]
async fn get_misses_then_hits_and_carries_the_current_fence() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        let miss = conn.get_miss("absent").await;
        let seq = conn.stats().await.num("invalidation_seq");
        assert_eq!(miss.fence, seq, "the fence is the current sequence");
        assert_eq!(miss.key_index, None);

        let cas = conn.store("k", "value", &["t"]).await;
        let hit = conn.get_hit("k").await;
        assert_eq!(hit.value, "value");
        assert_eq!(hit.cas, cas);
        assert_eq!(hit.fence, seq);
        assert!(hit.tags.is_empty(), "tags only with WITH_TAGS");

        let later = conn.invalidate(&["unrelated"]).await;
        assert!(later > seq);
        assert_eq!(conn.get_hit("k").await.fence, later);
        assert_eq!(conn.get_miss("absent").await.fence, later);
    })
    .await;
}

#[tokio::test]
async fn get_with_tags_returns_sorted_deduplicated_tags() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        let tags = ["zeta", "b", "a", "b", "ünï", "a", "B", "user:42"];
        conn.store("k", "v", &tags).await;
        let Outcome::Hit(hit) = conn.run_with(Flags::WITH_TAGS, get_cmd("k")).await else {
            panic!("expected a hit");
        };
        let mut expected: Vec<&[u8]> = tags.iter().map(|tag| tag.as_bytes()).collect();
        expected.sort_unstable();
        expected.dedup();
        let got: Vec<&[u8]> = hit.tags.iter().map(|tag| &tag[..]).collect();
        assert_eq!(got, expected, "sorted by bytes, each once");
        assert_eq!(hit.value, "v");
    })
    .await;
}

#[tokio::test]
async fn getm_answers_keys_from_every_shard_in_request_order() {
    within(async {
        let server = TestServer::with_config(|config| config.threads = 4);
        let shards = server.shard_count();
        let mut conn = server.connect().await;
        // Interleave shards so each neighbour in the request lives elsewhere,
        // with some keys absent.
        let per_shard: Vec<Vec<String>> = (0..shards)
            .map(|shard| keys_on_shard("getm", shard, shards, 5))
            .collect();
        let mut keys = Vec::new();
        for i in 0..5 {
            for shard_keys in &per_shard {
                keys.push(shard_keys[i].clone());
            }
        }
        for (index, key) in keys.iter().enumerate() {
            if index % 3 != 0 {
                conn.store(key, format!("value-{index}"), &["g", key]).await;
            }
        }
        let opaque = conn.next_opaque();
        conn.send(&Request {
            opaque,
            flags: Flags::WITH_TAGS,
            command: get_many_cmd(&keys),
        })
        .await;
        for (index, key) in keys.iter().enumerate() {
            let response = conn.recv().await;
            assert_eq!(response.opaque, opaque);
            assert_eq!(response.opcode, Opcode::GETM);
            match response.outcome {
                Outcome::Hit(hit) => {
                    assert_ne!(index % 3, 0, "{key} was never stored");
                    assert_eq!(hit.key_index, Some(index as u16));
                    assert_eq!(hit.value, format!("value-{index}"));
                    let mut tags = vec![Bytes::from_static(b"g"), Bytes::from(key.clone())];
                    tags.sort();
                    assert_eq!(hit.tags, tags);
                }
                Outcome::Miss(miss) => {
                    assert_eq!(index % 3, 0, "{key} was stored");
                    assert_eq!(miss.key_index, Some(index as u16));
                }
                other => panic!("GETM answered {other:?}"),
            }
        }
        // Nothing more: exactly one frame per key.
        conn.ping().await;

        // QUIET leaves the misses out; key_index says which keys hit.
        let opaque = conn.next_opaque();
        conn.send(&Request {
            opaque,
            flags: Flags::QUIET,
            command: get_many_cmd(&keys),
        })
        .await;
        conn.send(&Request::new(opaque + 1, Command::Noop)).await;
        let mut hit_indexes = Vec::new();
        loop {
            let response = conn.recv().await;
            match response.outcome {
                Outcome::Hit(hit) => {
                    assert_eq!(response.opaque, opaque);
                    assert!(hit.tags.is_empty());
                    hit_indexes.push(hit.key_index.expect("GETM hits carry key_index"));
                }
                Outcome::Ok => {
                    assert_eq!(response.opaque, opaque + 1);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let expected: Vec<u16> = (0..keys.len() as u16).filter(|i| i % 3 != 0).collect();
        assert_eq!(hit_indexes, expected);
    })
    .await;
}

/// SET in every mode, on a key the connection's own shard owns and on one
/// it must forward, so both paths are covered.
#[tokio::test]
async fn set_modes_store_only_when_their_condition_holds() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect_to_shard(0).await;
        let local = keys_on_shard("mode", 0, 2, 1).remove(0);
        let remote = keys_on_shard("mode", 1, 2, 1).remove(0);
        for key in [local, remote] {
            let cmd = |mode: SetMode, value: &str| {
                let set = Set {
                    mode,
                    ..set_cmd(&key, value, &[])
                };
                Command::Set(set)
            };
            let replace_absent = cmd(SetMode::Replace, "r0");
            assert_eq!(conn.run(replace_absent).await, Outcome::NotStored);
            let cas_absent = cmd(SetMode::Cas(1), "c0");
            assert_eq!(conn.run(cas_absent).await, Outcome::NotFound);
            assert!(conn.get(&key).await.status() == tagcached_protocol::Status::MISS);

            let add = cmd(SetMode::Add, "a1");
            let Outcome::Stored { cas: first } = conn.run(add).await else {
                panic!("ADD on an absent key stores");
            };
            let add_again = cmd(SetMode::Add, "a2");
            assert_eq!(conn.run(add_again).await, Outcome::NotStored);
            assert_eq!(conn.value(&key).await.as_deref(), Some(&b"a1"[..]));

            let replace = cmd(SetMode::Replace, "r1");
            let Outcome::Stored { cas: second } = conn.run(replace).await else {
                panic!("REPLACE on a present key stores");
            };
            assert_ne!(second, first, "every store gets a new CAS value");

            let stale = cmd(SetMode::Cas(first), "c1");
            assert_eq!(conn.run(stale).await, Outcome::Exists);
            assert_eq!(conn.value(&key).await.as_deref(), Some(&b"r1"[..]));
            let current = cmd(SetMode::Cas(second), "c2");
            let Outcome::Stored { cas: third } = conn.run(current).await else {
                panic!("CAS with the current value stores");
            };
            assert_eq!(conn.get_hit(&key).await.cas, third);
            assert_eq!(conn.value(&key).await.as_deref(), Some(&b"c2"[..]));

            let plain = cmd(SetMode::Set, "s");
            assert!(matches!(conn.run(plain).await, Outcome::Stored { .. }));
            assert_eq!(conn.value(&key).await.as_deref(), Some(&b"s"[..]));
        }
    })
    .await;
}

#[tokio::test]
async fn client_flags_keys_and_values_round_trip_byte_for_byte() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        let all_bytes: Vec<u8> = (0..=255u8).collect();
        let long_key = vec![0xFFu8; 250];
        let big_value = vec![0xA5u8; 1 << 20];
        let cases: [(&[u8], &[u8], u32); 5] = [
            (b"flags-max", b"v", u32::MAX),
            (b"flags-zero", b"", 0),
            (&all_bytes[6..], &all_bytes, 0xDEAD_BEEF),
            (&long_key, b"longest key", 7),
            (b"\x00nul key\x00", &big_value, 1),
        ];
        for (key, value, client_flags) in cases {
            let set = Set {
                client_flags,
                ..set_cmd(key, value, &[])
            };
            let outcome = conn.run(Command::Set(set)).await;
            assert!(matches!(outcome, Outcome::Stored { .. }), "{outcome:?}");
            let hit = conn.get_hit(key).await;
            assert_eq!(hit.client_flags, client_flags);
            assert_eq!(&hit.value[..], value);
        }
    })
    .await;
}

#[tokio::test]
async fn delete_removes_once_then_reports_not_found() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        for key in ["del-a", "del-b", "del-c", "del-d"] {
            conn.store(key, "v", &[]).await;
            assert_eq!(conn.delete(key).await, Outcome::Ok);
            conn.get_miss(key).await;
            assert_eq!(conn.delete(key).await, Outcome::NotFound);
        }
        assert_eq!(conn.delete("never-set").await, Outcome::NotFound);
        // An invalidated entry is not live: DELETE reports NOT_FOUND.
        conn.store("del-tagged", "v", &["gone"]).await;
        conn.invalidate(&["gone"]).await;
        assert_eq!(conn.delete("del-tagged").await, Outcome::NotFound);
    })
    .await;
}

#[tokio::test]
async fn touch_answers_ok_for_live_entries_and_not_found_otherwise() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        conn.store("touched", "v", &[]).await;
        assert_eq!(conn.touch("touched", 100).await, Outcome::Ok);
        assert_eq!(conn.touch("touched", 0).await, Outcome::Ok);
        assert_eq!(conn.value("touched").await.as_deref(), Some(&b"v"[..]));
        assert_eq!(conn.touch("absent", 10).await, Outcome::NotFound);
    })
    .await;
}

#[tokio::test]
async fn invalidate_tags_returns_increasing_sequences_and_misses_tagged_entries() {
    within(async {
        let server = TestServer::with_config(no_sweep);
        let mut conn = server.connect().await;
        conn.store("a", "1", &["red"]).await;
        conn.store("b", "2", &["blue"]).await;
        conn.store("c", "3", &["green", "red"]).await;
        conn.store("d", "4", &[]).await;
        let boot = conn.stats().await.num("invalidation_seq");
        let first = conn.invalidate(&["red"]).await;
        assert_eq!(first, boot + 1);
        conn.get_miss("a").await;
        conn.get_miss("c").await;
        assert_eq!(conn.value("b").await.as_deref(), Some(&b"2"[..]));
        assert_eq!(conn.value("d").await.as_deref(), Some(&b"4"[..]));

        // Several tags at once; tags nobody carries are fine.
        let second = conn.invalidate(&["blue", "never-used", "blue"]).await;
        assert_eq!(second, first + 1);
        conn.get_miss("b").await;
        assert_eq!(conn.value("d").await.as_deref(), Some(&b"4"[..]));

        // Stored after the invalidation: served as usual.
        conn.store("a", "again", &["red"]).await;
        assert_eq!(conn.value("a").await.as_deref(), Some(&b"again"[..]));

        let stats = conn.stats().await;
        assert_eq!(stats.num("invalidation_seq"), second);
        assert_eq!(stats.num("invalidations"), 2);
        // The three invalidated entries were reclaimed, each by the read
        // that missed it or (if a worker ran its start-up sweep late) by the
        // sweep.
        assert_eq!(stats.num("get_misses"), 3);
        assert_eq!(stats.num("invalidated_reclaimed"), 3);
        assert!(stats.num("get_invalidated") <= 3);
    })
    .await;
}

#[tokio::test]
async fn flush_all_empties_every_shard() {
    within(async {
        let server = TestServer::with_config(|config| config.threads = 3);
        let mut conn = server.connect().await;
        let keys: Vec<String> = (0..3)
            .flat_map(|shard| keys_on_shard("flush", shard, 3, 4))
            .collect();
        for key in &keys {
            conn.store(key, "v", &["t"]).await;
        }
        assert_eq!(conn.stats().await.num("curr_items"), keys.len() as u64);
        let before = conn.stats().await.num("invalidation_seq");
        let seq = conn.flush_all().await;
        assert_eq!(seq, before + 1);
        for key in &keys {
            conn.get_miss(key).await;
        }
        let stats = conn.stats().await;
        assert_eq!(stats.num("curr_items"), 0);
        assert_eq!(stats.num("bytes"), 0);
        assert_eq!(stats.num("invalidation_seq"), seq);
        // The server goes on as new.
        conn.store(&keys[0], "after", &[]).await;
        assert_eq!(conn.value(&keys[0]).await.as_deref(), Some(&b"after"[..]));
    })
    .await;
}

/// The names protocol.md §6.10 promises.
const DOCUMENTED_STATS: [&str; 19] = [
    "uptime",
    "version",
    "curr_items",
    "bytes",
    "limit_maxbytes",
    "get_hits",
    "get_misses",
    "get_invalidated",
    "get_expired",
    "invalidated_reclaimed",
    "expired_reclaimed",
    "evictions",
    "cmd_set",
    "invalidations",
    "tags_tracked",
    "curr_connections",
    "total_connections",
    "invalidation_seq",
    "threads",
];

#[tokio::test]
async fn stats_has_every_documented_name_with_plausible_values() {
    within(async {
        let server = TestServer::with_config(no_sweep);
        let mut conn = server.connect().await;
        let mut other = server.connect().await;
        other.ping().await;

        let stats = conn.stats().await;
        for name in DOCUMENTED_STATS {
            let value = stats.text(name);
            if name != "version" {
                stats.num(name);
            }
            assert!(!value.is_empty(), "{name}");
        }
        assert_eq!(stats.text("version"), env!("CARGO_PKG_VERSION"));
        assert_eq!(stats.num("threads"), 2);
        assert_eq!(stats.num("limit_maxbytes"), 64 << 20);
        assert_eq!(stats.num("curr_items"), 0);
        assert_eq!(stats.num("curr_connections"), 2);
        assert!(stats.num("total_connections") >= 2);
        assert!(stats.num("uptime") < 60);
        assert!(
            stats.num("invalidation_seq") > 0,
            "starts at the boot epoch"
        );
        // Per-shard counters exist for each shard.
        for shard in 0..2 {
            stats.num(&format!("shard.{shard}.curr_items"));
            assert_eq!(
                stats.num(&format!("shard.{shard}.limit_maxbytes")),
                32 << 20
            );
        }

        // Counters move with traffic, across both shards.
        let keys: Vec<String> = (0..2).flat_map(|s| keys_on_shard("st", s, 2, 3)).collect();
        for key in &keys {
            conn.store(key, "0123456789", &["tag-a", "tag-b"]).await;
        }
        for key in &keys {
            conn.get_hit(key).await;
            conn.get_hit(key).await;
        }
        conn.get_miss("st-absent").await;
        conn.invalidate(&["tag-a"]).await;
        conn.get_miss(&keys[0]).await;

        let after = conn.stats().await;
        assert_eq!(after.num("cmd_set"), keys.len() as u64);
        assert_eq!(after.num("get_hits"), 2 * keys.len() as u64);
        assert_eq!(after.num("get_misses"), 2);
        assert!(after.num("get_invalidated") <= 1, "see the test above");
        assert_eq!(after.num("invalidated_reclaimed"), 1);
        assert_eq!(after.num("get_expired"), 0);
        assert_eq!(after.num("invalidations"), 1);
        assert_eq!(after.num("evictions"), 0);
        // The invalidated read reclaimed its entry; nothing else did.
        assert_eq!(after.num("curr_items"), keys.len() as u64 - 1);
        assert!(after.num("bytes") > 0);
        assert!(after.num("bytes") <= after.num("limit_maxbytes"));
        assert!(after.num("tags_tracked") >= 1);
        let per_shard_hits: u64 = (0..2)
            .map(|shard| after.num(&format!("shard.{shard}.get_hits")))
            .sum();
        assert_eq!(per_shard_hits, after.num("get_hits"));
    })
    .await;
}

/// GET through a connection that does not own the key gives the same answer
/// as through the owner: the forwarded path is not a different cache.
#[tokio::test]
async fn forwarded_and_local_requests_see_the_same_entries() {
    within(async {
        let server = TestServer::start();
        let mut on_zero = server.connect_to_shard(0).await;
        let mut on_one = server.connect_to_shard(1).await;
        let key = keys_on_shard("fwd", 1, 2, 1).remove(0);
        let cas = on_zero.store(&key, "via shard 0", &["fwd"]).await;
        let hit = on_one.get_hit(&key).await;
        assert_eq!((hit.cas, &hit.value[..]), (cas, &b"via shard 0"[..]));
        assert_eq!(on_one.delete(&key).await, Outcome::Ok);
        on_zero.get_miss(&key).await;
    })
    .await;
}
