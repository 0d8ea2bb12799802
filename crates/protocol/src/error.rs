//! Errors found while decoding, each mapped to one status code.

use std::borrow::Cow;

use crate::opcode::Opcode;
use crate::status::ErrorCode;

/// Something wrong inside one frame's body. The frame was consumed whole, so
/// the connection can go on; the peer is answered with `code` and `message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Invalid {
    /// The status to answer with.
    pub code: ErrorCode,
    /// Human-readable detail for the error body.
    pub message: Cow<'static, str>,
}

impl Invalid {
    /// An error with the given code and message.
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Invalid {
        Invalid {
            code,
            message: message.into(),
        }
    }

    /// A body that does not match its layout.
    pub fn malformed(message: impl Into<Cow<'static, str>>) -> Invalid {
        Invalid::new(ErrorCode::Malformed, message)
    }

    pub(crate) fn key(message: impl Into<Cow<'static, str>>) -> Invalid {
        Invalid::new(ErrorCode::KeyInvalid, message)
    }

    pub(crate) fn tag(message: String) -> Invalid {
        Invalid::new(ErrorCode::TagInvalid, message)
    }

    pub(crate) fn too_many_tags(count: usize, max: u32) -> Invalid {
        Invalid::new(
            ErrorCode::TooManyTags,
            format!("{count} tags; the limit is {max}"),
        )
    }
}

/// A request the server must answer with an error, and then go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("request {opaque} ({opcode:?}): {error}")]
pub struct RequestError {
    /// The request's opaque, to echo.
    pub opaque: u32,
    /// The request's opcode, to echo.
    pub opcode: Opcode,
    /// What was wrong.
    pub error: Invalid,
}

/// A framing error after which the byte stream cannot be trusted: the
/// receiver answers (when it is the server) and closes the connection.
#[derive(Debug, thiserror::Error)]
pub enum FatalError {
    /// The frame did not start with the expected magic byte.
    #[error("bad magic byte {found:#04x}")]
    BadMagic {
        /// The byte found.
        found: u8,
    },
    /// A protocol version this crate does not speak.
    #[error("unsupported protocol version {version}")]
    BadVersion {
        /// The frame's opaque, echoed in the error.
        opaque: u32,
        /// The frame's opcode, echoed in the error.
        opcode: Opcode,
        /// The version found.
        version: u8,
    },
    /// A declared body longer than the limit.
    #[error("frame body of {length} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// The frame's opaque, echoed in the error.
        opaque: u32,
        /// The frame's opcode, echoed in the error.
        opcode: Opcode,
        /// The declared body length.
        length: u32,
        /// The limit.
        max: u32,
    },
    /// A response frame whose body does not match its status (client side).
    #[error("malformed response: {0}")]
    MalformedResponse(Invalid),
    /// The underlying transport failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl FatalError {
    /// The error status to send before closing, with the opaque and opcode
    /// to echo; `None` for transport failures, where nothing can be sent.
    pub fn response_parts(&self) -> Option<(ErrorCode, u32, Opcode)> {
        match *self {
            FatalError::BadMagic { .. } => Some((ErrorCode::BadMagic, 0, Opcode(0))),
            FatalError::BadVersion { opaque, opcode, .. } => {
                Some((ErrorCode::BadVersion, opaque, opcode))
            }
            FatalError::FrameTooLarge { opaque, opcode, .. } => {
                Some((ErrorCode::FrameTooLarge, opaque, opcode))
            }
            FatalError::MalformedResponse(_) | FatalError::Io(_) => None,
        }
    }
}
