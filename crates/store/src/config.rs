//! The limits one shard runs under, with named defaults.

/// Default [`ShardConfig::memory_limit`]: 64 MiB per shard.
pub const DEFAULT_MEMORY_LIMIT: usize = 64 * 1024 * 1024;

/// Default [`ShardConfig::tag_retention`]: how many invalidated tags that no
/// entry carries a shard remembers before it starts folding the oldest into
/// its floor.
pub const DEFAULT_TAG_RETENTION: usize = 65_536;

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
    /// are kept. Beyond this, [`Shard::sweep`](crate::Shard::sweep) reclaims
    /// the oldest first, raising the floor. A larger value makes fenced sets
    /// less likely to be refused spuriously after reclamation; a smaller one
    /// bounds memory spent on tags of data this shard does not hold.
    pub tag_retention: usize,
}

impl Default for ShardConfig {
    fn default() -> Self {
        ShardConfig {
            memory_limit: DEFAULT_MEMORY_LIMIT,
            tag_retention: DEFAULT_TAG_RETENTION,
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
}
