//! Shared by the client's end-to-end tests: in-process servers on
//! 127.0.0.1:0, a proxy that can cut a server off without stopping it, a
//! bound on every test, since the failures these tests guard against are
//! hangs, and `tagcached-cli` run as a child process ([`cli`]).

#![allow(dead_code)] // Each test binary uses its own part of this.

pub mod cli;
pub mod fake_peer;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tagcached::{Config, Server};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The longest any test may take.
pub const BOUND: Duration = Duration::from_secs(30);

/// Runs `test`, failing if it takes longer than [`BOUND`].
pub async fn bounded<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, test)
        .await
        .expect("finished instead of hanging")
}

/// A server with two threads on an ephemeral loopback port.
pub fn start_server() -> Server {
    Server::start(Config::local_ephemeral()).expect("server starts")
}

/// A server with two threads on an ephemeral loopback port, configured
/// further by `change`.
pub fn start_server_with(change: impl FnOnce(&mut Config)) -> Server {
    let mut config = Config::local_ephemeral();
    change(&mut config);
    Server::start(config).expect("server starts")
}

/// A server on `addr`, e.g. to restart one where it was.
pub fn start_server_at(addr: SocketAddr) -> Server {
    let mut config = Config::local_ephemeral();
    config.listen = vec![addr];
    Server::start(config).expect("server restarts on its port")
}

/// Stops `server` and waits for it, off the async threads: its workers
/// wait for their connections to close.
pub async fn stop_server(server: Server) {
    server.shutdown();
    tokio::task::spawn_blocking(move || drop(server))
        .await
        .expect("server stopped");
}

/// Polls `condition` every few milliseconds until it holds, failing after
/// `limit`.
pub async fn eventually(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A TCP proxy in front of a server, which can cut the server off (close
/// every connection and refuse new ones) while the server keeps its data.
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
}

struct ProxyState {
    cut: AtomicBool,
    /// Cancelled to close every connection of the current generation.
    generation: Mutex<CancellationToken>,
    stop: CancellationToken,
}

impl Proxy {
    /// Listens on 127.0.0.1:0 and forwards to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(ProxyState {
            cut: AtomicBool::new(false),
            generation: Mutex::new(CancellationToken::new()),
            stop: CancellationToken::new(),
        });
        tokio::spawn(accept_loop(listener, target, Arc::clone(&state)));
        Proxy { addr, state }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        let mut generation = self.state.generation.lock().unwrap();
        generation.cancel();
        *generation = CancellationToken::new();
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stop.cancel();
        self.state.generation.lock().unwrap().cancel();
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, state: Arc<ProxyState>) {
    loop {
        let accepted = tokio::select! {
            () = state.stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((mut inbound, _)) = accepted else {
            continue;
        };
        if state.cut.load(Ordering::SeqCst) {
            drop(inbound);
            continue;
        }
        let generation = state.generation.lock().unwrap().clone();
        tokio::spawn(async move {
            let Ok(mut outbound) = TcpStream::connect(target).await else {
                return;
            };
            tokio::select! {
                () = generation.cancelled() => {}
                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
            }
        });
    }
}
