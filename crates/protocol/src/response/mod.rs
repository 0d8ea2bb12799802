//! Typed responses (protocol.md §4 and the response half of §6).

mod hello;
mod lookup;
mod tag_status;

use bytes::{BufMut, Bytes, BytesMut};

pub use hello::{Features, HelloInfo};
pub use lookup::{Hit, HitRef, Lease, Miss};
pub use tag_status::{TagState, TagStatusInfo};

use crate::error::Invalid;
use crate::flags::Flags;
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
    /// A GET or GETM with ALLOW_STALE found a stale entry (§8.3).
    Stale(Hit),
    /// A GET or GETM miss.
    Miss(Miss),
    /// A GET or GETM with LEASE found no fresh entry while another reader
    /// holds the key's lease (§8.4).
    HotMiss(Miss),
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
    /// SET with LEASE refused: the token is not the key's current lease.
    LeaseLost,
    /// OK to INVALIDATE_TAGS or FLUSH_ALL: the sequence assigned.
    Sequence(u64),
    /// OK to STATS: `name value\n` lines.
    Stats(Bytes),
    /// OK to TAG_STATUS.
    TagStatus(TagStatusInfo),
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
            Outcome::Ok
            | Outcome::Hello(_)
            | Outcome::Sequence(_)
            | Outcome::Stats(_)
            | Outcome::TagStatus(_) => Status::OK,
            Outcome::Hit(_) => Status::HIT,
            Outcome::Stale(_) => Status::STALE,
            Outcome::Miss(_) => Status::MISS,
            Outcome::HotMiss(_) => Status::HOT_MISS,
            Outcome::Stored { .. } => Status::STORED,
            Outcome::NotStored => Status::NOT_STORED,
            Outcome::Exists => Status::EXISTS,
            Outcome::NotFound => Status::NOT_FOUND,
            Outcome::Fenced => Status::FENCED,
            Outcome::LeaseLost => Status::LEASE_LOST,
            Outcome::Error(error) => error.code.status(),
            Outcome::Unknown { status, .. } => *status,
        }
    }

    /// Whether a QUIET request leaves this outcome unsent (protocol.md §5):
    /// a MISS is, unless it grants a lease.
    pub fn is_quiet_success(&self, opcode: Opcode) -> bool {
        match self {
            Outcome::Miss(miss) => !matches!(miss.lease, Lease::Granted(_)),
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
            | Outcome::Fenced
            | Outcome::LeaseLost => 0,
            Outcome::Hello(hello) => hello.body_len(),
            Outcome::Hit(hit) | Outcome::Stale(hit) => hit.body_len(opcode),
            Outcome::Miss(miss) | Outcome::HotMiss(miss) => miss.body_len(opcode),
            Outcome::Stored { .. } | Outcome::Sequence(_) => 8,
            Outcome::Stats(text) => text.len(),
            Outcome::TagStatus(info) => info.body_len(),
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
            | Outcome::Fenced
            | Outcome::LeaseLost => {}
            Outcome::Hello(hello) => hello.encode_body(dst),
            Outcome::Hit(hit) | Outcome::Stale(hit) => hit.encode_body(opcode, dst),
            Outcome::Miss(miss) | Outcome::HotMiss(miss) => miss.encode_body(opcode, dst),
            Outcome::Stored { cas } => dst.put_u64(*cas),
            Outcome::Sequence(seq) => dst.put_u64(*seq),
            Outcome::Stats(text) => dst.put_slice(text),
            Outcome::TagStatus(info) => info.encode_body(dst),
            Outcome::Error(error) => dst.put_slice(&error.message),
            Outcome::Unknown { body, .. } => dst.put_slice(body),
        }
    }

    /// Decodes the body of a response to `opcode` with `status`. A GET or
    /// GETM lookup carries a `lease` field if and only if `lease_requested`.
    fn decode(
        opcode: Opcode,
        status: Status,
        lease_requested: bool,
        body: Bytes,
    ) -> Result<Outcome, Invalid> {
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
                Opcode::TAG_STATUS => Outcome::TagStatus(TagStatusInfo::decode(&mut reader)?),
                Opcode::STATS => return Ok(Outcome::Stats(reader.rest())),
                _ => Outcome::Ok,
            },
            Status::HIT => return Ok(Outcome::Hit(Hit::decode(opcode, lease_requested, reader)?)),
            Status::STALE => {
                return Ok(Outcome::Stale(Hit::decode(
                    opcode,
                    lease_requested,
                    reader,
                )?))
            }
            Status::MISS => Outcome::Miss(Miss::decode(opcode, lease_requested, &mut reader)?),
            Status::HOT_MISS => {
                Outcome::HotMiss(Miss::decode(opcode, lease_requested, &mut reader)?)
            }
            Status::STORED => Outcome::Stored {
                cas: reader.u64("cas")?,
            },
            Status::NOT_STORED => Outcome::NotStored,
            Status::EXISTS => Outcome::Exists,
            Status::NOT_FOUND => Outcome::NotFound,
            Status::FENCED => Outcome::Fenced,
            Status::LEASE_LOST => Outcome::LeaseLost,
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

    /// Appends the frame answering `opcode` (GET or GETM) with `hit`,
    /// status HIT: the same bytes as encoding a [`Response`] whose outcome
    /// is the equivalent [`Outcome::Hit`], without owning the value.
    pub fn encode_hit(opaque: u32, opcode: Opcode, hit: &HitRef<'_>, dst: &mut BytesMut) {
        encode_entry(Status::HIT, opaque, opcode, hit, dst);
    }

    /// Appends the frame answering `opcode` (GET or GETM with ALLOW_STALE)
    /// with a stale entry, status STALE: as [`Response::encode_hit`] for
    /// [`Outcome::Stale`]. Its length is [`Response::encoded_hit_len`] too.
    pub fn encode_stale(opaque: u32, opcode: Opcode, hit: &HitRef<'_>, dst: &mut BytesMut) {
        encode_entry(Status::STALE, opaque, opcode, hit, dst);
    }

    /// Decodes a response from its header and complete body.
    ///
    /// `request_flags` are the flags of the request it answers, as sent
    /// ([`Request::wire_flags`](crate::Request::wire_flags)): a GET or GETM
    /// sent with LEASE is answered with a `lease` field in every lookup
    /// body, which cannot be told from the body alone. Other flags do not
    /// change how a response is read.
    pub fn decode(header: &Header, body: Bytes, request_flags: Flags) -> Result<Response, Invalid> {
        let lease_requested = matches!(header.opcode, Opcode::GET | Opcode::GETM)
            && request_flags.contains(Flags::LEASE);
        Ok(Response {
            opaque: header.opaque,
            opcode: header.opcode,
            outcome: Outcome::decode(header.opcode, Status(header.status), lease_requested, body)?,
        })
    }
}

/// Appends a frame with an entry's body: a HIT or a STALE.
fn encode_entry(status: Status, opaque: u32, opcode: Opcode, hit: &HitRef<'_>, dst: &mut BytesMut) {
    let body_length = hit.body_len(opcode);
    dst.reserve(crate::HEADER_LEN + body_length);
    let header = Header {
        magic: RESPONSE_MAGIC,
        version: PROTOCOL_VERSION,
        opcode,
        flags: 0,
        status: status.0,
        opaque,
        body_length: body_length as u32,
    };
    header.write(dst);
    hit.encode_body(opcode, dst);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_hit_and_encode_stale_match_encoding_the_owned_hit() {
        let leases = [
            Lease::NotRequested,
            Lease::NotGranted,
            Lease::from_field(Some(77)),
        ];
        for (opcode, lease) in [Opcode::GET, Opcode::GETM]
            .into_iter()
            .flat_map(|opcode| leases.map(|lease| (opcode, lease)))
        {
            let hit = Hit {
                key_index: (opcode == Opcode::GETM).then_some(3),
                fence: 41,
                lease,
                cas: 7,
                client_flags: 9,
                tags: vec![Bytes::from_static(b"a"), Bytes::from_static(b"user:3")],
                value: Bytes::from_static(b"value"),
            };
            type Borrowed = fn(u32, Opcode, &HitRef<'_>, &mut BytesMut);
            let pairs: [(Outcome, Borrowed); 2] = [
                (Outcome::Hit(hit.clone()), Response::encode_hit),
                (Outcome::Stale(hit.clone()), Response::encode_stale),
            ];
            for (outcome, encode_borrowed) in pairs {
                let response = Response {
                    opaque: 5,
                    opcode,
                    outcome,
                };
                let mut owned = BytesMut::new();
                response.encode(&mut owned);
                let mut borrowed = BytesMut::new();
                encode_borrowed(5, opcode, &hit.as_ref(), &mut borrowed);
                assert_eq!(owned, borrowed);
                assert_eq!(borrowed.len(), response.encoded_len());
                assert_eq!(
                    borrowed.len(),
                    Response::encoded_hit_len(opcode, &hit.as_ref())
                );
            }
        }
    }

    #[test]
    fn only_a_miss_granting_no_lease_is_a_quiet_success() {
        let miss = |lease| Miss {
            key_index: None,
            fence: 1,
            lease,
        };
        assert!(Outcome::Miss(miss(Lease::NotRequested)).is_quiet_success(Opcode::GET));
        assert!(Outcome::Miss(miss(Lease::NotGranted)).is_quiet_success(Opcode::GETM));
        let granted = Lease::from_field(Some(5));
        assert!(!Outcome::Miss(miss(granted)).is_quiet_success(Opcode::GET));
        assert!(!Outcome::HotMiss(miss(Lease::NotGranted)).is_quiet_success(Opcode::GET));
        assert!(!Outcome::LeaseLost.is_quiet_success(Opcode::SET));
    }

    #[test]
    fn only_get_and_getm_read_a_lease_field() {
        // A frame with `status` and `body`, written as an unknown outcome.
        let decode = |opcode, status, body: &'static [u8], flags| {
            let body = Bytes::from_static(body);
            let outcome = Outcome::Unknown { status, body };
            let mut frame = BytesMut::new();
            Response {
                opaque: 1,
                opcode,
                outcome,
            }
            .encode(&mut frame);
            let header = Header::peek(&frame).expect("a whole header");
            Response::decode(&header, frame.freeze().slice(crate::HEADER_LEN..), flags)
                .map(|response| response.outcome)
                .map_err(|invalid| invalid.code)
        };
        let miss = &[0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 4];
        let granted = Outcome::Miss(Miss {
            key_index: None,
            fence: 9,
            lease: Lease::from_field(Some(4)),
        });
        assert_eq!(
            decode(Opcode::GET, Status::MISS, miss, Flags::LEASE),
            Ok(granted)
        );
        assert_eq!(
            decode(Opcode::GET, Status::MISS, miss, Flags::NONE),
            Err(ErrorCode::Malformed)
        );
        assert_eq!(
            decode(Opcode::SET, Status::STORED, &miss[..8], Flags::LEASE),
            Ok(Outcome::Stored { cas: 9 })
        );
    }
}
