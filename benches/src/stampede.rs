//! The stampede workload (`--stampede hard|soft`): what an invalidation of
//! a hot key costs the origin, and what readers wait, with hard
//! invalidations versus soft ones with refresh leases (protocol.md §8.3,
//! §8.4).
//!
//! # Model
//!
//! `--connections` readers each do cache-aside, one read at a time, on
//! `--keys` hot keys drawn by `--distribution`; key `i` carries tag
//! `t(i mod --tag-space)`. A simulated origin computes a value in
//! `--origin-latency` (a sleep, like a database query) and counts its
//! computations. An invalidator invalidates one tag (drawn uniformly from
//! the tags some key carries) `--invalidate-rate` times a second. Every key
//! is stored once before measuring.
//!
//! - `hard`: the invalidator's INVALIDATE_TAGS are hard. A reader GETs; on
//!   MISS it computes and SETs with the miss's fence, as the Rust client's
//!   `get_or_set_with` does without leases: every reader that misses
//!   computes (the stampede), and waits for it.
//! - `soft`: invalidations are soft with a window of `--soft-window`
//!   seconds. A reader GETs with ALLOW_STALE and LEASE: a STALE value is
//!   served at once, and if it came with the lease, the value is
//!   recomputed and SET with the token in the background (another
//!   connection); a MISS comes with the lease, and the reader computes and
//!   SETs before it has a value; on HOT_MISS it waits `--hot-miss-wait`
//!   (doubling, up to 8 times that) and reads again.
//!
//! Readers read back to back (closed loop), or with `--rate` (reads a
//! second over all readers) each on a fixed schedule. A read's latency runs
//! from its start to when the reader has a value: a hit, a stale value, or
//! its own computation. It does not count how late the read started, which
//! `--rate` reports apart as the start lag: the generator's timer has a
//! millisecond's resolution, and charging it to every read would hide the
//! server's latency under it. A reader busy computing starts its next reads
//! late, which shows there too. Recomputations per invalidation are the computations
//! started while measuring over the invalidations sent meanwhile; with
//! `--keys` equal to `--tag-space`, one per invalidation is the least a
//! cache can do, and the refresh of a soft invalidation costs exactly that
//! unless the tag is invalidated again during a refresh (its SET is then
//! FENCED and the next reader refreshes again) or a window ends.
//!
//! # Threads
//!
//! As in the main workload: `--threads` generator threads, each a
//! single-threaded runtime owning readers `i` with `i % threads` its index
//! (the invalidator runs on thread 0), meeting at a barrier after connecting
//! and merging their counts at the end.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use hdrhistogram::Histogram;
use serde::Serialize;
use tagcached_protocol::request::{Get, InvalidateTags, Set, SetMode};
use tagcached_protocol::response::{Features, HelloInfo};
use tagcached_protocol::{ClientFrameCodec, Command, Flags, Outcome, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::LocalSet;
use tokio_util::codec::Decoder;

use crate::config::{Config, Protocol};
use crate::connection::{open, ConnectionError};
use crate::dataset::Dataset;
use crate::recorder::new_histogram;
use crate::report::Latency;
use crate::rng::Rng;
use crate::runner::{join_all, resolve};
use crate::stream::BenchStream;
use crate::zipf::Sampler;

/// How many times a reader meeting HOT_MISS doubles its wait.
const HOT_MISS_DOUBLINGS: u32 = 3;
/// The most SETs in flight while storing every key before measuring.
const PREFILL_PIPELINE: usize = 64;

/// How invalidated keys are refreshed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Refresh {
    /// Hard invalidations; every reader that misses recomputes.
    Hard,
    /// Soft invalidations; stale values served, one lease holder recomputes.
    Soft,
}

/// The stampede workload's own settings; the rest comes from [`Config`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stampede {
    /// Hard or soft.
    pub refresh: Refresh,
    /// How long to measure (`--duration`).
    pub duration: Duration,
    /// How long the origin takes to compute a value.
    pub origin_latency: Duration,
    /// Soft: the window of each invalidation, seconds.
    pub soft_window: u32,
    /// Soft: the first wait after a HOT_MISS.
    pub hot_miss_wait: Duration,
}

/// Why a stampede run failed.
#[derive(Debug, thiserror::Error)]
pub enum StampedeError {
    /// `--server` did not resolve, or a thread could not start.
    #[error(transparent)]
    Run(#[from] crate::runner::RunError),
    /// Connecting or saying HELLO failed.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// The server lacks soft invalidation or leases.
    #[error(
        "the server does not report stale-while-revalidate and leases (HELLO feature bits 2 and 3)"
    )]
    Unsupported,
    /// A read or write failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The server did not answer in time.
    #[error("no answer from the server in {0:?}")]
    Timeout(Duration),
    /// The server closed a connection.
    #[error("the server closed a connection")]
    Closed,
    /// An answer the workload cannot use.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    /// A generator thread panicked.
    #[error("a generator thread panicked")]
    Panicked,
}

/// One tagcached connection, one request at a time. Answers are decoded
/// with their request's flags: a lookup sent with LEASE has a `lease`
/// field.
struct Conn {
    stream: BenchStream,
    frames: ClientFrameCodec,
    read: BytesMut,
    write: BytesMut,
    next_opaque: u32,
    timeout: Duration,
}

/// A tagcached connection, over TLS and with a token if `config` says so.
async fn connect(
    addr: SocketAddr,
    config: &Config,
) -> Result<(BenchStream, Option<HelloInfo>), ConnectionError> {
    let token = config.auth_token.as_ref();
    let tls = config.tls.as_ref();
    open(addr, tls, Protocol::Tagcached, None, token, config.timeout).await
}

impl Conn {
    async fn open(addr: SocketAddr, config: &Config) -> Result<(Conn, Features), StampedeError> {
        let (stream, hello) = connect(addr, config).await?;
        let features = hello.map(|info| info.features).unwrap_or_default();
        let conn = Conn {
            stream,
            frames: ClientFrameCodec::default(),
            read: BytesMut::with_capacity(4096),
            write: BytesMut::with_capacity(4096),
            next_opaque: 1,
            timeout: config.timeout,
        };
        Ok((conn, features))
    }

    /// Sends `requests` in one write and reads their answers, in order.
    async fn call_many(&mut self, requests: &[Request]) -> Result<Vec<Outcome>, StampedeError> {
        self.write.clear();
        for request in requests {
            request.encode(&mut self.write);
        }
        let exchange = async {
            self.stream.write_all(&self.write).await?;
            self.stream.flush().await?;
            let mut outcomes = Vec::with_capacity(requests.len());
            while outcomes.len() < requests.len() {
                let request = &requests[outcomes.len()];
                if let Some(frame) = self
                    .frames
                    .decode(&mut self.read)
                    .map_err(|error| StampedeError::Unexpected(error.to_string()))?
                {
                    let response = frame
                        .decode(request.flags)
                        .map_err(|error| StampedeError::Unexpected(error.to_string()))?;
                    if response.opaque != request.opaque {
                        return Err(StampedeError::Unexpected(format!(
                            "opaque {} where {} was due",
                            response.opaque, request.opaque
                        )));
                    }
                    outcomes.push(response.outcome);
                } else if self.stream.read_buf(&mut self.read).await? == 0 {
                    return Err(StampedeError::Closed);
                }
            }
            Ok(outcomes)
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| StampedeError::Timeout(self.timeout))?
    }

    async fn call(&mut self, flags: Flags, command: Command) -> Result<Outcome, StampedeError> {
        let opaque = self.next_opaque;
        self.next_opaque = self.next_opaque.wrapping_add(1);
        let request = Request {
            opaque,
            flags,
            command,
        };
        let mut outcomes = self.call_many(std::slice::from_ref(&request)).await?;
        Ok(outcomes.pop().expect("one answer per request"))
    }
}

/// What one thread counted while measuring.
#[derive(Debug)]
struct Counts {
    latency: Histogram<u64>,
    /// `--rate`: how late reads started after they were due.
    lag: Histogram<u64>,
    reads: u64,
    hits: u64,
    stale: u64,
    misses: u64,
    hot_misses: u64,
    recomputations: u64,
    invalidations: u64,
    stored: u64,
    fenced: u64,
    lease_lost: u64,
}

impl Default for Counts {
    fn default() -> Counts {
        Counts {
            latency: new_histogram(),
            lag: new_histogram(),
            reads: 0,
            hits: 0,
            stale: 0,
            misses: 0,
            hot_misses: 0,
            recomputations: 0,
            invalidations: 0,
            stored: 0,
            fenced: 0,
            lease_lost: 0,
        }
    }
}

impl Counts {
    fn merge(&mut self, other: &Counts) {
        self.latency
            .add(&other.latency)
            .expect("histograms of the same bounds");
        self.lag
            .add(&other.lag)
            .expect("histograms of the same bounds");
        self.reads += other.reads;
        self.hits += other.hits;
        self.stale += other.stale;
        self.misses += other.misses;
        self.hot_misses += other.hot_misses;
        self.recomputations += other.recomputations;
        self.invalidations += other.invalidations;
        self.stored += other.stored;
        self.fenced += other.fenced;
        self.lease_lost += other.lease_lost;
    }
}

/// What every thread shares.
struct Shared {
    config: Config,
    stampede: Stampede,
    addr: SocketAddr,
    data: Dataset,
    /// Tags that some key carries: `min(--tag-space, --keys)`.
    tags: u32,
    connected: Barrier,
    start: OnceLock<Instant>,
    go: Barrier,
}

/// One thread's state, shared by its tasks on its single-threaded runtime.
struct Thread {
    shared: Arc<Shared>,
    data: Dataset,
    start: Instant,
    end: Instant,
    counts: RefCell<Counts>,
    /// Idle connections for background refreshes.
    spare: RefCell<Vec<Conn>>,
    /// Background refreshes running.
    refreshing: Cell<usize>,
    /// The first error of a background refresh.
    failed: RefCell<Option<StampedeError>>,
}

impl Thread {
    fn measuring(&self, at: Instant) -> bool {
        at >= self.start && at < self.end
    }

    /// The origin: takes `--origin-latency`, and counts the computations
    /// that start while measuring.
    async fn compute(&self) {
        if self.measuring(Instant::now()) {
            self.counts.borrow_mut().recomputations += 1;
        }
        tokio::time::sleep(self.shared.stampede.origin_latency).await;
    }

    /// A SET of `key`'s value, fenced, with a lease or not.
    fn set_command(&self, key: u32, fence: u64, lease: Option<u64>) -> Command {
        value_set(&self.shared.config, &self.data, key, Some(fence), lease)
    }

    fn count_set(&self, outcome: &Outcome) -> Result<(), StampedeError> {
        let mut counts = self.counts.borrow_mut();
        match outcome {
            Outcome::Stored { .. } => counts.stored += 1,
            Outcome::Fenced => counts.fenced += 1,
            Outcome::LeaseLost => counts.lease_lost += 1,
            other => return Err(StampedeError::Unexpected(format!("SET: {other:?}"))),
        }
        Ok(())
    }

    fn count_answer(&self, outcome: &Outcome) {
        let mut counts = self.counts.borrow_mut();
        match outcome {
            Outcome::Hit(_) => counts.hits += 1,
            Outcome::Stale(_) => counts.stale += 1,
            Outcome::Miss(_) => counts.misses += 1,
            Outcome::HotMiss(_) => counts.hot_misses += 1,
            _ => {}
        }
    }
}

/// A SET of `key`'s value, tagged `t(key mod --tag-space)`.
fn value_set(
    config: &Config,
    data: &Dataset,
    key: u32,
    fence: Option<u64>,
    lease: Option<u64>,
) -> Command {
    Command::Set(Set {
        mode: SetMode::Set,
        client_flags: 0,
        ttl: config.ttl,
        fence,
        lease,
        stale_after: None,
        key: data.key_bytes(key),
        tags: vec![data.tag_bytes(key % config.tag_space)],
        value: data.value_bytes(config.value_size.max),
    })
}

/// One cache-aside read of `key`, as `--stampede` says; returns once the
/// reader has a value.
async fn read(thread: &Rc<Thread>, conn: &mut Conn, key: u32) -> Result<(), StampedeError> {
    let get = || {
        Command::Get(Get {
            key: thread.data.key_bytes(key),
            request_tags: None,
        })
    };
    match thread.shared.stampede.refresh {
        Refresh::Hard => {
            let outcome = conn.call(Flags::NONE, get()).await?;
            thread.count_answer(&outcome);
            match outcome {
                Outcome::Hit(_) => Ok(()),
                Outcome::Miss(miss) => {
                    thread.compute().await;
                    let outcome = conn
                        .call(Flags::NONE, thread.set_command(key, miss.fence, None))
                        .await?;
                    thread.count_set(&outcome)
                }
                other => Err(StampedeError::Unexpected(format!("GET: {other:?}"))),
            }
        }
        Refresh::Soft => {
            let flags = Flags::ALLOW_STALE | Flags::LEASE;
            let base = thread.shared.stampede.hot_miss_wait;
            let mut wait = base;
            let waiting_since = Instant::now();
            loop {
                let outcome = conn.call(flags, get()).await?;
                thread.count_answer(&outcome);
                match outcome {
                    Outcome::Hit(_) => return Ok(()),
                    Outcome::Stale(hit) => {
                        if let Some(token) = hit.lease.token() {
                            refresh_in_background(thread, key, token, hit.fence);
                        }
                        return Ok(());
                    }
                    Outcome::Miss(miss) => {
                        let token = miss.lease.token().ok_or_else(|| {
                            StampedeError::Unexpected("a MISS with LEASE and no lease".into())
                        })?;
                        thread.compute().await;
                        let set = thread.set_command(key, miss.fence, Some(token));
                        let outcome = conn.call(Flags::NONE, set).await?;
                        return thread.count_set(&outcome);
                    }
                    Outcome::HotMiss(_) => {
                        if waiting_since.elapsed() > thread.shared.config.timeout {
                            return Err(StampedeError::Unexpected(format!(
                                "HOT_MISS for longer than {:?}",
                                thread.shared.config.timeout
                            )));
                        }
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(base * 2u32.pow(HOT_MISS_DOUBLINGS));
                    }
                    other => return Err(StampedeError::Unexpected(format!("GET: {other:?}"))),
                }
            }
        }
    }
}

/// The lease holder's refresh of a stale key, off the reader's path: on a
/// spare connection, computed, then SET with the lease token and the fence
/// of the answer that granted it.
fn refresh_in_background(thread: &Rc<Thread>, key: u32, token: u64, fence: u64) {
    let thread = thread.clone();
    thread.refreshing.set(thread.refreshing.get() + 1);
    tokio::task::spawn_local(async move {
        let result = async {
            let spare = thread.spare.borrow_mut().pop();
            let mut conn = match spare {
                Some(conn) => conn,
                None => {
                    let shared = &thread.shared;
                    Conn::open(shared.addr, &shared.config).await?.0
                }
            };
            thread.compute().await;
            let outcome = conn
                .call(Flags::NONE, thread.set_command(key, fence, Some(token)))
                .await?;
            thread.count_set(&outcome)?;
            thread.spare.borrow_mut().push(conn);
            Ok::<(), StampedeError>(())
        }
        .await;
        if let Err(error) = result {
            thread.failed.borrow_mut().get_or_insert(error);
        }
        thread.refreshing.set(thread.refreshing.get() - 1);
    });
}

/// Reader `index`: reads until the end of measuring, closed loop or on its
/// schedule, and records each read's latency.
async fn reader(thread: Rc<Thread>, index: usize, mut conn: Conn) -> Result<(), StampedeError> {
    let config = &thread.shared.config;
    let mut rng = Rng::derive(config.seed, index as u64);
    let sampler = Sampler::new(config.distribution, u64::from(config.keys));
    let period = config
        .rate
        .map(|rate| Duration::from_secs_f64(config.connections as f64 / rate));
    // Readers spread their schedules over one period.
    let mut due = thread.start
        + period.map_or(Duration::ZERO, |period| {
            period.mul_f64(index as f64 / config.connections as f64)
        });
    loop {
        let lag = match period {
            Some(period) => {
                tokio::time::sleep_until(due.into()).await;
                let lag = due.elapsed();
                due += period;
                Some(lag)
            }
            None => None,
        };
        let began = Instant::now();
        if began >= thread.end {
            return Ok(());
        }
        let key = sampler.sample(&mut rng) as u32;
        read(&thread, &mut conn, key).await?;
        let latency = began.elapsed().as_nanos() as u64;
        let mut counts = thread.counts.borrow_mut();
        counts.reads += 1;
        counts.latency.saturating_record(latency.max(1));
        if let Some(lag) = lag {
            counts.lag.saturating_record((lag.as_nanos() as u64).max(1));
        }
    }
}

/// Invalidates one tag every `1 / --invalidate-rate` seconds until the end.
async fn invalidator(thread: Rc<Thread>, mut conn: Conn) -> Result<(), StampedeError> {
    let shared = &thread.shared;
    let mut rng = Rng::derive(shared.config.seed, u64::MAX);
    let period = Duration::from_secs_f64(1.0 / shared.config.invalidate_rate);
    let soft_expire = match shared.stampede.refresh {
        Refresh::Hard => None,
        Refresh::Soft => Some(shared.stampede.soft_window),
    };
    let mut due = thread.start + period;
    while due < thread.end {
        tokio::time::sleep_until(due.into()).await;
        due += period;
        let tag = rng.below(u64::from(shared.tags)) as u32;
        let command = Command::InvalidateTags(InvalidateTags {
            tags: vec![thread.data.tag_bytes(tag)],
            soft_expire,
        });
        match conn.call(Flags::NONE, command).await? {
            Outcome::Sequence(_) => thread.counts.borrow_mut().invalidations += 1,
            other => {
                return Err(StampedeError::Unexpected(format!(
                    "INVALIDATE_TAGS: {other:?}"
                )))
            }
        }
    }
    Ok(())
}

/// Stores every key once, unfenced and uncounted.
async fn prefill(shared: &Shared) -> Result<(), StampedeError> {
    let (mut conn, _) = Conn::open(shared.addr, &shared.config).await?;
    let keys: Vec<u32> = (0..shared.config.keys).collect();
    for chunk in keys.chunks(PREFILL_PIPELINE) {
        let requests: Vec<Request> = chunk
            .iter()
            .map(|&key| {
                let set = value_set(&shared.config, &shared.data, key, None, None);
                Request::new(key, set)
            })
            .collect();
        for outcome in conn.call_many(&requests).await? {
            if !matches!(outcome, Outcome::Stored { .. }) {
                return Err(StampedeError::Unexpected(format!(
                    "prefill SET: {outcome:?}"
                )));
            }
        }
    }
    Ok(())
}

fn thread_main(shared: Arc<Shared>, thread_index: usize) -> Result<Counts, StampedeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let threads = shared.config.threads;
    let readers: Vec<usize> = (0..shared.config.connections)
        .filter(|index| index % threads == thread_index)
        .collect();
    let local = LocalSet::new();
    let connected = local.block_on(&runtime, async {
        let mut conns = Vec::with_capacity(readers.len() + 1);
        for _ in 0..readers.len() + usize::from(thread_index == 0) {
            conns.push(Conn::open(shared.addr, &shared.config).await?.0);
        }
        Ok::<_, StampedeError>(conns)
    });
    // Meet the others even on failure, so nobody waits for ever.
    shared.connected.wait();
    shared.go.wait();
    let mut conns = connected?;
    let start = *shared.start.get().expect("set before the second barrier");
    let thread = Rc::new(Thread {
        shared: shared.clone(),
        data: shared.data.for_thread(),
        start,
        end: start + shared.stampede.duration,
        counts: RefCell::default(),
        spare: RefCell::default(),
        refreshing: Cell::new(0),
        failed: RefCell::default(),
    });
    let result = local.block_on(&runtime, async {
        let mut tasks = Vec::new();
        if thread_index == 0 {
            let conn = conns.pop().expect("the invalidator's connection");
            tasks.push(tokio::task::spawn_local(invalidator(thread.clone(), conn)));
        }
        for (index, conn) in readers.into_iter().zip(conns) {
            tasks.push(tokio::task::spawn_local(reader(
                thread.clone(),
                index,
                conn,
            )));
        }
        let mut first_error = None;
        for task in tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    first_error.get_or_insert(error);
                }
                Err(_) => {
                    first_error.get_or_insert(StampedeError::Panicked);
                }
            }
        }
        // Refreshes still running finish (each bounded by --timeout).
        let deadline = Instant::now() + shared.config.timeout * 2;
        while thread.refreshing.get() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        match first_error.or_else(|| thread.failed.borrow_mut().take()) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    });
    result?;
    let counts = thread.counts.take();
    Ok(counts)
}

/// Runs the stampede workload.
pub fn run(config: &Config, stampede: Stampede) -> Result<StampedeSummary, StampedeError> {
    let addr = resolve(&config.server)?;
    let probe = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let data = Dataset::new(
        config.keys,
        config.key_size,
        config.tag_space,
        config.value_size.max as usize,
        None,
    );
    let shared = Arc::new(Shared {
        config: config.clone(),
        stampede,
        addr,
        data,
        tags: config.tag_space.min(config.keys),
        connected: Barrier::new(config.threads + 1),
        start: OnceLock::new(),
        go: Barrier::new(config.threads + 1),
    });
    let server_version = probe.block_on(async {
        let (stream, hello) = connect(addr, config).await?;
        drop(stream);
        let hello = hello.expect("tagcached answers HELLO");
        let needed = Features::STALE_WHILE_REVALIDATE | Features::LEASES;
        if stampede.refresh == Refresh::Soft && !hello.features.contains(needed) {
            return Err(StampedeError::Unsupported);
        }
        prefill(&shared).await?;
        Ok(String::from_utf8_lossy(&hello.server_version).into_owned())
    })?;
    drop(probe);

    let mut handles = Vec::with_capacity(config.threads);
    for thread in 0..config.threads {
        let shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name(format!("stampede-{thread}"))
            .spawn(move || thread_main(shared, thread))
            .map_err(|error| StampedeError::Run(crate::runner::RunError::Start(error)))?;
        handles.push(handle);
    }
    shared.connected.wait();
    shared
        .start
        .set(Instant::now() + Duration::from_millis(10))
        .expect("set once");
    shared.go.wait();
    let mut counts = Counts::default();
    for thread in join_all(handles, || StampedeError::Panicked)? {
        counts.merge(&thread);
    }
    Ok(StampedeSummary::new(
        config,
        stampede,
        server_version,
        &counts,
    ))
}

/// What a stampede run reports, as a table or JSON.
#[derive(Debug, Clone, Serialize)]
pub struct StampedeSummary {
    /// Always `stampede`.
    pub workload: &'static str,
    /// `hard` or `soft`.
    pub refresh: Refresh,
    /// The address given.
    pub server: String,
    /// The server's own version string.
    pub server_version: String,
    /// Reader connections.
    pub readers: usize,
    /// Generator threads.
    pub threads: usize,
    /// Hot keys.
    pub keys: u32,
    /// Tags some key carries.
    pub tags: u32,
    /// Reads a second asked for (`--rate`); `null` for closed loop.
    pub rate: Option<f64>,
    /// Seconds measured.
    pub duration_s: f64,
    /// The origin's compute time, ms.
    pub origin_latency_ms: f64,
    /// Invalidations a second asked for.
    pub invalidate_rate: f64,
    /// Soft: the window, seconds.
    pub soft_window_s: Option<u32>,
    /// Invalidations sent while measuring.
    pub invalidations: u64,
    /// Origin computations started while measuring.
    pub recomputations: u64,
    /// `recomputations / invalidations`.
    pub recomputations_per_invalidation: Option<f64>,
    /// Keys per invalidated tag: the fewest recomputations an invalidation
    /// can cost.
    pub keys_per_tag: f64,
    /// Reads completed (each ends with a value).
    pub reads: u64,
    /// Reads per second of measuring.
    pub reads_per_sec: f64,
    /// GET answers HIT.
    pub hits: u64,
    /// GET answers STALE (each served at once).
    pub stale: u64,
    /// GET answers MISS (each computed by the reader).
    pub misses: u64,
    /// GET answers HOT_MISS (each waited for and read again).
    pub hot_misses: u64,
    /// SETs stored.
    pub sets_stored: u64,
    /// SETs refused FENCED.
    pub sets_fenced: u64,
    /// SETs refused LEASE_LOST.
    pub sets_lease_lost: u64,
    /// Read latency, µs: from the read's start to a value in hand.
    pub latency_us: Latency,
    /// `--rate`: how late reads started after they were due, µs (the
    /// generator's timer, or a reader still busy with its previous read).
    pub start_lag_us: Option<Latency>,
}

impl StampedeSummary {
    fn new(
        config: &Config,
        stampede: Stampede,
        server_version: String,
        counts: &Counts,
    ) -> StampedeSummary {
        let seconds = stampede.duration.as_secs_f64();
        let tags = config.tag_space.min(config.keys);
        StampedeSummary {
            workload: "stampede",
            refresh: stampede.refresh,
            server: config.server.clone(),
            server_version,
            readers: config.connections,
            threads: config.threads,
            keys: config.keys,
            tags,
            rate: config.rate,
            duration_s: seconds,
            origin_latency_ms: stampede.origin_latency.as_secs_f64() * 1000.0,
            invalidate_rate: config.invalidate_rate,
            soft_window_s: (stampede.refresh == Refresh::Soft).then_some(stampede.soft_window),
            invalidations: counts.invalidations,
            recomputations: counts.recomputations,
            recomputations_per_invalidation: (counts.invalidations > 0)
                .then(|| counts.recomputations as f64 / counts.invalidations as f64),
            keys_per_tag: f64::from(config.keys) / f64::from(tags),
            reads: counts.reads,
            reads_per_sec: counts.reads as f64 / seconds,
            hits: counts.hits,
            stale: counts.stale,
            misses: counts.misses,
            hot_misses: counts.hot_misses,
            sets_stored: counts.stored,
            sets_fenced: counts.fenced,
            sets_lease_lost: counts.lease_lost,
            latency_us: Latency::of(&counts.latency),
            start_lag_us: config.rate.map(|_| Latency::of(&counts.lag)),
        }
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let refresh = match self.refresh {
            Refresh::Hard => "hard invalidations, every reader that misses recomputes".to_string(),
            Refresh::Soft => format!(
                "soft invalidations ({} s window), stale served, lease holders recompute",
                self.soft_window_s.unwrap_or(0)
            ),
        };
        let pace = match self.rate {
            Some(rate) => format!("{rate} reads/s on schedule"),
            None => "closed loop".to_string(),
        };
        let _ = writeln!(out, "stampede: {refresh}");
        let _ = writeln!(
            out,
            "{} ({}), {} readers on {} thread(s), {pace}, {:.1} s",
            self.server, self.server_version, self.readers, self.threads, self.duration_s
        );
        let _ = writeln!(
            out,
            "{} keys, {} tags, origin {:.1} ms, {} invalidations/s",
            self.keys, self.tags, self.origin_latency_ms, self.invalidate_rate
        );
        let per = self
            .recomputations_per_invalidation
            .map_or("-".to_string(), |per| format!("{per:.2}"));
        let _ = writeln!(
            out,
            "invalidations {}, recomputations {}, per invalidation {per} (at least {:.2})",
            self.invalidations, self.recomputations, self.keys_per_tag
        );
        let _ = writeln!(
            out,
            "reads {} ({:.0}/s): hit {}, stale {}, miss {}, hot miss {}",
            self.reads, self.reads_per_sec, self.hits, self.stale, self.misses, self.hot_misses
        );
        let _ = writeln!(
            out,
            "SETs: stored {}, fenced {}, lease lost {}",
            self.sets_stored, self.sets_fenced, self.sets_lease_lost
        );
        let latency = &self.latency_us;
        let _ = writeln!(
            out,
            "read latency µs: p50 {:.1}, p90 {:.1}, p99 {:.1}, p99.9 {:.1}, max {:.1}",
            latency.p50, latency.p90, latency.p99, latency.p999, latency.max
        );
        if let Some(lag) = &self.start_lag_us {
            let _ = writeln!(
                out,
                "start lag µs (after due): p50 {:.1}, p99 {:.1}, max {:.1}",
                lag.p50, lag.p99, lag.max
            );
        }
        out
    }
}
