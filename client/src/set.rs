//! SET's options and outcomes (protocol.md §6.5).

use std::time::Duration;

use bytes::Bytes;
use tagcached_protocol::request::SetMode;

use crate::lookup::LeaseToken;

/// How to store a value: TTL, tags, client flags, mode, fence, and for a
/// refresh, the lease and the stale window.
///
/// The default stores unconditionally, forever, with no tags and no fence.
/// Build one with the chained setters, or with a struct literal and
/// `..SetOptions::default()`; one value can serve many SETs.
///
/// ```
/// use std::time::Duration;
/// use tagcached_client::SetOptions;
///
/// let options = SetOptions::new()
///     .ttl(Duration::from_secs(300))
///     .tag("user:42")
///     .tag("page:home");
/// assert_eq!(options.tags.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetOptions {
    /// Time to live, rounded up to whole seconds; zero means no expiry.
    pub ttl: Duration,
    /// The entry's tags. Order and repeats do not matter.
    pub tags: Vec<Bytes>,
    /// Returned with every hit; opaque to the server.
    pub client_flags: u32,
    /// When the server may store: always, only if absent, only if present,
    /// or only if the CAS value matches.
    pub mode: SetMode,
    /// A fence from an earlier read of the key (see
    /// [`Lookup::fence`](crate::Lookup::fence)): the SET is refused with
    /// [`SetOutcome::Fenced`] if one of the tags was invalidated after it.
    /// Only the server that returned it can judge it (protocol.md §8.2): a
    /// server refuses a fence above its own sequence, but may take another
    /// server's below it, so send the SET to the server of the read (see
    /// [`Client::get_with_fence`](crate::Client::get_with_fence)).
    pub fence: Option<u64>,
    /// The refresh lease a read granted (see
    /// [`Lookup::lease`](crate::Lookup::lease)): the SET is refused with
    /// [`SetOutcome::LeaseLost`] if the lease was superseded (a DELETE,
    /// another SET, a FLUSH_ALL, or a new lease after the lease time), and
    /// with [`SetOutcome::Fenced`] if one of the tags was invalidated after
    /// the lease was granted, whatever `fence` says (protocol.md §6.5). Like
    /// a fence, it belongs to the server that granted it.
    pub lease: Option<LeaseToken>,
    /// How long the entry stays fresh before it turns stale (served only to
    /// reads that allow stale data, with a refresh lease to one of them)
    /// until its TTL ends; rounded up to whole seconds. `None` or zero:
    /// fresh until it expires. Next.js's `revalidate`, where the TTL is its
    /// `expire`.
    pub stale_after: Option<Duration>,
}

impl Default for SetOptions {
    fn default() -> SetOptions {
        SetOptions {
            ttl: Duration::ZERO,
            tags: Vec::new(),
            client_flags: 0,
            mode: SetMode::Set,
            fence: None,
            lease: None,
            stale_after: None,
        }
    }
}

impl SetOptions {
    /// Store unconditionally, forever, untagged.
    pub fn new() -> SetOptions {
        SetOptions::default()
    }

    /// Expire after `ttl` (rounded up to whole seconds; zero: never).
    pub fn ttl(mut self, ttl: Duration) -> SetOptions {
        self.ttl = ttl;
        self
    }

    /// Add one tag.
    pub fn tag(mut self, tag: impl AsRef<[u8]>) -> SetOptions {
        self.tags.push(Bytes::copy_from_slice(tag.as_ref()));
        self
    }

    /// Add several tags.
    pub fn tags<T: AsRef<[u8]>>(mut self, tags: impl IntoIterator<Item = T>) -> SetOptions {
        self.tags.extend(
            tags.into_iter()
                .map(|tag| Bytes::copy_from_slice(tag.as_ref())),
        );
        self
    }

    /// Set the client flags returned with every hit.
    pub fn client_flags(mut self, client_flags: u32) -> SetOptions {
        self.client_flags = client_flags;
        self
    }

    /// Choose when the server may store.
    pub fn mode(mut self, mode: SetMode) -> SetOptions {
        self.mode = mode;
        self
    }

    /// Refuse the SET if one of its tags was invalidated after `fence`.
    pub fn fence(mut self, fence: u64) -> SetOptions {
        self.fence = Some(fence);
        self
    }

    /// Store as the holder of the refresh lease `lease`
    /// ([`SetOptions::lease`]).
    pub fn lease(mut self, lease: LeaseToken) -> SetOptions {
        self.lease = Some(lease);
        self
    }

    /// Turn stale after `stale_after` ([`SetOptions::stale_after`]).
    pub fn stale_after(mut self, stale_after: Duration) -> SetOptions {
        self.stale_after = Some(stale_after);
        self
    }
}

/// A TTL or a window (a stale window, a soft invalidation's) on the wire:
/// whole seconds, rounded up so that a short but non-zero duration never
/// becomes 0 (which means "never expire", "never stale", "hard");
/// saturating, so an absurd one is the server's `BAD_TTL` rather than a
/// silent wrap.
pub(crate) fn whole_seconds(ttl: Duration) -> u32 {
    let seconds = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    u32::try_from(seconds).unwrap_or(u32::MAX)
}

/// How a SET ended, when the server answered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOutcome {
    /// Stored; the new entry's CAS value.
    Stored {
        /// The new entry's CAS value.
        cas: u64,
    },
    /// Mode ADD found a live entry, or mode REPLACE found none.
    NotStored,
    /// Mode CAS: the entry's CAS value differs from the one given.
    Exists,
    /// Mode CAS: no live entry under the key.
    NotFound,
    /// A tag was invalidated after the fence (or after the lease was
    /// granted); nothing stored. Read again, recompute, and SET with the new
    /// fence.
    Fenced,
    /// The SET carried a lease that is no longer the key's (superseded or
    /// dropped, protocol.md §8.4); nothing stored. Someone else refreshed
    /// or removed the key meanwhile.
    LeaseLost,
}

impl SetOutcome {
    /// Whether the value was stored.
    pub fn is_stored(self) -> bool {
        matches!(self, SetOutcome::Stored { .. })
    }

    /// The protocol's name for the outcome, e.g. `NOT_STORED`.
    pub fn name(self) -> &'static str {
        match self {
            SetOutcome::Stored { .. } => "STORED",
            SetOutcome::NotStored => "NOT_STORED",
            SetOutcome::Exists => "EXISTS",
            SetOutcome::NotFound => "NOT_FOUND",
            SetOutcome::Fenced => "FENCED",
            SetOutcome::LeaseLost => "LEASE_LOST",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up_to_whole_seconds_so_short_ttls_still_expire() {
        assert_eq!(whole_seconds(Duration::ZERO), 0);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(60)), 60);
        assert_eq!(whole_seconds(Duration::from_millis(60_001)), 61);
        assert_eq!(whole_seconds(Duration::from_secs(u64::MAX)), u32::MAX);
    }
}
