//! The server's half of the handshake (protocol.md §6.1).

use bytes::{BufMut, Bytes};

use crate::error::Invalid;
use crate::flags::Flags;
use crate::limits::Limits;
use crate::opcode::Opcode;
use crate::wire::{put_string, string_len, BodyReader};

/// Feature bits in HELLO (protocol.md §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Features(pub u64);

impl Features {
    /// SET refuses values built before an invalidation of their tags.
    pub const FENCED_SET: Features = Features(1 << 0);
    /// HELLO can move a connection to a chosen shard.
    pub const SHARD_AWARE: Features = Features(1 << 1);
    /// Stale-while-revalidate: the flags ALLOW_STALE, REQUEST_TAGS,
    /// STALE_AFTER and SOFT, and the opcode TAG_STATUS.
    pub const STALE_WHILE_REVALIDATE: Features = Features(1 << 2);
    /// Refresh leases: the flag LEASE.
    pub const LEASES: Features = Features(1 << 3);
    /// Invalidations held pending until a transaction commits.
    pub const PENDING_INVALIDATION: Features = Features(1 << 4);
    /// The server requires authentication: a client sends AUTH with a
    /// token before any request other than HELLO and PING (§6.12).
    pub const AUTH: Features = Features(1 << 5);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Features) -> bool {
        self.0 & other.0 == other.0
    }

    /// The features a server must report for a request of `opcode` sent
    /// with `flags` (its [`Request::wire_flags`](crate::Request::wire_flags))
    /// to be served (protocol.md §2.1, §6.1); a server without them answers
    /// `UNKNOWN_OPCODE` or `BAD_FLAGS`.
    pub fn required_by(opcode: Opcode, flags: Flags) -> Features {
        let stale_flags =
            Flags::ALLOW_STALE | Flags::REQUEST_TAGS | Flags::STALE_AFTER | Flags::SOFT;
        let stale = opcode == Opcode::TAG_STATUS || flags.0 & stale_flags.0 != 0;
        let mut required = Features::default();
        if stale {
            required = required | Features::STALE_WHILE_REVALIDATE;
        }
        if flags.contains(Flags::LEASE) {
            required = required | Features::LEASES;
        }
        required
    }
}

impl std::ops::BitOr for Features {
    type Output = Features;

    fn bitor(self, rhs: Features) -> Features {
        Features(self.0 | rhs.0)
    }
}

/// What the server tells a client at HELLO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloInfo {
    /// Protocol version the server will speak.
    pub version: u8,
    /// Number of shards (worker threads).
    pub shard_count: u16,
    /// The shard now serving this connection.
    pub shard: u16,
    /// Key-to-shard hash: 1 = FNV-1a 64.
    pub hash: u8,
    /// Supported features.
    pub features: Features,
    /// Limits in force.
    pub limits: Limits,
    /// e.g. `tagcached 0.1.0`.
    pub server_version: Bytes,
}

impl HelloInfo {
    /// The `hash` value for FNV-1a 64 (protocol.md §9).
    pub const HASH_FNV1A_64: u8 = 1;

    pub(crate) fn body_len(&self) -> usize {
        1 + 1 + 2 + 2 + 1 + 1 + 8 + 7 * 4 + string_len(&self.server_version)
    }

    pub(crate) fn encode_body(&self, dst: &mut impl BufMut) {
        dst.put_u8(self.version);
        dst.put_u8(0);
        dst.put_u16(self.shard_count);
        dst.put_u16(self.shard);
        dst.put_u8(self.hash);
        dst.put_u8(0);
        dst.put_u64(self.features.0);
        let limits = &self.limits;
        dst.put_u32(limits.max_frame);
        dst.put_u32(limits.max_key_length);
        dst.put_u32(limits.max_value_length);
        dst.put_u32(limits.max_tag_length);
        dst.put_u32(limits.max_tags);
        dst.put_u32(limits.max_keys_per_getm);
        dst.put_u32(limits.max_ttl);
        put_string(dst, &self.server_version);
    }

    pub(crate) fn decode(reader: &mut BodyReader) -> Result<HelloInfo, Invalid> {
        let version = reader.u8("version")?;
        let _reserved = reader.u8("reserved")?;
        let shard_count = reader.u16("shard_count")?;
        let shard = reader.u16("shard")?;
        let hash = reader.u8("hash")?;
        let _reserved = reader.u8("reserved")?;
        let features = Features(reader.u64("features")?);
        let limits = Limits {
            max_frame: reader.u32("max_frame")?,
            max_key_length: reader.u32("max_key_length")?,
            max_value_length: reader.u32("max_value_length")?,
            max_tag_length: reader.u32("max_tag_length")?,
            max_tags: reader.u32("max_tags")?,
            max_keys_per_getm: reader.u32("max_keys_per_getm")?,
            max_ttl: reader.u32("max_ttl")?,
        };
        let server_version = reader.string("server_version")?;
        Ok(HelloInfo {
            version,
            shard_count,
            shard,
            hash,
            features,
            limits,
            server_version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_1_requests_need_no_new_feature() {
        for opcode in (0..=u8::MAX).map(Opcode) {
            let v1_flags = Flags::allowed_for(opcode).0 & (Flags::QUIET | Flags::WITH_TAGS).0;
            let required = Features::required_by(opcode, Flags(v1_flags));
            let expected = if opcode == Opcode::TAG_STATUS {
                Features::STALE_WHILE_REVALIDATE
            } else {
                Features::default()
            };
            assert_eq!(required, expected, "{opcode:?}");
        }
        assert_eq!(
            Features::required_by(Opcode::GET, Flags::ALLOW_STALE | Flags::LEASE),
            Features::STALE_WHILE_REVALIDATE | Features::LEASES
        );
        assert_eq!(
            Features::required_by(Opcode::FLUSH_ALL, Flags::SOFT),
            Features::STALE_WHILE_REVALIDATE
        );
        assert_eq!(
            Features::required_by(Opcode::SET, Flags::LEASE),
            Features::LEASES
        );
    }
}
