//! DELETE (protocol.md §6.6): remove a key.

use bytes::Bytes;
use tagcached_protocol::request;
use tagcached_protocol::{Flags, Response};

use super::{answer_one, found, Call, Command};
use crate::error::Result;

/// A DELETE sent; answered with whether a live entry was removed.
#[derive(Debug)]
pub(crate) struct Delete;

impl Delete {
    pub(crate) fn call(key: Bytes) -> Call<Delete> {
        let body = tagcached_protocol::Command::Delete(request::Delete { key });
        Call::new(Flags::NONE, body, Delete)
    }
}

impl Command for Delete {
    type Answer = bool;

    fn answer(self, frames: Vec<Response>) -> Result<bool> {
        answer_one(frames, found)
    }
}
