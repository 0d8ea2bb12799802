//! The client's one error type.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tagcached_protocol::{ErrorCode, FatalError};

/// A `Result` whose error is the client's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a request failed.
///
/// `Clone` so that one failure of a connection can be handed to every
/// request that was in flight on it. Outcomes that are answers rather than
/// failures (a miss, `NOT_STORED`, `FENCED`, ...) are not errors: they are in
/// the return types of the commands.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Connecting, reading or writing failed; the connection is unusable.
    // The message includes the cause rather than exposing it as `source()`,
    // so it is not printed twice by reporters that walk the chain.
    #[error("i/o error: {0}")]
    Io(Arc<io::Error>),
    /// The connection is closed: the server closed it, or it was closed
    /// after an earlier failure. Open a new one.
    #[error("connection closed")]
    Closed,
    /// No answer within the request (or connect) timeout. The connection
    /// stays usable: a late response is read and dropped.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The server answered with an error status (protocol.md §4). A fatal
    /// code (see [`ErrorCode::is_fatal`]) also closes the connection.
    #[error("server error {code}: {message}")]
    Server {
        /// The error status.
        code: ErrorCode,
        /// The server's human-readable detail.
        message: String,
    },
    /// The server broke the protocol: a response to no request in flight, an
    /// undecodable frame, or a status that makes no sense for the opcode.
    /// Framing errors close the connection.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The request cannot be sent as asked, e.g. more than 65535 tags, or a
    /// frame larger than the server's `max_frame`. Nothing was sent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl Error {
    /// Whether this error means the connection can no longer be used (a
    /// pool should drop it and reconnect), as opposed to a failure of one
    /// request.
    pub fn is_connection_error(&self) -> bool {
        match self {
            Error::Io(_) | Error::Closed | Error::Protocol(_) => true,
            Error::Server { code, .. } => code.is_fatal(),
            Error::Timeout(_) | Error::InvalidArgument(_) => false,
        }
    }

    pub(crate) fn protocol(message: impl Into<String>) -> Error {
        Error::Protocol(message.into())
    }
}

impl From<io::Error> for Error {
    fn from(error: io::Error) -> Error {
        Error::Io(Arc::new(error))
    }
}

impl From<FatalError> for Error {
    fn from(error: FatalError) -> Error {
        match error {
            FatalError::Io(error) => Error::from(error),
            other => Error::Protocol(other.to_string()),
        }
    }
}
