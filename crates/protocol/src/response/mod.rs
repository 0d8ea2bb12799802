//! Typed responses (protocol.md §4 and the response half of §6).

mod hello;
mod lookup;

use bytes::{BufMut, Bytes, BytesMut};

pub use hello::{Features, HelloInfo};
pub use lookup::{Hit, HitRef, Miss};

use crate::error::Invalid;
use crate::header::{Header, PROTOCOL_VERSION, RESPONSE_MAGIC};
use crate::opcode::Opcode;
use crate::status::{ErrorCode, Status};
use crate::wire::BodyReader;

/// One response frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The request's opaque.
    pub opaque: u32,
    /// The request's opcode.
    pub opcode: Opcode,
    /// What happened.
    pub outcome: Outcome,
}

/// A response's status together with its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// OK with an empty body (PING, NOOP, DELETE, TOUCH).
    Ok,
    /// OK to HELLO.
    Hello(HelloInfo),
    /// A GET or GETM hit.
    Hit(Hit),
    /// A GET or GETM miss.
    Miss(Miss),
    /// SET stored; the entry's new CAS value.
    Stored {
        /// The new entry's CAS value.
        cas: u64,
    },
    /// SET ADD or REPLACE did not apply.
    NotStored,
    /// SET CAS value mismatch.
    Exists,
    /// No live entry.
    NotFound,
    /// SET refused by its fence.
    Fenced,
    /// OK to INVALIDATE_TAGS or FLUSH_ALL: the sequence assigned.
    Sequence(u64),
    /// OK to STATS: `name value\n` lines.
    Stats(Bytes),
    /// An error status with its message.
    Error(ErrorReply),
    /// An outcome status this crate does not know, from a newer server.
    Unknown {
        /// The status.
        status: Status,
        /// The raw body.
        body: Bytes,
    },
}

/// An error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReply {
    /// Which error.
    pub code: ErrorCode,
    /// Human-readable UTF-8 detail.
    pub message: Bytes,
}

impl ErrorReply {
    /// An error reply with a message.
    pub fn new(code: ErrorCode, message: impl Into<Bytes>) -> ErrorReply {
        ErrorReply {
            code,
            message: message.into(),
        }
    }
}

impl From<Invalid> for ErrorReply {
    fn from(invalid: Invalid) -> ErrorReply {
        let message = match invalid.message {
            std::borrow::Cow::Borrowed(text) => Bytes::from_static(text.as_bytes()),
            std::borrow::Cow::Owned(text) => Bytes::from(text),
        };
        ErrorReply {
            code: invalid.code,
            message,
        }
    }
}

impl Outcome {
    /// The status this outcome is sent with.
    pub fn status(&self) -> Status {
        match self {
            Outcome::Ok | Outcome::Hello(_) | Outcome::Sequence(_) | Outcome::Stats(_) => {
                Status::OK
            }
            Outcome::Hit(_) => Status::HIT,
            Outcome::Miss(_) => Status::MISS,
            Outcome::Stored { .. } => Status::STORED,
            Outcome::NotStored => Status::NOT_STORED,
            Outcome::Exists => Status::EXISTS,
            Outcome::NotFound => Status::NOT_FOUND,
            Outcome::Fenced => Status::FENCED,
            Outcome::Error(error) => error.code.status(),
            Outcome::Unknown { status, .. } => *status,
        }
    }

    /// Whether a QUIET request leaves this outcome unsent (protocol.md §5).
    pub fn is_quiet_success(&self, opcode: Opcode) -> bool {
        match self {
            Outcome::Miss(_) => true,
            Outcome::Stored { .. } | Outcome::Ok | Outcome::Sequence(_) => true,
            Outcome::NotFound => opcode == Opcode::DELETE,
            _ => false,
        }
    }

    fn body_len(&self, opcode: Opcode) -> usize {
        match self {
            Outcome::Ok
            | Outcome::NotStored
            | Outcome::Exists
            | Outcome::NotFound
            | Outcome::Fenced => 0,
            Outcome::Hello(hello) => hello.body_len(),
            Outcome::Hit(hit) => hit.body_len(opcode),
            Outcome::Miss(miss) => miss.body_len(opcode),
            Outcome::Stored { .. } | Outcome::Sequence(_) => 8,
            Outcome::Stats(text) => text.len(),
            Outcome::Error(error) => error.message.len(),
            Outcome::Unknown { body, .. } => body.len(),
        }
    }

    fn encode_body(&self, opcode: Opcode, dst: &mut impl BufMut) {
        match self {
            Outcome::Ok
            | Outcome::NotStored
            | Outcome::Exists
            | Outcome::NotFound
            | Outcome::Fenced => {}
            Outcome::Hello(hello) => hello.encode_body(dst),
            Outcome::Hit(hit) => hit.encode_body(opcode, dst),
            Outcome::Miss(miss) => miss.encode_body(opcode, dst),
            Outcome::Stored { cas } => dst.put_u64(*cas),
            Outcome::Sequence(seq) => dst.put_u64(*seq),
            Outcome::Stats(text) => dst.put_slice(text),
            Outcome::Error(error) => dst.put_slice(&error.message),
            Outcome::Unknown { body, .. } => dst.put_slice(body),
        }
    }

    fn decode(opcode: Opcode, status: Status, body: Bytes) -> Result<Outcome, Invalid> {
        if let Some(code) = ErrorCode::from_status(status) {
            return Ok(Outcome::Error(ErrorReply {
                code,
                message: body,
            }));
        }
        let mut reader = BodyReader::new(body);
        let outcome = match status {
            Status::OK => match opcode {
                Opcode::HELLO => Outcome::Hello(HelloInfo::decode(&mut reader)?),
                Opcode::INVALIDATE_TAGS | Opcode::FLUSH_ALL => {
                    Outcome::Sequence(reader.u64("seq")?)
                }
                Opcode::STATS => return Ok(Outcome::Stats(reader.rest())),
                _ => Outcome::Ok,
            },
            Status::HIT => return Ok(Outcome::Hit(Hit::decode(opcode, reader)?)),
            Status::MISS => Outcome::Miss(Miss::decode(opcode, &mut reader)?),
            Status::STORED => Outcome::Stored {
                cas: reader.u64("cas")?,
            },
            Status::NOT_STORED => Outcome::NotStored,
            Status::EXISTS => Outcome::Exists,
            Status::NOT_FOUND => Outcome::NotFound,
            Status::FENCED => Outcome::Fenced,
            status => {
                return Ok(Outcome::Unknown {
                    status,
                    body: reader.rest(),
                })
            }
        };
        reader.finish()?;
        Ok(outcome)
    }
}

impl Response {
    /// The full frame length, header included.
    pub fn encoded_len(&self) -> usize {
        crate::HEADER_LEN + self.outcome.body_len(self.opcode)
    }

    /// Appends the whole frame to `dst`.
    pub fn encode(&self, dst: &mut impl BufMut) {
        let header = Header {
            magic: RESPONSE_MAGIC,
            version: PROTOCOL_VERSION,
            opcode: self.opcode,
            flags: 0,
            status: self.outcome.status().0,
            opaque: self.opaque,
            body_length: self.outcome.body_len(self.opcode) as u32,
        };
        header.write(dst);
        self.outcome.encode_body(self.opcode, dst);
    }

    /// The length of the frame [`Response::encode_hit`] writes for `hit`,
    /// header included: what a server checks against its room for output
    /// before it commits to a hit.
    pub fn encoded_hit_len(opcode: Opcode, hit: &HitRef<'_>) -> usize {
        crate::HEADER_LEN + hit.body_len(opcode)
    }

    /// Appends the frame answering `opcode` (GET or GETM) with `hit`:
    /// the same bytes as encoding a [`Response`] whose outcome is the
    /// equivalent [`Outcome::Hit`], without owning the value.
    pub fn encode_hit(opaque: u32, opcode: Opcode, hit: &HitRef<'_>, dst: &mut BytesMut) {
        let body_length = hit.body_len(opcode);
        dst.reserve(crate::HEADER_LEN + body_length);
        let header = Header {
            magic: RESPONSE_MAGIC,
            version: PROTOCOL_VERSION,
            opcode,
            flags: 0,
            status: Status::HIT.0,
            opaque,
            body_length: body_length as u32,
        };
        header.write(dst);
        hit.encode_body(opcode, dst);
    }

    /// Decodes a response from its header and complete body.
    pub fn decode(header: &Header, body: Bytes) -> Result<Response, Invalid> {
        Ok(Response {
            opaque: header.opaque,
            opcode: header.opcode,
            outcome: Outcome::decode(header.opcode, Status(header.status), body)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_hit_matches_encoding_the_owned_hit() {
        for opcode in [Opcode::GET, Opcode::GETM] {
            let hit = Hit {
                key_index: (opcode == Opcode::GETM).then_some(3),
                fence: 41,
                cas: 7,
                client_flags: 9,
                tags: vec![Bytes::from_static(b"a"), Bytes::from_static(b"user:3")],
                value: Bytes::from_static(b"value"),
            };
            let response = Response {
                opaque: 5,
                opcode,
                outcome: Outcome::Hit(hit.clone()),
            };
            let mut owned = BytesMut::new();
            response.encode(&mut owned);
            let mut borrowed = BytesMut::new();
            Response::encode_hit(5, opcode, &hit.as_ref(), &mut borrowed);
            assert_eq!(owned, borrowed);
            assert_eq!(borrowed.len(), response.encoded_len());
            assert_eq!(
                borrowed.len(),
                Response::encoded_hit_len(opcode, &hit.as_ref())
            );
        }
    }
}
