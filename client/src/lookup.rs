//! What a GET or GETM returns: an [`Item`] on a hit, the fence on a miss.

use bytes::Bytes;
use tagcached_protocol::response::{Hit, Miss};

/// A live entry, as read by GET or GETM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The stored value.
    pub value: Bytes,
    /// The entry's CAS value, for a later SET in mode CAS.
    pub cas: u64,
    /// The flags given at SET; opaque to the server.
    pub client_flags: u32,
    /// The invalidation sequence when the entry was read: the fence for a
    /// later fenced SET (protocol.md §8.2).
    pub fence: u64,
    /// The entry's tags, sorted and de-duplicated, when the read asked for
    /// them (`get_with_tags`); otherwise empty.
    pub tags: Vec<Bytes>,
}

/// The answer to one key of a GET or GETM.
///
/// Both arms carry the fence: a client that recomputes a value after a miss
/// passes [`Lookup::fence`] to its SET, so that the value is refused if one of
/// its tags was invalidated meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The key is present, live and not invalidated.
    Hit(Item),
    /// The key is absent, expired or invalidated.
    Miss {
        /// The invalidation sequence at the time of the miss.
        fence: u64,
    },
}

impl Lookup {
    /// The fence of a miss that no server answered (see
    /// [`Lookup::unavailable`]): older than every fence a server hands out
    /// (sequences start at the server's boot time, protocol.md §8.2), so a
    /// SET fenced with it is refused ([`SetOutcome::Fenced`]) if any of its
    /// tags was ever invalidated; tagcached refuses fences older than its
    /// boot outright.
    ///
    /// [`SetOutcome::Fenced`]: crate::SetOutcome::Fenced
    pub const UNAVAILABLE_FENCE: u64 = 1;

    /// The miss a [`Client`](crate::Client) answers for a key whose server
    /// is marked down: nothing was read, so its fence
    /// ([`UNAVAILABLE_FENCE`](Lookup::UNAVAILABLE_FENCE)) vouches for
    /// nothing.
    pub fn unavailable() -> Lookup {
        Lookup::Miss {
            fence: Lookup::UNAVAILABLE_FENCE,
        }
    }

    /// The fence for a later fenced SET of this key, on the server that
    /// answered this lookup: another server cannot judge it (protocol.md
    /// §8.2).
    pub fn fence(&self) -> u64 {
        match self {
            Lookup::Hit(item) => item.fence,
            Lookup::Miss { fence } => *fence,
        }
    }

    /// Whether the key was found.
    pub fn is_hit(&self) -> bool {
        matches!(self, Lookup::Hit(_))
    }

    /// The item, if the key was found.
    pub fn item(&self) -> Option<&Item> {
        match self {
            Lookup::Hit(item) => Some(item),
            Lookup::Miss { .. } => None,
        }
    }

    /// The item, if the key was found, dropping a miss's fence.
    pub fn into_item(self) -> Option<Item> {
        match self {
            Lookup::Hit(item) => Some(item),
            Lookup::Miss { .. } => None,
        }
    }
}

impl From<Hit> for Lookup {
    fn from(hit: Hit) -> Lookup {
        Lookup::Hit(Item {
            value: hit.value,
            cas: hit.cas,
            client_flags: hit.client_flags,
            fence: hit.fence,
            tags: hit.tags,
        })
    }
}

impl From<Miss> for Lookup {
    fn from(miss: Miss) -> Lookup {
        Lookup::Miss { fence: miss.fence }
    }
}
