//! One shard of tagcached: a key-value table with memcached-style SET modes,
//! TTLs, a hard memory budget with SIEVE eviction, and tag invalidation.
//!
//! No async, no I/O, no protocol types, no clock: the server owns the shards,
//! passes each operation the current monotonic time (`now_ms`) and, for
//! writes and invalidations, a sequence number from its global invalidation
//! counter ([`InvalidationSeq`]). Tests advance both by hand.
//!
//! The guarantee that makes tags useful, and how sequence numbers, fences and
//! the floor provide it, is explained atop the [`tags`] module. In short: an
//! entry is invalid iff one of its tags was invalidated at a sequence later
//! than the entry's `stored_seq` (of invalidations applied before the entry
//! arrived, only those of tags the shard still remembers count);
//! invalidating is O(tags) and never walks entries; a fenced SET never makes
//! data readable that an invalidation after its fence meant to kill.
//!
//! Operations, all on [`Shard`] with `&mut self` but the first:
//! - [`Shard::prefetch`] (`&self`): starts loading what looking up some
//!   keys will read, so that a batch's cache misses overlap; changes
//!   nothing.
//! - [`Shard::get`] → [`Lookup`]: a [`Hit`] (value copied) or a
//!   [`MissReason`]. Dead entries found are removed on the spot.
//!   [`Shard::get_borrowed`] lends the value ([`HitRef`]) instead.
//! - [`Shard::read`] with [`ReadOptions`] → [`Read`]: the full read of
//!   protocol.md §6.3, with stale entries, refresh leases and request-scoped
//!   tags.
//! - [`Shard::set`] with [`SetArgs`] ([`SetMode`]: set, add, replace, cas;
//!   optional fence, lease token and stale window) → [`SetOutcome`].
//! - [`Shard::delete`], [`Shard::touch`], [`Shard::invalidate`] and
//!   [`Shard::invalidate_soft`], [`Shard::flush_all`] and
//!   [`Shard::flush_all_soft`], [`Shard::tag_status`].
//! - [`Shard::sweep`] → [`SweepReport`]: bounded background reclamation.
//! - [`Shard::stats`] → [`ShardStats`], summable across shards.
//!
//! Memory: [`Shard::bytes_used`] charges keys, values, 4 bytes per tag id and
//! [`ENTRY_OVERHEAD`] per entry (8 more for a stale window), plus interned
//! tag names and [`TAG_OVERHEAD`] per tag, plus leased keys and
//! [`LEASE_OVERHEAD`] per lease, and never exceeds [`ShardConfig::memory_limit`] after an
//! operation returns.
//!
//! Files: `table.rs` (key index and entry slab), `entry.rs`, `key.rs`, `tags.rs`,
//! `leases.rs`, `eviction.rs` (SIEVE), `shard.rs` with
//! `shard/{get,prefetch,set,sweep}.rs`, `stats.rs`, `config.rs`, `seq.rs`.

mod config;
mod entry;
mod eviction;
mod key;
mod leases;
mod seq;
mod shard;
mod stats;
mod table;
pub mod tags;

pub use config::{
    ShardConfig, DEFAULT_LEASE_MS, DEFAULT_MEMORY_LIMIT, DEFAULT_TAG_RETENTION,
    LEASE_MEMORY_DIVISOR, UNCARRIED_TAG_MEMORY_DIVISOR,
};
pub use entry::ENTRY_OVERHEAD;
pub use leases::LEASE_OVERHEAD;
pub use seq::InvalidationSeq;
pub use shard::{
    Hit, HitRef, Lookup, MissReason, Read, ReadOptions, SetArgs, SetMode, SetOutcome, Shard,
    SweepReport,
};
pub use stats::ShardStats;
pub use tags::{RequestTags, SoftWindow, TagStatus, TAG_OVERHEAD};
