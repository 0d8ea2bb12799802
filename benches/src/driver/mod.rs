//! Protocol drivers: how a batch of operations becomes bytes, and how the
//! bytes that come back become replies, for each server the bench speaks.
//!
//! All three servers answer a connection's requests in order, so a driver
//! only parses; the connection pairs each reply with the oldest request in
//! flight.

pub mod memcached;
pub mod redis;
pub mod tagcached;

use bytes::BytesMut;

use crate::dataset::Dataset;
use crate::workload::Batch;

/// How one request ended, as far as the measurements care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// A GET found its key.
    Hit,
    /// A GET did not.
    Miss,
    /// Any other expected outcome (stored, deleted, not found on delete,
    /// invalidated).
    Done,
    /// An error response, or an outcome the workload never expects (a plain
    /// SET not stored). Counted as an error; the connection goes on.
    Failed,
}

/// A reply that does not parse: the stream can no longer be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProtocolError(pub String);

/// What every driver needs to know of the run.
#[derive(Debug, Clone, Copy)]
pub struct DriverOptions {
    /// Seconds to live on every SET; 0 for none.
    pub ttl: u32,
    /// The largest response body accepted.
    pub max_response: u32,
}

/// One protocol.
///
/// The connection guarantees it calls [`Driver::decode`] once for each
/// operation it encoded, in order, and only with bytes the server sent.
/// The driver must leave a partial reply in `src` untouched (returning
/// `Ok(None)`) and consume exactly one reply when it returns one.
pub trait Driver {
    /// A driver for one connection.
    fn new(options: &DriverOptions) -> Self
    where
        Self: Sized;

    /// Appends every operation of `batch` to `dst`.
    fn encode(&mut self, batch: &Batch, data: &Dataset, dst: &mut BytesMut);

    /// Takes the first complete reply off `src`.
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Reply>, ProtocolError>;
}

/// The longest status or header line the text protocols accept before the
/// stream is judged broken (a peer that is not the server we think).
pub(crate) const MAX_LINE: usize = 4096;

/// A reply line this driver cannot parse, quoted (at most 80 bytes).
pub(crate) fn unexpected(server: &str, line: &[u8]) -> ProtocolError {
    ProtocolError(format!(
        "unexpected {server} reply `{}`",
        String::from_utf8_lossy(&line[..line.len().min(80)])
    ))
}

/// The end of the first `\r\n`-terminated line of `src`: the index of its
/// `\r`. `Ok(None)` if the line is not complete yet.
pub(crate) fn find_line(src: &[u8]) -> Result<Option<usize>, ProtocolError> {
    match src.iter().position(|&byte| byte == b'\n') {
        Some(0) => Err(ProtocolError("reply line without \\r".into())),
        Some(newline) if src[newline - 1] == b'\r' => Ok(Some(newline - 1)),
        Some(_) => Err(ProtocolError("reply line without \\r".into())),
        None if src.len() > MAX_LINE => Err(ProtocolError(format!(
            "no end of line in {} bytes of reply",
            src.len()
        ))),
        None => Ok(None),
    }
}

/// Appends `n` in decimal without allocating.
pub(crate) fn put_decimal(dst: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    dst.extend_from_slice(&digits[start..]);
}

/// Parses an unsigned decimal that must fill `text`.
pub(crate) fn parse_decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 19 {
        return None;
    }
    text.iter().try_fold(0u64, |n, &byte| {
        byte.is_ascii_digit()
            .then(|| n * 10 + u64::from(byte - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_round_trip() {
        for n in [
            0,
            7,
            10,
            99,
            12_345,
            u64::from(u32::MAX),
            999_999_999_999_999_999,
        ] {
            let mut buf = BytesMut::new();
            put_decimal(&mut buf, n);
            assert_eq!(&buf[..], n.to_string().as_bytes());
            assert_eq!(parse_decimal(&buf), Some(n));
        }
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b"1x"), None);
        assert_eq!(parse_decimal(b"-1"), None);
    }

    #[test]
    fn lines_need_crlf() {
        assert_eq!(find_line(b"HD\r\nEN"), Ok(Some(2)));
        assert_eq!(find_line(b"HD\r"), Ok(None));
        assert!(find_line(b"HD\n").is_err());
        assert!(find_line(&[b'x'; MAX_LINE + 1]).is_err());
    }
}
