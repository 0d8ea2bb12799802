//! A worker thread: its own single-threaded runtime, its own listeners (one
//! per address), the one shard it owns, and the inbox through which every
//! other worker reaches that shard.

use std::cell::RefCell;
use std::net::TcpListener as StdListener;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tagcached_store::{InvalidationSeq, Shard, ShardConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::LocalSet;

use crate::admission::ConnectionGuard;
use crate::connection;
use crate::context::WorkerContext;
use crate::log_limit::LogLimiter;
use crate::probe::{self, ProbeQueue};
use crate::router::{Handoffs, Inbox, Router};
use crate::shared::Shared;

/// Failed accepts, logged at most once a second: out of file descriptors,
/// accept fails again every 10 ms.
static ACCEPT_FAILED: LogLimiter = LogLimiter::new(Duration::from_secs(1));
/// Connections refused at `max_connections`, logged at most once a minute.
static AT_MAX_CONNECTIONS: LogLimiter = LogLimiter::new(Duration::from_secs(60));

/// Runs one worker until shutdown. Blocks the calling thread.
pub fn run(
    index: u16,
    shared: Arc<Shared>,
    router: Router,
    listeners: Vec<StdListener>,
    (inbox, handoffs): (Inbox, Handoffs),
    probes: ProbeQueue,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let shard_config = ShardConfig::default()
        .with_memory_limit(shared.config.memory / shared.config.threads)
        .with_lease_ms(shared.config.lease_time.as_millis() as u64);
    let floor = InvalidationSeq::new(shared.boot_seq);
    let stopping = shared.shutdown.child_token();
    let context = Rc::new(WorkerContext {
        index,
        shard: RefCell::new(Shard::new(shard_config, floor)),
        shared,
        router,
        inbox,
        latency: RefCell::default(),
        stopping,
    });
    LocalSet::new().block_on(&runtime, async move {
        let mut accepts = tokio::task::JoinSet::new();
        for listener in listeners {
            let listener = TcpListener::from_std(listener)?;
            accepts.spawn_local(accept(context.clone(), listener));
        }
        let inbox_task = tokio::task::spawn_local(context.clone().serve_inbox());
        let handoff_task = tokio::task::spawn_local(adopt(context.clone(), handoffs));
        let sweep_task = tokio::task::spawn_local(sweep(context.clone()));
        let probe_task = tokio::task::spawn_local(probe::answer(context.clone(), probes));
        while accepts.join_next().await.is_some() {}
        // Other workers' connections may still need this shard, so its inbox
        // stays open until every connection on every worker has finished.
        let connections = &context.shared.connections;
        connections.close();
        let grace = context.shared.config.shutdown_grace;
        if tokio::time::timeout(grace, connections.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                ?grace,
                "connections still open after the grace period; stopping"
            );
        }
        sweep_task.abort();
        probe_task.abort();
        inbox_task.abort();
        handoff_task.abort();
        Ok(())
    })
}

async fn accept(context: Rc<WorkerContext>, listener: TcpListener) {
    let shutdown = context.stopping.clone();
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: pause rather than spin.
                if let Some(suppressed) = ACCEPT_FAILED.allow() {
                    tracing::warn!(%error, suppressed, "accept failed");
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        admit(&context, stream);
    }
}

fn admit(context: &Rc<WorkerContext>, stream: TcpStream) {
    let shared = &context.shared;
    match ConnectionGuard::try_admit(shared.clone()) {
        // A handshaking connection counts: the guard is taken first.
        Some(guard) if shared.tls.is_some() => {
            let task = connection::serve_tls(context.clone(), stream, guard);
            tokio::task::spawn_local(shared.connections.track_future(task));
        }
        Some(guard) => {
            let task = connection::accept(context.clone(), stream, guard);
            tokio::task::spawn_local(shared.connections.track_future(task));
        }
        None => {
            if let Some(suppressed) = AT_MAX_CONNECTIONS.allow() {
                tracing::warn!(
                    max_connections = shared.config.max_connections,
                    suppressed,
                    "refusing connections (BUSY): at --max-connections"
                );
            }
            // A TLS client could read a BUSY answer only after a handshake,
            // which is the work the limit exists to refuse: it is closed.
            if shared.tls.is_none() {
                tokio::task::spawn_local(connection::reject_busy(
                    stream,
                    shared.config.max_connections,
                ));
            }
        }
    }
}

/// Serves the connections other workers hand over at HELLO.
async fn adopt(context: Rc<WorkerContext>, mut handoffs: Handoffs) {
    while let Some(handoff) = handoffs.recv().await {
        let task = connection::adopt(context.clone(), handoff);
        tokio::task::spawn_local(context.shared.connections.track_future(task));
    }
}

/// Reclaims expired and invalidated entries that nobody reads, a slice at a
/// time so no request waits long behind it.
async fn sweep(context: Rc<WorkerContext>) {
    let config = &context.shared.config;
    let mut ticks = tokio::time::interval(config.sweep_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now_ms = context.shared.now_ms();
        context.shard.borrow_mut().sweep(now_ms, config.sweep_batch);
    }
}
