//! [`ClientBuilder`]: the servers, the pool, the timeouts and the failure
//! policy of a [`Client`].

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::health::HealthPolicy;
use crate::options::{AuthToken, ConnectOptions};
use crate::pool::PoolSettings;
use crate::tls::TlsOptions;

/// Settings for a [`Client`]; every one has a default suited to an
/// application server on the same network as its cache.
///
/// ```no_run
/// # fn example() -> tagcached_client::Result<()> {
/// use std::time::Duration;
/// use tagcached_client::Client;
///
/// let cache = Client::builder()
///     .servers(["cache-1:11311", "cache-2:11311", "cache-3:11311"])
///     .pool_size(2)
///     .connect_timeout(Duration::from_millis(500))
///     .request_timeout(Duration::from_millis(100))
///     .failure_threshold(3)
///     .reconnect_backoff(Duration::from_millis(50), Duration::from_secs(5))
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    servers: Vec<String>,
    client_name: String,
    pool_size: usize,
    shard_aware: bool,
    connect_timeout: Duration,
    request_timeout: Duration,
    queue_depth: usize,
    failure_threshold: u32,
    backoff_min: Duration,
    backoff_max: Duration,
    failover: bool,
    auth_token: Option<AuthToken>,
    tls: Option<TlsOptions>,
}

impl Client {
    /// A builder, for several servers or non-default settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// A client of one server with default settings. Connects nothing
    /// until the first request.
    pub fn new(address: impl Into<String>) -> Client {
        ClientBuilder::new().server(address).into_client()
    }
}

impl Default for ClientBuilder {
    fn default() -> ClientBuilder {
        ClientBuilder {
            servers: Vec::new(),
            client_name: concat!("tagcached-client/", env!("CARGO_PKG_VERSION")).to_owned(),
            pool_size: ClientBuilder::DEFAULT_POOL_SIZE,
            shard_aware: true,
            connect_timeout: ClientBuilder::DEFAULT_CONNECT_TIMEOUT,
            request_timeout: ClientBuilder::DEFAULT_REQUEST_TIMEOUT,
            queue_depth: ConnectOptions::DEFAULT_QUEUE_DEPTH,
            failure_threshold: ClientBuilder::DEFAULT_FAILURE_THRESHOLD,
            backoff_min: ClientBuilder::DEFAULT_BACKOFF_MIN,
            backoff_max: ClientBuilder::DEFAULT_BACKOFF_MAX,
            failover: false,
            auth_token: None,
            tls: None,
        }
    }
}

impl ClientBuilder {
    /// Connections per lane (per server shard when shard-aware, else per
    /// server). One multiplexed connection carries any number of concurrent
    /// requests, and fewer connections mean larger batches per system call:
    /// with 200 tasks issuing GETs, one multiplexed connection per lane
    /// served 1.5 to 2.1 times the requests per second of a connection per
    /// in-flight request, with a lower p99, and each further connection per
    /// lane lowered throughput (`examples/measure_pool.rs`).
    pub const DEFAULT_POOL_SIZE: usize = 1;
    /// Bound on TCP connect plus HELLO.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
    /// Bound on each request once it has a connection.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
    /// Consecutive failures that mark a server down.
    pub const DEFAULT_FAILURE_THRESHOLD: u32 = 3;
    /// First wait before retrying a server.
    pub const DEFAULT_BACKOFF_MIN: Duration = Duration::from_millis(50);
    /// Longest wait before retrying a server.
    pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(5);

    /// No servers yet; defaults for everything else.
    pub fn new() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Adds a server, as `host:port`. Its address string is also its
    /// identity for key placement, so every client of a cluster must spell
    /// each server the same way.
    pub fn server(mut self, address: impl Into<String>) -> ClientBuilder {
        self.servers.push(address.into());
        self
    }

    /// Adds several servers (see [`server`](ClientBuilder::server)).
    pub fn servers<S: Into<String>>(
        mut self,
        addresses: impl IntoIterator<Item = S>,
    ) -> ClientBuilder {
        self.servers.extend(addresses.into_iter().map(Into::into));
        self
    }

    /// The name sent in HELLO, for the servers' logs.
    pub fn client_name(mut self, name: impl Into<String>) -> ClientBuilder {
        self.client_name = name.into();
        self
    }

    /// Multiplexed connections per lane (see
    /// [`DEFAULT_POOL_SIZE`](ClientBuilder::DEFAULT_POOL_SIZE)); at least 1.
    /// Connections open on first use.
    pub fn pool_size(mut self, size: usize) -> ClientBuilder {
        self.pool_size = size.max(1);
        self
    }

    /// Whether to open a lane per server shard and send each key to the
    /// thread that owns it (protocol.md §9), where the server offers it.
    /// On by default: the server spends no hop between its threads, and a
    /// client's traffic is read by all of them rather than by the one
    /// thread its connection landed on. It costs one connection per shard,
    /// so smaller batches per connection. On a two-core machine shared by
    /// the client and a two-thread server, where the hop is cheap and
    /// system calls dominate, it measured 0.79 to 0.97 times the throughput
    /// of the same pool size per server, and 1.00 to 1.06 times at an equal
    /// number of connections (`examples/measure_pool.rs`); turn it off where
    /// that holds.
    pub fn shard_aware(mut self, enabled: bool) -> ClientBuilder {
        self.shard_aware = enabled;
        self
    }

    /// Bound on opening a connection (TCP connect and HELLO).
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.connect_timeout = timeout;
        self
    }

    /// Bound on each request once it has a connection (a batch's requests
    /// to one lane share one bound). A request that times out fails with
    /// [`Error::Timeout`]; its late response is read and dropped, so the
    /// connection stays in step. A request that must first open a
    /// connection also waits up to the connect timeout for it.
    pub fn request_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.request_timeout = timeout;
        self
    }

    /// Submissions that may queue for one connection's writer before
    /// callers wait.
    pub fn queue_depth(mut self, depth: usize) -> ClientBuilder {
        self.queue_depth = depth.max(1);
        self
    }

    /// Consecutive failures (overlapping failures count once) that mark a
    /// server down; at least 1.
    pub fn failure_threshold(mut self, failures: u32) -> ClientBuilder {
        self.failure_threshold = failures.max(1);
        self
    }

    /// The wait before reconnecting after a failed connect, and before
    /// probing a server marked down: `min` at first, doubling on each
    /// further failure up to `max`.
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> ClientBuilder {
        self.backoff_min = min;
        self.backoff_max = max.max(min);
        self
    }

    /// Whether keys of a server marked down move to the next server in
    /// their placement order instead of missing (reads) and failing
    /// (writes). Off by default: moved keys are cold on their new server,
    /// and writes made there are invisible to the old one, so a server that
    /// comes back is flushed (FLUSH_ALL) by the probe before it serves again.
    /// A key can move between a read and a fenced SET of it, and a fence
    /// means nothing to another server: [`Client::get_or_set_with`] keeps
    /// both on the server of the read (see
    /// [`Client::get_with_fence`] for doing so by hand).
    pub fn failover(mut self, enabled: bool) -> ClientBuilder {
        self.failover = enabled;
        self
    }

    /// The token every connection sends with AUTH right after HELLO when
    /// the server requires authentication (protocol.md §6.12): pooled,
    /// shard-aware and reconnected connections alike. Read it from a file
    /// or the environment, not from the command line. A server that
    /// refuses it fails the requests with [`Error::Auth`], naming the
    /// server.
    pub fn auth_token(mut self, token: impl AsRef<[u8]>) -> ClientBuilder {
        self.auth_token = Some(AuthToken::new(token));
        self
    }

    /// Connect to every server with TLS (protocol.md §1), verifying each
    /// as `tls` says, against the host of its address unless
    /// [`TlsOptions::server_name`] is set. Off by default.
    pub fn tls(mut self, tls: TlsOptions) -> ClientBuilder {
        self.tls = Some(tls);
        self
    }

    /// Builds the client. Connects nothing: each server's connections open
    /// on first use.
    ///
    /// Fails with [`Error::InvalidArgument`] if no server was given or one
    /// was given twice.
    pub fn build(self) -> Result<Client> {
        if self.servers.is_empty() {
            return Err(Error::InvalidArgument(
                "a client needs at least one server".to_owned(),
            ));
        }
        let mut seen = HashSet::new();
        if let Some(twice) = self.servers.iter().find(|server| !seen.insert(*server)) {
            return Err(Error::InvalidArgument(format!(
                "server {twice} given twice"
            )));
        }
        Ok(self.into_client())
    }

    /// The client, for servers the caller guarantees are non-empty and
    /// distinct.
    pub(crate) fn into_client(self) -> Client {
        let mut connect = ConnectOptions::new()
            .client_name(self.client_name)
            .connect_timeout(self.connect_timeout)
            .request_timeout(self.request_timeout)
            .queue_depth(self.queue_depth)
            .with_auth_token(self.auth_token);
        if let Some(tls) = self.tls {
            connect = connect.tls(tls);
        }
        let settings = Arc::new(PoolSettings {
            connect,
            pool_size: self.pool_size,
            shard_aware: self.shard_aware,
        });
        let policy = HealthPolicy {
            failure_threshold: self.failure_threshold,
            backoff_min: self.backoff_min,
            backoff_max: self.backoff_max,
            flush_on_recovery: self.failover,
        };
        Client::from_parts(self.servers, settings, policy, self.failover)
    }
}
