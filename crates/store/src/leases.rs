//! Refresh leases: which reader may recompute a missing or stale key
//! (protocol.md §8.4).
//!
//! A lease is a record `key → token`. It is *held* for the lease time after
//! it is granted: meanwhile no other reader gets one. Its token is honoured
//! by a SET until the record goes: superseded by a newer grant, ended by a
//! SET that stores, by the holder's SET, by a DELETE or a flush, dropped
//! `2 × lease time` after the grant, or dropped early, oldest first, when
//! the records would take more than their share of the shard's memory.
//!
//! Records sit in a slab indexed by key hash, like tags, and a FIFO queue
//! in grant order: with one lease time per shard, grant order is drop order,
//! so expiring is popping the front. A re-granted key leaves its old queue
//! item behind, recognised as stale by its token.

use std::collections::VecDeque;
use std::mem::size_of;

use ahash::RandomState;
use hashbrown::HashTable;

/// Bytes charged per lease record on top of its key: its slab slot, its
/// index slot and its queue item.
pub const LEASE_OVERHEAD: usize =
    size_of::<Option<Lease>>() + size_of::<u32>() + 1 + size_of::<(u32, u64)>();

/// One key's lease.
pub(crate) struct Lease {
    key: Box<[u8]>,
    hash: u64,
    token: u64,
    /// The fence of the response that granted it: a SET with this lease is
    /// checked as if fenced here.
    granted_seq: u64,
    /// Monotonic ms until which no other reader gets a lease.
    held_until_ms: u64,
    /// Monotonic ms at which the record is dropped.
    drop_at_ms: u64,
}

/// Whether a reader may be granted the lease on a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LeaseState {
    /// Nobody holds it: the next reader that asks gets it.
    Free,
    /// Another reader holds it.
    Held,
}

/// One shard's lease records.
pub(crate) struct LeaseTable {
    index: HashTable<u32>,
    slots: Vec<Option<Lease>>,
    free: Vec<u32>,
    /// `(slot, token)` in grant order.
    queue: VecDeque<(u32, u64)>,
    hasher: RandomState,
    next_token: u64,
    bytes: usize,
}

impl LeaseTable {
    pub(crate) fn new() -> Self {
        let hasher = RandomState::new();
        // Tokens start at a random point so that two shards, or two runs,
        // hand out different ones: a token sent for the wrong key or to a
        // restarted server is then refused, not honoured by coincidence.
        let next_token = hasher.hash_one(0x7463_u64) | 1;
        LeaseTable {
            index: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            queue: VecDeque::new(),
            hasher,
            next_token,
            bytes: 0,
        }
    }

    /// Records held.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// Bytes charged for the records.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    fn find(&self, hash: u64, key: &[u8]) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(hash, |&slot| {
                slots[slot as usize]
                    .as_ref()
                    .is_some_and(|lease| lease.hash == hash && *lease.key == *key)
            })
            .copied()
    }

    fn lease(&self, slot: u32) -> &Lease {
        self.slots[slot as usize]
            .as_ref()
            .expect("indexed slots are occupied")
    }

    /// Whether the lease on `key` is held at `now_ms`.
    pub(crate) fn state(&self, key: &[u8], now_ms: u64) -> LeaseState {
        match self.find(self.hasher.hash_one(key), key) {
            Some(slot) if now_ms < self.lease(slot).held_until_ms => LeaseState::Held,
            _ => LeaseState::Free,
        }
    }

    /// Grants the lease on `key` at `now_ms`, superseding any record for
    /// it; returns the new token (never 0). The caller has checked that the
    /// lease is free, and makes room in the budget afterwards.
    pub(crate) fn grant(
        &mut self,
        key: &[u8],
        granted_seq: u64,
        now_ms: u64,
        lease_ms: u64,
    ) -> u64 {
        let token = self.next_token;
        self.next_token = self.next_token.wrapping_add(1).max(1);
        let hash = self.hasher.hash_one(key);
        let held_until_ms = now_ms.saturating_add(lease_ms);
        let drop_at_ms = now_ms.saturating_add(lease_ms.saturating_mul(2));
        let slot = match self.find(hash, key) {
            Some(slot) => {
                let lease = self.slots[slot as usize]
                    .as_mut()
                    .expect("indexed slots are occupied");
                lease.token = token;
                lease.granted_seq = granted_seq;
                lease.held_until_ms = held_until_ms;
                lease.drop_at_ms = drop_at_ms;
                slot
            }
            None => {
                let lease = Lease {
                    key: key.into(),
                    hash,
                    token,
                    granted_seq,
                    held_until_ms,
                    drop_at_ms,
                };
                let slot = match self.free.pop() {
                    Some(slot) => {
                        self.slots[slot as usize] = Some(lease);
                        slot
                    }
                    None => {
                        let slot = u32::try_from(self.slots.len()).expect("fewer than 2^32 leases");
                        self.slots.push(Some(lease));
                        slot
                    }
                };
                let slots = &self.slots;
                self.index.insert_unique(hash, slot, |&other| {
                    slots[other as usize].as_ref().map_or(0, |lease| lease.hash)
                });
                self.bytes += LEASE_OVERHEAD + key.len();
                slot
            }
        };
        self.queue.push_back((slot, token));
        // Re-grants leave stale items behind; compact once they outnumber
        // the records, which keeps the work amortised O(1).
        if self.queue.len() > 2 * self.len() + 64 {
            let slots = &self.slots;
            self.queue
                .retain(|&(slot, token)| is_current(slots, slot, token));
        }
        token
    }

    /// Ends the lease on `key` if `token` is its current token and its
    /// record is not due to be dropped at `now_ms`, returning the sequence
    /// it was granted at; else `None`, leaving a record of another token
    /// as it is and removing one past its time. A record's time is checked
    /// here, not left to [`LeaseTable::expire`], so that a token is refused
    /// from twice the lease time on however late the sweep runs.
    pub(crate) fn take(&mut self, key: &[u8], token: u64, now_ms: u64) -> Option<u64> {
        let slot = self.find(self.hasher.hash_one(key), key)?;
        let lease = self.lease(slot);
        if lease.token != token {
            return None;
        }
        let honoured = now_ms < lease.drop_at_ms;
        let granted_seq = lease.granted_seq;
        self.remove(slot);
        honoured.then_some(granted_seq)
    }

    /// Ends the lease on `key`, if any.
    pub(crate) fn end(&mut self, key: &[u8]) {
        if self.index.is_empty() {
            return;
        }
        if let Some(slot) = self.find(self.hasher.hash_one(key), key) {
            self.remove(slot);
        }
    }

    fn remove(&mut self, slot: u32) {
        let lease = self.slots[slot as usize]
            .take()
            .expect("indexed slots are occupied");
        match self.index.find_entry(lease.hash, |&other| other == slot) {
            Ok(found) => {
                found.remove();
            }
            Err(_) => unreachable!("every record is indexed"),
        }
        self.free.push(slot);
        self.bytes -= LEASE_OVERHEAD + lease.key.len();
    }

    /// Drops the records due at `now_ms`; returns how many.
    pub(crate) fn expire(&mut self, now_ms: u64) -> usize {
        let mut dropped = 0;
        while let Some(&(slot, token)) = self.queue.front() {
            if is_current(&self.slots, slot, token) {
                if self.lease(slot).drop_at_ms > now_ms {
                    break;
                }
                self.remove(slot);
                dropped += 1;
            }
            self.queue.pop_front();
        }
        dropped
    }

    /// Drops the oldest record; false if there is none.
    pub(crate) fn drop_oldest(&mut self) -> bool {
        while let Some((slot, token)) = self.queue.pop_front() {
            if is_current(&self.slots, slot, token) {
                self.remove(slot);
                return true;
            }
        }
        false
    }

    /// Ends every lease.
    pub(crate) fn clear(&mut self) {
        self.index.clear();
        self.slots.clear();
        self.free.clear();
        self.queue.clear();
        self.bytes = 0;
    }

    /// Panics if the index, the slab, the queue and the byte count
    /// disagree.
    pub(crate) fn assert_invariants(&self) {
        let mut bytes = 0;
        let mut live = 0;
        for (slot, lease) in self.slots.iter().enumerate() {
            let Some(lease) = lease else { continue };
            live += 1;
            bytes += LEASE_OVERHEAD + lease.key.len();
            assert_eq!(
                self.find(lease.hash, &lease.key),
                Some(slot as u32),
                "lease index"
            );
            assert!(
                self.queue.contains(&(slot as u32, lease.token)),
                "lease {slot} not queued"
            );
            assert_ne!(lease.token, 0, "token 0");
        }
        assert_eq!(live, self.index.len(), "lease index size");
        assert_eq!(bytes, self.bytes, "lease bytes");
    }
}

fn is_current(slots: &[Option<Lease>], slot: u32, token: u64) -> bool {
    slots[slot as usize]
        .as_ref()
        .is_some_and(|lease| lease.token == token)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE_MS: u64 = 10_000;

    #[test]
    fn a_grant_is_held_for_the_lease_time_and_honoured_until_dropped() {
        let mut leases = LeaseTable::new();
        assert_eq!(leases.state(b"k", 0), LeaseState::Free);
        let token = leases.grant(b"k", 7, 0, LEASE_MS);
        assert_ne!(token, 0);
        assert_eq!(leases.state(b"k", LEASE_MS - 1), LeaseState::Held);
        assert_eq!(leases.state(b"k", LEASE_MS), LeaseState::Free);
        assert_eq!(leases.state(b"other", 0), LeaseState::Free);
        assert_eq!(leases.expire(2 * LEASE_MS - 1), 0);
        assert_eq!(leases.take(b"k", token + 1, 0), None, "wrong token");
        assert_eq!(leases.take(b"k", token, 2 * LEASE_MS - 1), Some(7));
        assert_eq!(leases.take(b"k", token, 0), None, "taken once");
        assert_eq!(leases.len(), 0);
        leases.assert_invariants();
    }

    #[test]
    fn a_new_grant_supersedes_the_old_token() {
        let mut leases = LeaseTable::new();
        let old = leases.grant(b"k", 1, 0, LEASE_MS);
        let new = leases.grant(b"k", 2, LEASE_MS, LEASE_MS);
        assert_ne!(old, new);
        assert_eq!(leases.take(b"k", old, LEASE_MS), None);
        assert_eq!(leases.len(), 1);
        leases.assert_invariants();
        // The stale queue item of the first grant does not drop the second.
        assert_eq!(leases.expire(2 * LEASE_MS), 0);
        assert_eq!(leases.take(b"k", new, 2 * LEASE_MS), Some(2));
    }

    #[test]
    fn records_are_dropped_twice_the_lease_time_after_the_grant() {
        let mut leases = LeaseTable::new();
        let a = leases.grant(b"a", 1, 0, LEASE_MS);
        leases.grant(b"b", 1, 5, LEASE_MS);
        assert_eq!(leases.expire(2 * LEASE_MS), 1);
        assert_eq!(leases.take(b"a", a, 0), None);
        assert_eq!(leases.len(), 1);
        assert!(leases.drop_oldest());
        assert!(!leases.drop_oldest());
        assert_eq!(leases.bytes(), 0);
        leases.assert_invariants();
    }

    /// Regression: a token was honoured until [`LeaseTable::expire`] dropped
    /// its record, so past twice the lease time when the sweep ran late.
    #[test]
    fn a_token_is_refused_from_twice_the_lease_time_on_without_an_expire() {
        let mut leases = LeaseTable::new();
        let token = leases.grant(b"k", 7, 0, LEASE_MS);
        assert_eq!(leases.take(b"k", token, 2 * LEASE_MS), None);
        assert_eq!(leases.len(), 0, "the record past its time went");
        let token = leases.grant(b"k", 7, 0, LEASE_MS);
        assert_eq!(leases.take(b"k", token, 2 * LEASE_MS - 1), Some(7));
        leases.assert_invariants();
    }

    #[test]
    fn end_and_clear_forget_records_and_their_bytes() {
        let mut leases = LeaseTable::new();
        leases.grant(b"a", 1, 0, LEASE_MS);
        leases.grant(b"bb", 1, 0, LEASE_MS);
        assert_eq!(leases.bytes(), 2 * LEASE_OVERHEAD + 3);
        leases.end(b"a");
        leases.end(b"missing");
        assert_eq!(leases.bytes(), LEASE_OVERHEAD + 2);
        leases.clear();
        assert_eq!((leases.len(), leases.bytes()), (0, 0));
        leases.assert_invariants();
    }

    #[test]
    fn regrants_keep_the_queue_bounded() {
        let mut leases = LeaseTable::new();
        for now in 0..10_000 {
            leases.grant(b"hot", 1, now, LEASE_MS);
        }
        assert!(leases.queue.len() <= 2 * leases.len() + 65);
        leases.assert_invariants();
    }
}
