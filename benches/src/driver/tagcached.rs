//! tagcached's binary protocol, on the protocol crate's [`ClientCodec`].
//!
//! Requests are the crate's typed [`Request`]s, built from `Bytes` slices of
//! the thread's [`Dataset`] (reference counts, not copies), and the tag
//! vector is handed back and forth between requests so a SET with tags
//! allocates nothing once warm.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tagcached_protocol::request::{Auth, Delete, Get, Hello, InvalidateTags, Set, SetMode};
use tagcached_protocol::response::{Features, HelloInfo};
use tagcached_protocol::{ClientCodec, Command, Outcome, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::stream::BenchStream;
use tokio_util::codec::{Decoder, Encoder};

use super::{Driver, DriverOptions, ProtocolError, Reply};
use crate::dataset::Dataset;
use crate::workload::{Batch, OpKind};

/// The tagcached driver.
#[derive(Debug)]
pub struct TagcachedDriver {
    codec: ClientCodec,
    ttl: u32,
    next_opaque: u32,
    expected_opaque: u32,
    tags: Vec<Bytes>,
}

impl Driver for TagcachedDriver {
    fn new(options: &DriverOptions) -> TagcachedDriver {
        TagcachedDriver {
            codec: ClientCodec::new(options.max_response),
            ttl: options.ttl,
            next_opaque: 0,
            expected_opaque: 0,
            tags: Vec::new(),
        }
    }

    fn encode(&mut self, batch: &Batch, data: &Dataset, dst: &mut BytesMut) {
        for op in &batch.ops {
            let command = match op.kind {
                OpKind::Get => Command::Get(Get {
                    key: data.key_bytes(op.key),
                    request_tags: None,
                }),
                OpKind::Set => {
                    let mut tags = std::mem::take(&mut self.tags);
                    tags.extend(batch.tags_of(op).iter().map(|&tag| data.tag_bytes(tag)));
                    Command::Set(Set {
                        mode: SetMode::Set,
                        client_flags: 0,
                        ttl: self.ttl,
                        fence: None,
                        lease: None,
                        stale_after: None,
                        key: data.key_bytes(op.key),
                        tags,
                        value: data.value_bytes(op.value_len),
                    })
                }
                OpKind::Delete => Command::Delete(Delete {
                    key: data.key_bytes(op.key),
                }),
                OpKind::Invalidate => {
                    let mut tags = std::mem::take(&mut self.tags);
                    tags.extend(batch.tags_of(op).iter().map(|&tag| data.tag_bytes(tag)));
                    Command::InvalidateTags(InvalidateTags {
                        tags,
                        soft_expire: None,
                    })
                }
            };
            let request = Request::new(self.next_opaque, command);
            self.next_opaque = self.next_opaque.wrapping_add(1);
            self.codec
                .encode(&request, dst)
                .expect("encoding a request cannot fail");
            if let Command::Set(Set { mut tags, .. })
            | Command::InvalidateTags(InvalidateTags { mut tags, .. }) = request.command
            {
                tags.clear();
                self.tags = tags;
            }
        }
    }

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Reply>, ProtocolError> {
        let Some(response) = self
            .codec
            .decode(src)
            .map_err(|error| ProtocolError(error.to_string()))?
        else {
            return Ok(None);
        };
        if response.opaque != self.expected_opaque {
            return Err(ProtocolError(format!(
                "response opaque {} where {} was next",
                response.opaque, self.expected_opaque
            )));
        }
        self.expected_opaque = self.expected_opaque.wrapping_add(1);
        Ok(Some(match response.outcome {
            Outcome::Hit(_) => Reply::Hit,
            Outcome::Miss(_) => Reply::Miss,
            Outcome::Ok | Outcome::Stored { .. } | Outcome::NotFound | Outcome::Sequence(_) => {
                Reply::Done
            }
            _ => Reply::Failed,
        }))
    }
}

/// Why a HELLO failed.
#[derive(Debug, thiserror::Error)]
pub enum HelloError {
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// No answer in time.
    #[error("no answer to HELLO in {0:?}")]
    Timeout(Duration),
    /// The server closed the connection.
    #[error("the server closed the connection during HELLO")]
    Closed,
    /// The answer was not a HELLO reply.
    #[error("bad answer to HELLO: {0}")]
    Refused(String),
    /// The server requires authentication and refused the token, or none
    /// was given.
    #[error("authentication: {0}")]
    Auth(String),
}

/// Sends HELLO (asking for `want_shard`) and waits for the server's answer;
/// then, if the server requires authentication (HELLO's bit 5), AUTH with
/// `auth_token`.
pub async fn hello(
    stream: &mut BenchStream,
    want_shard: Option<u16>,
    auth_token: Option<&Bytes>,
    timeout: Duration,
) -> Result<HelloInfo, HelloError> {
    let request = Request::new(
        0,
        Command::Hello(Hello {
            max_version: tagcached_protocol::PROTOCOL_VERSION,
            want_shard,
            client_name: Bytes::from_static(b"tagcached-bench"),
        }),
    );
    let info = match round_trip(stream, &request, timeout).await?.outcome {
        Outcome::Hello(info) => info,
        other => return Err(HelloError::Refused(format!("{other:?}"))),
    };
    if let Some(shard) = want_shard {
        if info.shard != shard {
            return Err(HelloError::Refused(format!(
                "asked for shard {shard}, served by shard {}",
                info.shard
            )));
        }
    }
    if info.features.contains(Features::AUTH) {
        let Some(token) = auth_token else {
            return Err(HelloError::Auth(
                "the server requires authentication: give --auth-token-file".to_owned(),
            ));
        };
        let auth = Request::new(
            1,
            Command::Auth(Auth {
                token: token.clone(),
            }),
        );
        match round_trip(stream, &auth, timeout).await?.outcome {
            Outcome::Ok => {}
            other => return Err(HelloError::Auth(format!("AUTH answered {other:?}"))),
        }
    }
    Ok(info)
}

/// Sends one request and waits for its response, the connection's only
/// traffic.
async fn round_trip(
    stream: &mut BenchStream,
    request: &Request,
    timeout: Duration,
) -> Result<Response, HelloError> {
    let mut codec = ClientCodec::default();
    let mut buf = BytesMut::with_capacity(256);
    codec
        .encode(request, &mut buf)
        .expect("encoding a request cannot fail");
    let exchange = async {
        stream.write_all(&buf).await?;
        stream.flush().await?;
        buf.clear();
        loop {
            if let Some(response) = codec
                .decode(&mut buf)
                .map_err(|error| HelloError::Refused(error.to_string()))?
            {
                return Ok(response);
            }
            if stream.read_buf(&mut buf).await? == 0 {
                return Err(HelloError::Closed);
            }
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| HelloError::Timeout(timeout))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Op;
    use tagcached_protocol::response::{Hit, Lease};
    use tagcached_protocol::{Limits, Opcode, ServerCodec};

    #[test]
    fn encodes_typed_requests_and_reuses_the_tag_vector() {
        let data = Dataset::new(10, 3, 5, 8, None);
        let mut batch = Batch::default();
        batch.tags.extend([1, 4]);
        batch.ops.push(Op {
            kind: OpKind::Set,
            key: 2,
            value_len: 3,
            tags_start: 0,
            tags_len: 2,
        });
        batch.ops.push(Op {
            kind: OpKind::Invalidate,
            key: 0,
            value_len: 0,
            tags_start: 1,
            tags_len: 1,
        });
        let mut driver = TagcachedDriver::new(&DriverOptions {
            ttl: 9,
            max_response: 1 << 20,
        });
        let mut dst = BytesMut::new();
        driver.encode(&batch, &data, &mut dst);
        assert!(driver.tags.capacity() >= 2, "the tag vector came back");
        let mut server = ServerCodec::new(Limits::default());
        let set = server.decode(&mut dst).unwrap().unwrap().unwrap();
        let Command::Set(set) = set.command else {
            panic!("not a SET: {set:?}")
        };
        assert_eq!(
            (&set.key[..], &set.value[..], set.ttl),
            (&b"k02"[..], &b"abc"[..], 9)
        );
        assert_eq!(
            set.tags,
            [Bytes::from_static(b"t1"), Bytes::from_static(b"t4")]
        );
        let invalidate = server.decode(&mut dst).unwrap().unwrap().unwrap();
        assert_eq!(invalidate.opaque, 1);
        assert_eq!(
            invalidate.command,
            Command::InvalidateTags(InvalidateTags {
                tags: vec![Bytes::from_static(b"t4")],
                soft_expire: None,
            })
        );
    }

    #[test]
    fn decodes_in_order_and_checks_opaques() {
        let mut driver = TagcachedDriver::new(&DriverOptions {
            ttl: 0,
            max_response: 1 << 20,
        });
        let mut src = BytesMut::new();
        let hit = Response {
            opaque: 0,
            opcode: Opcode::GET,
            outcome: Outcome::Hit(Hit {
                key_index: None,
                fence: 1,
                lease: Lease::NotRequested,
                cas: 2,
                client_flags: 0,
                tags: Vec::new(),
                value: Bytes::from_static(b"value"),
            }),
        };
        hit.encode(&mut src);
        let stored = Response {
            opaque: 1,
            opcode: Opcode::SET,
            outcome: Outcome::Stored { cas: 3 },
        };
        stored.encode(&mut src);
        let whole = src.split();
        // Byte by byte: nothing is decoded before a frame is complete.
        let mut replies = Vec::new();
        for &byte in whole.iter() {
            src.extend_from_slice(&[byte]);
            while let Some(reply) = driver.decode(&mut src).unwrap() {
                replies.push(reply);
            }
        }
        assert_eq!(replies, [Reply::Hit, Reply::Done]);
        // A response out of order is a broken stream.
        stored.encode(&mut src);
        assert!(driver.decode(&mut src).is_err());
    }
}
