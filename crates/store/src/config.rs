//! The limits one shard runs under, with named defaults.

/// Default [`ShardConfig::memory_limit`]: 64 MiB per shard.
pub const DEFAULT_MEMORY_LIMIT: usize = 64 * 1024 * 1024;

/// Default [`ShardConfig::tag_retention`]: how many invalidated tags that no
/// entry carries a shard remembers before it starts folding the oldest into
/// its floor.
pub const DEFAULT_TAG_RETENTION: usize = 65_536;

/// Invalidated tags that no entry carries may hold at most
/// `1 / UNCARRIED_TAG_MEMORY_DIVISOR` of a shard's
/// [`memory_limit`](ShardConfig::memory_limit); see
/// [`ShardConfig::uncarried_tag_limit`].
pub const UNCARRIED_TAG_MEMORY_DIVISOR: usize = 16;

/// Default [`ShardConfig::lease_ms`]: how long a refresh lease is held
/// (protocol.md §8.4), as memcached's and Facebook's leases.
pub const DEFAULT_LEASE_MS: u64 = 10_000;

/// Lease records may hold at most `1 / LEASE_MEMORY_DIVISOR` of a shard's
/// [`memory_limit`](ShardConfig::memory_limit); past it the oldest go.
pub const LEASE_MEMORY_DIVISOR: usize = 16;

/// The limits one [`Shard`](crate::Shard) runs under.
///
/// Built from [`Default`] and the `with_*` methods; the server derives one per
/// shard from its own configuration (e.g. the global memory limit divided by
/// the shard count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardConfig {
    /// Hard budget, in bytes, for everything the shard stores: keys, values,
    /// interned tag names, and the fixed per-entry and per-tag overheads
    /// ([`ENTRY_OVERHEAD`](crate::ENTRY_OVERHEAD),
    /// [`TAG_OVERHEAD`](crate::TAG_OVERHEAD)). `bytes_used()` never exceeds it
    /// once an operation returns.
    pub memory_limit: usize,
    /// How many unreferenced tags with an invalidation newer than the floor
    /// are kept, memory permitting (see
    /// [`uncarried_tag_limit`](ShardConfig::uncarried_tag_limit)). Beyond
    /// this, [`Shard::sweep`](crate::Shard::sweep) reclaims the oldest
    /// first, raising the floor. A larger value makes fenced sets
    /// less likely to be refused spuriously after reclamation; a smaller one
    /// bounds memory spent on tags of data this shard does not hold.
    pub tag_retention: usize,
    /// How long a refresh lease is held, in milliseconds: meanwhile no other
    /// reader is granted one. Its record, and so its token, lives twice as
    /// long.
    pub lease_ms: u64,
}

impl Default for ShardConfig {
    fn default() -> Self {
        ShardConfig {
            memory_limit: DEFAULT_MEMORY_LIMIT,
            tag_retention: DEFAULT_TAG_RETENTION,
            lease_ms: DEFAULT_LEASE_MS,
        }
    }
}

impl ShardConfig {
    /// Sets [`ShardConfig::memory_limit`].
    #[must_use]
    pub fn with_memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Sets [`ShardConfig::tag_retention`].
    #[must_use]
    pub fn with_tag_retention(mut self, tags: usize) -> Self {
        self.tag_retention = tags;
        self
    }

    /// Sets [`ShardConfig::lease_ms`].
    #[must_use]
    pub fn with_lease_ms(mut self, lease_ms: u64) -> Self {
        self.lease_ms = lease_ms;
        self
    }

    /// The bytes lease records may hold: a sixteenth of
    /// [`memory_limit`](ShardConfig::memory_limit). A lease is granted per
    /// key read, so without a cap a client reading many missing keys with
    /// leases could crowd out entries; with it, the oldest leases go first,
    /// and their holders' SETs are refused (LEASE_LOST) rather than data
    /// being evicted.
    pub fn lease_limit(&self) -> usize {
        self.memory_limit / LEASE_MEMORY_DIVISOR
    }

    /// The bytes that invalidated tags no entry carries may hold: a
    /// sixteenth of [`memory_limit`](ShardConfig::memory_limit). Past it the
    /// oldest are forgotten at once, and a SET that needs room forgets them
    /// before it evicts a live entry, so they never crowd entries out.
    ///
    /// Such tags serve fence checks only, and only the recent ones matter:
    /// a fence is refused if a tag may have been invalidated after it, so
    /// what must be remembered is what was invalidated between a miss and
    /// its SET. A sixteenth of a default shard (1 GiB over 8 threads: 8 MiB)
    /// holds the [`tag_retention`](ShardConfig::tag_retention) of 65,536
    /// tags of ordinary length (a few dozen bytes plus
    /// [`TAG_OVERHEAD`](crate::TAG_OVERHEAD)), so with such tags retention
    /// binds first; the cap bites when tags are long, where retention alone
    /// (65,536 tags of up to 1 KiB) could take more than a whole shard.
    pub fn uncarried_tag_limit(&self) -> usize {
        self.memory_limit / UNCARRIED_TAG_MEMORY_DIVISOR
    }
}
