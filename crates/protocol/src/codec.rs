//! Framing for both ends of a connection, as tokio-util codecs.
//!
//! The decoders follow the `Decoder` contract: too few bytes is `Ok(None)`,
//! never an error. The declared body length is checked against the limit as
//! soon as the header is in, and the decoders never reserve room for a body
//! that has not arrived: a peer that announces a large frame and sends
//! little of it makes its reader hold only what it sent. The reader grows
//! its buffer as bytes come (tokio-util's `FramedRead` and the server do).
//!
//! A response cannot always be read without its request: the body of a GET
//! or GETM lookup has a `lease` field only if the request had LEASE. The
//! [`ClientCodec`] reads every response as the answer to a request without
//! LEASE; a client that sends LEASE frames its input with the
//! [`ClientFrameCodec`] and decodes each [`ResponseFrame`] with the flags of
//! the request it answers.

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::{FatalError, Invalid, RequestError};
use crate::flags::Flags;
use crate::header::{Header, HEADER_LEN, PROTOCOL_VERSION, REQUEST_MAGIC, RESPONSE_MAGIC};
use crate::limits::Limits;
use crate::request::Request;
use crate::response::Response;

/// Splits one frame off `src` once it is complete, after checking its header.
fn take_frame(
    src: &mut BytesMut,
    magic: u8,
    max_frame: u32,
) -> Result<Option<(Header, Bytes)>, FatalError> {
    // The magic is checked from the first byte, not once the header is
    // whole: a peer speaking another protocol (a memcached client sends
    // `mg foo v\r\n`, 10 bytes) is refused at once instead of waiting for
    // bytes it will never send.
    match src.first() {
        None => return Ok(None),
        Some(&found) if found != magic => return Err(FatalError::BadMagic { found }),
        Some(_) => {}
    }
    let Some(header) = Header::peek(src) else {
        return Ok(None);
    };
    if header.version != PROTOCOL_VERSION {
        return Err(FatalError::BadVersion {
            opaque: header.opaque,
            opcode: header.opcode,
            version: header.version,
        });
    }
    if header.body_length > max_frame {
        return Err(FatalError::FrameTooLarge {
            opaque: header.opaque,
            opcode: header.opcode,
            length: header.body_length,
            max: max_frame,
        });
    }
    let total = HEADER_LEN + header.body_length as usize;
    if src.len() < total {
        return Ok(None);
    }
    // Dropping the header before freezing costs nothing; slicing it off the
    // frozen frame would take and drop a reference (two atomic operations).
    let mut frame = src.split_to(total);
    frame.advance(HEADER_LEN);
    Ok(Some((header, frame.freeze())))
}

/// The server's codec: decodes requests, encodes responses.
///
/// A request whose frame is sound but whose body is not decodes to
/// `Some(Err(RequestError))`: answer it and go on. A [`FatalError`] means
/// the stream can no longer be framed: answer and close.
#[derive(Debug, Clone)]
pub struct ServerCodec {
    limits: Limits,
    /// The largest body accepted: `limits.max_frame`, or less while the
    /// connection has not authenticated ([`ServerCodec::set_max_frame`]).
    max_frame: u32,
}

impl ServerCodec {
    /// A codec enforcing `limits`.
    pub fn new(limits: Limits) -> ServerCodec {
        ServerCodec {
            limits,
            max_frame: limits.max_frame,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Accepts bodies up to `max_frame` bytes from the next frame on,
    /// whatever [`Limits::max_frame`] says: a server lowers it to
    /// [`Limits::PRE_AUTH_MAX_FRAME`] until the connection authenticates,
    /// and raises it back to `limits().max_frame` once it has.
    pub fn set_max_frame(&mut self, max_frame: u32) {
        self.max_frame = max_frame;
    }
}

impl Default for ServerCodec {
    fn default() -> ServerCodec {
        ServerCodec::new(Limits::default())
    }
}

impl Decoder for ServerCodec {
    type Item = Result<Request, RequestError>;
    type Error = FatalError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, FatalError> {
        Ok(take_frame(src, REQUEST_MAGIC, self.max_frame)?
            .map(|(header, body)| Request::decode(&header, body, &self.limits)))
    }
}

impl Encoder<&Response> for ServerCodec {
    type Error = FatalError;

    fn encode(&mut self, response: &Response, dst: &mut BytesMut) -> Result<(), FatalError> {
        dst.reserve(response.encoded_len());
        response.encode(dst);
        Ok(())
    }
}

/// A response frame whose header is checked and whose body is not decoded
/// yet, as the [`ClientFrameCodec`] yields it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseFrame {
    /// The header.
    pub header: Header,
    /// The whole body, `header.body_length` bytes.
    pub body: Bytes,
}

impl ResponseFrame {
    /// Decodes the body as the answer to a request sent with
    /// `request_flags` (see [`Response::decode`]).
    pub fn decode(self, request_flags: Flags) -> Result<Response, Invalid> {
        Response::decode(&self.header, self.body, request_flags)
    }
}

/// The client's framing alone: splits response frames off the stream and
/// checks their headers, leaving each body to be decoded once the request
/// it answers is known ([`ResponseFrame::decode`]).
#[derive(Debug, Clone)]
pub struct ClientFrameCodec {
    max_frame: u32,
}

impl ClientFrameCodec {
    /// A codec accepting response bodies up to `max_frame` bytes.
    pub fn new(max_frame: u32) -> ClientFrameCodec {
        ClientFrameCodec { max_frame }
    }
}

impl Default for ClientFrameCodec {
    fn default() -> ClientFrameCodec {
        ClientFrameCodec::new(Limits::default().max_frame)
    }
}

impl Decoder for ClientFrameCodec {
    type Item = ResponseFrame;
    type Error = FatalError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<ResponseFrame>, FatalError> {
        Ok(take_frame(src, RESPONSE_MAGIC, self.max_frame)?
            .map(|(header, body)| ResponseFrame { header, body }))
    }
}

/// The client's codec: encodes requests, decodes responses.
///
/// It decodes every response as the answer to a request without LEASE: a
/// client that sends GET or GETM with LEASE uses [`ClientFrameCodec`]
/// instead (see the module comment).
#[derive(Debug, Clone, Default)]
pub struct ClientCodec {
    frames: ClientFrameCodec,
}

impl ClientCodec {
    /// A codec accepting response bodies up to `max_frame` bytes.
    pub fn new(max_frame: u32) -> ClientCodec {
        ClientCodec {
            frames: ClientFrameCodec::new(max_frame),
        }
    }
}

impl Decoder for ClientCodec {
    type Item = Response;
    type Error = FatalError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Response>, FatalError> {
        match self.frames.decode(src)? {
            Some(frame) => frame
                .decode(Flags::NONE)
                .map(Some)
                .map_err(FatalError::MalformedResponse),
            None => Ok(None),
        }
    }
}

impl Encoder<&Request> for ClientCodec {
    type Error = FatalError;

    fn encode(&mut self, request: &Request, dst: &mut BytesMut) -> Result<(), FatalError> {
        dst.reserve(request.encoded_len());
        request.encode(dst);
        Ok(())
    }
}

impl Encoder<Request> for ClientCodec {
    type Error = FatalError;

    fn encode(&mut self, request: Request, dst: &mut BytesMut) -> Result<(), FatalError> {
        self.encode(&request, dst)
    }
}
