//! AUTH (protocol.md §6.12): the token a connection presents, right after
//! HELLO, to a server that requires authentication.

use bytes::Bytes;
use tagcached_protocol::{request, Flags, Outcome, Response};

use super::{answer_one, Call, Command};
use crate::error::Result;

/// An AUTH sent; answered OK, or AUTH_FAILED (which closes the connection).
#[derive(Debug)]
pub(crate) struct Auth;

impl Auth {
    pub(crate) fn call(token: Bytes) -> Call<Auth> {
        let body = tagcached_protocol::Command::Auth(request::Auth { token });
        Call::new(Flags::NONE, body, Auth)
    }
}

impl Command for Auth {
    type Answer = ();

    fn answer(self, frames: Vec<Response>) -> Result<()> {
        answer_one(frames, |outcome| match outcome {
            Outcome::Ok => Ok(()),
            other => Err(other),
        })
    }
}
