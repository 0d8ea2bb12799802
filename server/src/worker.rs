//! A worker thread: its own single-threaded runtime, its own listener, and
//! the one shard it owns.

use std::cell::RefCell;
use std::net::TcpListener as StdListener;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tagcached_store::{InvalidationSeq, Shard, ShardConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::LocalSet;

use crate::connection::{self, ConnectionGuard};
use crate::dispatch;
use crate::router::ShardMessage;
use crate::shared::Shared;

/// State one worker thread owns. Only this thread touches the shard, so a
/// `RefCell` (never borrowed across an await) is all the synchronisation
/// it needs.
pub struct WorkerContext {
    /// This worker's shard index.
    pub index: u16,
    /// The shard.
    pub shard: RefCell<Shard>,
    /// What all workers share.
    pub shared: Arc<Shared>,
}

impl WorkerContext {
    /// Milliseconds since the server started: the store's clock.
    pub fn now_ms(&self) -> u64 {
        self.shared.started.elapsed().as_millis() as u64
    }
}

/// Runs one worker until shutdown. Blocks the calling thread.
pub fn run(
    index: u16,
    shared: Arc<Shared>,
    listener: StdListener,
    inbox: mpsc::UnboundedReceiver<ShardMessage>,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let shard_config =
        ShardConfig::default().with_memory_limit(shared.config.memory / shared.config.threads);
    let floor = InvalidationSeq::new(shared.sequence.current());
    let context = Rc::new(WorkerContext {
        index,
        shard: RefCell::new(Shard::new(shard_config, floor)),
        shared,
    });
    LocalSet::new().block_on(&runtime, async move {
        let listener = TcpListener::from_std(listener)?;
        let inbox_task = tokio::task::spawn_local(serve_inbox(context.clone(), inbox));
        let sweep_task = tokio::task::spawn_local(sweep(context.clone()));
        accept(&context, listener).await;
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
        inbox_task.abort();
        Ok(())
    })
}

async fn accept(context: &Rc<WorkerContext>, listener: TcpListener) {
    let shutdown = context.shared.shutdown.clone();
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
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        admit(context, stream);
    }
}

fn admit(context: &Rc<WorkerContext>, stream: TcpStream) {
    let shared = &context.shared;
    match ConnectionGuard::try_admit(shared.clone()) {
        Some(guard) => {
            let task = connection::serve(context.clone(), stream, Default::default(), None, guard);
            tokio::task::spawn_local(shared.connections.track_future(task));
        }
        None => {
            tokio::task::spawn_local(connection::reject_busy(
                stream,
                shared.config.max_connections,
            ));
        }
    }
}

async fn serve_inbox(context: Rc<WorkerContext>, mut inbox: mpsc::UnboundedReceiver<ShardMessage>) {
    while let Some(message) = inbox.recv().await {
        handle(&context, message);
    }
}

fn handle(context: &Rc<WorkerContext>, message: ShardMessage) {
    let now_ms = context.now_ms();
    match message {
        ShardMessage::Keyed {
            command,
            opaque,
            quiet,
            with_tags,
            seq,
            reply,
        } => {
            let request = dispatch::Keyed {
                command: &command,
                opaque,
                quiet,
                with_tags,
                seq,
                now_ms,
            };
            let mut frame = BytesMut::new();
            dispatch::answer_keyed(&mut context.shard.borrow_mut(), &request, &mut frame);
            let _ = reply.send(frame.freeze());
        }
        ShardMessage::GetMany {
            keys,
            lookup,
            reply,
        } => {
            let mut shard = context.shard.borrow_mut();
            let mut scratch = BytesMut::new();
            let frames = keys
                .into_iter()
                .map(|(index, key)| {
                    let frame =
                        dispatch::answer_lookup(&mut shard, &lookup, index, &key, &mut scratch);
                    (index, frame)
                })
                .collect();
            let _ = reply.send(frames);
        }
        ShardMessage::Invalidate { tags, seq, reply } => {
            context
                .shard
                .borrow_mut()
                .invalidate(&tags, InvalidationSeq::new(seq));
            let _ = reply.send(());
        }
        ShardMessage::FlushAll { seq, reply } => {
            context
                .shard
                .borrow_mut()
                .flush_all(InvalidationSeq::new(seq));
            let _ = reply.send(());
        }
        ShardMessage::Stats { reply } => {
            let _ = reply.send(context.shard.borrow().stats());
        }
        ShardMessage::Adopt(handoff) => {
            let task = connection::adopt(context.clone(), handoff);
            tokio::task::spawn_local(context.shared.connections.track_future(task));
        }
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
        let now_ms = context.now_ms();
        context.shard.borrow_mut().sweep(now_ms, config.sweep_batch);
    }
}
