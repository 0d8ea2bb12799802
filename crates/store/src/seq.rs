//! The position of an invalidation in the server's global order.

use std::fmt;

/// A position in the server's single, global invalidation order.
///
/// The server allocates these from one atomic counter shared by every shard;
/// a shard never allocates one, it is only told them. Larger means later.
/// `0` is "before everything": a tag never invalidated reads as `0` (or as the
/// shard's floor, see [`crate::tags`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InvalidationSeq(u64);

impl InvalidationSeq {
    /// The sequence before any invalidation.
    pub const ZERO: InvalidationSeq = InvalidationSeq(0);

    /// Wraps a raw sequence number.
    pub const fn new(seq: u64) -> Self {
        InvalidationSeq(seq)
    }

    /// The raw sequence number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl From<u64> for InvalidationSeq {
    fn from(seq: u64) -> Self {
        InvalidationSeq(seq)
    }
}

impl From<InvalidationSeq> for u64 {
    fn from(seq: InvalidationSeq) -> Self {
        seq.0
    }
}

impl fmt::Display for InvalidationSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
