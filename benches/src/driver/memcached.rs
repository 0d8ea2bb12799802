//! memcached's meta protocol: `mg <key> v`, `ms <key> <len> T<ttl>`,
//! `md <key>`.
//!
//! The meta commands, not classic `get`/`set`, because they are what a
//! modern client pipelines, and their replies are each one line (plus the
//! value) in request order. Tags do not exist here; an invalidation, which
//! the runner never sends to memcached, would be encoded as the no-op `mn`.

use bytes::{Buf, BytesMut};

use super::{
    find_line, parse_decimal, put_decimal, unexpected, Driver, DriverOptions, ProtocolError, Reply,
};
use crate::dataset::Dataset;
use crate::workload::{Batch, OpKind};

/// The memcached meta-protocol driver.
#[derive(Debug)]
pub struct MemcachedDriver {
    ttl: u32,
    max_response: u32,
}

impl Driver for MemcachedDriver {
    fn new(options: &DriverOptions) -> MemcachedDriver {
        MemcachedDriver {
            ttl: options.ttl,
            max_response: options.max_response,
        }
    }

    fn encode(&mut self, batch: &Batch, data: &Dataset, dst: &mut BytesMut) {
        for op in &batch.ops {
            match op.kind {
                OpKind::Get => {
                    dst.extend_from_slice(b"mg ");
                    dst.extend_from_slice(data.key(op.key));
                    dst.extend_from_slice(b" v\r\n");
                }
                OpKind::Set => {
                    dst.extend_from_slice(b"ms ");
                    dst.extend_from_slice(data.key(op.key));
                    dst.extend_from_slice(b" ");
                    put_decimal(dst, u64::from(op.value_len));
                    dst.extend_from_slice(b" T");
                    put_decimal(dst, u64::from(self.ttl));
                    dst.extend_from_slice(b"\r\n");
                    dst.extend_from_slice(data.value(op.value_len));
                    dst.extend_from_slice(b"\r\n");
                }
                OpKind::Delete => {
                    dst.extend_from_slice(b"md ");
                    dst.extend_from_slice(data.key(op.key));
                    dst.extend_from_slice(b"\r\n");
                }
                OpKind::Invalidate => dst.extend_from_slice(b"mn\r\n"),
            }
        }
    }

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Reply>, ProtocolError> {
        let Some(end) = find_line(src)? else {
            return Ok(None);
        };
        let line = &src[..end];
        let (reply, consumed) = match line.get(..2) {
            Some(b"VA") => {
                // VA <size> <flags>*\r\n<data>\r\n
                let size = line[2..]
                    .strip_prefix(b" ")
                    .and_then(|rest| parse_decimal(rest.split(|&b| b == b' ').next()?))
                    .ok_or_else(|| unexpected("memcached", line))?;
                if size > u64::from(self.max_response) {
                    return Err(ProtocolError(format!("value of {size} bytes is too large")));
                }
                let total = end + 2 + size as usize + 2;
                if src.len() < total {
                    return Ok(None);
                }
                if &src[total - 2..total] != b"\r\n" {
                    return Err(ProtocolError("value not followed by \\r\\n".into()));
                }
                (Reply::Hit, total)
            }
            Some(b"EN") => (Reply::Miss, end + 2),
            Some(b"HD" | b"NF" | b"MN") => (Reply::Done, end + 2),
            Some(b"NS" | b"EX") => (Reply::Failed, end + 2),
            _ if line.starts_with(b"SERVER_ERROR")
                || line.starts_with(b"CLIENT_ERROR")
                || line == b"ERROR" =>
            {
                (Reply::Failed, end + 2)
            }
            _ => return Err(unexpected("memcached", line)),
        };
        src.advance(consumed);
        Ok(Some(reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Op;

    fn driver() -> MemcachedDriver {
        MemcachedDriver::new(&DriverOptions {
            ttl: 30,
            max_response: 1 << 20,
        })
    }

    /// Feeds `input` one byte at a time, as the worst network would.
    fn decode_bytewise(input: &[u8]) -> Result<Vec<Reply>, ProtocolError> {
        let mut driver = driver();
        let mut src = BytesMut::new();
        let mut replies = Vec::new();
        for &byte in input {
            src.extend_from_slice(&[byte]);
            while let Some(reply) = driver.decode(&mut src)? {
                replies.push(reply);
            }
        }
        assert!(src.is_empty(), "left over: {src:?}");
        Ok(replies)
    }

    #[test]
    fn encodes_meta_commands() {
        let data = Dataset::new(10, 3, 1, 8, None);
        let mut batch = Batch::default();
        let op = |kind, key, value_len| Op {
            kind,
            key,
            value_len,
            tags_start: 0,
            tags_len: 0,
        };
        batch.ops.push(op(OpKind::Get, 1, 0));
        batch.ops.push(op(OpKind::Set, 2, 5));
        batch.ops.push(op(OpKind::Delete, 3, 0));
        let mut dst = BytesMut::new();
        driver().encode(&batch, &data, &mut dst);
        assert_eq!(
            &dst[..],
            b"mg k01 v\r\nms k02 5 T30\r\nabcde\r\nmd k03\r\n".as_slice()
        );
    }

    #[test]
    fn parses_every_reply_from_partial_input() {
        let input = b"VA 5\r\nhello\r\nEN\r\nHD\r\nNF\r\nVA 2 f0 s2\r\nhi\r\nVA 0\r\n\r\nNS\r\nSERVER_ERROR out of memory\r\nCLIENT_ERROR bad\r\nERROR\r\n";
        assert_eq!(
            decode_bytewise(input).unwrap(),
            [
                Reply::Hit,
                Reply::Miss,
                Reply::Done,
                Reply::Done,
                Reply::Hit,
                Reply::Hit,
                Reply::Failed,
                Reply::Failed,
                Reply::Failed,
                Reply::Failed,
            ]
        );
    }

    #[test]
    fn partial_value_consumes_nothing() {
        let mut driver = driver();
        let mut src = BytesMut::from(&b"VA 10\r\n01234"[..]);
        assert_eq!(driver.decode(&mut src), Ok(None));
        assert_eq!(src.len(), 12);
        src.extend_from_slice(b"56789\r");
        assert_eq!(driver.decode(&mut src), Ok(None));
        src.extend_from_slice(b"\nEN\r\n");
        assert_eq!(driver.decode(&mut src), Ok(Some(Reply::Hit)));
        assert_eq!(driver.decode(&mut src), Ok(Some(Reply::Miss)));
        assert_eq!(driver.decode(&mut src), Ok(None));
    }

    #[test]
    fn rejects_garbage() {
        assert!(decode_bytewise(b"VALUE k 0 1\r\n").is_err());
        assert!(decode_bytewise(b"VA x\r\n").is_err());
        assert!(decode_bytewise(b"VA 1\r\nab\r\n").is_err());
        assert!(decode_bytewise(b"HELLO\r\n").is_err());
    }
}
