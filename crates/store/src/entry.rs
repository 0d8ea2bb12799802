//! One stored value and what it costs against the memory budget.

use std::mem::{size_of, size_of_val};

use crate::eviction::PER_ENTRY_EVICTION_BYTES;
use crate::key::StoredKey;
use crate::table::{SlotId, PER_ENTRY_INDEX_BYTES};
use crate::tags::TagId;

/// Bytes charged per entry on top of its key, value and tag ids: the entry's
/// slot in the slab, its slot in the hash index (id plus control byte), and
/// its eviction-list link. Heap slack of the growable arrays and allocator
/// headers are not charged. The key is charged its length whether it sits in
/// the slot or in the data block, so an entry's charge depends only on its
/// lengths, not on which side of the inline limit its key falls.
pub const ENTRY_OVERHEAD: usize =
    size_of::<Option<Entry>>() + PER_ENTRY_INDEX_BYTES + PER_ENTRY_EVICTION_BYTES;

/// `expire_at_ms` of an entry with no TTL.
pub(crate) const NEVER: u64 = u64::MAX;

/// The bit of [`Entry::layout`] that says the data block starts with a
/// stale point; the other bits count the tag ids.
const HAS_STALE_AT: u32 = 1 << 31;

/// Bytes a stale point takes at the start of the data block.
const STALE_AT_BYTES: usize = size_of::<u64>();

/// One key's value and everything needed to decide whether it may be served.
///
/// The tag ids, a key too long for the slot, and the value share one
/// allocation (`data`: the ids first, 4 native-endian bytes each, then such
/// a key, then the value), so an entry costs one heap block, sized exactly,
/// whatever its tags and key. An entry stored with a stale window has its
/// stale point (8 native-endian bytes, monotonic ms) before the ids: few
/// entries have one, and a field for it would grow every slot by 8 bytes. A `Bytes` value would cost a 32-byte handle
/// here plus a shared header allocated on the first read, a boxed id slice
/// another block, and a boxed key another block and another cache miss on
/// every lookup, which compares the key before reading the value (see
/// `key.rs`); the slot stays at 72 bytes. The ids come first so that they,
/// and the old ids a SET releases, are found without the key's length. The
/// key's hash is not kept either: the index recomputes it from the key when
/// it grows.
pub(crate) struct Entry {
    /// The key if short, else its length; see [`Entry::key`].
    key: StoredKey,
    data: Box<[u8]>,
    pub(crate) cas: u64,
    /// The invalidation sequence this value is known to be current as of;
    /// see the module comment of `tags`.
    pub(crate) stored_seq: u64,
    /// Monotonic milliseconds at which the entry expires, or [`NEVER`].
    pub(crate) expire_at_ms: u64,
    pub(crate) client_flags: u32,
    /// The number of tag ids, and [`HAS_STALE_AT`].
    layout: u32,
}

/// What [`Entry::replace`] hands back: the old data block and its layout,
/// whose tag ids the caller releases through [`Entry::ids_of`].
pub(crate) struct OldData {
    data: Box<[u8]>,
    layout: u32,
}

impl Entry {
    /// An entry for `key` holding `value` and `tags` (sorted and unique,
    /// fewer than 2^31), stale from `stale_at_ms` (monotonic) if given.
    pub(crate) fn new(key: &[u8], value: &[u8], tags: &[TagId], stale_at_ms: Option<u64>) -> Self {
        let stored = StoredKey::new(key);
        // All of `key` if it goes in the data block, else nothing.
        let key_in_data = &key[..stored.len_in_data()];
        Entry {
            data: pack(stale_at_ms, tags, key_in_data, value),
            key: stored,
            cas: 0,
            stored_seq: 0,
            expire_at_ms: NEVER,
            client_flags: 0,
            layout: layout(tags, stale_at_ms),
        }
    }

    pub(crate) fn is_expired(&self, now_ms: u64) -> bool {
        now_ms >= self.expire_at_ms
    }

    /// When the entry turns stale by its own stale window, if it has one.
    #[inline]
    pub(crate) fn stale_at_ms(&self) -> Option<u64> {
        (self.layout & HAS_STALE_AT != 0).then(|| {
            let bytes = self.data[..STALE_AT_BYTES]
                .try_into()
                .expect("8-byte stale point");
            u64::from_ne_bytes(bytes)
        })
    }

    fn tag_count(&self) -> usize {
        (self.layout & !HAS_STALE_AT) as usize
    }

    /// Where the tag ids start in the data block.
    fn ids_start(&self) -> usize {
        ids_start(self.layout)
    }

    /// Reads the first and last bytes of the data block, so that its lines
    /// are on their way before a lookup needs them: the first holds the
    /// tag ids and a long key, which a lookup reads first, and with the
    /// last a value of up to two lines (the common small one) is all
    /// asked for; the copy of a longer one streams, which the hardware
    /// prefetcher follows.
    pub(crate) fn preload_data(&self) {
        std::hint::black_box((self.data.first().copied(), self.data.last().copied()));
    }

    /// The key, from the slot or from the data block.
    #[inline]
    pub(crate) fn key(&self) -> &[u8] {
        match self.key.inline() {
            Some(key) => key,
            None => self.key_in_data(),
        }
    }

    /// The key's bytes in the data block: all of it if it is long, else
    /// none.
    #[inline]
    fn key_in_data(&self) -> &[u8] {
        let start = self.ids_start() + self.tag_bytes();
        &self.data[start..start + self.key.len_in_data()]
    }

    /// Whether the key is held in the data block rather than the slot.
    pub(crate) fn key_is_in_data(&self) -> bool {
        self.key.inline().is_none()
    }

    /// The stored value.
    #[inline]
    pub(crate) fn value(&self) -> &[u8] {
        &self.data[self.ids_start() + self.tag_bytes() + self.key.len_in_data()..]
    }

    /// The interned tag ids, ascending.
    #[inline]
    pub(crate) fn tag_ids(&self) -> impl ExactSizeIterator<Item = TagId> + Clone + '_ {
        self.data[self.ids_start()..self.ids_start() + self.tag_bytes()]
            .chunks_exact(size_of::<TagId>())
            .map(|id| TagId::from_ne_bytes(id.try_into().expect("4-byte chunk")))
    }

    /// Replaces the value, the tags and the stale point, keeping the key;
    /// returns the old data, whose ids the caller releases through
    /// [`Entry::ids_of`]. A key held in the data block is copied into the
    /// new block.
    pub(crate) fn replace(
        &mut self,
        value: &[u8],
        tags: &[TagId],
        stale_at_ms: Option<u64>,
    ) -> OldData {
        let data = pack(stale_at_ms, tags, self.key_in_data(), value);
        OldData {
            data: std::mem::replace(&mut self.data, data),
            layout: std::mem::replace(&mut self.layout, layout(tags, stale_at_ms)),
        }
    }

    /// The tag ids of data returned by [`Entry::replace`] (they sit at the
    /// same place whatever the key's form).
    pub(crate) fn ids_of(old: &OldData) -> impl Iterator<Item = TagId> + '_ {
        let start = ids_start(old.layout);
        let count = (old.layout & !HAS_STALE_AT) as usize;
        old.data[start..start + count * size_of::<TagId>()]
            .chunks_exact(size_of::<TagId>())
            .map(|id| TagId::from_ne_bytes(id.try_into().expect("4-byte chunk")))
    }

    /// What this entry is charged against the budget.
    pub(crate) fn footprint(&self) -> usize {
        footprint(
            self.key.len(),
            self.value().len(),
            self.tag_count(),
            self.layout & HAS_STALE_AT != 0,
        )
    }

    fn tag_bytes(&self) -> usize {
        self.tag_count() * size_of::<TagId>()
    }
}

fn layout(tags: &[TagId], stale_at_ms: Option<u64>) -> u32 {
    let count = u32::try_from(tags.len())
        .ok()
        .filter(|count| count & HAS_STALE_AT == 0)
        .expect("fewer than 2^31 tags");
    if stale_at_ms.is_some() {
        count | HAS_STALE_AT
    } else {
        count
    }
}

fn ids_start(layout: u32) -> usize {
    if layout & HAS_STALE_AT != 0 {
        STALE_AT_BYTES
    } else {
        0
    }
}

/// A data block: the stale point if any, `tags`, then `key` (empty for a
/// key held in the slot), then `value`, in one exactly sized allocation.
fn pack(stale_at_ms: Option<u64>, tags: &[TagId], key: &[u8], value: &[u8]) -> Box<[u8]> {
    let stale_bytes = if stale_at_ms.is_some() {
        STALE_AT_BYTES
    } else {
        0
    };
    let mut data = Vec::with_capacity(stale_bytes + size_of_val(tags) + key.len() + value.len());
    if let Some(at) = stale_at_ms {
        data.extend_from_slice(&at.to_ne_bytes());
    }
    for id in tags {
        data.extend_from_slice(&id.to_ne_bytes());
    }
    data.extend_from_slice(key);
    data.extend_from_slice(value);
    data.into_boxed_slice()
}

/// What an entry with these lengths, and a stale point if `stale_at`, is
/// charged against the budget, whichever form its key takes.
pub(crate) fn footprint(
    key_len: usize,
    value_len: usize,
    tag_count: usize,
    stale_at: bool,
) -> usize {
    let stale_bytes = if stale_at { STALE_AT_BYTES } else { 0 };
    ENTRY_OVERHEAD
        .saturating_add(key_len)
        .saturating_add(value_len)
        .saturating_add(tag_count.saturating_mul(size_of::<TagId>()))
        .saturating_add(stale_bytes)
}

/// The instant an entry stored at `now_ms` with a stale window of
/// `stale_after_secs` turns stale; `0` means never.
pub(crate) fn stale_at(now_ms: u64, stale_after_secs: u32) -> Option<u64> {
    (stale_after_secs != 0).then(|| now_ms.saturating_add(u64::from(stale_after_secs) * 1000))
}

/// The expiry instant for a TTL given in seconds, `0` meaning never.
pub(crate) fn expire_at(now_ms: u64, ttl_secs: u32) -> u64 {
    if ttl_secs == 0 {
        NEVER
    } else {
        now_ms.saturating_add(u64::from(ttl_secs) * 1000)
    }
}

/// Compile-time guard that slot ids stay small and the slot stays 72 bytes:
/// the key's two forms share 24 bytes (`key.rs`), `data` is a 16-byte boxed
/// slice, and `Option` takes its `None` from a niche (the box's non-null
/// pointer or the key form's spare tag values), not an extra word.
const _: () = assert!(size_of::<SlotId>() == 4);
const _: () = assert!(size_of::<Option<Entry>>() == 72);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::INLINE;

    #[test]
    fn ttl_zero_never_expires() {
        assert_eq!(expire_at(5, 0), NEVER);
        assert_eq!(expire_at(5, 2), 2005);
        assert_eq!(expire_at(u64::MAX - 1, 2), u64::MAX);
    }

    #[test]
    fn value_and_tags_share_one_allocation_and_round_trip() {
        let mut entry = Entry::new(b"k", b"value", &[3, 9, 1 << 20], None);
        assert_eq!(entry.value(), b"value");
        assert_eq!(entry.tag_ids().collect::<Vec<_>>(), [3, 9, 1 << 20]);
        assert_eq!(entry.footprint(), footprint(1, 5, 3, false));
        assert_eq!(entry.stale_at_ms(), None);
        let old = entry.replace(b"", &[], None);
        assert_eq!(Entry::ids_of(&old).collect::<Vec<_>>(), [3, 9, 1 << 20]);
        assert_eq!(entry.value(), b"");
        assert_eq!(entry.tag_ids().len(), 0);
    }

    #[test]
    fn a_stale_point_rides_in_the_data_block_and_is_charged() {
        for key in [&b"k"[..], &[b'x'; 40][..]] {
            let mut entry = Entry::new(key, b"value", &[4, 5], Some(1234));
            assert_eq!(entry.stale_at_ms(), Some(1234));
            assert_eq!(entry.key(), key);
            assert_eq!(entry.value(), b"value");
            assert_eq!(entry.tag_ids().collect::<Vec<_>>(), [4, 5]);
            assert_eq!(entry.footprint(), footprint(key.len(), 5, 2, true));
            assert_eq!(entry.footprint(), footprint(key.len(), 5, 2, false) + 8);
            let old = entry.replace(b"new", &[6], None);
            assert_eq!(Entry::ids_of(&old).collect::<Vec<_>>(), [4, 5]);
            assert_eq!(entry.stale_at_ms(), None);
            assert_eq!((entry.key(), entry.value()), (key, &b"new"[..]));
            let old = entry.replace(b"v", &[], Some(9));
            assert_eq!(Entry::ids_of(&old).collect::<Vec<_>>(), [6]);
            assert_eq!(entry.stale_at_ms(), Some(9));
            assert_eq!((entry.key(), entry.value()), (key, &b"v"[..]));
        }
        assert_eq!(stale_at(1_000, 0), None);
        assert_eq!(stale_at(1_000, 2), Some(3_000));
    }

    #[test]
    fn footprint_counts_key_value_tags_and_overhead() {
        assert_eq!(footprint(3, 10, 2, false), ENTRY_OVERHEAD + 3 + 10 + 8);
    }

    fn key_of_len(len: usize) -> Vec<u8> {
        (0..len).map(|i| b'a' + (i % 26) as u8).collect()
    }

    #[test]
    fn both_key_forms_round_trip_at_every_length_up_to_250() {
        let tag_sets: [&[TagId]; 2] = [&[], &[3, 9, 1 << 20]];
        for len in 0..=250 {
            let key = key_of_len(len);
            for tags in tag_sets {
                for value in [&b""[..], b"value"] {
                    let entry = Entry::new(&key, value, tags, None);
                    assert_eq!(entry.key(), key.as_slice(), "len {len}");
                    assert_eq!(entry.value(), value, "len {len}");
                    assert_eq!(entry.tag_ids().collect::<Vec<_>>(), tags);
                    assert_eq!(entry.key_is_in_data(), len > INLINE);
                    // One exactly sized block holds the ids, a long key and
                    // the value; a short key adds nothing to it.
                    let key_bytes = if len > INLINE { len } else { 0 };
                    assert_eq!(entry.data.len(), 4 * tags.len() + key_bytes + value.len());
                    assert_eq!(
                        entry.footprint(),
                        ENTRY_OVERHEAD + len + value.len() + 4 * tags.len()
                    );
                }
            }
        }
    }

    #[test]
    fn replace_keeps_a_key_of_either_form() {
        for len in [0, INLINE, INLINE + 1, 32, 250] {
            let key = key_of_len(len);
            let mut entry = Entry::new(&key, b"old", &[1, 2], None);
            let old = entry.replace(b"a longer new value", &[7], None);
            assert_eq!(Entry::ids_of(&old).collect::<Vec<_>>(), [1, 2]);
            assert_eq!(entry.key(), key.as_slice(), "len {len}");
            assert_eq!(entry.value(), b"a longer new value");
            assert_eq!(entry.tag_ids().collect::<Vec<_>>(), [7]);
            assert_eq!(entry.footprint(), footprint(len, 18, 1, false));

            // More tags push a long key further into the block.
            let old = entry.replace(b"", &[4, 5, 6], None);
            assert_eq!(Entry::ids_of(&old).collect::<Vec<_>>(), [7]);
            assert_eq!(entry.key(), key.as_slice(), "len {len}");
            assert_eq!(entry.value(), b"");
            assert_eq!(entry.tag_ids().collect::<Vec<_>>(), [4, 5, 6]);
            assert_eq!(entry.footprint(), footprint(len, 0, 3, false));
            assert_eq!(entry.key_is_in_data(), len > INLINE);
        }
    }
}
