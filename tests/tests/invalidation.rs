//! The invalidation guarantee across threads (protocol.md §8.2): once the
//! OK to an INVALIDATE_TAGS has arrived, every GET the server receives
//! afterwards, on any connection and any shard, misses every entry stored
//! before it under one of its tags; with soft invalidations (§8.3) mixed
//! in, for every read that does not ask for stale data, and for hard ones
//! for every read.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tagcached_protocol::request::{Command, Set};
use tagcached_protocol::response::Outcome;
use tagcached_protocol::{Flags, Request};
use tagcached_tests::{get_cmd, get_scoped_cmd, set_cmd, within, Deadline, RawConn, TestServer};

const THREADS: usize = 4;
const CONNECTIONS: usize = 16;
const KEYS: usize = 200;

/// Sixteen connections: twelve moved to each of the four shards in turn by
/// HELLO, four left where the kernel put them.
async fn connections(server: &TestServer) -> Vec<RawConn> {
    let mut conns = Vec::with_capacity(CONNECTIONS);
    for i in 0..CONNECTIONS {
        let mut conn = server.connect().await;
        if i < 12 {
            let shard = (i % THREADS) as u16;
            assert_eq!(conn.hello(Some(shard)).await.shard, shard);
        } else {
            conn.hello(None).await;
        }
        conns.push(conn);
    }
    conns
}

/// Tags of key `i`: every other key carries `shared`, every third `other`,
/// the rest none.
fn tags_of(i: usize) -> Vec<&'static str> {
    let mut tags = Vec::new();
    if i % 2 == 0 {
        tags.push("shared");
    }
    if i % 3 == 0 {
        tags.push("other");
    }
    tags
}

/// GETs every key in one pipeline; returns which hit (with the right value).
async fn hits(conn: &mut RawConn, keys: &[String]) -> Vec<bool> {
    let requests: Vec<Request> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| Request::new(i as u32, get_cmd(key)))
        .collect();
    conn.send_batch(&requests).await;
    let mut hits = Vec::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        let response = conn.recv().await;
        assert_eq!(response.opaque, i as u32);
        hits.push(match response.outcome {
            Outcome::Hit(hit) => {
                assert_eq!(hit.value, format!("value-of-{key}"));
                true
            }
            Outcome::Miss(_) => false,
            other => panic!("GET answered {other:?}"),
        });
    }
    hits
}

/// SETs every key to `round`, tagged `hot`, in one pipeline.
async fn write_round(writer: &mut RawConn, keys: &[String], round: u64) {
    let requests: Vec<Request> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let set = set_cmd(key, round.to_string(), &["hot"]);
            Request::new(i as u32, Command::Set(set))
        })
        .collect();
    writer.send_batch(&requests).await;
    for _ in &requests {
        let response = writer.recv().await;
        assert!(matches!(response.outcome, Outcome::Stored { .. }));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_ack_every_connection_on_every_shard_misses_the_tagged_entries() {
    within(async {
        let server = TestServer::with_config(|config| config.threads = THREADS);
        let mut conns = connections(&server).await;
        let keys: Vec<String> = (0..KEYS).map(|i| format!("inv-{i}")).collect();

        // Stored through many connections, so through every shard's path.
        for (i, key) in keys.iter().enumerate() {
            let conn = &mut conns[i % CONNECTIONS];
            conn.store(key, format!("value-of-{key}"), &tags_of(i))
                .await;
        }
        for conn in &mut conns {
            assert!(hits(conn, &keys).await.iter().all(|&hit| hit));
        }

        conns[5].invalidate(&["shared"]).await;
        // Right after the ack, from every connection: no lag on any shard.
        for conn in &mut conns {
            let hits = hits(conn, &keys).await;
            for (i, hit) in hits.into_iter().enumerate() {
                assert_eq!(hit, i % 2 != 0, "key {i} with tags {:?}", tags_of(i));
            }
        }

        // Entries stored after the invalidation are served as usual, whether
        // new keys or the invalidated ones stored again.
        let later: Vec<String> = (0..KEYS / 4).map(|i| format!("inv-later-{i}")).collect();
        for (i, key) in later.iter().chain(keys.iter().step_by(2)).enumerate() {
            let conn = &mut conns[(i * 7) % CONNECTIONS];
            conn.store(key, format!("value-of-{key}"), &["shared"])
                .await;
        }
        for conn in &mut conns {
            assert!(hits(conn, &later).await.iter().all(|&hit| hit));
            assert!(hits(conn, &keys).await.iter().all(|&hit| hit));
        }
    })
    .await;
}

/// Readers hammer GETs on their own connections while a writer invalidates
/// and rewrites, round after round. Before each GET a reader notes the last
/// round whose invalidation had been acknowledged; the GET must not return
/// a value written before that round's invalidation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_that_start_after_the_ack_never_see_the_old_value() {
    within(rounds(Mix::HardOnly, 20, seed())).await;
}

/// The same with soft invalidations mixed in (protocol.md §8.3), some of a
/// tag the entries carry and some of a request-scoped tag (§8.5) that some
/// reads name, and readers asking for stale data and leases at random. A
/// read without ALLOW_STALE treats soft as hard. One with it may get a
/// STALE value from before a soft invalidation, but never one from before
/// a hard invalidation acknowledged before the read was sent, nor from
/// before a soft one whose window had ended by then; and a HIT is fresh,
/// so never from before any acknowledged invalidation. Readers granted a
/// lease compute the value as a cache-aside client does, from the origin
/// the writer updates before each invalidation, and SET it with the lease
/// and its fence: the fence keeps what they store within the guarantee.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_soft_invalidations_mixed_in_no_read_sees_a_value_its_flags_forbid() {
    within(rounds(Mix::SoftMixedIn, 100, seed())).await;
}

/// The seed of the random choices: `TAGCACHED_TEST_SEED`, or the clock.
/// Failures print it; it replays the choices, not how the threads
/// interleave.
fn seed() -> u64 {
    std::env::var("TAGCACHED_TEST_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(tagcached_tests::unix_ms)
}

/// A small seeded generator (splitmix64): the test needs a few random
/// choices per operation and reproducibility from a seed, nothing more.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (x ^ (x >> 31)) % bound
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mix {
    /// Hard invalidations of the carried tag, plain reads: the v1 guarantee.
    HardOnly,
    /// Hard and soft invalidations of a carried or a request-scoped tag;
    /// reads with random flags and request tags; lease holders refresh.
    SoftMixedIn,
}

/// The tag every entry carries.
const CARRIED: &str = "hot";
/// The tag some reads name as request-scoped, and no entry carries.
const SCOPED: &str = "scope";

/// What readers know of the invalidations acknowledged so far: for each tag,
/// the last round whose invalidation of it (of any kind) was acknowledged,
/// the last whose hard one was, and the soft windows with when they were
/// acknowledged.
#[derive(Default)]
struct Acked {
    /// Indexed by [`tag_index`]: any kind.
    any: [AtomicU64; 2],
    /// Indexed by [`tag_index`]: hard (or soft with expire 0).
    hard: [AtomicU64; 2],
    /// (tag index, round, acknowledged at, window) of soft invalidations.
    windows: Mutex<Vec<(usize, u64, Instant, Duration)>>,
}

fn tag_index(tag: &str) -> usize {
    usize::from(tag == SCOPED)
}

/// The rounds a read must not see values from before: (fresh floor,
/// stale floor) over the tags it counts (`scoped`: both).
fn floors(acked: &Acked, scoped: bool, now: Instant) -> (u64, u64) {
    let tags: &[usize] = if scoped { &[0, 1] } else { &[0] };
    let any = tags
        .iter()
        .map(|&tag| acked.any[tag].load(Ordering::Acquire))
        .max()
        .unwrap_or(0);
    let hard = tags
        .iter()
        .map(|&tag| acked.hard[tag].load(Ordering::Acquire))
        .max()
        .unwrap_or(0);
    // A window ends at most its length after the OK (the server numbers
    // the invalidation before answering), give or take its clock's
    // millisecond.
    let ended = acked
        .windows
        .lock()
        .expect("windows")
        .iter()
        .filter(|(tag, _, at, window)| {
            tags.contains(tag) && *at + *window + Duration::from_millis(2) < now
        })
        .map(|(_, round, _, _)| *round)
        .max()
        .unwrap_or(0);
    (any, hard.max(ended))
}

fn round_of(value: &[u8]) -> u64 {
    std::str::from_utf8(value)
        .expect("utf-8")
        .parse()
        .expect("a round number")
}

/// `rounds` rounds of: the writer updates the origin, invalidates (as `mix`
/// draws), notes the ack, and rewrites the keys (with soft invalidations
/// mixed in, about half of them); readers check every answer against what
/// was acknowledged before they sent the read.
async fn rounds(mix: Mix, rounds: u64, seed: u64) {
    const READERS: usize = 8;
    // A bound, not a target: readers stop once the writer is done.
    const MAX_READS_PER_READER: usize = 20_000;
    let server = TestServer::with_config(|config| config.threads = THREADS);
    let keys: Arc<Vec<String>> = Arc::new((0..16).map(|i| format!("hot-{i}")).collect());
    let mut writer = server.connect().await;
    write_round(&mut writer, &keys, 0).await;

    let acked = Arc::new(Acked::default());
    // What a cache-aside client computes a value from: the round the data
    // is at, moved before the invalidation is sent.
    let origin = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for reader in 0..READERS {
        let mut conn = server.connect().await;
        if reader % 2 == 0 {
            conn.hello(Some((reader / 2 % THREADS) as u16)).await;
        }
        let keys = keys.clone();
        let acked = acked.clone();
        let origin = origin.clone();
        let done = done.clone();
        let started = started.clone();
        let mut rng = Rng(seed ^ (reader as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
        readers.push(tokio::spawn(async move {
            let mut checked_after_an_ack = 0;
            for read in 0..MAX_READS_PER_READER {
                if read == 1 {
                    started.fetch_add(1, Ordering::AcqRel);
                }
                if done.load(Ordering::Acquire) {
                    break;
                }
                let key = &keys[(read * 5 + reader) % keys.len()];
                let (flags, scoped) = match mix {
                    Mix::HardOnly => (Flags::NONE, false),
                    Mix::SoftMixedIn => {
                        let flags = [Flags::ALLOW_STALE, Flags::LEASE][..]
                            .iter()
                            .filter(|_| rng.below(2) == 0)
                            .fold(Flags::NONE, |all, &flag| all | flag);
                        (flags, rng.below(2) == 0)
                    }
                };
                // Taken before the GET is sent: the read starts after the
                // acks counted here.
                let (fresh_floor, stale_floor) = floors(&acked, scoped, Instant::now());
                let command = if scoped {
                    get_scoped_cmd(key, &[SCOPED])
                } else {
                    get_cmd(key)
                };
                let context = || {
                    format!(
                        "seed {seed}, {key} read with {flags:?}{}",
                        if scoped { " and the scoped tag" } else { "" }
                    )
                };
                let lease = match conn.run_with(flags, command).await {
                    Outcome::Hit(hit) => {
                        let round = round_of(&hit.value);
                        assert!(
                            round >= fresh_floor,
                            "{}: HIT of round {round} after round {fresh_floor}'s invalidation was acked",
                            context()
                        );
                        hit.lease.token().map(|token| (token, hit.fence))
                    }
                    Outcome::Stale(hit) => {
                        assert!(flags.contains(Flags::ALLOW_STALE), "{}: STALE", context());
                        let round = round_of(&hit.value);
                        assert!(
                            round >= stale_floor,
                            "{}: STALE of round {round} after round {stale_floor}'s hard \
                             invalidation was acked (or its soft window ended)",
                            context()
                        );
                        hit.lease.token().map(|token| (token, hit.fence))
                    }
                    Outcome::Miss(miss) => miss.lease.token().map(|token| (token, miss.fence)),
                    Outcome::HotMiss(_) if flags.contains(Flags::LEASE) => None,
                    other => panic!("{}: {other:?}", context()),
                };
                if let Some((token, fence)) = lease {
                    // The refresh, as cache-aside computes it: from the
                    // origin as it is after the read.
                    let value = origin.load(Ordering::Acquire).to_string();
                    let set = Set {
                        lease: Some(token),
                        fence: Some(fence),
                        ..set_cmd(key, value, &[CARRIED])
                    };
                    match conn.run(Command::Set(set)).await {
                        Outcome::Stored { .. } | Outcome::Fenced | Outcome::LeaseLost => {}
                        other => panic!("{}: the lease SET got {other:?}", context()),
                    }
                }
                if fresh_floor > 0 {
                    checked_after_an_ack += 1;
                }
            }
            checked_after_an_ack
        }));
    }

    // Every reader is reading before the first invalidation.
    let deadline = Deadline::new("the readers to start", Duration::from_secs(5));
    while started.load(Ordering::Acquire) < READERS {
        deadline.tick().await;
    }
    let mut rng = Rng(seed);
    for round in 1..=rounds {
        origin.store(round, Ordering::Release);
        let (tag, expire) = match mix {
            Mix::HardOnly => (CARRIED, None),
            Mix::SoftMixedIn => {
                let tag = if rng.below(3) == 0 { SCOPED } else { CARRIED };
                // Hard, soft with expire 0 (hard too), or a window of 1 s.
                (
                    tag,
                    [None, Some(0), Some(1), Some(1)][rng.below(4) as usize],
                )
            }
        };
        match expire {
            None => {
                writer.invalidate(&[tag]).await;
            }
            Some(expire) => {
                writer.invalidate_soft(&[tag], expire).await;
            }
        }
        let at = Instant::now();
        let index = tag_index(tag);
        if let Some(window @ 1..) = expire {
            let window = Duration::from_secs(u64::from(window));
            let mut windows = acked.windows.lock().expect("windows");
            windows.push((index, round, at, window));
        } else {
            acked.hard[index].store(round, Ordering::Release);
        }
        acked.any[index].store(round, Ordering::Release);
        match mix {
            Mix::HardOnly => write_round(&mut writer, &keys, round).await,
            Mix::SoftMixedIn => {
                // About half the keys, so that older values live on
                // through several invalidations, hard after soft and soft
                // after hard.
                let some: Vec<String> =
                    keys.iter().filter(|_| rng.below(2) == 0).cloned().collect();
                write_round(&mut writer, &some, round).await;
            }
        }
        tokio::task::yield_now().await;
    }
    done.store(true, Ordering::Release);
    let mut checked = 0;
    for reader in readers {
        checked += reader.await.expect("reader");
    }
    assert!(checked > 0, "reads ran between the invalidations");
}

/// A connection's requests run in the order sent (protocol.md §5), so a SET
/// pipelined before an INVALIDATE_TAGS of its tag stored before it: once
/// the INVALIDATE is acknowledged the entry must miss, also when the key's
/// shard is not the connection's and the SET travels there by message.
///
/// Regression: the owning shard stamped a forwarded SET with the sequence
/// as of when it got to the SET, by which time the connection had already
/// numbered the invalidation behind it; the entry outlived its invalidation.
#[tokio::test]
async fn a_set_pipelined_before_an_invalidation_is_invalidated_by_it() {
    within(async {
        let server = TestServer::with_config(|config| config.threads = 2);
        let mut conn = server.connect_to_shard(0).await;
        let keys = [
            tagcached_tests::keys_on_shard("before", 1, 2, 100),
            tagcached_tests::keys_on_shard("before", 0, 2, 100),
        ]
        .concat();
        let mut stale = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let tag = format!("tag-{i}");
            let batch = [
                Request::new(1, Command::Set(set_cmd(key, "stale", &[&tag]))),
                Request::new(2, tagcached_tests::invalidate_cmd(&[&tag])),
                Request::new(3, get_cmd(key)),
            ];
            conn.send_batch(&batch).await;
            assert!(matches!(conn.recv().await.outcome, Outcome::Stored { .. }));
            assert!(matches!(conn.recv().await.outcome, Outcome::Sequence(_)));
            if let Outcome::Hit(_) = conn.recv().await.outcome {
                stale.push(key.clone());
            }
            if conn.value(key).await.is_some() {
                stale.push(key.clone());
            }
        }
        assert!(
            stale.is_empty(),
            "served after their invalidation: {stale:?}"
        );
    })
    .await;
}

/// Issue 8, item 1: a SET stamped before invalidations that its shard has
/// applied and then forgotten (its tag table full of tags nothing carries)
/// was stored at the raised floor and read back as invalidated: STORED, then
/// a MISS, with no invalidation of its own tag anywhere. The stale stamp is
/// made here without racing threads: the SET waits, planned and stamped,
/// behind large answers its client does not read (the connection's memory
/// budget holds it back), while another connection invalidates enough
/// unused tags to make the shard forget them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_stamped_before_forgotten_invalidations_stays_readable() {
    const BIG: usize = 1 << 20;
    const GETS: usize = 64;
    within(async {
        let server = TestServer::with_config(|config| {
            config.threads = 1;
            config.memory = 256 << 20;
            config.connection_memory = 64 << 10;
        });
        let mut other = server.connect().await;
        other.store("big", vec![7u8; BIG], &[]).await;

        // 64 MiB of answers, far more than the socket buffers take, then the
        // SET and a GET of it; nothing is read yet.
        let mut requests: Vec<Request> = (0..GETS)
            .map(|i| Request::new(i as u32, get_cmd("big")))
            .collect();
        requests.push(Request::new(
            1000,
            Command::Set(set_cmd("k", "v", &["fresh-tag"])),
        ));
        requests.push(Request::new(1001, get_cmd("k")));
        let mut stalled = server.connect().await;
        stalled.send_batch(&requests).await;

        // The server stops once the socket is full, with the SET not yet run.
        let deadline = Deadline::new("the stalled connection to stop", Duration::from_secs(10));
        let mut hits = other.stats().await.num("get_hits");
        loop {
            deadline.tick().await;
            deadline.tick().await;
            let now = other.stats().await.num("get_hits");
            if now == hits {
                break;
            }
            hits = now;
        }
        assert_eq!(other.stats().await.num("cmd_set"), 1, "the SET waits");

        // Far more invalidated tags than the shard keeps: it forgets the
        // oldest, raising its floor above the waiting SET's stamp.
        for batch in 0..100 {
            let tags: Vec<String> = (0..1000).map(|i| format!("unused-{batch}-{i}")).collect();
            let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
            other.invalidate(&tags).await;
        }
        let tracked = other.stats().await.num("tags_tracked");
        assert!(
            tracked < 100_000,
            "the shard forgot some tags ({tracked} kept)"
        );

        for i in 0..GETS {
            let response = stalled.recv().await;
            assert_eq!(response.opaque, i as u32);
            assert!(
                matches!(response.outcome, Outcome::Hit(_)),
                "{:?}",
                response.outcome
            );
        }
        let stored = stalled.recv().await;
        assert!(
            matches!(stored.outcome, Outcome::Stored { .. }),
            "{:?}",
            stored.outcome
        );
        let read = stalled.recv().await;
        match read.outcome {
            Outcome::Hit(hit) => assert_eq!(hit.value, "v"),
            outcome => panic!("the SET answered STORED, then its key read {outcome:?}"),
        }
        assert_eq!(other.value("k").await.as_deref(), Some(&b"v"[..]));
    })
    .await;
}
