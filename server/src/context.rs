//! What one worker thread owns, as its tasks see it: its shard, and the
//! ways to everything shared.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use tagcached_store::Shard;
use tokio_util::sync::CancellationToken;

use crate::command::Batch;
use crate::latency::CommandLatency;
use crate::router::{Inbox, Message, Router};
use crate::shared::Shared;

/// Messages one call of [`WorkerContext::serve_inbox_now`] runs at most, so
/// the connection that calls it is not held up for long.
const INBOX_SLICE: usize = 16;

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
    /// Every shard's inbox.
    pub router: Router,
    /// This shard's inbox. Read by the worker's inbox task when the worker
    /// is otherwise idle, and by its connections between their rounds (see
    /// [`WorkerContext::serve_inbox_now`]).
    pub inbox: Inbox,
    /// Latency of the commands this worker's connections served, for
    /// `/metrics` ([`crate::latency`]); written by those connections only,
    /// between their awaits.
    pub latency: RefCell<CommandLatency>,
    /// Cancelled when the server's shutdown token is: this worker's own
    /// child of it. A token's state is behind a mutex, which a connection
    /// takes when it begins to wait on it and its listeners whenever they
    /// poll; a child's is taken by this thread alone, not by every worker.
    pub stopping: CancellationToken,
}

impl WorkerContext {
    /// Runs a batch made for this worker's shard (see [`Batch::run_on`])
    /// at the store's time `now`: a clock read the caller made, at most
    /// as old as the batch's requests.
    pub fn run(&self, batch: &mut Batch, now: Instant) {
        debug_assert_eq!(batch.shard(), self.index);
        batch.run_on(&mut self.shard.borrow_mut(), self.shared.ms_at(now));
    }

    /// Runs what other workers have sent this shard, a slice at a time,
    /// until the worker aborts it (shutdown).
    pub async fn serve_inbox(self: Rc<Self>) {
        loop {
            let message = self.inbox.recv().await;
            self.handle(message);
            self.serve_inbox_now();
        }
    }

    /// Runs a few (16) messages already in the inbox, without
    /// waiting. Connections call this between their rounds: a batch sent
    /// here by another worker's connection, which waits for it, then runs
    /// after at most one round of one local connection, rather than after
    /// every local connection that is ready, which is when the inbox task
    /// would get its turn.
    pub fn serve_inbox_now(&self) {
        // Most calls find the inbox empty: asking costs a third of what
        // failing to receive does, on every round of every connection.
        if self.inbox.is_empty() {
            return;
        }
        for _ in 0..INBOX_SLICE {
            let Some(message) = self.inbox.try_recv() else {
                return;
            };
            self.handle(message);
        }
    }

    fn handle(&self, message: Message) {
        let Message { mut batch, reply } = message;
        self.run(&mut batch, Instant::now());
        reply.send(batch);
    }
}
