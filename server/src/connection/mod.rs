//! One client connection, served in rounds: decode what has been read, plan
//! it into ops per shard, execute them (this shard's in place, the others'
//! with one message per shard), write every answer that is ready with one
//! write, and read again only when nothing is left over.
//!
//! # Memory
//!
//! Everything a connection makes the server hold is bounded, and nothing
//! it holds is taken from another connection:
//! - the read buffer: what one read brings ([`READ_CHUNK`]), or one frame
//!   of at most `max_frame` while it arrives;
//! - planned ops: [`MAX_ROUND_OPS`] per round (a GETM's keys count one
//!   each), plus the keys of the GETM that starts below it, so at most 2047
//!   of at most 168 bytes (336 KiB), holding slices of the read buffer, not
//!   copies;
//! - answers: the connection's budget (`--connection-memory`). A round's
//!   shards may add only what the budget leaves; a read whose answer does
//!   not fit waits for a later round, after the socket has taken what was
//!   ready. The oldest unanswered request always runs, so a round adds at
//!   most the budget or one answer, whichever is larger, plus the small
//!   answers of writes. A GETM is answered in as many rounds as its size
//!   needs.
//!
//! Between rounds a connection keeps at most 64 KiB of read buffer, 16 KiB
//! of write buffer and 8 KiB of answer buffer per shard it has used; what
//! one round needed beyond that is given back.
//!
//! The time each round takes is recorded, per command, in the worker's
//! latency histograms for `/metrics` ([`crate::latency`] says what exactly
//! is measured): one clock read per round beyond the one the round makes
//! anyway, no lock, no allocation.
//!
//! The connection reads again only once every request it has read is
//! answered and written, so a client that does not read its answers stops
//! being read: the kernel's socket buffers fill, and the client waits, not
//! the server's memory.

mod close;
mod deadline;
mod handshake;
mod round;
mod stop;
mod transport;
mod write;

use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BytesMut;
use tagcached_protocol::response::{ErrorReply, Outcome};
use tagcached_protocol::{
    ErrorCode, FatalError, Header, Limits, Opcode, Request, RequestError, Response, ServerCodec,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::codec::Decoder;

pub use self::handshake::serve_tls;
pub use self::transport::Transport;

use self::deadline::{Deadlines, Expired};
use self::round::Round;
use self::stop::StopSignal;
use self::write::Output;
use crate::admission::{ConnectionGuard, PartialFrameShare};
use crate::auth::AuthState;
use crate::command::{self, Planned};
use crate::context::WorkerContext;
use crate::latency::RoundTally;
use crate::log_limit::LogLimiter;
use crate::router::Handoff;
use crate::tls::TlsStream;

/// Read this much at a time (more when a frame is larger).
pub const READ_CHUNK: usize = 16 * 1024;
/// Ops planned per round before planning stops (a GETM that starts below it
/// is planned whole), so a long pipeline is served in rounds that let the
/// worker's other connections in between.
pub const MAX_ROUND_OPS: usize = 1024;
/// A read buffer that grew past this for one large frame is not kept.
const BUFFER_KEEP: usize = 64 * 1024;

/// Serves a connection accepted by this worker (over TLS: once its
/// handshake is done, see [`serve_tls`]).
pub async fn accept<S: Transport>(context: Rc<WorkerContext>, stream: S, guard: ConnectionGuard) {
    let auth = AuthState::for_new_connection(context.shared.auth.as_ref());
    serve(context, stream, BytesMut::new(), None, guard, auth).await;
}

/// Serves a connection, accepted by this worker or handed over by another
/// with the bytes it had read past a HELLO, which this worker answers.
async fn serve<S: Transport>(
    context: Rc<WorkerContext>,
    stream: S,
    unread: BytesMut,
    hello_opaque: Option<u32>,
    guard: ConnectionGuard,
    auth: AuthState,
) {
    let limits = context.shared.config.limits;
    let round = Round::new(context.index, context.router.clone());
    let config = &context.shared.config;
    let deadlines = Deadlines::new(config.idle_timeout, config.frame_timeout, auth.deadline());
    let partial_frame = PartialFrameShare::new(context.shared.clone());
    let mut codec = ServerCodec::new(limits);
    if auth != AuthState::Open {
        codec.set_max_frame(Limits::PRE_AUTH_MAX_FRAME.min(limits.max_frame));
    }
    let mut connection = Connection {
        deadlines,
        partial_frame,
        context,
        stream,
        codec,
        read_buf: unread,
        round,
        output: Output::default(),
        end: None,
        guard,
        auth,
        tally: RoundTally::default(),
        round_started: None,
    };
    if let Some(opaque) = hello_opaque {
        command::plan_hello_answer(opaque, &connection.context.shared, &mut connection.round);
    }
    match connection.run().await {
        Ok(Some(End::Migrate { shard, opaque })) => connection.hand_off(shard, opaque).await,
        Ok(Some(End::Close)) => connection.close(true).await,
        Ok(None) => connection.close(false).await,
        Err(error) => {
            tracing::debug!(%error, "connection ended");
            connection.close(false).await;
        }
    }
}

/// Serves a connection another worker handed over at HELLO.
pub async fn adopt(context: Rc<WorkerContext>, handoff: Handoff) {
    let Handoff {
        stream,
        tls,
        unread,
        hello_opaque,
        guard,
        auth,
    } = handoff;
    let stream = match TcpStream::from_std(stream) {
        Ok(stream) => stream,
        Err(error) => {
            tracing::warn!(%error, "could not adopt a connection");
            return;
        }
    };
    let opaque = Some(hello_opaque);
    match tls {
        None => serve(context, stream, unread, opaque, guard, auth).await,
        Some(session) => {
            let stream = TlsStream::from_parts(stream, session);
            serve(context, stream, unread, opaque, guard, auth).await;
        }
    }
}

/// Answers a connection over the limit with `BUSY` and closes it.
pub async fn reject_busy(mut stream: TcpStream, max_connections: usize) {
    let response = Response {
        opaque: 0,
        opcode: Opcode::HELLO,
        outcome: Outcome::Error(ErrorReply::new(
            ErrorCode::Busy,
            format!("the server is at its limit of {max_connections} connections"),
        )),
    };
    let mut bytes = BytesMut::with_capacity(response.encoded_len());
    response.encode(&mut bytes);
    let write = async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// Connections closed for a protocol error, logged at most once a second.
static PROTOCOL_ERRORS: LogLimiter = LogLimiter::new(Duration::from_secs(1));

/// Logs, at info and rate-limited, a connection closed because its stream
/// cannot be framed: most often a client of another protocol (memcached,
/// HTTP) pointed at the port, which an operator wants to see.
fn log_protocol_error(fatal: &tagcached_protocol::FatalError, stream: &impl Transport) {
    if let Some(suppressed) = PROTOCOL_ERRORS.allow() {
        let status = fatal
            .response_parts()
            .map_or("none", |(code, ..)| code.name());
        tracing::info!(
            peer = %stream.peer_addr().map_or("unknown".to_owned(), |peer| peer.to_string()),
            status,
            error = %fatal,
            suppressed,
            "closing a connection for a protocol error (a client of another protocol?)"
        );
    }
}

/// Why a connection stops being read: once everything before is answered
/// and written, it ends this way.
#[derive(Debug, Clone, Copy)]
enum End {
    /// The client asked at HELLO to be served by another shard.
    Migrate { shard: u16, opaque: u32 },
    /// The stream can no longer be framed (its error is queued), or the
    /// server is stopping.
    Close,
}

struct Connection<S> {
    context: Rc<WorkerContext>,
    stream: S,
    codec: ServerCodec,
    read_buf: BytesMut,
    round: Round,
    /// Answers ready to write, in order.
    output: Output,
    end: Option<End>,
    deadlines: Deadlines,
    partial_frame: PartialFrameShare,
    guard: ConnectionGuard,
    /// Whether the connection has authenticated (protocol.md §6.12).
    auth: AuthState,
    /// The requests planned since the last time every planned request had
    /// run, by command, and when they started to run: what
    /// [`crate::latency`] records.
    tally: RoundTally,
    round_started: Option<Instant>,
}

/// What planning one decoded frame leaves the connection to do.
enum Step {
    /// Go on with the next frame.
    Next,
    /// Stop planning this round; whether every complete frame was used up.
    Stop { drained: bool },
}

impl<S: Transport> Connection<S> {
    /// Serves until the peer closes, shutdown, a fatal frame, or a move.
    async fn run(&mut self) -> io::Result<Option<End>> {
        // One wait for the whole connection, not one per read: registering
        // and dropping a waiter on the token each time cost ~3% of a
        // worker's time serving clients that wait for each answer; and
        // asking it reads a flag, not the token's mutex (`stop`).
        let mut stopping = StopSignal::new(self.context.stopping.clone());
        let budget = self.context.shared.config.connection_memory;
        // The latest clock read, while nothing has waited since: the read
        // that brings a round's requests gives the round its time (the
        // store's, and the start of its latency), and a round's end times
        // the write after it, if that does not wait. A clock read costs 20
        // to 50 ns here, and at pipeline depth 1 a round is a request.
        let mut clock: Option<Instant> = None;
        loop {
            // Batches other workers' connections wait for run between this
            // connection's rounds (see `WorkerContext::serve_inbox_now`).
            self.context.serve_inbox_now();
            let mut drained = false;
            if self.end.is_none() && !self.round.has_pending() {
                let unread = self.read_buf.len();
                drained = self.plan_buffered();
                let took_frames = self.read_buf.len() < unread;
                self.deadlines
                    .buffered(!self.read_buf.is_empty(), took_frames);
            }
            if self.round.has_pending() {
                let now = clock.take().unwrap_or_else(Instant::now);
                if self.round_started.is_none() && !self.tally.is_empty() {
                    self.round_started = Some(now);
                }
                if self
                    .round
                    .execute(&self.context, budget, now.into_std())
                    .await
                    .is_err()
                {
                    tracing::warn!("a shard stopped before answering; closing the connection");
                    return Ok(Some(End::Close));
                }
            }
            self.round.collect(&self.context.shared, &mut self.output);
            let ended = self.record_latency();
            let (wrote, waited) = {
                let write = pin!(self.output.write_to(&mut self.stream));
                noting_wait(write).await
            };
            if wrote? {
                let now = ended.filter(|_| !waited).unwrap_or_else(Instant::now);
                self.deadlines.answered(now);
            }
            clock = None;
            self.round.trim();
            if self.round.is_done() {
                if let Some(end) = self.end {
                    return Ok(Some(end));
                }
            }
            if !drained || self.round.has_pending() {
                continue;
            }
            // Every request read is answered, so what the read buffer
            // holds now is all this connection holds of its input: count
            // it before reading more. (Counting it right after planning
            // would release a large frame's share while its SET still
            // holds the bytes.)
            if !self.hold_partial_frame() {
                continue;
            }
            if self.read_buf.capacity() > BUFFER_KEEP && self.read_buf.is_empty() {
                self.read_buf = BytesMut::new();
            }
            self.read_buf.reserve(READ_CHUNK);
            let read = tokio::select! {
                biased;
                () = stopping.stopped() => return Ok(Some(End::Close)),
                read = self.stream.read_buf(&mut self.read_buf) => read?,
                expired = self.deadlines.expired() => {
                    self.give_up(expired);
                    return Ok(Some(End::Close));
                }
            };
            if read == 0 {
                return Ok(None);
            }
            let now = Instant::now();
            self.deadlines.received(now);
            clock = Some(now);
        }
    }

    /// Counts the frame partly in the read buffer, once every request
    /// before it is answered, against the server's `partial_frame_memory`;
    /// past it, refuses the connection (its last answer is BUSY) and
    /// returns false. A part no larger than one read is not counted: every
    /// connection may hold that much, and `max_connections` bounds it.
    fn hold_partial_frame(&mut self) -> bool {
        let partial = match self.read_buf.len() {
            len if len > READ_CHUNK => len,
            _ => 0,
        };
        if self.partial_frame.hold(partial) {
            return true;
        }
        // A part longer than a header has a header.
        if let Some(header) = Header::peek(&self.read_buf) {
            let limit = self.context.shared.config.partial_frame_memory;
            command::plan_overload(&header, limit, &mut self.round);
        }
        tracing::debug!(
            peer = ?self.stream.peer_addr().ok(),
            partial,
            "refusing a connection: too many bytes of partly received frames"
        );
        self.read_buf = BytesMut::new();
        self.end = Some(End::Close);
        false
    }

    /// Once every request planned has run, records the time since they
    /// started to run under each one's command ([`crate::latency`]), and
    /// returns the clock read that ended it.
    fn record_latency(&mut self) -> Option<Instant> {
        if self.round.has_pending() || self.tally.is_empty() {
            return None;
        }
        let started = self.round_started.take()?;
        let ended = Instant::now();
        self.context
            .latency
            .borrow_mut()
            .record(&mut self.tally, ended - started);
        Some(ended)
    }

    /// Counts and logs a connection given up on for a timeout.
    fn give_up(&self, expired: Expired) {
        let counters = &self.context.shared.counters;
        let (counter, why) = match expired {
            Expired::Idle => (&counters.idle_kicks, "idle for --idle-timeout"),
            Expired::Frame => (
                &counters.frame_timeouts,
                "a frame not whole within --frame-timeout",
            ),
            Expired::Auth => (
                &counters.auth_timeouts,
                "not authenticated within --auth-timeout",
            ),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(peer = ?self.stream.peer_addr().ok(), why, "closing a connection");
    }

    /// Decodes and plans the frames in the read buffer, up to
    /// [`MAX_ROUND_OPS`] ops. Returns whether it used up every complete
    /// frame (and should read more once this round is answered).
    ///
    /// A connection that has not authenticated goes through
    /// [`Connection::plan_before_auth`] first; once authenticated, frames
    /// are planned with no check of it, so authentication costs the
    /// request path one comparison per round.
    fn plan_buffered(&mut self) -> bool {
        if self.auth != AuthState::Open {
            if let Some(drained) = self.plan_before_auth() {
                return drained;
            }
        }
        while self.round.planned() < MAX_ROUND_OPS {
            let decoded = self.codec.decode(&mut self.read_buf);
            if let Step::Stop { drained } = self.plan_decoded(decoded) {
                return drained;
            }
        }
        false
    }

    /// Plans frames while the connection has not authenticated: HELLO,
    /// PING and AUTH as usual, every other request refused with
    /// AUTH_REQUIRED whatever its flags and body (protocol.md §6.12).
    /// Returns `None` once an AUTH succeeds, with the frames after it left
    /// for the usual planning, or what [`Connection::plan_buffered`]
    /// returns if the round ends first.
    fn plan_before_auth(&mut self) -> Option<bool> {
        while self.round.planned() < MAX_ROUND_OPS {
            let decoded = self.codec.decode(&mut self.read_buf);
            let refused = match &decoded {
                Ok(Some(Ok(request))) => Some((request.opaque, request.command.opcode())),
                Ok(Some(Err(bad))) => Some((bad.opaque, bad.opcode)),
                Ok(None) | Err(_) => None,
            }
            .filter(|&(_, opcode)| !command::auth::served_before_auth(opcode));
            let step = match refused {
                Some((opaque, opcode)) => {
                    self.tally.add(opcode);
                    let shared = &self.context.shared;
                    command::auth::plan_required(opaque, opcode, shared, &mut self.round);
                    Step::Next
                }
                None => self.plan_decoded(decoded),
            };
            if let Step::Stop { drained } = step {
                return Some(drained);
            }
            if self.auth == AuthState::Open {
                return None;
            }
        }
        Some(false)
    }

    /// Plans what the codec decoded from the read buffer.
    // Inlined into both callers: called, it took the decoded request
    // (160 bytes) by value, and copying it there and on to `command::plan`
    // cost three `memcpy`s per request (benches/instructions.sh).
    #[inline(always)]
    fn plan_decoded(
        &mut self,
        decoded: Result<Option<Result<Request, RequestError>>, FatalError>,
    ) -> Step {
        match decoded {
            Ok(None) => Step::Stop { drained: true },
            Ok(Some(Ok(request))) => {
                self.tally.add(request.command.opcode());
                match command::plan(request, &self.context.shared, &mut self.round) {
                    Planned::Queued => Step::Next,
                    Planned::Authenticated => {
                        self.authenticated();
                        Step::Next
                    }
                    Planned::Migrate { shard, opaque } => {
                        self.end = Some(End::Migrate { shard, opaque });
                        Step::Stop { drained: false }
                    }
                    Planned::Close => {
                        self.end = Some(End::Close);
                        Step::Stop { drained: false }
                    }
                }
            }
            Ok(Some(Err(bad))) => {
                self.tally.add(bad.opcode);
                command::plan_refusal(bad, &mut self.round);
                Step::Next
            }
            Err(fatal) => {
                log_protocol_error(&fatal, &self.stream);
                command::plan_fatal(&fatal, &mut self.round);
                self.end = Some(End::Close);
                Step::Stop { drained: false }
            }
        }
    }

    /// An AUTH succeeded: from the next frame on, the connection may send
    /// anything, in frames up to `max_frame`, for as long as it likes.
    fn authenticated(&mut self) {
        if self.auth != AuthState::Open {
            self.auth = AuthState::Open;
            self.codec.set_max_frame(self.codec.limits().max_frame);
            self.deadlines.authenticated();
        }
    }

    /// Closes the socket; if the server is the one ending the connection
    /// (`server_ended`), only after [`close::linger`]. The connection stops
    /// counting against `max_connections` just before the socket closes,
    /// so a client that has read the end of stream of a connection it shut
    /// down may at once connect again in its place (protocol.md §1).
    async fn close(self, server_ended: bool) {
        let Connection {
            mut stream,
            mut read_buf,
            partial_frame,
            guard,
            ..
        } = self;
        drop(partial_frame);
        if server_ended {
            close::linger(&mut stream, &mut read_buf).await;
        }
        drop(guard);
        drop(stream);
    }

    /// Moves the connection to `shard`'s worker, which answers the HELLO.
    async fn hand_off(self, shard: u16, opaque: u32) {
        let Connection {
            context,
            stream,
            read_buf,
            guard,
            auth,
            ..
        } = self;
        let (stream, tls) = match stream.detach() {
            Ok(parts) => parts,
            Err(error) => {
                tracing::warn!(%error, "could not detach a connection to move it");
                return;
            }
        };
        let handoff = Handoff {
            stream,
            tls,
            unread: read_buf,
            hello_opaque: opaque,
            guard,
            auth,
        };
        // If the target has stopped (shutdown), dropping the handoff closes
        // the socket, which is what shutdown does to every connection.
        let _ = context.router.hand_off(shard, handoff).await;
    }
}

/// Runs `future`, and says whether it had to wait. (Pinned by the caller,
/// so the future is not moved here: a write's is a few hundred bytes.)
async fn noting_wait<F: Future>(mut future: Pin<&mut F>) -> (F::Output, bool) {
    let mut waited = false;
    let output = poll_fn(|cx| {
        let polled = future.as_mut().poll(cx);
        waited |= polled.is_pending();
        polled
    })
    .await;
    (output, waited)
}
