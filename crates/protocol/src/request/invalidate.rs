//! INVALIDATE_TAGS, hard or soft (protocol.md §6.8).

use bytes::{BufMut, Bytes};

use crate::error::Invalid;
use crate::flags::Flags;
use crate::limits::Limits;
use crate::request::set::validate_ttl;
use crate::request::tag_list::{
    counted_tags_len, put_counted_tags, read_tags, validate_required_tag_count,
};
use crate::wire::BodyReader;

/// Invalidate every entry carrying any of these tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidateTags {
    /// The tags; at least one.
    pub tags: Vec<Bytes>,
    /// `None`: a hard invalidation. `Some(expire)`: a soft one (the SOFT
    /// flag), whose entries are stale for `expire` seconds and then dead
    /// (§8.3); `Some(0)` acts as a hard one but is sent as soft.
    pub soft_expire: Option<u32>,
}

impl InvalidateTags {
    pub(crate) fn decode(
        mut reader: BodyReader,
        flags: Flags,
        limits: &Limits,
    ) -> Result<InvalidateTags, Invalid> {
        let soft_expire = read_soft_expire(&mut reader, flags)?;
        let count = usize::from(reader.u16("tag_count")?);
        let soft_expire = validate_soft_expire(soft_expire, limits)?;
        validate_required_tag_count(count, "INVALIDATE_TAGS", limits)?;
        let tags = read_tags(&mut reader, count, limits)?;
        reader.finish()?;
        Ok(InvalidateTags { tags, soft_expire })
    }

    pub(crate) fn body_flags(&self) -> Flags {
        soft_flag(self.soft_expire)
    }

    pub(crate) fn body_len(&self) -> usize {
        soft_expire_len(self.soft_expire) + counted_tags_len(&self.tags)
    }

    pub(crate) fn encode_body(&self, dst: &mut impl BufMut) {
        put_soft_expire(dst, self.soft_expire);
        put_counted_tags(dst, &self.tags);
    }
}

// The `expire` field that SOFT puts first in INVALIDATE_TAGS and FLUSH_ALL
// (§6.8, §6.9). Reading and checking it are apart so that a body's fixed
// fields are all read before any value is checked (§6).

/// Reads `expire` if the request has SOFT.
pub(crate) fn read_soft_expire(
    reader: &mut BodyReader,
    flags: Flags,
) -> Result<Option<u32>, Invalid> {
    flags
        .contains(Flags::SOFT)
        .then(|| reader.u32("expire"))
        .transpose()
}

/// `BAD_TTL` for an `expire` above `max_ttl`.
pub(crate) fn validate_soft_expire(
    soft_expire: Option<u32>,
    limits: &Limits,
) -> Result<Option<u32>, Invalid> {
    soft_expire
        .map(|expire| validate_ttl(expire, "expire", limits))
        .transpose()
}

pub(crate) fn soft_flag(soft_expire: Option<u32>) -> Flags {
    Flags::when(soft_expire.is_some(), Flags::SOFT)
}

pub(crate) fn soft_expire_len(soft_expire: Option<u32>) -> usize {
    soft_expire.map_or(0, |_| 4)
}

pub(crate) fn put_soft_expire(dst: &mut impl BufMut, soft_expire: Option<u32>) {
    if let Some(expire) = soft_expire {
        dst.put_u32(expire);
    }
}
