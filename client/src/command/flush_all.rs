//! FLUSH_ALL (protocol.md §6.9): remove every entry on every shard; or,
//! soft, make every entry stale for a window and a miss after it.

use std::time::Duration;

use tagcached_protocol::{request, Flags, Response};

use super::{answer_one, sequence, Call, Command};
use crate::error::Result;
use crate::set::whole_seconds;

/// A FLUSH_ALL sent; answered with the invalidation sequence assigned, so
/// that fences taken before it are refused.
#[derive(Debug)]
pub(crate) struct FlushAll;

impl FlushAll {
    /// FLUSH_ALL, hard, or soft with the window `soft_expire` (rounded up
    /// to whole seconds; zero acts as hard).
    pub(crate) fn call(soft_expire: Option<Duration>) -> Call<FlushAll> {
        let body = request::FlushAll {
            soft_expire: soft_expire.map(whole_seconds),
        };
        Call::new(
            Flags::NONE,
            tagcached_protocol::Command::FlushAll(body),
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
