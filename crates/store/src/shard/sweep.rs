//! Background reclamation: expired and invalidated entries nobody reads, and
//! tags nobody needs.

use super::{Liveness, Shard};

/// What one [`Shard::sweep`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Slab slots examined (occupied or not).
    pub slots_scanned: usize,
    /// Expired entries removed.
    pub expired_reclaimed: usize,
    /// Invalidated entries removed.
    pub invalidated_reclaimed: usize,
    /// Unreferenced tags dropped.
    pub tags_reclaimed: usize,
}

impl Shard {
    /// Does a bounded slice of background reclamation and returns what it
    /// did. Examines at most `max_steps` entry slots, continuing from where
    /// the previous call stopped and wrapping around, removing expired and
    /// invalidated entries so their memory comes back without a reader
    /// finding them. Then handles at most `max_steps` items of the tag
    /// reclamation queue: drops unreferenced tags at or below the floor, and
    /// the oldest beyond `tag_retention`. Meant to be called every ~100 ms
    /// with a step count that keeps each call well under a millisecond.
    pub fn sweep(&mut self, now_ms: u64, max_steps: usize) -> SweepReport {
        let mut report = SweepReport::default();
        let steps = max_steps.min(self.table.slot_count());
        for _ in 0..steps {
            if self.sweep_cursor >= self.table.slot_count() {
                self.sweep_cursor = 0;
            }
            let slot = self.sweep_cursor as u32;
            self.sweep_cursor += 1;
            report.slots_scanned += 1;
            if self.table.slot(slot).is_none() {
                continue;
            }
            match self.liveness(slot, now_ms) {
                Liveness::Fresh | Liveness::Stale => {}
                Liveness::Expired => {
                    self.reclaim(slot, Liveness::Expired);
                    report.expired_reclaimed += 1;
                }
                Liveness::Invalidated => {
                    self.reclaim(slot, Liveness::Invalidated);
                    report.invalidated_reclaimed += 1;
                }
            }
        }
        report.tags_reclaimed = self.tags.sweep(self.config.tag_retention, max_steps);
        self.leases.expire(now_ms);
        report
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::shard::tests::{put, seq, shard, value, NOW};
    use crate::{InvalidationSeq, SetArgs, SetOutcome, ShardConfig};

    #[test]
    fn sweep_reclaims_expired_and_invalidated_entries_and_their_memory() {
        let mut shard = shard();
        for i in 0..10u8 {
            let key = [b'e', i];
            let args = SetArgs::new(&key, Bytes::from(vec![0u8; 100])).ttl_secs(1);
            assert!(matches!(
                shard.set(args, seq(1), 0),
                SetOutcome::Stored { .. }
            ));
        }
        for i in 0..10u8 {
            put(&mut shard, &[b'i', i], b"v", &["doomed"], 1);
        }
        put(&mut shard, b"keep", b"v", &["kept"], 1);
        let keep_bytes = crate::entry::footprint(4, 1, 1, false) + crate::TAG_OVERHEAD + 4;
        shard.invalidate(&["doomed"], seq(2), 0);

        let first = shard.sweep(NOW, 7);
        assert_eq!(first.slots_scanned, 7);
        let mut total = first;
        while shard.len() > 1 {
            let report = shard.sweep(NOW, 7);
            total.expired_reclaimed += report.expired_reclaimed;
            total.invalidated_reclaimed += report.invalidated_reclaimed;
            total.tags_reclaimed += report.tags_reclaimed;
        }
        assert_eq!(total.expired_reclaimed, 10);
        assert_eq!(total.invalidated_reclaimed, 10);
        // `doomed` lost its last reference; it is retained (newer than the
        // floor, within retention) until retention or memory needs it gone.
        assert_eq!(shard.stats().tags_tracked, 2);
        assert_eq!(
            shard.bytes_used(),
            keep_bytes + crate::TAG_OVERHEAD + "doomed".len()
        );
        let stats = shard.stats();
        assert_eq!(stats.expired_reclaimed, 10);
        assert_eq!(stats.invalidated_reclaimed, 10);
        assert!(value(&mut shard, b"keep").is_some());
        shard.assert_invariants();
    }

    /// What protocol.md §6.10 says `get_invalidated` counts (issue 8: the
    /// README's session showed 1 for a read made after the sweep had
    /// removed the invalidated entry): such a read finds no entry, a plain
    /// miss, and only the reclamation counts the invalidation.
    #[test]
    fn a_read_after_the_sweep_reclaimed_an_invalidated_entry_is_a_plain_miss() {
        let mut shard = shard();
        put(&mut shard, b"swept", b"v", &["t"], 1);
        put(&mut shard, b"read", b"v", &["t"], 1);
        let args = SetArgs::new(b"expired", Bytes::from_static(b"v")).ttl_secs(1);
        assert!(matches!(
            shard.set(args, seq(1), 0),
            SetOutcome::Stored { .. }
        ));
        shard.invalidate(&["t"], seq(2), 0);
        assert_eq!(
            shard.get(b"read", NOW, false),
            crate::Lookup::Miss(crate::MissReason::Invalidated)
        );
        let report = shard.sweep(NOW, 100);
        assert_eq!(
            (report.invalidated_reclaimed, report.expired_reclaimed),
            (1, 1)
        );
        for key in [&b"swept"[..], b"expired"] {
            assert_eq!(
                shard.get(key, NOW, false),
                crate::Lookup::Miss(crate::MissReason::Absent)
            );
        }
        let stats = shard.stats();
        assert_eq!(stats.get_misses, 3);
        assert_eq!(
            stats.get_misses_invalidated, 1,
            "only the read that met one"
        );
        assert_eq!(stats.get_misses_expired, 0);
        assert_eq!(stats.invalidated_reclaimed, 2, "whoever found them");
        assert_eq!(stats.expired_reclaimed, 1);
    }

    #[test]
    fn sweep_of_empty_shard_does_nothing() {
        let mut shard = shard();
        assert_eq!(shard.sweep(NOW, 100), SweepReport::default());
    }

    #[test]
    fn sweep_drops_tags_beyond_retention_oldest_first() {
        let mut shard = Shard::new(
            ShardConfig::default().with_tag_retention(2),
            InvalidationSeq::ZERO,
        );
        shard.invalidate(&["a"], seq(1), 0);
        shard.invalidate(&["b"], seq(2), 0);
        shard.invalidate(&["c"], seq(3), 0);
        assert_eq!(shard.sweep(NOW, 100).tags_reclaimed, 1);
        assert_eq!(shard.floor(), seq(1));
        assert_eq!(shard.stats().tags_tracked, 2);
    }

    #[test]
    fn tag_reclamation_never_revives_an_invalidated_entry() {
        let mut shard = Shard::new(
            ShardConfig::default().with_tag_retention(0),
            InvalidationSeq::ZERO,
        );
        put(&mut shard, b"k", b"v", &["t", "u"], 1);
        shard.invalidate(&["t"], seq(5), 0);
        for i in 0..100u64 {
            shard.invalidate(&[format!("noise{i}")], seq(6 + i), 0);
        }
        // Reclaim tags only, leaving the entry for a reader to judge.
        assert_eq!(shard.tags.sweep(0, 1_000), 100);
        assert_eq!(shard.stats().tags_tracked, 2, "only the referenced tags");
        assert!(shard.floor() >= seq(105));
        shard.assert_invariants();
        assert_eq!(
            shard.get(b"k", NOW, false),
            crate::Lookup::Miss(crate::MissReason::Invalidated)
        );
    }
}
