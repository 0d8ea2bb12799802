//! GET (protocol.md §6.3).

use bytes::{BufMut, Bytes};

use crate::error::Invalid;
use crate::key::validate_key;
use crate::limits::Limits;
use crate::wire::BodyReader;

/// Read one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Get {
    /// The key.
    pub key: Bytes,
}

impl Get {
    pub(crate) fn decode(reader: BodyReader, limits: &Limits) -> Result<Get, Invalid> {
        let key = reader.rest();
        validate_key(&key, limits)?;
        Ok(Get { key })
    }

    pub(crate) fn body_len(&self) -> usize {
        self.key.len()
    }

    pub(crate) fn encode_body(&self, dst: &mut impl BufMut) {
        dst.put_slice(&self.key);
    }
}
