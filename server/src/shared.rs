//! State every worker shares: configuration, the invalidation sequence, the
//! server's clock and counters, and the shutdown signal. Nothing here is
//! touched per request except the sequence, which GET and SET read and only
//! invalidations write.

use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::sequence::SequenceCounter;
use crate::tls::ServerTls;

/// Shared by all workers behind an `Arc`.
pub struct Shared {
    /// The validated configuration.
    pub config: Config,
    /// The global invalidation sequence.
    pub sequence: SequenceCounter,
    /// The sequence when the server started: every shard's floor at boot.
    /// Read once, before any worker runs: a worker that read the counter
    /// when its thread started could read it after another worker had
    /// numbered an invalidation, and would then not record that
    /// invalidation at all (it is at or below its floor), losing a soft
    /// window that later ones must not outlive (found by
    /// `a_later_longer_window_does_not_outlive_the_open_one` in
    /// tests/tests/soft_invalidation.rs, one run in twenty).
    pub boot_seq: u64,
    /// Server-wide counters.
    pub counters: Counters,
    /// When the server started: the zero of the store's clock.
    pub started: Instant,
    /// The wall clock at `started`, Unix milliseconds: what the store's
    /// clock is converted by for clients (TAG_STATUS).
    pub started_unix_ms: u64,
    /// Cancelled to begin a graceful shutdown.
    pub shutdown: CancellationToken,
    /// Every connection task on every worker, so shutdown can wait for them.
    pub connections: TaskTracker,
    /// The tokens in force, if the server requires authentication; read
    /// only by AUTH, replaced by a reload.
    pub auth: Option<Authenticator>,
    /// The TLS configuration when the port serves TLS (loaded from
    /// `config.tls` by [`crate::Server::start`]).
    pub tls: Option<ServerTls>,
}

impl Shared {
    /// Shared state for a server starting now.
    pub fn new(config: Config, sequence: SequenceCounter, shutdown: CancellationToken) -> Shared {
        let started_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        Shared {
            auth: config.auth.as_ref().map(Authenticator::new),
            config,
            boot_seq: sequence.current(),
            sequence,
            counters: Counters::default(),
            started: Instant::now(),
            started_unix_ms,
            shutdown,
            connections: TaskTracker::new(),
            tls: None,
        }
    }

    /// A time of the store's clock as Unix milliseconds, by the wall clock
    /// at start: a wall clock stepped since does not move it.
    pub fn unix_ms(&self, store_ms: u64) -> u64 {
        self.started_unix_ms.saturating_add(store_ms)
    }

    /// Milliseconds since the server started: the store's clock.
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// The store's clock at `instant`, for a caller that has read the
    /// clock anyway.
    pub fn ms_at(&self, instant: Instant) -> u64 {
        instant.saturating_duration_since(self.started).as_millis() as u64
    }

    /// The number of shards (one per worker thread).
    pub fn shard_count(&self) -> u16 {
        // `Config` caps threads at 1024.
        self.config.threads as u16
    }
}

/// Counters kept outside the shards.
#[derive(Debug, Default)]
pub struct Counters {
    /// Open connections.
    pub curr_connections: AtomicUsize,
    /// Connections accepted since start.
    pub total_connections: AtomicU64,
    /// Connections refused for being over `max_connections`.
    pub rejected_connections: AtomicU64,
    /// INVALIDATE_TAGS requests served.
    pub invalidations: AtomicU64,
    /// INVALIDATE_TAGS and FLUSH_ALL requests served that were soft.
    pub soft_invalidations: AtomicU64,
    /// FLUSH_ALL requests served.
    pub flushes: AtomicU64,
    /// INVALIDATE_TAGS requests served that were soft (`/metrics` splits
    /// invalidations and flushes by mode).
    pub soft_tag_invalidations: AtomicU64,
    /// FLUSH_ALL requests served that were soft.
    pub soft_flushes: AtomicU64,
    /// Bytes of request frames partly received, over all connections (see
    /// `admission::PartialFrameShare`).
    pub partial_frame_bytes: AtomicUsize,
    /// Connections refused for growing a frame past `partial_frame_memory`.
    pub partial_frame_refusals: AtomicU64,
    /// Connections closed for sending nothing for `idle_timeout`.
    pub idle_kicks: AtomicU64,
    /// Connections closed for a frame that did not arrive whole within
    /// `frame_timeout`.
    pub frame_timeouts: AtomicU64,
    /// AUTH requests answered AUTH_FAILED.
    pub auth_failures: AtomicU64,
    /// Requests answered AUTH_REQUIRED.
    pub auth_refusals: AtomicU64,
    /// Connections closed for not authenticating within the auth timeout.
    pub auth_timeouts: AtomicU64,
}
