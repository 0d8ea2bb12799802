//! The run: probe the server, plan the connections, start the generator
//! threads, and gather their results.
//!
//! # Threads
//!
//! Each of `--threads` threads runs a single-threaded tokio runtime that
//! owns a share of the connections (connection `i` on thread `i % threads`)
//! and one [`Recorder`] they share without locks. A run has two phases
//! separated by a barrier across all threads: connecting (and `--prefill`),
//! then measuring. Threads meet again only when the main thread merges
//! their stats; once a second each sends its interval stats for the
//! progress line.
//!
//! # Shard-aware connections (tagcached)
//!
//! With `S` shards reported at HELLO and `C` connections, keys are sorted
//! into `G = min(S, C)` groups by `shard_for_key(key) % G`; connection `i`
//! asks for shard `i % G` and draws its keys from group `i % G` only, so
//! when `C >= S` every request lands on the shard that owns its key and
//! needs no hop between the server's threads. `--no-shard-aware` lets every
//! connection draw from the whole key space, to measure the difference.

use std::cell::{Cell, RefCell};
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use tagcached_protocol::response::Features;
use tagcached_protocol::Limits;
use tokio::task::LocalSet;

use crate::config::{Config, Protocol, Stop};
use crate::connection::{open, Connection, ConnectionError, PhaseEnd, StopWhen};
use crate::cpu::CpuTime;
use crate::dataset::Dataset;
use crate::driver::memcached::MemcachedDriver;
use crate::driver::redis::RedisDriver;
use crate::driver::tagcached::TagcachedDriver;
use crate::driver::{Driver, DriverOptions};
use crate::progress::{Progress, ProgressBoard};
use crate::recorder::{Recorder, Stats};
use crate::rng::Rng;
use crate::schedule::{OpenSchedule, Pacing};
use crate::workload::{Generator, KeyChoice, OpMix, Prefill, WorkloadSpec};

/// Bytes of SET requests a connection keeps in flight while prefilling.
const PREFILL_BYTES_IN_FLIGHT: usize = 1 << 20;
/// Most SETs in flight per connection while prefilling.
const PREFILL_MAX_PIPELINE: usize = 64;
/// Most invalidations in flight on the invalidator's connection.
const INVALIDATOR_PIPELINE: usize = 64;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// `--server` did not resolve.
    #[error("cannot resolve --server {server}: {reason}")]
    Resolve {
        /// As given.
        server: String,
        /// Why.
        reason: String,
    },
    /// A connection failed.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// The server's HELLO made no sense.
    #[error("the server reported {0} shards")]
    NoShards(u16),
    /// A runtime or thread could not start.
    #[error("cannot start a generator thread: {0}")]
    Start(std::io::Error),
    /// A generator thread panicked.
    #[error("a generator thread panicked")]
    Panicked,
}

/// What the run measured.
#[derive(Debug)]
pub struct RunResult {
    /// Every kind's counters and latencies.
    pub stats: Stats,
    /// From the start of measuring to the last reply.
    pub elapsed: Duration,
    /// Open loop: requests due but never sent.
    pub backlog: u64,
    /// The generator's CPU time while measuring, if known.
    pub cpu: Option<CpuTime>,
    /// With `--server-pid`: that process's CPU time while measuring, if
    /// `/proc` told.
    pub server_cpu: Option<CpuTime>,
    /// tagcached: the server's shard count.
    pub shard_count: Option<u16>,
    /// Whether connections were shard-aware.
    pub shard_aware: bool,
    /// Generator threads.
    pub threads: usize,
    /// Connections opened, the invalidator's included.
    pub connections: usize,
    /// What the server said it is (tagcached).
    pub server_version: Option<String>,
}

/// How one connection behaves.
#[derive(Debug)]
struct ConnectionPlan {
    index: usize,
    want_shard: Option<u16>,
    keys: KeyChoice,
    spec: WorkloadSpec,
    /// Open loop: requests per second and the offset of the first.
    open_rate: Option<(f64, Duration)>,
    pipeline: usize,
    quota: Option<u64>,
    prefill_keys: Vec<u32>,
    /// The invalidator stops with the workload instead of a quota.
    follows_workload: bool,
}

/// What a generator thread hands back.
#[derive(Debug)]
struct ThreadOutput {
    stats: Stats,
    finished: Option<Instant>,
    backlog: u64,
}

/// State shared by every thread.
struct Shared {
    config: Config,
    addr: SocketAddr,
    data: Dataset,
    barrier: Barrier,
    abort: AtomicBool,
    workload_running: AtomicUsize,
}

/// The first address `server` resolves to.
pub fn resolve(server: &str) -> Result<SocketAddr, RunError> {
    let fail = |reason: String| RunError::Resolve {
        server: server.to_string(),
        reason,
    };
    server
        .to_socket_addrs()
        .map_err(|error| fail(error.to_string()))?
        .next()
        .ok_or_else(|| fail("no address".to_string()))
}

/// Runs the whole benchmark; `notice` receives the warnings for stderr.
pub fn run(config: &Config, notice: &mut dyn FnMut(String)) -> Result<RunResult, RunError> {
    let addr = resolve(&config.server)?;
    let probe = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RunError::Start)?;
    let (_, hello) = probe.block_on(open(
        addr,
        config.tls.as_ref(),
        config.protocol,
        None,
        config.auth_token.as_ref(),
        config.timeout,
    ))?;
    drop(probe);
    let shard_count = hello.as_ref().map(|info| info.shard_count);
    if shard_count == Some(0) {
        return Err(RunError::NoShards(0));
    }
    let mut shard_aware = config.shard_aware;
    if let Some(info) = &hello {
        if shard_aware && !info.features.contains(Features::SHARD_AWARE) {
            notice(
                "the server does not support shard-aware connections; sending keys anywhere".into(),
            );
            shard_aware = false;
        }
    }
    let groups = match (shard_aware, shard_count) {
        (true, Some(shards)) => {
            let groups = usize::from(shards).min(config.connections) as u16;
            if usize::from(shards) > config.connections {
                notice(format!(
                    "{} connections for {shards} shards: some keys will take a hop between \
                     server threads; use at least {shards} connections for a fully shard-aware run",
                    config.connections
                ));
            }
            Some((shards, groups))
        }
        _ => None,
    };
    if config.protocol != Protocol::Tagcached
        && (config.tags_per_item > 0 || config.invalidate_rate > 0.0)
    {
        notice(format!(
            "{} has no tags: --tags-per-item and --invalidate-rate are ignored",
            config.protocol.name()
        ));
    }
    let data = Dataset::new(
        config.keys,
        config.key_size,
        config.tag_space,
        config.value_size.max as usize,
        groups,
    );
    let plans = plan_connections(config, &data);
    let connections = plans.len();
    let workload_connections = config.connections;
    let threads = config.threads;
    let mut per_thread: Vec<Vec<ConnectionPlan>> = (0..threads).map(|_| Vec::new()).collect();
    for plan in plans {
        per_thread[plan.index % threads].push(plan);
    }
    let shared = Arc::new(Shared {
        config: config.clone(),
        addr,
        data,
        barrier: Barrier::new(threads + 1),
        abort: AtomicBool::new(false),
        workload_running: AtomicUsize::new(workload_connections),
    });
    let (progress_tx, progress_rx) = mpsc::channel();
    let mut handles = Vec::with_capacity(threads);
    for (thread, plans) in per_thread.into_iter().enumerate() {
        let shared = shared.clone();
        let progress = progress_tx.clone();
        let protocol = config.protocol;
        let handle = std::thread::Builder::new()
            .name(format!("bench-{thread}"))
            .spawn(move || match protocol {
                Protocol::Tagcached => thread_main::<TagcachedDriver>(&shared, plans, progress),
                Protocol::Memcached => thread_main::<MemcachedDriver>(&shared, plans, progress),
                Protocol::Redis => thread_main::<RedisDriver>(&shared, plans, progress),
            })
            .map_err(RunError::Start)?;
        handles.push(handle);
    }
    drop(progress_tx);
    shared.barrier.wait();
    let start = Instant::now();
    let cpu_start = CpuTime::now();
    let server_cpu_start = config.server_pid.and_then(CpuTime::of);
    let mut board = ProgressBoard::new(threads);
    while let Ok(message) = progress_rx.recv() {
        for line in board.update(message) {
            if !config.quiet {
                eprintln!("{line}");
            }
        }
    }
    let cpu = CpuTime::now()
        .zip(cpu_start)
        .map(|(end, start)| end.since(&start));
    let server_cpu = config
        .server_pid
        .and_then(CpuTime::of)
        .zip(server_cpu_start)
        .map(|(end, start)| end.since(&start));
    let mut stats = Stats::default();
    let mut finished = start;
    let mut backlog = 0;
    for output in join_all(handles, || RunError::Panicked)? {
        stats.merge(&output.stats);
        finished = finished.max(output.finished.unwrap_or(start));
        backlog += output.backlog;
    }
    Ok(RunResult {
        stats,
        elapsed: finished - start,
        backlog,
        cpu,
        server_cpu,
        shard_count,
        shard_aware: groups.is_some(),
        threads,
        connections,
        server_version: hello
            .map(|info| String::from_utf8_lossy(&info.server_version).into_owned()),
    })
}

/// Waits for every generator thread; their outputs, or the first error
/// (`panicked()` for a thread that panicked) once all have ended.
pub fn join_all<T, E>(
    handles: Vec<std::thread::JoinHandle<Result<T, E>>>,
    panicked: impl Fn() -> E,
) -> Result<Vec<T>, E> {
    let mut outputs = Vec::with_capacity(handles.len());
    let mut first_error = None;
    for handle in handles {
        match handle.join() {
            Ok(Ok(output)) => outputs.push(output),
            Ok(Err(error)) => {
                first_error.get_or_insert(error);
            }
            Err(_) => {
                first_error.get_or_insert_with(&panicked);
            }
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(outputs),
    }
}

/// Decides every connection's keys, pacing, quota and prefill share.
fn plan_connections(config: &Config, data: &Dataset) -> Vec<ConnectionPlan> {
    let count = config.connections;
    let spec = WorkloadSpec {
        mix: config.mix,
        distribution: config.distribution,
        value_size: config.value_size,
        tags_per_item: config.effective_tags_per_item(),
        tags_per_invalidation: 1,
    };
    let groups = data.groups();
    let group_count = groups.map_or(1, |groups| groups.groups.len());
    let mut plans: Vec<ConnectionPlan> = (0..count)
        .map(|index| {
            let quota = match config.stop {
                Stop::Requests(total) => {
                    let count = count as u64;
                    Some(total / count + u64::from((index as u64) < total % count))
                }
                Stop::After(_) => None,
            };
            let open_rate = config.rate.map(|rate| {
                (
                    rate / count as f64,
                    Duration::from_secs_f64(index as f64 / rate),
                )
            });
            let (want_shard, keys, prefill_keys) = match groups {
                Some(groups) if !groups.groups[index % group_count].is_empty() => {
                    let group = index % group_count;
                    // The connections of this group split its keys.
                    let rank = index / group_count;
                    let peers = (count - group).div_ceil(group_count);
                    let prefill = groups.groups[group]
                        .iter()
                        .skip(rank)
                        .step_by(peers)
                        .copied()
                        .collect();
                    (
                        Some(group as u16),
                        KeyChoice::Group {
                            groups: groups.clone(),
                            group,
                        },
                        prefill,
                    )
                }
                _ => {
                    let prefill = if groups.is_some() {
                        Vec::new()
                    } else {
                        (index as u32..data.key_count()).step_by(count).collect()
                    };
                    (None, KeyChoice::Any, prefill)
                }
            };
            ConnectionPlan {
                index,
                want_shard,
                keys,
                spec: spec.clone(),
                open_rate,
                pipeline: config.pipeline,
                quota,
                prefill_keys: if config.prefill {
                    prefill_keys
                } else {
                    Vec::new()
                },
                follows_workload: false,
            }
        })
        .collect();
    let invalidate_rate = config.effective_invalidate_rate();
    if invalidate_rate > 0.0 {
        plans.push(ConnectionPlan {
            index: count,
            want_shard: None,
            keys: KeyChoice::Any,
            spec: WorkloadSpec {
                mix: OpMix::invalidate_only(),
                ..spec
            },
            open_rate: Some((invalidate_rate, Duration::ZERO)),
            pipeline: INVALIDATOR_PIPELINE,
            quota: None,
            prefill_keys: Vec::new(),
            follows_workload: true,
        });
    }
    plans
}

fn prefill_pipeline(config: &Config) -> usize {
    let request = config.value_size.max as usize + config.key_size + 64;
    (PREFILL_BYTES_IN_FLIGHT / request)
        .clamp(1, PREFILL_MAX_PIPELINE)
        .max(config.pipeline)
}

/// One generator thread: connect and prefill, meet the others, measure.
fn thread_main<D: Driver + 'static>(
    shared: &Arc<Shared>,
    plans: Vec<ConnectionPlan>,
    progress: mpsc::Sender<Progress>,
) -> Result<ThreadOutput, RunError> {
    let setup = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RunError::Start);
    let (runtime, setup) = match setup {
        Ok(runtime) => {
            let local = LocalSet::new();
            let connected = local.block_on(&runtime, connect_and_prefill::<D>(shared, plans));
            (Some((runtime, local)), connected)
        }
        Err(error) => (None, Err(error)),
    };
    if setup.is_err() {
        shared.abort.store(true, Ordering::Relaxed);
    }
    // Every thread reaches the barrier, failed or not, or the others and
    // the main thread would wait forever.
    shared.barrier.wait();
    let connections = match setup {
        Ok(connections) => connections,
        Err(error) => {
            let _ = progress.send(Progress::Done);
            return Err(error);
        }
    };
    let (runtime, local) = runtime.expect("set up without a runtime");
    if shared.abort.load(Ordering::Relaxed) {
        let _ = progress.send(Progress::Done);
        return Ok(ThreadOutput {
            stats: Stats::default(),
            finished: None,
            backlog: 0,
        });
    }
    local.block_on(&runtime, measure::<D>(shared, connections, progress))
}

type Ready<D> = (Connection<D>, ConnectionPlan);

async fn connect_and_prefill<D: Driver + 'static>(
    shared: &Arc<Shared>,
    plans: Vec<ConnectionPlan>,
) -> Result<Vec<Ready<D>>, RunError> {
    let config = &shared.config;
    let data = Rc::new(shared.data.for_thread());
    let options = DriverOptions {
        ttl: config.ttl,
        max_response: Limits::default().max_frame,
    };
    let prefill_pipeline = prefill_pipeline(config);
    let mut tasks = Vec::with_capacity(plans.len());
    for mut plan in plans {
        let data = data.clone();
        let shared = shared.clone();
        // Connections open in parallel; each then stores its share of keys.
        tasks.push(tokio::task::spawn_local(async move {
            let config = &shared.config;
            let (stream, _) = open(
                shared.addr,
                config.tls.as_ref(),
                config.protocol,
                plan.want_shard,
                config.auth_token.as_ref(),
                config.timeout,
            )
            .await?;
            let mut connection = Connection::new(
                plan.index,
                stream,
                D::new(&options),
                data.clone(),
                config.timeout,
            );
            let keys = std::mem::take(&mut plan.prefill_keys);
            if !keys.is_empty() {
                let generator = Generator::new(
                    plan.spec.clone(),
                    KeyChoice::Any,
                    &data,
                    Rng::derive(!config.seed, plan.index as u64),
                    None,
                );
                let stop = StopWhen {
                    deadline: None,
                    others_running: None,
                    abort: &shared.abort,
                };
                connection
                    .run(
                        &mut Prefill::new(generator, keys),
                        Pacing::Closed,
                        prefill_pipeline,
                        stop,
                        None,
                    )
                    .await?;
            }
            Ok::<_, ConnectionError>((connection, plan))
        }));
    }
    let mut ready = Vec::with_capacity(tasks.len());
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok(Ok(connection)) => ready.push(connection),
            Ok(Err(error)) => {
                shared.abort.store(true, Ordering::Relaxed);
                first_error.get_or_insert(RunError::from(error));
            }
            Err(_) => {
                shared.abort.store(true, Ordering::Relaxed);
                first_error.get_or_insert(RunError::Panicked);
            }
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(ready),
    }
}

async fn measure<D: Driver + 'static>(
    shared: &Arc<Shared>,
    connections: Vec<Ready<D>>,
    progress: mpsc::Sender<Progress>,
) -> Result<ThreadOutput, RunError> {
    let start = Instant::now();
    let deadline = match shared.config.stop {
        Stop::After(duration) => Some(start + duration),
        Stop::Requests(_) => None,
    };
    let recorder = Rc::new(RefCell::new(Recorder::default()));
    let ticker = Rc::new(Ticker {
        recorder: recorder.clone(),
        progress: progress.clone(),
        next: Cell::new(1),
        last: Cell::new(start),
    });
    let ticking = tokio::task::spawn_local(ticker.clone().every_second());
    let mut tasks = Vec::with_capacity(connections.len());
    for (mut connection, plan) in connections {
        let recorder = recorder.clone();
        let shared = shared.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let mut generator = Generator::new(
                plan.spec.clone(),
                plan.keys.clone(),
                connection.data(),
                Rng::derive(shared.config.seed, plan.index as u64),
                plan.quota,
            );
            let pacing = match plan.open_rate {
                Some((rate, offset)) => Pacing::Open {
                    schedule: OpenSchedule::new(start + offset, rate),
                    spin: shared.config.spin,
                },
                None => Pacing::Closed,
            };
            let stop = StopWhen {
                deadline,
                others_running: plan.follows_workload.then_some(&shared.workload_running),
                abort: &shared.abort,
            };
            let result = connection
                .run(&mut generator, pacing, plan.pipeline, stop, Some(&recorder))
                .await;
            if !plan.follows_workload {
                shared.workload_running.fetch_sub(1, Ordering::Relaxed);
            }
            if result.is_err() {
                shared.abort.store(true, Ordering::Relaxed);
            }
            result
        }));
    }
    let mut finished = None;
    let mut backlog = 0;
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok(Ok(PhaseEnd {
                finished: end,
                backlog: missed,
            })) => {
                finished = finished.max(Some(end));
                backlog += missed;
            }
            Ok(Err(error)) => {
                first_error.get_or_insert(RunError::from(error));
            }
            Err(_) => {
                first_error.get_or_insert(RunError::Panicked);
            }
        }
    }
    ticking.abort();
    // The last, partial second, so a short run still shows a line.
    if recorder.borrow().interval.ops > 0 {
        ticker.send();
    }
    let _ = progress.send(Progress::Done);
    if let Some(error) = first_error {
        return Err(error);
    }
    let stats = recorder.borrow().run.clone();
    Ok(ThreadOutput {
        stats,
        finished,
        backlog,
    })
}

/// Sends a thread's interval stats for the progress line.
struct Ticker {
    recorder: Rc<RefCell<Recorder>>,
    progress: mpsc::Sender<Progress>,
    next: Cell<u64>,
    last: Cell<Instant>,
}

impl Ticker {
    /// Sends the stats since the last call as the next second.
    fn send(&self) {
        let now = Instant::now();
        let stats = self.recorder.borrow_mut().take_interval();
        let tick = self.next.replace(self.next.get() + 1);
        let elapsed = now - self.last.replace(now);
        let _ = self.progress.send(Progress::Tick {
            tick,
            elapsed,
            stats,
        });
    }

    async fn every_second(self: Rc<Self>) {
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        interval.tick().await;
        loop {
            interval.tick().await;
            self.send();
        }
    }
}
