//! How to open a connection: [`ConnectOptions`], and [`Connection::connect`]
//! for the defaults.

use std::time::Duration;

use bytes::Bytes;
use tagcached_protocol::response::{Features, HelloInfo};
use tagcached_protocol::{ErrorCode, PROTOCOL_VERSION};
use tokio::net::{TcpStream, ToSocketAddrs};

use crate::command::{Auth, Call, Command, Hello};
use crate::connection::{within, Connection};
use crate::driver::Link;
use crate::error::{Error, Result};
use crate::tls::TlsOptions;

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
    auth_token: Option<AuthToken>,
    tls: Option<TlsOptions>,
}

/// A token for AUTH, kept out of `Debug` output (options end up in logs).
#[derive(Clone)]
pub(crate) struct AuthToken(Bytes);

impl AuthToken {
    pub(crate) fn new(token: impl AsRef<[u8]>) -> AuthToken {
        AuthToken(Bytes::copy_from_slice(token.as_ref()))
    }
}

impl std::fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthToken(<redacted>)")
    }
}

impl Default for ConnectOptions {
    fn default() -> ConnectOptions {
        ConnectOptions {
            client_name: concat!("tagcached-client/", env!("CARGO_PKG_VERSION")).to_owned(),
            shard: None,
            connect_timeout: None,
            request_timeout: None,
            queue_depth: ConnectOptions::DEFAULT_QUEUE_DEPTH,
            auth_token: None,
            tls: None,
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

    /// Connect with TLS (protocol.md §1), verifying the server as `tls`
    /// says. [`connect`](ConnectOptions::connect) then needs
    /// [`TlsOptions::server_name`], since it is not given a host name; a
    /// [`Client`](crate::Client) takes the name from each server's address.
    pub fn tls(mut self, tls: TlsOptions) -> ConnectOptions {
        self.tls = Some(tls);
        self
    }

    /// The token to send with AUTH (protocol.md §6.12) when the server's
    /// HELLO says it requires authentication; a server that does not is
    /// sent nothing. Without a token, connecting to a server that requires
    /// one fails with [`Error::Auth`].
    pub fn auth_token(mut self, token: impl AsRef<[u8]>) -> ConnectOptions {
        self.auth_token = Some(AuthToken::new(token));
        self
    }

    pub(crate) fn with_auth_token(mut self, token: Option<AuthToken>) -> ConnectOptions {
        self.auth_token = token;
        self
    }

    /// Opens a connection and exchanges HELLO (after the TLS handshake, if
    /// [`tls`](ConnectOptions::tls) is set), then AUTH if the server
    /// requires authentication.
    ///
    /// Must run inside a tokio runtime: the connection's reader and writer
    /// are spawned on it.
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> Result<Connection> {
        self.connect_named(addr, None).await
    }

    /// As [`connect`](ConnectOptions::connect) to `address` (`host:port`,
    /// `[v6]:port`), whose host is the name the server's TLS certificate
    /// must carry unless [`TlsOptions::server_name`] set one.
    pub async fn connect_to_address(&self, address: &str) -> Result<Connection> {
        self.connect_named(address, Some(address)).await
    }

    async fn connect_named(
        &self,
        addr: impl ToSocketAddrs,
        address: Option<&str>,
    ) -> Result<Connection> {
        let server_name = match &self.tls {
            Some(tls) => Some(tls.name_for(address)?),
            None => None,
        };
        let attempt = async {
            let stream = TcpStream::connect(addr).await?;
            // Requests are batched by the writer already; Nagle would only
            // delay a lone request.
            stream.set_nodelay(true)?;
            let server = stream.peer_addr()?.to_string();
            let link = match (&self.tls, server_name) {
                (Some(tls), Some(name)) => {
                    let (read, write) = tokio::io::split(tls.handshake(name, stream).await?);
                    Link::spawn(read, write, self.queue_depth)
                }
                _ => {
                    let (read, write) = stream.into_split();
                    Link::spawn(read, write, self.queue_depth)
                }
            };
            self.handshake(link, &server).await
        };
        within(self.connect_timeout, attempt).await
    }

    async fn handshake(&self, link: Link, server: &str) -> Result<Connection> {
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
            Some(wanted) if wanted != info.shard => {
                return Err(Error::protocol(format!(
                    "asked for shard {wanted}, served by shard {}",
                    info.shard
                )))
            }
            _ => {}
        }
        self.authenticate(&link, &info, server).await?;
        Ok(Connection::new(link, info, self.request_timeout))
    }

    /// Sends AUTH if the server requires authentication (HELLO's bit 5).
    async fn authenticate(&self, link: &Link, info: &HelloInfo, server: &str) -> Result<()> {
        if !info.features.contains(Features::AUTH) {
            return Ok(());
        }
        let auth_error = |reason: String| Error::Auth {
            server: server.to_owned(),
            reason,
        };
        let Some(AuthToken(token)) = &self.auth_token else {
            return Err(auth_error(
                "the server requires authentication and no auth token was given".to_owned(),
            ));
        };
        let Call { request, command } = Auth::call(token.clone());
        match link
            .round_trip(request)
            .await
            .and_then(|frames| command.answer(frames))
        {
            Ok(()) => Ok(()),
            Err(Error::Server {
                code: ErrorCode::AuthFailed,
                message,
            }) => Err(auth_error(format!(
                "authentication failed (AUTH_FAILED: {message})"
            ))),
            Err(other) => Err(other),
        }
    }
}
