//! [`Pipeline`]: many commands, one round trip.

use std::time::Duration;

use bytes::Bytes;
use tagcached_protocol::request::{Delete, Get, Touch};
use tagcached_protocol::{Command, Flags, Request, Response};
use tokio::sync::oneshot;

use crate::connection::{bytes, get_many_command, invalidate_command, Connection};
use crate::driver::{Outgoing, Submission};
use crate::error::{Error, Result};
use crate::in_flight::Frames;
use crate::lookup::Lookup;
use crate::reply;
use crate::set::{ttl_seconds, SetOptions, SetOutcome};

/// Commands queued to go out back to back, ended by a NOOP, and answered
/// in one round trip.
///
/// The `_quiet` variants set the QUIET flag: the server answers them only
/// when they fail (protocol.md §5), so thousands of SETs cost thousands of
/// frames one way and almost nothing back. The NOOP that ends every
/// pipeline is the barrier: once it is answered, every command before it has
/// run.
///
/// ```no_run
/// # async fn example(connection: tagcached_client::Connection) -> tagcached_client::Result<()> {
/// use tagcached_client::{Reply, SetOptions};
///
/// let options = SetOptions::new().tag("import:2024-06");
/// let mut pipeline = connection.pipeline();
/// for n in 0..10_000 {
///     pipeline.set_quiet(format!("row:{n}"), format!("value {n}"), &options);
/// }
/// let replies = pipeline.execute().await?;
/// let failed = replies.iter().filter(|reply| !matches!(reply, Ok(Reply::Silent))).count();
/// println!("{failed} rows not stored");
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a pipeline does nothing until executed"]
pub struct Pipeline<'c> {
    connection: &'c Connection,
    queued: Vec<Queued>,
}

/// One command's answer in a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// A quiet command sent no response, which means it succeeded: the
    /// SET stored, the DELETE ran (key found or not), the TOUCH found its
    /// key.
    Silent,
    /// PING answered.
    Pong,
    /// GET's answer.
    Lookup(Lookup),
    /// GETM's answer, one lookup per key in request order.
    Lookups(Vec<Lookup>),
    /// SET's answer.
    Set(SetOutcome),
    /// DELETE's answer: whether a live entry was removed.
    Deleted(bool),
    /// TOUCH's answer: whether a live entry's TTL was reset.
    Touched(bool),
    /// INVALIDATE_TAGS's or FLUSH_ALL's answer: the sequence assigned.
    Sequence(u64),
    /// STATS's answer.
    Stats(Vec<(String, String)>),
}

/// What answer a queued command expects.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Ping,
    Get,
    GetMany(usize),
    Set,
    Delete,
    Touch,
    Sequence,
    Stats,
}

impl Kind {
    fn reply(self, frames: Vec<Response>) -> Result<Reply> {
        if frames.is_empty() {
            return Ok(Reply::Silent);
        }
        if let Kind::GetMany(key_count) = self {
            return reply::lookups(frames, key_count).map(Reply::Lookups);
        }
        let frame = reply::single(frames)?;
        match self {
            Kind::Ping => reply::ok(frame).map(|()| Reply::Pong),
            Kind::Get => reply::lookup(frame).map(Reply::Lookup),
            Kind::Set => reply::set_outcome(frame).map(Reply::Set),
            Kind::Delete => reply::found(frame).map(Reply::Deleted),
            Kind::Touch => reply::found(frame).map(Reply::Touched),
            Kind::Sequence => reply::sequence(frame).map(Reply::Sequence),
            Kind::Stats => reply::stats(frame).map(Reply::Stats),
            Kind::GetMany(_) => unreachable!("handled above"),
        }
    }
}

#[derive(Debug)]
struct Queued {
    /// The request, or why it cannot be sent (reported in its slot).
    request: Result<Request>,
    kind: Kind,
}

/// A queued command after submission.
enum Slot {
    Sent(oneshot::Receiver<Frames>, Kind),
    Refused(Error),
}

impl<'c> Pipeline<'c> {
    pub(crate) fn new(connection: &'c Connection) -> Pipeline<'c> {
        Pipeline {
            connection,
            queued: Vec::new(),
        }
    }

    fn push(&mut self, flags: Flags, command: Result<Command>, kind: Kind) -> &mut Self {
        let request = command.and_then(|command| {
            let request = Request {
                opaque: 0,
                flags,
                command,
            };
            self.connection.check_frame(&request)?;
            Ok(request)
        });
        self.queued.push(Queued { request, kind });
        self
    }

    /// Queue a PING.
    pub fn ping(&mut self) -> &mut Self {
        self.push(Flags::NONE, Ok(Command::Ping), Kind::Ping)
    }

    /// Queue a GET; answered with [`Reply::Lookup`].
    pub fn get(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        let command = Command::Get(Get { key: bytes(key) });
        self.push(Flags::NONE, Ok(command), Kind::Get)
    }

    /// Queue a GET that returns a hit's tags.
    pub fn get_with_tags(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        let command = Command::Get(Get { key: bytes(key) });
        self.push(Flags::WITH_TAGS, Ok(command), Kind::Get)
    }

    /// Queue a GETM; answered with [`Reply::Lookups`]. Unlike
    /// [`Connection::get_many`], the keys are not split: more than the
    /// server's `max_keys_per_getm` is its `TOO_MANY_KEYS`.
    pub fn get_many<K: AsRef<[u8]>>(&mut self, keys: impl IntoIterator<Item = K>) -> &mut Self {
        let command = get_many_command(keys);
        let key_count = match &command {
            Ok(Command::GetMany(get_many)) => get_many.keys.len(),
            _ => 0,
        };
        self.push(Flags::NONE, command, Kind::GetMany(key_count))
    }

    /// Queue a SET; answered with [`Reply::Set`].
    pub fn set(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl Into<Bytes>,
        options: &SetOptions,
    ) -> &mut Self {
        self.push(Flags::NONE, set_command(key, value, options), Kind::Set)
    }

    /// Queue a quiet SET: [`Reply::Silent`] when stored, else the outcome
    /// or error.
    pub fn set_quiet(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl Into<Bytes>,
        options: &SetOptions,
    ) -> &mut Self {
        self.push(Flags::QUIET, set_command(key, value, options), Kind::Set)
    }

    /// Queue a DELETE; answered with [`Reply::Deleted`].
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        let command = Command::Delete(Delete { key: bytes(key) });
        self.push(Flags::NONE, Ok(command), Kind::Delete)
    }

    /// Queue a quiet DELETE: [`Reply::Silent`] whether or not the key was
    /// there; only errors are answered.
    pub fn delete_quiet(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        let command = Command::Delete(Delete { key: bytes(key) });
        self.push(Flags::QUIET, Ok(command), Kind::Delete)
    }

    /// Queue a TOUCH; answered with [`Reply::Touched`].
    pub fn touch(&mut self, key: impl AsRef<[u8]>, ttl: Duration) -> &mut Self {
        self.push(Flags::NONE, Ok(touch_command(key, ttl)), Kind::Touch)
    }

    /// Queue a quiet TOUCH: [`Reply::Silent`] when the key was there,
    /// [`Reply::Touched`]`(false)` when not.
    pub fn touch_quiet(&mut self, key: impl AsRef<[u8]>, ttl: Duration) -> &mut Self {
        self.push(Flags::QUIET, Ok(touch_command(key, ttl)), Kind::Touch)
    }

    /// Queue an INVALIDATE_TAGS; answered with [`Reply::Sequence`].
    pub fn invalidate_tags<T: AsRef<[u8]>>(
        &mut self,
        tags: impl IntoIterator<Item = T>,
    ) -> &mut Self {
        self.push(Flags::NONE, invalidate_command(tags), Kind::Sequence)
    }

    /// Queue a FLUSH_ALL; answered with [`Reply::Sequence`].
    pub fn flush_all(&mut self) -> &mut Self {
        self.push(Flags::NONE, Ok(Command::FlushAll), Kind::Sequence)
    }

    /// Queue a STATS; answered with [`Reply::Stats`].
    pub fn stats(&mut self) -> &mut Self {
        self.push(Flags::NONE, Ok(Command::Stats), Kind::Stats)
    }

    /// How many commands are queued.
    pub fn len(&self) -> usize {
        self.queued.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Sends everything queued and a closing NOOP in one submission, and
    /// waits for the NOOP's answer.
    ///
    /// Returns one result per queued command, in order: a command the
    /// server refused, or that could not be sent (an
    /// [`Error::InvalidArgument`]), fails in its own slot while the others
    /// proceed. The outer error is for the pipeline as a whole: the
    /// connection failed, or the request timeout passed.
    pub async fn execute(self) -> Result<Vec<Result<Reply>>> {
        let mut batch = Vec::with_capacity(self.queued.len() + 1);
        let slots: Vec<Slot> = self
            .queued
            .into_iter()
            .map(|queued| match queued.request {
                Ok(request) => {
                    let (outgoing, frames) = Outgoing::new(request);
                    batch.push(outgoing);
                    Slot::Sent(frames, queued.kind)
                }
                Err(error) => Slot::Refused(error),
            })
            .collect();
        if !batch.is_empty() {
            let (barrier, barrier_frames) = Outgoing::new(Request::new(0, Command::Noop));
            batch.push(barrier);
            let link = self.connection.link();
            self.connection
                .within_timeout(async {
                    link.submit(Submission::Batch(batch)).await?;
                    reply::ok(reply::single(link.frames(barrier_frames).await?)?)
                })
                .await?;
        }
        Ok(slots.into_iter().map(Slot::into_reply).collect())
    }
}

impl Slot {
    /// The answer, which the barrier guarantees has arrived.
    fn into_reply(self) -> Result<Reply> {
        match self {
            Slot::Sent(mut frames, kind) => match frames.try_recv() {
                Ok(frames) => kind.reply(frames?),
                Err(_) => Err(Error::protocol(
                    "a pipelined command was not answered before the closing NOOP",
                )),
            },
            Slot::Refused(error) => Err(error),
        }
    }
}

fn set_command(
    key: impl AsRef<[u8]>,
    value: impl Into<Bytes>,
    options: &SetOptions,
) -> Result<Command> {
    options
        .to_command(bytes(key), value.into())
        .map(Command::Set)
}

fn touch_command(key: impl AsRef<[u8]>, ttl: Duration) -> Command {
    Command::Touch(Touch {
        ttl: ttl_seconds(ttl),
        key: bytes(key),
    })
}

#[cfg(test)]
mod tests {
    use tagcached_protocol::response::Miss;
    use tagcached_protocol::{Opcode, Outcome};

    use super::*;

    fn frame(opcode: Opcode, outcome: Outcome) -> Response {
        Response {
            opaque: 1,
            opcode,
            outcome,
        }
    }

    #[test]
    fn a_quiet_command_without_a_response_is_silent_success() {
        assert_eq!(Kind::Set.reply(Vec::new()).ok(), Some(Reply::Silent));
        assert_eq!(Kind::Delete.reply(Vec::new()).ok(), Some(Reply::Silent));
    }

    #[test]
    fn each_kind_maps_its_frame_to_its_reply() {
        let cases = [
            (Kind::Ping, frame(Opcode::PING, Outcome::Ok), Reply::Pong),
            (
                Kind::Set,
                frame(Opcode::SET, Outcome::NotStored),
                Reply::Set(SetOutcome::NotStored),
            ),
            (
                Kind::Touch,
                frame(Opcode::TOUCH, Outcome::NotFound),
                Reply::Touched(false),
            ),
            (
                Kind::Delete,
                frame(Opcode::DELETE, Outcome::Ok),
                Reply::Deleted(true),
            ),
            (
                Kind::Sequence,
                frame(Opcode::INVALIDATE_TAGS, Outcome::Sequence(9)),
                Reply::Sequence(9),
            ),
            (
                Kind::Get,
                frame(
                    Opcode::GET,
                    Outcome::Miss(Miss {
                        key_index: None,
                        fence: 4,
                    }),
                ),
                Reply::Lookup(Lookup::Miss { fence: 4 }),
            ),
        ];
        for (kind, response, expected) in cases {
            assert_eq!(kind.reply(vec![response]).ok(), Some(expected));
        }
    }

    #[test]
    fn a_getm_reply_keeps_one_lookup_per_key() {
        let frames = (0..2)
            .map(|index| {
                frame(
                    Opcode::GETM,
                    Outcome::Miss(Miss {
                        key_index: Some(index),
                        fence: 1,
                    }),
                )
            })
            .collect();
        assert_eq!(
            Kind::GetMany(2).reply(frames).ok(),
            Some(Reply::Lookups(vec![Lookup::Miss { fence: 1 }; 2]))
        );
    }
}
