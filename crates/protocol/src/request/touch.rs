//! TOUCH (protocol.md §6.7).

use bytes::{BufMut, Bytes};

use crate::error::Invalid;
use crate::key::validate_key;
use crate::limits::Limits;
use crate::request::set::validate_ttl;
use crate::wire::BodyReader;

/// Reset a key's time to live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch {
    /// New TTL in seconds; 0 = never expire.
    pub ttl: u32,
    /// The key.
    pub key: Bytes,
}

impl Touch {
    pub(crate) fn decode(mut reader: BodyReader, limits: &Limits) -> Result<Touch, Invalid> {
        let ttl = validate_ttl(reader.u32("ttl")?, "ttl", limits)?;
        let key = reader.rest();
        validate_key(&key, limits)?;
        Ok(Touch { ttl, key })
    }

    pub(crate) fn body_len(&self) -> usize {
        4 + self.key.len()
    }

    pub(crate) fn encode_body(&self, dst: &mut impl BufMut) {
        dst.put_u32(self.ttl);
        dst.put_slice(&self.key);
    }
}
