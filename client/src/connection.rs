//! [`Connection`]: every command, over one pipelined TCP connection.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tagcached_protocol::request::{Delete, Get, GetMany, InvalidateTags, Touch};
use tagcached_protocol::response::HelloInfo;
use tagcached_protocol::{Command, Flags, Request, Response, HEADER_LEN};
use tokio::net::ToSocketAddrs;

use crate::driver::{Link, Outgoing, Submission};
use crate::error::{Error, Result};
use crate::lookup::{Item, Lookup};
use crate::options::{within, ConnectOptions};
use crate::pipeline::Pipeline;
use crate::reply;
use crate::set::{ttl_seconds, SetOptions, SetOutcome};

/// An async client over one TCP connection to a tagcached server.
///
/// Cheap to clone, and every method takes `&self`: clones and concurrent
/// callers share the connection, their requests pipelined on it (see the
/// crate docs). A pool is a set of these, replacing any whose
/// [`is_closed`](Connection::is_closed) turns true.
///
/// The connection closes when its last clone is dropped, or when it fails;
/// after a failure every request fails at once with the reason.
#[derive(Debug, Clone)]
pub struct Connection {
    inner: Arc<Inner>,
    request_timeout: Option<Duration>,
}

#[derive(Debug)]
struct Inner {
    link: Link,
    hello: HelloInfo,
}

impl Connection {
    pub(crate) fn new(link: Link, hello: HelloInfo, request_timeout: Option<Duration>) -> Self {
        Connection {
            inner: Arc::new(Inner { link, hello }),
            request_timeout,
        }
    }

    /// Connects with default [`ConnectOptions`]: any shard, no timeouts.
    ///
    /// Must run inside a tokio runtime, on which the connection's reader
    /// and writer tasks are spawned.
    pub async fn connect(addr: impl ToSocketAddrs) -> Result<Connection> {
        ConnectOptions::new().connect(addr).await
    }

    /// Connects and asks to be served by `shard` (protocol.md §9), so keys
    /// of that shard need no hop between the server's threads.
    pub async fn connect_to_shard(addr: impl ToSocketAddrs, shard: u16) -> Result<Connection> {
        ConnectOptions::new().shard(shard).connect(addr).await
    }

    /// What the server said at HELLO: version, shards, features, limits.
    pub fn hello_info(&self) -> &HelloInfo {
        &self.inner.hello
    }

    /// The timeout applied to each request made through this handle.
    pub fn request_timeout(&self) -> Option<Duration> {
        self.request_timeout
    }

    /// A handle on the same connection with another request timeout.
    pub fn with_request_timeout(&self, timeout: Option<Duration>) -> Connection {
        Connection {
            inner: Arc::clone(&self.inner),
            request_timeout: timeout,
        }
    }

    /// Whether the connection has closed, so every request will fail.
    pub fn is_closed(&self) -> bool {
        self.inner.link.is_closed()
    }

    /// Checks the server is alive.
    pub async fn ping(&self) -> Result<()> {
        reply::ok(self.call(Flags::NONE, Command::Ping).await?)
    }

    /// The item under `key`, or `None`.
    pub async fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Item>> {
        Ok(self.get_with_fence(key).await?.into_item())
    }

    /// The lookup of `key`, whose miss carries the fence for a later fenced
    /// SET of a recomputed value.
    pub async fn get_with_fence(&self, key: impl AsRef<[u8]>) -> Result<Lookup> {
        self.lookup(key, Flags::NONE).await
    }

    /// As [`get_with_fence`](Connection::get_with_fence), and a hit's
    /// [`Item::tags`] are filled in.
    pub async fn get_with_tags(&self, key: impl AsRef<[u8]>) -> Result<Lookup> {
        self.lookup(key, Flags::WITH_TAGS).await
    }

    async fn lookup(&self, key: impl AsRef<[u8]>, flags: Flags) -> Result<Lookup> {
        let command = Command::Get(Get { key: bytes(key) });
        reply::lookup(self.call(flags, command).await?)
    }

    /// One lookup per key, in the order given. Keys beyond the server's
    /// `max_keys_per_getm` are split over several GETMs, sent together.
    pub async fn get_many<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Lookup>> {
        self.lookup_many(keys, Flags::NONE).await
    }

    /// As [`get_many`](Connection::get_many), with each hit's tags.
    pub async fn get_many_with_tags<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Lookup>> {
        self.lookup_many(keys, Flags::WITH_TAGS).await
    }

    async fn lookup_many<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
        flags: Flags,
    ) -> Result<Vec<Lookup>> {
        let keys: Vec<Bytes> = keys.into_iter().map(bytes).collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let per_request = usize::try_from(self.inner.hello.limits.max_keys_per_getm)
            .unwrap_or(usize::MAX)
            .clamp(1, usize::from(u16::MAX));
        let mut batch = Vec::new();
        let mut pending = Vec::new();
        for chunk in keys.chunks(per_request) {
            let request = Request {
                opaque: 0,
                flags,
                command: Command::GetMany(GetMany {
                    keys: chunk.to_vec(),
                }),
            };
            self.check_frame(&request)?;
            let (outgoing, frames) = Outgoing::new(request);
            batch.push(outgoing);
            pending.push((frames, chunk.len()));
        }
        let link = &self.inner.link;
        within(self.request_timeout, async {
            link.submit(Submission::Batch(batch)).await?;
            let mut lookups = Vec::with_capacity(keys.len());
            for (frames, key_count) in pending {
                lookups.extend(reply::lookups(link.frames(frames).await?, key_count)?);
            }
            Ok(lookups)
        })
        .await
    }

    /// Stores `value` under `key` as `options` say.
    ///
    /// ```no_run
    /// # async fn example(connection: tagcached_client::Connection) -> tagcached_client::Result<()> {
    /// use std::time::Duration;
    /// use tagcached_client::SetOptions;
    ///
    /// let options = SetOptions::new().ttl(Duration::from_secs(60)).tag("user:42");
    /// let outcome = connection.set("user:42:profile", "{...}", &options).await?;
    /// assert!(outcome.is_stored());
    /// # Ok(()) }
    /// ```
    pub async fn set(
        &self,
        key: impl AsRef<[u8]>,
        value: impl Into<Bytes>,
        options: &SetOptions,
    ) -> Result<SetOutcome> {
        let command = Command::Set(options.to_command(bytes(key), value.into())?);
        reply::set_outcome(self.call(Flags::NONE, command).await?)
    }

    /// Removes `key`; whether a live entry was there.
    pub async fn delete(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        let command = Command::Delete(Delete { key: bytes(key) });
        reply::found(self.call(Flags::NONE, command).await?)
    }

    /// Resets the TTL of `key` (rounded up to whole seconds; zero: never
    /// expire); whether a live entry was there.
    pub async fn touch(&self, key: impl AsRef<[u8]>, ttl: Duration) -> Result<bool> {
        let command = Command::Touch(Touch {
            ttl: ttl_seconds(ttl),
            key: bytes(key),
        });
        reply::found(self.call(Flags::NONE, command).await?)
    }

    /// Invalidates every entry carrying any of `tags`, on every shard;
    /// returns the invalidation sequence assigned. Once this returns, no
    /// read anywhere sees those entries (protocol.md §8.2).
    pub async fn invalidate_tags<T: AsRef<[u8]>>(
        &self,
        tags: impl IntoIterator<Item = T>,
    ) -> Result<u64> {
        let command = invalidate_command(tags)?;
        reply::sequence(self.call(Flags::NONE, command).await?)
    }

    /// Removes every entry; returns the invalidation sequence assigned, so
    /// fences taken before it are refused.
    pub async fn flush_all(&self) -> Result<u64> {
        reply::sequence(self.call(Flags::NONE, Command::FlushAll).await?)
    }

    /// The server's counters, as `(name, value)` in the server's order.
    pub async fn stats(&self) -> Result<Vec<(String, String)>> {
        reply::stats(self.call(Flags::NONE, Command::Stats).await?)
    }

    /// A batch of commands sent back to back and answered in one round
    /// trip; see [`Pipeline`].
    pub fn pipeline(&self) -> Pipeline<'_> {
        Pipeline::new(self)
    }

    /// Sends one single-frame request and waits for its frame.
    async fn call(&self, flags: Flags, command: Command) -> Result<Response> {
        let request = Request {
            opaque: 0,
            flags,
            command,
        };
        self.check_frame(&request)?;
        let frames = self
            .within_timeout(self.inner.link.round_trip(request))
            .await?;
        reply::single(frames)
    }

    pub(crate) fn link(&self) -> &Link {
        &self.inner.link
    }

    pub(crate) async fn within_timeout<T>(
        &self,
        future: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        within(self.request_timeout, future).await
    }

    /// Refuses, before sending, a request the server would answer with the
    /// fatal `FRAME_TOO_LARGE`: that closes the connection, failing every
    /// other caller's requests with it.
    pub(crate) fn check_frame(&self, request: &Request) -> Result<()> {
        let body = request.encoded_len() - HEADER_LEN;
        let max_frame = self.inner.hello.limits.max_frame;
        if u32::try_from(body).map_or(true, |body| body > max_frame) {
            return Err(Error::InvalidArgument(format!(
                "{:?} request of {body} bytes exceeds the server's max_frame of {max_frame}",
                request.command.opcode()
            )));
        }
        Ok(())
    }
}

pub(crate) fn bytes(value: impl AsRef<[u8]>) -> Bytes {
    Bytes::copy_from_slice(value.as_ref())
}

/// The INVALIDATE_TAGS body; refuses counts the wire cannot carry.
pub(crate) fn invalidate_command<T: AsRef<[u8]>>(
    tags: impl IntoIterator<Item = T>,
) -> Result<Command> {
    let tags: Vec<Bytes> = tags.into_iter().map(bytes).collect();
    if tags.is_empty() || tags.len() > usize::from(u16::MAX) {
        return Err(Error::InvalidArgument(format!(
            "{} tags; INVALIDATE_TAGS takes 1..={}",
            tags.len(),
            u16::MAX
        )));
    }
    Ok(Command::InvalidateTags(InvalidateTags { tags }))
}

/// The GETM body; refuses counts the wire cannot carry.
pub(crate) fn get_many_command<K: AsRef<[u8]>>(
    keys: impl IntoIterator<Item = K>,
) -> Result<Command> {
    let keys: Vec<Bytes> = keys.into_iter().map(bytes).collect();
    if keys.is_empty() || keys.len() > usize::from(u16::MAX) {
        return Err(Error::InvalidArgument(format!(
            "{} keys; one GETM takes 1..={}",
            keys.len(),
            u16::MAX
        )));
    }
    Ok(Command::GetMany(GetMany { keys }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalidating_no_tags_is_refused_before_sending() {
        let none: [&str; 0] = [];
        assert!(matches!(
            invalidate_command(none),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            invalidate_command(["a", "b"]),
            Ok(Command::InvalidateTags(InvalidateTags { tags })) if tags.len() == 2
        ));
    }

    #[test]
    fn a_getm_the_wire_cannot_count_is_refused_before_sending() {
        let none: [&str; 0] = [];
        assert!(matches!(
            get_many_command(none),
            Err(Error::InvalidArgument(_))
        ));
        let too_many = (0..=u32::from(u16::MAX)).map(|n| n.to_string());
        assert!(matches!(
            get_many_command(too_many),
            Err(Error::InvalidArgument(_))
        ));
    }
}
