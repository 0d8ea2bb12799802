//! The validated configuration of a run, built from the command line in
//! [`crate::args`] and read by everything else.

use std::time::Duration;

use crate::stampede::Stampede;
use crate::workload::{OpMix, ValueSize};
use crate::zipf::Distribution;

/// The server protocols the bench speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// tagcached's binary protocol (protocol.md).
    Tagcached,
    /// memcached's meta text protocol (`mg`, `ms`, `md`).
    Memcached,
    /// Redis RESP (`GET`, `SET`, `DEL`).
    Redis,
}

impl Protocol {
    /// The protocol's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tagcached => "tagcached",
            Protocol::Memcached => "memcached",
            Protocol::Redis => "redis",
        }
    }
}

/// When measuring stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After this long (requests in flight then still complete).
    After(Duration),
    /// After this many requests in all, invalidations not counted.
    Requests(u64),
}

/// Everything a run needs, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// `host:port` as given.
    pub server: String,
    /// Which protocol to speak.
    pub protocol: Protocol,
    /// Connections for the measured workload.
    pub connections: usize,
    /// Most requests in flight per connection.
    pub pipeline: usize,
    /// Open-loop rate over all connections, requests per second; `None` for
    /// closed loop.
    pub rate: Option<f64>,
    /// When to stop.
    pub stop: Stop,
    /// Generator threads, each with its own runtime and connections; at most
    /// `connections`.
    pub threads: usize,
    /// Key space size.
    pub keys: u32,
    /// Bytes per key.
    pub key_size: usize,
    /// Value lengths.
    pub value_size: ValueSize,
    /// Shares of get, set and delete.
    pub mix: OpMix,
    /// How keys and tags are drawn.
    pub distribution: Distribution,
    /// Tags per SET (tagcached only).
    pub tags_per_item: u32,
    /// Tag space size.
    pub tag_space: u32,
    /// INVALIDATE_TAGS per second on a connection of their own (tagcached
    /// only); 0 for none.
    pub invalidate_rate: f64,
    /// TTL of every SET, seconds; 0 for none.
    pub ttl: u32,
    /// Store every key before measuring.
    pub prefill: bool,
    /// Seed of every random choice.
    pub seed: u64,
    /// Print the result as JSON on stdout.
    pub json: bool,
    /// Send each key on a connection of its shard (tagcached only).
    pub shard_aware: bool,
    /// Bound on connecting and on waiting for any reply.
    pub timeout: Duration,
    /// The token every tagcached connection sends with AUTH when the server
    /// requires authentication.
    pub auth_token: Option<bytes::Bytes>,
    /// No progress line on stderr.
    pub quiet: bool,
    /// A process whose CPU time over the measured phase is reported too
    /// (`--server-pid`).
    pub server_pid: Option<u32>,
    /// Open loop: spin rather than sleep through sub-millisecond waits.
    pub spin: bool,
    /// Run the stampede workload (`--stampede`) instead of the op mix.
    pub stampede: Option<Stampede>,
    /// Connect with TLS (`--tls`, `--tls-ca`).
    pub tls: Option<crate::stream::TlsClient>,
}

impl Config {
    /// Whether tags and invalidations are sent (only tagcached has them).
    pub fn uses_tags(&self) -> bool {
        self.protocol == Protocol::Tagcached
    }

    /// Tags per SET as sent.
    pub fn effective_tags_per_item(&self) -> u32 {
        if self.uses_tags() {
            self.tags_per_item
        } else {
            0
        }
    }

    /// Invalidations per second as sent.
    pub fn effective_invalidate_rate(&self) -> f64 {
        if self.uses_tags() {
            self.invalidate_rate
        } else {
            0.0
        }
    }
}
