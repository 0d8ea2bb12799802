//! How an entry holds its key: inline in the slot when short, in the
//! entry's data block otherwise.
//!
//! A lookup compares its key with the key of each entry the index proposes
//! before it reads anything else of that entry, and a hit then reads the
//! entry's data block (tag ids and value). A key in a heap block of its own
//! costs every lookup a dependent cache miss (its address is known only once
//! the slot is loaded) on a line the hit needs for nothing else, and every
//! SET a second allocation. So short keys ("user:1234:profile") sit in the
//! slot, which the lookup has loaded anyway, and longer ones (32-byte keys
//! are common, and are what our load generator sends) sit in the data block
//! between the tag ids and the value: the comparison's miss fetches the
//! block the hit reads next. `entry.rs` owns that block's layout; this type
//! says which form a key takes and how long it is.

/// Longest key held inline: with its length byte and the enum's tag the
/// inline form is 24 bytes, which keeps the slot at 72 bytes (asserted below
/// and in `entry.rs`). One byte more would make the enum 28 bytes (it is
/// 4-byte aligned for `InData`'s length), and the entry's 8-byte alignment
/// would round the slot up to 80.
pub(crate) const INLINE: usize = 22;

/// An entry's key, or where to find it.
///
/// It cannot usefully shrink below 24 bytes: folding the form into the
/// length byte (`len > INLINE` meaning "in the data block") would save the
/// tag byte, but the entry's alignment pads 71 bytes back to 72, and the
/// key length would be capped at 255.
pub(crate) enum StoredKey {
    /// The key's bytes, the first `len` of `bytes`.
    Inline { len: u8, bytes: [u8; INLINE] },
    /// The key is `len` bytes of the entry's data block, right after the
    /// tag ids. Only keys longer than [`INLINE`] take this form.
    InData { len: u32 },
}

impl StoredKey {
    /// The form `key` is stored in. For [`StoredKey::InData`], the caller
    /// guarantees it puts `key` in the entry's data block.
    pub(crate) fn new(key: &[u8]) -> Self {
        if key.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..key.len()].copy_from_slice(key);
            StoredKey::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            StoredKey::InData {
                len: u32::try_from(key.len()).expect("keys shorter than 4 GiB"),
            }
        }
    }

    /// The key's bytes, if it is held inline.
    #[inline]
    pub(crate) fn inline(&self) -> Option<&[u8]> {
        match self {
            StoredKey::Inline { len, bytes } => Some(&bytes[..usize::from(*len)]),
            StoredKey::InData { .. } => None,
        }
    }

    /// How many of the data block's bytes the key takes: its length if it
    /// is held there, else 0.
    #[inline]
    pub(crate) fn len_in_data(&self) -> usize {
        match self {
            StoredKey::Inline { .. } => 0,
            StoredKey::InData { len } => *len as usize,
        }
    }

    /// The key's length, whatever its form.
    pub(crate) fn len(&self) -> usize {
        match self {
            StoredKey::Inline { len, .. } => usize::from(*len),
            StoredKey::InData { len } => *len as usize,
        }
    }
}

const _: () = assert!(std::mem::size_of::<StoredKey>() == 24);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_follows_length_at_every_length_up_to_250() {
        for len in 0..=250 {
            let key: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let stored = StoredKey::new(&key);
            assert_eq!(stored.len(), len);
            if len <= INLINE {
                assert_eq!(stored.inline(), Some(key.as_slice()), "len {len}");
                assert_eq!(stored.len_in_data(), 0);
            } else {
                assert_eq!(stored.inline(), None, "len {len}");
                assert_eq!(stored.len_in_data(), len);
            }
        }
    }
}
