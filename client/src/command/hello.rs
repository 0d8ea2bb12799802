//! HELLO (protocol.md §6.1): the handshake that opens every connection.

use bytes::Bytes;
use tagcached_protocol::request;
use tagcached_protocol::response::HelloInfo;
use tagcached_protocol::{Flags, Outcome, Response, PROTOCOL_VERSION};

use super::{answer_one, Call, Command};
use crate::error::Result;

/// A HELLO sent; answered with the server's version, shard and limits.
#[derive(Debug)]
pub(crate) struct Hello;

impl Hello {
    /// HELLO from `client_name`, offering this client's protocol version
    /// and asking to be served by `want_shard`, if given.
    pub(crate) fn call(want_shard: Option<u16>, client_name: Bytes) -> Call<Hello> {
        let body = tagcached_protocol::Command::Hello(request::Hello {
            max_version: PROTOCOL_VERSION,
            want_shard,
            client_name,
        });
        Call::new(Flags::NONE, body, Hello)
    }
}

impl Command for Hello {
    type Answer = HelloInfo;

    fn answer(self, frames: Vec<Response>) -> Result<HelloInfo> {
        answer_one(frames, |outcome| match outcome {
            Outcome::Hello(info) => Ok(info),
            other => Err(other),
        })
    }
}
