//! Cache-aside in one call: read, or compute and store, with one computer
//! per key across every process, and stale copies served meanwhile if the
//! caller allows them.
//!
//! **Fences.** Every read carries the server's invalidation sequence; the
//! SET carries it back, and the server refuses the SET (FENCED) if one of
//! the value's tags was invalidated in between, so a value computed from
//! data read before an invalidation is never stored after it. That holds
//! for tags declared while computing too ([`FetchContext::tag`]): the
//! fence is a point in time, and the server checks every tag of the SET
//! against it. A refused value is still returned to the caller: it is as
//! fresh as the caller's own read of the source, it just is not cached.
//!
//! **Leases.** Where the server offers them (protocol.md §8.4), the read
//! asks for the key's refresh lease. The first caller, in any process,
//! that finds no fresh value is granted it and computes; the others are
//! told someone is recomputing (HOT_MISS) and read again after a short,
//! growing pause (from [`FetchOptions::FIRST_PAUSE`] up to
//! [`FetchOptions::LONGEST_PAUSE`]), until the value lands
//! ([`FetchOutcome::Waited`]), or the lease passes to one of them (the
//! holder gave it up, or its lease time ran out: that one computes), or
//! [`FetchOptions::max_wait`] has passed: then each computes the value
//! itself and stores it fenced, so a computer that died or hangs costs the
//! others at most that wait, at the price of their computing at once. The
//! holder's SET carries its lease and is refused (LEASE_LOST) if the lease
//! was superseded, by a DELETE or another SET of the key, meanwhile. If
//! `compute` fails, its error is returned, nothing is stored, and the lease
//! is given up, so that a waiting caller is granted it and tries in turn. A
//! call dropped while it computes (a cancelled request) cannot give its
//! lease up: it lapses at the server's lease time.
//!
//! **Stale copies.** With [`FetchOptions::serve_stale`], a stale entry (its
//! tag was invalidated softly, or its `stale_after` passed) is served at
//! once to every caller but one, as [`FetchOutcome::Stale`]; that one holds
//! the lease and refreshes the value *inline*: its call returns the fresh
//! value once computed and stored. Refreshing in the background would need
//! the computation to outlive the call (`'static`), which cache-aside over
//! borrowed state cannot promise.
//!
//! The cache is an optimisation here, not a dependency: when the cache
//! cannot be used ([`Error::is_unavailable`]: down, unreachable, timed out)
//! the value is computed and returned without caching
//! ([`FetchOutcome::Uncached`]). Errors that would recur on every call (a
//! key or tag the server refuses, a value too large) are returned, so they
//! are found in testing rather than silently costing every request a
//! recomputation.
//!
//! **One server per call.** Fences and leases are the server's that gave
//! them, and say nothing to another (protocol.md §8.2). So every read and
//! the SET go to the same server: the one the key was routed to when the
//! call began, even if [`failover`](crate::ClientBuilder::failover) routes
//! the key elsewhere by the time the value is computed. If that server is
//! unavailable by then, the value is returned uncached. The SET is never
//! sent unfenced: without a fence from the server that would store it,
//! nothing shows that the value was computed after the last invalidation
//! of its tags there; a read that failed stores nothing.
//!
//! A server without leases or stale reads (HELLO's feature bits) is used
//! as a version 1 server: every caller that misses computes, fenced, and
//! nothing stale is served or declared.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tagcached_protocol::request::SetMode;
use tagcached_protocol::response::Features;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::lookup::{Item, LeaseToken, Lookup};
use crate::placement::key_hash;
use crate::read::ReadOptions;
use crate::set::{SetOptions, SetOutcome};

/// How [`Client::fetch`] reads, waits and stores.
///
/// ```
/// use std::time::Duration;
/// use tagcached_client::FetchOptions;
///
/// // Fresh for a minute, then served stale (while one caller refreshes it)
/// // until the hour is up.
/// let options = FetchOptions::new()
///     .tag("posts")
///     .ttl(Duration::from_secs(3600))
///     .stale_after(Duration::from_secs(60))
///     .serve_stale(true);
/// assert_eq!(options.max_wait, FetchOptions::DEFAULT_MAX_WAIT);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOptions {
    /// The stored value's time to live (rounded up to whole seconds; zero:
    /// no expiry). The computation may change it ([`FetchContext::ttl`]).
    pub ttl: Duration,
    /// The stored value's tags; the computation may add more
    /// ([`FetchContext::tag`]).
    pub tags: Vec<Bytes>,
    /// After how long the stored value turns stale ([`SetOptions::stale_after`]);
    /// the computation may change it ([`FetchContext::stale_after`]).
    pub stale_after: Option<Duration>,
    /// Serve a stale value at once while one caller refreshes it; without
    /// it a stale value is a miss, and callers wait for the fresh one.
    pub serve_stale: bool,
    /// How long a caller waits for another's computation before it
    /// computes the value itself (see the module docs).
    pub max_wait: Duration,
}

impl FetchOptions {
    /// The default [`max_wait`](FetchOptions::max_wait): 5 seconds, half the
    /// server's default lease time, so that a computer that died costs its
    /// waiters less than the lease takes to pass on, and longer than most
    /// page renders and queries take.
    pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(5);

    /// The first pause of a caller told that someone else is computing the
    /// value; each further pause doubles, up to
    /// [`LONGEST_PAUSE`](FetchOptions::LONGEST_PAUSE). Pauses are shortened
    /// at random by up to half, so that callers that started together do
    /// not read together.
    pub const FIRST_PAUSE: Duration = Duration::from_millis(10);

    /// The longest pause between two reads of a caller waiting for someone
    /// else's value.
    pub const LONGEST_PAUSE: Duration = Duration::from_millis(200);

    /// No TTL, no tags, no stale window, no stale values served, the
    /// default wait.
    pub fn new() -> FetchOptions {
        FetchOptions::default()
    }

    /// Expire after `ttl` ([`FetchOptions::ttl`]).
    pub fn ttl(mut self, ttl: Duration) -> FetchOptions {
        self.ttl = ttl;
        self
    }

    /// Add one tag.
    pub fn tag(mut self, tag: impl AsRef<[u8]>) -> FetchOptions {
        self.tags.push(Bytes::copy_from_slice(tag.as_ref()));
        self
    }

    /// Add several tags.
    pub fn tags<T: AsRef<[u8]>>(mut self, tags: impl IntoIterator<Item = T>) -> FetchOptions {
        self.tags.extend(
            tags.into_iter()
                .map(|tag| Bytes::copy_from_slice(tag.as_ref())),
        );
        self
    }

    /// Turn stale after `stale_after` ([`FetchOptions::stale_after`]).
    pub fn stale_after(mut self, stale_after: Duration) -> FetchOptions {
        self.stale_after = Some(stale_after);
        self
    }

    /// Whether to serve stale values ([`FetchOptions::serve_stale`]).
    pub fn serve_stale(mut self, serve_stale: bool) -> FetchOptions {
        self.serve_stale = serve_stale;
        self
    }

    /// Wait at most `max_wait` for another caller's value
    /// ([`FetchOptions::max_wait`]).
    pub fn max_wait(mut self, max_wait: Duration) -> FetchOptions {
        self.max_wait = max_wait;
        self
    }
}

impl Default for FetchOptions {
    fn default() -> FetchOptions {
        FetchOptions {
            ttl: Duration::ZERO,
            tags: Vec::new(),
            stale_after: None,
            serve_stale: false,
            max_wait: FetchOptions::DEFAULT_MAX_WAIT,
        }
    }
}

/// What the computation of [`Client::fetch`] may declare about the value
/// while it computes it: more tags (as Next.js's `cacheTag()` inside a
/// `'use cache'` function, or Drupal's bubbled cache tags), its TTL and its
/// stale window. The SET that stores the value uses what was declared by
/// the time the computation returns.
///
/// A handle: clones share what is declared, so it can be handed to the
/// helpers the computation calls.
#[derive(Debug, Clone)]
pub struct FetchContext {
    /// What the SET will store with: TTL, tags and stale window so far.
    declared: Arc<Mutex<SetOptions>>,
}

impl FetchContext {
    fn new(options: &FetchOptions) -> FetchContext {
        let declared = SetOptions {
            ttl: options.ttl,
            tags: options.tags.clone(),
            stale_after: options.stale_after,
            ..SetOptions::default()
        };
        FetchContext {
            declared: Arc::new(Mutex::new(declared)),
        }
    }

    fn update(&self, change: impl FnOnce(SetOptions) -> SetOptions) {
        // Nothing can be left half-changed by a panic here, so a poisoned
        // lock is used as is.
        let mut declared = self.declared.lock().unwrap_or_else(PoisonError::into_inner);
        *declared = change(std::mem::take(&mut *declared));
    }

    fn declared(&self) -> SetOptions {
        self.declared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Tag the value with `tag` too.
    pub fn tag(&self, tag: impl AsRef<[u8]>) {
        self.update(|declared| declared.tag(tag));
    }

    /// Tag the value with each of `tags` too.
    pub fn tags<T: AsRef<[u8]>>(&self, tags: impl IntoIterator<Item = T>) {
        self.update(|declared| declared.tags(tags));
    }

    /// Store the value with this TTL instead.
    pub fn ttl(&self, ttl: Duration) {
        self.update(|declared| declared.ttl(ttl));
    }

    /// Store the value with this stale window instead.
    pub fn stale_after(&self, stale_after: Duration) {
        self.update(|declared| declared.stale_after(stale_after));
    }
}

/// How a [`Client::fetch`] got its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchOutcome {
    /// A fresh value from the cache.
    Hit,
    /// A stale value from the cache, served while another caller refreshes
    /// it ([`FetchOptions::serve_stale`]).
    Stale,
    /// Another caller (maybe in another process) computed the value while
    /// this one waited for it.
    Waited,
    /// Computed here, and stored.
    Computed,
    /// Computed here; the server refused to store it ([`SetOutcome::Fenced`]:
    /// one of its tags was invalidated while it was computed;
    /// [`SetOutcome::LeaseLost`]: the key was deleted or stored by someone
    /// else meanwhile). The value is returned, not cached.
    Refused(SetOutcome),
    /// Computed here without the cache, which could not be used
    /// ([`Error::is_unavailable`]); nothing stored.
    Uncached,
}

/// A value from [`Client::fetch`], and how it was got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The value.
    pub value: Bytes,
    /// Where it came from.
    pub outcome: FetchOutcome,
}

/// The right to store a computed value: the fence of the read that called
/// for it, and the lease if that read granted one.
struct Grant {
    fence: u64,
    lease: Option<LeaseToken>,
}

/// Where a read leaves a fetch.
enum Next<V> {
    /// Done, with a value from the cache.
    Done(V, FetchOutcome),
    /// Compute the value; store it under the grant, if there is one.
    Compute(Option<Grant>),
    /// Someone else is computing: read again, or give up waiting.
    Wait { fence: u64 },
}

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
    ///
    /// Concurrent misses of the key, in this process or others, compute it
    /// once where the server offers leases: the others wait for that value
    /// (up to [`FetchOptions::DEFAULT_MAX_WAIT`], then compute it
    /// themselves). Stale values are never returned. [`fetch`](Client::fetch)
    /// offers more, and says what happened.
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
        let options = FetchOptions::new().ttl(ttl).tags(tags);
        let fetched = self.fetch(key, &options, |_| compute()).await?;
        Ok(fetched.value)
    }

    /// The value under `key` as `options` say, computed by `compute` where
    /// the cache has no value to give; and how it was got.
    ///
    /// `compute` gets a [`FetchContext`] on which it may declare, while it
    /// computes, more tags for the value, and its TTL and stale window. Its
    /// error is returned, and nothing is stored; the error type must take
    /// the client's errors too. See the module docs for who computes, who
    /// waits and who is served a stale value.
    ///
    /// ```no_run
    /// # struct Post { id: u64 }
    /// # async fn load_posts() -> tagcached_client::Result<Vec<Post>> { Ok(Vec::new()) }
    /// # fn render(posts: &[Post]) -> String { format!("{} posts", posts.len()) }
    /// # async fn example(cache: tagcached_client::Client) -> tagcached_client::Result<()> {
    /// use std::time::Duration;
    /// use tagcached_client::{FetchOptions, FetchOutcome};
    ///
    /// // Served stale at once while one caller, in any process, renders it
    /// // anew; the tags it depends on are declared while it renders.
    /// let options = FetchOptions::new()
    ///     .tag("blog")
    ///     .ttl(Duration::from_secs(86_400))
    ///     .serve_stale(true);
    /// let page = cache
    ///     .fetch("page:/blog", &options, |cx| async move {
    ///         let posts = load_posts().await?;
    ///         cx.tags(posts.iter().map(|post| format!("post:{}", post.id)));
    ///         Ok::<_, tagcached_client::Error>(render(&posts))
    ///     })
    ///     .await?;
    /// let stale = page.outcome == FetchOutcome::Stale;
    ///
    /// // Post 7 changed: pages built from it are served stale for up to an
    /// // hour while they are refreshed, then they miss.
    /// cache.soft_invalidate_tags(["post:7"], Duration::from_secs(3600)).await?;
    /// # drop(stale);
    /// # Ok(()) }
    /// ```
    pub async fn fetch<K, F, Fut, V, E>(
        &self,
        key: K,
        options: &FetchOptions,
        compute: F,
    ) -> std::result::Result<Fetched, E>
    where
        K: AsRef<[u8]>,
        F: FnOnce(FetchContext) -> Fut,
        Fut: Future<Output = std::result::Result<V, E>>,
        V: Into<Bytes>,
        E: From<Error>,
    {
        let (value, outcome) = self
            .cache_aside(
                key.as_ref(),
                options,
                |value| Some(value.clone()),
                |context| async { compute(context).await.map(Into::into) },
                |value| Ok(value.clone()),
            )
            .await?;
        Ok(Fetched { value, outcome })
    }

    /// The shared cache-aside: `decode` turns a cached value into a `V`
    /// (`None`: treat it as a miss, e.g. a value stored by an older version
    /// of the type), `encode` turns a computed value into bytes.
    pub(crate) async fn cache_aside<V, E, F, Fut>(
        &self,
        key: &[u8],
        options: &FetchOptions,
        decode: impl Fn(&Bytes) -> Option<V>,
        compute: F,
        encode: impl FnOnce(&V) -> Result<Bytes>,
    ) -> std::result::Result<(V, FetchOutcome), E>
    where
        F: FnOnce(FetchContext) -> Fut,
        Fut: Future<Output = std::result::Result<V, E>>,
        E: From<Error>,
    {
        // Chosen once: the SET must go where the fence and the lease came
        // from.
        let server = self.route(key_hash(key));
        let deadline = Instant::now() + options.max_wait;
        let mut pause = FetchOptions::FIRST_PAUSE;
        let mut waited = false;
        let grant = loop {
            let lookup = self
                .get_on(server, key, |connection| read_options(connection, options))
                .await;
            let fence = match after_read(lookup, &decode, waited)? {
                Next::Done(value, outcome) => return Ok((value, outcome)),
                Next::Compute(grant) => break grant,
                Next::Wait { fence } => fence,
            };
            let now = Instant::now();
            if now >= deadline {
                // The holder is slow or gone: compute, and store fenced.
                break Some(Grant { fence, lease: None });
            }
            tokio::time::sleep(jittered(pause).min(deadline - now)).await;
            pause = (pause * 2).min(FetchOptions::LONGEST_PAUSE);
            waited = true;
        };
        let context = FetchContext::new(options);
        let value = match compute(context.clone()).await {
            Ok(value) => value,
            Err(error) => {
                if let Some(Grant {
                    lease: Some(lease), ..
                }) = grant
                {
                    self.release(server, key, lease).await;
                }
                return Err(error);
            }
        };
        let Some(grant) = grant else {
            // Without a fence (the read failed) nothing says the value is
            // not stale by the time it would be stored.
            return Ok((value, FetchOutcome::Uncached));
        };
        let declared = context.declared();
        let stored = self
            .set_on(server, key, encode(&value)?, |connection| {
                set_options(connection, declared, grant)
            })
            .await;
        let outcome = match stored {
            Ok(SetOutcome::Stored { .. }) => FetchOutcome::Computed,
            Ok(refused) => FetchOutcome::Refused(refused),
            Err(error) if error.is_unavailable() => FetchOutcome::Uncached,
            Err(error) => return Err(error.into()),
        };
        Ok((value, outcome))
    }

    /// Gives up the lease `lease` on `key` without storing anything, so
    /// that the callers waiting for its value are granted it at their next
    /// read instead of waiting for it to lapse. A SET with the lease ends it
    /// whatever its outcome, and is checked for the lease before anything
    /// else (protocol.md §6.5): a superseded lease is left alone. Mode CAS
    /// with the CAS value 0, which marks "no CAS value" on the wire and
    /// which no entry has, never stores. Best effort: if this fails, the
    /// lease lapses at the server's lease time.
    async fn release(&self, server: usize, key: &[u8], lease: LeaseToken) {
        let release = SetOptions::new().mode(SetMode::Cas(0)).lease(lease);
        let _ = self.set_on(server, key, Bytes::new(), |_| release).await;
    }
}

/// What a read of `lookup` leaves a fetch to do; `waited` says whether it
/// waited for someone else's value before.
fn after_read<V>(
    lookup: Result<Lookup>,
    decode: impl Fn(&Bytes) -> Option<V>,
    waited: bool,
) -> Result<Next<V>> {
    let refresh = |item: &Item, lease| {
        Next::Compute(Some(Grant {
            fence: item.fence,
            lease,
        }))
    };
    Ok(match lookup {
        Ok(Lookup::Hit(item)) => match decode(&item.value) {
            Some(value) if waited => Next::Done(value, FetchOutcome::Waited),
            Some(value) => Next::Done(value, FetchOutcome::Hit),
            // Undecodable: overwrite it, fenced by the read.
            None => refresh(&item, None),
        },
        Ok(Lookup::Stale { item, lease: None }) => match decode(&item.value) {
            Some(value) => Next::Done(value, FetchOutcome::Stale),
            None => refresh(&item, None),
        },
        Ok(Lookup::Stale { item, lease }) => refresh(&item, lease),
        Ok(Lookup::Miss { fence, lease }) => Next::Compute(Some(Grant { fence, lease })),
        Ok(Lookup::HotMiss { fence }) => Next::Wait { fence },
        Err(error) if error.is_unavailable() => Next::Compute(None),
        Err(error) => return Err(error),
    })
}

/// How a fetch reads on `connection`: with a lease, and stale values if
/// asked for, where the server offers them.
fn read_options(connection: &crate::Connection, options: &FetchOptions) -> ReadOptions {
    ReadOptions {
        lease: connection.offers(Features::LEASES),
        allow_stale: options.serve_stale && connection.offers(Features::STALE_WHILE_REVALIDATE),
        ..ReadOptions::default()
    }
}

/// How a fetch stores on `connection` what was `declared`, under `grant`;
/// a stale window only where the server offers one.
fn set_options(connection: &crate::Connection, declared: SetOptions, grant: Grant) -> SetOptions {
    let stale_after = declared
        .stale_after
        .filter(|_| connection.offers(Features::STALE_WHILE_REVALIDATE));
    SetOptions {
        fence: Some(grant.fence),
        lease: grant.lease,
        stale_after,
        ..declared
    }
}

/// `pause` shortened at random by up to half.
fn jittered(pause: Duration) -> Duration {
    // A randomly keyed hasher's output is random enough to spread pauses,
    // without a dependency for it.
    let random = RandomState::new().hash_one(0u8);
    let fraction = (random % 1024) as f64 / 2048.0;
    pause.mul_f64(1.0 - fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(value: &'static [u8]) -> Item {
        Item {
            value: Bytes::from_static(value),
            cas: 1,
            client_flags: 0,
            fence: 7,
            tags: Vec::new(),
        }
    }

    fn next(lookup: Result<Lookup>, waited: bool) -> Next<Bytes> {
        let decode = |value: &Bytes| (value != "undecodable").then(|| value.clone());
        after_read(lookup, decode, waited).expect("not an error")
    }

    fn outcome(next: Next<Bytes>) -> Option<FetchOutcome> {
        match next {
            Next::Done(_, outcome) => Some(outcome),
            _ => None,
        }
    }

    fn grant(next: Next<Bytes>) -> Option<(u64, Option<LeaseToken>)> {
        match next {
            Next::Compute(Some(grant)) => Some((grant.fence, grant.lease)),
            _ => None,
        }
    }

    #[test]
    fn a_value_from_the_cache_says_whether_it_was_waited_for_or_stale() {
        let hit = || Ok(Lookup::Hit(item(b"v")));
        assert_eq!(outcome(next(hit(), false)), Some(FetchOutcome::Hit));
        assert_eq!(outcome(next(hit(), true)), Some(FetchOutcome::Waited));
        let stale = Ok(Lookup::Stale {
            item: item(b"v"),
            lease: None,
        });
        assert_eq!(outcome(next(stale, true)), Some(FetchOutcome::Stale));
    }

    #[test]
    fn the_lease_holder_computes_under_its_lease_and_the_reads_fence() {
        let lease = LeaseToken::new(3);
        let stale = Ok(Lookup::Stale {
            item: item(b"v"),
            lease,
        });
        assert_eq!(grant(next(stale, false)), Some((7, lease)));
        let miss = Ok(Lookup::Miss { fence: 9, lease });
        assert_eq!(grant(next(miss, false)), Some((9, lease)));
        let undecodable = Ok(Lookup::Hit(item(b"undecodable")));
        assert_eq!(grant(next(undecodable, false)), Some((7, None)));
    }

    #[test]
    fn a_hot_miss_waits_and_an_unavailable_cache_computes_without_storing() {
        assert!(matches!(
            next(Ok(Lookup::HotMiss { fence: 4 }), false),
            Next::Wait { fence: 4 }
        ));
        assert!(matches!(
            next(Err(Error::Closed), false),
            Next::Compute(None)
        ));
        let refused = after_read(
            Err(Error::InvalidArgument("bad key".into())),
            |value: &Bytes| Some(value.clone()),
            false,
        );
        assert!(matches!(refused, Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn what_the_computation_declares_is_what_is_stored() {
        let options = FetchOptions::new().tag("a").ttl(Duration::from_secs(60));
        let context = FetchContext::new(&options);
        let helper = context.clone();
        helper.tags(["b", "c"]);
        context.ttl(Duration::from_secs(5));
        context.stale_after(Duration::from_secs(2));
        let declared = context.declared();
        assert_eq!(declared.tags, vec!["a", "b", "c"]);
        assert_eq!(declared.ttl, Duration::from_secs(5));
        assert_eq!(declared.stale_after, Some(Duration::from_secs(2)));
    }

    #[test]
    fn pauses_are_shortened_by_at_most_half() {
        for _ in 0..100 {
            let pause = jittered(Duration::from_millis(100));
            assert!(pause > Duration::from_millis(50) && pause <= Duration::from_millis(100));
        }
    }
}
