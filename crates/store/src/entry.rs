//! One stored value and what it costs against the memory budget.

use std::mem::size_of;

use bytes::Bytes;

use crate::eviction::PER_ENTRY_EVICTION_BYTES;
use crate::key::StoredKey;
use crate::table::{SlotId, PER_ENTRY_INDEX_BYTES};
use crate::tags::TagId;

/// Bytes charged per entry on top of its key, value and tag ids: the entry's
/// slot in the slab, its slot in the hash index (id plus control byte), and
/// its eviction-list link. Heap slack of the growable arrays and allocator
/// headers are not charged.
pub const ENTRY_OVERHEAD: usize =
    size_of::<Option<Entry>>() + PER_ENTRY_INDEX_BYTES + PER_ENTRY_EVICTION_BYTES;

/// `expire_at_ms` of an entry with no TTL.
pub(crate) const NEVER: u64 = u64::MAX;

/// One key's value and everything needed to decide whether it may be served.
pub(crate) struct Entry {
    pub(crate) key: StoredKey,
    /// Charged at `len()`: the caller of `set` guarantees the `Bytes` does not
    /// pin a larger buffer (see `SetArgs::value`).
    pub(crate) value: Bytes,
    /// Interned tag ids, sorted and unique. Each holds one reference on its
    /// tag in the shard's `TagTable` for as long as the entry exists.
    pub(crate) tags: Box<[TagId]>,
    /// The key's hash, kept so the index can be rehashed and an entry removed
    /// without hashing the key again.
    pub(crate) hash: u64,
    pub(crate) cas: u64,
    /// The invalidation sequence this value is known to be current as of;
    /// see the module comment of `tags`.
    pub(crate) stored_seq: u64,
    /// Monotonic milliseconds at which the entry expires, or [`NEVER`].
    pub(crate) expire_at_ms: u64,
    pub(crate) client_flags: u32,
}

impl Entry {
    pub(crate) fn is_expired(&self, now_ms: u64) -> bool {
        now_ms >= self.expire_at_ms
    }

    /// What this entry is charged against the budget.
    pub(crate) fn footprint(&self) -> usize {
        footprint(self.key.len(), self.value.len(), self.tags.len())
    }
}

/// What an entry with these lengths is charged against the budget.
pub(crate) fn footprint(key_len: usize, value_len: usize, tag_count: usize) -> usize {
    ENTRY_OVERHEAD
        .saturating_add(key_len)
        .saturating_add(value_len)
        .saturating_add(tag_count.saturating_mul(size_of::<TagId>()))
}

/// The expiry instant for a TTL given in seconds, `0` meaning never.
pub(crate) fn expire_at(now_ms: u64, ttl_secs: u32) -> u64 {
    if ttl_secs == 0 {
        NEVER
    } else {
        now_ms.saturating_add(u64::from(ttl_secs) * 1000)
    }
}

/// Compile-time guard that slot ids stay small.
const _: () = assert!(size_of::<SlotId>() == 4);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_zero_never_expires() {
        assert_eq!(expire_at(5, 0), NEVER);
        assert_eq!(expire_at(5, 2), 2005);
        assert_eq!(expire_at(u64::MAX - 1, 2), u64::MAX);
    }

    #[test]
    fn footprint_counts_key_value_tags_and_overhead() {
        assert_eq!(footprint(3, 10, 2), ENTRY_OVERHEAD + 3 + 10 + 8);
    }
}
