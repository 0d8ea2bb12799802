//! The global invalidation sequence.
//!
//! One atomic counter for the whole server. It is written only by
//! INVALIDATE_TAGS and FLUSH_ALL and read by every GET (for the fence) and
//! SET (for the entry's stored sequence), so its cache line stays shared and
//! reads stay cheap. It starts at the boot time in Unix milliseconds shifted
//! left by 20 bits, so a sequence handed out before a restart is always
//! below every sequence after it (protocol.md §8.2): a fence from the old
//! process can never pass in the new one. The 20 low bits allow a million
//! invalidations per millisecond of downtime before the epochs could meet.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Bits of the counter below the boot epoch.
const EPOCH_SHIFT: u32 = 20;

/// The server-wide invalidation sequence.
#[derive(Debug)]
pub struct SequenceCounter {
    current: AtomicU64,
}

impl SequenceCounter {
    /// A counter starting at this boot's epoch.
    pub fn at_boot() -> SequenceCounter {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        SequenceCounter::starting_at(millis << EPOCH_SHIFT)
    }

    /// A counter whose current value is `seq`.
    pub fn starting_at(seq: u64) -> SequenceCounter {
        SequenceCounter {
            current: AtomicU64::new(seq),
        }
    }

    /// The latest sequence handed out: the fence for GET responses.
    pub fn current(&self) -> u64 {
        // Acquire pairs with the AcqRel of `advance`, though correctness does
        // not rest on it: the invalidation guarantee comes from waiting for
        // every shard's acknowledgement before answering.
        self.current.load(Ordering::Acquire)
    }

    /// Takes the next sequence for an invalidation or flush.
    pub fn advance(&self) -> u64 {
        self.current.fetch_add(1, Ordering::AcqRel) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_boot_starts_above_an_earlier_boots_invalidations() {
        let earlier = SequenceCounter::at_boot();
        for _ in 0..1000 {
            earlier.advance();
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later = SequenceCounter::at_boot();
        assert!(later.current() > earlier.current());
    }

    #[test]
    fn advance_is_monotonic() {
        let counter = SequenceCounter::starting_at(10);
        assert_eq!(counter.advance(), 11);
        assert_eq!(counter.advance(), 12);
        assert_eq!(counter.current(), 12);
    }
}
