//! # The invalidation guarantee
//!
//! What clients rely on:
//! 1. Once an INVALIDATE of tag `t` is acknowledged, no GET returns a value
//!    that was stored under `t` before that invalidation.
//! 2. A fenced SET whose fence was taken before an invalidation of one of its
//!    tags never leaves its value readable, whether the SET reaches the shard
//!    before or after that invalidation does.
//! 3. An unfenced SET that answered STORED stays readable until a delete,
//!    its expiry, eviction, a flush, or an invalidation of one of its tags
//!    ordered after it removes it ("Stale stamps" says which those are).
//!
//! How one shard keeps its part of that bargain:
//!
//! **One order.** The server numbers every invalidation from a single global
//! atomic counter ([`InvalidationSeq`](crate::InvalidationSeq)) and sends it
//! to every shard; it acknowledges once all shards have applied it. A SET is
//! stamped with the counter's value when the server plans it
//! (`current_seq`), which places it after every invalidation already
//! numbered, and before every one numbered later, such as an INVALIDATE its
//! connection sends after it. Shards are told sequence numbers, never
//! allocate them.
//!
//! **Comparisons, not walks.** Each entry remembers `stored_seq`; each tag
//! remembers the latest invalidation applied to it since it was interned,
//! `invalidated_since_interned`. An entry is invalid iff one of its tags has
//! `invalidated_since_interned > stored_seq`. Invalidating is therefore
//! O(tags named) and never touches an entry; readers check, and the sweep
//! reclaims the memory of invalid entries nobody reads. The table also
//! tracks the highest sequence it has applied, `max_applied`: an entry with
//! `stored_seq >= max_applied` is valid without looking at its tags, which is
//! the common case on the read path.
//!
//! **Fences.** A client takes a fence `f` (the counter's value) *before*
//! reading the source of truth, then SETs what it read with fence `f`. If an
//! invalidation `s > f` of one of its tags has already been applied here, the
//! SET is refused. If `s` has been numbered but is still in flight to this
//! shard, the check passes, so the entry is stored with
//! `stored_seq = min(f, current_seq)` rather than `current_seq`: when `s`
//! arrives, `s > f` makes the entry invalid. Stamping it with `current_seq`
//! (which may already be `>= s`) would let the stale value outlive the
//! invalidation meant to kill it. The fence check reads each tag's
//! `last_invalidated`, which unlike `invalidated_since_interned` counts what
//! the shard has forgotten (below).
//!
//! **Only this server's fences.** A fence above `current_seq` is refused
//! outright: the counter never goes back, so this server cannot have handed
//! it out before the SET arrived. It is another server's (a client that read
//! from one server and writes to another), and another server's numbers say
//! nothing about which invalidations were applied here: accepting it would
//! store a value computed before an invalidation this shard already applied.
//!
//! **Unknown tags are remembered.** Invalidating a tag no entry here carries
//! still records it, with no references, so a fenced SET arriving later sees
//! it.
//!
//! **Bounded memory, without forgetting.** A tag carried by an entry holds a
//! reference and is never dropped, so entry validity is always exact. Tags
//! with no references are only needed for fence checks, and a tag that is not
//! in the table reads to a fence as invalidated at the table's `floor`.
//! Dropping a tag raises the floor to at least its `last_invalidated`, so a
//! fence's reading can only go *up* when a tag is forgotten: a fence may be
//! refused spuriously, never accepted wrongly, and no invalid entry becomes
//! readable (the tag had no entries). A tag first seen by a SET starts with
//! `last_invalidated` at the floor for the same reason. Unreferenced tags at
//! or below the floor cost nothing to drop; newer ones are kept up to
//! `tag_retention` and to a sixteenth of the shard's memory
//! (`ShardConfig::uncarried_tag_limit`), past which the oldest (lowest
//! sequence) go first. Since forgetting is always safe, a SET that needs
//! room forgets unreferenced tags, oldest first, before it evicts a live
//! entry: data wins over fence precision, and invalidating tags nothing
//! carries can never crowd entries out.
//! `flush_all(seq)` drops every tag and raises the floor over all of them and
//! `seq`, so a fence taken before the flush is refused after it. The shard
//! also remembers the flush's `seq` (at boot, the boot floor) and refuses
//! any fence below it outright, so a fenced SET with no tags is covered too.
//!
//! **Stale stamps.** A SET runs on its key's shard some time after it was
//! stamped: behind the requests queued there before it, and after a hop
//! between threads if its connection is served by another shard. By then the
//! shard may have applied invalidations numbered after the stamp, and
//! forgotten some of them. Which count against the entry?
//!
//! - Every invalidation of its tags applied *after* the entry is stored and
//!   numbered after its stamp. The entry holds a reference to each of its
//!   tags, so none is forgotten while it lives and
//!   `invalidated_since_interned` sees them all. In particular an INVALIDATE
//!   that the SET's own connection sent after it covers it, as guarantee 1
//!   and the per-connection order of protocol.md §5 require: the server
//!   delivers a connection's requests to each shard in the order sent, so
//!   that invalidation arrives after the SET, whatever its number.
//! - An invalidation numbered after the stamp and applied *before* the SET
//!   arrived, of a tag the shard still holds: it counts, as the numbering
//!   says; the SET is ordered before it, answers STORED and reads as
//!   invalidated at once, which guarantee 3 allows.
//! - One of a tag the shard has forgotten, or never saw: it does not count;
//!   the SET is ordered after it. A tag that a SET interns starts with
//!   `invalidated_since_interned = 0`, not the floor, so a SET whose tags are
//!   new here is never invalid on arrival. Reading the floor instead lost the
//!   SET to invalidations of *other* tags that the floor summarises: STORED,
//!   then a MISS nothing explained.
//!
//! Ordering the SET after a forgotten invalidation `s` breaks nothing. `s`
//! was applied here before the SET arrived and is numbered after its stamp,
//! so it was not acknowledged before the SET was sent (it would be numbered
//! at or below the stamp) and was not sent after the SET on the SET's
//! connection (it would have arrived after the SET). The two were
//! concurrent, and the SET taking effect after `s` is what would have
//! happened had it arrived a moment later: guarantee 1 holds, since the
//! entry was stored after `s`. Guarantee 2 is about fences, and fences keep
//! reading `last_invalidated`, which counts the floor: a SET fenced before a
//! forgotten invalidation is refused as before. An unfenced SET promises
//! nothing about when its value was computed; that is what fences are for.
//! A fenced SET is never invalid on arrival either: its check passed, so no
//! tag reads above its fence, and it is stamped with the fence (which, read
//! before the SET was planned, is at most `current_seq`).
//!
//! Why not just stamp an unfenced SET with `max(stamp, floor)`: the floor
//! can pass an invalidation that has been numbered but not yet delivered
//! here, because one numbered after it reached this shard first and was
//! forgotten. If that one is the INVALIDATE the SET's connection sent right
//! after the SET, it arrives after the SET with a number below the raised
//! stamp and would not cover it. Starting a new tag at 0 is that raise, made
//! only against what the shard forgot before the SET, never against what it
//! applies after. It costs a second sequence per tag.
//!
//! Room left for later: soft invalidation (serve stale while revalidating)
//! would compare against a further per-tag sequence here, and lease tokens
//! would ride on the same `last_invalidated` check; neither is built.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::mem::size_of;

use ahash::RandomState;
use bytes::Bytes;
use hashbrown::HashTable;

/// Index of an interned tag in a shard's [`TagTable`]; what entries store
/// instead of tag names.
pub(crate) type TagId = u32;

/// Bytes charged per interned tag on top of its name: its slab slot, its slot
/// in the name index (id plus control byte), and one entry in the
/// reclamation queue.
pub const TAG_OVERHEAD: usize =
    size_of::<TagSlot>() + size_of::<TagId>() + 1 + size_of::<Reverse<QueueItem>>();

struct Tag {
    /// Owns exactly its bytes, so handing it to a reader is a refcount bump.
    name: Bytes,
    hash: u64,
    /// What the tag reads as to a fence: its latest invalidation applied
    /// here, or the floor when it was interned if that is higher (it may
    /// have had a forgotten one up to there).
    last_invalidated: u64,
    /// Its latest invalidation applied here since it was interned, or 0:
    /// what an entry carrying it is compared against ("Stale stamps").
    /// Never above `last_invalidated`.
    invalidated_since_interned: u64,
    /// Entries carrying this tag.
    refs: u32,
    /// Whether the queue holds an item for this tag at its current
    /// `last_invalidated`.
    queued: bool,
}

struct TagSlot {
    /// Bumped each time the slot is vacated, so queue items naming a previous
    /// occupant are recognised as stale.
    generation: u32,
    tag: Option<Tag>,
}

/// A candidate for reclamation. Ordered by `seq` first, so the queue (a
/// min-heap via `Reverse`) yields the oldest invalidation first.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct QueueItem {
    seq: u64,
    id: TagId,
    generation: u32,
}

/// One shard's interned tags and their invalidation state.
///
/// Invariants (checked by [`TagTable::assert_invariants`]):
/// - every tag's `last_invalidated <= max_applied`, and `floor <= max_applied`;
/// - `refs` equals the number of entries carrying the tag;
/// - every unreferenced tag has a current queue item (between operations).
pub(crate) struct TagTable {
    index: HashTable<TagId>,
    slots: Vec<TagSlot>,
    free: Vec<TagId>,
    hasher: RandomState,
    /// Unreferenced tags (and stale items) by ascending `last_invalidated`.
    queue: BinaryHeap<Reverse<QueueItem>>,
    floor: u64,
    max_applied: u64,
    unreferenced: usize,
    bytes: usize,
    /// The part of `bytes` charged for unreferenced tags.
    unreferenced_bytes: usize,
}

impl TagTable {
    pub(crate) fn new(floor: u64) -> Self {
        TagTable {
            index: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            hasher: RandomState::new(),
            queue: BinaryHeap::new(),
            floor,
            max_applied: floor,
            unreferenced: 0,
            bytes: 0,
            unreferenced_bytes: 0,
        }
    }

    pub(crate) fn floor(&self) -> u64 {
        self.floor
    }

    pub(crate) fn max_applied(&self) -> u64 {
        self.max_applied
    }

    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// Bytes charged for all interned tags.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Bytes charged for the tags no entry carries: what forgetting them all
    /// would give back.
    pub(crate) fn unreferenced_bytes(&self) -> usize {
        self.unreferenced_bytes
    }

    /// Whether `name` is interned: carried by an entry, or invalidated and
    /// not yet forgotten.
    pub(crate) fn contains(&self, name: &[u8]) -> bool {
        self.find(self.hasher.hash_one(name), name).is_some()
    }

    /// Bytes charged for the tag `id`.
    pub(crate) fn bytes_of(&self, id: TagId) -> usize {
        TAG_OVERHEAD + self.tag(id).map_or(0, |tag| tag.name.len())
    }

    fn tag(&self, id: TagId) -> Option<&Tag> {
        self.slots
            .get(id as usize)
            .and_then(|slot| slot.tag.as_ref())
    }

    fn tag_mut(&mut self, id: TagId) -> &mut Tag {
        self.slots[id as usize]
            .tag
            .as_mut()
            .expect("tag id held by a caller")
    }

    fn find(&self, hash: u64, name: &[u8]) -> Option<TagId> {
        let slots = &self.slots;
        self.index
            .find(hash, |&id| {
                slots[id as usize]
                    .tag
                    .as_ref()
                    .is_some_and(|tag| tag.hash == hash && *tag.name == *name)
            })
            .copied()
    }

    /// Whether an entry stamped `stored_seq` that carries `ids` is invalid:
    /// one of them was invalidated after `stored_seq` since it was interned.
    /// O(1) when nothing newer than `stored_seq` was ever applied.
    #[inline]
    pub(crate) fn invalidates_entry(
        &self,
        ids: impl IntoIterator<Item = TagId>,
        stored_seq: u64,
    ) -> bool {
        if stored_seq >= self.max_applied {
            return false;
        }
        ids.into_iter().any(|id| {
            // Tags an entry carries are never missing; if one were, the floor
            // is the answer that cannot revive anything.
            self.tag(id)
                .map_or(self.floor, |tag| tag.invalidated_since_interned)
                > stored_seq
        })
    }

    /// Whether a SET fenced at `fence` that carries `ids` must be refused:
    /// one of them may have been invalidated after `fence`, counting what
    /// the shard has forgotten (a tag interned by this SET reads the floor).
    /// O(1) when nothing newer than `fence` was ever applied.
    #[inline]
    pub(crate) fn breaks_fence(&self, ids: impl IntoIterator<Item = TagId>, fence: u64) -> bool {
        if fence >= self.max_applied {
            return false;
        }
        ids.into_iter()
            .any(|id| self.tag(id).map_or(self.floor, |tag| tag.last_invalidated) > fence)
    }

    /// Names of `ids`, sorted.
    pub(crate) fn sorted_names(&self, ids: impl IntoIterator<Item = TagId>) -> Vec<Bytes> {
        let mut names: Vec<Bytes> = ids
            .into_iter()
            .filter_map(|id| self.tag(id).map(|tag| tag.name.clone()))
            .collect();
        names.sort_unstable();
        names
    }

    /// The id for `name`, interning it if new. A new tag starts unreferenced;
    /// to a fence it reads as the floor, exactly as it did while missing,
    /// and to entries as never invalidated, since none carried it before
    /// ("Stale stamps"). The caller guarantees it
    /// [`acquire`](Self::acquire)s the id before the operation ends, so the
    /// tag does not linger unqueued.
    pub(crate) fn intern(&mut self, name: &[u8]) -> TagId {
        let hash = self.hasher.hash_one(name);
        match self.find(hash, name) {
            Some(id) => id,
            None => self.insert(hash, name, self.floor, 0),
        }
    }

    fn insert(
        &mut self,
        hash: u64,
        name: &[u8],
        last_invalidated: u64,
        invalidated_since_interned: u64,
    ) -> TagId {
        let tag = Tag {
            name: Bytes::copy_from_slice(name),
            hash,
            last_invalidated,
            invalidated_since_interned,
            refs: 0,
            queued: false,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize].tag = Some(tag);
                id
            }
            None => {
                let id = TagId::try_from(self.slots.len()).expect("fewer than 2^32 tags");
                self.slots.push(TagSlot {
                    generation: 0,
                    tag: Some(tag),
                });
                id
            }
        };
        let slots = &self.slots;
        self.index.insert_unique(hash, id, |&other| {
            slots[other as usize].tag.as_ref().map_or(0, |tag| tag.hash)
        });
        self.unreferenced += 1;
        self.bytes += TAG_OVERHEAD + name.len();
        self.unreferenced_bytes += TAG_OVERHEAD + name.len();
        id
    }

    /// One more entry carries `id`.
    pub(crate) fn acquire(&mut self, id: TagId) {
        let tag = self.tag_mut(id);
        tag.refs += 1;
        if tag.refs == 1 {
            let bytes = TAG_OVERHEAD + tag.name.len();
            self.unreferenced -= 1;
            self.unreferenced_bytes -= bytes;
        }
    }

    /// One fewer entry carries `id`. If none is left, the tag is dropped when
    /// that is free (invalidated no later than the floor), else queued for
    /// reclamation.
    pub(crate) fn release(&mut self, id: TagId) {
        let floor = self.floor;
        let tag = self.tag_mut(id);
        debug_assert!(tag.refs > 0, "release without acquire");
        tag.refs -= 1;
        if tag.refs > 0 {
            return;
        }
        let seq = tag.last_invalidated;
        let enqueue = seq > floor && !tag.queued;
        tag.queued |= enqueue;
        let bytes = TAG_OVERHEAD + tag.name.len();
        self.unreferenced += 1;
        self.unreferenced_bytes += bytes;
        if seq <= floor {
            self.remove(id);
        } else if enqueue {
            self.enqueue(id, seq);
        }
    }

    /// Records that `name` was invalidated at `seq`.
    pub(crate) fn invalidate(&mut self, name: &[u8], seq: u64) {
        self.max_applied = self.max_applied.max(seq);
        let hash = self.hasher.hash_one(name);
        match self.find(hash, name) {
            Some(id) => {
                let tag = self.tag_mut(id);
                // Even below what a fence reads, this may be news to the
                // entries: it may be numbered after a stale stamp.
                tag.invalidated_since_interned = tag.invalidated_since_interned.max(seq);
                if seq <= tag.last_invalidated {
                    return;
                }
                tag.last_invalidated = seq;
                // Any queue item for the old sequence is stale now.
                tag.queued = tag.refs == 0;
                if tag.queued {
                    self.enqueue(id, seq);
                }
            }
            // Missing already reads as the floor, which is at least `seq`.
            None if seq <= self.floor => {}
            None => {
                let id = self.insert(hash, name, seq, seq);
                self.tag_mut(id).queued = true;
                self.enqueue(id, seq);
            }
        }
    }

    fn enqueue(&mut self, id: TagId, seq: u64) {
        let generation = self.slots[id as usize].generation;
        self.queue.push(Reverse(QueueItem {
            seq,
            id,
            generation,
        }));
        // Stale items pile up when queued tags are re-invalidated; compact
        // once they outnumber live tags, which keeps the work amortised O(1).
        if self.queue.len() > 2 * self.len() + 64 {
            let slots = &self.slots;
            self.queue
                .retain(|Reverse(item)| is_current(slots, item).is_some());
        }
    }

    fn remove(&mut self, id: TagId) {
        let slot = &mut self.slots[id as usize];
        let tag = slot.tag.take().expect("tag id held by a caller");
        slot.generation = slot.generation.wrapping_add(1);
        debug_assert_eq!(tag.refs, 0, "only unreferenced tags are dropped");
        match self.index.find_entry(tag.hash, |&other| other == id) {
            Ok(found) => {
                found.remove();
            }
            Err(_) => unreachable!("every interned tag is indexed"),
        }
        self.free.push(id);
        self.unreferenced -= 1;
        self.bytes -= TAG_OVERHEAD + tag.name.len();
        self.unreferenced_bytes -= TAG_OVERHEAD + tag.name.len();
        // The floor rule: forgetting a tag must never lower its reading.
        self.floor = self.floor.max(tag.last_invalidated);
    }

    /// Takes the oldest queue item; drops its tag if unreferenced. Returns
    /// `None` when the queue is empty, else whether a tag was dropped.
    fn pop(&mut self) -> Option<bool> {
        let Reverse(item) = self.queue.pop()?;
        let Some(refs) = is_current(&self.slots, &item) else {
            return Some(false);
        };
        self.tag_mut(item.id).queued = false;
        if refs > 0 {
            return Some(false);
        }
        self.remove(item.id);
        Some(true)
    }

    /// Drops the unreferenced tag with the oldest invalidation, raising the
    /// floor to it. Returns false if no tag is unreferenced.
    pub(crate) fn reclaim_oldest(&mut self) -> bool {
        while self.unreferenced > 0 {
            match self.pop() {
                Some(true) => return true,
                Some(false) => {}
                None => break,
            }
        }
        false
    }

    /// Drops unreferenced tags that are free to drop (at or below the floor)
    /// and, while more than `retention` remain unreferenced, the oldest.
    /// Handles at most `max_steps` queue items; returns tags dropped.
    pub(crate) fn sweep(&mut self, retention: usize, max_steps: usize) -> usize {
        let mut dropped = 0;
        for _ in 0..max_steps {
            let Some(Reverse(top)) = self.queue.peek() else {
                break;
            };
            if self.unreferenced <= retention && top.seq > self.floor {
                break;
            }
            if self.pop() == Some(true) {
                dropped += 1;
            }
        }
        dropped
    }

    /// Forgets every tag; afterwards every tag reads as at least `seq` and at
    /// least what it read before.
    pub(crate) fn flush(&mut self, seq: u64) {
        let newest = self
            .slots
            .iter()
            .filter_map(|slot| slot.tag.as_ref())
            .map(|tag| tag.last_invalidated)
            .max()
            .unwrap_or(0);
        self.floor = self.floor.max(seq).max(newest);
        self.max_applied = self.max_applied.max(self.floor);
        self.index.clear();
        self.slots.clear();
        self.free.clear();
        self.queue.clear();
        self.unreferenced = 0;
        self.bytes = 0;
        self.unreferenced_bytes = 0;
    }

    /// Panics if an invariant is broken. `refs_expected(id)` is the number of
    /// entries carrying tag `id`. O(tags + queue).
    pub(crate) fn assert_invariants(&self, refs_expected: &dyn Fn(TagId) -> u32) {
        assert!(self.floor <= self.max_applied, "floor above max_applied");
        let mut unreferenced = 0;
        let mut bytes = 0;
        let mut unreferenced_bytes = 0;
        let mut live = 0;
        for (id, slot) in self.slots.iter().enumerate() {
            let Some(tag) = &slot.tag else { continue };
            let id = id as TagId;
            live += 1;
            bytes += TAG_OVERHEAD + tag.name.len();
            assert!(tag.last_invalidated <= self.max_applied);
            assert!(tag.invalidated_since_interned <= tag.last_invalidated);
            assert_eq!(tag.refs, refs_expected(id), "refcount of tag {id}");
            assert_eq!(self.find(tag.hash, &tag.name), Some(id), "index");
            if tag.refs == 0 {
                unreferenced += 1;
                unreferenced_bytes += TAG_OVERHEAD + tag.name.len();
                assert!(tag.queued, "unreferenced tag {id} not queued");
            }
            if tag.queued {
                let item = QueueItem {
                    seq: tag.last_invalidated,
                    id,
                    generation: slot.generation,
                };
                assert!(
                    self.queue.iter().any(|Reverse(queued)| *queued == item),
                    "queued tag {id} has no current item"
                );
            }
        }
        assert_eq!(live, self.index.len(), "index size");
        assert_eq!(unreferenced, self.unreferenced, "unreferenced count");
        assert_eq!(bytes, self.bytes, "tag bytes");
        assert_eq!(
            unreferenced_bytes, self.unreferenced_bytes,
            "unreferenced tag bytes"
        );
    }
}

/// If `item` names its tag at the tag's current sequence, that tag's refs.
fn is_current(slots: &[TagSlot], item: &QueueItem) -> Option<u32> {
    let slot = &slots[item.id as usize];
    let tag = slot.tag.as_ref()?;
    (slot.generation == item.generation && tag.last_invalidated == item.seq).then_some(tag.refs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(table: &TagTable, name: &[u8]) -> u64 {
        let hash = table.hasher.hash_one(name);
        table
            .find(hash, name)
            .and_then(|id| table.tag(id))
            .map_or(table.floor, |tag| tag.last_invalidated)
    }

    #[test]
    fn fast_path_skips_tags_when_nothing_newer_applied() {
        let mut table = TagTable::new(0);
        let id = table.intern(b"t");
        table.acquire(id);
        table.invalidate(b"t", 5);
        assert!(table.invalidates_entry([id], 4));
        assert!(!table.invalidates_entry([id], 5));
        assert!(table.breaks_fence([id], 4));
        assert!(!table.breaks_fence([id], 5));
        // An id the table never issued would read as the floor if examined;
        // the fast path answers without looking.
        assert!(!table.invalidates_entry([999], 5));
        assert!(!table.breaks_fence([999], 5));
    }

    #[test]
    fn unknown_tag_invalidation_is_remembered() {
        let mut table = TagTable::new(0);
        table.invalidate(b"ghost", 7);
        assert_eq!(table.len(), 1);
        assert_eq!(reading(&table, b"ghost"), 7);
        table.assert_invariants(&|_| 0);
    }

    #[test]
    fn invalidation_keeps_the_maximum() {
        let mut table = TagTable::new(0);
        table.invalidate(b"t", 9);
        table.invalidate(b"t", 4);
        assert_eq!(reading(&table, b"t"), 9);
    }

    #[test]
    fn invalidation_at_or_below_floor_of_unknown_tag_is_not_stored() {
        let mut table = TagTable::new(10);
        table.invalidate(b"t", 10);
        assert_eq!(table.len(), 0);
        assert_eq!(reading(&table, b"t"), 10);
    }

    #[test]
    fn missing_tag_reads_as_floor_and_interns_at_floor() {
        let mut table = TagTable::new(42);
        assert_eq!(reading(&table, b"new"), 42);
        let id = table.intern(b"new");
        table.acquire(id);
        assert_eq!(reading(&table, b"new"), 42);
    }

    #[test]
    fn a_tag_a_set_interns_reads_the_floor_to_fences_and_nothing_to_entries() {
        let mut table = TagTable::new(0);
        table.invalidate(b"junk", 10);
        assert!(table.reclaim_oldest());
        let id = table.intern(b"new");
        table.acquire(id);
        assert!(table.breaks_fence([id], 9));
        assert!(!table.breaks_fence([id], 10));
        assert!(!table.invalidates_entry([id], 5));
        // Below what a fence reads, but after an entry's stamp: news to it.
        table.invalidate(b"new", 7);
        assert!(table.invalidates_entry([id], 5));
        assert!(!table.invalidates_entry([id], 7));
        assert_eq!(reading(&table, b"new"), 10);
        table.assert_invariants(&|tag| u32::from(tag == id));
    }

    #[test]
    fn releasing_tag_at_or_below_floor_drops_it() {
        let mut table = TagTable::new(3);
        let id = table.intern(b"t");
        table.acquire(id);
        assert_eq!(table.len(), 1);
        table.release(id);
        assert_eq!(table.len(), 0);
        assert_eq!(table.bytes(), 0);
        assert_eq!(table.floor(), 3);
    }

    #[test]
    fn reclaiming_raises_floor_and_never_lowers_a_reading() {
        let mut table = TagTable::new(0);
        table.invalidate(b"a", 5);
        table.invalidate(b"b", 8);
        assert!(table.reclaim_oldest());
        assert_eq!(table.floor(), 5);
        assert_eq!(reading(&table, b"a"), 5);
        assert!(table.reclaim_oldest());
        assert_eq!(table.floor(), 8);
        assert_eq!(reading(&table, b"b"), 8);
        assert!(!table.reclaim_oldest());
        table.assert_invariants(&|_| 0);
    }

    #[test]
    fn referenced_tags_are_never_reclaimed() {
        let mut table = TagTable::new(0);
        let id = table.intern(b"held");
        table.acquire(id);
        table.invalidate(b"held", 9);
        table.invalidate(b"free", 3);
        assert!(table.reclaim_oldest());
        assert!(!table.reclaim_oldest());
        assert_eq!(table.sweep(0, 100), 0);
        assert_eq!(reading(&table, b"held"), 9);
        table.assert_invariants(&|tag| u32::from(tag == id));
    }

    #[test]
    fn sweep_keeps_retention_and_drops_oldest_first() {
        let mut table = TagTable::new(0);
        for seq in 1..=10u64 {
            table.invalidate(format!("t{seq}").as_bytes(), seq);
        }
        assert_eq!(table.sweep(4, 100), 6);
        assert_eq!(table.len(), 4);
        assert_eq!(table.floor(), 6);
        assert_eq!(reading(&table, b"t7"), 7);
        assert_eq!(reading(&table, b"t2"), 6, "forgotten tags read the floor");
        table.assert_invariants(&|_| 0);
    }

    #[test]
    fn sweep_respects_max_steps() {
        let mut table = TagTable::new(0);
        for seq in 1..=10u64 {
            table.invalidate(format!("t{seq}").as_bytes(), seq);
        }
        assert_eq!(table.sweep(0, 3), 3);
        assert_eq!(table.len(), 7);
    }

    #[test]
    fn tag_released_after_floor_rose_is_swept_for_free() {
        let mut table = TagTable::new(0);
        let id = table.intern(b"t");
        table.acquire(id);
        table.invalidate(b"t", 4);
        table.release(id);
        table.invalidate(b"u", 9);
        assert!(table.reclaim_oldest(), "drops t, floor 4");
        table.invalidate(b"v", 2);
        // retention is huge, but nothing newer than the floor is dropped.
        assert_eq!(table.sweep(usize::MAX, 100), 0);
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn requeued_tags_keep_the_queue_bounded() {
        let mut table = TagTable::new(0);
        for seq in 1..10_000u64 {
            table.invalidate(b"hot", seq);
        }
        assert!(table.queue.len() <= 2 * table.len() + 65);
        table.assert_invariants(&|_| 0);
    }

    #[test]
    fn flush_raises_floor_over_everything() {
        let mut table = TagTable::new(1);
        table.invalidate(b"a", 50);
        table.flush(20);
        assert_eq!(table.floor(), 50);
        assert_eq!(table.len(), 0);
        assert_eq!(reading(&table, b"a"), 50);
        table.flush(60);
        assert_eq!(table.floor(), 60);
        assert!(table.max_applied() >= 60);
    }

    #[test]
    fn reused_slot_ignores_stale_queue_items() {
        let mut table = TagTable::new(0);
        table.invalidate(b"a", 5);
        table.invalidate(b"a", 6);
        assert!(table.reclaim_oldest());
        let id = table.intern(b"b");
        table.acquire(id);
        assert!(!table.reclaim_oldest(), "stale items for the old occupant");
        table.assert_invariants(&|tag| u32::from(tag == id));
    }
}
