//! One stored value and what it costs against the memory budget.

use std::mem::size_of;

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
///
/// The tag ids and the value share one allocation (`data`: the ids first,
/// 4 native-endian bytes each, then the value), so an entry costs one heap
/// block, sized exactly, whatever its tags. A `Bytes` value would cost a
/// 32-byte handle here plus a shared header allocated on the first read, and
/// a boxed id slice another block; the slot stays at 72 bytes. The key's hash
/// is not kept either: the index recomputes it from the key when it grows.
pub(crate) struct Entry {
    pub(crate) key: StoredKey,
    data: Box<[u8]>,
    pub(crate) cas: u64,
    /// The invalidation sequence this value is known to be current as of;
    /// see the module comment of `tags`.
    pub(crate) stored_seq: u64,
    /// Monotonic milliseconds at which the entry expires, or [`NEVER`].
    pub(crate) expire_at_ms: u64,
    pub(crate) client_flags: u32,
    tag_count: u32,
}

impl Entry {
    /// An entry for `key` holding `value` and `tags` (sorted and unique).
    pub(crate) fn new(key: &[u8], value: &[u8], tags: &[TagId]) -> Self {
        Entry {
            key: StoredKey::new(key),
            data: pack(value, tags),
            cas: 0,
            stored_seq: 0,
            expire_at_ms: NEVER,
            client_flags: 0,
            tag_count: u32::try_from(tags.len()).expect("fewer than 2^32 tags"),
        }
    }

    pub(crate) fn is_expired(&self, now_ms: u64) -> bool {
        now_ms >= self.expire_at_ms
    }

    /// The stored value.
    #[inline]
    pub(crate) fn value(&self) -> &[u8] {
        &self.data[self.tag_count as usize * size_of::<TagId>()..]
    }

    /// The interned tag ids, ascending.
    #[inline]
    pub(crate) fn tag_ids(&self) -> impl ExactSizeIterator<Item = TagId> + Clone + '_ {
        self.data[..self.tag_count as usize * size_of::<TagId>()]
            .chunks_exact(size_of::<TagId>())
            .map(|id| TagId::from_ne_bytes(id.try_into().expect("4-byte chunk")))
    }

    /// Replaces the value and the tags; returns the old data, whose ids the
    /// caller releases through [`Entry::ids_of`].
    pub(crate) fn replace(&mut self, value: &[u8], tags: &[TagId]) -> (Box<[u8]>, usize) {
        let old = std::mem::replace(&mut self.data, pack(value, tags));
        let old_count = std::mem::replace(
            &mut self.tag_count,
            u32::try_from(tags.len()).expect("fewer than 2^32 tags"),
        );
        (old, old_count as usize)
    }

    /// The first `count` tag ids of data returned by [`Entry::replace`].
    pub(crate) fn ids_of(data: &[u8], count: usize) -> impl Iterator<Item = TagId> + '_ {
        data[..count * size_of::<TagId>()]
            .chunks_exact(size_of::<TagId>())
            .map(|id| TagId::from_ne_bytes(id.try_into().expect("4-byte chunk")))
    }

    /// What this entry is charged against the budget.
    pub(crate) fn footprint(&self) -> usize {
        footprint(self.key.len(), self.value().len(), self.tag_count as usize)
    }
}

fn pack(value: &[u8], tags: &[TagId]) -> Box<[u8]> {
    let mut data = Vec::with_capacity(std::mem::size_of_val(tags) + value.len());
    for id in tags {
        data.extend_from_slice(&id.to_ne_bytes());
    }
    data.extend_from_slice(value);
    data.into_boxed_slice()
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

/// Compile-time guard that slot ids stay small and the slot stays 72 bytes.
const _: () = assert!(size_of::<SlotId>() == 4);
const _: () = assert!(size_of::<Option<Entry>>() == 72);

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
    fn value_and_tags_share_one_allocation_and_round_trip() {
        let mut entry = Entry::new(b"k", b"value", &[3, 9, 1 << 20]);
        assert_eq!(entry.value(), b"value");
        assert_eq!(entry.tag_ids().collect::<Vec<_>>(), [3, 9, 1 << 20]);
        assert_eq!(entry.footprint(), footprint(1, 5, 3));
        let (old, count) = entry.replace(b"", &[]);
        assert_eq!(
            Entry::ids_of(&old, count).collect::<Vec<_>>(),
            [3, 9, 1 << 20]
        );
        assert_eq!(entry.value(), b"");
        assert_eq!(entry.tag_ids().len(), 0);
    }

    #[test]
    fn footprint_counts_key_value_tags_and_overhead() {
        assert_eq!(footprint(3, 10, 2), ENTRY_OVERHEAD + 3 + 10 + 8);
    }
}
