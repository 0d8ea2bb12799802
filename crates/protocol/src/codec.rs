//! Framing for both ends of a connection, as tokio-util codecs.
//!
//! The decoders follow the `Decoder` contract: too few bytes is `Ok(None)`,
//! never an error. The declared body length is checked against the limit as
//! soon as the header is in, and the decoders never reserve room for a body
//! that has not arrived: a peer that announces a large frame and sends
//! little of it makes its reader hold only what it sent. The reader grows
//! its buffer as bytes come (tokio-util's `FramedRead` and the server do).

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::{FatalError, RequestError};
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
#[derive(Debug, Clone, Default)]
pub struct ServerCodec {
    limits: Limits,
}

impl ServerCodec {
    /// A codec enforcing `limits`.
    pub fn new(limits: Limits) -> ServerCodec {
        ServerCodec { limits }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

impl Decoder for ServerCodec {
    type Item = Result<Request, RequestError>;
    type Error = FatalError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, FatalError> {
        Ok(take_frame(src, REQUEST_MAGIC, self.limits.max_frame)?
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

/// The client's codec: encodes requests, decodes responses.
#[derive(Debug, Clone)]
pub struct ClientCodec {
    max_frame: u32,
}

impl ClientCodec {
    /// A codec accepting response bodies up to `max_frame` bytes.
    pub fn new(max_frame: u32) -> ClientCodec {
        ClientCodec { max_frame }
    }
}

impl Default for ClientCodec {
    fn default() -> ClientCodec {
        ClientCodec::new(Limits::default().max_frame)
    }
}

impl Decoder for ClientCodec {
    type Item = Response;
    type Error = FatalError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Response>, FatalError> {
        match take_frame(src, RESPONSE_MAGIC, self.max_frame)? {
            Some((header, body)) => Response::decode(&header, body)
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
