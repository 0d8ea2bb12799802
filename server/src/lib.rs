//! The tagcached daemon as a library: [`Server::start`] binds, spawns the
//! workers and returns; tests start it on port 0 and read the address back.
//!
//! # Thread model
//!
//! The server runs one worker thread per core (`--threads`). Each worker
//! has its own single-threaded tokio runtime, its own listening socket on
//! the shared port (SO_REUSEPORT, so the kernel balances connections with no
//! shared accept lock; one socket per address when `--bind` names several;
//! and only among this process's workers, see [`listener`]), and owns one
//! shard of the key space: a
//! `tagcached_store::Shard` with its table, tag state, TTLs and memory
//! budget (`--memory` divided by the thread count). Only the owning thread
//! touches a shard, so the request path takes no lock.
//!
//! A connection stays on the worker that accepted it and is served in
//! rounds ([`connection`]): what it has read is planned into ops on the
//! shards the requests touch ([`command`]); ops on the worker's own shard
//! run in place, and the ops for each other shard travel there together,
//! one message per round and shard, and come back with their answers
//! ([`router`] explains the batched hop, and how shard-aware clients skip
//! it). INVALIDATE_TAGS and FLUSH_ALL run on every shard and are answered
//! once every shard has applied them, which is what makes the invalidation
//! guarantee hold across threads: after the answer, no shard can serve an
//! entry the invalidation covers.
//!
//! The one piece of shared mutable state on the request path is the global
//! invalidation sequence ([`sequence`]), an atomic read by GET and SET and
//! written only by invalidations.
//!
//! Memory per connection is bounded by `--connection-memory` (see
//! [`connection`]); a client that does not read its answers stops being
//! read, and holds up no one else.
//!
//! With `--auth-token-file`, a connection is served only HELLO, PING and
//! AUTH until it authenticates ([`auth`]): the state is the connection's
//! own, checked once per round, and moves with it when HELLO hands it to
//! another worker. [`Server::reload`] (SIGHUP) reads the tokens again.
//!
//! With `--tls-cert` the port speaks TLS ([`tls`]): a worker accepts, runs
//! the handshake, and serves the connection as any other; at a HELLO that
//! asks for another shard, the TLS session moves with the socket.
//! [`Server::reload`] (SIGHUP) swaps in new certificates for later
//! handshakes.
//!
//! # The admin listener
//!
//! With `--admin-port`, one more thread runs the admin HTTP API
//! ([`admin`]: `/metrics`, `/healthz`, `/readyz`, `/purge`) on a runtime
//! of its own. It reaches the workers only by message: a probe each for
//! their counters and latency histograms ([`probe`], which the workers
//! keep for themselves, [`latency`]), and batches, like any connection's,
//! for a purge.
//!
//! # Layering
//!
//! Modules depend downward only: `lib` on `admin`, `reload`, `worker` and
//! `connection`; `admin` on `probe`, `router` and `command`; `worker` on
//! `connection` and `probe`; `connection` on `router` and `context`;
//! `probe` on `context` and `latency`; `router` and `context` on `command`
//! (the one module where the protocol meets the store); that and `reload`
//! on `shared` and `admission`; those on `tls`, `config` and `sequence`;
//! `tls` on `config`. `auth` (the tokens, and a connection's standing)
//! depends on none of them, and several on it.
//!
//! # Failure
//!
//! The binary aborts the process on any panic ([`abort`]): a worker that
//! died would leave its shard unreachable while the daemon looked alive.
//!
//! # Shutdown
//!
//! [`Server::shutdown`] (SIGINT or SIGTERM in the binary) stops the accept
//! loops; each connection finishes the requests it has read, writes their
//! responses and closes, reading nothing more (the end of stream follows
//! its last response, and what the client still sends is drained rather
//! than reset: `connection/close.rs`); the workers exit once every
//! connection on every worker is done, since a connection may still need
//! another worker's shard, or after `shutdown_grace`, whichever comes
//! first.

pub mod abort;
pub mod admin;
pub mod admission;
pub mod auth;
pub mod command;
pub mod config;
pub mod connection;
pub mod context;
pub mod fd_limit;
pub mod host_memory;
pub mod inbox;
pub mod latency;
pub mod listener;
pub mod log_limit;
pub mod probe;
pub mod reload;
pub mod replies;
pub mod router;
pub mod sequence;
pub mod shared;
pub mod size;
pub mod tls;
pub mod worker;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio_util::sync::CancellationToken;

pub use config::{AdminConfig, Args, Config};

use crate::admin::Admin;
use crate::config::TlsFiles;
use crate::router::Router;
use crate::sequence::SequenceCounter;
use crate::shared::Shared;

/// A running server. Dropping it shuts it down and waits for the workers.
pub struct Server {
    shared: Arc<Shared>,
    local_addrs: Vec<SocketAddr>,
    shutdown: CancellationToken,
    workers: Vec<JoinHandle<io::Result<()>>>,
    /// Stopped after the workers, so `/readyz` says "stopping" while they
    /// finish their connections.
    admin: Option<Admin>,
}

impl Server {
    /// Binds the listeners and starts one worker thread per configured
    /// thread. Returns once the server accepts connections. Fails if
    /// another process listens on one of the addresses
    /// ([`listener`] says why).
    pub fn start(config: Config) -> io::Result<Server> {
        let tls = match &config.tls {
            Some(files) => Some(
                tls::ServerTls::load(files.clone())
                    .map_err(|error| io::Error::other(format!("TLS: {error}")))?,
            ),
            None => None,
        };
        if config.auth.is_none() && !config.tls.as_ref().is_some_and(TlsFiles::authenticates) {
            warn_if_exposed(&config.listen);
        }
        let listeners = listener::bind_all(&config.listen, config.threads)?;
        let local_addrs = listeners[0]
            .iter()
            .map(TcpListener::local_addr)
            .collect::<io::Result<Vec<_>>>()?;
        let (router, inboxes) = Router::with_inboxes(config.threads);
        let (probe_senders, probe_queues) = probe::queues(config.threads);
        let shutdown = CancellationToken::new();
        let mut shared = Shared::new(config, SequenceCounter::at_boot(), shutdown.clone());
        shared.tls = tls;
        let shared = Arc::new(shared);
        let admin = match &shared.config.admin {
            Some(admin_config) => Some(Admin::start(
                admin_config,
                shared.clone(),
                router.clone(),
                probe_senders,
            )?),
            None => None,
        };
        let mut workers = Vec::with_capacity(listeners.len());
        let per_worker = listeners.into_iter().zip(inboxes).zip(probe_queues);
        for (index, ((listeners, inbox), probes)) in per_worker.enumerate() {
            let shared = shared.clone();
            let router = router.clone();
            let worker = std::thread::Builder::new()
                .name(format!("tagcached-worker-{index}"))
                .spawn(move || {
                    worker::run(index as u16, shared, router, listeners, inbox, probes)
                })?;
            workers.push(worker);
        }
        if let Some(admin) = &admin {
            for admin_addr in admin.local_addrs() {
                tracing::info!(
                    %admin_addr,
                    token_required = admin.tokens().required(),
                    "admin API listening (/metrics /healthz /readyz /purge)"
                );
            }
        }
        for local_addr in &local_addrs {
            log_listener(*local_addr, &shared.config);
        }
        Ok(Server {
            shared,
            local_addrs,
            shutdown,
            workers,
            admin,
        })
    }

    /// Where the admin API listens (the first address), if it is on.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
            .as_ref()
            .and_then(|admin| admin.local_addrs().first().copied())
    }

    /// The address the server listens on (with the real port if 0 was
    /// asked); the first of [`Server::local_addrs`].
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addrs[0]
    }

    /// Every address the server listens on, all with the same port.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Reads every file-based secret again (the auth token file; the TLS
    /// certificate, key and client CA; the admin token file) and puts it in
    /// force for new authentications and handshakes; a file that cannot be
    /// used leaves the secret in force as it was, and is logged as an error.
    /// The binary calls this on SIGHUP.
    pub fn reload(&self) {
        let admin_tokens = self.admin.as_ref().map(Admin::tokens);
        reload::reload_secrets(&self.shared, admin_tokens);
    }

    /// Begins a graceful shutdown; returns at once.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// A token that, when cancelled, begins a graceful shutdown.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits for every worker to finish (after [`Server::shutdown`]).
    pub fn wait(mut self) -> io::Result<()> {
        self.join_workers()
    }

    fn join_workers(&mut self) -> io::Result<()> {
        let mut result = Ok(());
        for worker in self.workers.drain(..) {
            let outcome = worker
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a worker thread panicked")));
            if let Err(error) = outcome {
                result = Err(error);
            }
        }
        if let Some(mut admin) = self.admin.take() {
            if let Err(error) = admin.stop() {
                result = Err(error);
            }
        }
        result
    }
}

/// One line per listener, with what an operator checks first: where, how
/// many threads, and the limits, sizes in units.
fn log_listener(local_addr: SocketAddr, config: &Config) {
    use crate::size::Size;
    let seconds = |timeout: Option<std::time::Duration>| {
        timeout.map_or("off".to_owned(), |timeout| {
            format!("{}s", timeout.as_secs())
        })
    };
    tracing::info!(
        %local_addr,
        threads = config.threads,
        memory = %Size(config.memory),
        max_connections = config.max_connections,
        connection_memory = %Size(config.connection_memory),
        partial_frame_memory = %Size(config.partial_frame_memory),
        max_value_size = %Size(config.limits.max_value_length as usize),
        idle_timeout = %seconds(config.idle_timeout),
        frame_timeout = %seconds(config.frame_timeout),
        auth = config.auth.as_ref().map_or("off".to_owned(), |auth| {
            format!("{} tokens, {}s to authenticate", auth.tokens.len(), auth.timeout.as_secs())
        }),
        tls = match &config.tls {
            None => "off",
            Some(files) if files.client_ca.is_some() => "on, client certificates required",
            Some(_) => "on",
        },
        "tagcached listening"
    );
}

/// Warns about listening beyond loopback without authentication (allowed
/// only by `--insecure-no-auth`): anyone who can reach the port can read,
/// overwrite and invalidate the whole cache.
fn warn_if_exposed(addrs: &[SocketAddr]) {
    let exposed: Vec<String> = addrs
        .iter()
        .filter(|addr| !addr.ip().is_loopback())
        .map(ToString::to_string)
        .collect();
    if !exposed.is_empty() {
        tracing::warn!(
            addrs = %exposed.join(" "),
            "listening beyond loopback without authentication: anyone who can reach the port \
             can read, overwrite and invalidate the cache; firewall it or bind 127.0.0.1"
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let _ = self.join_workers();
    }
}
