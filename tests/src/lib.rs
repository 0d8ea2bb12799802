//! Harness for the end-to-end tests: a real tagcached server started
//! in-process on 127.0.0.1 port 0 ([`TestServer`]), or the `tagcached`
//! binary as a child process ([`Daemon`]) for what only a process shows
//! (exit status, signals, resident memory), and a raw protocol connection to
//! either ([`RawConn`]) that sends typed requests, pipelines of them, or
//! arbitrary bytes, and reads typed responses.
//!
//! Rules every test follows: the server is ready when [`TestServer::start`]
//! or [`Daemon::start`] returns, so nothing sleeps waiting for start-up;
//! every wait is bounded ([`within`], and each read by [`RECV_TIMEOUT`]);
//! every loop has a bound.
//! Waiting for something the server does asynchronously (a TTL running out,
//! the sweep, noticing a closed socket) polls under a [`Deadline`] instead
//! of guessing a fixed sleep.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use tagcached::{Config, Server};
use tagcached_protocol::request::{Command, Delete, Get, GetMany, Hello, InvalidateTags, Set};
use tagcached_protocol::request::{FlushAll, SetMode, TagStatus, Touch};
use tagcached_protocol::response::{ErrorReply, HelloInfo, Hit, Miss, Outcome, TagStatusInfo};
use tagcached_protocol::{
    shard_for_key, ClientFrameCodec, ErrorCode, FatalError, Flags, Opcode, Request, Response,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

pub mod daemon;
pub mod http;
pub mod tls;

pub use daemon::{run_to_exit, tagcached_binary, Daemon, BASE_ARGS};
pub use tagcached_protocol::{REQUEST_MAGIC, RESPONSE_MAGIC};

/// How far the server's clock may put a deadline from where the test's
/// clock does: it counts whole milliseconds. Tests that bound a TTL, a
/// soft window, a stale window or a lease time by their own clock allow
/// this much either side.
pub const CLOCK_SLACK: Duration = Duration::from_millis(2);

/// The bound on a whole test body (see [`within`]).
pub const TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The bound on waiting for one response frame, or for a close.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs a test body, failing the test if it takes longer than
/// [`TEST_TIMEOUT`].
pub async fn within<T>(body: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIMEOUT, body)
        .await
        .expect("the test did not finish within TEST_TIMEOUT")
}

/// A bound on polling for something the server does on its own time
/// (a TTL running out, the sweep, noticing a closed socket):
///
/// ```text
/// let deadline = Deadline::new("the key to expire", Duration::from_secs(3));
/// while conn.value("key").await.is_some() {
///     deadline.tick().await;
/// }
/// ```
#[derive(Debug)]
pub struct Deadline {
    what: String,
    limit: Duration,
    start: Instant,
}

impl Deadline {
    /// Time between polls.
    pub const POLL: Duration = Duration::from_millis(20);

    /// A deadline `limit` from now for `what`.
    pub fn new(what: impl Into<String>, limit: Duration) -> Deadline {
        Deadline {
            what: what.into(),
            limit,
            start: Instant::now(),
        }
    }

    /// Waits [`Deadline::POLL`] before the next poll; panics once the
    /// deadline has passed.
    pub async fn tick(&self) {
        assert!(
            self.start.elapsed() < self.limit,
            "timed out after {:?} waiting for {}",
            self.limit,
            self.what
        );
        tokio::time::sleep(Self::POLL).await;
    }
}

/// A tagcached server running in this process on 127.0.0.1, port 0.
/// Dropping it shuts the server down and waits for its threads.
pub struct TestServer {
    server: Server,
    config: Config,
}

impl TestServer {
    /// A server with [`Config::local_ephemeral`]: two threads, 64 MiB.
    pub fn start() -> TestServer {
        TestServer::with_config(|_| {})
    }

    /// A server with [`Config::local_ephemeral`] changed by `configure`.
    /// The listen address stays loopback with an ephemeral port.
    pub fn with_config(configure: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = Config::local_ephemeral();
        configure(&mut config);
        assert!(
            config.listen.iter().all(|addr| addr.ip().is_loopback()),
            "tests stay on loopback"
        );
        assert!(
            config
                .admin
                .iter()
                .flat_map(|admin| &admin.listen)
                .all(|addr| addr.ip().is_loopback()),
            "tests stay on loopback"
        );
        let server = Server::start(config.clone()).expect("the server starts");
        TestServer { server, config }
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Where the admin API listens, if the configuration turned it on.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.server.admin_addr()
    }

    /// Begins a graceful shutdown and returns at once; the server stops
    /// when dropped.
    pub fn begin_shutdown(&self) {
        self.server.shutdown();
    }

    /// The configuration the server was started with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The number of shards (worker threads).
    pub fn shard_count(&self) -> u16 {
        self.config.threads as u16
    }

    /// A new raw connection.
    pub async fn connect(&self) -> RawConn {
        RawConn::connect(self.addr()).await.expect("connect")
    }

    /// A new connection moved to `shard` by HELLO.
    pub async fn connect_to_shard(&self, shard: u16) -> RawConn {
        let mut conn = self.connect().await;
        let hello = conn.hello(Some(shard)).await;
        assert_eq!(hello.shard, shard, "HELLO moved the connection");
        conn
    }

    /// What SIGHUP does to the daemon: reloads the certificates.
    pub fn reload(&self) {
        self.server.reload();
    }

    /// Shuts the server down and waits for it, reporting worker errors.
    pub fn stop(self) -> io::Result<()> {
        self.server.shutdown();
        self.server.wait()
    }
}

/// Parsed STATS lines, `name value`.
#[derive(Debug, Clone)]
pub struct Stats(pub HashMap<String, String>);

impl Stats {
    /// Parses a STATS body.
    pub fn parse(body: &[u8]) -> Stats {
        let text = std::str::from_utf8(body).expect("STATS is UTF-8");
        let map = text
            .lines()
            .map(|line| {
                let (name, value) = line
                    .split_once(' ')
                    .unwrap_or_else(|| panic!("STATS line `{line}` is not `name value`"));
                (name.to_owned(), value.to_owned())
            })
            .collect();
        Stats(map)
    }

    /// A counter's raw text; panics if absent.
    pub fn text(&self, name: &str) -> &str {
        self.0
            .get(name)
            .unwrap_or_else(|| panic!("STATS has no `{name}`: {:?}", self.0))
    }

    /// A counter as a number; panics if absent or not a number.
    pub fn num(&self, name: &str) -> u64 {
        let text = self.text(name);
        text.parse()
            .unwrap_or_else(|_| panic!("STATS `{name}` is `{text}`, not a number"))
    }
}

/// A SET of `value` under `key` with `tags`: mode SET, no TTL, no fence,
/// client flags 0. Change fields for other cases.
pub fn set_cmd(key: impl AsRef<[u8]>, value: impl AsRef<[u8]>, tags: &[&str]) -> Set {
    Set {
        mode: SetMode::Set,
        client_flags: 0,
        ttl: 0,
        fence: None,
        lease: None,
        stale_after: None,
        key: Bytes::copy_from_slice(key.as_ref()),
        tags: tags
            .iter()
            .map(|tag| Bytes::copy_from_slice(tag.as_bytes()))
            .collect(),
        value: Bytes::copy_from_slice(value.as_ref()),
    }
}

/// A GET command.
pub fn get_cmd(key: impl AsRef<[u8]>) -> Command {
    Command::Get(Get {
        key: Bytes::copy_from_slice(key.as_ref()),
        request_tags: None,
    })
}

/// A GETM command.
pub fn get_many_cmd<K: AsRef<[u8]>>(keys: &[K]) -> Command {
    Command::GetMany(GetMany {
        keys: keys
            .iter()
            .map(|key| Bytes::copy_from_slice(key.as_ref()))
            .collect(),
        request_tags: None,
    })
}

/// A DELETE command.
pub fn delete_cmd(key: impl AsRef<[u8]>) -> Command {
    Command::Delete(Delete {
        key: Bytes::copy_from_slice(key.as_ref()),
    })
}

/// A TOUCH command.
pub fn touch_cmd(key: impl AsRef<[u8]>, ttl: u32) -> Command {
    Command::Touch(Touch {
        ttl,
        key: Bytes::copy_from_slice(key.as_ref()),
    })
}

/// An INVALIDATE_TAGS command.
pub fn invalidate_cmd(tags: &[&str]) -> Command {
    Command::InvalidateTags(InvalidateTags {
        tags: to_bytes(tags),
        soft_expire: None,
    })
}

/// A soft INVALIDATE_TAGS command with a window of `expire` seconds
/// (protocol.md §6.8).
pub fn soft_invalidate_cmd(tags: &[&str], expire: u32) -> Command {
    Command::InvalidateTags(InvalidateTags {
        tags: to_bytes(tags),
        soft_expire: Some(expire),
    })
}

/// A GET command with request-scoped tags (protocol.md §8.5).
pub fn get_scoped_cmd(key: impl AsRef<[u8]>, request_tags: &[&str]) -> Command {
    Command::Get(Get {
        key: Bytes::copy_from_slice(key.as_ref()),
        request_tags: Some(to_bytes(request_tags)),
    })
}

/// A GETM command with request-scoped tags (protocol.md §8.5).
pub fn get_many_scoped_cmd<K: AsRef<[u8]>>(keys: &[K], request_tags: &[&str]) -> Command {
    Command::GetMany(GetMany {
        keys: keys
            .iter()
            .map(|key| Bytes::copy_from_slice(key.as_ref()))
            .collect(),
        request_tags: Some(to_bytes(request_tags)),
    })
}

/// A TAG_STATUS command (protocol.md §6.11).
pub fn tag_status_cmd(tags: &[&str]) -> Command {
    Command::TagStatus(TagStatus {
        tags: to_bytes(tags),
    })
}

fn to_bytes(tags: &[&str]) -> Vec<Bytes> {
    tags.iter()
        .map(|tag| Bytes::copy_from_slice(tag.as_bytes()))
        .collect()
}

/// The wall clock in Unix milliseconds, to bound the times the server
/// reports.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

/// A HELLO command; `want_shard` `None` is "any shard".
pub fn hello_cmd(want_shard: Option<u16>) -> Command {
    Command::Hello(Hello {
        max_version: 1,
        want_shard,
        client_name: Bytes::from_static(b"tagcached-tests"),
    })
}

/// `count` distinct keys starting with `prefix` that `shard` owns on a
/// server with `shard_count` shards.
pub fn keys_on_shard(prefix: &str, shard: u16, shard_count: u16, count: usize) -> Vec<String> {
    let mut keys = Vec::with_capacity(count);
    // FNV-1a spreads these evenly; 1000 candidates per key is far more than
    // enough for any shard count the tests use.
    for i in 0..count * shard_count as usize * 1000 {
        if keys.len() == count {
            break;
        }
        let key = format!("{prefix}-{i}");
        if shard_for_key(key.as_bytes(), shard_count) == shard {
            keys.push(key);
        }
    }
    assert_eq!(keys.len(), count, "found keys on shard {shard}");
    keys
}

/// One key owned by each shard of a server with two: the keys a test
/// stores to see a behaviour on both shards.
pub fn keys_on_both_shards(prefix: &str) -> Vec<String> {
    [
        keys_on_shard(prefix, 0, 2, 1),
        keys_on_shard(prefix, 1, 2, 1),
    ]
    .concat()
}

/// A raw request frame: the 16-byte header (magic, version, opcode, flags,
/// status 0, reserved 0, opaque, body_length) and the body, for requests the
/// typed encoder will not produce.
pub fn raw_frame(opcode: u8, flags: u8, opaque: u32, body: &[u8]) -> Vec<u8> {
    raw_frame_with(
        REQUEST_MAGIC,
        1,
        opcode,
        flags,
        opaque,
        body.len() as u32,
        body,
    )
}

/// A raw frame with every header field chosen, including a `body_length`
/// that need not match `body`.
pub fn raw_frame_with(
    magic: u8,
    version: u8,
    opcode: u8,
    flags: u8,
    opaque: u32,
    body_length: u32,
    body: &[u8],
) -> Vec<u8> {
    let mut frame = Vec::with_capacity(16 + body.len());
    frame.put_u8(magic);
    frame.put_u8(version);
    frame.put_u8(opcode);
    frame.put_u8(flags);
    frame.put_u16(0);
    frame.put_u16(0);
    frame.put_u32(opaque);
    frame.put_u32(body_length);
    frame.put_slice(body);
    frame
}

/// A request with flags.
pub fn request(opaque: u32, flags: Flags, command: Command) -> Request {
    Request {
        opaque,
        flags,
        command,
    }
}

/// One protocol connection. Responses are split off the stream by the
/// [`ClientFrameCodec`] and decoded with the flags of the request they
/// answer, which the connection remembers by opaque: a GET or GETM sent with
/// LEASE has a `lease` field in its answers (protocol.md §6.3). A frame sent
/// with [`RawConn::send_raw`] is not remembered, so its answer is read as
/// one to a request without LEASE.
///
/// Over TLS it is a `RawConn<TlsStream>` ([`RawConn::over`], and
/// [`tls::TestPki::connect`]).
pub struct RawConn<S = TcpStream> {
    framed: Framed<S, ClientFrameCodec>,
    next_opaque: u32,
    /// Opaques of the GET and GETM requests last sent with LEASE.
    lease_opaques: HashSet<u32>,
}

impl RawConn {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> io::Result<RawConn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(RawConn::over(stream))
    }

    /// The socket, for a test that must write without reading (or the
    /// reverse) and so cannot go through the codec's one stream. Panics if
    /// response bytes were read but not yet decoded: they would be lost.
    pub fn into_stream(self) -> TcpStream {
        let parts = self.framed.into_parts();
        assert!(
            parts.read_buf.is_empty() && parts.write_buf.is_empty(),
            "{} response bytes read but not decoded, {} request bytes not sent",
            parts.read_buf.len(),
            parts.write_buf.len()
        );
        parts.io
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> RawConn<S> {
    /// Requests and responses over `stream`, connected already.
    pub fn over(stream: S) -> RawConn<S> {
        RawConn {
            framed: Framed::new(stream, ClientFrameCodec::default()),
            // Start away from 0 so an echoed 0 (the "untrusted header"
            // opaque) is never mistaken for ours.
            next_opaque: 1000,
            lease_opaques: HashSet::new(),
        }
    }

    /// A fresh opaque for the next request.
    pub fn next_opaque(&mut self) -> u32 {
        self.next_opaque = self.next_opaque.wrapping_add(1);
        self.next_opaque
    }

    /// Writes raw bytes, as they are, in one write.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        let stream = self.framed.get_mut();
        stream.write_all(bytes).await?;
        stream.flush().await
    }

    /// Encodes every request into one buffer and sends it with one write:
    /// a pipeline the server receives back to back.
    pub async fn send_batch<'a>(&mut self, requests: impl IntoIterator<Item = &'a Request>) {
        let mut bytes = BytesMut::new();
        for request in requests {
            let opcode = request.command.opcode();
            let lookup = opcode == Opcode::GET || opcode == Opcode::GETM;
            if lookup && request.flags.contains(Flags::LEASE) {
                self.lease_opaques.insert(request.opaque);
            } else {
                self.lease_opaques.remove(&request.opaque);
            }
            request.encode(&mut bytes);
        }
        self.send_raw(&bytes).await.expect("write the batch");
    }

    /// Sends one request.
    pub async fn send(&mut self, request: &Request) {
        self.send_batch([request]).await;
    }

    /// The next response frame, or `None` on a clean close; `Err` on a
    /// reset or an undecodable frame. Panics after [`RECV_TIMEOUT`].
    pub async fn try_recv(&mut self) -> Option<Result<Response, FatalError>> {
        let frame = tokio::time::timeout(RECV_TIMEOUT, self.framed.next())
            .await
            .expect("no response within RECV_TIMEOUT")?;
        Some(frame.and_then(|frame| {
            let flags = if self.lease_opaques.contains(&frame.header.opaque) {
                Flags::LEASE
            } else {
                Flags::NONE
            };
            frame.decode(flags).map_err(FatalError::MalformedResponse)
        }))
    }

    /// The next response frame; panics on close, error or timeout.
    pub async fn recv(&mut self) -> Response {
        match self.try_recv().await {
            Some(Ok(response)) => response,
            Some(Err(error)) => panic!("connection failed: {error}"),
            None => panic!("connection closed by the server"),
        }
    }

    /// Asserts the server closes the connection next (EOF or reset),
    /// without sending another frame.
    pub async fn expect_closed(&mut self) {
        match self.try_recv().await {
            None => {}
            Some(Err(FatalError::Io(_))) => {}
            Some(other) => panic!("expected the server to close, got {other:?}"),
        }
    }

    /// Sends `request`, reads one response, checks it echoes the opaque
    /// and opcode.
    pub async fn call(&mut self, request: Request) -> Response {
        self.send(&request).await;
        let response = self.recv().await;
        assert_eq!(response.opaque, request.opaque, "opaque echoed");
        assert_eq!(response.opcode, request.command.opcode(), "opcode echoed");
        response
    }

    /// Sends `command` with no flags; returns the outcome.
    pub async fn run(&mut self, command: Command) -> Outcome {
        let opaque = self.next_opaque();
        self.call(Request::new(opaque, command)).await.outcome
    }

    /// Sends `command` with `flags`; returns the outcome.
    pub async fn run_with(&mut self, flags: Flags, command: Command) -> Outcome {
        let opaque = self.next_opaque();
        self.call(request(opaque, flags, command)).await.outcome
    }

    /// HELLO; panics unless OK.
    pub async fn hello(&mut self, want_shard: Option<u16>) -> HelloInfo {
        match self.run(hello_cmd(want_shard)).await {
            Outcome::Hello(info) => info,
            other => panic!("HELLO answered {other:?}"),
        }
    }

    /// PING; panics unless OK.
    pub async fn ping(&mut self) {
        assert_eq!(self.run(Command::Ping).await, Outcome::Ok, "PING");
    }

    /// SET `key` = `value` with `tags`, a TTL and an optional fence.
    pub async fn set(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        tags: &[&str],
        ttl: u32,
        fence: Option<u64>,
    ) -> Outcome {
        let set = Set {
            ttl,
            fence,
            ..set_cmd(key, value, tags)
        };
        self.run(Command::Set(set)).await
    }

    /// SET with no TTL and no fence; panics unless STORED. Returns the CAS.
    pub async fn store(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        tags: &[&str],
    ) -> u64 {
        match self.set(key, value, tags, 0, None).await {
            Outcome::Stored { cas } => cas,
            other => panic!("SET answered {other:?}"),
        }
    }

    /// GET.
    pub async fn get(&mut self, key: impl AsRef<[u8]>) -> Outcome {
        self.run(get_cmd(key)).await
    }

    /// GET; panics unless HIT.
    pub async fn get_hit(&mut self, key: impl AsRef<[u8]>) -> Hit {
        let key = key.as_ref();
        match self.get(key).await {
            Outcome::Hit(hit) => hit,
            other => panic!("GET {:?} answered {other:?}", String::from_utf8_lossy(key)),
        }
    }

    /// GET; panics unless MISS. Returns the miss (with its fence).
    pub async fn get_miss(&mut self, key: impl AsRef<[u8]>) -> Miss {
        let key = key.as_ref();
        match self.get(key).await {
            Outcome::Miss(miss) => miss,
            other => panic!("GET {:?} answered {other:?}", String::from_utf8_lossy(key)),
        }
    }

    /// The value under `key`, or `None` on a miss.
    pub async fn value(&mut self, key: impl AsRef<[u8]>) -> Option<Bytes> {
        match self.get(key).await {
            Outcome::Hit(hit) => Some(hit.value),
            Outcome::Miss(_) => None,
            other => panic!("GET answered {other:?}"),
        }
    }

    /// DELETE.
    pub async fn delete(&mut self, key: impl AsRef<[u8]>) -> Outcome {
        self.run(delete_cmd(key)).await
    }

    /// TOUCH.
    pub async fn touch(&mut self, key: impl AsRef<[u8]>, ttl: u32) -> Outcome {
        self.run(touch_cmd(key, ttl)).await
    }

    /// INVALIDATE_TAGS; panics unless OK. Returns the sequence.
    pub async fn invalidate(&mut self, tags: &[&str]) -> u64 {
        match self.run(invalidate_cmd(tags)).await {
            Outcome::Sequence(seq) => seq,
            other => panic!("INVALIDATE_TAGS answered {other:?}"),
        }
    }

    /// FLUSH_ALL; panics unless OK. Returns the sequence.
    pub async fn flush_all(&mut self) -> u64 {
        match self.run(Command::FlushAll(FlushAll::HARD)).await {
            Outcome::Sequence(seq) => seq,
            other => panic!("FLUSH_ALL answered {other:?}"),
        }
    }

    /// GET with `flags` (ALLOW_STALE, LEASE, ...).
    pub async fn get_with(&mut self, flags: Flags, key: impl AsRef<[u8]>) -> Outcome {
        self.run_with(flags, get_cmd(key)).await
    }

    /// Soft INVALIDATE_TAGS with a window of `expire` seconds; panics
    /// unless OK. Returns the sequence.
    pub async fn invalidate_soft(&mut self, tags: &[&str], expire: u32) -> u64 {
        match self.run(soft_invalidate_cmd(tags, expire)).await {
            Outcome::Sequence(seq) => seq,
            other => panic!("soft INVALIDATE_TAGS answered {other:?}"),
        }
    }

    /// Soft FLUSH_ALL with a window of `expire` seconds; panics unless OK.
    /// Returns the sequence.
    pub async fn flush_all_soft(&mut self, expire: u32) -> u64 {
        let flush = FlushAll {
            soft_expire: Some(expire),
        };
        match self.run(Command::FlushAll(flush)).await {
            Outcome::Sequence(seq) => seq,
            other => panic!("soft FLUSH_ALL answered {other:?}"),
        }
    }

    /// TAG_STATUS; panics unless OK.
    pub async fn tag_status(&mut self, tags: &[&str]) -> TagStatusInfo {
        match self.run(tag_status_cmd(tags)).await {
            Outcome::TagStatus(info) => info,
            other => panic!("TAG_STATUS answered {other:?}"),
        }
    }

    /// STATS, parsed.
    pub async fn stats(&mut self) -> Stats {
        match self.run(Command::Stats).await {
            Outcome::Stats(body) => Stats::parse(&body),
            other => panic!("STATS answered {other:?}"),
        }
    }
}

/// The error in an outcome; panics if it is not an error.
pub fn expect_error(outcome: &Outcome) -> &ErrorReply {
    match outcome {
        Outcome::Error(error) => error,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Asserts `outcome` is the error `code`.
pub fn assert_error(outcome: &Outcome, code: ErrorCode) {
    let error = expect_error(outcome);
    assert_eq!(
        error.code,
        code,
        "error message: {}",
        String::from_utf8_lossy(&error.message)
    );
}
