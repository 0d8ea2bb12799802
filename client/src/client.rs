//! [`Client`]: one cache over one or several servers, with pooled,
//! pipelined, shard-aware connections.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::join_all;

use crate::command::tag_list;
use crate::connection::Connection;
use crate::error::{Error, Result, ServerFailure};
use crate::health::HealthPolicy;
use crate::lookup::{Item, Lookup};
use crate::placement::{key_hash, Placement};
use crate::pool::{Lanes, Node, PoolSettings};
use crate::read::ReadOptions;
use crate::set::{SetOptions, SetOutcome};
use crate::tag_status::TagReport;

/// A cache over one or several tagcached servers: what an application
/// server holds, clones into every handler, and shares across tasks.
///
/// ```no_run
/// # async fn example() -> tagcached_client::Result<()> {
/// use std::time::Duration;
/// use tagcached_client::{Client, SetOptions};
///
/// let cache = Client::builder()
///     .servers(["10.0.0.1:11311", "10.0.0.2:11311"])
///     .request_timeout(Duration::from_millis(100))
///     .build()?;
/// let options = SetOptions::new().tag("user:42").ttl(Duration::from_secs(600));
/// cache.set("user:42:profile", "{...}", &options).await?;
/// let profile = cache.get("user:42:profile").await?;
/// cache.invalidate_tags(["user:42"]).await?; // on every server
/// # Ok(()) }
/// ```
///
/// # Connections
///
/// Cloning is an `Arc` clone. Each server has a small pool of connections,
/// opened on first use: with shard-aware routing (the default, where the
/// server offers it) [`pool_size`](crate::ClientBuilder::pool_size) connections per
/// server thread, each keyed request going to the connection of the thread
/// that owns its key; otherwise `pool_size` per server. Every connection is
/// multiplexed: concurrent requests are pipelined on it and matched to their
/// responses by opaque, so a handful of connections carry any number of
/// concurrent tasks. A connection that breaks is replaced on next use; the
/// requests in flight on it fail with a connection error, never hang, and
/// never receive another request's response.
///
/// # Placement
///
/// A key lives on one server, chosen by rendezvous hashing of the key over
/// the servers' addresses: adding or removing one of N servers moves about
/// 1/N of the keys. [`server_for`](Client::server_for) says which.
///
/// # Failures
///
/// A server is marked down after
/// [`failure_threshold`](crate::ClientBuilder::failure_threshold) consecutive
/// failures (connection errors and timeouts; overlapping ones count once)
/// and probed in the background after a backoff. While it is down its keys
/// *miss* on reads ([`get`](Client::get) returns `None`) and *fail* on
/// writes ([`Error::ServerDown`]), without waiting: they do not move to
/// another server unless [`failover`](crate::ClientBuilder::failover) is on.
///
/// # Invalidation across servers
///
/// [`invalidate_tags`](Client::invalidate_tags) goes to every server at
/// once, because entries with a tag may live on any of them. It succeeds
/// when every server has acknowledged; then, by each server's guarantee
/// (protocol.md §8.2), no server returns an entry that carries one of the
/// tags and was stored before the invalidation. There is no atomicity
/// *across* servers: while the fan-out runs, a read may still find a stale
/// entry on a server not yet reached, as with any invalidation racing a read.
///
/// When some server does not acknowledge, the call fails with
/// [`Error::Unacknowledged`] naming them; the others did apply it. A server
/// that missed an invalidation would serve stale entries for those tags
/// once it answers again, so the client protects the application itself: a
/// server whose invalidation failed because it was unavailable (connection
/// error, timeout, already down) is marked down at once, its reads miss,
/// and the tags are owed to it; the probe that brings it back delivers
/// them before anything else is sent there. Within this client, then, a
/// failed invalidation never lets a stale entry be read; the guarantee
/// extends to other processes only if they too invalidate through a client
/// that can reach every server, so the application should still retry
/// (with [`invalidate_tags_on`](Client::invalidate_tags_on) for just the
/// failed servers) or alert, and can take a server out by hand with
/// [`mark_down`](Client::mark_down). A server's own restart empties it, so
/// it never holds entries from before an invalidation it missed. A server
/// that misses a *soft* invalidation
/// ([`soft_invalidate_tags`](Client::soft_invalidate_tags),
/// [`soft_flush_all`](Client::soft_flush_all)) is owed a hard one: it then
/// misses what the others serve stale, which is never wrong, only slower.
#[derive(Debug, Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    nodes: Vec<Arc<Node>>,
    placement: Placement,
    failover: bool,
}

/// A server's state as a [`Client`] sees it; see
/// [`Client::server_status`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerStatus {
    /// The server's address, as given to the client.
    pub address: String,
    /// Whether it is marked down.
    pub down: bool,
    /// Consecutive failures counted towards marking it down.
    pub consecutive_failures: u32,
    /// Tags whose invalidation it missed, to be delivered when it is back.
    pub owed_tags: usize,
    /// Whether it missed a flush (or more invalidations than are kept
    /// one by one), and will be flushed when it is back.
    pub owes_flush: bool,
    /// The last failure seen, if it has not succeeded since.
    pub last_error: Option<Error>,
}

impl Client {
    pub(crate) fn from_parts(
        servers: Vec<String>,
        settings: Arc<PoolSettings>,
        policy: HealthPolicy,
        failover: bool,
    ) -> Client {
        let placement = Placement::new(&servers);
        let nodes = servers
            .into_iter()
            .map(|address| Arc::new(Node::new(address, Arc::clone(&settings), policy.clone())))
            .collect();
        Client {
            shared: Arc::new(Shared {
                nodes,
                placement,
                failover,
            }),
        }
    }

    /// The servers' addresses, in the order given.
    pub fn servers(&self) -> Vec<&str> {
        self.shared
            .nodes
            .iter()
            .map(|node| node.address())
            .collect()
    }

    /// The server that owns `key` by placement (where it goes unless that
    /// server is down and failover is on).
    pub fn server_for(&self, key: impl AsRef<[u8]>) -> &str {
        let owner = self.shared.placement.owner(key_hash(key.as_ref()));
        self.shared.nodes[owner].address()
    }

    /// Every server's health, in the order given.
    pub fn server_status(&self) -> Vec<ServerStatus> {
        self.shared
            .nodes
            .iter()
            .map(|node| {
                let snapshot = node.health().snapshot();
                ServerStatus {
                    address: node.address().to_owned(),
                    down: snapshot.down,
                    consecutive_failures: snapshot.failures,
                    owed_tags: snapshot.owed.tags.len(),
                    owes_flush: snapshot.owed.flush,
                    last_error: snapshot.last_error,
                }
            })
            .collect()
    }

    /// Marks `server` down now, as if it had failed: its reads miss, its
    /// writes fail, and it is probed after the backoff. For an application
    /// that learns of a problem the client cannot see. Returns `false` if
    /// no server has that address.
    pub fn mark_down(&self, server: &str) -> bool {
        match self.node_named(server) {
            Some(node) => {
                node.mark_down();
                true
            }
            None => false,
        }
    }

    fn node_named(&self, server: &str) -> Option<&Arc<Node>> {
        self.shared
            .nodes
            .iter()
            .find(|node| node.address() == server)
    }

    pub(crate) fn nodes(&self) -> &[Arc<Node>] {
        &self.shared.nodes
    }

    fn all_nodes(&self) -> Vec<&Arc<Node>> {
        self.shared.nodes.iter().collect()
    }

    /// The index of the node a key whose hash is `hash` goes to now.
    pub(crate) fn route(&self, hash: u64) -> usize {
        let nodes = &self.shared.nodes;
        if nodes.len() == 1 {
            return 0;
        }
        let owner = self.shared.placement.owner(hash);
        if self.shared.failover && nodes[owner].is_down() {
            // Keep probing the owner: nothing else would, as its keys go
            // elsewhere meanwhile.
            nodes[owner].poke();
            return self
                .shared
                .placement
                .best(hash, |index| !nodes[index].is_down())
                .unwrap_or(owner);
        }
        owner
    }

    /// Runs `operation` on the pooled connection for `key` and reports the
    /// outcome to the server's health.
    async fn on_key<T, F, Fut>(&self, key: &[u8], operation: F) -> Result<T>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let hash = key_hash(key);
        self.on_node(self.route(hash), hash, operation).await
    }

    /// As [`on_key`](Client::on_key) for a key whose hash is `hash`, on the
    /// node with index `node` whatever the key's route is now.
    async fn on_node<T, F, Fut>(&self, node: usize, hash: u64, operation: F) -> Result<T>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let node = &self.shared.nodes[node];
        run(node, node.connection(Some(hash)).await, operation).await
    }

    /// [`get_with`](Client::get_with) on the node with index `node`, for a
    /// read whose fence and lease will go back to that same server;
    /// `options` are first fitted to what the server offers.
    pub(crate) async fn get_on(
        &self,
        node: usize,
        key: &[u8],
        options: impl FnOnce(&Connection) -> ReadOptions,
    ) -> Result<Lookup> {
        let lookup = self
            .on_node(node, key_hash(key), |connection| async move {
                let options = options(&connection);
                connection.get_with(key, &options).await
            })
            .await;
        miss_if_down(lookup)
    }

    /// [`set`](Client::set) on the node with index `node`, with the options
    /// `options` gives for its connection: a SET fenced by a read of that
    /// server (or holding its lease) goes to it, or fails, and never to
    /// another (protocol.md §8.2: a fence means something only to its
    /// server).
    pub(crate) async fn set_on(
        &self,
        node: usize,
        key: &[u8],
        value: Bytes,
        options: impl FnOnce(&Connection) -> SetOptions,
    ) -> Result<SetOutcome> {
        self.on_node(node, key_hash(key), |connection| async move {
            let options = options(&connection);
            connection.set(key, value, &options).await
        })
        .await
    }

    /// The pooled connection that requests for `key` use, for a
    /// [`Pipeline`](crate::Pipeline) of commands on keys of the same shard
    /// (or any commands, at the cost of a hop inside the server). Requests
    /// made on it directly do not count towards the server's health.
    pub async fn connection_for(&self, key: impl AsRef<[u8]>) -> Result<Connection> {
        let hash = key_hash(key.as_ref());
        self.shared.nodes[self.route(hash)]
            .connection(Some(hash))
            .await
    }

    /// The item under `key`, or `None` (also when its server is marked
    /// down).
    pub async fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Item>> {
        Ok(self.get_with_fence(key).await?.into_item())
    }

    /// The lookup of `key`, whose miss carries the fence for a fenced SET
    /// of a recomputed value. If the key's server is marked down the answer
    /// is [`Lookup::unavailable`], whose fence no SET can pass.
    ///
    /// The fence is a number of the server that answered, and means
    /// nothing to another (protocol.md §8.2). With
    /// [`failover`](crate::ClientBuilder::failover) on, a key's server can change
    /// between this read and a [`set`](Client::set) of it; a server refuses
    /// a fence above its own sequence, but may take a foreign fence below
    /// it. So to read, compute and store, use
    /// [`get_or_set_with`](Client::get_or_set_with), which keeps the read
    /// and its SET on one server, or read and SET through one
    /// [`connection_for`](Client::connection_for) the key.
    pub async fn get_with_fence(&self, key: impl AsRef<[u8]>) -> Result<Lookup> {
        self.get_with(key, &ReadOptions::new()).await
    }

    /// As [`get_with_fence`](Client::get_with_fence), and a hit's
    /// [`Item::tags`] are filled in.
    pub async fn get_with_tags(&self, key: impl AsRef<[u8]>) -> Result<Lookup> {
        self.get_with(key, &ReadOptions::new().with_tags()).await
    }

    /// The lookup of `key` as `options` say: with stale data, a refresh
    /// lease, request-scoped tags (see
    /// [`Connection::get_with`](crate::Connection::get_with)). If the key's
    /// server is marked down the answer is [`Lookup::unavailable`].
    ///
    /// A lease, like a fence, belongs to the server that granted it: SET
    /// the refreshed value through the same server, which
    /// [`set`](Client::set) does unless failover moved the key meanwhile
    /// (then the SET is answered `LEASE_LOST` or `FENCED`, never stored
    /// wrongly). [`fetch`](Client::fetch) keeps both on one server.
    pub async fn get_with(&self, key: impl AsRef<[u8]>, options: &ReadOptions) -> Result<Lookup> {
        let key = key.as_ref();
        let lookup = self
            .on_key(key, |connection| async move {
                connection.get_with(key, options).await
            })
            .await;
        miss_if_down(lookup)
    }

    /// Stores `value` under `key` as `options` say. Fails with
    /// [`Error::ServerDown`] if the key's server is marked down.
    pub async fn set(
        &self,
        key: impl AsRef<[u8]>,
        value: impl Into<Bytes>,
        options: &SetOptions,
    ) -> Result<SetOutcome> {
        let key = key.as_ref();
        let value = value.into();
        self.on_key(key, |connection| async move {
            connection.set(key, value, options).await
        })
        .await
    }

    /// Removes `key`; whether a live entry was there.
    pub async fn delete(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        let key = key.as_ref();
        self.on_key(
            key,
            |connection| async move { connection.delete(key).await },
        )
        .await
    }

    /// Resets the TTL of `key` (rounded up to whole seconds; zero: never
    /// expire); whether a live entry was there.
    pub async fn touch(&self, key: impl AsRef<[u8]>, ttl: Duration) -> Result<bool> {
        let key = key.as_ref();
        self.on_key(
            key,
            |connection| async move { connection.touch(key, ttl).await },
        )
        .await
    }

    /// Invalidates every entry carrying any of `tags` on every server, all
    /// at once; returns each server's invalidation sequence, in the order
    /// the servers were given.
    ///
    /// Fails with [`Error::Unacknowledged`] if some server did not
    /// acknowledge; see the type's docs for what that means and what the
    /// client does about it.
    pub async fn invalidate_tags<T: AsRef<[u8]>>(
        &self,
        tags: impl IntoIterator<Item = T>,
    ) -> Result<Vec<u64>> {
        let tags = tag_list(tags)?;
        fan_out(&self.all_nodes(), |node| invalidate_on(node, &tags, None)).await
    }

    /// Invalidates softly every entry carrying any of `tags` on every
    /// server, all at once (see
    /// [`Connection::soft_invalidate_tags`](crate::Connection::soft_invalidate_tags)):
    /// stale for `expire` to reads that allow stale data, misses to the
    /// others at once. Returns each server's invalidation sequence, in the
    /// order the servers were given; fails as
    /// [`invalidate_tags`](Client::invalidate_tags) does, and a server that
    /// missed it is owed a hard invalidation (see the type's docs).
    /// Repeating it on every server is harmless: a second soft invalidation
    /// never extends the first one's window (protocol.md §8.3).
    pub async fn soft_invalidate_tags<T: AsRef<[u8]>>(
        &self,
        tags: impl IntoIterator<Item = T>,
        expire: Duration,
    ) -> Result<Vec<u64>> {
        let tags = tag_list(tags)?;
        let nodes = self.all_nodes();
        fan_out(&nodes, |node| invalidate_on(node, &tags, Some(expire))).await
    }

    /// As [`invalidate_tags`](Client::invalidate_tags), on the named
    /// servers only: to retry those an [`Error::Unacknowledged`] names.
    /// Fails with [`Error::InvalidArgument`] for a name that is not one of
    /// the client's servers.
    pub async fn invalidate_tags_on<S: AsRef<str>, T: AsRef<[u8]>>(
        &self,
        servers: impl IntoIterator<Item = S>,
        tags: impl IntoIterator<Item = T>,
    ) -> Result<Vec<u64>> {
        let tags = tag_list(tags)?;
        let nodes = servers
            .into_iter()
            .map(|server| {
                let server = server.as_ref();
                self.node_named(server).ok_or_else(|| {
                    Error::InvalidArgument(format!("{server} is not one of the client's servers"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        fan_out(&nodes, |node| invalidate_on(node, &tags, None)).await
    }

    /// Removes every entry on every server; returns each server's
    /// invalidation sequence. A server that misses it owes a flush, as for
    /// [`invalidate_tags`](Client::invalidate_tags).
    pub async fn flush_all(&self) -> Result<Vec<u64>> {
        fan_out(&self.all_nodes(), |node| invalidate_on(node, &[], None)).await
    }

    /// Makes every entry on every server stale for `expire`, then a miss
    /// (see [`Connection::soft_flush_all`](crate::Connection::soft_flush_all));
    /// returns each server's invalidation sequence. A server that misses it
    /// owes a hard flush.
    pub async fn soft_flush_all(&self, expire: Duration) -> Result<Vec<u64>> {
        fan_out(&self.all_nodes(), |node| {
            invalidate_on(node, &[], Some(expire))
        })
        .await
    }

    /// What every server knows of each of `tags`: one [`TagReport`] per
    /// server, in the order the servers were given, since a tag's entries
    /// may live on any of them. Fails with [`Error::Unacknowledged`] if a
    /// server does not answer, so a partial answer is never taken for the
    /// whole.
    ///
    /// Sequences are each server's own and do not combine; times do. The
    /// tags' last invalidation anywhere, Next.js's `getExpiration`, is the
    /// latest of the reports':
    ///
    /// ```no_run
    /// # async fn example(cache: tagcached_client::Client) -> tagcached_client::Result<()> {
    /// let reports = cache.tag_status(["posts", "_N_T_/blog"]).await?;
    /// let expiration = reports.iter().filter_map(|report| report.last_invalidated()).max();
    /// # drop(expiration);
    /// # Ok(()) }
    /// ```
    pub async fn tag_status<T: AsRef<[u8]>>(
        &self,
        tags: impl IntoIterator<Item = T>,
    ) -> Result<Vec<TagReport>> {
        let tags = tag_list(tags)?;
        let tags = &tags;
        fan_out(&self.all_nodes(), |node| async move {
            run(node, node.connection(None).await, |connection| async move {
                connection.tag_status(tags).await
            })
            .await
        })
        .await
    }

    /// Checks every server answers, opening a connection to each if none
    /// is open; a way to connect eagerly at start-up.
    pub async fn ping(&self) -> Result<()> {
        fan_out(&self.all_nodes(), |node| async move {
            run(node, node.connection(None).await, |connection| async move {
                connection.ping().await
            })
            .await
        })
        .await
        .map(|_| ())
    }

    /// Each server's counters, in the order the servers were given.
    pub async fn stats(&self) -> Vec<(String, Result<Vec<(String, String)>>)> {
        join_all(self.shared.nodes.iter().map(|node| async move {
            let stats = run(node, node.connection(None).await, |connection| async move {
                connection.stats().await
            })
            .await;
            (node.address().to_owned(), stats)
        }))
        .await
    }
}

/// Runs `operation` on `connection` (if there is one) and reports how it
/// ended to `node`'s health.
pub(crate) async fn run<T, F, Fut>(
    node: &Node,
    connection: Result<Connection>,
    operation: F,
) -> Result<T>
where
    F: FnOnce(Connection) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let connection = connection?;
    let started = Instant::now();
    let result = operation(connection).await;
    node.record(started, &result);
    result
}

/// As [`run`], on a connection of `lane`.
pub(crate) async fn run_on_lane<T, F, Fut>(
    node: &Arc<Node>,
    lanes: &Arc<Lanes>,
    lane: usize,
    operation: F,
) -> Result<T>
where
    F: FnOnce(Connection) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    run(node, node.lane_connection(lanes, lane).await, operation).await
}

/// A read of a key whose server is marked down is a miss.
fn miss_if_down(lookup: Result<Lookup>) -> Result<Lookup> {
    match lookup {
        Err(Error::ServerDown { .. }) => Ok(Lookup::unavailable()),
        other => other,
    }
}

/// INVALIDATE_TAGS of `tags`, or FLUSH_ALL if `tags` is empty, on one
/// server, hard or with the soft window `soft`; owed to it, hard, if it may
/// have missed it.
async fn invalidate_on(node: &Arc<Node>, tags: &[Bytes], soft: Option<Duration>) -> Result<u64> {
    if node.health().owe_if_down(tags) {
        node.poke();
        return Err(node.down_error());
    }
    let result = run(node, node.connection(None).await, |connection| async move {
        match (tags.is_empty(), soft) {
            (true, None) => connection.flush_all().await,
            (true, Some(expire)) => connection.soft_flush_all(expire).await,
            (false, None) => connection.invalidate_tags(tags).await,
            (false, Some(expire)) => connection.soft_invalidate_tags(tags, expire).await,
        }
    })
    .await;
    if let Err(error) = &result {
        if error.is_unavailable() {
            node.owe(tags, error);
        }
    }
    result
}

/// Runs `operation` on every node at once; the results in node order if
/// all succeeded, else [`Error::Unacknowledged`] with the failures.
async fn fan_out<'n, T, F, Fut>(nodes: &[&'n Arc<Node>], operation: F) -> Result<Vec<T>>
where
    F: Fn(&'n Arc<Node>) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let results = join_all(nodes.iter().map(|node| operation(node))).await;
    let mut acknowledged = Vec::with_capacity(results.len());
    let mut failed = Vec::new();
    for (node, result) in nodes.iter().zip(results) {
        match result {
            Ok(value) => acknowledged.push(value),
            Err(error) => failed.push(ServerFailure {
                server: node.address().to_owned(),
                error,
            }),
        }
    }
    if failed.is_empty() {
        Ok(acknowledged)
    } else {
        Err(Error::Unacknowledged {
            servers: nodes.len(),
            failed,
        })
    }
}
