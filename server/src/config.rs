//! The daemon's configuration: raw command-line arguments, then one
//! validated [`Config`] built from them in one place.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tagcached_protocol::Limits;
use tracing_subscriber::EnvFilter;

use crate::auth::{AuthConfig, TokenFileError, TokenSet, DEFAULT_AUTH_TIMEOUT};
use crate::host_memory::HostMemory;
pub use crate::size::parse_size;
use crate::size::Size;

/// The default port, 11311.
pub const DEFAULT_PORT: u16 = 11311;
/// The largest default memory budget, and the budget when neither the
/// machine's RAM nor a cgroup limit is known: 1 GiB.
pub const DEFAULT_MEMORY: usize = crate::host_memory::MAX_DEFAULT_BUDGET as usize;
/// Default cap on simultaneous connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default `--idle-timeout`: a connection that sends nothing for five
/// minutes is closed (memcached's `idle_timeout`, which is off by default;
/// on here, because a cache that serves a network must not let forgotten
/// sockets hold `max_connections` slots forever).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Default `--frame-timeout`: a frame must arrive whole within 5 s of its
/// first byte. A client on loopback or a LAN sends the largest frame (about
/// 2 MiB) in milliseconds; one that trickles a frame is holding a slot and a
/// buffer.
pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_secs(5);
/// Default `--partial-frame-memory`: request frames partly received, summed
/// over every connection, 256 MiB: a hundred-odd largest frames arriving at
/// once, a quarter of the default `--memory`.
pub const DEFAULT_PARTIAL_FRAME_MEMORY: usize = 256 << 20;
/// Default budget for the answers one connection may have the server hold:
/// 1 MiB. Small enough that `max_connections` of them cannot take a machine
/// down (10,000 x 1 MiB), large enough that a pipeline of small answers
/// never waits on it and a 512 KiB value still goes out two per write.
pub const DEFAULT_CONNECTION_MEMORY: usize = 1 << 20;
/// Default `--lease-time`: how long a refresh lease is held (protocol.md
/// §8.4). Long enough for a page render or a slow query, short enough that
/// readers waiting on a holder that died get a lease of their own soon.
pub const DEFAULT_LEASE_TIME: Duration = Duration::from_secs(10);

/// Everything the server needs to run, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses to listen on, all with the same port (at least one); port
    /// 0 picks a free one.
    pub listen: Vec<SocketAddr>,
    /// Worker threads, one shard each.
    pub threads: usize,
    /// Hard budget for stored data across all shards, in bytes.
    pub memory: usize,
    /// Request limits enforced by the codec and reported at HELLO.
    pub limits: Limits,
    /// New connections beyond this get `BUSY` and are closed.
    pub max_connections: usize,
    /// A connection that sends nothing for this long is closed; `None`: never.
    pub idle_timeout: Option<Duration>,
    /// A connection whose frame has started but not fully arrived this long
    /// after its first byte is closed; `None`: never.
    pub frame_timeout: Option<Duration>,
    /// Bytes of request frames partly received, over all connections, past
    /// which a connection whose frame grows is refused (`BUSY`) and closed.
    pub partial_frame_memory: usize,
    /// Bytes of answers one connection may make the server hold (built and
    /// not yet written, or being built on other shards). Past it the
    /// connection stops reading and executing until its socket drains.
    pub connection_memory: usize,
    /// How long a refresh lease is held before another reader may take it.
    pub lease_time: Duration,
    /// How often each shard runs its background sweep.
    pub sweep_interval: Duration,
    /// Entries a shard examines per sweep.
    pub sweep_batch: usize,
    /// How long a graceful shutdown waits for connections to finish their
    /// requests before the workers stop anyway (a client that never reads
    /// its responses must not hold the server up forever).
    pub shutdown_grace: Duration,
    /// Authentication on the data port (protocol.md §6.12); `None`: every
    /// connection is served without it.
    pub auth: Option<AuthConfig>,
    /// Serve TLS on the data port with these files; `None`: plain TCP.
    pub tls: Option<TlsFiles>,
    /// The admin HTTP listener (`/metrics`, `/healthz`, `/readyz`,
    /// `/purge`); `None`: off.
    pub admin: Option<AdminConfig>,
}

/// The PEM files TLS is served with, read at start and again on SIGHUP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, the server's own first.
    pub cert: PathBuf,
    /// The certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates a client's certificate must chain to; `None`:
    /// clients present none.
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// Whether clients authenticate with a certificate.
    pub fn authenticates(&self) -> bool {
        self.client_ca.is_some()
    }
}

/// The admin HTTP listener's configuration (see [`crate::admin`]).
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Addresses to listen on, all with the same port; port 0 picks one.
    pub listen: Vec<SocketAddr>,
    /// The token file, re-read by [`crate::Server::reload`].
    pub token_file: Option<PathBuf>,
    /// The tokens read from it at start; `None`: no token is asked for.
    pub tokens: Option<Arc<TokenSet>>,
}

impl AdminConfig {
    /// Loopback, an ephemeral port, no token: for tests and embedding.
    pub fn local_ephemeral() -> AdminConfig {
        AdminConfig {
            listen: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)],
            token_file: None,
            tokens: None,
        }
    }
}

impl Config {
    /// A configuration for tests and embedding: loopback, an ephemeral port,
    /// two threads, 64 MiB.
    pub fn local_ephemeral() -> Config {
        Config {
            listen: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)],
            threads: 2,
            memory: 64 << 20,
            limits: Limits::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            connection_memory: DEFAULT_CONNECTION_MEMORY,
            partial_frame_memory: DEFAULT_PARTIAL_FRAME_MEMORY,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            frame_timeout: Some(DEFAULT_FRAME_TIMEOUT),
            lease_time: DEFAULT_LEASE_TIME,
            // Small slices often rather than large ones rarely: reclaiming a
            // slot of a mass-invalidated tag costs ~0.3 µs, and a request
            // waits behind the whole slice, so 8192 per 100 ms stalled the
            // worker for up to ~3 ms; 1024 per 10 ms scans a little more
            // per second and stalls well under 0.5 ms.
            sweep_interval: Duration::from_millis(10),
            sweep_batch: 1024,
            shutdown_grace: Duration::from_secs(10),
            auth: None,
            tls: None,
            admin: None,
        }
    }
}

/// Command-line arguments as typed by the user. Every flag also reads an
/// environment variable, `TAGCACHED_` and the flag's name in capitals
/// (`--max-connections`: `TAGCACHED_MAX_CONNECTIONS`); a flag wins over
/// its variable.
#[derive(Debug, Parser)]
#[command(
    name = "tagcached",
    version,
    about = "A cache daemon with invalidation by tag",
    long_about = "A cache daemon with invalidation by tag.\n\nStores values under keys, each \
                  with a set of tags; INVALIDATE_TAGS makes every entry carrying any of \
                  the tags a miss at once. Speaks the binary protocol of protocol.md.\n\n\
                  Every flag also reads an environment variable: TAGCACHED_ and the flag's \
                  name in capitals, e.g. TAGCACHED_MAX_CONNECTIONS=500; a flag wins over its \
                  variable. Sizes take binary or decimal units and decimals (512MiB, 1.5GiB, \
                  100MB). Exit status: 0 after a graceful stop, 1 if the daemon cannot \
                  start (the address is in use, ...), 2 for invalid flags."
)]
pub struct Args {
    /// TCP port to listen on (0 picks a free port).
    #[arg(long, default_value_t = DEFAULT_PORT, env = "TAGCACHED_PORT")]
    pub port: u16,

    /// Address or host name to listen on. A host name (localhost) is
    /// resolved at start and every address it resolves to is listened on,
    /// on the same port. The default accepts only local connections;
    /// 0.0.0.0 serves the network, and then the daemon refuses to start
    /// without --auth-token-file or --tls-client-ca unless
    /// --insecure-no-auth is given. Start
    /// fails if another process listens on the address.
    #[arg(long, default_value = "127.0.0.1", env = "TAGCACHED_BIND")]
    pub bind: String,

    /// File of tokens a client must present with AUTH before anything but
    /// HELLO and PING is served: UTF-8, one token per line (at most 512
    /// bytes each), blank lines and lines starting with # skipped,
    /// whitespace around a token dropped. Several tokens allow rotation.
    /// Read again on SIGHUP; a file that cannot be read or holds no token
    /// stops the start, and on SIGHUP keeps the tokens in force. Keep
    /// tokens in a file, not on the command line, where other users of the
    /// machine can read them.
    #[arg(long, value_name = "FILE", env = "TAGCACHED_AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<PathBuf>,

    /// Seconds a connection has, from being accepted, to authenticate
    /// (with --auth-token-file) before it is closed (1 to 3600). Until it
    /// has, it is served only HELLO, PING and AUTH, in frames of at most
    /// 4KiB.
    #[arg(long, default_value_t = DEFAULT_AUTH_TIMEOUT.as_secs(), env = "TAGCACHED_AUTH_TIMEOUT")]
    pub auth_timeout: u64,

    /// Serve a non-loopback --bind address without authentication: anyone
    /// who reaches the port can read, overwrite and flush the cache. Without
    /// this flag (or --auth-token-file, or --tls-client-ca) such a start is
    /// refused.
    #[arg(long, env = "TAGCACHED_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,

    /// Worker threads, each owning one shard of the key space [default: the
    /// number of cores].
    #[arg(long, env = "TAGCACHED_THREADS")]
    pub threads: Option<usize>,

    /// Memory budget for stored data, e.g. 512MiB, 1.5GiB, 100MB or a
    /// number of bytes; when full, least recently used entries are evicted
    /// [default: a quarter of RAM or of the cgroup's memory limit, whichever
    /// is smaller, at most 1GiB].
    #[arg(long, value_parser = parse_size, env = "TAGCACHED_MEMORY")]
    pub memory: Option<usize>,

    /// Largest value accepted, e.g. 1MiB.
    #[arg(long, value_parser = parse_size, default_value = "1MiB", env = "TAGCACHED_MAX_VALUE_SIZE")]
    pub max_value_size: usize,

    /// Largest key accepted, in bytes.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_KEY_LENGTH, env = "TAGCACHED_MAX_KEY_SIZE")]
    pub max_key_size: u32,

    /// Most tags in one SET or INVALIDATE_TAGS.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_TAGS, env = "TAGCACHED_MAX_TAGS")]
    pub max_tags: u32,

    /// Connections beyond this are answered BUSY and closed. The daemon
    /// raises its open file limit as far as this needs; if the hard limit
    /// is too low, it serves fewer and says so in the log.
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS, env = "TAGCACHED_MAX_CONNECTIONS")]
    pub max_connections: usize,

    /// Answers one connection may have waiting before the server stops
    /// reading from it until it reads its socket, e.g. 1MiB. The worst
    /// case for the whole daemon is --memory + connections x (this + one
    /// request frame + one answer).
    #[arg(long, value_parser = parse_size, default_value = "1MiB", env = "TAGCACHED_CONNECTION_MEMORY")]
    pub connection_memory: usize,

    /// Request frames partly received, summed over all connections, beyond
    /// which a connection whose frame grows is answered BUSY and closed,
    /// e.g. 256MiB.
    #[arg(long, value_parser = parse_size, default_value = "256MiB", env = "TAGCACHED_PARTIAL_FRAME_MEMORY")]
    pub partial_frame_memory: usize,

    /// Close a connection that sends nothing for this many seconds; 0 never
    /// does.
    #[arg(long, default_value_t = DEFAULT_IDLE_TIMEOUT.as_secs(), env = "TAGCACHED_IDLE_TIMEOUT")]
    pub idle_timeout: u64,

    /// Close a connection whose request frame has not fully arrived this
    /// many seconds after its first byte; 0 never does.
    #[arg(long, default_value_t = DEFAULT_FRAME_TIMEOUT.as_secs(), env = "TAGCACHED_FRAME_TIMEOUT")]
    pub frame_timeout: u64,

    /// Seconds a refresh lease is held: while it is, other readers asking
    /// for a lease on the key get HOT_MISS or the stale value (1 to 3600).
    #[arg(long, default_value_t = DEFAULT_LEASE_TIME.as_secs(), env = "TAGCACHED_LEASE_TIME")]
    pub lease_time: u64,

    /// Log filter: off, error, warn, info, debug or trace, or tracing
    /// EnvFilter directives such as `tagcached=debug` or
    /// `warn,tagcached::connection=debug`. Any other word is refused. At
    /// info: a line per listener with the limits in force, and connections
    /// closed for a protocol error, at most one line a second.
    #[arg(long, default_value = "info", value_parser = parse_log_filter, env = "TAGCACHED_LOG_LEVEL")]
    pub log_level: String,

    /// Serve TLS (1.2 and 1.3) on the port with this PEM certificate chain,
    /// the server's certificate first; needs --tls-key. Every connection
    /// then speaks TLS from its first byte. Re-read on SIGHUP: later
    /// handshakes use the new files, open connections keep theirs, and
    /// files that do not load leave the old ones in force (logged).
    #[arg(
        long,
        requires = "tls_key",
        value_name = "FILE",
        env = "TAGCACHED_TLS_CERT"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    /// Re-read on SIGHUP.
    #[arg(
        long,
        requires = "tls_cert",
        value_name = "FILE",
        env = "TAGCACHED_TLS_KEY"
    )]
    pub tls_key: Option<PathBuf>,

    /// Require every client to present a certificate issued by a CA in
    /// this PEM file, and refuse the handshake otherwise; needs --tls-cert.
    /// Re-read on SIGHUP.
    #[arg(
        long,
        requires = "tls_cert",
        value_name = "FILE",
        env = "TAGCACHED_TLS_CLIENT_CA"
    )]
    pub tls_client_ca: Option<PathBuf>,

    /// Serve the admin HTTP API on this port: GET /metrics (Prometheus),
    /// GET /healthz, GET /readyz and POST /purge (invalidate tags, for
    /// webhooks). Off unless given; 0 picks a free port.
    #[arg(long, env = "TAGCACHED_ADMIN_PORT")]
    pub admin_port: Option<u16>,

    /// Address or host name the admin port listens on, as --bind, and
    /// apart from it so the data port can serve the network while the
    /// admin port stays local. Beyond loopback it needs
    /// --admin-token-file, since it serves /purge: without one the daemon
    /// refuses to start.
    #[arg(long, default_value = "127.0.0.1", env = "TAGCACHED_ADMIN_BIND")]
    pub admin_bind: String,

    /// File of bearer tokens for the admin port, one per line (blank lines
    /// and lines starting with # are ignored): every admin request but
    /// GET /healthz must then carry `Authorization: Bearer <token>`.
    /// Re-read on SIGHUP; if the new file is unusable the old tokens stay.
    #[arg(long, env = "TAGCACHED_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
}

/// Why arguments could not become a [`Config`].
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--threads 0` or more than a u16 of shards.
    #[error("--threads must be between 1 and 1024, not {0}")]
    Threads(usize),
    /// A budget too small to hold anything on every shard.
    #[error("--memory {memory} is below the minimum of {minimum} bytes ({per_shard} per thread)")]
    Memory {
        /// Asked for.
        memory: usize,
        /// The minimum for this many threads.
        minimum: usize,
        /// The minimum per shard.
        per_shard: usize,
    },
    /// A value size the protocol cannot carry.
    #[error("--max-value-size must be between 1 and 1GiB")]
    MaxValueSize,
    /// A key size outside 1..=65535 (keys are length-prefixed with a u16).
    #[error("--max-key-size must be between 1 and 65535")]
    MaxKeySize,
    /// A tag count outside 1..=65535.
    #[error("--max-tags must be between 1 and 65535")]
    MaxTags,
    /// `--max-connections 0`.
    #[error("--max-connections must be at least 1")]
    MaxConnections,
    /// A lease time outside 1..=3600 seconds.
    #[error("--lease-time must be between 1 and 3600 seconds")]
    LeaseTime,
    /// An `--admin-token-file` that cannot be used.
    #[error("--admin-token-file: {0}")]
    AdminTokenFile(TokenFileError),
    /// `--admin-token-file` without `--admin-port`.
    #[error("--admin-token-file is given but the admin port is off: add --admin-port")]
    AdminTokenWithoutPort,
    /// An admin listener beyond loopback with no token: anyone who reaches
    /// it could purge the cache.
    #[error(
        "--admin-bind {addrs} is beyond loopback and no --admin-token-file is given: anyone \
         who reaches the admin port could purge the cache through /purge; give a token file \
         or bind the admin port to 127.0.0.1"
    )]
    AdminExposed {
        /// The addresses beyond loopback.
        addrs: String,
    },
    /// A `--bind` or `--admin-bind` that is neither an address nor a host
    /// name that resolves.
    #[error("{flag} {host}: {reason}")]
    Bind {
        /// The flag.
        flag: &'static str,
        /// As given.
        host: String,
        /// Why it could not be resolved.
        reason: String,
    },
    /// An `--auth-timeout` outside 1..=3600 seconds.
    #[error("--auth-timeout must be between 1 and 3600 seconds")]
    AuthTimeout,
    /// The `--auth-token-file` cannot be used.
    #[error("--auth-token-file: {0}")]
    AuthTokenFile(#[from] TokenFileError),
    /// A non-loopback address to serve with no way to authenticate
    /// clients, and no `--insecure-no-auth`.
    #[error(
        "refusing to serve {addrs} without authentication: anyone who can reach the port could \
         read, overwrite and flush the cache. Give --auth-token-file FILE \
         (TAGCACHED_AUTH_TOKEN_FILE=FILE) or TLS client certificates (--tls-client-ca FILE, \
         TAGCACHED_TLS_CLIENT_CA=FILE), or --insecure-no-auth (TAGCACHED_INSECURE_NO_AUTH=true) \
         to serve it without authentication anyway (on a network you trust)"
    )]
    Unauthenticated {
        /// The addresses beyond loopback.
        addrs: String,
    },
}

impl ConfigError {
    /// Whether the flags are valid but the daemon cannot start with them:
    /// exit status 1 rather than 2 (see the binary's exit statuses).
    pub fn is_start_error(&self) -> bool {
        matches!(
            self,
            ConfigError::AuthTokenFile(_)
                | ConfigError::Unauthenticated { .. }
                | ConfigError::AdminTokenFile(_)
                | ConfigError::AdminExposed { .. }
        )
    }
}

/// Smallest memory budget a shard accepts.
const MIN_MEMORY_PER_SHARD: usize = 1 << 20;

impl Args {
    /// Validates the arguments into a configuration.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let threads = match self.threads {
            Some(threads) => threads,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if !(1..=1024).contains(&threads) {
            return Err(ConfigError::Threads(threads));
        }
        let minimum = MIN_MEMORY_PER_SHARD * threads;
        let memory = self.memory.unwrap_or_else(|| default_memory(minimum));
        if memory < minimum {
            return Err(ConfigError::Memory {
                memory,
                minimum,
                per_shard: MIN_MEMORY_PER_SHARD,
            });
        }
        if self.max_value_size == 0 || self.max_value_size > 1 << 30 {
            return Err(ConfigError::MaxValueSize);
        }
        if self.max_key_size == 0 || self.max_key_size > u32::from(u16::MAX) {
            return Err(ConfigError::MaxKeySize);
        }
        if self.max_tags == 0 || self.max_tags > u32::from(u16::MAX) {
            return Err(ConfigError::MaxTags);
        }
        if self.max_connections == 0 {
            return Err(ConfigError::MaxConnections);
        }
        if !(1..=3600).contains(&self.lease_time) {
            return Err(ConfigError::LeaseTime);
        }
        if !(1..=3600).contains(&self.auth_timeout) {
            return Err(ConfigError::AuthTimeout);
        }
        let listen = resolve("--bind", &self.bind, self.port)?;
        self.check_exposure(&listen)?;
        let auth = match &self.auth_token_file {
            Some(token_file) => Some(AuthConfig {
                tokens: Arc::new(TokenSet::read(token_file)?),
                token_file: token_file.clone(),
                timeout: Duration::from_secs(self.auth_timeout),
            }),
            None => None,
        };
        let limits = Limits {
            max_key_length: self.max_key_size,
            max_tags: self.max_tags,
            max_value_length: self.max_value_size as u32,
            ..Limits::default()
        }
        .with_fitted_max_frame();
        let admin = self.admin_config()?;
        Ok(Config {
            listen,
            threads,
            memory,
            limits,
            max_connections: self.max_connections,
            connection_memory: self.connection_memory,
            partial_frame_memory: self.partial_frame_memory,
            idle_timeout: seconds_or_never(self.idle_timeout),
            frame_timeout: seconds_or_never(self.frame_timeout),
            lease_time: Duration::from_secs(self.lease_time),
            auth,
            tls: self.tls_cert.zip(self.tls_key).map(|(cert, key)| TlsFiles {
                cert,
                key,
                client_ca: self.tls_client_ca,
            }),
            admin,
            ..Config::local_ephemeral()
        })
    }

    /// Refuses to serve an address beyond loopback to clients that prove
    /// nothing (Redis's protected mode, made explicit), unless the operator
    /// says so with `--insecure-no-auth`.
    fn check_exposure(&self, listen: &[SocketAddr]) -> Result<(), ConfigError> {
        let exposed = beyond_loopback(listen);
        if exposed.is_empty() || self.authenticates_clients() || self.insecure_no_auth {
            return Ok(());
        }
        Err(ConfigError::Unauthenticated {
            addrs: exposed.join(" "),
        })
    }

    /// Whether clients must prove who they are before they are served: a
    /// token, or a certificate from the client CA.
    fn authenticates_clients(&self) -> bool {
        self.auth_token_file.is_some() || self.tls_client_ca.is_some()
    }

    /// The admin listener's configuration: off without `--admin-port`;
    /// beyond loopback only with a token, since it serves `/purge`.
    fn admin_config(&self) -> Result<Option<AdminConfig>, ConfigError> {
        let Some(port) = self.admin_port else {
            if self.admin_token_file.is_some() {
                return Err(ConfigError::AdminTokenWithoutPort);
            }
            return Ok(None);
        };
        let listen = resolve("--admin-bind", &self.admin_bind, port)?;
        let tokens = match &self.admin_token_file {
            Some(file) => Some(Arc::new(
                TokenSet::read(file).map_err(ConfigError::AdminTokenFile)?,
            )),
            None => None,
        };
        let exposed = beyond_loopback(&listen);
        if tokens.is_none() && !exposed.is_empty() {
            return Err(ConfigError::AdminExposed {
                addrs: exposed.join(" "),
            });
        }
        Ok(Some(AdminConfig {
            listen,
            token_file: self.admin_token_file.clone(),
            tokens,
        }))
    }
}

/// The addresses of `listen` that are not loopback, as text.
fn beyond_loopback(listen: &[SocketAddr]) -> Vec<String> {
    listen
        .iter()
        .filter(|addr| !addr.ip().is_loopback())
        .map(ToString::to_string)
        .collect()
}

/// `0` is never, as memcached's `idle_timeout` has it.
fn seconds_or_never(seconds: u64) -> Option<Duration> {
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

/// A quarter of the memory the host gives this process (RAM, or the
/// cgroup's limit if smaller), at most [`DEFAULT_MEMORY`], and at least
/// `minimum`: a cache that shares its machine or container should not be
/// the process the OOM killer picks. Logged, with what it was taken from.
fn default_memory(minimum: usize) -> usize {
    let host = HostMemory::read();
    let budget = usize::try_from(host.default_budget())
        .unwrap_or(DEFAULT_MEMORY)
        .max(minimum);
    let shown = |bytes: Option<u64>, otherwise: &str| {
        bytes.map_or(otherwise.to_owned(), |bytes| {
            Size(bytes as usize).to_string()
        })
    };
    tracing::info!(
        memory = %Size(budget),
        ram = %shown(host.ram, "unknown"),
        cgroup_limit = %shown(host.cgroup_limit, "none"),
        "no --memory: taking a quarter of RAM or of the cgroup's memory limit, whichever is \
         smaller, at most 1GiB"
    );
    budget
}

/// The addresses `host` stands for, with `port`: an IP address (IPv6 with
/// or without brackets), or a host name resolved now, every address it
/// resolves to in the resolver's order, without repeats.
fn resolve(flag: &'static str, host: &str, port: u16) -> Result<Vec<SocketAddr>, ConfigError> {
    let bind_error = |reason: String| ConfigError::Bind {
        flag,
        host: host.to_owned(),
        reason,
    };
    let bare = host
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if bare.is_empty() || bare.contains(|c: char| c.is_whitespace() || c == ':' || c == '/') {
        return Err(bind_error("not an IP address or a host name".to_owned()));
    }
    let resolved = (bare, port)
        .to_socket_addrs()
        .map_err(|error| bind_error(format!("cannot resolve: {error}")))?;
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for addr in resolved {
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    if addrs.is_empty() {
        return Err(bind_error("resolves to no address".to_owned()));
    }
    Ok(addrs)
}

/// Levels `--log-level` takes as a word.
const LOG_LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Checks a `--log-level`: comma-separated tracing `EnvFilter` directives
/// whose levels are all off, error, warn, info, debug or trace
/// (case-insensitive); returns them without the spaces around each. A bare
/// word must be a level: `EnvFilter` would read `warning` as "everything
/// from a module named `warning`", which logs nothing at all.
pub fn parse_log_filter(text: &str) -> Result<String, String> {
    let directives: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|directive| !directive.is_empty())
        .collect();
    if directives.is_empty() {
        return Err("no level: use off, error, warn, info, debug or trace".to_owned());
    }
    for &directive in &directives {
        let level = directive
            .rsplit_once('=')
            .map_or(directive, |(_, level)| level);
        if !LOG_LEVELS
            .iter()
            .any(|known| known.eq_ignore_ascii_case(level))
        {
            let hint = match level.to_ascii_lowercase().as_str() {
                "warning" => " (did you mean `warn`?)",
                "err" | "fatal" | "critical" => " (did you mean `error`?)",
                "information" | "notice" => " (did you mean `info`?)",
                "verbose" | "all" => " (did you mean `trace`?)",
                "none" | "quiet" | "silent" => " (did you mean `off`?)",
                _ => "",
            };
            return Err(format!(
                "unknown log level `{level}`{hint}: use off, error, warn, info, debug or \
                 trace, or directives such as `tagcached=debug`"
            ));
        }
    }
    let filter = directives.join(",");
    EnvFilter::try_new(&filter).map_err(|error| format!("`{text}`: {error}"))?;
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_bind_to_loopback_on_11311() {
        let config = Args::parse_from(["tagcached", "--threads", "2"])
            .into_config()
            .expect("valid");
        assert_eq!(config.listen, ["127.0.0.1:11311".parse().expect("addr")]);
        assert_eq!(config.threads, 2);
        assert_eq!(config.limits.max_value_length, 1 << 20);
        assert!(config.memory <= DEFAULT_MEMORY);
        assert_eq!(config.idle_timeout, Some(DEFAULT_IDLE_TIMEOUT));
        assert_eq!(config.frame_timeout, Some(DEFAULT_FRAME_TIMEOUT));
    }

    #[test]
    fn a_zero_timeout_is_never() {
        let config = Args::parse_from(["tagcached", "--idle-timeout", "0", "--frame-timeout", "0"])
            .into_config()
            .expect("valid");
        assert_eq!((config.idle_timeout, config.frame_timeout), (None, None));
        let config = Args::parse_from(["tagcached", "--idle-timeout", "60"])
            .into_config()
            .expect("valid");
        assert_eq!(config.idle_timeout, Some(Duration::from_secs(60)));
    }

    /// Issue 8, item 11: containers configure by environment. Checks every
    /// flag, including ones added later.
    #[test]
    fn every_flag_reads_an_environment_variable_named_after_it() {
        use clap::CommandFactory;
        let command = Args::command();
        let mut flags = 0;
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "help" | "version") {
                continue;
            }
            let expected = format!("TAGCACHED_{}", long.replace('-', "_").to_ascii_uppercase());
            let env = arg.get_env().and_then(|env| env.to_str());
            assert_eq!(env, Some(expected.as_str()), "--{long}");
            flags += 1;
        }
        assert!(flags >= 13, "{flags} flags");
    }

    #[test]
    fn log_levels_and_directives_are_accepted() {
        for text in [
            "info",
            "WARN",
            "off",
            "tagcached=debug",
            "warn,tagcached::connection=trace",
        ] {
            assert_eq!(parse_log_filter(text).as_deref(), Ok(text), "{text}");
        }
        assert_eq!(
            parse_log_filter(" error , tagcached=info ").as_deref(),
            Ok("error,tagcached=info"),
            "spaces around directives are dropped"
        );
    }

    /// Issue 8, item 9: `--log-level warning` logged nothing at all.
    #[test]
    fn unknown_log_levels_are_refused() {
        let error = parse_log_filter("warning").expect_err("warning");
        assert!(error.contains("did you mean `warn`"), "{error}");
        for text in [
            "verbose",
            "tagcached=loud",
            "tagcached",
            "info,chatty",
            "",
            " , ",
        ] {
            assert!(parse_log_filter(text).is_err(), "{text:?} accepted");
        }
    }

    #[test]
    fn bind_takes_addresses_and_host_names() {
        let v6: SocketAddr = "[::1]:11311".parse().expect("addr");
        assert_eq!(resolve("--bind", "::1", 11311).expect("bare IPv6"), [v6]);
        assert_eq!(
            resolve("--bind", "[::1]", 11311).expect("bracketed IPv6"),
            [v6]
        );
        let local = resolve("--bind", "localhost", 4242).expect("localhost resolves");
        assert!(!local.is_empty());
        assert!(local
            .iter()
            .all(|addr| addr.ip().is_loopback() && addr.port() == 4242));
        for bad in ["", "local host", "localhost:11311", "a/b"] {
            assert!(
                matches!(resolve("--bind", bad, 1), Err(ConfigError::Bind { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_non_loopback_bind_needs_authentication_or_insecure_no_auth() {
        let parse = |args: &[&str]| {
            Args::parse_from(std::iter::once("tagcached").chain(args.iter().copied())).into_config()
        };
        let error = parse(&["--bind", "0.0.0.0", "--threads", "1"]).expect_err("refused");
        assert!(
            matches!(&error, ConfigError::Unauthenticated { addrs } if addrs == "0.0.0.0:11311")
        );
        assert!(error.is_start_error());
        assert!(error.to_string().contains("--insecure-no-auth"), "{error}");
        let config = parse(&["--bind", "0.0.0.0", "--threads", "1", "--insecure-no-auth"])
            .expect("allowed when asked");
        assert!(config.auth.is_none());
        let config = parse(&["--bind", "::1", "--threads", "1"]).expect("loopback");
        assert!(config.auth.is_none());
        // TLS client certificates authenticate; TLS alone does not.
        let tls = [
            "--bind",
            "0.0.0.0",
            "--threads",
            "1",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ];
        let error = parse(&tls).expect_err("TLS without client certificates");
        assert!(matches!(error, ConfigError::Unauthenticated { .. }));
        assert!(error.to_string().contains("--tls-client-ca"), "{error}");
        let with_ca: Vec<&str> = tls
            .iter()
            .copied()
            .chain(["--tls-client-ca", "ca.pem"])
            .collect();
        let config = parse(&with_ca).expect("client certificates authenticate");
        assert!(config.tls.is_some_and(|tls| tls.authenticates()));
        let missing = parse(&[
            "--bind",
            "0.0.0.0",
            "--threads",
            "1",
            "--auth-token-file",
            "/nonexistent/tagcached-tokens",
        ])
        .expect_err("an unreadable token file");
        assert!(matches!(missing, ConfigError::AuthTokenFile(_)));
        assert!(missing.is_start_error());
        assert!(matches!(
            parse(&["--auth-timeout", "0"]),
            Err(ConfigError::AuthTimeout)
        ));
    }

    #[test]
    fn tls_takes_a_certificate_and_its_key_and_optionally_a_client_ca() {
        let parse = |args: &[&str]| {
            Args::try_parse_from(std::iter::once("tagcached").chain(args.iter().copied()))
                .map(|args| args.into_config().expect("valid").tls)
        };
        assert_eq!(parse(&[]).expect("parses"), None);
        let files = parse(&["--tls-cert", "c.pem", "--tls-key", "k.pem"]).expect("parses");
        assert_eq!(
            files,
            Some(TlsFiles {
                cert: "c.pem".into(),
                key: "k.pem".into(),
                client_ca: None,
            })
        );
        let files = parse(&[
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
            "--tls-client-ca",
            "ca.pem",
        ])
        .expect("parses");
        assert_eq!(
            files.and_then(|files| files.client_ca),
            Some("ca.pem".into())
        );
        for half in [
            &["--tls-cert", "c.pem"][..],
            &["--tls-key", "k.pem"],
            &["--tls-client-ca", "ca.pem"],
        ] {
            assert!(parse(half).is_err(), "{half:?} accepted");
        }
    }

    #[test]
    fn the_admin_port_is_off_unless_given_and_loopback_by_default() {
        let parse = |args: &[&str]| {
            Args::parse_from(std::iter::once("tagcached").chain(args.iter().copied())).into_config()
        };
        assert!(parse(&[]).expect("valid").admin.is_none());
        let admin = parse(&["--admin-port", "9311"])
            .expect("valid")
            .admin
            .expect("on");
        assert_eq!(admin.listen, ["127.0.0.1:9311".parse().expect("addr")]);
        assert!(admin.tokens.is_none());
        let exposed = parse(&["--admin-port", "9311", "--admin-bind", "0.0.0.0"]);
        assert!(
            matches!(&exposed, Err(error @ ConfigError::AdminExposed { .. }) if error.is_start_error()),
            "{exposed:?}"
        );
        assert!(matches!(
            parse(&["--admin-token-file", "/nonexistent"]),
            Err(ConfigError::AdminTokenWithoutPort)
        ));
        assert!(matches!(
            parse(&[
                "--admin-port",
                "1",
                "--admin-token-file",
                "/nonexistent/tokens"
            ]),
            Err(ConfigError::AdminTokenFile(_))
        ));
    }

    #[test]
    fn rejects_nonsense() {
        let parse = |args: &[&str]| {
            Args::parse_from(std::iter::once("tagcached").chain(args.iter().copied())).into_config()
        };
        assert!(matches!(
            parse(&["--threads", "0"]),
            Err(ConfigError::Threads(0))
        ));
        assert!(matches!(
            parse(&["--threads", "4", "--memory", "1MiB"]),
            Err(ConfigError::Memory { .. })
        ));
        assert!(matches!(
            parse(&["--max-connections", "0"]),
            Err(ConfigError::MaxConnections)
        ));
    }
}
