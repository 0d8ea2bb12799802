//! An async Rust client for the tagcached cache daemon.
//!
//! [`Client`] is what an application holds: a cache over one or several
//! servers, cheap to clone, safe to share across tasks, with a small pool of
//! pipelined, shard-aware connections per server, timeouts, reconnection
//! with backoff, servers marked down after repeated failures, consistent
//! placement of keys over servers, fan-out invalidation (hard or soft),
//! batch calls, stale-while-revalidate reads with refresh leases,
//! cache-aside with fences and leases (one computer per key across
//! processes, see [`Client::fetch`]), authentication to servers that
//! require it ([`ClientBuilder::auth_token`]), TLS, with client
//! certificates if asked ([`ClientBuilder::tls`], [`TlsOptions`]) and,
//! behind the `serde` feature, typed values.
//!
//! ```no_run
//! use std::time::Duration;
//! use tagcached_client::Client;
//! # async fn render_user_page(id: u64) -> String {
//! #     format!("<h1>user {id}</h1>")
//! # }
//! # async fn example() -> tagcached_client::Result<()> {
//!
//! let cache = Client::builder()
//!     .servers(["10.0.0.1:11311", "10.0.0.2:11311"])
//!     .request_timeout(Duration::from_millis(100))
//!     .build()?;
//!
//! // Read, or compute and store (`render_user_page` is an `async fn`: the
//! // closure returns a future). The miss's fence keeps a value computed
//! // before an invalidation from being stored after it, and its lease makes
//! // concurrent misses, in every process, compute it once.
//! let page = cache
//!     .get_or_set_with("page:/users/42", ["user:42"], Duration::from_secs(3600), || {
//!         render_user_page(42)
//!     })
//!     .await?;
//!
//! // User 42 changed: every entry tagged user:42, on every server, is a miss
//! // from now on.
//! cache.invalidate_tags(["user:42"]).await?;
//! # drop(page);
//! # Ok(())
//! # }
//! ```
//!
//! [`Connection`] is the layer beneath: one TCP connection to one server,
//! for tools (`tagcached-cli`) and for explicit [`Pipeline`]s.
//!
//! # Features
//!
//! - `serde`: typed values (`Client::get_as`, `set_as`, `get_or_set_as`),
//!   encoded with postcard.
//! - `cli`: the `tagcached-cli` binary. Off by default, so that an
//!   application depending on this crate compiles neither clap nor anyhow.
//!
//! # Where a command is written
//!
//! Once, in `command/` (one file per command): the request it sends and
//! how its response frames become its answer. The surfaces only carry
//! those calls: a [`Connection`] sends one and waits for its answer, a
//! [`Pipeline`] queues many behind one NOOP and reports each as a
//! [`Reply`], and a [`Client`] picks the server and the connection. So a
//! new command is a file there and a one-line method on each surface.
//!
//! # How a connection works
//!
//! A [`Connection`] is one TCP connection driven by two tasks (see
//! `driver.rs`): callers queue requests; a writer task gives each an opaque
//! and writes everything queued in one go; a reader task matches each
//! response to its request by opaque, relying on the server answering in
//! request order (see `in_flight.rs`). So any number of tasks can share one
//! connection and their requests are pipelined. A caller that times out or
//! is dropped leaves the connection in step: its response is read and
//! discarded. When the connection fails, every request in flight fails with
//! the reason and new requests fail at once; no request ever receives
//! another's response.
//!
//! # How a client works
//!
//! `placement.rs` picks a key's server (rendezvous hashing); `pool.rs` holds
//! each server's connections in lanes, one per server shard, and picks the
//! lane of the key's shard; `health.rs` counts failures, marks servers down,
//! times the retries and keeps the invalidations a server missed until it
//! is back. `client.rs` (single keys, fan-out), `batch.rs`,
//! `cache_aside.rs` and `typed.rs` are the client's calls over them.
//!
//! Layers, each importing only from those before it: `error`, `lookup`,
//! `read`, `set`, `tag_status` (the types of questions and answers);
//! `command` (each command's request, and its response frames to those
//! types); `in_flight` (matching frames to
//! requests); `driver` (the tasks and the `Link` that reaches them); then
//! the connection API over a `Link`: `connection`, `options` (connect and
//! HELLO), `pipeline`; then the client: `placement`, `health`, `pool`,
//! `client`, `builder`, `batch`, `cache_aside`, `typed`. A module may add
//! methods to a type beneath it (`options` gives [`Connection`] its
//! `connect`, `pipeline` its `pipeline`, `builder` gives [`Client`] its
//! constructors, `batch` its batch calls), never the other way round.

mod batch;
mod builder;
mod cache_aside;
mod client;
mod command;
mod connection;
mod driver;
mod error;
mod health;
mod in_flight;
mod lookup;
mod options;
mod pipeline;
mod placement;
mod pool;
mod read;
mod set;
mod tag_status;
mod tls;
#[cfg(feature = "serde")]
mod typed;

pub use builder::ClientBuilder;
pub use cache_aside::{FetchContext, FetchOptions, FetchOutcome, Fetched};
pub use client::{Client, ServerStatus};
pub use connection::Connection;
pub use error::{Error, Result, ServerFailure};
pub use lookup::{Item, LeaseToken, Lookup};
pub use options::ConnectOptions;
pub use pipeline::{Pipeline, Reply};
pub use read::ReadOptions;
pub use set::{SetOptions, SetOutcome};
pub use tag_status::{Invalidation, SoftInvalidation, TagReport, TagState};
pub use tagcached_protocol::request::SetMode;
pub use tagcached_protocol::response::{Features, HelloInfo};
pub use tagcached_protocol::{shard_for_key, ErrorCode, Limits};
pub use tls::TlsOptions;
