//! FLUSH_ALL (protocol.md §6.9): remove every entry on every shard.

use tagcached_protocol::{request, Flags, Response};

use super::{answer_one, sequence, Call, Command};
use crate::error::Result;

/// A FLUSH_ALL sent; answered with the invalidation sequence assigned, so
/// that fences taken before it are refused.
#[derive(Debug)]
pub(crate) struct FlushAll;

impl FlushAll {
    pub(crate) fn call() -> Call<FlushAll> {
        Call::new(
            Flags::NONE,
            tagcached_protocol::Command::FlushAll(request::FlushAll::HARD),
            FlushAll,
        )
    }
}

impl Command for FlushAll {
    type Answer = u64;

    fn answer(self, frames: Vec<Response>) -> Result<u64> {
        answer_one(frames, sequence)
    }
}
