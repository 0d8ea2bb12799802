//! GET and GETM results (protocol.md §6.3, §6.4): HIT and STALE carry an
//! entry, MISS and HOT_MISS none; each carries a `lease` field when the
//! request had the LEASE flag.

use std::num::NonZeroU64;

use bytes::{BufMut, Bytes};

use crate::error::Invalid;
use crate::opcode::Opcode;
use crate::wire::{put_string, string_len, BodyReader};

/// The `lease` field of a GET or GETM response (protocol.md §6.3, §8.4).
///
/// Whether the field is on the wire depends on the request, not on the
/// response: a decoder is told whether the request had LEASE, and an
/// encoder writes the field unless the lease is [`Lease::NotRequested`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lease {
    /// The request had no LEASE flag: the body has no `lease` field.
    NotRequested,
    /// The request asked for a lease and this reader got none: the field
    /// is 0.
    NotGranted,
    /// This reader holds the key's lease: a SET with LEASE and this token
    /// refreshes the key (§6.5).
    Granted(NonZeroU64),
}

impl Lease {
    /// The lease as read from the wire: `None` for no field, else the
    /// field's value (0 for none granted).
    pub fn from_field(field: Option<u64>) -> Lease {
        match field {
            None => Lease::NotRequested,
            Some(token) => NonZeroU64::new(token).map_or(Lease::NotGranted, Lease::Granted),
        }
    }

    /// The `lease` field's value, or `None` if the body has none.
    pub fn field(self) -> Option<u64> {
        match self {
            Lease::NotRequested => None,
            Lease::NotGranted => Some(0),
            Lease::Granted(token) => Some(token.get()),
        }
    }

    /// The token, if this reader was granted the lease.
    pub fn token(self) -> Option<u64> {
        match self {
            Lease::Granted(token) => Some(token.get()),
            Lease::NotRequested | Lease::NotGranted => None,
        }
    }

    fn field_len(self) -> usize {
        self.field().map_or(0, |_| 8)
    }
}

/// A GET or GETM hit (status HIT), or a stale entry's (status STALE: the
/// same body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// GETM only: the key's position in the request.
    pub key_index: Option<u16>,
    /// The current invalidation sequence, for a later fenced SET.
    pub fence: u64,
    /// The lease field, present when the request had LEASE.
    pub lease: Lease,
    /// The entry's CAS value.
    pub cas: u64,
    /// The flags given at SET.
    pub client_flags: u32,
    /// Sorted, de-duplicated tags when WITH_TAGS was asked; else empty.
    pub tags: Vec<Bytes>,
    /// The value.
    pub value: Bytes,
}

/// A GET or GETM hit whose tags and value are borrowed, so a server can
/// encode one straight from its store without copying the value first.
/// Encodes exactly as the [`Hit`] with the same fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HitRef<'a> {
    /// GETM only: the key's position in the request.
    pub key_index: Option<u16>,
    /// The current invalidation sequence, for a later fenced SET.
    pub fence: u64,
    /// The lease field: [`Lease::NotRequested`] unless the request had
    /// LEASE, and then whether this reader was granted the lease.
    pub lease: Lease,
    /// The entry's CAS value.
    pub cas: u64,
    /// The flags given at SET.
    pub client_flags: u32,
    /// Sorted, de-duplicated tags when WITH_TAGS was asked; else empty.
    pub tags: &'a [Bytes],
    /// The value.
    pub value: &'a [u8],
}

/// A GET or GETM miss (status MISS), or a hot miss's (status HOT_MISS: the
/// same body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Miss {
    /// GETM only: the key's position in the request.
    pub key_index: Option<u16>,
    /// The current invalidation sequence, for a later fenced SET.
    pub fence: u64,
    /// The lease field, present when the request had LEASE.
    pub lease: Lease,
}

fn key_index_len(opcode: Opcode) -> usize {
    if opcode == Opcode::GETM {
        2
    } else {
        0
    }
}

fn put_key_index(opcode: Opcode, key_index: Option<u16>, dst: &mut impl BufMut) {
    if opcode == Opcode::GETM {
        dst.put_u16(key_index.unwrap_or(0));
    }
}

fn read_key_index(opcode: Opcode, reader: &mut BodyReader) -> Result<Option<u16>, Invalid> {
    if opcode == Opcode::GETM {
        Ok(Some(reader.u16("key_index")?))
    } else {
        Ok(None)
    }
}

fn read_lease(lease_requested: bool, reader: &mut BodyReader) -> Result<Lease, Invalid> {
    let field = lease_requested.then(|| reader.u64("lease")).transpose()?;
    Ok(Lease::from_field(field))
}

impl Hit {
    /// The same hit, borrowed.
    pub fn as_ref(&self) -> HitRef<'_> {
        HitRef {
            key_index: self.key_index,
            fence: self.fence,
            lease: self.lease,
            cas: self.cas,
            client_flags: self.client_flags,
            tags: &self.tags,
            value: &self.value,
        }
    }

    pub(crate) fn body_len(&self, opcode: Opcode) -> usize {
        self.as_ref().body_len(opcode)
    }

    pub(crate) fn encode_body(&self, opcode: Opcode, dst: &mut impl BufMut) {
        self.as_ref().encode_body(opcode, dst);
    }

    pub(crate) fn decode(
        opcode: Opcode,
        lease_requested: bool,
        mut reader: BodyReader,
    ) -> Result<Hit, Invalid> {
        let key_index = read_key_index(opcode, &mut reader)?;
        let fence = reader.u64("fence")?;
        let lease = read_lease(lease_requested, &mut reader)?;
        let cas = reader.u64("cas")?;
        let client_flags = reader.u32("client_flags")?;
        let tag_count = reader.u16("tag_count")?;
        let tags = (0..tag_count)
            .map(|_| reader.string("tag"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Hit {
            key_index,
            fence,
            lease,
            cas,
            client_flags,
            tags,
            value: reader.rest(),
        })
    }
}

/// fence, lease, cas, client_flags, tag_count: the most fixed bytes after
/// `key_index`.
const HIT_FIXED_MAX: usize = 8 + 8 + 8 + 4 + 2;

impl HitRef<'_> {
    /// Size of the whole body, value included.
    pub(crate) fn body_len(&self, opcode: Opcode) -> usize {
        key_index_len(opcode)
            + 8
            + self.lease.field_len()
            + 8
            + 4
            + 2
            + self.tags.iter().map(|tag| string_len(tag)).sum::<usize>()
            + self.value.len()
    }

    pub(crate) fn encode_body(&self, opcode: Opcode, dst: &mut impl BufMut) {
        put_key_index(opcode, self.key_index, dst);
        // The fixed fields in one append: one capacity check, not five.
        let mut fixed = [0u8; HIT_FIXED_MAX];
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            fixed[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(&self.fence.to_be_bytes());
        if let Some(lease) = self.lease.field() {
            put(&lease.to_be_bytes());
        }
        put(&self.cas.to_be_bytes());
        put(&self.client_flags.to_be_bytes());
        put(&(self.tags.len() as u16).to_be_bytes());
        dst.put_slice(&fixed[..at]);
        for tag in self.tags {
            put_string(dst, tag);
        }
        dst.put_slice(self.value);
    }
}

impl Miss {
    pub(crate) fn body_len(&self, opcode: Opcode) -> usize {
        key_index_len(opcode) + 8 + self.lease.field_len()
    }

    pub(crate) fn encode_body(&self, opcode: Opcode, dst: &mut impl BufMut) {
        put_key_index(opcode, self.key_index, dst);
        dst.put_u64(self.fence);
        if let Some(lease) = self.lease.field() {
            dst.put_u64(lease);
        }
    }

    pub(crate) fn decode(
        opcode: Opcode,
        lease_requested: bool,
        reader: &mut BodyReader,
    ) -> Result<Miss, Invalid> {
        Ok(Miss {
            key_index: read_key_index(opcode, reader)?,
            fence: reader.u64("fence")?,
            lease: read_lease(lease_requested, reader)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_field_round_trips_and_zero_is_none_granted() {
        for field in [None, Some(0), Some(1), Some(u64::MAX)] {
            assert_eq!(Lease::from_field(field).field(), field);
        }
        assert_eq!(Lease::from_field(Some(0)), Lease::NotGranted);
        assert_eq!(Lease::from_field(Some(7)).token(), Some(7));
        assert_eq!(Lease::NotGranted.token(), None);
    }

    #[test]
    fn a_lease_puts_eight_bytes_after_the_fence() {
        let hit = Hit {
            key_index: Some(2),
            fence: 1,
            lease: Lease::from_field(Some(0x0102)),
            cas: 3,
            client_flags: 4,
            tags: vec![Bytes::from_static(b"t")],
            value: Bytes::from_static(b"v"),
        };
        let mut body = Vec::new();
        hit.encode_body(Opcode::GETM, &mut body);
        assert_eq!(body.len(), hit.body_len(Opcode::GETM));
        assert_eq!(&body[..2], [0, 2]);
        assert_eq!(&body[2..10], 1u64.to_be_bytes());
        assert_eq!(&body[10..18], 0x0102u64.to_be_bytes());
        assert_eq!(&body[18..26], 3u64.to_be_bytes());
        let without = Hit {
            lease: Lease::NotRequested,
            ..hit.clone()
        };
        assert_eq!(without.body_len(Opcode::GETM) + 8, body.len());
    }
}
