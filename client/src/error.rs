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
    /// The server does not offer what the request needs, by the feature
    /// bits of its HELLO (protocol.md §6.1): stale reads, soft
    /// invalidation, stale windows, request-scoped tags and TAG_STATUS need
    /// stale-while-revalidate, leases need lease tokens. Nothing was sent.
    #[error("not offered by the server: {0}")]
    Unsupported(String),
    /// A [`Client`](crate::Client) has marked the server that owns the key
    /// down after repeated failures (or after it missed an invalidation),
    /// and will retry it after a backoff. Nothing was sent. Reads of its
    /// keys miss instead of failing with this.
    #[error("server {server} is marked down")]
    ServerDown {
        /// The server's address, as given to the client.
        server: String,
    },
    /// A command that goes to every server (INVALIDATE_TAGS, FLUSH_ALL,
    /// PING) was not acknowledged by some of them. The others did
    /// acknowledge it; retry on the failed ones with
    /// [`Client::invalidate_tags_on`](crate::Client::invalidate_tags_on).
    #[error("{} of {servers} servers did not acknowledge: {}", failed.len(), list_failures(failed))]
    Unacknowledged {
        /// How many servers the command went to.
        servers: usize,
        /// The servers that did not acknowledge it, and why.
        failed: Vec<ServerFailure>,
    },
    /// A typed value could not be encoded, or a stored value could not be
    /// decoded as the type asked for (see the `serde` feature).
    #[error("value codec: {0}")]
    Codec(String),
    /// The server requires authentication (protocol.md §6.12) and refused
    /// the connection's token, or no token was given
    /// ([`ClientBuilder::auth_token`](crate::ClientBuilder::auth_token)).
    /// The connection is closed; a new one fails the same way until the
    /// token or the server's tokens change.
    #[error("server {server}: {reason}")]
    Auth {
        /// The server's address.
        server: String,
        /// What went wrong, with the server's message if it sent one.
        reason: String,
    },
}

/// One server's failure in an [`Error::Unacknowledged`].
#[derive(Debug, Clone)]
pub struct ServerFailure {
    /// The server's address, as given to the client.
    pub server: String,
    /// Why it did not acknowledge.
    pub error: Error,
}

fn list_failures(failed: &[ServerFailure]) -> String {
    failed
        .iter()
        .map(|failure| format!("{} ({})", failure.server, failure.error))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Error {
    /// Whether this error means the connection can no longer be used (a
    /// pool should drop it and reconnect), as opposed to a failure of one
    /// request.
    ///
    /// [`Error::ServerDown`] counts as one: the client could not reach the
    /// server. [`Error::Unacknowledged`] does not: it reports several
    /// servers, each failure in it says what happened there.
    pub fn is_connection_error(&self) -> bool {
        match self {
            Error::Io(_)
            | Error::Closed
            | Error::Protocol(_)
            | Error::ServerDown { .. }
            | Error::Auth { .. } => true,
            Error::Server { code, .. } => code.is_fatal(),
            Error::Timeout(_)
            | Error::InvalidArgument(_)
            | Error::Unsupported(_)
            | Error::Unacknowledged { .. }
            | Error::Codec(_) => false,
        }
    }

    /// Whether the request ran out of time ([`Error::Timeout`]).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout(_))
    }

    /// The server's error status, for [`Error::Server`].
    pub fn server_code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether the server could not be used for this request: a
    /// connection error, a timeout, or a server too busy or stopping. These
    /// count towards marking a server down, they make cache-aside compute
    /// the value without caching it, and an invalidation that fails this way
    /// may not have reached the server. Other errors (a bad key, a tag the
    /// server refuses) would fail again the same way.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Timeout(_) => true,
            Error::Server {
                code: ErrorCode::Busy | ErrorCode::ShuttingDown | ErrorCode::Internal,
                ..
            } => true,
            other => other.is_connection_error(),
        }
    }

    /// For [`Error::Unacknowledged`], the servers that did not
    /// acknowledge; otherwise empty.
    pub fn unacknowledged_servers(&self) -> Vec<&str> {
        match self {
            Error::Unacknowledged { failed, .. } => failed
                .iter()
                .map(|failure| failure.server.as_str())
                .collect(),
            _ => Vec::new(),
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
