//! A client that pipelines requests and never reads the answers cannot make
//! the daemon hold unbounded memory: the daemon holds a bounded amount per
//! such connection (it stops reading from a connection whose answers are
//! not drained), keeps serving every other connection meanwhile, and once
//! the client reads, answers every request in order and intact.
//!
//! Three attacks, each from [`ATTACKERS`] connections that send everything
//! and then do not read: GETs pipelined on a connection pinned to shard 0
//! for a key of shard 1 (every answer crosses shards), the same for a key
//! of the connection's own shard, and one GETM asking for one large value
//! [`GETM_KEYS`] times. These run the real `tagcached` process because the
//! figure that matters is the memory the kernel counts for it (VmRSS), not
//! what an allocator or the daemon's own counters report.

use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tagcached_protocol::response::Outcome;
use tagcached_protocol::{ClientCodec, Opcode, Request, Response};
use tagcached_tests::daemon::built_binary;
use tagcached_tests::{get_cmd, get_many_cmd, keys_on_shard, within, Daemon, RawConn};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::task::JoinHandle;
use tokio_util::codec::FramedRead;

const MIB: u64 = 1024 * 1024;

/// Shards (worker threads) of the daemon under attack: two, so a key can
/// be owned by another shard than its connection's.
const SHARDS: u16 = 2;
/// Its `--memory`: far more than the two stored values, so nothing is
/// evicted and every GET the attackers send is a hit.
const MEMORY: &str = "256MiB";
/// The value every attack asks for: large, so a few hundred answers are
/// hundreds of MiB, yet half the default 1 MiB value limit.
const VALUE_LEN: usize = 512 * 1024;
/// Attacking connections per attack: more than one, so what is shown is a
/// bound per connection, not a cap the first attacker alone reaches.
const ATTACKERS: usize = 2;
/// GETs each pipelining attacker sends: about 8 KiB of requests whose
/// answers are 256 × 512 KiB = 128 MiB, eight times the bound.
const GETS_PER_ATTACKER: usize = 256;
/// Keys in the GETM attack: the protocol's most (`max_keys_per_getm`), one
/// request of about 15 KiB whose answer is 512 MiB if built at once.
const GETM_KEYS: usize = 1024;
/// The most the daemon's VmRSS may grow per attacking connection. A bounded
/// server holds, per connection, a read buffer, the answers built but not
/// yet written, and the requests in flight to another shard: a few values'
/// worth. 16 MiB is 32 values, room for any sane bound, and still an
/// eighth of what the smallest attack makes an unbounded server hold.
const GROWTH_BOUND_PER_ATTACKER: u64 = 16 * MIB;
/// How long the VmRSS is sampled while the attackers do not read, and how
/// often. An unbounded server reaches hundreds of MiB within a second.
const SAMPLE_FOR: Duration = Duration::from_secs(2);
const SAMPLE_EVERY: Duration = Duration::from_millis(50);
/// The bound on each request of a connection that is not attacking, while
/// the attackers do not read.
const SERVE_TIMEOUT: Duration = Duration::from_secs(5);
/// The bound on the attackers reading every answer once they start: up to
/// 1 GiB over loopback into a debug build.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// The tests run one at a time: each drives a debug-built daemon and up to
/// 1 GiB of answers, and side by side on a 2-core machine they would starve
/// each other into their timeouts.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_cross_shard_gets_holds_bounded_memory() {
    attack("cross-shard GETs", |stored, _| {
        pipelined_gets(0, &stored[1])
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_same_shard_gets_holds_bounded_memory() {
    attack("same-shard GETs", |stored, _| pipelined_gets(0, &stored[0])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_one_huge_getm_holds_bounded_memory() {
    // Attackers alternate between the two keys, so whichever shard an
    // unpinned connection lands on, one GETM is local and one crosses.
    attack("a 1024-key GETM", |stored, attacker| {
        get_many(&stored[attacker % stored.len()])
    })
    .await;
}

/// A value stored before the attack, under a key of a known shard.
#[derive(Clone)]
struct Stored {
    key: String,
    value: Bytes,
}

/// What one attacking connection sends, and the answers it must get back.
struct Plan {
    /// The shard its HELLO asks for, or `None` for no HELLO.
    want_shard: Option<u16>,
    requests: Vec<Request>,
    answers: Vec<Expected>,
}

/// One answer frame an attacker must read: a hit of `value`.
struct Expected {
    opaque: u32,
    opcode: Opcode,
    key_index: Option<u16>,
    value: Bytes,
}

/// [`GETS_PER_ATTACKER`] GETs of `target` on a connection pinned to
/// `shard`.
fn pipelined_gets(shard: u16, target: &Stored) -> Plan {
    let opaques = 1..=GETS_PER_ATTACKER as u32;
    Plan {
        want_shard: Some(shard),
        requests: opaques
            .clone()
            .map(|opaque| Request::new(opaque, get_cmd(&target.key)))
            .collect(),
        answers: opaques
            .map(|opaque| Expected {
                opaque,
                opcode: Opcode::GET,
                key_index: None,
                value: target.value.clone(),
            })
            .collect(),
    }
}

/// One GETM of [`GETM_KEYS`] copies of `target`'s key, unpinned.
fn get_many(target: &Stored) -> Plan {
    const OPAQUE: u32 = 1;
    Plan {
        want_shard: None,
        requests: vec![Request::new(
            OPAQUE,
            get_many_cmd(&vec![&target.key; GETM_KEYS]),
        )],
        answers: (0..GETM_KEYS as u16)
            .map(|index| Expected {
                opaque: OPAQUE,
                opcode: Opcode::GETM,
                key_index: Some(index),
                value: target.value.clone(),
            })
            .collect(),
    }
}

/// Starts a daemon, stores one value on each shard, opens [`ATTACKERS`]
/// connections that send `plan`'s requests and do not read, and checks:
/// the daemon's VmRSS stays within the bound while they do not read, other
/// connections are served meanwhile, and the attackers then read every
/// answer, correct and in order.
async fn attack(name: &str, plan: impl Fn(&[Stored], usize) -> Plan) {
    let _one_at_a_time = SERIAL.lock().await;
    built_binary().await;
    within(async {
        let threads = SHARDS.to_string();
        let daemon = Daemon::start(&["--threads", &threads, "--memory", MEMORY]).await;
        let stored = store_one_value_per_shard(&daemon).await;

        let baseline = daemon.vm_rss_bytes();
        let mut attackers = Vec::with_capacity(ATTACKERS);
        for index in 0..ATTACKERS {
            attackers.push(Attacker::launch(&daemon, index, plan(&stored, index)).await);
        }
        // The bystanders run beside the sampling, and their verdict is
        // taken after the memory's, so a daemon too busy buffering to serve
        // them still fails on the figure this file is about.
        let bystanders = tokio::spawn(serve_bystanders(daemon.addr(), stored.clone()));
        let rss = sample_rss(&daemon, baseline).await;
        let growth = rss.peak.saturating_sub(baseline);
        let bound = GROWTH_BOUND_PER_ATTACKER * ATTACKERS as u64;
        eprintln!(
            "{name}: VmRSS baseline {}, peak {} over {} samples, last {}: \
             growth {} ({} per attacking connection; bound {} per connection)",
            mib(baseline),
            mib(rss.peak),
            rss.samples,
            mib(rss.last),
            mib(growth),
            mib(growth / ATTACKERS as u64),
            mib(GROWTH_BOUND_PER_ATTACKER),
        );
        assert!(
            growth <= bound,
            "{name}: {ATTACKERS} connections that do not read grew the daemon's \
             VmRSS by {} (from {} to {}), more than {} ({} per connection)",
            mib(growth),
            mib(baseline),
            mib(rss.peak),
            mib(bound),
            mib(GROWTH_BOUND_PER_ATTACKER),
        );
        let slowest = bystanders
            .await
            .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()));
        eprintln!("{name}: bystanders served, slowest request {slowest:?}");

        let started = Instant::now();
        let drains: Vec<_> = attackers
            .into_iter()
            .map(|attacker| tokio::spawn(attacker.read_every_answer()))
            .collect();
        let answered = tokio::time::timeout(DRAIN_TIMEOUT, async {
            let mut bytes = 0;
            for drain in drains {
                bytes += drain
                    .await
                    .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()));
            }
            bytes
        })
        .await
        .unwrap_or_else(|_| {
            panic!("{name}: the attackers did not read every answer within {DRAIN_TIMEOUT:?}")
        });
        eprintln!(
            "{name}: the attackers read {} of answers, every one correct, in {:?}",
            mib(answered),
            started.elapsed()
        );
    })
    .await;
}

/// Stores a [`VALUE_LEN`] value under a key of each shard (index = shard),
/// each a different pattern, and reads it back.
async fn store_one_value_per_shard(daemon: &Daemon) -> Vec<Stored> {
    let mut conn = daemon.connect().await;
    assert_eq!(conn.hello(None).await.shard_count, SHARDS);
    let mut stored = Vec::new();
    for shard in 0..SHARDS {
        let key = keys_on_shard("large", shard, SHARDS, 1).remove(0);
        let value = Bytes::from(pattern(VALUE_LEN, shard as u32));
        conn.store(&key, &value, &["large"]).await;
        let hit = conn.get_hit(&key).await;
        assert_same_value(&hit.value, &value, format_args!("GET {key} after SET"));
        stored.push(Stored { key, value });
    }
    stored
}

/// `len` bytes from a multiplicative hash of each offset and `seed`: no
/// short period, so a shifted, truncated or swapped value does not match.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| {
            (i.wrapping_add(seed.wrapping_mul(0x0100_0193))
                .wrapping_mul(0x9E37_79B1)
                >> 24) as u8
        })
        .collect()
}

/// A connection that has sent its requests and reads nothing until
/// [`Attacker::read_every_answer`].
struct Attacker {
    index: usize,
    answers: FramedRead<OwnedReadHalf, ClientCodec>,
    /// Writes the requests and hands the write half back. It may block
    /// while nothing reads, once the server stops reading a connection
    /// whose answers are not drained. The write half is kept open because
    /// closing it would tell the server the client is gone.
    writer: JoinHandle<std::io::Result<OwnedWriteHalf>>,
    expected: Vec<Expected>,
}

impl Attacker {
    /// Connects, sends HELLO and reads its answer if the plan pins a shard,
    /// then starts writing every request, all from one buffer.
    async fn launch(daemon: &Daemon, index: usize, plan: Plan) -> Attacker {
        let conn: RawConn = match plan.want_shard {
            Some(shard) => daemon.connect_to_shard(shard).await,
            None => daemon.connect().await,
        };
        let mut bytes = BytesMut::new();
        for request in &plan.requests {
            request.encode(&mut bytes);
        }
        let (read, mut write) = conn.into_stream().into_split();
        let writer = tokio::spawn(async move {
            write.write_all(&bytes).await?;
            Ok(write)
        });
        Attacker {
            index,
            answers: FramedRead::new(read, ClientCodec::default()),
            writer,
            expected: plan.answers,
        }
    }

    /// Reads every answer, checking each in order; returns the bytes of
    /// values read. The caller bounds the time.
    async fn read_every_answer(mut self) -> u64 {
        let mut bytes = 0;
        for (n, want) in self.expected.iter().enumerate() {
            let got = match self.answers.next().await {
                Some(Ok(response)) => response,
                Some(Err(error)) => panic!("attacker {}, answer {n}: {error}", self.index),
                None => panic!(
                    "attacker {}: the server closed after {n} of {} answers",
                    self.index,
                    self.expected.len()
                ),
            };
            check_answer(
                &got,
                want,
                format_args!("attacker {}, answer {n}", self.index),
            );
            bytes += want.value.len() as u64;
        }
        let write = self
            .writer
            .await
            .expect("the writer task")
            .expect("every request written");
        drop(write);
        bytes
    }
}

fn check_answer(got: &Response, want: &Expected, what: impl Display) {
    assert_eq!(
        (got.opaque, got.opcode),
        (want.opaque, want.opcode),
        "{what}: answers out of order"
    );
    let Outcome::Hit(hit) = &got.outcome else {
        panic!("{what}: {:?}, not a hit", got.outcome);
    };
    assert_eq!(hit.key_index, want.key_index, "{what}: key_index");
    assert_same_value(&hit.value, &want.value, what);
}

/// Compares two large values without printing them.
fn assert_same_value(got: &[u8], want: &[u8], what: impl Display) {
    if got != want {
        let first_difference = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: a value of {} bytes where {} were stored; first differing byte: {first_difference:?}",
            got.len(),
            want.len()
        );
    }
}

/// The peak and last of the daemon's VmRSS samples.
struct RssSamples {
    peak: u64,
    last: u64,
    samples: usize,
}

/// Samples the daemon's VmRSS every [`SAMPLE_EVERY`] for [`SAMPLE_FOR`].
async fn sample_rss(daemon: &Daemon, baseline: u64) -> RssSamples {
    let mut rss = RssSamples {
        peak: baseline,
        last: baseline,
        samples: 0,
    };
    let mut interval = tokio::time::interval(SAMPLE_EVERY);
    let count = SAMPLE_FOR.as_millis() / SAMPLE_EVERY.as_millis();
    for _ in 0..count {
        interval.tick().await;
        rss.last = daemon.vm_rss_bytes();
        rss.peak = rss.peak.max(rss.last);
        rss.samples += 1;
    }
    rss
}

/// Connections that are not attacking, one unpinned and one pinned to each
/// shard, each SET and GET a key of every shard, INVALIDATE_TAGS and STATS,
/// every request answered correctly within [`SERVE_TIMEOUT`]. Returns the
/// slowest request's time.
async fn serve_bystanders(addr: SocketAddr, stored: Vec<Stored>) -> Duration {
    let mut slowest = Duration::ZERO;
    let pins = std::iter::once(None).chain((0..SHARDS).map(Some));
    for (bystander, want_shard) in pins.enumerate() {
        let who = match want_shard {
            Some(shard) => format!("the bystander pinned to shard {shard}"),
            None => "the unpinned bystander".to_owned(),
        };
        let mut conn = timed(&mut slowest, &who, "connect", RawConn::connect(addr))
            .await
            .expect("connect");
        if let Some(shard) = want_shard {
            let hello = timed(&mut slowest, &who, "HELLO", conn.hello(Some(shard))).await;
            assert_eq!(hello.shard, shard, "{who}: HELLO moved the connection");
        }
        let tag = format!("bystander-{bystander}");
        let mut keys = Vec::new();
        for shard in 0..SHARDS {
            let key = keys_on_shard(&tag, shard, SHARDS, 1).remove(0);
            let value = format!("{key} from {who}");
            timed(&mut slowest, &who, "SET", conn.store(&key, &value, &[&tag])).await;
            let got = timed(&mut slowest, &who, "GET", conn.value(&key)).await;
            assert_eq!(got.as_deref(), Some(value.as_bytes()), "{who}: GET {key}");
            keys.push(key);
        }
        // The attackers' own key still reads, from a connection that does.
        let large = &stored[bystander % stored.len()];
        let hit = timed(&mut slowest, &who, "GET", conn.get_hit(&large.key)).await;
        assert_same_value(
            &hit.value,
            &large.value,
            format_args!("{who}: GET {}", large.key),
        );

        timed(
            &mut slowest,
            &who,
            "INVALIDATE_TAGS",
            conn.invalidate(&[&tag]),
        )
        .await;
        for key in &keys {
            let got = timed(&mut slowest, &who, "GET", conn.value(key)).await;
            assert_eq!(got, None, "{who}: GET {key} after INVALIDATE_TAGS");
        }
        let stats = timed(&mut slowest, &who, "STATS", conn.stats()).await;
        assert_eq!(stats.num("threads"), u64::from(SHARDS), "{who}: STATS");
        assert!(
            stats.num("curr_connections") > ATTACKERS as u64,
            "{who}: STATS counts the attackers and this connection: {}",
            stats.num("curr_connections")
        );
    }
    slowest
}

/// Runs one bystander request within [`SERVE_TIMEOUT`], keeping the
/// slowest time.
async fn timed<T>(
    slowest: &mut Duration,
    who: &str,
    what: &str,
    request: impl Future<Output = T>,
) -> T {
    let started = Instant::now();
    let result = tokio::time::timeout(SERVE_TIMEOUT, request)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{who}: {what} not answered within {SERVE_TIMEOUT:?} while attackers do not read"
            )
        });
    *slowest = (*slowest).max(started.elapsed());
    result
}

/// Bytes as MiB, for messages.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}
