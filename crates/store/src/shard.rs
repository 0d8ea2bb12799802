//! One shard: the entry table, the tag table, TTLs, the memory budget and
//! eviction, behind single-threaded `&mut self` operations.
//!
//! The server owns one [`Shard`] per worker (or behind one lock) and routes
//! each key to one shard; invalidations and flushes go to every shard. A shard
//! does no I/O and reads no clock: time arrives as `now_ms` (monotonic
//! milliseconds) and order as [`InvalidationSeq`], so tests drive both.

mod get;
mod prefetch;
mod set;
mod sweep;

pub use get::{Hit, HitRef, Lookup, MissReason, Read, ReadOptions};
pub use set::{SetArgs, SetMode, SetOutcome};
pub use sweep::SweepReport;

use crate::config::ShardConfig;
use crate::entry::{self, Entry};
use crate::eviction::{EvictionPolicy, Sieve};
use crate::key::INLINE;
use crate::leases::LeaseTable;
use crate::seq::InvalidationSeq;
use crate::stats::ShardStats;
use crate::table::{EntryTable, SlotId};
use crate::tags::{RequestTags, SoftWindow, TagId, TagStatus, TagTable, Verdict};

/// One shard of the cache. See the crate documentation for the contract.
pub struct Shard {
    config: ShardConfig,
    table: EntryTable,
    tags: TagTable,
    leases: LeaseTable,
    /// What FLUSH_ALL makes of entries it did not remove: see [`Flushes`].
    flushes: Flushes,
    eviction: Sieve,
    /// Bytes charged for entries; tag bytes are kept by `tags`.
    entry_bytes: usize,
    /// Last CAS value handed out; the next is one more, so none is ever 0.
    last_cas: u64,
    /// The sequence of the latest flush (or boot): a fence below it is
    /// refused whatever the SET's tags, even none (protocol.md §6.9).
    flushed_at: u64,
    /// Next slab slot the sweep examines.
    sweep_cursor: usize,
    /// Counters; gauges are filled in by [`Shard::stats`].
    counters: ShardStats,
    /// Reused buffer for resolving a SET's tags, so the common path does not
    /// allocate for it.
    scratch_tags: Vec<TagId>,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("entries", &self.table.len())
            .field("tags", &self.tags.len())
            .field("bytes_used", &self.bytes_used())
            .field("config", &self.config)
            .field("floor", &self.tags.floor())
            .field("max_applied", &self.tags.max_applied())
            .finish_non_exhaustive()
    }
}

/// Whether an entry may be served, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Liveness {
    /// Live and fresh.
    Fresh,
    /// Live, but stale (protocol.md §8.3): served only to reads that allow
    /// it, and kept for them.
    Stale,
    Expired,
    Invalidated,
}

impl Liveness {
    fn is_live(self) -> bool {
        matches!(self, Liveness::Fresh | Liveness::Stale)
    }
}

/// Soft FLUSH_ALLs: one open window, like a tag's (see "Soft invalidation"
/// in the [`tags`](crate::tags) module), and the sequence of ended ones
/// folded in. A hard flush removes entries instead.
#[derive(Clone, Copy, Debug)]
struct Flushes {
    soft: SoftWindow,
    /// Entries stamped before it are dead: the latest soft flush whose
    /// window ended before another began.
    dead_before: u64,
}

impl Flushes {
    const NONE: Flushes = Flushes {
        soft: SoftWindow {
            seq: 0,
            at_ms: 0,
            until_ms: 0,
        },
        dead_before: 0,
    };

    fn verdict(&self, stored_seq: u64, now_ms: u64) -> Verdict {
        Verdict::of(
            self.dead_before,
            self.soft.seq,
            self.soft.until_ms,
            stored_seq,
            now_ms,
        )
    }
}

fn liveness(entry: &Entry, tags: &TagTable, flushes: &Flushes, now_ms: u64) -> Liveness {
    if entry.is_expired(now_ms) {
        return Liveness::Expired;
    }
    let verdict = tags
        .entry_verdict(entry.tag_ids(), entry.stored_seq, now_ms)
        .max(flushes.verdict(entry.stored_seq, now_ms));
    match verdict {
        Verdict::Dead => Liveness::Invalidated,
        Verdict::Stale => Liveness::Stale,
        Verdict::Fresh if entry.stale_at_ms().is_some_and(|at| now_ms >= at) => Liveness::Stale,
        Verdict::Fresh => Liveness::Fresh,
    }
}

impl Shard {
    /// An empty shard. `floor` is the invalidation sequence at boot: every
    /// tag reads as invalidated at `floor` until told otherwise, so a fence
    /// older than the server's start is refused.
    pub fn new(config: ShardConfig, floor: InvalidationSeq) -> Self {
        Shard {
            config,
            table: EntryTable::new(),
            tags: TagTable::new(floor.get()),
            leases: LeaseTable::new(),
            flushes: Flushes::NONE,
            eviction: Sieve::new(),
            entry_bytes: 0,
            last_cas: 0,
            flushed_at: floor.get(),
            sweep_cursor: 0,
            counters: ShardStats::default(),
            scratch_tags: Vec::new(),
        }
    }

    /// The configuration the shard was built with.
    pub fn config(&self) -> &ShardConfig {
        &self.config
    }

    /// Entries held, including expired or invalidated ones not yet reclaimed.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the shard holds no entries.
    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }

    /// Bytes charged against [`ShardConfig::memory_limit`]: for each entry,
    /// key + value + 4 per tag + [`ENTRY_OVERHEAD`](crate::ENTRY_OVERHEAD)
    /// (+ 8 with a stale window); for each interned tag, its name +
    /// [`TAG_OVERHEAD`](crate::TAG_OVERHEAD); for each lease record, its
    /// key and [`LEASE_OVERHEAD`](crate::LEASE_OVERHEAD). Never above the
    /// limit once an operation returns.
    pub fn bytes_used(&self) -> usize {
        self.entry_bytes + self.tags.bytes() + self.leases.bytes()
    }

    /// What a tag absent from this shard reads as: no unknown tag was
    /// invalidated later than this.
    pub fn floor(&self) -> InvalidationSeq {
        InvalidationSeq::new(self.tags.floor())
    }

    /// The highest invalidation sequence this shard has applied (or its
    /// floor, if higher).
    pub fn max_applied(&self) -> InvalidationSeq {
        InvalidationSeq::new(self.tags.max_applied())
    }

    /// Whether the shard holds state for `tag`: an entry carries it, or it
    /// was invalidated and is not yet forgotten. Which uncarried tags it
    /// keeps is its own choice (retention, memory); this is for tests and
    /// debugging, e.g. a model of what a stale-stamped SET may count (see
    /// the [`tags`](crate::tags) module).
    pub fn remembers_tag(&self, tag: &[u8]) -> bool {
        self.tags.contains(tag)
    }

    /// When this shard's floor was raised to what it is, monotonic ms: the
    /// time its newest forgotten invalidation (or latest flush) was
    /// numbered; 0 for the boot floor.
    pub fn floor_at_ms(&self) -> u64 {
        self.tags.floor_at_ms()
    }

    /// Resolves a read's request-scoped tags (protocol.md §8.5) against
    /// this shard at `now_ms`, for [`ReadOptions::request_tags`]: valid for
    /// reads at the same instant with no invalidation applied in between.
    /// O(tags), however many keys the reads then cover.
    pub fn resolve_request_tags<T: AsRef<[u8]>>(&self, tags: &[T], now_ms: u64) -> RequestTags {
        self.tags.resolve_request_tags(tags, now_ms)
    }

    /// What this shard knows of `tag` (protocol.md §6.11): all zeros if it
    /// does not hold it (never invalidated here, or forgotten).
    pub fn tag_status(&self, tag: &[u8]) -> TagStatus {
        self.tags.status(tag).unwrap_or_default()
    }

    /// A snapshot of counters and gauges.
    pub fn stats(&self) -> ShardStats {
        ShardStats {
            curr_items: self.table.len() as u64,
            bytes: self.bytes_used() as u64,
            limit_bytes: self.config.memory_limit as u64,
            tags_tracked: self.tags.len() as u64,
            leases_held: self.leases.len() as u64,
            ..self.counters
        }
    }

    /// Removes `key`, and ends its lease if any. Returns whether a live
    /// entry (fresh or stale) was removed; an expired or invalidated one is
    /// reclaimed too, but reported as absent.
    pub fn delete(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.leases.end(key);
        let hash = self.table.hash_key(key);
        let Some(slot) = self.table.find(hash, key) else {
            return false;
        };
        match self.liveness(slot, now_ms) {
            Liveness::Fresh | Liveness::Stale => {
                self.remove(slot);
                self.counters.deletes += 1;
                true
            }
            dead => {
                self.reclaim(slot, dead);
                false
            }
        }
    }

    /// Gives the live entry under `key` a new TTL (`0` = never expires),
    /// counted from `now_ms`, and marks it accessed. Returns false if there is
    /// no live entry.
    pub fn touch(&mut self, key: &[u8], ttl_secs: u32, now_ms: u64) -> bool {
        let hash = self.table.hash_key(key);
        let Some(slot) = self.table.find(hash, key) else {
            return false;
        };
        match self.liveness(slot, now_ms) {
            Liveness::Fresh | Liveness::Stale => {
                self.table.get_mut(slot).expire_at_ms = entry::expire_at(now_ms, ttl_secs);
                self.eviction.on_access(slot);
                self.counters.touches += 1;
                true
            }
            dead => {
                self.reclaim(slot, dead);
                false
            }
        }
    }

    /// Applies a hard invalidation of `tags` at `seq`, numbered at `at_ms`
    /// (monotonic): every entry carrying one of them and stored before `seq`
    /// reads as invalid from now on. O(number of tags); no entry is touched
    /// (the sweep reclaims their memory). A tag unknown here is remembered
    /// so a later fenced SET sees it; if that takes the tags no entry
    /// carries past [`ShardConfig::uncarried_tag_limit`], or the shard over
    /// its budget, the oldest of them are folded into the floor until it
    /// fits.
    pub fn invalidate<T: AsRef<[u8]>>(&mut self, tags: &[T], seq: InvalidationSeq, at_ms: u64) {
        for tag in tags {
            self.tags.invalidate(tag.as_ref(), seq.get(), at_ms);
        }
        self.after_invalidation(tags.len());
    }

    /// Applies a soft invalidation of `tags` (protocol.md §8.3): every entry
    /// carrying one of them and stored before `window.seq` is stale until
    /// `window.until_ms`, and invalid from then on. Costs and memory as
    /// [`Shard::invalidate`].
    pub fn invalidate_soft<T: AsRef<[u8]>>(&mut self, tags: &[T], window: SoftWindow) {
        for tag in tags {
            self.tags.invalidate_soft(tag.as_ref(), window);
        }
        self.after_invalidation(tags.len());
    }

    fn after_invalidation(&mut self, tags: usize) {
        self.counters.tag_invalidations += tags as u64;
        self.forget_uncarried_tags_over_limit();
        // Only unreferenced tags were added, and all of them are reclaimable,
        // so this always gets back under the limit.
        while self.bytes_used() > self.config.memory_limit && self.tags.reclaim_oldest() {}
    }

    /// Forgets the oldest tags no entry carries while they hold more than
    /// [`ShardConfig::uncarried_tag_limit`]. Called wherever they grow: an
    /// invalidation of a tag new here, or an entry's removal or overwrite
    /// leaving a tag it carried to nobody.
    fn forget_uncarried_tags_over_limit(&mut self) {
        let limit = self.config.uncarried_tag_limit();
        while self.tags.unreferenced_bytes() > limit && self.tags.reclaim_oldest() {}
    }

    /// Drops every entry, every tag and every lease, and raises the floor to
    /// at least `seq` (and to every tag's last invalidation), so a fence
    /// taken before the flush is refused after it. `at_ms` is when the
    /// flush was numbered (monotonic). O(entries): values are freed now.
    pub fn flush_all(&mut self, seq: InvalidationSeq, at_ms: u64) {
        self.table.clear();
        self.eviction.clear();
        self.tags.flush(seq.get(), at_ms);
        self.leases.clear();
        self.flushed_at = self.flushed_at.max(seq.get());
        self.entry_bytes = 0;
        self.sweep_cursor = 0;
    }

    /// A soft flush (protocol.md §6.9): every entry stored before
    /// `window.seq` is stale until `window.until_ms`, and invalid from then
    /// on; a fence taken before it is refused. O(1): nothing is removed
    /// now, and leases are kept.
    pub fn flush_all_soft(&mut self, window: SoftWindow) {
        let flushes = &mut self.flushes;
        if flushes.soft.seq != 0 && flushes.soft.until_ms <= window.at_ms {
            flushes.dead_before = flushes.dead_before.max(flushes.soft.seq);
            flushes.soft = window;
        } else if flushes.soft.seq == 0 {
            flushes.soft = window;
        } else {
            flushes.soft.until_ms = flushes.soft.until_ms.min(window.until_ms);
            if window.seq > flushes.soft.seq {
                flushes.soft.seq = window.seq;
                flushes.soft.at_ms = window.at_ms;
            }
        }
        self.tags.note_applied(window.seq);
        self.flushed_at = self.flushed_at.max(window.seq);
    }

    fn liveness(&self, slot: SlotId, now_ms: u64) -> Liveness {
        liveness(self.table.get(slot), &self.tags, &self.flushes, now_ms)
    }

    /// Removes the entry in `slot`, returning its memory and tag references.
    fn remove(&mut self, slot: SlotId) -> Entry {
        let entry = self.table.remove(slot);
        self.eviction.on_remove(slot);
        for tag in entry.tag_ids() {
            self.tags.release(tag);
        }
        self.forget_uncarried_tags_over_limit();
        self.entry_bytes -= entry.footprint();
        entry
    }

    /// Removes a dead entry and counts why it died.
    fn reclaim(&mut self, slot: SlotId, why: Liveness) {
        self.remove(slot);
        match why {
            Liveness::Expired => self.counters.expired_reclaimed += 1,
            Liveness::Invalidated => self.counters.invalidated_reclaimed += 1,
            Liveness::Fresh | Liveness::Stale => debug_assert!(false, "reclaiming a live entry"),
        }
    }

    /// Frees memory until `need` more bytes fit in the budget. Order: tags
    /// no entry carries, oldest first, then entries chosen by the eviction
    /// policy (dead ones first when it meets them). Returns false if nothing
    /// is left to free.
    ///
    /// Tags go first, whatever `tag_retention` says: forgetting one only
    /// raises the floor, which the guarantee allows at any time (see the
    /// [`tags`](crate::tags) module), while evicting a live entry loses a
    /// value someone may read. Otherwise invalidating tags nothing carries,
    /// as an app that invalidates a URL tag on every page edit does, could
    /// empty the cache. The price is paid in fences: while memory is short,
    /// a fenced SET whose tags are forgotten is refused if its fence is
    /// older than the latest invalidation forgotten (never wrongly
    /// accepted), and the client reads again and retries.
    ///
    /// Lease records go last: they are small and short-lived, and a shard
    /// full of entries (its usual state) must not drop the lease it has
    /// just granted to make room for it. Their own cap
    /// ([`ShardConfig::lease_limit`]) keeps them from crowding entries out.
    fn make_room(&mut self, need: usize, now_ms: u64) -> bool {
        while self.bytes_used() + need > self.config.memory_limit {
            if self.tags.reclaim_oldest() {
                continue;
            }
            let (table, tags, flushes) = (&self.table, &self.tags, &self.flushes);
            let victim = self
                .eviction
                .choose_victim(|slot| !liveness(table.get(slot), tags, flushes, now_ms).is_live());
            if let Some(slot) = victim {
                match self.liveness(slot, now_ms) {
                    Liveness::Fresh | Liveness::Stale => {
                        self.remove(slot);
                        self.counters.evictions += 1;
                    }
                    dead => self.reclaim(slot, dead),
                }
                continue;
            }
            if self.leases.drop_oldest() {
                continue;
            }
            return false;
        }
        true
    }

    /// Brings the shard back within its lease cap and its budget after a
    /// lease was granted, sparing the entry in `keep` (the one the read is
    /// about to return) from eviction.
    fn fit_leases(&mut self, keep: Option<SlotId>, now_ms: u64) {
        while self.leases.bytes() > self.config.lease_limit() && self.leases.drop_oldest() {}
        if self.bytes_used() <= self.config.memory_limit {
            return;
        }
        if let Some(slot) = keep {
            self.eviction.on_remove(slot);
        }
        let made_room = self.make_room(0, now_ms);
        if let Some(slot) = keep {
            self.eviction.on_insert(slot);
            self.eviction.on_access(slot);
        }
        debug_assert!(made_room, "leases can always be dropped");
    }

    /// Panics if an internal invariant is broken: byte accounting, tag
    /// reference counts, index and eviction-list consistency, the budget.
    /// O(entries + tags); meant for tests and debugging.
    pub fn assert_invariants(&self) {
        let mut entry_bytes = 0;
        let mut refs: Vec<u32> = Vec::new();
        for (slot, entry) in self.table.iter() {
            entry_bytes += entry.footprint();
            let key = entry.key();
            assert_eq!(
                self.table.find(self.table.hash_key(key), key),
                Some(slot),
                "index"
            );
            assert_eq!(entry.key_is_in_data(), key.len() > INLINE, "key form");
            let ids: Vec<TagId> = entry.tag_ids().collect();
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "tag ids sorted");
            assert!(entry.cas != 0 && entry.cas <= self.last_cas, "cas");
            for tag in ids {
                let tag = tag as usize;
                if refs.len() <= tag {
                    refs.resize(tag + 1, 0);
                }
                refs[tag] += 1;
            }
        }
        assert_eq!(entry_bytes, self.entry_bytes, "entry bytes");
        let mut listed: Vec<SlotId> = self.eviction.iter_oldest_first().collect();
        listed.sort_unstable();
        let mut occupied: Vec<SlotId> = self.table.iter().map(|(slot, _)| slot).collect();
        occupied.sort_unstable();
        assert_eq!(listed, occupied, "eviction list tracks exactly the entries");
        self.tags
            .assert_invariants(&|tag| refs.get(tag as usize).copied().unwrap_or(0));
        self.leases.assert_invariants();
        assert!(
            self.leases.bytes() <= self.config.lease_limit(),
            "leases over their share"
        );
        assert!(
            self.tags.unreferenced_bytes() <= self.config.uncarried_tag_limit(),
            "uncarried tags over their share: {} > {}",
            self.tags.unreferenced_bytes(),
            self.config.uncarried_tag_limit()
        );
        assert!(
            self.bytes_used() <= self.config.memory_limit,
            "over budget: {} > {}",
            self.bytes_used(),
            self.config.memory_limit
        );
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use bytes::Bytes;

    use super::*;

    pub(crate) const NOW: u64 = 1_000_000;

    pub(crate) fn shard() -> Shard {
        Shard::new(ShardConfig::default(), InvalidationSeq::ZERO)
    }

    pub(crate) fn seq(n: u64) -> InvalidationSeq {
        InvalidationSeq::new(n)
    }

    pub(crate) fn put(shard: &mut Shard, key: &[u8], value: &'static [u8], tags: &[&str], at: u64) {
        let outcome = shard.set(
            SetArgs::new(key, Bytes::from_static(value)).with_tags(tags),
            seq(at),
            NOW,
        );
        assert!(matches!(outcome, SetOutcome::Stored { .. }), "{outcome:?}");
    }

    pub(crate) fn value(shard: &mut Shard, key: &[u8]) -> Option<Bytes> {
        match shard.get(key, NOW, false) {
            Lookup::Hit(hit) => Some(hit.value),
            Lookup::Miss(_) => None,
        }
    }

    #[test]
    fn shard_can_move_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Shard>();
    }

    #[test]
    fn delete_removes_live_entries_only_once() {
        let mut shard = shard();
        put(&mut shard, b"k", b"v", &[], 1);
        assert!(shard.delete(b"k", NOW));
        assert!(!shard.delete(b"k", NOW));
        assert_eq!(value(&mut shard, b"k"), None);
        assert_eq!(shard.stats().deletes, 1);
        assert_eq!(shard.bytes_used(), 0);
        shard.assert_invariants();
    }

    #[test]
    fn delete_of_invalidated_entry_reports_absent() {
        let mut shard = shard();
        put(&mut shard, b"k", b"v", &["t"], 1);
        shard.invalidate(&["t"], seq(2), 0);
        assert!(!shard.delete(b"k", NOW));
        assert_eq!(shard.stats().invalidated_reclaimed, 1);
        assert_eq!(shard.len(), 0);
    }

    #[test]
    fn touch_extends_and_removes_ttl() {
        let mut shard = shard();
        let args = SetArgs::new(b"k", Bytes::from_static(b"v")).ttl_secs(10);
        assert!(matches!(
            shard.set(args, seq(1), 0),
            SetOutcome::Stored { .. }
        ));
        assert!(shard.touch(b"k", 20, 5_000));
        assert!(matches!(shard.get(b"k", 24_999, false), Lookup::Hit(_)));
        assert!(matches!(
            shard.get(b"k", 25_000, false),
            Lookup::Miss(MissReason::Expired)
        ));
        assert!(!shard.touch(b"k", 0, 25_000), "gone");

        let args = SetArgs::new(b"j", Bytes::from_static(b"v")).ttl_secs(1);
        assert!(matches!(
            shard.set(args, seq(1), 0),
            SetOutcome::Stored { .. }
        ));
        assert!(shard.touch(b"j", 0, 500));
        assert!(matches!(
            shard.get(b"j", u64::MAX - 1, false),
            Lookup::Hit(_)
        ));
        assert!(!shard.touch(b"absent", 5, 0));
        assert_eq!(shard.stats().touches, 2);
    }

    #[test]
    fn touch_of_expired_entry_fails() {
        let mut shard = shard();
        let args = SetArgs::new(b"k", Bytes::from_static(b"v")).ttl_secs(1);
        assert!(matches!(
            shard.set(args, seq(1), 0),
            SetOutcome::Stored { .. }
        ));
        assert!(!shard.touch(b"k", 100, 1_000));
        assert_eq!(shard.stats().expired_reclaimed, 1);
    }

    #[test]
    fn flush_all_drops_everything_and_raises_floor() {
        let mut shard = shard();
        put(&mut shard, b"a", b"1", &["t"], 1);
        put(&mut shard, b"b", b"2", &[], 1);
        shard.invalidate(&["other"], seq(3), 0);
        shard.flush_all(seq(10), 0);
        assert_eq!(shard.len(), 0);
        assert_eq!(shard.bytes_used(), 0);
        assert_eq!(shard.stats().tags_tracked, 0);
        assert_eq!(shard.floor(), seq(10));
        assert_eq!(value(&mut shard, b"a"), None);
        // A fence taken before the flush is refused, for any tag.
        let fenced = SetArgs::new(b"a", Bytes::from_static(b"x"))
            .with_tags(&["never-seen"])
            .fence(seq(9));
        assert_eq!(shard.set(fenced, seq(11), NOW), SetOutcome::Fenced);
        let after = SetArgs::new(b"a", Bytes::from_static(b"x"))
            .with_tags(&["never-seen"])
            .fence(seq(10));
        assert!(matches!(
            shard.set(after, seq(11), NOW),
            SetOutcome::Stored { .. }
        ));
        shard.assert_invariants();
    }

    /// Regression: a fenced SET with no tags passed with a fence from
    /// before a FLUSH_ALL (or before boot), though protocol.md §6.9 refuses
    /// every fence taken before the flush.
    #[test]
    fn untagged_fenced_set_from_before_flush_or_boot_is_refused() {
        let mut shard = Shard::new(ShardConfig::default(), seq(5));
        let untagged = |fence: u64| SetArgs::new(b"k", Bytes::from_static(b"x")).fence(seq(fence));
        assert_eq!(shard.set(untagged(4), seq(5), NOW), SetOutcome::Fenced);
        assert!(matches!(
            shard.set(untagged(5), seq(5), NOW),
            SetOutcome::Stored { .. }
        ));
        shard.flush_all(seq(10), 0);
        assert_eq!(shard.set(untagged(9), seq(10), NOW), SetOutcome::Fenced);
        assert!(matches!(
            shard.set(untagged(10), seq(10), NOW),
            SetOutcome::Stored { .. }
        ));
        let unfenced = SetArgs::new(b"k", Bytes::from_static(b"x"));
        assert!(matches!(
            shard.set(unfenced, seq(10), NOW),
            SetOutcome::Stored { .. }
        ));
        shard.assert_invariants();
    }

    #[test]
    fn flush_all_floor_covers_newer_invalidations() {
        let mut shard = shard();
        shard.invalidate(&["t"], seq(20), 0);
        shard.flush_all(seq(10), 0);
        assert_eq!(shard.floor(), seq(20));
        let fenced = SetArgs::new(b"k", Bytes::from_static(b"x"))
            .with_tags(&["t"])
            .fence(seq(15));
        assert_eq!(shard.set(fenced, seq(21), NOW), SetOutcome::Fenced);
    }

    #[test]
    fn boot_floor_refuses_older_fences() {
        let mut shard = Shard::new(ShardConfig::default(), seq(100));
        let stale = SetArgs::new(b"k", Bytes::from_static(b"x"))
            .with_tags(&["t"])
            .fence(seq(99));
        assert_eq!(shard.set(stale, seq(100), NOW), SetOutcome::Fenced);
        put(&mut shard, b"k", b"v", &["t"], 100);
        assert!(value(&mut shard, b"k").is_some());
    }

    /// The `n`th of a series of distinct 1,000-byte tags.
    fn long_tag(n: u64) -> String {
        format!("{n:0>1000}")
    }

    fn set_value(shard: &mut Shard, key: &[u8], len: usize, tags: &[&str], at: u64) {
        let args = SetArgs::new(key, Bytes::from(vec![b'v'; len])).with_tags(tags);
        let outcome = shard.set(args, seq(at), NOW);
        assert!(matches!(outcome, SetOutcome::Stored { .. }), "{outcome:?}");
    }

    /// Into a 1 MiB shard: `invalidations_first` invalidations of distinct
    /// 1,000-byte tags no entry carries, then 1,000 SETs of 1 KiB values,
    /// each followed by `invalidations_per_set` more. Returns the entries
    /// it then holds.
    fn entries_kept(invalidations_first: u64, invalidations_per_set: u64) -> usize {
        let mut shard = Shard::new(
            ShardConfig::default().with_memory_limit(1 << 20),
            InvalidationSeq::ZERO,
        );
        // Also the stamp of the next SET: the last sequence numbered.
        let mut last = 0;
        fn invalidate_new_tag(shard: &mut Shard, last: &mut u64) {
            *last += 1;
            shard.invalidate(&[long_tag(*last)], seq(*last), 0);
        }
        for _ in 0..invalidations_first {
            invalidate_new_tag(&mut shard, &mut last);
        }
        for key in 0..1_000u32 {
            set_value(&mut shard, &key.to_be_bytes(), 1024, &[], last);
            for _ in 0..invalidations_per_set {
                invalidate_new_tag(&mut shard, &mut last);
            }
        }
        shard.assert_invariants();
        shard.len()
    }

    /// Regression (issue 8, item 6), scaled down to one 1 MiB shard: tags no
    /// entry carries counted against the budget and a SET evicted live
    /// entries before it forgot them, so invalidating twice as many
    /// never-used 1,000-byte tags as there are SETs left a handful of
    /// entries.
    #[test]
    fn invalidating_never_used_tags_does_not_empty_the_shard() {
        let fit = entries_kept(0, 0);
        assert!(fit > 850, "1 KiB entries that fit in 1 MiB: {fit}");
        for kept in [entries_kept(2_000, 0), entries_kept(0, 2)] {
            assert!(kept * 10 >= fit * 9, "kept {kept} of {fit}");
        }
    }

    #[test]
    fn a_set_forgets_uncarried_tags_before_it_evicts_a_live_entry() {
        let limit = 64 * 1024;
        let mut shard = Shard::new(
            ShardConfig::default().with_memory_limit(limit),
            InvalidationSeq::ZERO,
        );
        for n in 1..=3 {
            shard.invalidate(&[long_tag(n)], seq(n), 0);
        }
        assert_eq!(shard.stats().tags_tracked, 3, "within their share");
        let mut key = 0u32;
        while shard.stats().tags_tracked > 0 {
            set_value(&mut shard, &key.to_be_bytes(), 1000, &[], 3);
            assert_eq!(shard.stats().evictions, 0, "a tag was left to forget");
            key += 1;
        }
        assert_eq!(shard.floor(), seq(3));
        while shard.stats().evictions == 0 {
            set_value(&mut shard, &key.to_be_bytes(), 1000, &[], 3);
            key += 1;
        }
        assert!(shard.bytes_used() > limit - 1200, "entries fill the shard");
        shard.assert_invariants();
    }

    #[test]
    fn uncarried_tags_hold_at_most_their_share_of_memory() {
        let limit = 64 * 1024;
        let share = limit / crate::UNCARRIED_TAG_MEMORY_DIVISOR;
        let mut shard = Shard::new(
            ShardConfig::default().with_memory_limit(limit),
            InvalidationSeq::ZERO,
        );
        assert_eq!(shard.config().uncarried_tag_limit(), share);
        for n in 1..=100 {
            shard.invalidate(&[long_tag(n)], seq(n), 0);
            assert!(shard.bytes_used() <= share);
        }
        assert_eq!(shard.stats().tags_tracked, 3);
        assert_eq!(shard.floor(), seq(97), "the oldest went first");
        shard.assert_invariants();

        // Tags carried by entries are not limited, and count once nothing
        // carries them any more.
        let carried: Vec<String> = (1_000..1_010).map(long_tag).collect();
        for (i, tag) in carried.iter().enumerate() {
            set_value(&mut shard, &[i as u8], 10, &[tag.as_str()], 100);
            shard.invalidate(&[tag.as_str()], seq(101 + i as u64), 0);
        }
        assert!(shard.stats().tags_tracked >= 10);
        assert_eq!(shard.sweep(NOW, 100).invalidated_reclaimed, 10);
        assert!(shard.bytes_used() <= share);
        assert_eq!(shard.stats().tags_tracked, 3);
        shard.assert_invariants();
    }

    #[test]
    fn invalidate_counts_tags_and_stays_in_budget() {
        let limit = 20 * crate::TAG_OVERHEAD;
        let mut shard = Shard::new(
            ShardConfig::default().with_memory_limit(limit),
            InvalidationSeq::ZERO,
        );
        let names: Vec<String> = (0..100).map(|i| format!("tag-{i}")).collect();
        shard.invalidate(&names, seq(5), 0);
        assert_eq!(shard.stats().tag_invalidations, 100);
        assert!(shard.bytes_used() <= limit);
        assert_eq!(shard.floor(), seq(5), "forgotten tags folded into floor");
        shard.assert_invariants();
    }
}
