//! The tagcached wire format: frames, typed requests and responses, and the
//! tokio-util codecs that turn one into the other.
//!
//! This crate knows nothing of sockets or storage. `protocol.md` at the root
//! of the repository is the specification; every layout here cites the
//! section it implements.
//!
//! Layers, each importing only from those above it:
//! - [`header`], [`opcode`], [`status`], [`flags`]: the 16-byte frame header
//!   and the values it carries.
//! - [`limits`], [`key`], [`tag`]: what a well-formed request may contain.
//! - [`request`], [`response`]: typed bodies, one file per command, each with
//!   its encoding and decoding.
//! - [`codec`]: framing, as tokio-util `Decoder`s and `Encoder`s for both
//!   ends of a connection.

pub mod codec;
pub mod error;
pub mod flags;
pub mod hash;
pub mod header;
pub mod key;
pub mod limits;
pub mod opcode;
pub mod request;
pub mod response;
pub mod status;
pub mod tag;
mod wire;

pub use codec::{ClientCodec, ClientFrameCodec, ResponseFrame, ServerCodec};
pub use error::{FatalError, RequestError};
pub use flags::Flags;
pub use hash::{fnv1a64, shard_for_key};
pub use header::{Header, HEADER_LEN, PROTOCOL_VERSION, REQUEST_MAGIC, RESPONSE_MAGIC};
pub use limits::Limits;
pub use opcode::Opcode;
pub use request::{Command, Request};
pub use response::{Outcome, Response};
pub use status::{ErrorCode, Status};
