//! [`Connection`]: every command, over one pipelined TCP connection.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tagcached_protocol::response::{Features, HelloInfo};
use tagcached_protocol::{Request, HEADER_LEN};

use crate::command::{
    bytes, Call, Command, Delete, FlushAll, Get, GetMany, InvalidateTags, Ping, Set, Stats,
    TagStatus, Touch,
};
use crate::driver::{Link, Outgoing, Submission};
use crate::error::{Error, Result};
use crate::lookup::{Item, Lookup};
use crate::read::ReadOptions;
use crate::set::{SetOptions, SetOutcome};
use crate::tag_status::TagReport;

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
        self.get_with(key, &ReadOptions::new()).await
    }

    /// As [`get_with_fence`](Connection::get_with_fence), and a hit's
    /// [`Item::tags`] are filled in.
    pub async fn get_with_tags(&self, key: impl AsRef<[u8]>) -> Result<Lookup> {
        self.get_with(key, &ReadOptions::new().with_tags()).await
    }

    /// The lookup of `key` as `options` say: with stale data, a refresh
    /// lease, request-scoped tags (protocol.md §6.3).
    ///
    /// ```no_run
    /// # async fn render() -> String { String::new() }
    /// # async fn example(connection: tagcached_client::Connection) -> tagcached_client::Result<()> {
    /// use tagcached_client::{ReadOptions, SetOptions};
    ///
    /// let options = ReadOptions::new().allow_stale().lease();
    /// let lookup = connection.get_with("page:/", &options).await?;
    /// if let Some(lease) = lookup.lease() {
    ///     // This reader refreshes the page; meanwhile the others get the
    ///     // stale copy, or a hot miss if there is none.
    ///     let store = SetOptions::new().tag("pages").fence(lookup.fence()).lease(lease);
    ///     connection.set("page:/", render().await, &store).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn get_with(&self, key: impl AsRef<[u8]>, options: &ReadOptions) -> Result<Lookup> {
        self.run(Get::call(bytes(key), options)).await
    }

    /// One lookup per key, in the order given. Keys beyond the server's
    /// `max_keys_per_getm` are split over several GETMs, sent together.
    pub async fn get_many<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Lookup>> {
        self.get_many_with(keys, &ReadOptions::new()).await
    }

    /// As [`get_many`](Connection::get_many), with each hit's tags.
    pub async fn get_many_with_tags<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Lookup>> {
        self.get_many_with(keys, &ReadOptions::new().with_tags())
            .await
    }

    /// As [`get_many`](Connection::get_many), each key read as `options`
    /// say ([`get_with`](Connection::get_with)); request-scoped tags apply
    /// to every key. With a lease, a key named twice is granted it at most
    /// once (protocol.md §6.4).
    pub async fn get_many_with<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
        options: &ReadOptions,
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
            let Call { request, command } = GetMany::call(chunk.to_vec(), options)?;
            self.check_request(&request)?;
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
        self.run(InvalidateTags::call(tags, None)?).await
    }

    /// Invalidates softly every entry carrying any of `tags` (protocol.md
    /// §8.3): from the answer on they are stale, served only to reads that
    /// allow stale data, and misses once `expire` has passed (rounded up
    /// to whole seconds; zero makes it hard) or a hard invalidation
    /// follows. Reads that do not allow stale data see it as hard at once.
    /// Returns the invalidation sequence assigned; fences taken before it
    /// are refused, as for a hard one.
    pub async fn soft_invalidate_tags<T: AsRef<[u8]>>(
        &self,
        tags: impl IntoIterator<Item = T>,
        expire: Duration,
    ) -> Result<u64> {
        self.run(InvalidateTags::call(tags, Some(expire))?).await
    }

    /// Removes every entry; returns the invalidation sequence assigned, so
    /// fences taken before it are refused.
    pub async fn flush_all(&self) -> Result<u64> {
        self.run(FlushAll::call(None)).await
    }

    /// Makes every entry stale for `expire`, then a miss, as if each had
    /// all its tags invalidated softly (protocol.md §6.9); leases are kept.
    /// Returns the invalidation sequence assigned.
    pub async fn soft_flush_all(&self, expire: Duration) -> Result<u64> {
        self.run(FlushAll::call(Some(expire))).await
    }

    /// What the server knows of each of `tags` (protocol.md §6.11): its
    /// latest hard and soft invalidations and how many entries carry it,
    /// in the order given.
    pub async fn tag_status<T: AsRef<[u8]>>(
        &self,
        tags: impl IntoIterator<Item = T>,
    ) -> Result<TagReport> {
        self.run(TagStatus::call(tags)?).await
    }

    /// The server's counters, as `(name, value)` in the server's order.
    pub async fn stats(&self) -> Result<Vec<(String, String)>> {
        self.run(Stats::call()).await
    }

    /// Sends `call`'s request and reads its answer.
    async fn run<C: Command>(&self, call: Call<C>) -> Result<C::Answer> {
        let Call { request, command } = call;
        self.check_request(&request)?;
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

    /// Whether the server offers `features` (HELLO, protocol.md §6.1).
    pub(crate) fn offers(&self, features: Features) -> bool {
        self.inner.hello.features.contains(features)
    }

    /// Refuses, before sending, a request the server does not offer (it
    /// would answer `BAD_FLAGS` or `UNKNOWN_OPCODE`), and one it would
    /// answer with the fatal `FRAME_TOO_LARGE`: that closes the connection,
    /// failing every other caller's requests with it.
    pub(crate) fn check_request(&self, request: &Request) -> Result<()> {
        let opcode = request.command.opcode();
        let required = Features::required_by(opcode, request.wire_flags());
        if !self.offers(required) {
            return Err(Error::Unsupported(format!(
                "{opcode:?} with flags {:#04x} needs feature bits {:#x}; the server offers {:#x}",
                request.wire_flags().0,
                required.0,
                self.inner.hello.features.0
            )));
        }
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
