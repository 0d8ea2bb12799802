//! Which shard owns a key, and how a request reaches it.
//!
//! Every key belongs to exactly one shard: `fnv1a64(key) mod shard_count`
//! (protocol.md §9). Each shard is owned by one worker thread, and only that
//! thread touches it, so the table needs no lock.
//!
//! A connection is served by the worker that accepted it. A request whose
//! key that worker owns runs inline, with no hop and no allocation beyond
//! the response. A request for a key owned elsewhere goes to the owner as a
//! [`ShardMessage`] over its inbox channel, and the answer comes back on a
//! oneshot channel; the connection keeps decoding and executing the rest of
//! the batch meanwhile, and writes all responses in request order.
//!
//! The hop is avoidable: HELLO reports the shard count and hash, and a
//! shard-aware client asks, with `want_shard`, for a connection per shard.
//! The accepting worker then hands the socket itself (and any bytes already
//! read past the HELLO) to the wanted worker, which answers the HELLO and
//! serves the connection from then on. Such a client never pays a hop.
//!
//! Ordering: messages from one worker to another travel one FIFO channel, so
//! pipelined requests for one key, or an invalidation followed by a read on
//! the same connection, reach the owning shard in the order sent. A keyed
//! request carries the invalidation sequence read when its connection ran
//! it, so a SET followed by an invalidation on the same connection is
//! stamped before that invalidation however late the owner gets to it.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tagcached_protocol::{shard_for_key, Command};
use tagcached_store::ShardStats;
use tokio::sync::{mpsc, oneshot};

use crate::connection::ConnectionGuard;
use crate::dispatch::ManyLookup;

/// A request for a shard's owner thread.
pub enum ShardMessage {
    /// Run a keyed command (GET, SET, DELETE, TOUCH) and send back its
    /// response frame, encoded here from the stored bytes.
    Keyed {
        /// The command; its key belongs to the receiving shard.
        command: Command,
        /// The request's opaque, for the frame.
        opaque: u32,
        /// Leave a success unanswered (an empty frame).
        quiet: bool,
        /// GET only: return the entry's tags.
        with_tags: bool,
        /// The invalidation sequence when the connection executed the
        /// command. A SET is stamped with it, not with the sequence when
        /// this shard gets to it: an INVALIDATE_TAGS pipelined after the
        /// SET may be numbered by then, and must still cover the entry.
        seq: u64,
        /// Where the frame goes (empty for a quiet success).
        reply: oneshot::Sender<Bytes>,
    },
    /// Look up some of a GETM's keys, all owned by the receiving shard.
    GetMany {
        /// (position in the request, key) pairs.
        keys: Vec<(u16, Bytes)>,
        /// How to answer them.
        lookup: ManyLookup,
        /// Each key's frame (empty for a quiet miss), by position.
        reply: oneshot::Sender<Vec<(u16, Bytes)>>,
    },
    /// Record an invalidation of `tags` at `seq`; reply once applied.
    Invalidate {
        /// The tags, shared by every shard's copy of the message.
        tags: Arc<[Bytes]>,
        /// The invalidation's sequence.
        seq: u64,
        /// Signalled once applied.
        reply: oneshot::Sender<()>,
    },
    /// Drop every entry; fences before `seq` stop passing.
    FlushAll {
        /// The flush's sequence.
        seq: u64,
        /// Signalled once applied.
        reply: oneshot::Sender<()>,
    },
    /// Report the shard's counters.
    Stats {
        /// Where the counters go.
        reply: oneshot::Sender<ShardStats>,
    },
    /// Take over a connection whose client asked for this shard at HELLO.
    Adopt(Handoff),
}

/// A connection moving to another worker (see the module comment).
pub struct Handoff {
    /// The socket, detached from the old worker's reactor.
    pub stream: std::net::TcpStream,
    /// Bytes read after the HELLO that the old worker did not process.
    pub unread: BytesMut,
    /// The HELLO's opaque, to answer from the new worker.
    pub hello_opaque: u32,
    /// Keeps the connection counted while it moves.
    pub guard: ConnectionGuard,
}

/// Senders to every shard's inbox, shared by all workers.
#[derive(Clone)]
pub struct Router {
    inboxes: Arc<[mpsc::UnboundedSender<ShardMessage>]>,
}

impl Router {
    /// A router over the given inboxes, indexed by shard.
    pub fn new(inboxes: Vec<mpsc::UnboundedSender<ShardMessage>>) -> Router {
        Router {
            inboxes: inboxes.into(),
        }
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

    /// Sends `message` to `shard`. Returns false if the shard has stopped,
    /// which happens only during shutdown.
    pub fn send(&self, shard: u16, message: ShardMessage) -> bool {
        self.inboxes[usize::from(shard)].send(message).is_ok()
    }
}
