//! HELLO (protocol.md §6.1).

use bytes::{BufMut, Bytes};

use crate::error::Invalid;
use crate::wire::BodyReader;

/// `want_shard` value meaning "any shard".
const ANY_SHARD: u16 = 0xFFFF;

/// The client's half of the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Highest protocol version the client speaks.
    pub max_version: u8,
    /// The shard that should serve this connection, if the client cares.
    pub want_shard: Option<u16>,
    /// Free-form UTF-8 name, for logs.
    pub client_name: Bytes,
}

impl Hello {
    pub(crate) fn decode(mut reader: BodyReader) -> Result<Hello, Invalid> {
        let max_version = reader.u8("max_version")?;
        let want_shard = match reader.u16("want_shard")? {
            ANY_SHARD => None,
            shard => Some(shard),
        };
        Ok(Hello {
            max_version,
            want_shard,
            client_name: reader.rest(),
        })
    }

    pub(crate) fn body_len(&self) -> usize {
        3 + self.client_name.len()
    }

    pub(crate) fn encode_body(&self, dst: &mut impl BufMut) {
        dst.put_u8(self.max_version);
        dst.put_u16(self.want_shard.unwrap_or(ANY_SHARD));
        dst.put_slice(&self.client_name);
    }
}
