//! Redis over RESP2: `GET`, `SET` (with `EX` when there is a TTL), `DEL`.
//!
//! Tags do not exist here; an invalidation, which the runner never sends to
//! Redis, would be encoded as `PING`.

use bytes::{Buf, BytesMut};

use super::{
    find_line, parse_decimal, put_decimal, unexpected, Driver, DriverOptions, ProtocolError, Reply,
};
use crate::dataset::{digits, Dataset};
use crate::workload::{Batch, OpKind};

/// The Redis RESP driver.
#[derive(Debug)]
pub struct RedisDriver {
    ttl: u32,
    max_response: u32,
}

/// Appends one RESP bulk string.
fn put_bulk(dst: &mut BytesMut, bytes: &[u8]) {
    dst.extend_from_slice(b"$");
    put_decimal(dst, bytes.len() as u64);
    dst.extend_from_slice(b"\r\n");
    dst.extend_from_slice(bytes);
    dst.extend_from_slice(b"\r\n");
}

impl Driver for RedisDriver {
    fn new(options: &DriverOptions) -> RedisDriver {
        RedisDriver {
            ttl: options.ttl,
            max_response: options.max_response,
        }
    }

    fn encode(&mut self, batch: &Batch, data: &Dataset, dst: &mut BytesMut) {
        for op in &batch.ops {
            match op.kind {
                OpKind::Get => {
                    dst.extend_from_slice(b"*2\r\n$3\r\nGET\r\n");
                    put_bulk(dst, data.key(op.key));
                }
                OpKind::Set => {
                    if self.ttl > 0 {
                        dst.extend_from_slice(b"*5\r\n$3\r\nSET\r\n");
                    } else {
                        dst.extend_from_slice(b"*3\r\n$3\r\nSET\r\n");
                    }
                    put_bulk(dst, data.key(op.key));
                    put_bulk(dst, data.value(op.value_len));
                    if self.ttl > 0 {
                        dst.extend_from_slice(b"$2\r\nEX\r\n$");
                        put_decimal(dst, digits(u64::from(self.ttl)) as u64);
                        dst.extend_from_slice(b"\r\n");
                        put_decimal(dst, u64::from(self.ttl));
                        dst.extend_from_slice(b"\r\n");
                    }
                }
                OpKind::Delete => {
                    dst.extend_from_slice(b"*2\r\n$3\r\nDEL\r\n");
                    put_bulk(dst, data.key(op.key));
                }
                OpKind::Invalidate => dst.extend_from_slice(b"*1\r\n$4\r\nPING\r\n"),
            }
        }
    }

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Reply>, ProtocolError> {
        let Some(end) = find_line(src)? else {
            return Ok(None);
        };
        let line = &src[..end];
        let (reply, consumed) = match line.first() {
            Some(b'+') | Some(b':') => (Reply::Done, end + 2),
            Some(b'-') => (Reply::Failed, end + 2),
            Some(b'_') => (Reply::Miss, end + 2),
            Some(b'$') if &line[1..] == b"-1" => (Reply::Miss, end + 2),
            Some(b'$') => {
                let size = parse_decimal(&line[1..]).ok_or_else(|| unexpected("Redis", line))?;
                if size > u64::from(self.max_response) {
                    return Err(ProtocolError(format!("value of {size} bytes is too large")));
                }
                let total = end + 2 + size as usize + 2;
                if src.len() < total {
                    return Ok(None);
                }
                if &src[total - 2..total] != b"\r\n" {
                    return Err(ProtocolError("bulk string not followed by \\r\\n".into()));
                }
                (Reply::Hit, total)
            }
            _ => return Err(unexpected("Redis", line)),
        };
        src.advance(consumed);
        Ok(Some(reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Op;

    fn driver(ttl: u32) -> RedisDriver {
        RedisDriver::new(&DriverOptions {
            ttl,
            max_response: 1 << 20,
        })
    }

    fn op(kind: OpKind, key: u32, value_len: u32) -> Op {
        Op {
            kind,
            key,
            value_len,
            tags_start: 0,
            tags_len: 0,
        }
    }

    #[test]
    fn encodes_resp_arrays() {
        let data = Dataset::new(10, 3, 1, 8, None);
        let mut batch = Batch::default();
        batch.ops.push(op(OpKind::Get, 1, 0));
        batch.ops.push(op(OpKind::Set, 2, 3));
        batch.ops.push(op(OpKind::Delete, 3, 0));
        let mut dst = BytesMut::new();
        driver(0).encode(&batch, &data, &mut dst);
        assert_eq!(
            &dst[..],
            b"*2\r\n$3\r\nGET\r\n$3\r\nk01\r\n\
              *3\r\n$3\r\nSET\r\n$3\r\nk02\r\n$3\r\nabc\r\n\
              *2\r\n$3\r\nDEL\r\n$3\r\nk03\r\n"
                .as_slice()
        );
        let mut dst = BytesMut::new();
        batch.ops.truncate(2);
        batch.ops.remove(0);
        driver(120).encode(&batch, &data, &mut dst);
        assert_eq!(
            &dst[..],
            b"*5\r\n$3\r\nSET\r\n$3\r\nk02\r\n$3\r\nabc\r\n$2\r\nEX\r\n$3\r\n120\r\n".as_slice()
        );
    }

    #[test]
    fn parses_every_reply_from_partial_input() {
        let input = b"$5\r\nhello\r\n$-1\r\n+OK\r\n:1\r\n:0\r\n$0\r\n\r\n-ERR wrong\r\n_\r\n";
        let mut driver = driver(0);
        let mut src = BytesMut::new();
        let mut replies = Vec::new();
        for &byte in input.iter() {
            src.extend_from_slice(&[byte]);
            while let Some(reply) = driver.decode(&mut src).unwrap() {
                replies.push(reply);
            }
        }
        assert!(src.is_empty());
        assert_eq!(
            replies,
            [
                Reply::Hit,
                Reply::Miss,
                Reply::Done,
                Reply::Done,
                Reply::Done,
                Reply::Hit,
                Reply::Failed,
                Reply::Miss,
            ]
        );
    }

    #[test]
    fn partial_bulk_consumes_nothing() {
        let mut driver = driver(0);
        let mut src = BytesMut::from(&b"$10\r\n0123"[..]);
        assert_eq!(driver.decode(&mut src), Ok(None));
        assert_eq!(src.len(), 9);
        src.extend_from_slice(b"456789\r\n+OK\r\n");
        assert_eq!(driver.decode(&mut src), Ok(Some(Reply::Hit)));
        assert_eq!(driver.decode(&mut src), Ok(Some(Reply::Done)));
    }

    #[test]
    fn rejects_garbage() {
        let mut driver = driver(0);
        assert!(driver
            .decode(&mut BytesMut::from(&b"VA 1\r\n"[..]))
            .is_err());
        assert!(driver.decode(&mut BytesMut::from(&b"$x\r\n"[..])).is_err());
        assert!(driver
            .decode(&mut BytesMut::from(&b"$1\r\nab\r\n"[..]))
            .is_err());
    }
}
