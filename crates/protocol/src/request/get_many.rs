//! GETM, the multi-key GET (protocol.md §6.4).

use bytes::{BufMut, Bytes};

use crate::error::Invalid;
use crate::flags::Flags;
use crate::key::validate_key;
use crate::limits::Limits;
use crate::request::tag_list::{put_request_tags, read_request_tags, request_tags_len};
use crate::status::ErrorCode;
use crate::wire::{put_string, string_len, BodyReader};

/// Read many keys; answered with one frame per key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetMany {
    /// The keys, answered in this order.
    pub keys: Vec<Bytes>,
    /// Tags checked against every entry read as if it carried them (§8.5),
    /// sent with the REQUEST_TAGS flag; as [`Get::request_tags`](super::Get::request_tags).
    pub request_tags: Option<Vec<Bytes>>,
}

impl GetMany {
    pub(crate) fn decode(
        mut reader: BodyReader,
        flags: Flags,
        limits: &Limits,
    ) -> Result<GetMany, Invalid> {
        let request_tags = read_request_tags(&mut reader, flags, limits)?;
        let count = reader.u16("key_count")?;
        if count == 0 || u32::from(count) > limits.max_keys_per_getm {
            return Err(Invalid::new(
                ErrorCode::TooManyKeys,
                format!("{count} keys; GETM takes 1..={}", limits.max_keys_per_getm),
            ));
        }
        let keys = (0..count)
            .map(|_| {
                let key = reader.string("key")?;
                validate_key(&key, limits)?;
                Ok(key)
            })
            .collect::<Result<Vec<_>, Invalid>>()?;
        reader.finish()?;
        Ok(GetMany { keys, request_tags })
    }

    pub(crate) fn body_flags(&self) -> Flags {
        Flags::when(self.request_tags.is_some(), Flags::REQUEST_TAGS)
    }

    pub(crate) fn body_len(&self) -> usize {
        request_tags_len(self.request_tags.as_deref())
            + 2
            + self.keys.iter().map(|key| string_len(key)).sum::<usize>()
    }

    pub(crate) fn encode_body(&self, dst: &mut impl BufMut) {
        put_request_tags(dst, self.request_tags.as_deref());
        dst.put_u16(self.keys.len() as u16);
        for key in &self.keys {
            put_string(dst, key);
        }
    }
}
