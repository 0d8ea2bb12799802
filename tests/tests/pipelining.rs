//! Pipelining, ordering and quiet requests (protocol.md §5).

use tagcached_protocol::request::{Command, FlushAll, Set, SetMode};
use tagcached_protocol::response::Outcome;
use tagcached_protocol::{ErrorCode, Flags, Opcode, Request, Response};
use tagcached_tests::{
    assert_error, delete_cmd, get_cmd, get_many_cmd, invalidate_cmd, keys_on_shard, request,
    set_cmd, touch_cmd, within, TestServer,
};

/// What a pipelined request should get back.
#[derive(Debug)]
enum Expect {
    Stored,
    Hit(Vec<u8>),
    Miss,
    Ok,
    NotFound,
    /// INVALIDATE_TAGS or FLUSH_ALL: OK with a sequence.
    Sequence,
    /// GETM of this many keys: one frame each.
    Many(usize),
}

fn check(expect: &Expect, response: &Response, index: usize) {
    match (expect, &response.outcome) {
        (Expect::Stored, Outcome::Stored { .. })
        | (Expect::Miss, Outcome::Miss(_))
        | (Expect::Ok, Outcome::Ok)
        | (Expect::NotFound, Outcome::NotFound)
        | (Expect::Sequence, Outcome::Sequence(_)) => {}
        (Expect::Hit(value), Outcome::Hit(hit)) => assert_eq!(&hit.value[..], &value[..]),
        (expect, outcome) => panic!("request {index}: expected {expect:?}, got {outcome:?}"),
    }
}

/// Over a thousand requests in one write, keys spread over every shard so
/// most take a hop, with values large enough that the responses pass the
/// server's write high-water mark many times: every response arrives, in
/// order, echoing its own opaque.
#[tokio::test]
async fn a_long_pipeline_is_answered_in_order_with_opaques_echoed() {
    within(async {
        let server = TestServer::with_config(|config| config.threads = 3);
        let shards = server.shard_count();
        let keys: Vec<String> = (0..shards)
            .flat_map(|shard| keys_on_shard("pipe", shard, shards, 20))
            .collect();
        let mut conn = server.connect().await;
        let mut requests = Vec::new();
        let mut expects = Vec::new();
        let value = |i: usize| format!("{i:04}").repeat(256).into_bytes();
        let mut opaque = 7u32;
        let mut push = |command: Command, expect: Expect| {
            // Opaques are arbitrary and not sequential: the echo must be the
            // request's own, not a counter.
            opaque = opaque.wrapping_mul(2_654_435_761).wrapping_add(12_345);
            requests.push(Request::new(opaque, command));
            expects.push(expect);
        };
        for round in 0..20 {
            for (k, key) in keys.iter().enumerate() {
                match (round + k) % 5 {
                    0 => push(
                        Command::Set(set_cmd(key, value(round), &["p"])),
                        Expect::Stored,
                    ),
                    1 => push(get_cmd(format!("{key}-absent")), Expect::Miss),
                    2 => push(Command::Ping, Expect::Ok),
                    3 => push(delete_cmd(format!("{key}-absent")), Expect::NotFound),
                    _ => push(Command::Noop, Expect::Ok),
                }
                if (round + k) % 5 == 0 {
                    push(get_cmd(key), Expect::Hit(value(round)));
                }
            }
            if round % 5 == 0 {
                let many: Vec<&String> = keys.iter().take(6).collect();
                push(get_many_cmd(&many), Expect::Many(many.len()));
            }
        }
        assert!(requests.len() > 1000, "{} requests", requests.len());
        conn.send_batch(&requests).await;

        for (index, (request, expect)) in requests.iter().zip(&expects).enumerate() {
            let frames = match expect {
                Expect::Many(count) => *count,
                _ => 1,
            };
            for key_index in 0..frames {
                let response = conn.recv().await;
                assert_eq!(response.opaque, request.opaque, "request {index}");
                assert_eq!(response.opcode, request.command.opcode(), "request {index}");
                if let Expect::Many(_) = expect {
                    let index_in = match &response.outcome {
                        Outcome::Hit(hit) => hit.key_index,
                        Outcome::Miss(miss) => miss.key_index,
                        other => panic!("GETM answered {other:?}"),
                    };
                    assert_eq!(index_in, Some(key_index as u16));
                } else {
                    check(expect, &response, index);
                }
            }
        }
        conn.ping().await;
    })
    .await;
}

/// Quiet successes send nothing; the NOOP that ends the batch is the first
/// frame back, and by then every quiet request has run.
#[tokio::test]
async fn quiet_successes_send_nothing_and_a_noop_ends_the_batch() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        let keys: Vec<String> = (0..2).flat_map(|s| keys_on_shard("q", s, 2, 10)).collect();
        conn.store("to-delete", "v", &[]).await;
        conn.store("to-touch", "v", &[]).await;
        conn.store("doomed", "v", &["quiet-tag"]).await;

        let quiet = Flags::QUIET;
        let mut batch = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            batch.push(request(
                i as u32,
                quiet,
                Command::Set(set_cmd(key, key, &[])),
            ));
        }
        batch.push(request(100, quiet, delete_cmd("to-delete")));
        batch.push(request(101, quiet, delete_cmd("never-there")));
        batch.push(request(102, quiet, get_cmd("never-there")));
        batch.push(request(103, quiet, get_many_cmd(&["nope-1", "nope-2"])));
        batch.push(request(104, quiet, touch_cmd("to-touch", 100)));
        batch.push(request(105, quiet, invalidate_cmd(&["quiet-tag"])));
        batch.push(Request::new(106, Command::Noop));
        conn.send_batch(&batch).await;
        let response = conn.recv().await;
        assert_eq!(
            (response.opaque, response.opcode, response.outcome),
            (106, Opcode::NOOP, Outcome::Ok),
            "only the NOOP answers"
        );

        // Everything ran.
        for key in &keys {
            assert_eq!(conn.value(key).await.as_deref(), Some(key.as_bytes()));
        }
        conn.get_miss("to-delete").await;
        conn.get_miss("doomed").await;
        assert_eq!(conn.value("to-touch").await.as_deref(), Some(&b"v"[..]));

        // FLUSH_ALL QUIET sends nothing either.
        conn.send_batch(&[
            request(200, quiet, Command::FlushAll(FlushAll::HARD)),
            Request::new(201, Command::Noop),
        ])
        .await;
        assert_eq!(conn.recv().await.opaque, 201);
        conn.get_miss(&keys[0]).await;
    })
    .await;
}

/// A quiet request that does not succeed is answered as usual, in its
/// place in the pipeline; quiet hits are answered too.
#[tokio::test]
async fn quiet_failures_and_hits_still_answer_in_order() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        let cas = conn.store("present", "v", &["t"]).await;
        let fence = conn.get_hit("present").await.fence;
        conn.invalidate(&["fenced-tag"]).await;
        conn.store("present", "v", &["t"]).await;

        let quiet = Flags::QUIET;
        let with = |mode: SetMode, key: &str| {
            Command::Set(Set {
                mode,
                ..set_cmd(key, "x", &[])
            })
        };
        let fenced = Command::Set(Set {
            fence: Some(fence),
            ..set_cmd("fenced", "x", &["fenced-tag"])
        });
        let bad_tag = Command::Set(set_cmd("bad", "x", &["has space"]));
        let batch = [
            request(1, quiet, with(SetMode::Add, "present")),
            request(2, quiet, with(SetMode::Set, "fine")),
            request(3, quiet, with(SetMode::Replace, "absent")),
            request(4, quiet, with(SetMode::Cas(cas), "present")),
            request(5, quiet, with(SetMode::Cas(1), "absent")),
            request(6, quiet, touch_cmd("absent", 5)),
            request(7, quiet, fenced),
            request(8, quiet, bad_tag),
            request(9, quiet, get_cmd("present")),
            request(10, quiet, get_cmd("absent")),
            request(11, quiet, get_many_cmd(&["absent", "fine"])),
            Request::new(12, Command::Noop),
        ];
        conn.send_batch(&batch).await;
        let mut answered = Vec::new();
        loop {
            let response = conn.recv().await;
            let opaque = response.opaque;
            match (opaque, &response.outcome) {
                (1 | 3, Outcome::NotStored)
                | (4, Outcome::Exists)
                | (5 | 6, Outcome::NotFound)
                | (7, Outcome::Fenced)
                | (12, Outcome::Ok) => {}
                (8, outcome) => assert_error(outcome, ErrorCode::TagInvalid),
                (9, Outcome::Hit(hit)) => assert_eq!(hit.value, "v"),
                (11, Outcome::Hit(hit)) => assert_eq!(hit.key_index, Some(1)),
                (opaque, outcome) => panic!("request {opaque} answered {outcome:?}"),
            }
            answered.push(opaque);
            if opaque == 12 {
                break;
            }
        }
        assert_eq!(answered, [1, 3, 4, 5, 6, 7, 8, 9, 11, 12]);
        conn.get_miss("fenced").await;
        assert_eq!(conn.value("fine").await.as_deref(), Some(&b"x"[..]));
    })
    .await;
}

/// With answers far larger than the connection's memory budget, a pipeline
/// runs over many rounds (each large read waits until the socket has taken
/// what came before), yet every answer is in request order and reflects
/// exactly the requests before it on the connection: a SET before a GET of
/// its key, an INVALIDATE_TAGS before the reads it covers, on both shards.
#[tokio::test]
async fn answers_beyond_the_connection_budget_keep_order_and_effects() {
    const BUDGET: usize = 64 * 1024;
    const BIG: usize = 100 * 1024;
    within(async {
        let server = TestServer::with_config(|config| config.connection_memory = BUDGET);
        let big: Vec<Vec<u8>> = (0..2u8).map(|shard| vec![b'a' + shard; BIG]).collect();
        let big_key = |shard: u16| keys_on_shard("big", shard, 2, 1).remove(0);
        let small_key = |shard: u16| keys_on_shard("small", shard, 2, 1).remove(0);
        let mut setup = server.connect().await;
        for shard in 0..2u16 {
            setup
                .store(big_key(shard), &big[usize::from(shard)], &[])
                .await;
            setup.store(small_key(shard), "old", &["t"]).await;
        }
        // Pinned to shard 0, so the shard-1 keys all hop.
        let mut conn = server.connect_to_shard(0).await;
        let (b0, b1, s0, s1) = (big_key(0), big_key(1), small_key(0), small_key(1));
        let pipeline = [
            (get_cmd(&b1), Expect::Hit(big[1].clone())),
            (get_cmd(&b0), Expect::Hit(big[0].clone())),
            (Command::Set(set_cmd(&s1, "new", &["t"])), Expect::Stored),
            (get_cmd(&s1), Expect::Hit(b"new".to_vec())),
            (get_cmd(&b1), Expect::Hit(big[1].clone())),
            (invalidate_cmd(&["t"]), Expect::Sequence),
            (get_cmd(&s1), Expect::Miss),
            (get_cmd(&s0), Expect::Miss),
            (Command::Set(set_cmd(&s0, "newer", &["t"])), Expect::Stored),
            (get_many_cmd(&[&b1, &s0, &b0, &s1]), Expect::Many(4)),
            (Command::Noop, Expect::Ok),
        ];
        let requests: Vec<Request> = pipeline
            .iter()
            .enumerate()
            .map(|(i, (command, _))| Request::new(i as u32, command.clone()))
            .collect();
        conn.send_batch(&requests).await;
        for (index, (request, (_, expect))) in requests.iter().zip(&pipeline).enumerate() {
            if let Expect::Many(count) = expect {
                let expected: [Option<&[u8]>; 4] =
                    [Some(&big[1]), Some(b"newer"), Some(&big[0]), None];
                for (key_index, want) in expected.iter().enumerate().take(*count) {
                    let response = conn.recv().await;
                    assert_eq!(response.opaque, request.opaque);
                    match (&response.outcome, want) {
                        (Outcome::Hit(hit), Some(value)) => {
                            assert_eq!(hit.key_index, Some(key_index as u16));
                            assert_eq!(&hit.value[..], *value);
                        }
                        (Outcome::Miss(miss), None) => {
                            assert_eq!(miss.key_index, Some(key_index as u16));
                        }
                        (outcome, want) => {
                            panic!("GETM key {key_index}: {outcome:?}, wanted {want:?}")
                        }
                    }
                }
                continue;
            }
            let response = conn.recv().await;
            assert_eq!(response.opaque, request.opaque, "request {index}");
            check(expect, &response, index);
        }
        conn.ping().await;
    })
    .await;
}
