//! How an entry holds its key: inline when short, on the heap otherwise.
//!
//! Most cache keys are short ("user:1234:profile"). Holding them inside the
//! entry saves an allocation per SET and, more importantly, a dependent
//! cache miss on every lookup that has to compare keys.

/// Longest key held inline; chosen so the inline form is no larger than the
/// heap form (a boxed slice plus the enum's tag, 24 bytes).
const INLINE: usize = 22;

/// An entry's key.
pub(crate) enum StoredKey {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl StoredKey {
    pub(crate) fn new(key: &[u8]) -> Self {
        if key.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..key.len()].copy_from_slice(key);
            StoredKey::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            StoredKey::Heap(key.into())
        }
    }

    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            StoredKey::Inline { len, bytes } => &bytes[..usize::from(*len)],
            StoredKey::Heap(bytes) => bytes,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.as_bytes().len()
    }
}

const _: () = assert!(std::mem::size_of::<StoredKey>() == 24);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_every_length_around_the_inline_limit() {
        for len in [0, 1, INLINE - 1, INLINE, INLINE + 1, 250] {
            let key: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let stored = StoredKey::new(&key);
            assert_eq!(stored.as_bytes(), key.as_slice());
            assert_eq!(stored.len(), len);
            assert_eq!(matches!(stored, StoredKey::Inline { .. }), len <= INLINE);
        }
    }
}
