//! Counted lists of tags in request bodies (protocol.md §6.3, §6.4, §6.5,
//! §6.8, §6.11): a `u16` count, then that many strings, each a tag (§8.1).

use bytes::{BufMut, Bytes};

use crate::error::Invalid;
use crate::flags::Flags;
use crate::limits::Limits;
use crate::tag::{validate_tag, validate_tag_count};
use crate::wire::{put_string, string_len, BodyReader};

/// Reads `count` length-prefixed tags, validating each as it is read.
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

/// Checks the `tag_count` of a command that needs at least one tag
/// (INVALIDATE_TAGS, TAG_STATUS): 0 is `MALFORMED`, above `max_tags`
/// `TOO_MANY_TAGS`.
pub(crate) fn validate_required_tag_count(
    count: usize,
    command: &'static str,
    limits: &Limits,
) -> Result<(), Invalid> {
    if count == 0 {
        return Err(Invalid::malformed(format!(
            "{command} needs at least one tag"
        )));
    }
    validate_tag_count(count, limits)
}

/// Reads the request-scoped tags of a GET or GETM: `None` without
/// REQUEST_TAGS; with it, a `tag_count` of 0..=`max_tags` and the tags.
pub(crate) fn read_request_tags(
    reader: &mut BodyReader,
    flags: Flags,
    limits: &Limits,
) -> Result<Option<Vec<Bytes>>, Invalid> {
    if !flags.contains(Flags::REQUEST_TAGS) {
        return Ok(None);
    }
    let count = usize::from(reader.u16("tag_count")?);
    validate_tag_count(count, limits)?;
    read_tags(reader, count, limits).map(Some)
}

/// Encoded size of the tags, without their count.
pub(crate) fn tags_len(tags: &[Bytes]) -> usize {
    tags.iter().map(|tag| string_len(tag)).sum()
}

/// Appends the tags, without their count.
pub(crate) fn put_tags(dst: &mut impl BufMut, tags: &[Bytes]) {
    for tag in tags {
        put_string(dst, tag);
    }
}

/// Encoded size of a `tag_count` and the tags.
pub(crate) fn counted_tags_len(tags: &[Bytes]) -> usize {
    2 + tags_len(tags)
}

/// Appends a `tag_count` and the tags. Callers guarantee at most
/// `u16::MAX` tags (requests within the limits have far fewer).
pub(crate) fn put_counted_tags(dst: &mut impl BufMut, tags: &[Bytes]) {
    debug_assert!(tags.len() <= usize::from(u16::MAX));
    dst.put_u16(tags.len() as u16);
    put_tags(dst, tags);
}

/// Encoded size of optional request-scoped tags: nothing without them.
pub(crate) fn request_tags_len(request_tags: Option<&[Bytes]>) -> usize {
    request_tags.map_or(0, counted_tags_len)
}

/// Appends optional request-scoped tags: nothing without them.
pub(crate) fn put_request_tags(dst: &mut impl BufMut, request_tags: Option<&[Bytes]>) {
    if let Some(tags) = request_tags {
        put_counted_tags(dst, tags);
    }
}
