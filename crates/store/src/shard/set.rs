//! SET and its conditional forms (ADD, REPLACE, CAS), with fences.

use bytes::Bytes;

use super::Shard;
use crate::entry::{self, Entry};
use crate::eviction::EvictionPolicy;
use crate::seq::InvalidationSeq;

/// When a SET may store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetMode {
    /// Always.
    Set,
    /// Only if there is no live entry under the key.
    Add,
    /// Only if there is a live entry under the key.
    Replace,
    /// Only if there is a live entry under the key whose CAS value is this.
    Cas(u64),
}

/// The arguments of [`Shard::set`].
///
/// Built with [`SetArgs::new`] and the builder methods, or literally.
#[derive(Clone, Debug)]
pub struct SetArgs<'a, T> {
    /// The key. The caller has validated it (length, bytes).
    pub key: &'a [u8],
    /// The value. The shard copies it into the entry's own allocation, so
    /// this may be a slice of a larger buffer (a frame in a read buffer).
    pub value: Bytes,
    /// Opaque to the store; returned with every hit.
    pub client_flags: u32,
    /// Seconds until expiry, counted from the SET's `now_ms`; `0` = never.
    pub ttl_secs: u32,
    /// The entry's tags; duplicates are ignored. The caller has validated
    /// them.
    pub tags: &'a [T],
    /// When to store.
    pub mode: SetMode,
    /// If set, refuse to store when any tag was invalidated after this
    /// sequence (see the `tags` module comment).
    pub fence: Option<InvalidationSeq>,
    /// If set, this SET is the refresh of the lease with this token
    /// (protocol.md §8.4): refused unless it is the key's current lease,
    /// fenced at the lease's grant, and it ends the lease whatever its
    /// outcome.
    pub lease: Option<u64>,
    /// Seconds after which the entry turns stale (protocol.md §6.5); `0` =
    /// never.
    pub stale_after_secs: u32,
}

impl<'a> SetArgs<'a, &'a [u8]> {
    /// A plain SET of `value` under `key`: no tags, no TTL, flags 0, no fence.
    pub fn new(key: &'a [u8], value: Bytes) -> Self {
        SetArgs {
            key,
            value,
            client_flags: 0,
            ttl_secs: 0,
            tags: &[],
            mode: SetMode::Set,
            fence: None,
            lease: None,
            stale_after_secs: 0,
        }
    }
}

impl<'a, T: AsRef<[u8]>> SetArgs<'a, T> {
    /// Replaces the tags.
    #[must_use]
    pub fn with_tags<U: AsRef<[u8]>>(self, tags: &'a [U]) -> SetArgs<'a, U> {
        SetArgs {
            key: self.key,
            value: self.value,
            client_flags: self.client_flags,
            ttl_secs: self.ttl_secs,
            tags,
            mode: self.mode,
            fence: self.fence,
            lease: self.lease,
            stale_after_secs: self.stale_after_secs,
        }
    }

    /// Sets [`SetArgs::client_flags`].
    #[must_use]
    pub fn client_flags(mut self, flags: u32) -> Self {
        self.client_flags = flags;
        self
    }

    /// Sets [`SetArgs::ttl_secs`].
    #[must_use]
    pub fn ttl_secs(mut self, ttl_secs: u32) -> Self {
        self.ttl_secs = ttl_secs;
        self
    }

    /// Sets [`SetArgs::mode`].
    #[must_use]
    pub fn mode(mut self, mode: SetMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets [`SetArgs::fence`].
    #[must_use]
    pub fn fence(mut self, fence: InvalidationSeq) -> Self {
        self.fence = Some(fence);
        self
    }

    /// Sets [`SetArgs::lease`].
    #[must_use]
    pub fn lease(mut self, token: u64) -> Self {
        self.lease = Some(token);
        self
    }

    /// Sets [`SetArgs::stale_after_secs`].
    #[must_use]
    pub fn stale_after_secs(mut self, secs: u32) -> Self {
        self.stale_after_secs = secs;
        self
    }
}

/// The answer to [`Shard::set`]. Only `Stored` changed anything.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetOutcome {
    /// Stored, with this fresh CAS value (never 0, increasing per shard).
    Stored {
        /// The new entry's CAS value.
        cas: u64,
    },
    /// ADD found a live entry, or REPLACE found none.
    NotStored,
    /// CAS found a live entry with a different CAS value.
    Exists,
    /// CAS found no live entry.
    NotFound,
    /// A tag was invalidated, or the shard flushed (or booted), after the
    /// fence, or the fence is above the SET's `current_seq` (another
    /// server's); see the [`tags`](crate::tags) module.
    Fenced,
    /// The entry (with its tags) exceeds the shard's whole memory limit.
    /// Nothing was evicted; an existing entry under the key is untouched.
    TooLarge,
    /// The SET carried a lease token that is not the key's current lease;
    /// nothing else was checked or changed.
    LeaseLost,
}

impl Shard {
    /// Stores `args.value` under `args.key` if `args.mode` and `args.fence`
    /// allow, evicting other entries if needed to stay within the budget.
    ///
    /// `current_seq` is the global invalidation counter's value when the
    /// server planned this SET, its stamp: the entry is valid until one of
    /// its tags is invalidated at a later sequence. The stamp may be older
    /// than invalidations this shard has already applied (a SET forwarded
    /// from another thread); of those, the ones it has forgotten do not count
    /// (see "Stale stamps" in the [`tags`](crate::tags) module), so a SET
    /// is never lost to invalidations of other tags. The caller guarantees
    /// it is at least every fence the server handed out before it received
    /// this SET, so a fence above it is refused ([`SetOutcome::Fenced`]):
    /// the server could not have issued it. `now_ms` is the monotonic time
    /// the TTL counts from. An expired or invalidated entry under the key
    /// counts as absent (and is reclaimed).
    ///
    /// A SET with a lease is checked against the key's lease first
    /// ([`SetOutcome::LeaseLost`]), then fenced at the lease's grant (or at
    /// its own fence, if lower); it ends the lease whatever its outcome. Any
    /// SET that stores ends the key's lease.
    pub fn set<T: AsRef<[u8]>>(
        &mut self,
        mut args: SetArgs<'_, T>,
        current_seq: InvalidationSeq,
        now_ms: u64,
    ) -> SetOutcome {
        if let Some(token) = args.lease {
            let Some(granted) = self.leases.take(args.key, token, now_ms) else {
                self.counters.set_lease_lost += 1;
                return SetOutcome::LeaseLost;
            };
            let granted = InvalidationSeq::new(granted);
            args.fence = Some(args.fence.map_or(granted, |fence| fence.min(granted)));
        }
        let hash = self.table.hash_key(args.key);
        // A dead entry under the key counts as absent, and goes, but only
        // once this SET holds its own tags: reclaiming it must not make the
        // shard forget a tag the SET is about to carry, since what the SET
        // counts of a tag's past is what the shard held when it arrived
        // ("Stale stamps" in the `tags` module).
        let mut existing = self.table.find(hash, args.key);
        let mut dead = None;
        if let Some(slot) = existing {
            let why = self.liveness(slot, now_ms);
            if !why.is_live() {
                dead = Some((slot, why));
                existing = None;
            }
        }
        let refusal = match (args.mode, existing) {
            (SetMode::Set, _) | (SetMode::Add, None) | (SetMode::Replace, Some(_)) => None,
            (SetMode::Add, Some(_)) | (SetMode::Replace, None) => Some(SetOutcome::NotStored),
            (SetMode::Cas(_), None) => Some(SetOutcome::NotFound),
            (SetMode::Cas(cas), Some(slot)) if self.table.get(slot).cas != cas => {
                self.counters.cas_mismatches += 1;
                Some(SetOutcome::Exists)
            }
            (SetMode::Cas(_), Some(_)) => None,
        };
        let limit = self.config.memory_limit;
        // Cheap refusal before interning anything.
        let refusal = refusal.or_else(|| {
            (entry::footprint(args.key.len(), args.value.len(), 0, false) > limit)
                .then_some(SetOutcome::TooLarge)
        });
        if let Some(outcome) = refusal {
            if let Some((slot, why)) = dead {
                self.reclaim(slot, why);
            }
            return outcome;
        }

        let mut ids = std::mem::take(&mut self.scratch_tags);
        ids.clear();
        ids.extend(args.tags.iter().map(|tag| self.tags.intern(tag.as_ref())));
        ids.sort_unstable();
        ids.dedup();
        // From here each id holds a reference, so eviction below cannot
        // reclaim a tag this entry is about to carry.
        for &id in &ids {
            self.tags.acquire(id);
        }
        if let Some((slot, why)) = dead {
            self.reclaim(slot, why);
        }

        // A fence above `current_seq` was not handed out by this server
        // before this SET (the contract on `current_seq`, above): it is
        // another server's, whose numbers say nothing about this one's
        // invalidations.
        let refused = if let Some(fence) = args.fence {
            fence > current_seq
                || fence.get() < self.flushed_at
                || self.tags.breaks_fence(ids.iter().copied(), fence.get())
        } else {
            false
        };
        let stale_at_ms = entry::stale_at(now_ms, args.stale_after_secs);
        let need = entry::footprint(
            args.key.len(),
            args.value.len(),
            ids.len(),
            stale_at_ms.is_some(),
        );
        let tag_bytes: usize = ids.iter().map(|&id| self.tags.bytes_of(id)).sum();
        // With every other entry evicted and every unreferenced tag
        // reclaimed, only this entry and its tags remain: if that fits, the
        // eviction below cannot run dry.
        let outcome = if refused {
            self.counters.sets_fenced += 1;
            Err(SetOutcome::Fenced)
        } else if need.saturating_add(tag_bytes) > limit {
            Err(SetOutcome::TooLarge)
        } else {
            Ok(())
        };
        if let Err(outcome) = outcome {
            self.abandon_tags(ids);
            return outcome;
        }

        // A fenced SET is stamped with its fence, not the current sequence:
        // an invalidation numbered after the fence but still in flight to
        // this shard must, on arrival, invalidate this entry. Stamping it
        // with `current_seq` (possibly past that invalidation) would let the
        // stale value survive it.
        let stored_seq = match args.fence {
            Some(fence) => fence.get().min(current_seq.get()),
            None => current_seq.get(),
        };
        let expire_at_ms = entry::expire_at(now_ms, args.ttl_secs);

        let Some(slot) = existing else {
            if !self.make_room(need, now_ms) {
                debug_assert!(false, "make_room ran dry despite the size check");
                self.abandon_tags(ids);
                return SetOutcome::TooLarge;
            }
            let cas = self.next_cas();
            let mut entry = Entry::new(args.key, &args.value, &ids, stale_at_ms);
            self.scratch_tags = ids;
            entry.cas = cas;
            entry.stored_seq = stored_seq;
            entry.expire_at_ms = expire_at_ms;
            entry.client_flags = args.client_flags;
            let slot = self.table.insert(hash, entry);
            self.eviction.on_insert(slot);
            self.entry_bytes += need;
            self.counters.sets += 1;
            self.leases.end(args.key);
            return SetOutcome::Stored { cas };
        };

        // Overwrite in place: the key, its index bucket and its place in the
        // eviction order stay; an overwrite counts as an access. This skips
        // an index removal and reinsertion (and the tombstones they leave).
        let cas = self.next_cas();
        let entry = self.table.get_mut(slot);
        let old_bytes = entry.footprint();
        let old_data = entry.replace(&args.value, &ids, stale_at_ms);
        self.scratch_tags = ids;
        entry.cas = cas;
        entry.stored_seq = stored_seq;
        entry.expire_at_ms = expire_at_ms;
        entry.client_flags = args.client_flags;
        self.entry_bytes = self.entry_bytes - old_bytes + need;
        // The new entry holds its own references (acquired above), so tags
        // shared with the old value stay put.
        for id in Entry::ids_of(&old_data) {
            self.tags.release(id);
        }
        drop(old_data);
        self.forget_uncarried_tags_over_limit();
        self.eviction.on_access(slot);
        if self.bytes_used() > limit {
            // Shield the entry being written from its own eviction.
            self.eviction.on_remove(slot);
            let made_room = self.make_room(0, now_ms);
            self.eviction.on_insert(slot);
            self.eviction.on_access(slot);
            debug_assert!(made_room, "make_room ran dry despite the size check");
        }
        self.counters.sets += 1;
        self.leases.end(args.key);
        SetOutcome::Stored { cas }
    }

    /// A fresh CAS value: never 0, increasing for the life of the shard.
    fn next_cas(&mut self) -> u64 {
        self.last_cas += 1;
        self.last_cas
    }

    /// Drops the references a refused SET took; tags it interned go again.
    fn abandon_tags(&mut self, ids: Vec<crate::tags::TagId>) {
        for &id in &ids {
            self.tags.release(id);
        }
        // Tags it found uncarried are so again, and the dead entry it
        // replaced may have left more.
        self.forget_uncarried_tags_over_limit();
        self.scratch_tags = ids;
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::entry::footprint;
    use crate::key::INLINE;
    use crate::shard::tests::{put, seq, shard, value, NOW};
    use crate::{Lookup, MissReason, ShardConfig, ENTRY_OVERHEAD, TAG_OVERHEAD};

    fn set(shard: &mut Shard, key: &[u8], value: &'static [u8], mode: SetMode) -> SetOutcome {
        shard.set(
            SetArgs::new(key, Bytes::from_static(value)).mode(mode),
            seq(1),
            NOW,
        )
    }

    fn cas_of(outcome: SetOutcome) -> u64 {
        match outcome {
            SetOutcome::Stored { cas } => cas,
            other => panic!("not stored: {other:?}"),
        }
    }

    #[test]
    fn set_overwrites_and_cas_increases() {
        let mut shard = shard();
        let first = cas_of(set(&mut shard, b"k", b"1", SetMode::Set));
        let second = cas_of(set(&mut shard, b"k", b"2", SetMode::Set));
        assert!(first > 0 && second > first);
        assert_eq!(value(&mut shard, b"k").as_deref(), Some(&b"2"[..]));
        assert_eq!(shard.len(), 1);
        shard.assert_invariants();
    }

    #[test]
    fn add_stores_only_when_absent_or_dead() {
        let mut shard = shard();
        assert!(matches!(
            set(&mut shard, b"k", b"1", SetMode::Add),
            SetOutcome::Stored { .. }
        ));
        assert_eq!(
            set(&mut shard, b"k", b"2", SetMode::Add),
            SetOutcome::NotStored
        );
        assert_eq!(value(&mut shard, b"k").as_deref(), Some(&b"1"[..]));

        put(&mut shard, b"t", b"1", &["tag"], 1);
        shard.invalidate(&["tag"], seq(2), 0);
        assert!(matches!(
            set(&mut shard, b"t", b"2", SetMode::Add),
            SetOutcome::Stored { .. }
        ));

        let args = SetArgs::new(b"e", Bytes::from_static(b"1")).ttl_secs(1);
        let _ = shard.set(args, seq(2), 0);
        let args = SetArgs::new(b"e", Bytes::from_static(b"2")).mode(SetMode::Add);
        assert!(matches!(
            shard.set(args, seq(2), 1_000),
            SetOutcome::Stored { .. }
        ));
    }

    #[test]
    fn replace_stores_only_when_live() {
        let mut shard = shard();
        assert_eq!(
            set(&mut shard, b"k", b"1", SetMode::Replace),
            SetOutcome::NotStored
        );
        assert_eq!(value(&mut shard, b"k"), None);
        put(&mut shard, b"k", b"1", &[], 1);
        assert!(matches!(
            set(&mut shard, b"k", b"2", SetMode::Replace),
            SetOutcome::Stored { .. }
        ));
        assert_eq!(value(&mut shard, b"k").as_deref(), Some(&b"2"[..]));
    }

    #[test]
    fn replace_of_expired_entry_is_not_stored() {
        let mut shard = shard();
        let _ = shard.set(
            SetArgs::new(b"k", Bytes::from_static(b"1")).ttl_secs(1),
            seq(1),
            0,
        );
        let args = SetArgs::new(b"k", Bytes::from_static(b"2")).mode(SetMode::Replace);
        assert_eq!(shard.set(args, seq(1), 1_000), SetOutcome::NotStored);
    }

    #[test]
    fn cas_checks_the_current_value() {
        let mut shard = shard();
        assert_eq!(
            set(&mut shard, b"k", b"1", SetMode::Cas(1)),
            SetOutcome::NotFound
        );
        let cas = cas_of(set(&mut shard, b"k", b"1", SetMode::Set));
        assert_eq!(
            set(&mut shard, b"k", b"2", SetMode::Cas(cas + 100)),
            SetOutcome::Exists
        );
        assert_eq!(shard.stats().cas_mismatches, 1);
        let next = cas_of(set(&mut shard, b"k", b"2", SetMode::Cas(cas)));
        assert!(next > cas);
        assert_eq!(
            set(&mut shard, b"k", b"3", SetMode::Cas(cas)),
            SetOutcome::Exists
        );
        assert_eq!(value(&mut shard, b"k").as_deref(), Some(&b"2"[..]));
    }

    #[test]
    fn cas_on_invalidated_entry_is_not_found() {
        let mut shard = shard();
        put(&mut shard, b"k", b"1", &["t"], 1);
        let cas = shard.get(b"k", NOW, false).into_hit().expect("hit").cas;
        shard.invalidate(&["t"], seq(2), 0);
        let args = SetArgs::new(b"k", Bytes::from_static(b"2")).mode(SetMode::Cas(cas));
        assert_eq!(shard.set(args, seq(3), NOW), SetOutcome::NotFound);
    }

    #[test]
    fn fenced_set_is_refused_after_a_newer_invalidation() {
        let mut shard = shard();
        shard.invalidate(&["t"], seq(10), 0);
        let args = SetArgs::new(b"k", Bytes::from_static(b"v"))
            .with_tags(&["a", "t"])
            .fence(seq(9));
        assert_eq!(shard.set(args, seq(11), NOW), SetOutcome::Fenced);
        assert_eq!(value(&mut shard, b"k"), None);
        assert_eq!(shard.stats().sets_fenced, 1);
        assert_eq!(shard.stats().tags_tracked, 1, "interned tag `a` undone");
        shard.assert_invariants();
    }

    #[test]
    fn fenced_set_is_accepted_when_tags_are_older() {
        let mut shard = shard();
        shard.invalidate(&["t"], seq(10), 0);
        let args = SetArgs::new(b"k", Bytes::from_static(b"v"))
            .with_tags(&["t"])
            .fence(seq(10));
        assert!(matches!(
            shard.set(args, seq(12), NOW),
            SetOutcome::Stored { .. }
        ));
        assert!(value(&mut shard, b"k").is_some());
    }

    #[test]
    fn fenced_set_racing_an_in_flight_invalidation_ends_up_invalid() {
        // Fence 10 taken; INVALIDATE t numbered 11; the SET (handled when the
        // counter reads 11) reaches the shard before the invalidation does.
        let mut shard = shard();
        let args = SetArgs::new(b"k", Bytes::from_static(b"stale"))
            .with_tags(&["t"])
            .fence(seq(10));
        assert!(matches!(
            shard.set(args, seq(11), NOW),
            SetOutcome::Stored { .. }
        ));
        assert!(value(&mut shard, b"k").is_some());
        shard.invalidate(&["t"], seq(11), 0);
        assert_eq!(
            shard.get(b"k", NOW, false),
            Lookup::Miss(MissReason::Invalidated)
        );
    }

    #[test]
    fn unfenced_set_after_invalidation_was_numbered_survives_it() {
        let mut shard = shard();
        put(&mut shard, b"k", b"fresh", &["t"], 11);
        shard.invalidate(&["t"], seq(11), 0);
        assert!(value(&mut shard, b"k").is_some());
    }

    /// A shard whose floor has risen to 10 by forgetting an invalidation of
    /// a tag no entry carried.
    fn shard_with_floor_raised_to_10() -> Shard {
        let mut shard = Shard::new(
            ShardConfig::default().with_tag_retention(0),
            InvalidationSeq::ZERO,
        );
        shard.invalidate(&["junk"], seq(10), 0);
        assert_eq!(shard.sweep(NOW, 10).tags_reclaimed, 1);
        assert_eq!(shard.floor(), seq(10));
        shard
    }

    /// Regression (issue 8, item 1): a SET forwarded from another shard is
    /// stamped with the sequence its connection read before the hop. Its tag
    /// was new here and the shard had meanwhile forgotten invalidations of
    /// other tags, raising its floor above the stamp: the tag was interned
    /// at the floor, the SET answered STORED, and the next GET missed as
    /// invalidated, though nothing had invalidated its tag.
    #[test]
    fn stale_stamped_set_is_not_lost_to_a_floor_raised_past_its_stamp() {
        let mut shard = shard_with_floor_raised_to_10();
        put(&mut shard, b"k", b"v", &["page"], 5);
        assert_eq!(value(&mut shard, b"k").as_deref(), Some(&b"v"[..]));
        // The tag it forgot reads as forgotten to the entries of a SET too.
        put(&mut shard, b"j", b"v", &["junk"], 5);
        assert_eq!(value(&mut shard, b"j").as_deref(), Some(&b"v"[..]));
        assert_eq!(shard.stats().get_misses, 0);
        shard.assert_invariants();
        // A fence from before the floor is still refused for the same tag.
        let fenced = SetArgs::new(b"f", Bytes::from_static(b"v"))
            .with_tags(&["page"])
            .fence(seq(5));
        assert_eq!(shard.set(fenced, seq(10), NOW), SetOutcome::Fenced);
    }

    /// Why the stamp is not simply raised to the floor: an invalidation
    /// numbered between the stamp and the floor may still be on its way (the
    /// SET's own connection sent it right after the SET, and an invalidation
    /// numbered later reached this shard first and was forgotten). When it
    /// arrives it must cover the entry.
    #[test]
    fn invalidation_numbered_after_a_stale_stamp_arriving_after_the_set_covers_it() {
        let mut shard = shard_with_floor_raised_to_10();
        put(&mut shard, b"k", b"v", &["page"], 5);
        shard.invalidate(&["page"], seq(7), 0);
        assert_eq!(
            shard.get(b"k", NOW, false),
            Lookup::Miss(MissReason::Invalidated)
        );
        // One numbered before the stamp does not.
        put(&mut shard, b"k", b"v", &["page"], 5);
        shard.invalidate(&["page"], seq(4), 0);
        assert!(value(&mut shard, b"k").is_some());
        shard.assert_invariants();
    }

    /// What the shard still remembers it counts as numbered: a tag
    /// invalidated after a SET's stamp covers the SET even if the
    /// invalidation reached the shard first.
    #[test]
    fn stale_stamped_set_is_covered_by_a_remembered_invalidation_of_its_tag() {
        let mut shard = shard();
        shard.invalidate(&["page"], seq(10), 0);
        put(&mut shard, b"k", b"v", &["page"], 5);
        assert_eq!(
            shard.get(b"k", NOW, false),
            Lookup::Miss(MissReason::Invalidated)
        );
        put(&mut shard, b"k", b"v", &["page"], 10);
        assert!(value(&mut shard, b"k").is_some());
        shard.assert_invariants();
    }

    /// Found by the model: a SET over its key's dead entry reclaimed that
    /// entry first, which could make the shard forget a tag the SET then
    /// interned afresh, so the SET stopped counting an invalidation of it
    /// that the shard had held when the SET arrived.
    #[test]
    fn a_set_over_a_dead_entry_counts_the_tags_the_shard_held_when_it_arrived() {
        let mut shard = shard_with_floor_raised_to_10();
        put(&mut shard, b"k", b"old", &["page", "user"], 10);
        // Late, below what a fence reads (10), after what the next SET is
        // stamped with (5).
        shard.invalidate(&["page"], seq(7), 0);
        shard.invalidate(&["user"], seq(11), 0);
        put(&mut shard, b"k", b"new", &["page"], 5);
        assert_eq!(
            shard.get(b"k", NOW, false),
            Lookup::Miss(MissReason::Invalidated)
        );
        shard.assert_invariants();
    }

    #[test]
    fn fence_sees_a_missing_tag_as_the_floor() {
        let mut shard = shard();
        shard.invalidate(&["t"], seq(8), 0);
        assert_eq!(shard.sweep(NOW, 10).tags_reclaimed, 0, "within retention");
        let mut shard = Shard::new(
            ShardConfig::default().with_tag_retention(0),
            InvalidationSeq::ZERO,
        );
        shard.invalidate(&["t"], seq(8), 0);
        assert_eq!(shard.sweep(NOW, 10).tags_reclaimed, 1);
        assert_eq!(shard.floor(), seq(8));
        assert_eq!(shard.stats().tags_tracked, 0);
        // `t` is forgotten, and so is a tag never seen: both read as 8.
        for tag in ["t", "never"] {
            let tags = [tag];
            let args = SetArgs::new(b"k", Bytes::from_static(b"v"))
                .with_tags(&tags)
                .fence(seq(7));
            assert_eq!(shard.set(args, seq(9), NOW), SetOutcome::Fenced);
        }
        let args = SetArgs::new(b"k", Bytes::from_static(b"v"))
            .with_tags(&["never"])
            .fence(seq(8));
        assert!(matches!(
            shard.set(args, seq(9), NOW),
            SetOutcome::Stored { .. }
        ));
    }

    /// Regression (issue 8): a fence above the current sequence was
    /// accepted (and the entry stamped with the current sequence), so a
    /// fence from a server further along let a value computed before an
    /// invalidation this server had applied be stored after it.
    #[test]
    fn a_fence_above_current_seq_is_refused_whatever_the_tags() {
        let mut shard = shard();
        shard.invalidate(&["t"], seq(20), 0);
        for tags in [&["t"][..], &["never-invalidated"], &[]] {
            let args = SetArgs::new(b"k", Bytes::from_static(b"v"))
                .with_tags(tags)
                .fence(seq(50));
            assert_eq!(
                shard.set(args, seq(20), NOW),
                SetOutcome::Fenced,
                "{tags:?}"
            );
        }
        assert_eq!(value(&mut shard, b"k"), None);
        assert_eq!(shard.stats().sets_fenced, 3);
        // The current sequence itself is a fence the server may have issued.
        let args = SetArgs::new(b"k", Bytes::from_static(b"v"))
            .with_tags(&["t"])
            .fence(seq(20));
        assert!(matches!(
            shard.set(args, seq(20), NOW),
            SetOutcome::Stored { .. }
        ));
        shard.assert_invariants();
    }

    #[test]
    fn too_large_changes_nothing() {
        let limit = 4096;
        let mut shard = Shard::new(
            ShardConfig::default().with_memory_limit(limit),
            InvalidationSeq::ZERO,
        );
        put(&mut shard, b"k", b"small", &["t"], 1);
        let before = shard.bytes_used();
        let huge = Bytes::from(vec![0u8; limit]);
        assert_eq!(
            shard.set(SetArgs::new(b"k", huge), seq(1), NOW),
            SetOutcome::TooLarge
        );
        // Fits alone, but not with its tags.
        let value = Bytes::from(vec![0u8; limit - ENTRY_OVERHEAD - 1 - 4]);
        let args = SetArgs::new(b"x", value).with_tags(&["a-long-tag-name"]);
        assert_eq!(shard.set(args, seq(1), NOW), SetOutcome::TooLarge);
        assert_eq!(shard.bytes_used(), before);
        assert_eq!(shard.stats().evictions, 0);
        assert!(super::super::tests::value(&mut shard, b"k").is_some());
        shard.assert_invariants();
    }

    #[test]
    fn largest_fitting_entry_is_stored_by_evicting_everything() {
        let limit = 4096;
        let mut shard = Shard::new(
            ShardConfig::default().with_memory_limit(limit),
            InvalidationSeq::ZERO,
        );
        put(&mut shard, b"a", b"1", &["t"], 1);
        put(&mut shard, b"b", b"2", &[], 1);
        let value = Bytes::from(vec![0u8; limit - ENTRY_OVERHEAD - 1 - 4 - TAG_OVERHEAD - 1]);
        let args = SetArgs::new(b"x", value).with_tags(&["u"]);
        assert!(matches!(
            shard.set(args, seq(1), NOW),
            SetOutcome::Stored { .. }
        ));
        assert_eq!(shard.bytes_used(), limit);
        assert_eq!(shard.len(), 1);
        assert_eq!(shard.stats().evictions, 2);
        shard.assert_invariants();
    }

    #[test]
    fn growing_overwrite_evicts_others_but_never_itself() {
        let limit = 4096;
        let mut shard = Shard::new(
            ShardConfig::default().with_memory_limit(limit),
            InvalidationSeq::ZERO,
        );
        for key in [b"a", b"b", b"c"] {
            put(&mut shard, key, b"1", &["t"], 1);
        }
        // Make `b` the entry the eviction hand would pick first.
        let _ = shard.get(b"a", NOW, false);
        let _ = shard.get(b"c", NOW, false);
        let value = Bytes::from(vec![0u8; limit - ENTRY_OVERHEAD - 1 - 4 - TAG_OVERHEAD - 1]);
        let args = SetArgs::new(b"b", value.clone()).with_tags(&["t"]);
        assert!(matches!(
            shard.set(args, seq(1), NOW),
            SetOutcome::Stored { .. }
        ));
        assert_eq!(shard.len(), 1);
        assert_eq!(shard.bytes_used(), limit);
        assert_eq!(self::value(&mut shard, b"b"), Some(value));
        shard.assert_invariants();
    }

    #[test]
    fn eviction_keeps_bytes_within_limit() {
        let limit = 64 * 1024;
        let mut shard = Shard::new(
            ShardConfig::default().with_memory_limit(limit),
            InvalidationSeq::ZERO,
        );
        for i in 0..5_000u32 {
            let key = i.to_be_bytes();
            let tag = format!("t{}", i % 37);
            let args = SetArgs::new(&key, Bytes::from(vec![0u8; (i % 300) as usize]))
                .with_tags(std::slice::from_ref(&tag));
            assert!(matches!(
                shard.set(args, seq(1), NOW),
                SetOutcome::Stored { .. }
            ));
            assert!(shard.bytes_used() <= limit);
            if i % 3 == 0 {
                let _ = shard.get(&(i / 2).to_be_bytes(), NOW, false);
            }
        }
        assert!(shard.stats().evictions > 0);
        assert!(
            value(&mut shard, &4_999u32.to_be_bytes()).is_some(),
            "newest kept"
        );
        shard.assert_invariants();
    }

    #[test]
    fn eviction_prefers_dead_entries_it_meets() {
        let limit = 8 * 1024;
        let mut shard = Shard::new(
            ShardConfig::default().with_memory_limit(limit),
            InvalidationSeq::ZERO,
        );
        let mut i = 0u32;
        while shard.bytes_used() + ENTRY_OVERHEAD + 104 <= limit {
            let key = i.to_be_bytes();
            let tags: &[&str] = if i % 2 == 0 { &["doomed"] } else { &[] };
            let args = SetArgs::new(&key, Bytes::from(vec![0u8; 100])).with_tags(tags);
            assert!(matches!(
                shard.set(args, seq(1), NOW),
                SetOutcome::Stored { .. }
            ));
            let _ = shard.get(&key, NOW, false);
            i += 1;
        }
        shard.invalidate(&["doomed"], seq(2), 0);
        let args = SetArgs::new(b"new", Bytes::from(vec![0u8; 100]));
        assert!(matches!(
            shard.set(args, seq(3), NOW),
            SetOutcome::Stored { .. }
        ));
        let stats = shard.stats();
        assert_eq!(stats.evictions, 0, "a dead entry made room");
        assert_eq!(stats.invalidated_reclaimed, 1);
    }

    #[test]
    fn duplicate_tags_are_one_tag() {
        let mut shard = shard();
        put(&mut shard, b"k", b"v", &["t", "t", "t"], 1);
        assert_eq!(shard.stats().tags_tracked, 1);
        let one = crate::entry::footprint(1, 1, 1, false) + TAG_OVERHEAD + 1;
        assert_eq!(shard.bytes_used(), one);
        assert!(shard.delete(b"k", NOW));
        assert_eq!(shard.stats().tags_tracked, 0);
        shard.assert_invariants();
    }

    #[test]
    fn keys_of_either_form_survive_overwrite_sweep_and_delete_and_are_charged_their_length() {
        let tag = |name: &str| TAG_OVERHEAD + name.len();
        for len in [0, 1, INLINE, INLINE + 1, 32, 250] {
            let key = vec![b'k'; len];
            let mut shard = shard();
            put(&mut shard, &key, b"v1", &["a"], 1);
            assert_eq!(shard.bytes_used(), footprint(len, 2, 1, false) + tag("a"));

            // The overwrite repacks the data block: more tags ahead of a long
            // key, and a longer value after it.
            put(&mut shard, &key, b"value-2", &["b", "a"], 2);
            assert_eq!(
                shard.bytes_used(),
                footprint(len, 7, 2, false) + tag("a") + tag("b"),
                "len {len}"
            );
            let names = Some(vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")]);
            assert_eq!(shard.tag_names(&key), names);
            let hit = shard.get(&key, NOW, true).into_hit().expect("hit");
            assert_eq!((&hit.value[..], hit.tags), (&b"value-2"[..], names));
            shard.assert_invariants();

            put(&mut shard, &key, b"", &[], 3);
            assert_eq!(shard.bytes_used(), footprint(len, 0, 0, false), "len {len}");
            assert_eq!(value(&mut shard, &key).as_deref(), Some(&b""[..]));
            assert!(shard.delete(&key, NOW));
            assert_eq!(shard.bytes_used(), 0);

            put(&mut shard, &key, b"doomed", &["t"], 4);
            shard.invalidate(&["t"], seq(5), 0);
            assert_eq!(shard.sweep(NOW, 10).invalidated_reclaimed, 1);
            assert_eq!(shard.bytes_used(), tag("t"), "only the invalidated tag");
            shard.assert_invariants();
        }
    }

    #[test]
    fn overwrite_keeps_shared_tags() {
        let mut shard = shard();
        shard.invalidate(&["t"], seq(3), 0);
        put(&mut shard, b"k", b"1", &["t"], 4);
        put(&mut shard, b"k", b"2", &["t"], 5);
        shard.assert_invariants();
        assert!(value(&mut shard, b"k").is_some());
    }
}
