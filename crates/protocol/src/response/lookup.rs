//! GET and GETM results (protocol.md §6.3, §6.4).

use bytes::{BufMut, Bytes};

use crate::error::Invalid;
use crate::opcode::Opcode;
use crate::wire::{put_string, string_len, BodyReader};

/// A GET or GETM hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// GETM only: the key's position in the request.
    pub key_index: Option<u16>,
    /// The current invalidation sequence, for a later fenced SET.
    pub fence: u64,
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
    /// The entry's CAS value.
    pub cas: u64,
    /// The flags given at SET.
    pub client_flags: u32,
    /// Sorted, de-duplicated tags when WITH_TAGS was asked; else empty.
    pub tags: &'a [Bytes],
    /// The value.
    pub value: &'a [u8],
}

/// A GET or GETM miss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Miss {
    /// GETM only: the key's position in the request.
    pub key_index: Option<u16>,
    /// The current invalidation sequence, for a later fenced SET.
    pub fence: u64,
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

impl Hit {
    /// The same hit, borrowed.
    pub fn as_ref(&self) -> HitRef<'_> {
        HitRef {
            key_index: self.key_index,
            fence: self.fence,
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
}

impl HitRef<'_> {
    /// Size of the whole body, value included.
    pub(crate) fn body_len(&self, opcode: Opcode) -> usize {
        key_index_len(opcode)
            + 8
            + 8
            + 4
            + 2
            + self.tags.iter().map(|tag| string_len(tag)).sum::<usize>()
            + self.value.len()
    }

    pub(crate) fn encode_body(&self, opcode: Opcode, dst: &mut impl BufMut) {
        put_key_index(opcode, self.key_index, dst);
        // The fixed fields in one append: one capacity check, not four.
        let mut fixed = [0u8; 22];
        fixed[..8].copy_from_slice(&self.fence.to_be_bytes());
        fixed[8..16].copy_from_slice(&self.cas.to_be_bytes());
        fixed[16..20].copy_from_slice(&self.client_flags.to_be_bytes());
        fixed[20..].copy_from_slice(&(self.tags.len() as u16).to_be_bytes());
        dst.put_slice(&fixed);
        for tag in self.tags {
            put_string(dst, tag);
        }
        dst.put_slice(self.value);
    }
}

impl Hit {
    pub(crate) fn decode(opcode: Opcode, mut reader: BodyReader) -> Result<Hit, Invalid> {
        let key_index = read_key_index(opcode, &mut reader)?;
        let fence = reader.u64("fence")?;
        let cas = reader.u64("cas")?;
        let client_flags = reader.u32("client_flags")?;
        let tag_count = reader.u16("tag_count")?;
        let tags = (0..tag_count)
            .map(|_| reader.string("tag"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Hit {
            key_index,
            fence,
            cas,
            client_flags,
            tags,
            value: reader.rest(),
        })
    }
}

impl Miss {
    pub(crate) fn body_len(&self, opcode: Opcode) -> usize {
        key_index_len(opcode) + 8
    }

    pub(crate) fn encode_body(&self, opcode: Opcode, dst: &mut impl BufMut) {
        put_key_index(opcode, self.key_index, dst);
        dst.put_u64(self.fence);
    }

    pub(crate) fn decode(opcode: Opcode, reader: &mut BodyReader) -> Result<Miss, Invalid> {
        Ok(Miss {
            key_index: read_key_index(opcode, reader)?,
            fence: reader.u64("fence")?,
        })
    }
}
