//! Prefetch: start loading what a run of lookups will read, so that their
//! cache misses overlap instead of following one another.
//!
//! A lookup reads three places the others do not share: the index group its
//! hash falls in, the entry's slot, and the entry's data block (tag ids, a
//! long key, the value). Each address is known only once the one before has
//! arrived, and with a table larger than the CPU's caches each is a miss,
//! so a lone lookup waits for three misses in a row. Given the keys of a
//! whole batch at once, the shard can ask for every key's slot, then for
//! every key's data block, and the misses of different keys are in flight
//! together; the lookups that follow find their lines in cache.
//!
//! The loads are plain reads whose values are kept from the optimiser
//! ([`std::hint::black_box`]), not prefetch instructions, which Rust offers
//! only as `unsafe` intrinsics; an out-of-order CPU issues the reads of
//! the following keys while the first are still missing, which is what
//! pays (benches/BENCHMARKS.md, "Prefetching a batch's entries").

use super::Shard;

/// Keys whose slots are asked for before their data blocks: each key's hash
/// is kept between the two passes, on the stack.
const GROUP: usize = 16;

impl Shard {
    /// Starts loading the lines that looking up each of `keys` reads: the
    /// slot of every entry the index proposes for it, then each such
    /// entry's data block, 16 keys at a time. Changes nothing: no counter,
    /// no eviction state, no entry, whatever the keys; a key that is
    /// absent costs its probe.
    ///
    /// Worth calling before a run of lookups of two keys or more, with a
    /// few dozen keys at most: the lines of more would push the first out
    /// of the nearest cache before they are used. It pays when the lines
    /// are not in cache, as in a table larger than the caches or sharing
    /// them with a busy server's other work; when they are, it costs each
    /// key a hash and two probes more (a few percent of the lookups).
    pub fn prefetch<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) {
        let mut keys = keys.into_iter();
        loop {
            let mut hashes = [0; GROUP];
            let mut count = 0;
            for (hash, key) in hashes.iter_mut().zip(keys.by_ref()) {
                *hash = self.table.hash_key(key);
                self.table.preload_slots(*hash);
                count += 1;
            }
            // A data block's address is in the slot: the group's slots
            // first, then its blocks.
            for &hash in &hashes[..count] {
                self.table.preload_data(hash);
            }
            if count < GROUP {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::{InvalidationSeq, Lookup, SetArgs, Shard, ShardConfig};

    #[test]
    fn prefetching_changes_nothing_a_lookup_sees() {
        let mut shard = Shard::new(ShardConfig::default(), InvalidationSeq::ZERO);
        let long = [b'k'; 40];
        for key in [&b"short"[..], &long[..]] {
            let args = SetArgs::new(key, Bytes::from_static(b"value"));
            let _ = shard.set(args, InvalidationSeq::new(1), 0);
        }
        let before = shard.stats();
        shard.prefetch([&b"short"[..], &long[..], b"absent", b""]);
        assert_eq!(shard.stats(), before);
        for key in [&b"short"[..], &long[..]] {
            let Lookup::Hit(hit) = shard.get(key, 0, false) else {
                panic!("{key:?} is stored");
            };
            assert_eq!(hit.value, Bytes::from_static(b"value"));
        }
        assert!(matches!(shard.get(b"absent", 0, false), Lookup::Miss(_)));
    }
}
