//! FLUSH_ALL, hard or soft (protocol.md §6.9).

use bytes::BufMut;

use crate::error::Invalid;
use crate::flags::Flags;
use crate::limits::Limits;
use crate::request::invalidate::{
    put_soft_expire, read_soft_expire, soft_expire_len, soft_flag, validate_soft_expire,
};
use crate::wire::BodyReader;

/// Remove every entry, or make every entry stale for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushAll {
    /// `None`: a hard flush, which removes every entry. `Some(expire)`: a
    /// soft one (the SOFT flag), after which every entry is stale for
    /// `expire` seconds and then dead (§8.3); `Some(0)` acts as a hard one
    /// but is sent as soft.
    pub soft_expire: Option<u32>,
}

impl FlushAll {
    /// The hard flush, the only one of protocol version 1.
    pub const HARD: FlushAll = FlushAll { soft_expire: None };

    pub(crate) fn decode(
        mut reader: BodyReader,
        flags: Flags,
        limits: &Limits,
    ) -> Result<FlushAll, Invalid> {
        let soft_expire = read_soft_expire(&mut reader, flags)?;
        let soft_expire = validate_soft_expire(soft_expire, limits)?;
        reader.finish()?;
        Ok(FlushAll { soft_expire })
    }

    pub(crate) fn body_flags(&self) -> Flags {
        soft_flag(self.soft_expire)
    }

    pub(crate) fn body_len(&self) -> usize {
        soft_expire_len(self.soft_expire)
    }

    pub(crate) fn encode_body(&self, dst: &mut impl BufMut) {
        put_soft_expire(dst, self.soft_expire);
    }
}
