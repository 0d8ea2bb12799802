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
//! **Soft invalidation.** A soft invalidation of a tag at `s` with a window
//! ending at `until` (monotonic ms) makes entries carrying it and stamped
//! before `s` *stale* until `until` and dead from then on; a hard one makes
//! them dead at once. Each tag keeps its latest hard sequence and one soft
//! window (`soft_seq`, `soft_until`), so invalidating stays O(tags named)
//! and reading an entry stays one comparison per tag. Two windows of one
//! tag are merged into one: the later sequence with the earlier end. That
//! is exact for entries stamped before both (the first window to end kills
//! them) and ends the window early, never late, for entries stamped between
//! the two, so no entry is ever served stale past a window it fell under.
//! A window that has ended is folded into the hard sequence before a new
//! one replaces it, so nothing it killed comes back. To fences a soft
//! invalidation counts like a hard one: a value computed before the data
//! changed must not be stored after it.
//!
//! **Request-scoped tags.** A read may name tags the entry does not carry
//! (Next.js's implicit path tags). They are read as a fence reads a tag:
//! one the shard does not hold reads as hard-invalidated at the floor, and
//! one it holds counts everything it knows, floor at interning included. So
//! forgetting a tag can only make such a read miss, never serve what an
//! invalidation meant to kill.

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
    /// The floor when the tag was interned: it may have had a forgotten
    /// invalidation up to there. Counted by fences and request-scoped
    /// reads, not by entries carrying it ("Stale stamps").
    interned_floor: u64,
    /// Its latest hard invalidation applied here since it was interned (or
    /// a soft one folded in once its window ended), or 0: what an entry
    /// carrying it is compared against.
    hard_seq: u64,
    /// When `hard_seq` was numbered (or the folded window ended), monotonic
    /// ms; 0 if none.
    hard_at_ms: u64,
    /// Its latest soft invalidation applied here since it was interned, or
    /// 0; entries stamped before it are stale until `soft_until_ms`.
    soft_seq: u64,
    /// When `soft_seq` was numbered, monotonic ms; 0 if none.
    soft_at_ms: u64,
    /// When the window of `soft_seq` ends (see "Soft invalidation").
    soft_until_ms: u64,
    /// Entries carrying this tag.
    refs: u32,
    /// Whether the queue holds an item for this tag at its current
    /// [`Tag::last_invalidated`].
    queued: bool,
}

impl Tag {
    /// What the tag reads as to a fence: everything it knows, soft
    /// invalidations and the floor at interning included.
    fn last_invalidated(&self) -> u64 {
        self.interned_floor.max(self.hard_seq).max(self.soft_seq)
    }

    /// What the tag makes of an entry stamped `stored_seq`, counting only
    /// invalidations applied since it was interned (an entry carrying it).
    fn verdict(&self, stored_seq: u64, now_ms: u64) -> Verdict {
        Verdict::of(
            self.hard_seq,
            self.soft_seq,
            self.soft_until_ms,
            stored_seq,
            now_ms,
        )
    }
}

/// Request-scoped tags resolved against one shard at one instant
/// ([`Shard::resolve_request_tags`](crate::Shard::resolve_request_tags)):
/// an entry stamped before `dead_before` is dead to the read, else one
/// stamped before `stale_before` is stale. The worst of several tags'
/// verdicts is exactly this pair of maxima, which is what lets a GETM
/// resolve its tags once rather than once per key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestTags {
    dead_before: u64,
    stale_before: u64,
}

impl RequestTags {
    pub(crate) fn verdict(&self, stored_seq: u64) -> Verdict {
        if self.dead_before > stored_seq {
            Verdict::Dead
        } else if self.stale_before > stored_seq {
            Verdict::Stale
        } else {
            Verdict::Fresh
        }
    }
}

/// What invalidations make of an entry. Ordered by severity, so the
/// verdict of several tags is the maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Verdict {
    /// No invalidation after the entry's stamp.
    Fresh,
    /// A soft invalidation after its stamp, whose window is open.
    Stale,
    /// A hard invalidation after its stamp, or a soft one whose window has
    /// ended.
    Dead,
}

impl Verdict {
    /// The most severe of `verdicts`, looking no further than the first
    /// [`Verdict::Dead`].
    fn worst(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
        let mut worst = Verdict::Fresh;
        for verdict in verdicts {
            worst = worst.max(verdict);
            if worst == Verdict::Dead {
                break;
            }
        }
        worst
    }

    /// The verdict of a hard sequence and a soft window on an entry stamped
    /// `stored_seq`, at `now_ms`.
    pub(crate) fn of(
        hard_seq: u64,
        soft_seq: u64,
        soft_until_ms: u64,
        stored_seq: u64,
        now_ms: u64,
    ) -> Verdict {
        if hard_seq > stored_seq {
            Verdict::Dead
        } else if soft_seq > stored_seq {
            if now_ms >= soft_until_ms {
                Verdict::Dead
            } else {
                Verdict::Stale
            }
        } else {
            Verdict::Fresh
        }
    }
}

/// A soft invalidation: its sequence, when it was numbered and when its
/// window ends (monotonic ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoftWindow {
    /// The invalidation's sequence.
    pub seq: u64,
    /// When it was numbered.
    pub at_ms: u64,
    /// When entries stamped before `seq` stop being stale and are dead.
    pub until_ms: u64,
}

impl SoftWindow {
    /// `self` and a later-applied window `next` as one (see "Soft
    /// invalidation"): if `self` has ended by the time `next` was numbered,
    /// `next` alone and `self.seq` to be folded into the hard sequence;
    /// else the higher sequence with the earlier end.
    fn merge(self, next: SoftWindow) -> (SoftWindow, Option<SoftWindow>) {
        if self.seq == 0 {
            (next, None)
        } else if self.until_ms <= next.at_ms {
            (next, Some(self))
        } else {
            let newest = if next.seq >= self.seq { next } else { self };
            let merged = SoftWindow {
                until_ms: self.until_ms.min(next.until_ms),
                ..newest
            };
            (merged, None)
        }
    }
}

/// What one shard knows of a tag, for TAG_STATUS (protocol.md §6.11).
/// Times are monotonic ms; sequences 0 and times 0 mean none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TagStatus {
    /// Entries held that carry the tag, dead ones not yet reclaimed
    /// included.
    pub entries: u64,
    /// Its latest hard invalidation remembered (a soft one whose window
    /// ended may have been folded in, at the window's end).
    pub hard_seq: u64,
    /// When `hard_seq` was numbered.
    pub hard_at_ms: u64,
    /// Its latest soft invalidation remembered, with its window.
    pub soft: Option<SoftWindow>,
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
    /// See [`TagTable::floor_at_ms`].
    floor_at_ms: u64,
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
            floor_at_ms: 0,
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

    /// What the tags `ids` an entry stamped `stored_seq` carries make of it
    /// at `now_ms`: dead if one was hard-invalidated after the stamp since
    /// it was interned (or soft with its window ended), else stale if one
    /// was soft-invalidated after it, else fresh. O(1) when nothing newer
    /// than `stored_seq` was ever applied.
    #[inline]
    pub(crate) fn entry_verdict(
        &self,
        ids: impl IntoIterator<Item = TagId>,
        stored_seq: u64,
        now_ms: u64,
    ) -> Verdict {
        if stored_seq >= self.max_applied {
            return Verdict::Fresh;
        }
        Verdict::worst(ids.into_iter().map(|id| match self.tag(id) {
            Some(tag) => tag.verdict(stored_seq, now_ms),
            // Tags an entry carries are never missing; if one were, the
            // floor is the answer that cannot revive anything.
            None => self.unheld_verdict(stored_seq),
        }))
    }

    /// What the tags `names`, named by a read but not carried by its
    /// entries, make of entries at `now_ms` ("Request-scoped tags"), as two
    /// sequences, so that a GETM of many keys looks each name up once: a
    /// name not held here reads as hard-invalidated at the floor.
    pub(crate) fn resolve_request_tags<T: AsRef<[u8]>>(
        &self,
        names: &[T],
        now_ms: u64,
    ) -> RequestTags {
        let mut resolved = RequestTags::default();
        for name in names {
            let name = name.as_ref();
            let held = self.find(self.hasher.hash_one(name), name);
            let Some(tag) = held.and_then(|id| self.tag(id)) else {
                resolved.dead_before = resolved.dead_before.max(self.floor);
                continue;
            };
            let hard = tag.hard_seq.max(tag.interned_floor);
            resolved.dead_before = resolved.dead_before.max(hard);
            if now_ms >= tag.soft_until_ms {
                resolved.dead_before = resolved.dead_before.max(tag.soft_seq);
            } else {
                resolved.stale_before = resolved.stale_before.max(tag.soft_seq);
            }
        }
        resolved
    }

    /// What a tag this shard does not hold makes of an entry stamped
    /// `stored_seq`: invalidated at the floor, hard.
    fn unheld_verdict(&self, stored_seq: u64) -> Verdict {
        if self.floor > stored_seq {
            Verdict::Dead
        } else {
            Verdict::Fresh
        }
    }

    /// What this shard knows of `name`, if it holds it.
    pub(crate) fn status(&self, name: &[u8]) -> Option<TagStatus> {
        let id = self.find(self.hasher.hash_one(name), name)?;
        let tag = self.tag(id)?;
        Some(TagStatus {
            entries: u64::from(tag.refs),
            hard_seq: tag.hard_seq,
            hard_at_ms: tag.hard_at_ms,
            soft: (tag.soft_seq != 0).then_some(SoftWindow {
                seq: tag.soft_seq,
                at_ms: tag.soft_at_ms,
                until_ms: tag.soft_until_ms,
            }),
        })
    }

    /// When the invalidation the floor stands for was numbered (or the
    /// latest flush ran), monotonic ms; 0 for the boot floor.
    pub(crate) fn floor_at_ms(&self) -> u64 {
        self.floor_at_ms
    }

    /// Records that an invalidation at `seq` was applied, raising the
    /// fast path's bar; for invalidations that name no tag (a soft flush).
    pub(crate) fn note_applied(&mut self, seq: u64) {
        self.max_applied = self.max_applied.max(seq);
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
            .any(|id| self.tag(id).map_or(self.floor, Tag::last_invalidated) > fence)
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
            None => self.insert(hash, name),
        }
    }

    /// Interns `name`, never invalidated since, at the current floor.
    fn insert(&mut self, hash: u64, name: &[u8]) -> TagId {
        let tag = Tag {
            name: Bytes::copy_from_slice(name),
            hash,
            interned_floor: self.floor,
            hard_seq: 0,
            hard_at_ms: 0,
            soft_seq: 0,
            soft_at_ms: 0,
            soft_until_ms: 0,
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
        let seq = tag.last_invalidated();
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

    /// Records that `name` was invalidated hard at `seq`, numbered at
    /// `at_ms` (monotonic).
    pub(crate) fn invalidate(&mut self, name: &[u8], seq: u64, at_ms: u64) {
        self.apply(name, seq, |tag| {
            if seq > tag.hard_seq {
                tag.hard_seq = seq;
                tag.hard_at_ms = at_ms;
            }
        });
    }

    /// Records that `name` was invalidated softly: `window` (see "Soft
    /// invalidation").
    pub(crate) fn invalidate_soft(&mut self, name: &[u8], window: SoftWindow) {
        self.apply(name, window.seq, |tag| {
            let current = SoftWindow {
                seq: tag.soft_seq,
                at_ms: tag.soft_at_ms,
                until_ms: tag.soft_until_ms,
            };
            let (merged, ended) = current.merge(window);
            if let Some(ended) = ended {
                if ended.seq > tag.hard_seq {
                    tag.hard_seq = ended.seq;
                    tag.hard_at_ms = ended.until_ms;
                }
            }
            tag.soft_seq = merged.seq;
            tag.soft_at_ms = merged.at_ms;
            tag.soft_until_ms = merged.until_ms;
        });
    }

    /// Applies an invalidation at `seq` of `name` through `update`,
    /// interning the tag if it is new here and requeueing it if what it
    /// reads as to a fence went up.
    fn apply(&mut self, name: &[u8], seq: u64, update: impl FnOnce(&mut Tag)) {
        self.max_applied = self.max_applied.max(seq);
        let hash = self.hasher.hash_one(name);
        let id = match self.find(hash, name) {
            Some(id) => id,
            // Missing already reads as the floor, which is at least `seq`:
            // nothing a fence, an entry or a request could learn from it.
            None if seq <= self.floor => return,
            None => self.insert(hash, name),
        };
        let tag = self.tag_mut(id);
        let before = tag.last_invalidated();
        // Even below what a fence reads, this may be news to the entries:
        // it may be numbered after a stale stamp.
        update(tag);
        let after = tag.last_invalidated();
        if after == before && tag.queued {
            return;
        }
        // Any queue item for the old sequence is stale now.
        tag.queued = tag.refs == 0;
        if tag.queued {
            self.enqueue(id, after);
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
        if tag.last_invalidated() > self.floor {
            self.floor = tag.last_invalidated();
            self.floor_at_ms = self.floor_at_ms.max(tag.hard_at_ms).max(tag.soft_at_ms);
        }
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
    /// least what it read before. `at_ms` is when the flush was numbered.
    pub(crate) fn flush(&mut self, seq: u64, at_ms: u64) {
        let newest = self
            .slots
            .iter()
            .filter_map(|slot| slot.tag.as_ref())
            .map(Tag::last_invalidated)
            .max()
            .unwrap_or(0);
        self.floor = self.floor.max(seq).max(newest);
        self.floor_at_ms = self.floor_at_ms.max(at_ms);
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
            assert!(tag.last_invalidated() <= self.max_applied);
            assert!(tag.interned_floor <= self.floor, "interned above the floor");
            assert_eq!(tag.refs, refs_expected(id), "refcount of tag {id}");
            assert_eq!(self.find(tag.hash, &tag.name), Some(id), "index");
            if tag.refs == 0 {
                unreferenced += 1;
                unreferenced_bytes += TAG_OVERHEAD + tag.name.len();
                assert!(tag.queued, "unreferenced tag {id} not queued");
            }
            if tag.queued {
                let item = QueueItem {
                    seq: tag.last_invalidated(),
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
    (slot.generation == item.generation && tag.last_invalidated() == item.seq).then_some(tag.refs)
}

#[cfg(test)]
mod tests {
    use super::*;

    impl TagTable {
        fn invalidate_hard_now(&mut self, name: &[u8], seq: u64) {
            self.invalidate(name, seq, 0);
        }

        fn invalidates_entry_now(&self, ids: impl IntoIterator<Item = TagId>, stored: u64) -> bool {
            self.entry_verdict(ids, stored, 0) == Verdict::Dead
        }
    }

    fn reading(table: &TagTable, name: &[u8]) -> u64 {
        let hash = table.hasher.hash_one(name);
        table
            .find(hash, name)
            .and_then(|id| table.tag(id))
            .map_or(table.floor, Tag::last_invalidated)
    }

    #[test]
    fn fast_path_skips_tags_when_nothing_newer_applied() {
        let mut table = TagTable::new(0);
        let id = table.intern(b"t");
        table.acquire(id);
        table.invalidate_hard_now(b"t", 5);
        assert!(table.invalidates_entry_now([id], 4));
        assert!(!table.invalidates_entry_now([id], 5));
        assert!(table.breaks_fence([id], 4));
        assert!(!table.breaks_fence([id], 5));
        // An id the table never issued would read as the floor if examined;
        // the fast path answers without looking.
        assert!(!table.invalidates_entry_now([999], 5));
        assert!(!table.breaks_fence([999], 5));
    }

    /// Resolving request-scoped tags to two sequences must agree with
    /// taking the worst verdict tag by tag, for every stamp: held tags hard
    /// and soft (open or ended), a tag interned above a forgotten
    /// invalidation, and a tag not held at all.
    #[test]
    fn resolved_request_tags_agree_with_the_worst_verdict_of_each_tag() {
        let mut table = TagTable::new(2);
        table.invalidate(b"hard", 5, 0);
        table.invalidate_soft(b"open", window(7, 100, 1_000));
        table.invalidate_soft(b"ended", window(6, 0, 50));
        table.invalidate(b"junk", 9, 0);
        assert!(table.reclaim_oldest() && table.reclaim_oldest());
        let late = table.intern(b"late");
        table.acquire(late);
        let names: [&[u8]; 6] = [b"hard", b"open", b"ended", b"late", b"never", b"junk"];
        let now = 500;
        let per_tag = |name: &[u8], stored: u64| {
            let held = table.find(table.hasher.hash_one(name), name);
            match held.and_then(|id| table.tag(id)) {
                Some(tag) => Verdict::of(
                    tag.hard_seq.max(tag.interned_floor),
                    tag.soft_seq,
                    tag.soft_until_ms,
                    stored,
                    now,
                ),
                None => table.unheld_verdict(stored),
            }
        };
        for mask in 1..(1u32 << names.len()) {
            let chosen: Vec<&[u8]> = (0..names.len())
                .filter(|bit| mask & (1 << bit) != 0)
                .map(|bit| names[bit])
                .collect();
            let resolved = table.resolve_request_tags(&chosen, now);
            for stored in 0..12 {
                let expected = Verdict::worst(chosen.iter().map(|name| per_tag(name, stored)));
                assert_eq!(resolved.verdict(stored), expected, "{mask:b} at {stored}");
            }
        }
    }

    fn window(seq: u64, at_ms: u64, until_ms: u64) -> SoftWindow {
        SoftWindow {
            seq,
            at_ms,
            until_ms,
        }
    }

    #[test]
    fn unknown_tag_invalidation_is_remembered() {
        let mut table = TagTable::new(0);
        table.invalidate_hard_now(b"ghost", 7);
        assert_eq!(table.len(), 1);
        assert_eq!(reading(&table, b"ghost"), 7);
        table.assert_invariants(&|_| 0);
    }

    #[test]
    fn invalidation_keeps_the_maximum() {
        let mut table = TagTable::new(0);
        table.invalidate_hard_now(b"t", 9);
        table.invalidate_hard_now(b"t", 4);
        assert_eq!(reading(&table, b"t"), 9);
    }

    #[test]
    fn invalidation_at_or_below_floor_of_unknown_tag_is_not_stored() {
        let mut table = TagTable::new(10);
        table.invalidate_hard_now(b"t", 10);
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
        table.invalidate_hard_now(b"junk", 10);
        assert!(table.reclaim_oldest());
        let id = table.intern(b"new");
        table.acquire(id);
        assert!(table.breaks_fence([id], 9));
        assert!(!table.breaks_fence([id], 10));
        assert!(!table.invalidates_entry_now([id], 5));
        // Below what a fence reads, but after an entry's stamp: news to it.
        table.invalidate_hard_now(b"new", 7);
        assert!(table.invalidates_entry_now([id], 5));
        assert!(!table.invalidates_entry_now([id], 7));
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
        table.invalidate_hard_now(b"a", 5);
        table.invalidate_hard_now(b"b", 8);
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
        table.invalidate_hard_now(b"held", 9);
        table.invalidate_hard_now(b"free", 3);
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
            table.invalidate_hard_now(format!("t{seq}").as_bytes(), seq);
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
            table.invalidate_hard_now(format!("t{seq}").as_bytes(), seq);
        }
        assert_eq!(table.sweep(0, 3), 3);
        assert_eq!(table.len(), 7);
    }

    #[test]
    fn tag_released_after_floor_rose_is_swept_for_free() {
        let mut table = TagTable::new(0);
        let id = table.intern(b"t");
        table.acquire(id);
        table.invalidate_hard_now(b"t", 4);
        table.release(id);
        table.invalidate_hard_now(b"u", 9);
        assert!(table.reclaim_oldest(), "drops t, floor 4");
        table.invalidate_hard_now(b"v", 2);
        // retention is huge, but nothing newer than the floor is dropped.
        assert_eq!(table.sweep(usize::MAX, 100), 0);
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn requeued_tags_keep_the_queue_bounded() {
        let mut table = TagTable::new(0);
        for seq in 1..10_000u64 {
            table.invalidate_hard_now(b"hot", seq);
        }
        assert!(table.queue.len() <= 2 * table.len() + 65);
        table.assert_invariants(&|_| 0);
    }

    #[test]
    fn flush_raises_floor_over_everything() {
        let mut table = TagTable::new(1);
        table.invalidate_hard_now(b"a", 50);
        table.flush(20, 0);
        assert_eq!(table.floor(), 50);
        assert_eq!(table.len(), 0);
        assert_eq!(reading(&table, b"a"), 50);
        table.flush(60, 0);
        assert_eq!(table.floor(), 60);
        assert!(table.max_applied() >= 60);
    }

    #[test]
    fn reused_slot_ignores_stale_queue_items() {
        let mut table = TagTable::new(0);
        table.invalidate_hard_now(b"a", 5);
        table.invalidate_hard_now(b"a", 6);
        assert!(table.reclaim_oldest());
        let id = table.intern(b"b");
        table.acquire(id);
        assert!(!table.reclaim_oldest(), "stale items for the old occupant");
        table.assert_invariants(&|tag| u32::from(tag == id));
    }
}
