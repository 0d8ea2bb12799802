//! How to open a connection: [`ConnectOptions`], and [`Connection::connect`]
//! for the defaults.

use std::time::Duration;

use bytes::Bytes;
use tagcached_protocol::PROTOCOL_VERSION;
use tokio::net::{TcpStream, ToSocketAddrs};

use crate::command::{Call, Command, Hello};
use crate::connection::{within, Connection};
use crate::driver::Link;
use crate::error::{Error, Result};

/// Settings for opening a [`Connection`].
///
/// ```no_run
/// # async fn example() -> tagcached_client::Result<()> {
/// use std::time::Duration;
/// use tagcached_client::ConnectOptions;
///
/// let connection = ConnectOptions::new()
///     .client_name("billing-worker")
///     .connect_timeout(Duration::from_secs(2))
///     .request_timeout(Duration::from_millis(250))
///     .connect("127.0.0.1:11311")
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    client_name: String,
    shard: Option<u16>,
    connect_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
    queue_depth: usize,
}

impl Default for ConnectOptions {
    fn default() -> ConnectOptions {
        ConnectOptions {
            client_name: concat!("tagcached-client/", env!("CARGO_PKG_VERSION")).to_owned(),
            shard: None,
            connect_timeout: None,
            request_timeout: None,
            queue_depth: ConnectOptions::DEFAULT_QUEUE_DEPTH,
        }
    }
}

impl Connection {
    /// Connects with default [`ConnectOptions`]: any shard, no timeouts.
    ///
    /// Must run inside a tokio runtime, on which the connection's reader
    /// and writer tasks are spawned.
    pub async fn connect(addr: impl ToSocketAddrs) -> Result<Connection> {
        ConnectOptions::new().connect(addr).await
    }

    /// Connects and asks to be served by `shard` (protocol.md §9), so keys
    /// of that shard need no hop between the server's threads.
    pub async fn connect_to_shard(addr: impl ToSocketAddrs, shard: u16) -> Result<Connection> {
        ConnectOptions::new().shard(shard).connect(addr).await
    }
}

impl ConnectOptions {
    /// Submissions that may wait for the writer before callers wait too.
    pub const DEFAULT_QUEUE_DEPTH: usize = 1024;

    /// Any shard, no timeouts, the default client name.
    pub fn new() -> ConnectOptions {
        ConnectOptions::default()
    }

    /// The name sent in HELLO, for the server's logs.
    pub fn client_name(mut self, name: impl Into<String>) -> ConnectOptions {
        self.client_name = name.into();
        self
    }

    /// Ask the server to serve this connection from `shard` (protocol.md
    /// §9); connecting fails if the server cannot.
    pub fn shard(mut self, shard: u16) -> ConnectOptions {
        self.shard = Some(shard);
        self
    }

    /// Bound the TCP connect and the HELLO exchange together; by default
    /// only the operating system bounds them.
    pub fn connect_timeout(mut self, timeout: Duration) -> ConnectOptions {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Bound each request (each whole pipeline); by default requests wait
    /// as long as the connection lives. A timed-out request leaves the
    /// connection usable. Change it per handle with
    /// [`Connection::with_request_timeout`].
    pub fn request_timeout(mut self, timeout: Duration) -> ConnectOptions {
        self.request_timeout = Some(timeout);
        self
    }

    /// How many submissions (single requests or whole pipelines) may queue
    /// for the writer before submitters wait; at least 1.
    pub fn queue_depth(mut self, depth: usize) -> ConnectOptions {
        self.queue_depth = depth.max(1);
        self
    }

    /// Opens a connection and exchanges HELLO.
    ///
    /// Must run inside a tokio runtime: the connection's reader and writer
    /// are spawned on it.
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> Result<Connection> {
        let attempt = async {
            let stream = TcpStream::connect(addr).await?;
            // Requests are batched by the writer already; Nagle would only
            // delay a lone request.
            stream.set_nodelay(true)?;
            let (read, write) = stream.into_split();
            self.handshake(Link::spawn(read, write, self.queue_depth))
                .await
        };
        within(self.connect_timeout, attempt).await
    }

    async fn handshake(&self, link: Link) -> Result<Connection> {
        let Call { request, command } =
            Hello::call(self.shard, Bytes::from(self.client_name.clone()));
        let info = command.answer(link.round_trip(request).await?)?;
        if info.version != PROTOCOL_VERSION {
            return Err(Error::protocol(format!(
                "server chose protocol version {}; this client speaks {PROTOCOL_VERSION}",
                info.version
            )));
        }
        match self.shard {
            Some(wanted) if wanted != info.shard => Err(Error::protocol(format!(
                "asked for shard {wanted}, served by shard {}",
                info.shard
            ))),
            _ => Ok(Connection::new(link, info, self.request_timeout)),
        }
    }
}
