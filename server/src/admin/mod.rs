//! The admin HTTP listener (`--admin-port`): `GET /metrics`, `GET
//! /healthz`, `GET /readyz` and `POST /purge`.
//!
//! It runs on a thread of its own with its own single-threaded runtime, so
//! it never runs on a worker and never takes a worker's time except to
//! answer what it asks: a probe per worker for `/metrics` and `/readyz`
//! ([`crate::probe`]), and one batch per shard for `/purge`, exactly as a
//! data-port connection on another worker would send. It reads nothing
//! the workers own directly.
//!
//! Bounds, since the port may face a network: at most
//! [`MAX_CONNECTIONS`] connections at once (more are closed at accept);
//! a request head of at most [`MAX_HEAD_BYTES`], arriving within
//! [`HEADER_READ_TIMEOUT`]; a body of at most [`MAX_BODY_BYTES`] (413),
//! arriving within [`BODY_READ_TIMEOUT`] (408); a connection lives at
//! most [`CONNECTION_LIFETIME`].
//!
//! With `--admin-token-file`, every request but `GET /healthz` needs
//! `Authorization: Bearer <token>` (`auth.rs`).

mod auth;
mod health;
pub mod metrics;
mod purge;
mod reply;
mod workers;

use std::convert::Infallible;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::rc::Rc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::LocalSet;
use tokio_util::sync::CancellationToken;

pub use self::auth::AdminTokens;
use self::reply::Reply;
use crate::config::AdminConfig;
use crate::listener;
use crate::log_limit::LogLimiter;
use crate::probe::ProbeSenders;
use crate::router::Router;
use crate::shared::Shared;

/// Admin connections served at once; more are closed as accepted. A
/// Prometheus server or two, a load balancer's health checks and a few
/// webhooks need far fewer.
pub const MAX_CONNECTIONS: usize = 64;
/// Bytes of request line and headers read before hyper answers 431.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Time for a request's head to arrive, once its connection is open or
/// the previous request on it is answered.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest `/purge` body: some thousand tags of typical length.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Time for a request's body to arrive.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest an admin connection lives (keep-alive included).
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// How long `/readyz` and `/metrics` wait for a worker to answer a probe.
pub const PROBE_BOUND: Duration = Duration::from_secs(1);

/// Connections closed at [`MAX_CONNECTIONS`], logged at most once a minute.
static AT_MAX_CONNECTIONS: LogLimiter = LogLimiter::new(Duration::from_secs(60));

/// What the admin thread's tasks share.
pub struct AdminState {
    shared: Arc<Shared>,
    router: Router,
    probes: ProbeSenders,
    tokens: Arc<AdminTokens>,
}

/// The running admin listener.
pub struct Admin {
    local_addrs: Vec<SocketAddr>,
    tokens: Arc<AdminTokens>,
    stop: CancellationToken,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Admin {
    /// Binds `config`'s addresses and starts the admin thread.
    pub fn start(
        config: &AdminConfig,
        shared: Arc<Shared>,
        router: Router,
        probes: ProbeSenders,
    ) -> io::Result<Admin> {
        let listeners = listener::bind_all(&config.listen, 1)
            .map_err(|error| io::Error::new(error.kind(), format!("the admin port: {error}")))?
            .pop()
            .unwrap_or_default();
        let local_addrs = listeners
            .iter()
            .map(StdListener::local_addr)
            .collect::<io::Result<Vec<_>>>()?;
        let tokens = Arc::new(AdminTokens::new(config));
        let state = AdminState {
            shared,
            router,
            probes,
            tokens: tokens.clone(),
        };
        let stop = CancellationToken::new();
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("tagcached-admin".to_owned())
                .spawn(move || run(state, listeners, stop))?
        };
        Ok(Admin {
            local_addrs,
            tokens,
            stop,
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The tokens in force, for [`crate::Server::reload`].
    pub fn tokens(&self) -> &AdminTokens {
        &self.tokens
    }

    /// Stops the listener and waits for its thread.
    pub fn stop(&mut self) -> io::Result<()> {
        self.stop.cancel();
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the admin thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn run(state: AdminState, listeners: Vec<StdListener>, stop: CancellationToken) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let state = Rc::new(state);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    LocalSet::new().block_on(&runtime, async move {
        for listener in listeners {
            let listener = TcpListener::from_std(listener)?;
            tokio::task::spawn_local(accept(state.clone(), listener, slots.clone()));
        }
        stop.cancelled().await;
        Ok(())
    })
}

async fn accept(state: Rc<AdminState>, listener: TcpListener, slots: Arc<Semaphore>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                tracing::debug!(%error, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if let Some(suppressed) = AT_MAX_CONNECTIONS.allow() {
                tracing::warn!(
                    max = MAX_CONNECTIONS,
                    suppressed,
                    "closing admin connections: at the limit of admin connections"
                );
            }
            continue;
        };
        let state = state.clone();
        tokio::task::spawn_local(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(&state, request).await) }
            });
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
            drop(slot);
        });
    }
}

async fn route(state: &AdminState, request: Request<Incoming>) -> Reply {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    if path == "/healthz" {
        return match parts.method {
            Method::GET => health::healthz(),
            _ => wrong_method("GET"),
        };
    }
    if let Some(refusal) = state.tokens.refuse(&parts) {
        return refusal;
    }
    match (path, &parts.method) {
        ("/readyz", &Method::GET) => health::readyz(state).await,
        ("/metrics", &Method::GET) => metrics_reply(state).await,
        ("/purge", &Method::POST) => match read_body(&parts, body).await {
            Ok(body) => purge::purge(state, &body).await,
            Err(refusal) => refusal,
        },
        ("/readyz" | "/metrics", _) => wrong_method("GET"),
        ("/purge", _) => wrong_method("POST"),
        _ => reply::error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no such endpoint: the admin API serves /metrics, /healthz, /readyz and /purge",
        ),
    }
}

fn wrong_method(allowed: &'static str) -> Reply {
    let mut answer = reply::error(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        &format!("this endpoint takes {allowed}"),
    );
    answer
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allowed));
    answer
}

/// The body, at most [`MAX_BODY_BYTES`] within [`BODY_READ_TIMEOUT`].
async fn read_body(
    parts: &hyper::http::request::Parts,
    body: Incoming,
) -> Result<hyper::body::Bytes, Reply> {
    let too_large = || {
        reply::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            &format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let collect = Limited::new(body, MAX_BODY_BYTES).collect();
    match tokio::time::timeout(BODY_READ_TIMEOUT, collect).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(error)) => Err(reply::error(
            StatusCode::BAD_REQUEST,
            "BAD_BODY",
            &format!("the body could not be read: {error}"),
        )),
        Err(_) => Err(reply::error(
            StatusCode::REQUEST_TIMEOUT,
            "TIMEOUT",
            "the body did not arrive within 10 seconds",
        )),
    }
}

async fn metrics_reply(state: &AdminState) -> Reply {
    let reports = workers::probe_all(&state.probes, PROBE_BOUND).await;
    let silent: Vec<String> = reports
        .iter()
        .enumerate()
        .filter(|(_, report)| report.is_none())
        .map(|(index, _)| index.to_string())
        .collect();
    if !silent.is_empty() {
        return reply::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            &format!("worker(s) {} did not answer in time", silent.join(", ")),
        );
    }
    let reports: Vec<_> = reports.into_iter().flatten().collect();
    match metrics::render(&state.shared, &reports) {
        Ok(text) => reply::with_type(StatusCode::OK, metrics::CONTENT_TYPE, text),
        Err(error) => reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            &error.to_string(),
        ),
    }
}
