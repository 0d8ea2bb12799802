//! Counters and gauges one shard reports; the server sums them over shards.

use std::iter::Sum;
use std::ops::{Add, AddAssign};

/// A snapshot of one shard's counters and gauges.
///
/// Counters only grow for the life of the shard (`flush_all` does not reset
/// them). Gauges (`curr_items`, `bytes`, `limit_bytes`, `tags_tracked`) are the
/// value at the time of the snapshot. Summing snapshots of every shard with
/// [`ShardStats::merge`], `+` or [`Iterator::sum`] gives server-wide figures:
/// gauges add up too, so the sum's `limit_bytes` is the server's total budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardStats {
    /// Gauge: entries held, including expired or invalidated ones not yet
    /// reclaimed.
    pub curr_items: u64,
    /// Gauge: bytes charged against the budget (see `Shard::bytes_used`).
    pub bytes: u64,
    /// Gauge: the budget, `ShardConfig::memory_limit`.
    pub limit_bytes: u64,
    /// GETs that returned a value.
    pub get_hits: u64,
    /// GETs that returned nothing, for any reason (includes the two below).
    pub get_misses: u64,
    /// GETs that found the key's entry invalidated by a tag, and removed
    /// it. An invalidated entry that the sweep or another command removed
    /// first is not found: a GET of its key then counts in `get_misses`
    /// only (protocol.md §6.10).
    pub get_misses_invalidated: u64,
    /// GETs that found the key's entry expired, and removed it; as
    /// `get_misses_invalidated`, an entry removed first is not counted.
    pub get_misses_expired: u64,
    /// SETs (of any mode) that stored a value.
    pub sets: u64,
    /// SETs refused because a tag was invalidated after their fence.
    pub sets_fenced: u64,
    /// Live entries evicted to make room for a SET.
    pub evictions: u64,
    /// Expired entries removed, whoever found them (a read, a write, the
    /// sweep, or eviction).
    pub expired_reclaimed: u64,
    /// Invalidated entries removed, whoever found them.
    pub invalidated_reclaimed: u64,
    /// DELETEs that removed a live entry.
    pub deletes: u64,
    /// TOUCHes that reset the TTL of a live entry.
    pub touches: u64,
    /// Tag invalidations applied (one per tag per INVALIDATE).
    pub tag_invalidations: u64,
    /// Gauge: tags the shard currently remembers (carried by an entry or
    /// recently invalidated).
    pub tags_tracked: u64,
    /// CAS SETs refused because the entry's CAS value differed.
    pub cas_mismatches: u64,
    /// Reads answered with a stale entry (they count in `get_hits` too).
    pub get_stale: u64,
    /// Reads with a lease request that found no fresh entry while another
    /// reader held the lease (they count in `get_misses` too).
    pub get_hot_misses: u64,
    /// Refresh leases granted.
    pub leases_granted: u64,
    /// SETs refused because their lease token was not the key's lease.
    pub set_lease_lost: u64,
    /// Gauge: lease records held.
    pub leases_held: u64,
}

impl ShardStats {
    /// Adds every field of `other` into `self`.
    pub fn merge(&mut self, other: &ShardStats) {
        self.curr_items += other.curr_items;
        self.bytes += other.bytes;
        self.limit_bytes += other.limit_bytes;
        self.get_hits += other.get_hits;
        self.get_misses += other.get_misses;
        self.get_misses_invalidated += other.get_misses_invalidated;
        self.get_misses_expired += other.get_misses_expired;
        self.sets += other.sets;
        self.sets_fenced += other.sets_fenced;
        self.evictions += other.evictions;
        self.expired_reclaimed += other.expired_reclaimed;
        self.invalidated_reclaimed += other.invalidated_reclaimed;
        self.deletes += other.deletes;
        self.touches += other.touches;
        self.tag_invalidations += other.tag_invalidations;
        self.tags_tracked += other.tags_tracked;
        self.cas_mismatches += other.cas_mismatches;
        self.get_stale += other.get_stale;
        self.get_hot_misses += other.get_hot_misses;
        self.leases_granted += other.leases_granted;
        self.set_lease_lost += other.set_lease_lost;
        self.leases_held += other.leases_held;
    }
}

impl AddAssign for ShardStats {
    fn add_assign(&mut self, other: ShardStats) {
        self.merge(&other);
    }
}

impl Add for ShardStats {
    type Output = ShardStats;

    fn add(mut self, other: ShardStats) -> ShardStats {
        self.merge(&other);
        self
    }
}

impl Sum for ShardStats {
    fn sum<I: Iterator<Item = ShardStats>>(iter: I) -> ShardStats {
        iter.fold(ShardStats::default(), Add::add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_every_field() {
        let one = ShardStats {
            curr_items: 1,
            bytes: 2,
            limit_bytes: 3,
            get_hits: 4,
            get_misses: 5,
            get_misses_invalidated: 6,
            get_misses_expired: 7,
            sets: 8,
            sets_fenced: 9,
            evictions: 10,
            expired_reclaimed: 11,
            invalidated_reclaimed: 12,
            deletes: 13,
            touches: 14,
            tag_invalidations: 15,
            tags_tracked: 16,
            cas_mismatches: 17,
            get_stale: 18,
            get_hot_misses: 19,
            leases_granted: 20,
            set_lease_lost: 21,
            leases_held: 22,
        };
        let total: ShardStats = [one, one].into_iter().sum();
        assert_eq!(
            total,
            ShardStats {
                curr_items: 2,
                bytes: 4,
                limit_bytes: 6,
                get_hits: 8,
                get_misses: 10,
                get_misses_invalidated: 12,
                get_misses_expired: 14,
                sets: 16,
                sets_fenced: 18,
                evictions: 20,
                expired_reclaimed: 22,
                invalidated_reclaimed: 24,
                deletes: 26,
                touches: 28,
                tag_invalidations: 30,
                tags_tracked: 32,
                cas_mismatches: 34,
                get_stale: 36,
                get_hot_misses: 38,
                leases_granted: 40,
                set_lease_lost: 42,
                leases_held: 44,
            }
        );
    }
}
