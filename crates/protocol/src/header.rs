//! The fixed 16-byte frame header (protocol.md §2).

use bytes::{Buf, BufMut};

use crate::opcode::Opcode;

/// First byte of every request frame.
pub const REQUEST_MAGIC: u8 = 0xC7;
/// First byte of every response frame.
pub const RESPONSE_MAGIC: u8 = 0xC8;
/// The only protocol version this crate speaks.
pub const PROTOCOL_VERSION: u8 = 1;
/// Size of the frame header in bytes.
pub const HEADER_LEN: usize = 16;

/// A decoded frame header. Field meanings are those of protocol.md §2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// [`REQUEST_MAGIC`] or [`RESPONSE_MAGIC`].
    pub magic: u8,
    /// Protocol version.
    pub version: u8,
    /// The command; a response repeats its request's.
    pub opcode: Opcode,
    /// Request flags; 0 in a response.
    pub flags: u8,
    /// Outcome in a response; 0 in a request.
    pub status: u16,
    /// Client-chosen id echoed in responses.
    pub opaque: u32,
    /// Bytes of body following the header.
    pub body_length: u32,
}

impl Header {
    /// Reads a header from the first [`HEADER_LEN`] bytes of `bytes`.
    ///
    /// Returns `None` when fewer than [`HEADER_LEN`] bytes are available.
    pub fn peek(mut bytes: &[u8]) -> Option<Header> {
        if bytes.len() < HEADER_LEN {
            return None;
        }
        let magic = bytes.get_u8();
        let version = bytes.get_u8();
        let opcode = Opcode(bytes.get_u8());
        let flags = bytes.get_u8();
        let status = bytes.get_u16();
        let _reserved = bytes.get_u16();
        let opaque = bytes.get_u32();
        let body_length = bytes.get_u32();
        Some(Header {
            magic,
            version,
            opcode,
            flags,
            status,
            opaque,
            body_length,
        })
    }

    /// Appends the header's 16 bytes to `dst`.
    pub fn write(&self, dst: &mut impl BufMut) {
        // Assembled on the stack and appended at once: one capacity check
        // instead of eight (this runs once per response).
        let mut bytes = [0u8; HEADER_LEN];
        bytes[0] = self.magic;
        bytes[1] = self.version;
        bytes[2] = self.opcode.0;
        bytes[3] = self.flags;
        bytes[4..6].copy_from_slice(&self.status.to_be_bytes());
        bytes[8..12].copy_from_slice(&self.opaque.to_be_bytes());
        bytes[12..16].copy_from_slice(&self.body_length.to_be_bytes());
        dst.put_slice(&bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_in_big_endian() {
        let header = Header {
            magic: REQUEST_MAGIC,
            version: PROTOCOL_VERSION,
            opcode: Opcode::SET,
            flags: 1,
            status: 0x0102,
            opaque: 0x0A0B0C0D,
            body_length: 0x23,
        };
        let mut buf = Vec::new();
        header.write(&mut buf);
        assert_eq!(
            buf,
            [0xC7, 1, 0x20, 1, 0x01, 0x02, 0, 0, 0x0A, 0x0B, 0x0C, 0x0D, 0, 0, 0, 0x23]
        );
        assert_eq!(Header::peek(&buf), Some(header));
        assert_eq!(Header::peek(&buf[..15]), None);
    }
}
