//! [`Pipeline`]: many commands, one round trip.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use tagcached_protocol::Response;
use tokio::sync::oneshot;

use crate::command::{
    bytes, Call, Command, Delete, FlushAll, Get, GetMany, InvalidateTags, Noop, Ping, Set, Stats,
    TagStatus, Touch,
};
use crate::connection::Connection;
use crate::driver::{Outgoing, Submission};
use crate::error::{Error, Result};
use crate::in_flight::Frames;
use crate::lookup::Lookup;
use crate::read::ReadOptions;
use crate::set::{SetOptions, SetOutcome};
use crate::tag_status::TagReport;

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
    /// Each queued call, or why it cannot be sent (reported in its slot).
    queued: Vec<Result<Call<Queued>>>,
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
    /// TAG_STATUS's answer.
    TagStatus(TagReport),
}

/// A queued command of any kind, whose answer becomes a [`Reply`].
///
/// Boxed so that one pipeline holds commands of every kind; the box of a
/// command that keeps nothing for its answer (all but GETM) allocates
/// nothing.
struct Queued(Box<dyn FnOnce(Vec<Response>) -> Result<Reply> + Send + Sync>);

impl Command for Queued {
    type Answer = Reply;

    fn answer(self, frames: Vec<Response>) -> Result<Reply> {
        // The server answers a quiet command only when it fails, and the
        // closing NOOP's answer says it ran.
        if frames.is_empty() {
            return Ok(Reply::Silent);
        }
        (self.0)(frames)
    }
}

impl fmt::Debug for Queued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Queued")
    }
}

impl Connection {
    /// A batch of commands sent back to back and answered in one round
    /// trip; see [`Pipeline`].
    pub fn pipeline(&self) -> Pipeline<'_> {
        Pipeline {
            connection: self,
            queued: Vec::new(),
        }
    }
}

impl<'c> Pipeline<'c> {
    /// Queues `call`, whose answer `reply` turns into its [`Reply`].
    fn push<C>(
        &mut self,
        call: Result<Call<C>>,
        reply: impl FnOnce(C::Answer) -> Reply + Send + Sync + 'static,
    ) -> &mut Self
    where
        C: Command + Send + Sync + 'static,
    {
        let queued = call.map(|Call { request, command }| Call {
            request,
            command: Queued(Box::new(move |frames| command.answer(frames).map(reply))),
        });
        self.queued.push(queued);
        self
    }

    /// Queue a PING.
    pub fn ping(&mut self) -> &mut Self {
        self.push(Ok(Ping::call()), |()| Reply::Pong)
    }

    /// Queue a GET; answered with [`Reply::Lookup`].
    pub fn get(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        self.get_with(key, &ReadOptions::new())
    }

    /// Queue a GET that returns a hit's tags.
    pub fn get_with_tags(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        self.get_with(key, &ReadOptions::new().with_tags())
    }

    /// Queue a GET read as `options` say (see [`Connection::get_with`]);
    /// answered with [`Reply::Lookup`].
    pub fn get_with(&mut self, key: impl AsRef<[u8]>, options: &ReadOptions) -> &mut Self {
        self.push(Ok(Get::call(bytes(key), options)), Reply::Lookup)
    }

    /// Queue a GETM; answered with [`Reply::Lookups`]. Unlike
    /// [`Connection::get_many`], the keys are not split: more than the
    /// server's `max_keys_per_getm` is its `TOO_MANY_KEYS`.
    pub fn get_many<K: AsRef<[u8]>>(&mut self, keys: impl IntoIterator<Item = K>) -> &mut Self {
        self.get_many_with(keys, &ReadOptions::new())
    }

    /// Queue a GETM read as `options` say, not split (as
    /// [`get_many`](Pipeline::get_many)); answered with [`Reply::Lookups`].
    pub fn get_many_with<K: AsRef<[u8]>>(
        &mut self,
        keys: impl IntoIterator<Item = K>,
        options: &ReadOptions,
    ) -> &mut Self {
        let keys = keys.into_iter().map(bytes).collect();
        self.push(GetMany::call(keys, options), Reply::Lookups)
    }

    /// Queue a SET; answered with [`Reply::Set`].
    pub fn set(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl Into<Bytes>,
        options: &SetOptions,
    ) -> &mut Self {
        self.push(Set::call(bytes(key), value.into(), options), Reply::Set)
    }

    /// Queue a quiet SET: [`Reply::Silent`] when stored, else the outcome
    /// or error.
    pub fn set_quiet(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl Into<Bytes>,
        options: &SetOptions,
    ) -> &mut Self {
        let call = Set::call(bytes(key), value.into(), options).map(Call::quiet);
        self.push(call, Reply::Set)
    }

    /// Queue a DELETE; answered with [`Reply::Deleted`].
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        self.push(Ok(Delete::call(bytes(key))), Reply::Deleted)
    }

    /// Queue a quiet DELETE: [`Reply::Silent`] whether or not the key was
    /// there; only errors are answered.
    pub fn delete_quiet(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        self.push(Ok(Delete::call(bytes(key)).quiet()), Reply::Deleted)
    }

    /// Queue a TOUCH; answered with [`Reply::Touched`].
    pub fn touch(&mut self, key: impl AsRef<[u8]>, ttl: Duration) -> &mut Self {
        self.push(Ok(Touch::call(bytes(key), ttl)), Reply::Touched)
    }

    /// Queue a quiet TOUCH: [`Reply::Silent`] when the key was there,
    /// [`Reply::Touched`]`(false)` when not.
    pub fn touch_quiet(&mut self, key: impl AsRef<[u8]>, ttl: Duration) -> &mut Self {
        self.push(Ok(Touch::call(bytes(key), ttl).quiet()), Reply::Touched)
    }

    /// Queue an INVALIDATE_TAGS; answered with [`Reply::Sequence`].
    pub fn invalidate_tags<T: AsRef<[u8]>>(
        &mut self,
        tags: impl IntoIterator<Item = T>,
    ) -> &mut Self {
        self.push(InvalidateTags::call(tags, None), Reply::Sequence)
    }

    /// Queue a soft INVALIDATE_TAGS with the window `expire` (see
    /// [`Connection::soft_invalidate_tags`]); answered with
    /// [`Reply::Sequence`].
    pub fn soft_invalidate_tags<T: AsRef<[u8]>>(
        &mut self,
        tags: impl IntoIterator<Item = T>,
        expire: Duration,
    ) -> &mut Self {
        self.push(InvalidateTags::call(tags, Some(expire)), Reply::Sequence)
    }

    /// Queue a FLUSH_ALL; answered with [`Reply::Sequence`].
    pub fn flush_all(&mut self) -> &mut Self {
        self.push(Ok(FlushAll::call(None)), Reply::Sequence)
    }

    /// Queue a soft FLUSH_ALL with the window `expire` (see
    /// [`Connection::soft_flush_all`]); answered with [`Reply::Sequence`].
    pub fn soft_flush_all(&mut self, expire: Duration) -> &mut Self {
        self.push(Ok(FlushAll::call(Some(expire))), Reply::Sequence)
    }

    /// Queue a STATS; answered with [`Reply::Stats`].
    pub fn stats(&mut self) -> &mut Self {
        self.push(Ok(Stats::call()), Reply::Stats)
    }

    /// Queue a TAG_STATUS; answered with [`Reply::TagStatus`].
    pub fn tag_status<T: AsRef<[u8]>>(&mut self, tags: impl IntoIterator<Item = T>) -> &mut Self {
        self.push(TagStatus::call(tags), Reply::TagStatus)
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
        execute(self.connection, self.queued).await
    }
}

/// [`Pipeline::execute`] for calls of one kind, answered with their own
/// answers rather than [`Reply`]s.
pub(crate) async fn execute<C: Command>(
    connection: &Connection,
    calls: Vec<Result<Call<C>>>,
) -> Result<Vec<Result<C::Answer>>> {
    let mut batch = Vec::with_capacity(calls.len() + 1);
    let slots: Vec<Slot<C>> = calls
        .into_iter()
        .map(|call| {
            match call.and_then(|call| connection.check_request(&call.request).map(|()| call)) {
                Ok(Call { request, command }) => {
                    let (outgoing, frames) = Outgoing::new(request);
                    batch.push(outgoing);
                    Slot::Sent(frames, command)
                }
                Err(error) => Slot::Refused(error),
            }
        })
        .collect();
    if !batch.is_empty() {
        let Call { request, command } = Noop::call();
        let (barrier, barrier_frames) = Outgoing::new(request);
        batch.push(barrier);
        let link = connection.link();
        connection
            .within_timeout(async {
                link.submit(Submission::Batch(batch)).await?;
                command.answer(link.frames(barrier_frames).await?)
            })
            .await?;
    }
    Ok(slots.into_iter().map(Slot::into_answer).collect())
}

/// A call after submission.
enum Slot<C> {
    Sent(oneshot::Receiver<Frames>, C),
    Refused(Error),
}

impl<C: Command> Slot<C> {
    /// The answer, which the barrier guarantees has arrived.
    fn into_answer(self) -> Result<C::Answer> {
        match self {
            Slot::Sent(mut frames, command) => match frames.try_recv() {
                Ok(frames) => command.answer(frames?),
                Err(_) => Err(Error::protocol(
                    "a pipelined command was not answered before the closing NOOP",
                )),
            },
            Slot::Refused(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use tagcached_protocol::response::{Features, HelloInfo, Lease, Miss};
    use tagcached_protocol::{Limits, Opcode, Outcome, PROTOCOL_VERSION};

    use super::*;
    use crate::driver::Link;

    /// A connection to nobody: pipelines queue on it, nothing is sent.
    fn connection() -> Connection {
        let (client, _server) = tokio::io::duplex(64);
        let (read, write) = tokio::io::split(client);
        let hello = HelloInfo {
            version: PROTOCOL_VERSION,
            shard_count: 1,
            shard: 0,
            hash: HelloInfo::HASH_FNV1A_64,
            features: Features(0),
            limits: Limits::default(),
            server_version: Bytes::new(),
        };
        Connection::new(Link::spawn(read, write, 1), hello, None)
    }

    /// What the pipeline reports when the last command `queue` adds is
    /// answered with `frames`.
    fn reply(queue: impl FnOnce(&mut Pipeline<'_>), frames: Vec<Response>) -> Result<Reply> {
        let connection = connection();
        let mut pipeline = connection.pipeline();
        queue(&mut pipeline);
        let call = pipeline.queued.pop().expect("queued")?;
        call.command.answer(frames)
    }

    /// Queues one command on a pipeline.
    type Queue<'a> = Box<dyn FnOnce(&mut Pipeline<'_>) + 'a>;

    fn frame(opcode: Opcode, outcome: Outcome) -> Vec<Response> {
        vec![Response {
            opaque: 1,
            opcode,
            outcome,
        }]
    }

    #[tokio::test]
    async fn a_quiet_command_without_a_response_is_silent_success() {
        let options = SetOptions::new();
        let set = reply(
            |p| {
                p.set_quiet("k", "v", &options);
            },
            Vec::new(),
        );
        assert_eq!(set.ok(), Some(Reply::Silent));
        let delete = reply(
            |p| {
                p.delete_quiet("k");
            },
            Vec::new(),
        );
        assert_eq!(delete.ok(), Some(Reply::Silent));
    }

    #[tokio::test]
    async fn each_command_maps_its_frame_to_its_reply() {
        let options = SetOptions::new();
        let miss = |key_index| {
            Outcome::Miss(Miss {
                key_index,
                fence: 4,
                lease: Lease::NotRequested,
            })
        };
        let cases: [(Queue<'_>, _, _); 7] = [
            (
                Box::new(|p| {
                    p.ping();
                }),
                frame(Opcode::PING, Outcome::Ok),
                Reply::Pong,
            ),
            (
                Box::new(|p| {
                    p.set("k", "v", &options);
                }),
                frame(Opcode::SET, Outcome::NotStored),
                Reply::Set(SetOutcome::NotStored),
            ),
            (
                Box::new(|p| {
                    p.touch("k", Duration::from_secs(1));
                }),
                frame(Opcode::TOUCH, Outcome::NotFound),
                Reply::Touched(false),
            ),
            (
                Box::new(|p| {
                    p.delete("k");
                }),
                frame(Opcode::DELETE, Outcome::Ok),
                Reply::Deleted(true),
            ),
            (
                Box::new(|p| {
                    p.invalidate_tags(["t"]);
                }),
                frame(Opcode::INVALIDATE_TAGS, Outcome::Sequence(9)),
                Reply::Sequence(9),
            ),
            (
                Box::new(|p| {
                    p.get("k");
                }),
                frame(Opcode::GET, miss(None)),
                Reply::Lookup(Lookup::Miss {
                    fence: 4,
                    lease: None,
                }),
            ),
            (
                Box::new(|p| {
                    p.get_many(["a", "b"]);
                }),
                [
                    frame(Opcode::GETM, miss(Some(0))),
                    frame(Opcode::GETM, miss(Some(1))),
                ]
                .concat(),
                Reply::Lookups(vec![
                    Lookup::Miss {
                        fence: 4,
                        lease: None,
                    };
                    2
                ]),
            ),
        ];
        for (queue, frames, expected) in cases {
            assert_eq!(reply(queue, frames).ok(), Some(expected));
        }
    }

    #[tokio::test]
    async fn a_request_the_servers_features_do_not_cover_is_refused_before_sending() {
        // The test connection's server offers no features.
        let connection = connection();
        let mut pipeline = connection.pipeline();
        pipeline
            .get("k")
            .get_with("k", &ReadOptions::new().allow_stale())
            .get_with("k", &ReadOptions::new().lease())
            .tag_status(["t"]);
        let checked: Vec<Result<()>> = pipeline
            .queued
            .iter()
            .map(|call| {
                let call = call.as_ref().expect("buildable");
                connection.check_request(&call.request)
            })
            .collect();
        assert!(checked[0].is_ok());
        assert!(checked[1..]
            .iter()
            .all(|checked| matches!(checked, Err(Error::Unsupported(_)))));
    }

    #[tokio::test]
    async fn a_command_that_cannot_be_sent_fails_in_its_slot() {
        let none: [&str; 0] = [];
        let refused = reply(
            |p| {
                p.invalidate_tags(none);
            },
            Vec::new(),
        );
        assert!(matches!(refused, Err(Error::InvalidArgument(_))));
    }
}
