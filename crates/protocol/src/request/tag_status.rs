//! TAG_STATUS (protocol.md §6.11).

use bytes::{BufMut, Bytes};

use crate::error::Invalid;
use crate::limits::Limits;
use crate::request::tag_list::{
    counted_tags_len, put_counted_tags, read_tags, validate_required_tag_count,
};
use crate::wire::BodyReader;

/// Ask what the server knows of some tags: their last hard and soft
/// invalidations and how many entries carry them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagStatus {
    /// The tags, answered in this order (repeats answered again); at least
    /// one.
    pub tags: Vec<Bytes>,
}

impl TagStatus {
    pub(crate) fn decode(mut reader: BodyReader, limits: &Limits) -> Result<TagStatus, Invalid> {
        let count = usize::from(reader.u16("tag_count")?);
        validate_required_tag_count(count, "TAG_STATUS", limits)?;
        let tags = read_tags(&mut reader, count, limits)?;
        reader.finish()?;
        Ok(TagStatus { tags })
    }

    pub(crate) fn body_len(&self) -> usize {
        counted_tags_len(&self.tags)
    }

    pub(crate) fn encode_body(&self, dst: &mut impl BufMut) {
        put_counted_tags(dst, &self.tags);
    }
}
