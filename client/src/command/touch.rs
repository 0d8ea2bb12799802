//! TOUCH (protocol.md §6.7): reset a key's TTL.

use std::time::Duration;

use bytes::Bytes;
use tagcached_protocol::request;
use tagcached_protocol::{Flags, Response};

use super::{answer_one, found, Call, Command};
use crate::error::Result;
use crate::set::whole_seconds;

/// A TOUCH sent; answered with whether a live entry's TTL was reset.
#[derive(Debug)]
pub(crate) struct Touch;

impl Touch {
    /// TOUCH of `key` to `ttl`, rounded up to whole seconds (zero: never
    /// expire).
    pub(crate) fn call(key: Bytes, ttl: Duration) -> Call<Touch> {
        let body = tagcached_protocol::Command::Touch(request::Touch {
            ttl: whole_seconds(ttl),
            key,
        });
        Call::new(Flags::NONE, body, Touch)
    }
}

impl Command for Touch {
    type Answer = bool;

    fn answer(self, frames: Vec<Response>) -> Result<bool> {
        answer_one(frames, found)
    }
}
