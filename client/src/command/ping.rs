//! PING and NOOP (protocol.md §6.2): empty requests answered OK. PING checks
//! the server is alive; NOOP ends a pipeline, since its answer comes after
//! every answer to the requests before it.

use tagcached_protocol::{Flags, Outcome, Response};

use super::{answer_one, Call, Command};
use crate::error::Result;

/// A PING or a NOOP sent.
#[derive(Debug)]
pub(crate) struct Ping;

impl Ping {
    pub(crate) fn call() -> Call<Ping> {
        Call::new(Flags::NONE, tagcached_protocol::Command::Ping, Ping)
    }
}

impl Command for Ping {
    type Answer = ();

    fn answer(self, frames: Vec<Response>) -> Result<()> {
        answer_one(frames, ok)
    }
}

/// Builds a NOOP, whose answer is read as a PING's.
#[derive(Debug)]
pub(crate) struct Noop;

impl Noop {
    pub(crate) fn call() -> Call<Ping> {
        Call::new(Flags::NONE, tagcached_protocol::Command::Noop, Ping)
    }
}

fn ok(outcome: Outcome) -> Result<(), Outcome> {
    match outcome {
        Outcome::Ok => Ok(()),
        other => Err(other),
    }
}
