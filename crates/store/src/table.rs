//! The key index: a slab of entries addressed by small slot ids, and a
//! hashbrown `HashTable` of those ids keyed by the entry's key.
//!
//! Storing `u32` ids rather than entries in the hash table keeps the table
//! dense (5 bytes a bucket) so probing stays in cache, and gives every entry a
//! stable address that the eviction list and the sweep cursor can hold.

use std::hint::black_box;
use std::mem::size_of;

use ahash::RandomState;
use hashbrown::HashTable;

use crate::entry::Entry;

/// Index of an entry in the slab; stable for the entry's lifetime.
pub(crate) type SlotId = u32;

/// Bytes one entry occupies in the hash index: its id and a control byte.
pub(crate) const PER_ENTRY_INDEX_BYTES: usize = size_of::<SlotId>() + 1;

/// Entries by key.
///
/// Callers hash a key once with [`EntryTable::hash_key`] and pass the hash to
/// every later call for that operation.
pub(crate) struct EntryTable {
    index: HashTable<SlotId>,
    slots: Vec<Option<Entry>>,
    free: Vec<SlotId>,
    hasher: RandomState,
}

impl EntryTable {
    pub(crate) fn new() -> Self {
        EntryTable {
            index: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            hasher: RandomState::new(),
        }
    }

    pub(crate) fn hash_key(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// The number of slab slots, occupied or free: the range of valid
    /// [`SlotId`]s for [`EntryTable::slot`].
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The slot of the entry under `key`. Comparing a long key reads the
    /// entry's data block, the one a hit reads its value from next; a short
    /// key is compared in the slot.
    pub(crate) fn find(&self, hash: u64, key: &[u8]) -> Option<SlotId> {
        let slots = &self.slots;
        self.index
            .find(hash, |&id| {
                slots[id as usize].as_ref().is_some_and(|e| e.key() == key)
            })
            .copied()
    }

    /// Reads the slot of each entry the index proposes for `hash`, so that
    /// its line is on its way before a lookup needs it (see
    /// `shard/prefetch.rs`).
    pub(crate) fn preload_slots(&self, hash: u64) {
        self.visit_candidates(hash, |entry| {
            black_box(entry.is_some());
        });
    }

    /// Reads the data block of each entry the index proposes for `hash`
    /// (see [`Entry::preload_data`]).
    pub(crate) fn preload_data(&self, hash: u64) {
        self.visit_candidates(hash, |entry| {
            if let Some(entry) = entry {
                entry.preload_data();
            }
        });
    }

    /// Shows `visit` the slot of each entry the index proposes for `hash`
    /// (its entry, if occupied), comparing no key.
    fn visit_candidates(&self, hash: u64, mut visit: impl FnMut(Option<&Entry>)) {
        let slots = &self.slots;
        let _ = self.index.find(hash, |&id| {
            visit(slots.get(id as usize).and_then(Option::as_ref));
            false
        });
    }

    /// The entry in `slot`, if the slot is occupied.
    pub(crate) fn slot(&self, slot: SlotId) -> Option<&Entry> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    /// The entry in `slot`. The caller guarantees the slot is occupied.
    pub(crate) fn get(&self, slot: SlotId) -> &Entry {
        self.slots[slot as usize]
            .as_ref()
            .expect("slot id of a live entry")
    }

    /// The entry in `slot`. The caller guarantees the slot is occupied.
    pub(crate) fn get_mut(&mut self, slot: SlotId) -> &mut Entry {
        self.slots[slot as usize]
            .as_mut()
            .expect("slot id of a live entry")
    }

    /// Stores `entry`. The caller guarantees no entry with the same key is
    /// present and that `hash` is `hash_key` of its key.
    pub(crate) fn insert(&mut self, hash: u64, entry: Entry) -> SlotId {
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(entry);
                id
            }
            None => {
                let id = SlotId::try_from(self.slots.len()).expect("fewer than 2^32 entries");
                self.slots.push(Some(entry));
                id
            }
        };
        // Entries keep no hash (8 bytes each): growing the index rehashes
        // the keys, which is rare and cheap next to the memory saved.
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index.insert_unique(hash, id, |&other| {
            slots[other as usize]
                .as_ref()
                .map_or(0, |entry| hasher.hash_one(entry.key()))
        });
        id
    }

    /// Removes and returns the entry in `slot`. The caller guarantees the
    /// slot is occupied.
    pub(crate) fn remove(&mut self, slot: SlotId) -> Entry {
        let entry = self.slots[slot as usize]
            .take()
            .expect("slot id of a live entry");
        let hash = self.hash_key(entry.key());
        match self.index.find_entry(hash, |&id| id == slot) {
            Ok(found) => {
                found.remove();
            }
            Err(_) => unreachable!("every occupied slot is indexed"),
        }
        self.free.push(slot);
        entry
    }

    /// Drops every entry. Allocated capacity is kept for reuse.
    pub(crate) fn clear(&mut self) {
        self.index.clear();
        self.slots.clear();
        self.free.clear();
    }

    /// Every occupied slot, in slab order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (SlotId, &Entry)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(id, slot)| slot.as_ref().map(|e| (id as SlotId, e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(table: &mut EntryTable, key: &[u8]) -> SlotId {
        table.insert(table.hash_key(key), Entry::new(key, b"v", &[], None))
    }

    #[test]
    fn insert_find_remove_reuses_slots() {
        let mut table = EntryTable::new();
        let a = insert(&mut table, b"a");
        let b = insert(&mut table, b"b");
        assert_ne!(a, b);
        assert_eq!(table.find(table.hash_key(b"a"), b"a"), Some(a));
        assert_eq!(table.remove(a).key(), b"a");
        assert_eq!(table.find(table.hash_key(b"a"), b"a"), None);
        assert_eq!(table.len(), 1);
        let c = insert(&mut table, b"c");
        assert_eq!(c, a, "freed slot is reused");
        assert_eq!(table.find(table.hash_key(b"b"), b"b"), Some(b));
    }

    #[test]
    fn long_and_short_keys_sharing_prefixes_are_told_apart() {
        let mut table = EntryTable::new();
        // Same lengths differing in the last byte, and prefixes of each
        // other, on both sides of the inline limit.
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for len in [1, 21, 22, 23, 24, 32, 250] {
            for last in [b'x', b'y'] {
                let mut key = vec![b'k'; len];
                key[len - 1] = last;
                keys.push(key);
            }
        }
        let slots: Vec<SlotId> = keys.iter().map(|key| insert(&mut table, key)).collect();
        for (key, &slot) in keys.iter().zip(&slots) {
            assert_eq!(table.find(table.hash_key(key), key), Some(slot));
            assert_eq!(table.get(slot).key(), key.as_slice());
        }
        let absent = vec![b'k'; 100];
        assert_eq!(table.find(table.hash_key(&absent), &absent), None);
        for (key, &slot) in keys.iter().zip(&slots).step_by(2) {
            assert_eq!(table.remove(slot).key(), key.as_slice());
            assert_eq!(table.find(table.hash_key(key), key), None);
        }
        for (key, &slot) in keys.iter().zip(&slots).skip(1).step_by(2) {
            assert_eq!(table.find(table.hash_key(key), key), Some(slot));
        }
    }

    #[test]
    fn survives_growth() {
        let mut table = EntryTable::new();
        // Short keys, and long ones: growth rehashes from keys in data blocks.
        let keys: Vec<Vec<u8>> = (0..10_000u32)
            .map(|i| {
                let short = i.to_be_bytes().to_vec();
                if i % 2 == 0 {
                    short
                } else {
                    [&short[..], &[b'-'; 28]].concat()
                }
            })
            .collect();
        for key in &keys {
            insert(&mut table, key);
        }
        for key in &keys {
            let slot = table.find(table.hash_key(key), key).expect("present");
            assert_eq!(table.get(slot).key(), key.as_slice());
        }
    }
}
