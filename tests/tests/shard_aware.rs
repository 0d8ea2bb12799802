//! Shard-aware connections (protocol.md §9): HELLO with `want_shard` moves
//! the connection to that shard before answering, and requests pipelined
//! behind the HELLO are served there, none lost in the move.

use tagcached_protocol::request::Command;
use tagcached_protocol::response::Outcome;
use tagcached_protocol::{Opcode, Request};
use tagcached_tests::{get_cmd, hello_cmd, keys_on_shard, set_cmd, within, TestServer};

const SHARDS: u16 = 4;

#[tokio::test]
async fn hello_want_shard_reports_that_shard_for_every_shard() {
    within(async {
        let server = TestServer::with_config(|config| config.threads = SHARDS as usize);
        for round in 0..3 {
            for shard in 0..SHARDS {
                let mut conn = server.connect().await;
                let info = conn.hello(Some(shard)).await;
                assert_eq!(
                    (info.shard, info.shard_count),
                    (shard, SHARDS),
                    "round {round}"
                );
                conn.ping().await;
            }
        }
        // "Any shard" leaves the connection where it is, and asking again
        // for the current shard keeps it there.
        let mut conn = server.connect().await;
        let here = conn.hello(None).await.shard;
        assert!(here < SHARDS);
        assert_eq!(conn.hello(Some(here)).await.shard, here);
        assert_eq!(conn.hello(None).await.shard, here);
        // One connection moved from shard to shard, one HELLO at a time.
        for shard in [3, 0, 2, 2, 1, 3] {
            assert_eq!(conn.hello(Some(shard)).await.shard, shard);
            conn.store(format!("moving-{shard}"), "v", &[]).await;
        }
    })
    .await;
}

/// HELLO, then SETs, GETs and PINGs for keys of every shard, all in the
/// same write: the worker that accepted the connection hands the unread
/// bytes over with the socket, and every request is answered in order.
#[tokio::test]
async fn requests_pipelined_behind_hello_are_answered_after_the_move() {
    within(async {
        let server = TestServer::with_config(|config| config.threads = SHARDS as usize);
        for shard in 0..SHARDS {
            let mut conn = server.connect().await;
            let keys: Vec<String> = (0..SHARDS)
                .flat_map(|owner| keys_on_shard(&format!("behind-{shard}"), owner, SHARDS, 10))
                .collect();
            let mut requests = vec![Request::new(0, hello_cmd(Some(shard)))];
            for (i, key) in keys.iter().enumerate() {
                let opaque = 1 + 3 * i as u32;
                requests.push(Request::new(
                    opaque,
                    Command::Set(set_cmd(key, key, &["h"])),
                ));
                requests.push(Request::new(opaque + 1, get_cmd(key)));
                requests.push(Request::new(opaque + 2, Command::Ping));
            }
            conn.send_batch(&requests).await;

            let hello = conn.recv().await;
            assert_eq!(hello.opaque, 0);
            let Outcome::Hello(info) = hello.outcome else {
                panic!("HELLO answered {:?}", hello.outcome);
            };
            assert_eq!(info.shard, shard);
            for (i, key) in keys.iter().enumerate() {
                let opaque = 1 + 3 * i as u32;
                let stored = conn.recv().await;
                assert_eq!(stored.opaque, opaque);
                assert!(
                    matches!(stored.outcome, Outcome::Stored { .. }),
                    "{stored:?}"
                );
                let got = conn.recv().await;
                assert_eq!(got.opaque, opaque + 1);
                match got.outcome {
                    Outcome::Hit(hit) => assert_eq!(hit.value, key.as_bytes()),
                    other => panic!("GET {key} answered {other:?}"),
                }
                let ping = conn.recv().await;
                assert_eq!((ping.opaque, ping.outcome), (opaque + 2, Outcome::Ok));
            }
        }
    })
    .await;
}

/// Several HELLOs in one write: each move carries the rest of the pipeline,
/// including the next HELLO, to the next shard.
#[tokio::test]
async fn a_chain_of_hellos_in_one_write_moves_the_connection_each_time() {
    within(async {
        let server = TestServer::with_config(|config| config.threads = SHARDS as usize);
        let mut conn = server.connect().await;
        let route = [2u16, 0, 3, 1, 1, 2];
        let mut requests = Vec::new();
        for (step, &shard) in route.iter().enumerate() {
            let base = 100 * step as u32;
            requests.push(Request::new(base, hello_cmd(Some(shard))));
            let key = format!("chain-{step}");
            requests.push(Request::new(
                base + 1,
                Command::Set(set_cmd(&key, &key, &[])),
            ));
            requests.push(Request::new(base + 2, get_cmd(&key)));
        }
        requests.push(Request::new(9999, Command::Noop));
        conn.send_batch(&requests).await;
        for (step, &shard) in route.iter().enumerate() {
            let base = 100 * step as u32;
            let hello = conn.recv().await;
            assert_eq!((hello.opaque, hello.opcode), (base, Opcode::HELLO));
            match hello.outcome {
                Outcome::Hello(info) => assert_eq!(info.shard, shard, "step {step}"),
                other => panic!("HELLO answered {other:?}"),
            }
            assert!(matches!(conn.recv().await.outcome, Outcome::Stored { .. }));
            let got = conn.recv().await;
            assert_eq!(got.opaque, base + 2);
            assert!(matches!(got.outcome, Outcome::Hit(_)), "{got:?}");
        }
        assert_eq!(conn.recv().await.opaque, 9999);
        // The connection was counted once throughout.
        assert_eq!(conn.stats().await.num("curr_connections"), 1);
    })
    .await;
}
