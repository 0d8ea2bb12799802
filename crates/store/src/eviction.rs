//! Choosing which entry to evict when a SET needs room: SIEVE.
//!
//! SIEVE (Zhang et al., "SIEVE is Simpler than LRU", NSDI '24) keeps entries
//! in insertion order with one "visited" bit each. A hit only sets the bit;
//! nothing moves. To evict, a hand walks from the oldest entry towards the
//! newest, clearing set bits, and evicts the first entry whose bit is clear;
//! the hand stays where it stopped, and wraps to the oldest entry past the
//! newest.
//!
//! Why SIEVE rather than LRU or CLOCK:
//! - A hit is one bit write and no list surgery, like CLOCK and unlike LRU,
//!   so GETs stay cheap (and would stay cheap under a read lock).
//! - Unlike CLOCK, survivors keep their place while new entries go in at the
//!   head, so an entry read once and never again is demoted quickly. On the
//!   paper's web-cache traces this gives fewer misses than LRU, which CLOCK
//!   only approximates.
//! - The cost is two `u32` links per entry plus one bit, charged (the bit
//!   as a byte) in [`crate::ENTRY_OVERHEAD`]. The bits live in their own
//!   dense bitmap rather than beside the links: a hit writes only the bitmap,
//!   which at an eighth of a byte per entry stays in cache, so marking an
//!   entry accessed costs no cache miss.

use std::mem::size_of;

use crate::table::SlotId;

/// Bytes of eviction state per entry: the links, and the visited bit
/// rounded up to a byte.
pub(crate) const PER_ENTRY_EVICTION_BYTES: usize = size_of::<Link>() + 1;

/// An eviction policy over the entries of one shard, named by slot id.
///
/// The caller guarantees: `on_insert` is called once when a slot becomes
/// occupied and `on_remove` once when it is vacated (whatever the reason:
/// eviction, delete, expiry, overwrite), so the policy tracks exactly the
/// occupied slots; `on_access` and `choose_victim`'s predicate are only given
/// or asked about tracked slots; `clear` is called when every entry is dropped
/// at once.
///
/// The policy must: never return an untracked slot from `choose_victim`;
/// return `None` only when it tracks nothing; do O(1) work in `on_insert`,
/// `on_access` and `on_remove`, and amortised O(1) in `choose_victim`.
pub(crate) trait EvictionPolicy {
    /// `slot` now holds a new entry.
    fn on_insert(&mut self, slot: SlotId);
    /// The entry in `slot` was read or touched.
    fn on_access(&mut self, slot: SlotId);
    /// The entry in `slot` is gone.
    fn on_remove(&mut self, slot: SlotId);
    /// The slot to free next. `is_dead` says whether an entry is already
    /// expired or invalidated; the policy prefers such an entry over evicting
    /// a live one when it meets one. Choosing does not untrack: the caller
    /// removes the entry and then calls `on_remove`.
    fn choose_victim(&mut self, is_dead: impl FnMut(SlotId) -> bool) -> Option<SlotId>;
    /// Every entry is gone.
    fn clear(&mut self);
}

const NIL: SlotId = SlotId::MAX;

#[derive(Clone, Copy)]
struct Link {
    newer: SlotId,
    older: SlotId,
}

const UNLINKED: Link = Link {
    newer: NIL,
    older: NIL,
};

/// SIEVE over slot ids: an intrusive doubly linked list in a `Vec` indexed by
/// slot id, parallel to the entry slab, and a bitmap of visited bits.
pub(crate) struct Sieve {
    links: Vec<Link>,
    visited: Vec<u64>,
    newest: SlotId,
    oldest: SlotId,
    /// Where the next search starts; `NIL` means at `oldest`.
    hand: SlotId,
}

impl Sieve {
    pub(crate) fn new() -> Self {
        Sieve {
            links: Vec::new(),
            visited: Vec::new(),
            newest: NIL,
            oldest: NIL,
            hand: NIL,
        }
    }

    #[inline]
    fn is_visited(&self, slot: SlotId) -> bool {
        self.visited[slot as usize / 64] & (1 << (slot % 64)) != 0
    }

    #[inline]
    fn set_visited(&mut self, slot: SlotId, visited: bool) {
        let word = &mut self.visited[slot as usize / 64];
        let bit = 1 << (slot % 64);
        if visited {
            *word |= bit;
        } else {
            *word &= !bit;
        }
    }

    /// Tracked slots from oldest to newest; for invariant checks.
    pub(crate) fn iter_oldest_first(&self) -> impl Iterator<Item = SlotId> + '_ {
        let mut cur = self.oldest;
        std::iter::from_fn(move || {
            if cur == NIL {
                return None;
            }
            let here = cur;
            cur = self.links[here as usize].newer;
            Some(here)
        })
    }
}

impl EvictionPolicy for Sieve {
    fn on_insert(&mut self, slot: SlotId) {
        let index = slot as usize;
        if index >= self.links.len() {
            self.links.resize(index + 1, UNLINKED);
            self.visited.resize(index / 64 + 1, 0);
        }
        self.links[index] = Link {
            newer: NIL,
            older: self.newest,
        };
        self.set_visited(slot, false);
        match self.newest {
            NIL => self.oldest = slot,
            newest => self.links[newest as usize].newer = slot,
        }
        self.newest = slot;
    }

    #[inline]
    fn on_access(&mut self, slot: SlotId) {
        // Skip the store when already set so hot entries don't dirty the line.
        if !self.is_visited(slot) {
            self.set_visited(slot, true);
        }
    }

    fn on_remove(&mut self, slot: SlotId) {
        let link = self.links[slot as usize];
        if self.hand == slot {
            self.hand = link.newer;
        }
        match link.older {
            NIL => self.oldest = link.newer,
            older => self.links[older as usize].newer = link.newer,
        }
        match link.newer {
            NIL => self.newest = link.older,
            newer => self.links[newer as usize].older = link.older,
        }
        self.links[slot as usize] = UNLINKED;
        self.set_visited(slot, false);
    }

    fn choose_victim(&mut self, mut is_dead: impl FnMut(SlotId) -> bool) -> Option<SlotId> {
        if self.oldest == NIL {
            return None;
        }
        let mut cur = if self.hand == NIL {
            self.oldest
        } else {
            self.hand
        };
        // Terminates within one lap: every step either returns or clears a bit.
        loop {
            if !self.is_visited(cur) || is_dead(cur) {
                self.hand = cur;
                return Some(cur);
            }
            self.set_visited(cur, false);
            cur = match self.links[cur as usize].newer {
                NIL => self.oldest,
                newer => newer,
            };
        }
    }

    fn clear(&mut self) {
        self.links.clear();
        self.visited.clear();
        self.newest = NIL;
        self.oldest = NIL;
        self.hand = NIL;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evict(sieve: &mut Sieve) -> Option<SlotId> {
        let victim = sieve.choose_victim(|_| false)?;
        sieve.on_remove(victim);
        Some(victim)
    }

    #[test]
    fn evicts_oldest_unvisited_first() {
        let mut sieve = Sieve::new();
        for slot in 0..4 {
            sieve.on_insert(slot);
        }
        sieve.on_access(0);
        sieve.on_access(2);
        assert_eq!(evict(&mut sieve), Some(1));
        // The hand stays past 1, so 2 (visited) is spared and 3 goes next.
        assert_eq!(evict(&mut sieve), Some(3));
        // Wraps: 0 and 2 had their bits cleared on the first pass.
        assert_eq!(evict(&mut sieve), Some(0));
        assert_eq!(evict(&mut sieve), Some(2));
        assert_eq!(evict(&mut sieve), None);
    }

    #[test]
    fn all_visited_still_yields_a_victim() {
        let mut sieve = Sieve::new();
        for slot in 0..3 {
            sieve.on_insert(slot);
            sieve.on_access(slot);
        }
        assert_eq!(evict(&mut sieve), Some(0));
    }

    #[test]
    fn prefers_dead_entry_it_meets() {
        let mut sieve = Sieve::new();
        for slot in 0..3 {
            sieve.on_insert(slot);
            sieve.on_access(slot);
        }
        assert_eq!(sieve.choose_victim(|slot| slot == 1), Some(1));
    }

    #[test]
    fn removal_in_the_middle_keeps_order() {
        let mut sieve = Sieve::new();
        for slot in 0..5 {
            sieve.on_insert(slot);
        }
        sieve.on_remove(2);
        sieve.on_remove(0);
        sieve.on_remove(4);
        assert_eq!(sieve.iter_oldest_first().collect::<Vec<_>>(), vec![1, 3]);
        sieve.on_insert(0);
        assert_eq!(sieve.iter_oldest_first().collect::<Vec<_>>(), vec![1, 3, 0]);
        sieve.clear();
        assert_eq!(sieve.choose_victim(|_| false), None);
    }
}
