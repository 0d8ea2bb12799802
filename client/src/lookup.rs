//! What a GET or GETM returns: an [`Item`] on a hit or a stale hit, the
//! fence on a miss, and the refresh lease when one was granted.

use std::fmt;
use std::num::NonZeroU64;

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
    /// them (`get_with_tags`, [`ReadOptions::with_tags`]); otherwise empty.
    ///
    /// [`ReadOptions::with_tags`]: crate::ReadOptions::with_tags
    pub tags: Vec<Bytes>,
}

/// The right to refresh one key, granted by a read that asked for a lease
/// ([`ReadOptions::lease`](crate::ReadOptions::lease), protocol.md §8.4).
///
/// Its holder computes the value and stores it with
/// [`SetOptions::lease`](crate::SetOptions::lease) on the server that
/// granted it; meanwhile the other readers that ask for a lease are told
/// someone is recomputing ([`Lookup::HotMiss`]) or get the stale copy. A
/// token means something only to the server that granted it, and only
/// until the key is stored, deleted or flushed, or the server's lease time
/// passes and another reader is granted the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseToken(NonZeroU64);

impl LeaseToken {
    /// The token with this wire value; `None` for 0, which the protocol
    /// uses for "no lease".
    pub fn new(token: u64) -> Option<LeaseToken> {
        NonZeroU64::new(token).map(LeaseToken)
    }

    /// The token's wire value, never 0.
    pub fn get(self) -> u64 {
        self.0.get()
    }
}

impl From<NonZeroU64> for LeaseToken {
    fn from(token: NonZeroU64) -> LeaseToken {
        LeaseToken(token)
    }
}

impl fmt::Display for LeaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The answer to one key of a GET or GETM.
///
/// Every arm carries the fence: a client that recomputes a value passes
/// [`Lookup::fence`] to its SET, so that the value is refused if one of its
/// tags was invalidated meanwhile. Reads that ask for nothing more (no
/// [`ReadOptions`](crate::ReadOptions)) only ever see [`Hit`](Lookup::Hit)
/// and [`Miss`](Lookup::Miss).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The key is present, live and fresh.
    Hit(Item),
    /// The key is present but stale: one of its tags was invalidated
    /// softly, or its stale window passed (protocol.md §8.3). Only a read
    /// that allows stale data gets this; to the others it is a miss.
    Stale {
        /// The stale entry.
        item: Item,
        /// The refresh lease, if the read asked for one and this reader is
        /// the one to refresh the key; `None` while another reader holds
        /// it.
        lease: Option<LeaseToken>,
    },
    /// The key is absent, expired, invalidated, or stale to a read that
    /// does not allow stale data.
    Miss {
        /// The invalidation sequence at the time of the miss.
        fence: u64,
        /// The refresh lease, if the read asked for one: this reader is the
        /// one to compute the value.
        lease: Option<LeaseToken>,
    },
    /// The key has no fresh entry and another reader holds its refresh
    /// lease: someone is recomputing it. Only a read that asks for a lease
    /// gets this; read again shortly (protocol.md §8.4).
    HotMiss {
        /// The invalidation sequence at the time of the read.
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
    /// nothing, and it grants no lease.
    pub fn unavailable() -> Lookup {
        Lookup::Miss {
            fence: Lookup::UNAVAILABLE_FENCE,
            lease: None,
        }
    }

    /// The fence for a later fenced SET of this key, on the server that
    /// answered this lookup: another server cannot judge it (protocol.md
    /// §8.2).
    pub fn fence(&self) -> u64 {
        match self {
            Lookup::Hit(item) | Lookup::Stale { item, .. } => item.fence,
            Lookup::Miss { fence, .. } | Lookup::HotMiss { fence } => *fence,
        }
    }

    /// The refresh lease granted to this reader, if any: set it on the SET
    /// of the recomputed value ([`SetOptions::lease`]).
    ///
    /// [`SetOptions::lease`]: crate::SetOptions::lease
    pub fn lease(&self) -> Option<LeaseToken> {
        match self {
            Lookup::Stale { lease, .. } | Lookup::Miss { lease, .. } => *lease,
            Lookup::Hit(_) | Lookup::HotMiss { .. } => None,
        }
    }

    /// Whether the key was found fresh.
    pub fn is_hit(&self) -> bool {
        matches!(self, Lookup::Hit(_))
    }

    /// Whether the key was found stale.
    pub fn is_stale(&self) -> bool {
        matches!(self, Lookup::Stale { .. })
    }

    /// The item, if the key was found, fresh or stale (only a read that
    /// allows stale data finds a stale one; [`is_stale`](Lookup::is_stale)
    /// tells them apart).
    pub fn item(&self) -> Option<&Item> {
        match self {
            Lookup::Hit(item) | Lookup::Stale { item, .. } => Some(item),
            Lookup::Miss { .. } | Lookup::HotMiss { .. } => None,
        }
    }

    /// The item, if the key was found (as [`item`](Lookup::item)), dropping
    /// the rest.
    pub fn into_item(self) -> Option<Item> {
        match self {
            Lookup::Hit(item) | Lookup::Stale { item, .. } => Some(item),
            Lookup::Miss { .. } | Lookup::HotMiss { .. } => None,
        }
    }
}

impl Item {
    /// The entry a HIT or STALE frame carries.
    pub(crate) fn from_hit(hit: Hit) -> Item {
        Item {
            value: hit.value,
            cas: hit.cas,
            client_flags: hit.client_flags,
            fence: hit.fence,
            tags: hit.tags,
        }
    }
}

impl From<Hit> for Lookup {
    /// A HIT, whose lease field is always 0 (a fresh entry needs no
    /// refresh).
    fn from(hit: Hit) -> Lookup {
        Lookup::Hit(Item::from_hit(hit))
    }
}

impl From<Miss> for Lookup {
    /// A MISS, with the lease it granted, if any.
    fn from(miss: Miss) -> Lookup {
        Lookup::Miss {
            fence: miss.fence,
            lease: miss.lease.token().and_then(LeaseToken::new),
        }
    }
}
