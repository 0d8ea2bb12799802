//! INVALIDATE_TAGS (protocol.md §6.8).

use bytes::{BufMut, Bytes};

use crate::error::Invalid;
use crate::limits::Limits;
use crate::tag::{validate_tag, validate_tag_count};
use crate::wire::{put_string, string_len, BodyReader};

/// Invalidate every entry carrying any of these tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidateTags {
    /// The tags; at least one.
    pub tags: Vec<Bytes>,
}

impl InvalidateTags {
    pub(crate) fn decode(
        mut reader: BodyReader,
        limits: &Limits,
    ) -> Result<InvalidateTags, Invalid> {
        let count = usize::from(reader.u16("tag_count")?);
        if count == 0 {
            return Err(Invalid::malformed("INVALIDATE_TAGS needs at least one tag"));
        }
        validate_tag_count(count, limits)?;
        let tags = read_tags(&mut reader, count, limits)?;
        reader.finish()?;
        Ok(InvalidateTags { tags })
    }

    pub(crate) fn body_len(&self) -> usize {
        2 + tags_len(&self.tags)
    }

    pub(crate) fn encode_body(&self, dst: &mut impl BufMut) {
        dst.put_u16(self.tags.len() as u16);
        put_tags(dst, &self.tags);
    }
}

/// Reads `count` length-prefixed tags, validating each.
pub(crate) fn read_tags(
    reader: &mut BodyReader,
    count: usize,
    limits: &Limits,
) -> Result<Vec<Bytes>, Invalid> {
    (0..count)
        .map(|_| {
            let tag = reader.string("tag")?;
            validate_tag(&tag, limits)?;
            Ok(tag)
        })
        .collect()
}

pub(crate) fn tags_len(tags: &[Bytes]) -> usize {
    tags.iter().map(|tag| string_len(tag)).sum()
}

pub(crate) fn put_tags(dst: &mut impl BufMut, tags: &[Bytes]) {
    for tag in tags {
        put_string(dst, tag);
    }
}
