//! GETM, the multi-key GET (protocol.md §6.4).

use bytes::{BufMut, Bytes};

use crate::error::Invalid;
use crate::key::validate_key;
use crate::limits::Limits;
use crate::status::ErrorCode;
use crate::wire::{put_string, string_len, BodyReader};

/// Read many keys; answered with one frame per key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetMany {
    /// The keys, answered in this order.
    pub keys: Vec<Bytes>,
}

impl GetMany {
    pub(crate) fn decode(mut reader: BodyReader, limits: &Limits) -> Result<GetMany, Invalid> {
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
        Ok(GetMany { keys })
    }

    pub(crate) fn body_len(&self) -> usize {
        2 + self.keys.iter().map(|key| string_len(key)).sum::<usize>()
    }

    pub(crate) fn encode_body(&self, dst: &mut impl BufMut) {
        dst.put_u16(self.keys.len() as u16);
        for key in &self.keys {
            put_string(dst, key);
        }
    }
}
