//! The key-to-shard hash (protocol.md §9).
//!
//! FNV-1a is chosen over faster hashes because a client in any language can
//! implement it in four lines and get the same answer; the server hashes its
//! table with a different, faster hash, so this one only routes.

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// 64-bit FNV-1a of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET_BASIS, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
    })
}

/// The shard that owns `key` on a server with `shard_count` shards.
///
/// `shard_count` must not be 0.
pub fn shard_for_key(key: &[u8], shard_count: u16) -> u16 {
    (fnv1a64(key) % u64::from(shard_count)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_published_fnv1a_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn shard_is_within_range() {
        for n in 1..=16u16 {
            assert!(shard_for_key(b"user:42", n) < n);
        }
    }
}
