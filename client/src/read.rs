//! How to read: [`ReadOptions`] for GET and GETM (protocol.md §6.3, §6.4).

use bytes::Bytes;
use tagcached_protocol::Flags;

/// What a read asks for beyond the value: the entry's tags, stale data, a
/// refresh lease, request-scoped tags.
///
/// The default reads as protocol version 1 does: fresh entries only, no
/// tags, no lease. Every option but `with_tags` needs a server that offers
/// it (HELLO's feature bits, protocol.md §6.1); a read sent to one that
/// does not fails with [`Error::Unsupported`](crate::Error::Unsupported)
/// before anything is sent.
///
/// ```
/// use tagcached_client::ReadOptions;
///
/// // Serve a stale page at once, and let one reader refresh it.
/// let options = ReadOptions::new().allow_stale().lease();
/// assert!(options.allow_stale && options.lease);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Fill in a hit's [`Item::tags`](crate::Item::tags).
    pub with_tags: bool,
    /// Answer a stale entry with its value, as [`Lookup::Stale`], rather
    /// than as a miss (protocol.md §8.3).
    ///
    /// [`Lookup::Stale`]: crate::Lookup::Stale
    pub allow_stale: bool,
    /// Ask for the key's refresh lease (protocol.md §8.4): the first reader
    /// that finds no fresh entry gets a [`LeaseToken`](crate::LeaseToken)
    /// and should recompute the value; the others, while it is held, get
    /// [`Lookup::HotMiss`], or the stale copy if they allow stale data.
    ///
    /// [`Lookup::HotMiss`]: crate::Lookup::HotMiss
    pub lease: bool,
    /// Tags checked against the entry as if it carried them, without being
    /// stored with it (protocol.md §8.5): an entry stored before a hard
    /// invalidation of one of them misses, before a soft one is stale.
    /// These are Next.js's implicit path tags. Empty: none are sent.
    pub request_tags: Vec<Bytes>,
}

impl ReadOptions {
    /// A plain read: fresh entries only.
    pub fn new() -> ReadOptions {
        ReadOptions::default()
    }

    /// Fill in a hit's tags.
    pub fn with_tags(mut self) -> ReadOptions {
        self.with_tags = true;
        self
    }

    /// Answer a stale entry with its value ([`ReadOptions::allow_stale`]).
    pub fn allow_stale(mut self) -> ReadOptions {
        self.allow_stale = true;
        self
    }

    /// Ask for the refresh lease ([`ReadOptions::lease`]).
    pub fn lease(mut self) -> ReadOptions {
        self.lease = true;
        self
    }

    /// Add request-scoped tags ([`ReadOptions::request_tags`]).
    pub fn request_tags<T: AsRef<[u8]>>(
        mut self,
        tags: impl IntoIterator<Item = T>,
    ) -> ReadOptions {
        self.request_tags.extend(
            tags.into_iter()
                .map(|tag| Bytes::copy_from_slice(tag.as_ref())),
        );
        self
    }

    /// The header flags these options send; REQUEST_TAGS goes with the
    /// body.
    pub(crate) fn flags(&self) -> Flags {
        [
            (self.with_tags, Flags::WITH_TAGS),
            (self.allow_stale, Flags::ALLOW_STALE),
            (self.lease, Flags::LEASE),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .fold(Flags::NONE, |flags, (_, flag)| flags | flag)
    }

    /// The request-scoped tags as the request carries them: `None` for
    /// none, so that a plain read stays a version 1 read.
    pub(crate) fn request_tag_list(&self) -> Option<Vec<Bytes>> {
        (!self.request_tags.is_empty()).then(|| self.request_tags.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_option_is_its_flag_and_the_default_sends_none() {
        assert_eq!(ReadOptions::new().flags(), Flags::NONE);
        assert_eq!(ReadOptions::new().request_tag_list(), None);
        let all = ReadOptions::new()
            .with_tags()
            .allow_stale()
            .lease()
            .request_tags(["_N_T_/blog"]);
        assert_eq!(
            all.flags(),
            Flags::WITH_TAGS | Flags::ALLOW_STALE | Flags::LEASE
        );
        assert_eq!(
            all.request_tag_list(),
            Some(vec![Bytes::from_static(b"_N_T_/blog")])
        );
    }
}
