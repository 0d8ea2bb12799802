//! The server's half of the handshake (protocol.md §6.1).

use bytes::{BufMut, Bytes};

use crate::error::Invalid;
use crate::limits::Limits;
use crate::wire::{put_string, string_len, BodyReader};

/// Feature bits in HELLO (protocol.md §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Features(pub u64);

impl Features {
    /// SET refuses values built before an invalidation of their tags.
    pub const FENCED_SET: Features = Features(1 << 0);
    /// HELLO can move a connection to a chosen shard.
    pub const SHARD_AWARE: Features = Features(1 << 1);
    /// Soft invalidation that serves stale while one client refreshes.
    pub const STALE_WHILE_REVALIDATE: Features = Features(1 << 2);
    /// Lease tokens against stale sets and stampedes.
    pub const LEASES: Features = Features(1 << 3);
    /// Invalidations held pending until a transaction commits.
    pub const PENDING_INVALIDATION: Features = Features(1 << 4);
    /// Authentication.
    pub const AUTH: Features = Features(1 << 5);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Features) -> bool {
        self.0 & other.0 == other.0
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
