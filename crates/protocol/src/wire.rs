//! Field-by-field reading and writing of bodies, shared by every command.
//!
//! Reading slices the frame's `Bytes` instead of copying, so keys, tags and
//! values in a decoded request point into the received buffer.

use bytes::{Buf, BufMut, Bytes};

use crate::error::Invalid;

/// A cursor over one frame body.
pub(crate) struct BodyReader {
    body: Bytes,
}

impl BodyReader {
    pub(crate) fn new(body: Bytes) -> BodyReader {
        BodyReader { body }
    }

    fn need(&self, n: usize, what: &'static str) -> Result<(), Invalid> {
        if self.body.remaining() < n {
            return Err(Invalid::malformed(format!(
                "body ends inside {what}: needs {n} more bytes, has {}",
                self.body.remaining()
            )));
        }
        Ok(())
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, Invalid> {
        self.need(1, what)?;
        Ok(self.body.get_u8())
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, Invalid> {
        self.need(2, what)?;
        Ok(self.body.get_u16())
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, Invalid> {
        self.need(4, what)?;
        Ok(self.body.get_u32())
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, Invalid> {
        self.need(8, what)?;
        Ok(self.body.get_u64())
    }

    /// A u16-length-prefixed byte string.
    pub(crate) fn string(&mut self, what: &'static str) -> Result<Bytes, Invalid> {
        let len = usize::from(self.u16(what)?);
        self.need(len, what)?;
        Ok(self.body.split_to(len))
    }

    /// Everything left.
    pub(crate) fn rest(self) -> Bytes {
        self.body
    }

    /// Ends a body whose layout has no "rest" field.
    pub(crate) fn finish(self) -> Result<(), Invalid> {
        if self.body.is_empty() {
            Ok(())
        } else {
            Err(Invalid::malformed(format!(
                "{} unexpected bytes after the body",
                self.body.len()
            )))
        }
    }
}

/// Appends a u16-length-prefixed string. Callers guarantee `bytes` is at
/// most `u16::MAX` long (keys and tags are validated far below that).
pub(crate) fn put_string(dst: &mut impl BufMut, bytes: &[u8]) {
    debug_assert!(bytes.len() <= usize::from(u16::MAX));
    dst.put_u16(bytes.len() as u16);
    dst.put_slice(bytes);
}

/// Encoded size of a u16-length-prefixed string.
pub(crate) fn string_len(bytes: &[u8]) -> usize {
    2 + bytes.len()
}
