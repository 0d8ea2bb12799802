//! Typed requests: one file per command, each with its body layout.

mod auth;
mod delete;
mod flush_all;
mod get;
mod get_many;
mod hello;
mod invalidate;
mod set;
mod tag_list;
mod tag_status;
mod touch;

use bytes::{BufMut, Bytes};

pub use auth::{token_lines, Auth, MAX_TOKEN_LENGTH};
pub use delete::Delete;
pub use flush_all::FlushAll;
pub use get::Get;
pub use get_many::GetMany;
pub use hello::Hello;
pub use invalidate::InvalidateTags;
pub use set::{Set, SetMode};
pub use tag_status::TagStatus;
pub use touch::Touch;

use crate::error::{Invalid, RequestError};
use crate::flags::Flags;
use crate::header::{Header, PROTOCOL_VERSION, REQUEST_MAGIC};
use crate::limits::Limits;
use crate::opcode::Opcode;
use crate::status::ErrorCode;
use crate::wire::BodyReader;

/// One request frame.
///
/// The header's flag byte is [`Request::wire_flags`]: `flags` joined with
/// the flags that the command's fields put in its body (see
/// [`Flags::body_flags_for`]), so that flags and body always agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Echoed in the response.
    pub opaque: u32,
    /// The flags that shape the response or what the server does: QUIET,
    /// WITH_TAGS, ALLOW_STALE, and LEASE on GET and GETM. Flags that shape
    /// the body ([`Flags::body_flags_for`] the opcode) are ignored here when
    /// encoding and never set by decoding: the command carries them.
    pub flags: Flags,
    /// What to do.
    pub command: Command,
}

/// The commands of protocol.md §3, with their bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Handshake (§6.1).
    Hello(Hello),
    /// Liveness (§6.2).
    Ping,
    /// Barrier after quiet requests (§6.2).
    Noop,
    /// Read a key (§6.3).
    Get(Get),
    /// Read many keys (§6.4).
    GetMany(GetMany),
    /// Store (§6.5).
    Set(Set),
    /// Remove (§6.6).
    Delete(Delete),
    /// Reset TTL (§6.7).
    Touch(Touch),
    /// Invalidate tags (§6.8).
    InvalidateTags(InvalidateTags),
    /// Tags' invalidations and entry counts (§6.11).
    TagStatus(TagStatus),
    /// Remove everything, or make it stale (§6.9).
    FlushAll(FlushAll),
    /// Counters (§6.10).
    Stats,
    /// Present a token (§6.12).
    Auth(Auth),
}

impl Command {
    /// The command's opcode.
    pub fn opcode(&self) -> Opcode {
        match self {
            Command::Hello(_) => Opcode::HELLO,
            Command::Ping => Opcode::PING,
            Command::Noop => Opcode::NOOP,
            Command::Get(_) => Opcode::GET,
            Command::GetMany(_) => Opcode::GETM,
            Command::Set(_) => Opcode::SET,
            Command::Delete(_) => Opcode::DELETE,
            Command::Touch(_) => Opcode::TOUCH,
            Command::InvalidateTags(_) => Opcode::INVALIDATE_TAGS,
            Command::TagStatus(_) => Opcode::TAG_STATUS,
            Command::FlushAll(_) => Opcode::FLUSH_ALL,
            Command::Stats => Opcode::STATS,
            Command::Auth(_) => Opcode::AUTH,
        }
    }

    /// The key that decides which shard serves the command, if any.
    pub fn routing_key(&self) -> Option<&[u8]> {
        match self {
            Command::Get(get) => Some(&get.key),
            Command::Set(set) => Some(&set.key),
            Command::Delete(delete) => Some(&delete.key),
            Command::Touch(touch) => Some(&touch.key),
            _ => None,
        }
    }

    /// The flags the command's fields put in its body: REQUEST_TAGS for a
    /// GET or GETM with request-scoped tags, LEASE and STALE_AFTER for a SET
    /// with a lease or a stale window, SOFT for a soft INVALIDATE_TAGS or
    /// FLUSH_ALL. Always within [`Flags::body_flags_for`] the opcode.
    pub fn body_flags(&self) -> Flags {
        match self {
            Command::Get(get) => get.body_flags(),
            Command::GetMany(get_many) => get_many.body_flags(),
            Command::Set(set) => set.body_flags(),
            Command::InvalidateTags(invalidate) => invalidate.body_flags(),
            Command::FlushAll(flush_all) => flush_all.body_flags(),
            Command::Hello(_)
            | Command::Ping
            | Command::Noop
            | Command::Delete(_)
            | Command::Touch(_)
            | Command::TagStatus(_)
            | Command::Stats
            | Command::Auth(_) => Flags::NONE,
        }
    }

    fn body_len(&self) -> usize {
        match self {
            Command::Hello(hello) => hello.body_len(),
            Command::Get(get) => get.body_len(),
            Command::GetMany(get_many) => get_many.body_len(),
            Command::Set(set) => set.body_len(),
            Command::Delete(delete) => delete.body_len(),
            Command::Touch(touch) => touch.body_len(),
            Command::InvalidateTags(invalidate) => invalidate.body_len(),
            Command::TagStatus(tag_status) => tag_status.body_len(),
            Command::FlushAll(flush_all) => flush_all.body_len(),
            Command::Auth(auth) => auth.body_len(),
            Command::Ping | Command::Noop | Command::Stats => 0,
        }
    }

    fn encode_body(&self, dst: &mut impl BufMut) {
        match self {
            Command::Hello(hello) => hello.encode_body(dst),
            Command::Get(get) => get.encode_body(dst),
            Command::GetMany(get_many) => get_many.encode_body(dst),
            Command::Set(set) => set.encode_body(dst),
            Command::Delete(delete) => delete.encode_body(dst),
            Command::Touch(touch) => touch.encode_body(dst),
            Command::InvalidateTags(invalidate) => invalidate.encode_body(dst),
            Command::TagStatus(tag_status) => tag_status.encode_body(dst),
            Command::FlushAll(flush_all) => flush_all.encode_body(dst),
            Command::Auth(auth) => auth.encode_body(dst),
            Command::Ping | Command::Noop | Command::Stats => {}
        }
    }

    /// Decodes the body of `opcode`; `flags` are the request's, already
    /// checked against the opcode, and say which optional fields are there.
    fn decode(
        opcode: Opcode,
        flags: Flags,
        body: Bytes,
        limits: &Limits,
    ) -> Result<Command, Invalid> {
        let reader = BodyReader::new(body);
        let empty = |reader: BodyReader| reader.finish();
        Ok(match opcode {
            Opcode::HELLO => Command::Hello(Hello::decode(reader)?),
            Opcode::PING => empty(reader).map(|()| Command::Ping)?,
            Opcode::NOOP => empty(reader).map(|()| Command::Noop)?,
            Opcode::GET => Command::Get(Get::decode(reader, flags, limits)?),
            Opcode::GETM => Command::GetMany(GetMany::decode(reader, flags, limits)?),
            Opcode::SET => Command::Set(Set::decode(reader, flags, limits)?),
            Opcode::DELETE => Command::Delete(Delete::decode(reader, limits)?),
            Opcode::TOUCH => Command::Touch(Touch::decode(reader, limits)?),
            Opcode::INVALIDATE_TAGS => {
                Command::InvalidateTags(InvalidateTags::decode(reader, flags, limits)?)
            }
            Opcode::TAG_STATUS => Command::TagStatus(TagStatus::decode(reader, limits)?),
            Opcode::FLUSH_ALL => Command::FlushAll(FlushAll::decode(reader, flags, limits)?),
            Opcode::STATS => empty(reader).map(|()| Command::Stats)?,
            Opcode::AUTH => Command::Auth(Auth::decode(reader)?),
            unknown => return Err(unknown_opcode(unknown)),
        })
    }
}

fn unknown_opcode(opcode: Opcode) -> Invalid {
    Invalid::new(
        ErrorCode::UnknownOpcode,
        format!("unknown opcode {:#04x}", opcode.0),
    )
}

impl Request {
    /// A request with no flags.
    pub fn new(opaque: u32, command: Command) -> Request {
        Request {
            opaque,
            flags: Flags::NONE,
            command,
        }
    }

    /// The flag byte the frame is sent with: [`Request::flags`] without the
    /// flags that shape the opcode's body, joined with those the command's
    /// fields call for ([`Command::body_flags`]).
    pub fn wire_flags(&self) -> Flags {
        let opcode = self.command.opcode();
        self.flags.without(Flags::body_flags_for(opcode)) | self.command.body_flags()
    }

    /// The full frame length, header included.
    pub fn encoded_len(&self) -> usize {
        crate::HEADER_LEN + self.command.body_len()
    }

    /// Appends the whole frame to `dst`.
    pub fn encode(&self, dst: &mut impl BufMut) {
        let header = Header {
            magic: REQUEST_MAGIC,
            version: PROTOCOL_VERSION,
            opcode: self.command.opcode(),
            flags: self.wire_flags().0,
            status: 0,
            opaque: self.opaque,
            body_length: self.command.body_len() as u32,
        };
        header.write(dst);
        self.command.encode_body(dst);
    }

    /// Decodes a request from its checked header and complete body.
    ///
    /// The caller has already checked magic, version and length (the codec
    /// does so before buffering the body).
    pub fn decode(header: &Header, body: Bytes, limits: &Limits) -> Result<Request, RequestError> {
        let fail = |error: Invalid| RequestError {
            opaque: header.opaque,
            opcode: header.opcode,
            error,
        };
        // Opcode, then flags, then body (protocol.md §6): a flag from a later
        // version may change the body's layout, so an unknown flag must be
        // reported as BAD_FLAGS, not as whatever the body then looks like.
        if header.opcode.name().is_none() {
            return Err(fail(unknown_opcode(header.opcode)));
        }
        let flags = Flags(header.flags);
        let allowed = Flags::allowed_for(header.opcode);
        if flags.0 & !allowed.0 != 0 {
            return Err(fail(Invalid::new(
                ErrorCode::BadFlags,
                format!(
                    "flags {:#04x} not allowed on {:?} (allowed {:#04x})",
                    flags.0, header.opcode, allowed.0
                ),
            )));
        }
        let command = Command::decode(header.opcode, flags, body, limits).map_err(fail)?;
        Ok(Request {
            opaque: header.opaque,
            flags: flags.without(Flags::body_flags_for(header.opcode)),
            command,
        })
    }
}
