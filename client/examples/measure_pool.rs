//! Which connection strategy serves a web server better, and what
//! shard-aware routing gains: GET throughput and latency under 200
//! concurrent tasks.
//!
//! ```text
//! cargo run --release -p tagcached-client --example measure_pool [TASKS] [REQUESTS_PER_TASK] [RUNS]
//! ```
//!
//! Strategies, each against the same server (in-process with 2 threads,
//! unless `TAGCACHED_SERVER` names one; the keys there carry a prefix unique
//! to the run, and are invalidated at the end):
//! - *multiplexed*: a [`Client`] with a pool of N connections per lane
//!   (N = 1, 2, 4), every task's requests pipelined on them, with and
//!   without shard-aware lanes;
//! - *exclusive*: a checkout pool of plain connections, one request at a
//!   time on each: one connection per in-flight request (as many as tasks),
//!   and a smaller pool that tasks queue for. Each does its own write and
//!   read inline, with no background tasks, as an exclusive-use client
//!   would.
//!
//! Each task GETs random keys of a preloaded set, one request at a time,
//! like handlers each awaiting their cache read. The figures are medians
//! over the runs. On a small machine the client shares the cores with the
//! server, so compare ratios, not absolute numbers.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tagcached_client::{Client, SetOptions};
use tagcached_protocol::request::{Get, Hello};
use tagcached_protocol::{ClientCodec, Command, Outcome, Request, PROTOCOL_VERSION};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_util::codec::Decoder;

const KEYS: usize = 10_000;
const VALUE_LEN: usize = 100;

fn main() {
    let mut args = std::env::args().skip(1).map(|arg| arg.parse::<usize>());
    let tasks = args.next().and_then(Result::ok).unwrap_or(200);
    let per_task = args.next().and_then(Result::ok).unwrap_or(1000);
    let runs = args.next().and_then(Result::ok).unwrap_or(3).max(1);
    // A web server's runtime: multi-threaded, one worker per core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let servers = common::servers(1);
    runtime.block_on(measure(&servers, tasks, per_task, runs));
}

/// A way of sending GETs.
#[derive(Clone)]
enum Strategy {
    Multiplexed(Client),
    Exclusive(Arc<ExclusivePool>),
}

impl Strategy {
    async fn get(&self, key: &Bytes) -> bool {
        match self {
            Strategy::Multiplexed(client) => client.get(key).await.expect("get").is_some(),
            Strategy::Exclusive(pool) => pool.get(key).await,
        }
    }
}

struct Sample {
    ops_per_second: f64,
    p50: Duration,
    p99: Duration,
}

async fn measure(servers: &common::Servers, tasks: usize, per_task: usize, runs: usize) {
    let addr = servers.addrs[0].clone();
    let keys: Arc<Vec<Bytes>> = Arc::new(
        (0..KEYS)
            .map(|n| Bytes::from(servers.name(format_args!("key:{n}"))))
            .collect(),
    );
    let loader = Client::new(addr.clone());
    let value = Bytes::from(vec![b'x'; VALUE_LEN]);
    let tag = servers.name("measure");
    let options = SetOptions::new().tag(&tag);
    for outcome in loader
        .set_many(keys.iter().map(|key| (key, value.clone(), &options)))
        .await
    {
        assert!(outcome.expect("preload").is_stored());
    }

    println!(
        "{tasks} tasks x {per_task} GETs of {VALUE_LEN}-byte values, median of {runs} runs, server {addr}"
    );
    println!(
        "{:<48} {:>10} {:>9} {:>9}",
        "strategy", "ops/s", "p50 us", "p99 us"
    );
    let mut strategies: Vec<(String, Strategy)> = Vec::new();
    for shard_aware in [false, true] {
        for pool_size in [1, 2, 4] {
            let client = Client::builder()
                .server(addr.clone())
                .pool_size(pool_size)
                .shard_aware(shard_aware)
                .build()
                .expect("client");
            let lanes = if shard_aware {
                "per shard"
            } else {
                "per server"
            };
            strategies.push((
                format!("multiplexed, {pool_size} conn {lanes}"),
                Strategy::Multiplexed(client),
            ));
        }
    }
    for connections in [tasks, 32] {
        let pool = ExclusivePool::connect(&addr, connections).await;
        let label = if connections == tasks {
            format!("exclusive, {connections} conns (1 per in-flight)")
        } else {
            format!("exclusive, {connections} conns (tasks queue)")
        };
        strategies.push((label, Strategy::Exclusive(Arc::new(pool))));
    }

    // Warm up (open every lane's connections), then interleave the runs of
    // all strategies, so that drift in the machine's load spreads evenly.
    for (_, strategy) in &strategies {
        run(strategy, &keys, tasks, 20).await;
    }
    let mut samples: Vec<Vec<Sample>> = strategies.iter().map(|_| Vec::new()).collect();
    for _ in 0..runs {
        for ((_, strategy), samples) in strategies.iter().zip(&mut samples) {
            samples.push(run(strategy, &keys, tasks, per_task).await);
        }
    }
    let mut results = Vec::new();
    for ((label, _), mut samples) in strategies.iter().zip(samples) {
        samples.sort_by(|a, b| a.ops_per_second.total_cmp(&b.ops_per_second));
        let median = samples.swap_remove(samples.len() / 2);
        println!(
            "{label:<48} {:>10.0} {:>9} {:>9}",
            median.ops_per_second,
            median.p50.as_micros(),
            median.p99.as_micros()
        );
        results.push((label.clone(), median));
    }

    let throughput = |label: &str| {
        results
            .iter()
            .find(|(name, _)| name == label)
            .map(|(_, sample)| sample.ops_per_second)
            .unwrap_or(f64::NAN)
    };
    let exclusive = throughput(&format!("exclusive, {tasks} conns (1 per in-flight)"));
    println!();
    for (label, sample) in &results {
        println!(
            "{label:<48} {:>5.2}x exclusive-per-request",
            sample.ops_per_second / exclusive
        );
    }
    println!(
        "shard-aware gain at equal connection count (2): {:.2}x (1 per shard vs 2 per server)",
        throughput("multiplexed, 1 conn per shard") / throughput("multiplexed, 2 conn per server")
    );
    println!(
        "shard-aware gain at equal pool size: {:.2}x (1), {:.2}x (2), {:.2}x (4)",
        throughput("multiplexed, 1 conn per shard") / throughput("multiplexed, 1 conn per server"),
        throughput("multiplexed, 2 conn per shard") / throughput("multiplexed, 2 conn per server"),
        throughput("multiplexed, 4 conn per shard") / throughput("multiplexed, 4 conn per server"),
    );
    // Leave nothing live behind on a server this run may share.
    loader
        .invalidate_tags([&tag])
        .await
        .expect("invalidate the preloaded keys");
}

/// `tasks` tasks, each sending `per_task` GETs one after another.
async fn run(strategy: &Strategy, keys: &Arc<Vec<Bytes>>, tasks: usize, per_task: usize) -> Sample {
    let started = Instant::now();
    let workers: Vec<_> = (0..tasks)
        .map(|task| {
            let strategy = strategy.clone();
            let keys = Arc::clone(keys);
            tokio::spawn(async move {
                let mut random = XorShift(0x9e37_79b9_7f4a_7c15 ^ (task as u64 + 1));
                let mut latencies = Vec::with_capacity(per_task);
                for _ in 0..per_task {
                    let key = &keys[(random.next() % keys.len() as u64) as usize];
                    let sent = Instant::now();
                    assert!(strategy.get(key).await, "preloaded keys hit");
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(tasks * per_task);
    for worker in workers {
        latencies.extend(worker.await.expect("worker"));
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    Sample {
        ops_per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(0.50),
        p99: percentile(0.99),
    }
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A checkout pool of connections used by one request at a time.
struct ExclusivePool {
    free: Mutex<Vec<ExclusiveConnection>>,
    available: Semaphore,
}

impl ExclusivePool {
    async fn connect(addr: &str, connections: usize) -> ExclusivePool {
        let mut free = Vec::with_capacity(connections);
        for _ in 0..connections {
            free.push(ExclusiveConnection::connect(addr).await);
        }
        ExclusivePool {
            free: Mutex::new(free),
            available: Semaphore::new(connections),
        }
    }

    async fn get(&self, key: &Bytes) -> bool {
        let _permit = self.available.acquire().await.expect("open semaphore");
        let mut connection = self.free.lock().unwrap().pop().expect("a free connection");
        let hit = connection.get(key).await;
        self.free.lock().unwrap().push(connection);
        hit
    }
}

/// One connection, written and read inline by whoever holds it.
struct ExclusiveConnection {
    stream: TcpStream,
    codec: ClientCodec,
    read: BytesMut,
    write: BytesMut,
}

impl ExclusiveConnection {
    async fn connect(addr: &str) -> ExclusiveConnection {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let mut connection = ExclusiveConnection {
            stream,
            codec: ClientCodec::default(),
            read: BytesMut::with_capacity(16 * 1024),
            write: BytesMut::with_capacity(1024),
        };
        let hello = Command::Hello(Hello {
            max_version: PROTOCOL_VERSION,
            want_shard: None,
            client_name: Bytes::from_static(b"measure_pool"),
        });
        let answer = connection.round_trip(Request::new(1, hello)).await;
        assert!(matches!(answer, Outcome::Hello(_)), "{answer:?}");
        connection
    }

    async fn get(&mut self, key: &Bytes) -> bool {
        let request = Request::new(
            2,
            Command::Get(Get {
                key: key.clone(),
                request_tags: None,
            }),
        );
        matches!(self.round_trip(request).await, Outcome::Hit(_))
    }

    async fn round_trip(&mut self, request: Request) -> Outcome {
        self.write.clear();
        request.encode(&mut self.write);
        self.stream.write_all(&self.write).await.expect("write");
        loop {
            if let Some(response) = self.codec.decode(&mut self.read).expect("a frame") {
                assert_eq!(response.opaque, request.opaque);
                return response.outcome;
            }
            let read = self.stream.read_buf(&mut self.read).await.expect("read");
            assert!(read > 0, "server closed");
        }
    }
}
