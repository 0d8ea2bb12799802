//! [`Connection`]: every command, over one pipelined TCP connection.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tagcached_protocol::response::HelloInfo;
use tagcached_protocol::{Request, HEADER_LEN};

use crate::command::{
    bytes, Call, Command, Delete, FlushAll, Get, GetMany, InvalidateTags, Ping, Set, Stats, Touch,
};
use crate::driver::{Link, Outgoing, Submission};
use crate::error::{Error, Result};
use crate::lookup::{Item, Lookup};
use crate::set::{SetOptions, SetOutcome};

/// An async client over one TCP connection to a tagcached server, opened
/// with [`Connection::connect`] or, for a shard, a name or timeouts, with
/// [`ConnectOptions`](crate::ConnectOptions).
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
        self.run(Ping::call()).await
    }

    /// The item under `key`, or `None`.
    pub async fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Item>> {
        Ok(self.get_with_fence(key).await?.into_item())
    }

    /// The lookup of `key`, whose miss carries the fence for a later fenced
    /// SET of a recomputed value.
    pub async fn get_with_fence(&self, key: impl AsRef<[u8]>) -> Result<Lookup> {
        self.run(Get::call(bytes(key), false)).await
    }

    /// As [`get_with_fence`](Connection::get_with_fence), and a hit's
    /// [`Item::tags`] are filled in.
    pub async fn get_with_tags(&self, key: impl AsRef<[u8]>) -> Result<Lookup> {
        self.run(Get::call(bytes(key), true)).await
    }

    /// One lookup per key, in the order given. Keys beyond the server's
    /// `max_keys_per_getm` are split over several GETMs, sent together.
    pub async fn get_many<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Lookup>> {
        self.lookup_many(keys, false).await
    }

    /// As [`get_many`](Connection::get_many), with each hit's tags.
    pub async fn get_many_with_tags<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Lookup>> {
        self.lookup_many(keys, true).await
    }

    async fn lookup_many<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
        with_tags: bool,
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
            let Call { request, command } = GetMany::call(chunk.to_vec(), with_tags)?;
            self.check_frame(&request)?;
            let (outgoing, frames) = Outgoing::new(request);
            batch.push(outgoing);
            pending.push((frames, command));
        }
        let link = &self.inner.link;
        within(self.request_timeout, async {
            link.submit(Submission::Batch(batch)).await?;
            let mut lookups = Vec::with_capacity(keys.len());
            for (frames, command) in pending {
                lookups.extend(command.answer(link.frames(frames).await?)?);
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
        self.run(Set::call(bytes(key), value.into(), options)?)
            .await
    }

    /// Removes `key`; whether a live entry was there.
    pub async fn delete(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        self.run(Delete::call(bytes(key))).await
    }

    /// Resets the TTL of `key` (rounded up to whole seconds; zero: never
    /// expire); whether a live entry was there.
    pub async fn touch(&self, key: impl AsRef<[u8]>, ttl: Duration) -> Result<bool> {
        self.run(Touch::call(bytes(key), ttl)).await
    }

    /// Invalidates every entry carrying any of `tags`, on every shard;
    /// returns the invalidation sequence assigned. Once this returns, no
    /// read anywhere sees those entries (protocol.md §8.2).
    pub async fn invalidate_tags<T: AsRef<[u8]>>(
        &self,
        tags: impl IntoIterator<Item = T>,
    ) -> Result<u64> {
        self.run(InvalidateTags::call(tags)?).await
    }

    /// Removes every entry; returns the invalidation sequence assigned, so
    /// fences taken before it are refused.
    pub async fn flush_all(&self) -> Result<u64> {
        self.run(FlushAll::call()).await
    }

    /// The server's counters, as `(name, value)` in the server's order.
    pub async fn stats(&self) -> Result<Vec<(String, String)>> {
        self.run(Stats::call()).await
    }

    /// Sends `call`'s request and reads its answer.
    async fn run<C: Command>(&self, call: Call<C>) -> Result<C::Answer> {
        let Call { request, command } = call;
        self.check_frame(&request)?;
        let frames = self
            .within_timeout(self.inner.link.round_trip(request))
            .await?;
        command.answer(frames)
    }

    pub(crate) fn link(&self) -> &Link {
        &self.inner.link
    }

    pub(crate) async fn within_timeout<T>(
        &self,
        future: impl Future<Output = Result<T>>,
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

/// Runs `future`, failing with [`Error::Timeout`] after `limit` if given.
pub(crate) async fn within<T>(
    limit: Option<Duration>,
    future: impl Future<Output = Result<T>>,
) -> Result<T> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, future)
            .await
            .unwrap_or(Err(Error::Timeout(limit))),
        None => future.await,
    }
}
