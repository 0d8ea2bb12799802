//! GET: look a key up, reclaiming what is dead on the way.

use bytes::Bytes;

use super::{Liveness, Shard};
use crate::eviction::EvictionPolicy;
use crate::leases::LeaseState;
use crate::seq::InvalidationSeq;
use crate::table::SlotId;
use crate::tags::{RequestTags, Verdict};

/// The answer to [`Shard::get`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A live entry.
    Hit(Hit),
    /// No live entry, and why.
    Miss(MissReason),
}

impl Lookup {
    /// The hit, if any.
    pub fn hit(&self) -> Option<&Hit> {
        match self {
            Lookup::Hit(hit) => Some(hit),
            Lookup::Miss(_) => None,
        }
    }

    /// The hit, if any, by value.
    pub fn into_hit(self) -> Option<Hit> {
        match self {
            Lookup::Hit(hit) => Some(hit),
            Lookup::Miss(_) => None,
        }
    }
}

/// A live entry as returned by a GET.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The value, copied out of the shard.
    pub value: Bytes,
    /// The client's opaque flags, as given to SET.
    pub client_flags: u32,
    /// The entry's CAS value, for a later `SetMode::Cas`.
    pub cas: u64,
    /// The entry's tag names, sorted and unique, if the GET asked for them.
    pub tags: Option<Vec<Bytes>>,
}

/// Why a GET found no live entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissReason {
    /// No entry under the key.
    Absent,
    /// The entry's TTL had passed; it has now been removed.
    Expired,
    /// One of the entry's tags was invalidated after it was stored (hard,
    /// or soft with its window ended); it has now been removed.
    Invalidated,
    /// The entry is stale and the read did not allow stale data; it is
    /// kept for reads that do.
    Stale,
    /// One of the read's request-scoped tags was invalidated after the entry
    /// was stored; the entry is kept for other reads.
    RequestTags,
}

/// A live entry borrowed from the shard, as returned by
/// [`Shard::get_borrowed`] and [`Shard::read`]: the server encodes it
/// straight into a response without copying the value first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HitRef<'a> {
    /// The stored value.
    pub value: &'a [u8],
    /// The client's opaque flags, as given to SET.
    pub client_flags: u32,
    /// The entry's CAS value, for a later `SetMode::Cas`.
    pub cas: u64,
}

/// How a [`Shard::read`] treats stale entries, leases and request-scoped
/// tags (protocol.md §6.3, §8.3 to §8.5).
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadOptions {
    /// Answer a stale entry with its value ([`Read::Hit`] with `stale`)
    /// rather than as a miss.
    pub allow_stale: bool,
    /// Ask for the key's refresh lease, recording this fence (the one the
    /// response carries) as the lease's: its SET is fenced there.
    pub lease: Option<InvalidationSeq>,
    /// Tags checked against the entry as if it carried them, for this read
    /// only, resolved by [`Shard::resolve_request_tags`].
    pub request_tags: Option<RequestTags>,
}

impl ReadOptions {
    /// A v1 read: stale entries are misses, no lease, no request tags.
    pub const PLAIN: ReadOptions = ReadOptions {
        allow_stale: false,
        lease: None,
        request_tags: None,
    };
}

/// The answer to [`Shard::read`]: protocol.md §6.3's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read<E> {
    /// A fresh entry, or a stale one the read allowed; with the lease token
    /// granted to this reader, if any.
    Hit {
        /// The entry.
        entry: E,
        /// Whether it is stale.
        stale: bool,
        /// The lease granted to this reader.
        lease: Option<u64>,
    },
    /// No entry this read may have, and why; with the lease token granted
    /// to this reader, if any.
    Miss {
        /// Why.
        reason: MissReason,
        /// The lease granted to this reader.
        lease: Option<u64>,
    },
    /// The read asked for a lease, found no fresh entry (nor a stale one it
    /// allowed), and another reader holds the lease.
    HotMiss,
    /// `accept` declined the entry; the shard is as if the read had not
    /// happened.
    Declined,
}

impl<E> Read<E> {
    /// The same read with its entry turned into `F`: the shard finds a slot
    /// first and lends the entry out only once it has finished counting.
    #[inline]
    fn map_entry<F>(self, lend: impl FnOnce(E) -> F) -> Read<F> {
        match self {
            Read::Hit {
                entry,
                stale,
                lease,
            } => Read::Hit {
                entry: lend(entry),
                stale,
                lease,
            },
            Read::Miss { reason, lease } => Read::Miss { reason, lease },
            Read::HotMiss => Read::HotMiss,
            Read::Declined => Read::Declined,
        }
    }
}

impl Shard {
    /// Looks `key` up at time `now_ms`, returning tag names too when
    /// `with_tags`. The value is copied out; [`Shard::get_borrowed`] avoids
    /// the copy when the caller can use the bytes in place. A hit marks the
    /// entry accessed for eviction. An expired or invalidated entry is
    /// removed here rather than left for the sweep; a stale one is a miss,
    /// and kept for reads that allow it.
    pub fn get(&mut self, key: &[u8], now_ms: u64, with_tags: bool) -> Lookup {
        match self.read_slot(key, now_ms, &ReadOptions::PLAIN, |_| true) {
            Read::Hit { entry: slot, .. } => {
                let entry = self.table.get(slot);
                Lookup::Hit(Hit {
                    value: Bytes::copy_from_slice(entry.value()),
                    client_flags: entry.client_flags,
                    cas: entry.cas,
                    tags: with_tags.then(|| self.tags.sorted_names(entry.tag_ids())),
                })
            }
            Read::Miss { reason, .. } => Lookup::Miss(reason),
            Read::HotMiss | Read::Declined => {
                unreachable!("a plain read that accepts every hit")
            }
        }
    }

    /// [`Shard::get`] without tag names, lending the value instead of
    /// copying it. Counts, marks and reclaims exactly as `get` does.
    pub fn get_borrowed(&mut self, key: &[u8], now_ms: u64) -> Result<HitRef<'_>, MissReason> {
        match self.get_borrowed_if(key, now_ms, |_| true) {
            Ok(Some(hit)) => Ok(hit),
            Ok(None) => unreachable!("every hit accepted"),
            Err(reason) => Err(reason),
        }
    }

    /// [`Shard::get_borrowed`] for a caller with limited room: a live entry
    /// is first shown to `accept`, and only if it accepts is the read
    /// counted and the entry marked accessed, so declining leaves the shard
    /// exactly as if the read had not happened (`Ok(None)`). A miss is
    /// counted and reclaimed as usual. The server declines a hit whose
    /// response would not fit in a connection's memory budget, and reads the
    /// key again once there is room.
    pub fn get_borrowed_if(
        &mut self,
        key: &[u8],
        now_ms: u64,
        accept: impl FnOnce(&HitRef<'_>) -> bool,
    ) -> Result<Option<HitRef<'_>>, MissReason> {
        match self.read(key, now_ms, &ReadOptions::PLAIN, accept) {
            Read::Hit { entry, .. } => Ok(Some(entry)),
            Read::Miss { reason, .. } => Err(reason),
            Read::Declined => Ok(None),
            Read::HotMiss => unreachable!("a plain read asks for no lease"),
        }
    }

    /// The full read of protocol.md §6.3 at `now_ms`: a fresh entry is a
    /// hit; a stale one a hit if `options.allow_stale`, else a miss; with
    /// `options.lease`, the first reader that finds no fresh entry while
    /// the key's lease is free is granted it, and later ones, while it is
    /// held, get [`Read::HotMiss`] (or the stale entry, without a lease, if
    /// they allow it). An entry about to be returned is first shown to
    /// `accept`; declining leaves the shard exactly as if the read had not
    /// happened ([`Read::Declined`]), lease included. Dead entries found are
    /// removed, as by [`Shard::get`]; one dead or stale only to
    /// `options.request_tags` is left as it is.
    pub fn read(
        &mut self,
        key: &[u8],
        now_ms: u64,
        options: &ReadOptions,
        accept: impl FnOnce(&HitRef<'_>) -> bool,
    ) -> Read<HitRef<'_>> {
        self.read_slot(key, now_ms, options, accept)
            .map_entry(|slot| self.borrow_hit(slot))
    }

    // `read_slot`, `locate` and `map_entry` are inlined into `read`, as
    // they were before `read` grew its options: called, they cost about 70
    // instructions per GET (the server's benches/instructions.sh).
    #[inline]
    fn read_slot(
        &mut self,
        key: &[u8],
        now_ms: u64,
        options: &ReadOptions,
        accept: impl FnOnce(&HitRef<'_>) -> bool,
    ) -> Read<SlotId> {
        let reason = match self.locate(key, now_ms, options.request_tags) {
            Ok((slot, stale)) if !stale || options.allow_stale => {
                if !accept(&self.borrow_hit(slot)) {
                    return Read::Declined;
                }
                let lease = match options.lease {
                    Some(fence) if stale => self.try_grant(key, fence, Some(slot), now_ms),
                    _ => None,
                };
                self.eviction.on_access(slot);
                self.counters.get_hits += 1;
                self.counters.get_stale += u64::from(stale);
                return Read::Hit {
                    entry: slot,
                    stale,
                    lease,
                };
            }
            Ok(_) => MissReason::Stale,
            Err(reason) => reason,
        };
        self.counters.get_misses += 1;
        let Some(fence) = options.lease else {
            return Read::Miss {
                reason,
                lease: None,
            };
        };
        match self.try_grant(key, fence, None, now_ms) {
            Some(token) => Read::Miss {
                reason,
                lease: Some(token),
            },
            None => {
                self.counters.get_hot_misses += 1;
                Read::HotMiss
            }
        }
    }

    /// The slot of the live entry under `key` and whether it is stale
    /// (counting `request_tags`), without counting or marking a read; else
    /// why there is none, with a dead entry reclaimed and counted.
    #[inline]
    fn locate(
        &mut self,
        key: &[u8],
        now_ms: u64,
        request_tags: Option<RequestTags>,
    ) -> Result<(SlotId, bool), MissReason> {
        let hash = self.table.hash_key(key);
        let slot = self.table.find(hash, key).ok_or(MissReason::Absent)?;
        let stale = match self.liveness(slot, now_ms) {
            Liveness::Fresh => false,
            Liveness::Stale => true,
            Liveness::Expired => {
                self.counters.get_misses_expired += 1;
                self.reclaim(slot, Liveness::Expired);
                return Err(MissReason::Expired);
            }
            Liveness::Invalidated => {
                self.counters.get_misses_invalidated += 1;
                self.reclaim(slot, Liveness::Invalidated);
                return Err(MissReason::Invalidated);
            }
        };
        let Some(request_tags) = request_tags else {
            return Ok((slot, stale));
        };
        match request_tags.verdict(self.table.get(slot).stored_seq) {
            Verdict::Dead => Err(MissReason::RequestTags),
            Verdict::Stale => Ok((slot, true)),
            Verdict::Fresh => Ok((slot, stale)),
        }
    }

    /// Grants the lease on `key` if nobody holds it, sparing `keep` from
    /// the eviction that may make room for it.
    fn try_grant(
        &mut self,
        key: &[u8],
        fence: InvalidationSeq,
        keep: Option<SlotId>,
        now_ms: u64,
    ) -> Option<u64> {
        if self.leases.state(key, now_ms) == LeaseState::Held {
            return None;
        }
        let token = self
            .leases
            .grant(key, fence.get(), now_ms, self.config.lease_ms);
        self.counters.leases_granted += 1;
        self.fit_leases(keep, now_ms);
        Some(token)
    }

    /// The tag names of the entry under `key`, sorted and unique, without
    /// counting a read, marking the entry or checking that it is live: for
    /// a caller that then reads the entry with [`Shard::get_borrowed`], as
    /// the server does for a GET that asks for tags.
    pub fn tag_names(&self, key: &[u8]) -> Option<Vec<Bytes>> {
        let slot = self.table.find(self.table.hash_key(key), key)?;
        Some(self.tags.sorted_names(self.table.get(slot).tag_ids()))
    }

    fn borrow_hit(&self, slot: SlotId) -> HitRef<'_> {
        let entry = self.table.get(slot);
        HitRef {
            value: entry.value(),
            client_flags: entry.client_flags,
            cas: entry.cas,
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::shard::tests::{put, seq, shard, value, NOW};
    use crate::SetArgs;

    #[test]
    fn hit_returns_value_flags_cas_and_sorted_tags() {
        let mut shard = shard();
        let args = SetArgs::new(b"k", Bytes::from_static(b"v"))
            .with_tags(&["b", "a", "b"])
            .client_flags(7);
        let crate::SetOutcome::Stored { cas } = shard.set(args, seq(1), NOW) else {
            panic!("not stored");
        };
        let hit = shard.get(b"k", NOW, true).into_hit().expect("hit");
        assert_eq!(hit.value, Bytes::from_static(b"v"));
        assert_eq!(hit.client_flags, 7);
        assert_eq!(hit.cas, cas);
        assert_eq!(
            hit.tags,
            Some(vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")])
        );
        let plain = shard.get(b"k", NOW, false).into_hit().expect("hit");
        assert_eq!(plain.tags, None);
        assert_eq!(shard.stats().get_hits, 2);
    }

    #[test]
    fn borrowed_hit_agrees_with_get_and_counts_the_same() {
        let mut shard = shard();
        let args = SetArgs::new(b"k", Bytes::from(vec![1u8; 64])).client_flags(3);
        let stored = shard.set(args, seq(1), NOW);
        assert!(matches!(stored, crate::SetOutcome::Stored { .. }));
        let hit = shard.get(b"k", NOW, false).into_hit().expect("hit");
        let borrowed = shard.get_borrowed(b"k", NOW).expect("hit");
        assert_eq!(borrowed.value, &hit.value[..]);
        assert_eq!((borrowed.cas, borrowed.client_flags), (hit.cas, 3));
        assert_eq!(shard.get_borrowed(b"nope", NOW), Err(MissReason::Absent));
        let stats = shard.stats();
        assert_eq!((stats.get_hits, stats.get_misses), (2, 1));
    }

    #[test]
    fn a_declined_hit_is_neither_counted_nor_marked_and_an_accepted_one_is() {
        let mut shard = shard();
        let args = SetArgs::new(b"k", Bytes::from(vec![2u8; 100]));
        assert!(matches!(
            shard.set(args, seq(1), NOW),
            crate::SetOutcome::Stored { .. }
        ));
        let declined = shard.get_borrowed_if(b"k", NOW, |hit| hit.value.len() < 100);
        assert_eq!(declined, Ok(None));
        assert_eq!(shard.stats().get_hits, 0);
        let accepted = shard
            .get_borrowed_if(b"k", NOW, |hit| hit.value.len() <= 100)
            .expect("live")
            .expect("accepted");
        assert_eq!(accepted.value, &[2u8; 100][..]);
        assert_eq!(
            shard.get_borrowed_if(b"nope", NOW, |_| true),
            Err(MissReason::Absent)
        );
        let stats = shard.stats();
        assert_eq!((stats.get_hits, stats.get_misses), (1, 1));
    }

    #[test]
    fn tag_names_are_sorted_unique_and_do_not_count_as_reads() {
        let mut shard = shard();
        let tags: [&[u8]; 3] = [b"b", b"a", b"b"];
        let args = SetArgs::new(b"k", Bytes::from_static(b"v")).with_tags(&tags);
        assert!(matches!(
            shard.set(args, seq(1), NOW),
            crate::SetOutcome::Stored { .. }
        ));
        assert_eq!(
            shard.tag_names(b"k"),
            Some(vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")])
        );
        assert_eq!(shard.tag_names(b"nope"), None);
        let stats = shard.stats();
        assert_eq!((stats.get_hits, stats.get_misses), (0, 0));
    }

    #[test]
    fn absent_key_misses() {
        let mut shard = shard();
        assert_eq!(
            shard.get(b"nope", NOW, false),
            Lookup::Miss(MissReason::Absent)
        );
        assert_eq!(shard.stats().get_misses, 1);
    }

    #[test]
    fn entry_expires_at_ttl_by_caller_time() {
        let mut shard = shard();
        let args = SetArgs::new(b"k", Bytes::from_static(b"v")).ttl_secs(2);
        let stored = shard.set(args, seq(1), 10_000);
        assert!(matches!(stored, crate::SetOutcome::Stored { .. }));
        assert!(shard.get(b"k", 11_999, false).hit().is_some());
        assert_eq!(
            shard.get(b"k", 12_000, false),
            Lookup::Miss(MissReason::Expired)
        );
        assert_eq!(
            shard.get(b"k", 12_000, false),
            Lookup::Miss(MissReason::Absent)
        );
        let stats = shard.stats();
        assert_eq!(stats.get_misses_expired, 1);
        assert_eq!(stats.expired_reclaimed, 1);
        assert_eq!(stats.get_misses, 2);
        assert_eq!(shard.bytes_used(), 0);
    }

    #[test]
    fn invalidation_after_store_misses_and_reclaims() {
        let mut shard = shard();
        put(&mut shard, b"k", b"v", &["t", "u"], 5);
        shard.invalidate(&["u"], seq(6), 0);
        assert_eq!(
            shard.get(b"k", NOW, false),
            Lookup::Miss(MissReason::Invalidated)
        );
        let stats = shard.stats();
        assert_eq!(stats.get_misses_invalidated, 1);
        assert_eq!(stats.invalidated_reclaimed, 1);
        assert_eq!(stats.curr_items, 0);
        shard.assert_invariants();
    }

    #[test]
    fn invalidation_not_after_store_keeps_entry() {
        let mut shard = shard();
        put(&mut shard, b"k", b"v", &["t"], 5);
        shard.invalidate(&["t"], seq(5), 0);
        shard.invalidate(&["t"], seq(3), 0);
        shard.invalidate(&["unrelated"], seq(9), 0);
        assert!(value(&mut shard, b"k").is_some());
    }

    #[test]
    fn fast_path_holds_when_nothing_newer_applied() {
        let mut shard = shard();
        shard.invalidate(&["t"], seq(4), 0);
        put(&mut shard, b"k", b"v", &["t"], 7);
        assert!(shard.table.get(0).stored_seq >= shard.tags.max_applied());
        assert!(value(&mut shard, b"k").is_some());
        // An entry stored before the newest invalidation takes the per-tag
        // path, and is still live because its own tags are older.
        shard.invalidate(&["other"], seq(8), 0);
        assert!(shard.table.get(0).stored_seq < shard.tags.max_applied());
        assert!(value(&mut shard, b"k").is_some());
    }

    #[test]
    fn set_racing_an_invalidation_that_arrives_first_is_born_invalid() {
        // The SET was stamped 5; INVALIDATE 6 was numbered after it but
        // reached the shard first. The entry is ordered before 6, so 6
        // applies to it.
        let mut shard = shard();
        shard.invalidate(&["t"], seq(6), 0);
        put(&mut shard, b"k", b"v", &["t"], 5);
        assert_eq!(
            shard.get(b"k", NOW, false),
            Lookup::Miss(MissReason::Invalidated)
        );
    }
}
