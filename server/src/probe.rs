//! Asking a worker how it is: the message the admin listener sends every
//! worker for `/metrics` and `/readyz`, and the worker's answer.
//!
//! This is STATS's way (a gathering op per shard) for what lives outside
//! the shard: the worker answers from its own thread, with a copy of its
//! shard's counters and of its latency histograms, so nothing the workers
//! own is ever shared or locked. A probe has its own queue, apart from the
//! inboxes that carry requests' batches, so a scrape never waits behind
//! a full inbox and never holds one up; that a worker answers at all, soon,
//! is what `/readyz` checks.

use std::rc::Rc;

use tagcached_store::ShardStats;
use tokio::sync::{mpsc, oneshot};

use crate::context::WorkerContext;
use crate::latency::CommandLatency;

/// Probes a worker's queue holds before the admin listener waits: a few
/// scrapes at once, more than enough since each is answered in microseconds.
pub const PROBE_CAPACITY: usize = 8;

/// A request for a worker's [`WorkerReport`].
#[derive(Debug)]
pub struct Probe {
    /// Where the report goes.
    pub reply: oneshot::Sender<WorkerReport>,
}

/// What a worker says of itself.
#[derive(Debug, Clone)]
pub struct WorkerReport {
    /// The worker's index, which is its shard's.
    pub worker: u16,
    /// Its shard's counters.
    pub shard: ShardStats,
    /// Its connections' command latency.
    pub latency: Box<CommandLatency>,
}

/// Senders to every worker's probe queue.
pub type ProbeSenders = Vec<mpsc::Sender<Probe>>;
/// One worker's probe queue.
pub type ProbeQueue = mpsc::Receiver<Probe>;

/// A probe queue per worker, and the senders to them.
pub fn queues(workers: usize) -> (ProbeSenders, Vec<ProbeQueue>) {
    (0..workers).map(|_| mpsc::channel(PROBE_CAPACITY)).unzip()
}

/// Answers probes until every sender is gone (the admin listener stopped)
/// or the worker stops.
pub async fn answer(context: Rc<WorkerContext>, mut probes: ProbeQueue) {
    while let Some(Probe { reply }) = probes.recv().await {
        let report = WorkerReport {
            worker: context.index,
            shard: context.shard.borrow().stats(),
            latency: Box::new(context.latency.borrow().clone()),
        };
        // The admin listener stopped waiting (its bound passed): nothing to do.
        let _ = reply.send(report);
    }
}
