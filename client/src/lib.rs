//! An async Rust client for the tagcached cache daemon.
//!
//! ```no_run
//! use std::time::Duration;
//! use tagcached_client::{Connection, Lookup, SetOptions, SetOutcome};
//!
//! # async fn example() -> tagcached_client::Result<()> {
//! let cache = Connection::connect("127.0.0.1:11311").await?;
//!
//! // Read; on a miss, recompute and store with the miss's fence, so a value
//! // computed from data read before an invalidation is never stored after it.
//! match cache.get_with_fence("user:42:profile").await? {
//!     Lookup::Hit(item) => println!("cached: {:?}", item.value),
//!     Lookup::Miss { fence } => {
//!         let profile = "{\"name\":\"Ada\"}"; // from the database
//!         let options = SetOptions::new()
//!             .ttl(Duration::from_secs(3600))
//!             .tag("user:42")
//!             .fence(fence);
//!         match cache.set("user:42:profile", profile, &options).await? {
//!             SetOutcome::Fenced => println!("user:42 changed meanwhile; not cached"),
//!             outcome => println!("{}", outcome.name()),
//!         }
//!     }
//! }
//!
//! // The user changed: every entry tagged user:42 is a miss from now on.
//! cache.invalidate_tags(["user:42"]).await?;
//! # Ok(()) }
//! ```
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
//! [`Pipeline`] makes the batching explicit: many commands, quiet ones
//! included, in one submission and one round trip.
//!
//! Layers, each importing only from those before it: `error`, `lookup`, `set`
//! (the types of answers); `reply` (response frames to those types);
//! `in_flight` (matching frames to requests); `driver` (the tasks and the
//! `Link` that reaches them); then the public API over a `Link`: `options`
//! (connect and HELLO), `connection`, `pipeline`.

mod connection;
mod driver;
mod error;
mod in_flight;
mod lookup;
mod options;
mod pipeline;
mod reply;
mod set;

pub use connection::Connection;
pub use error::{Error, Result};
pub use lookup::{Item, Lookup};
pub use options::ConnectOptions;
pub use pipeline::{Pipeline, Reply};
pub use set::{SetOptions, SetOutcome};
pub use tagcached_protocol::request::SetMode;
pub use tagcached_protocol::response::{Features, HelloInfo};
pub use tagcached_protocol::{shard_for_key, ErrorCode, Limits};
