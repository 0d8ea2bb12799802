//! GET (protocol.md §6.3).

use bytes::{BufMut, Bytes};

use crate::error::Invalid;
use crate::flags::Flags;
use crate::key::validate_key;
use crate::limits::Limits;
use crate::request::tag_list::{put_request_tags, read_request_tags, request_tags_len};
use crate::wire::BodyReader;

/// Read one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Get {
    /// The key.
    pub key: Bytes,
    /// Tags checked against the entry as if it carried them (§8.5). `Some`
    /// sends the REQUEST_TAGS flag with these tags, even none (a `tag_count`
    /// of 0, which reads as no tags); `None` sends neither.
    pub request_tags: Option<Vec<Bytes>>,
}

impl Get {
    pub(crate) fn decode(
        mut reader: BodyReader,
        flags: Flags,
        limits: &Limits,
    ) -> Result<Get, Invalid> {
        let request_tags = read_request_tags(&mut reader, flags, limits)?;
        let key = reader.rest();
        validate_key(&key, limits)?;
        Ok(Get { key, request_tags })
    }

    pub(crate) fn body_flags(&self) -> Flags {
        Flags::when(self.request_tags.is_some(), Flags::REQUEST_TAGS)
    }

    pub(crate) fn body_len(&self) -> usize {
        request_tags_len(self.request_tags.as_deref()) + self.key.len()
    }

    pub(crate) fn encode_body(&self, dst: &mut impl BufMut) {
        put_request_tags(dst, self.request_tags.as_deref());
        dst.put_slice(&self.key);
    }
}
