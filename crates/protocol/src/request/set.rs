//! SET and its modes (protocol.md §6.5).

use bytes::{BufMut, Bytes};

use crate::error::Invalid;
use crate::flags::Flags;
use crate::key::validate_key;
use crate::limits::Limits;
use crate::request::tag_list::{put_tags, read_tags, tags_len};
use crate::status::ErrorCode;
use crate::tag::validate_tag_count;
use crate::wire::{put_string, string_len, BodyReader};

/// When a SET may store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetMode {
    /// Always.
    Set,
    /// Only if no live entry exists.
    Add,
    /// Only if a live entry exists.
    Replace,
    /// Only if the live entry's CAS value is this one.
    Cas(u64),
}

/// Store a value under a key, with tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    /// When to store.
    pub mode: SetMode,
    /// Returned by GET; opaque to the server.
    pub client_flags: u32,
    /// Seconds to live; 0 = forever.
    pub ttl: u32,
    /// Refuse the SET if a tag was invalidated after this sequence.
    pub fence: Option<u64>,
    /// The lease token from a GET or GETM response (§8.4): `Some` sends the
    /// LEASE flag and the token, and the SET is the lease holder's refresh.
    pub lease: Option<u64>,
    /// Seconds after which the entry turns stale, 0 = never (§6.5): `Some`
    /// sends the STALE_AFTER flag and the window.
    pub stale_after: Option<u32>,
    /// The key.
    pub key: Bytes,
    /// The entry's tags, as sent (the store de-duplicates them).
    pub tags: Vec<Bytes>,
    /// The value.
    pub value: Bytes,
}

/// mode, reserved, tag_count, client_flags, ttl, cas, fence.
const FIXED_LEN: usize = 1 + 1 + 2 + 4 + 4 + 8 + 8;

impl Set {
    pub(crate) fn decode(
        mut reader: BodyReader,
        flags: Flags,
        limits: &Limits,
    ) -> Result<Set, Invalid> {
        let mode = reader.u8("mode")?;
        let _reserved = reader.u8("reserved")?;
        let tag_count = usize::from(reader.u16("tag_count")?);
        let client_flags = reader.u32("client_flags")?;
        let ttl = reader.u32("ttl")?;
        let cas = reader.u64("cas")?;
        let fence = reader.u64("fence")?;
        let lease = flags
            .contains(Flags::LEASE)
            .then(|| reader.u64("lease"))
            .transpose()?;
        let stale_after = flags
            .contains(Flags::STALE_AFTER)
            .then(|| reader.u32("stale_after"))
            .transpose()?;
        // The fixed fields are all present; check their values in layout
        // order, then the variable fields (protocol.md §6).
        let mode = match mode {
            0 => SetMode::Set,
            1 => SetMode::Add,
            2 => SetMode::Replace,
            3 => SetMode::Cas(cas),
            other => return Err(Invalid::malformed(format!("unknown SET mode {other}"))),
        };
        validate_tag_count(tag_count, limits)?;
        let ttl = validate_ttl(ttl, "ttl", limits)?;
        let stale_after = stale_after
            .map(|seconds| validate_ttl(seconds, "stale_after", limits))
            .transpose()?;
        let key = reader.string("key")?;
        validate_key(&key, limits)?;
        let tags = read_tags(&mut reader, tag_count, limits)?;
        let value = reader.rest();
        if value.len() > limits.max_value_length as usize {
            return Err(Invalid::new(
                ErrorCode::ValueTooLarge,
                format!(
                    "value is {} bytes; the limit is {}",
                    value.len(),
                    limits.max_value_length
                ),
            ));
        }
        Ok(Set {
            mode,
            client_flags,
            ttl,
            fence: (fence != 0).then_some(fence),
            lease,
            stale_after,
            key,
            tags,
            value,
        })
    }

    pub(crate) fn body_flags(&self) -> Flags {
        Flags::when(self.lease.is_some(), Flags::LEASE)
            | Flags::when(self.stale_after.is_some(), Flags::STALE_AFTER)
    }

    pub(crate) fn body_len(&self) -> usize {
        FIXED_LEN
            + self.lease.map_or(0, |_| 8)
            + self.stale_after.map_or(0, |_| 4)
            + string_len(&self.key)
            + tags_len(&self.tags)
            + self.value.len()
    }

    pub(crate) fn encode_body(&self, dst: &mut impl BufMut) {
        let (mode, cas) = match self.mode {
            SetMode::Set => (0, 0),
            SetMode::Add => (1, 0),
            SetMode::Replace => (2, 0),
            SetMode::Cas(cas) => (3, cas),
        };
        dst.put_u8(mode);
        dst.put_u8(0);
        dst.put_u16(self.tags.len() as u16);
        dst.put_u32(self.client_flags);
        dst.put_u32(self.ttl);
        dst.put_u64(cas);
        dst.put_u64(self.fence.unwrap_or(0));
        if let Some(lease) = self.lease {
            dst.put_u64(lease);
        }
        if let Some(stale_after) = self.stale_after {
            dst.put_u32(stale_after);
        }
        put_string(dst, &self.key);
        put_tags(dst, &self.tags);
        dst.put_slice(&self.value);
    }
}

/// Checks a number of seconds (a TTL, a stale window, a soft invalidation's
/// window: the body field `field`) against `max_ttl`.
pub(crate) fn validate_ttl(seconds: u32, field: &str, limits: &Limits) -> Result<u32, Invalid> {
    if seconds > limits.max_ttl {
        return Err(Invalid::new(
            ErrorCode::BadTtl,
            format!(
                "{field} {seconds}s exceeds the limit of {}s",
                limits.max_ttl
            ),
        ));
    }
    Ok(seconds)
}
