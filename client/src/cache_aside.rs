//! Cache-aside in one call: read, or compute and store with the read's
//! fence.
//!
//! The fence is what makes this safe to run next to invalidations. A miss
//! carries the server's invalidation sequence at the time of the read; the
//! SET carries it back, and the server refuses the SET (FENCED) if one of
//! the value's tags was invalidated in between, so a value computed from
//! data read before an invalidation is never stored after it. The computed
//! value is still returned to the caller: it is as fresh as the caller's
//! own read of the source, it just may not be cached.
//!
//! The cache is an optimisation here, not a dependency: when the cache
//! cannot be used ([`Error::is_unavailable`]: down, unreachable, timed out)
//! the value is computed and returned without caching. Errors that would
//! recur on every call (a key or tag the server refuses, a value too large)
//! are returned, so they are found in testing rather than silently costing
//! every request a recomputation.
//!
//! Concurrent misses of one key each compute the value (there is no
//! single-flight across callers or processes); the fence keeps every one of
//! their SETs safe, the last to arrive wins.
//!
//! **One server per call.** A fence is a number of the server that gave
//! it, and says nothing about another server's invalidations (protocol.md
//! §8.2). So the read and its SET go to the same server: the one the key
//! was routed to when the call began, even if
//! [`failover`](crate::ClientBuilder::failover) routes the key elsewhere by
//! the time the value is computed. If that server is unavailable by then,
//! the value is returned uncached. The SET is never sent unfenced: without
//! a fence from the server that would store it, nothing shows that the
//! value was computed after the last invalidation of its tags there, so
//! that is never safe here; a read that failed stores nothing.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::lookup::Lookup;
use crate::placement::key_hash;
use crate::set::SetOptions;

impl Client {
    /// The value under `key`; on a miss, `compute`s it, stores it with
    /// `tags` and `ttl` (fenced by the miss), and returns it.
    ///
    /// ```no_run
    /// # async fn load_profile_from_database(id: u64) -> String { String::new() }
    /// # async fn example(cache: tagcached_client::Client) -> tagcached_client::Result<()> {
    /// use std::time::Duration;
    ///
    /// let profile = cache
    ///     .get_or_set_with("user:42:profile", ["user:42"], Duration::from_secs(600), || async {
    ///         load_profile_from_database(42).await
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// If an invalidation of one of `tags` lands between the miss and the
    /// SET, the SET is refused (FENCED) and the value is returned without
    /// being cached. If the cache is unavailable the value is computed and
    /// returned without being cached; other cache errors are returned. The
    /// miss and the SET go to the same server, even with failover on (see
    /// the module docs).
    pub async fn get_or_set_with<K, T, F, Fut, V>(
        &self,
        key: K,
        tags: impl IntoIterator<Item = T>,
        ttl: Duration,
        compute: F,
    ) -> Result<Bytes>
    where
        K: AsRef<[u8]>,
        T: AsRef<[u8]>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
        V: Into<Bytes>,
    {
        self.try_get_or_set_with(key, tags, ttl, || async { Ok::<V, Error>(compute().await) })
            .await
    }

    /// As [`get_or_set_with`](Client::get_or_set_with) for a computation
    /// that can fail: its error is returned and nothing is stored. The
    /// error type must take the client's errors too.
    pub async fn try_get_or_set_with<K, T, F, Fut, V, E>(
        &self,
        key: K,
        tags: impl IntoIterator<Item = T>,
        ttl: Duration,
        compute: F,
    ) -> std::result::Result<Bytes, E>
    where
        K: AsRef<[u8]>,
        T: AsRef<[u8]>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<V, E>>,
        V: Into<Bytes>,
        E: From<Error>,
    {
        let options = SetOptions::new().ttl(ttl).tags(tags);
        self.cache_aside(
            key.as_ref(),
            options,
            |value| Some(value.clone()),
            || async { compute().await.map(Into::into) },
            |value| Ok(value.clone()),
        )
        .await
    }

    /// The shared cache-aside: `decode` turns a hit into a value (`None`:
    /// treat it as a miss, e.g. a value stored by an older version of the
    /// type), `encode` turns a computed value into bytes.
    pub(crate) async fn cache_aside<V, E, F, Fut>(
        &self,
        key: &[u8],
        options: SetOptions,
        decode: impl FnOnce(&Bytes) -> Option<V>,
        compute: F,
        encode: impl FnOnce(&V) -> Result<Bytes>,
    ) -> std::result::Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<V, E>>,
        E: From<Error>,
    {
        // Chosen once: the SET must go where the fence came from.
        let server = self.route(key_hash(key));
        let fence = match self.get_with_fence_on(server, key).await {
            Ok(Lookup::Hit(item)) => match decode(&item.value) {
                Some(value) => return Ok(value),
                // Undecodable: overwrite it, fenced by the hit's fence.
                None => Some(item.fence),
            },
            Ok(Lookup::Miss { fence }) => Some(fence),
            Err(error) if error.is_unavailable() => None,
            Err(error) => return Err(error.into()),
        };
        let value = compute().await?;
        // Without a fence (the read failed) nothing says the value is not
        // stale by the time it would be stored, so it is not cached.
        if let Some(fence) = fence {
            let encoded = encode(&value)?;
            match self
                .set_on(server, key, encoded, &options.fence(fence))
                .await
            {
                // Stored, or FENCED: return the value either way.
                Ok(_) => {}
                Err(error) if error.is_unavailable() => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(value)
    }
}
