//! Which shard owns a key, and how work reaches it.
//!
//! Every key belongs to exactly one shard: `fnv1a64(key) mod shard_count`
//! (protocol.md §9). Each shard is owned by one worker thread, and only that
//! thread touches it, so the table needs no lock.
//!
//! # The batched hop
//!
//! A connection is served by the worker that accepted it, in rounds: it
//! decodes every request it has read (up to a bound), plans each into ops
//! on the shards it touches, and gathers the ops of the round into one
//! [`Batch`] per shard. Its own shard's batch runs in place. Every other
//! batch travels to its shard's worker as **one** [`Message`], whatever
//! number of requests it carries, and comes back with all their answers
//! encoded in one buffer, into the connection's own reply slot for that
//! shard ([`Replies`]). The owner runs it soon: its connections serve the
//! inbox between their own rounds, and an inbox task serves it when they
//! are idle, so a batch does not wait behind every connection the owner
//! has ready. The batch brings its buffers with it and back, so a hop
//! costs a message in and a slot's swap back per round and shard, and no
//! allocation per request. This is Seastar's and Dragonfly's shape: a
//! shard is reached by message passing, in batches, never by locking it.
//! Once all its batches are back, the connection writes the round's
//! answers, in request order, with one vectored write, and reads again.
//!
//! Ordering: a connection has at most one batch in flight per shard, and
//! each batch runs its ops in order, so requests for one key, and an
//! invalidation followed by anything on the same connection, reach each
//! shard in the order sent. Ops carry the invalidation sequence read when
//! they were planned, in request order (see [`crate::command`]).
//!
//! Bounds: each inbox holds at most
//! [`INBOX_CAPACITY`](crate::inbox::INBOX_CAPACITY) messages; a sender
//! finding it full waits, which slows only the connections sending there.
//! An inbox is drained by a task that never waits on anything but the
//! inbox itself (replies go into slots that are never full, since a
//! connection has at most one batch per shard out), so a full inbox always
//! empties.
//!
//! The hop is avoidable: HELLO reports the shard count and hash, and a
//! shard-aware client asks, with `want_shard`, for a connection per shard.
//! The accepting worker then hands the socket itself (and any bytes already
//! read past the HELLO, and on a TLS port the TLS session with it) to the
//! wanted worker through its handoff queue, which answers the HELLO and
//! serves the connection from then on. Such a client never pays a hop.

use std::sync::Arc;

use bytes::BytesMut;
use tagcached_protocol::shard_for_key;
use tokio::sync::mpsc;

use crate::admission::ConnectionGuard;
use crate::auth::AuthState;
use crate::command::Batch;
use crate::inbox::{self, InboxSender};
use crate::replies::Replies;

/// Connections a worker's handoff queue holds before senders wait.
pub const HANDOFF_CAPACITY: usize = 1024;

/// Where a shard puts a batch back: the slots of the connection that
/// sent it, one per shard ([`Replies`]).
pub type ReplyTo = Arc<Replies>;

/// What a shard's inbox carries: a batch to run on the shard and send back
/// with its answers.
pub struct Message {
    /// The ops, and the buffers their answers go into (boxed: see
    /// [`Batch`]).
    pub batch: Box<Batch>,
    /// The sending connection's reply slots.
    pub reply: ReplyTo,
}

/// A connection moving to another worker (see the module comment).
pub struct Handoff {
    /// The socket, detached from the old worker's reactor.
    pub stream: std::net::TcpStream,
    /// Its TLS state, on a TLS port: the session keys, and any plaintext
    /// decrypted past the HELLO that the old worker had not read yet.
    pub tls: Option<Box<rustls::ServerConnection>>,
    /// Bytes read after the HELLO that the old worker did not process.
    pub unread: BytesMut,
    /// The HELLO's opaque, to answer from the new worker.
    pub hello_opaque: u32,
    /// Keeps the connection counted while it moves.
    pub guard: ConnectionGuard,
    /// Whether it has authenticated, and if not, by when it must: moving
    /// neither forgets an authentication nor restarts the clock.
    pub auth: AuthState,
}

/// Senders to every shard's inbox and handoff queue, shared by all
/// workers.
#[derive(Clone)]
pub struct Router {
    inboxes: Arc<[InboxSender<Message>]>,
    handoffs: Arc<[mpsc::Sender<Handoff>]>,
}

/// A shard's inbox, read by its worker.
pub type Inbox = inbox::Inbox<Message>;
/// Connections handed to a worker, read by its worker.
pub type Handoffs = mpsc::Receiver<Handoff>;

impl Router {
    /// A router and, per shard, the inbox and handoff queue it sends to.
    pub fn with_inboxes(shards: usize) -> (Router, Vec<(Inbox, Handoffs)>) {
        let (inbox_senders, inboxes): (Vec<_>, Vec<_>) =
            (0..shards).map(|_| inbox::inbox()).unzip();
        let (handoff_senders, handoffs): (Vec<_>, Vec<_>) =
            (0..shards).map(|_| mpsc::channel(HANDOFF_CAPACITY)).unzip();
        let router = Router {
            inboxes: inbox_senders.into(),
            handoffs: handoff_senders.into(),
        };
        (router, inboxes.into_iter().zip(handoffs).collect())
    }

    /// Number of shards.
    pub fn shard_count(&self) -> u16 {
        self.inboxes.len() as u16
    }

    /// The shard that owns `key`.
    #[inline]
    pub fn shard_of(&self, key: &[u8]) -> u16 {
        // One shard owns every key: skip hashing the key on every request.
        match self.shard_count() {
            1 => 0,
            count => shard_for_key(key, count),
        }
    }

    /// Sends `message` to `shard`, waiting while its inbox is full. Gives
    /// the message back if the shard has stopped, which happens only when
    /// a shutdown's grace period has run out.
    pub async fn send(&self, shard: u16, message: Message) -> Result<(), Message> {
        self.inboxes[usize::from(shard)].send(message).await
    }

    /// Hands a connection to `shard`'s worker, waiting while its queue is
    /// full. Gives it back if the worker has stopped (shutdown).
    pub async fn hand_off(&self, shard: u16, handoff: Handoff) -> Result<(), Handoff> {
        self.handoffs[usize::from(shard)]
            .send(handoff)
            .await
            .map_err(|refused| refused.0)
    }
}
