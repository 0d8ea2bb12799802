//! DELETE (protocol.md §6.6).

use bytes::{BufMut, Bytes};

use crate::error::Invalid;
use crate::key::validate_key;
use crate::limits::Limits;
use crate::wire::BodyReader;

/// Remove a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    /// The key.
    pub key: Bytes,
}

impl Delete {
    pub(crate) fn decode(reader: BodyReader, limits: &Limits) -> Result<Delete, Invalid> {
        let key = reader.rest();
        validate_key(&key, limits)?;
        Ok(Delete { key })
    }

    pub(crate) fn body_len(&self) -> usize {
        self.key.len()
    }

    pub(crate) fn encode_body(&self, dst: &mut impl BufMut) {
        dst.put_slice(&self.key);
    }
}
