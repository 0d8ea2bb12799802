//! One client connection: read a batch of frames, execute them in order,
//! write every response with one write.
//!
//! Requests for keys this worker owns run inline and their responses are
//! encoded straight into the write buffer. A request that must wait on
//! another shard leaves a `Slot::Waiting` in the queue, and every later
//! response queues behind it, so responses still leave in request order
//! while the hops of a batch are in flight together.
//!
//! A hit is encoded once, from the stored bytes, by the thread that owns
//! the key: inline into the write buffer, or, when forwarded, into a frame
//! the owner sends back. Such frames are written with the rest of the batch
//! by one vectored write, so a value is never copied again on its way out.

use std::collections::VecDeque;
use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tagcached_protocol::request::{Command, GetMany, Hello};
use tagcached_protocol::response::{ErrorReply, Features, HelloInfo, Outcome};
use tagcached_protocol::{ErrorCode, Flags, Opcode, Request, Response, ServerCodec};
use tagcached_store::InvalidationSeq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_util::codec::Decoder;

use crate::dispatch;
use crate::router::{Handoff, ShardMessage};
use crate::shared::Shared;
use crate::stats;
use crate::worker::WorkerContext;

/// Read this much at a time (more when a frame is larger).
const READ_CHUNK: usize = 16 * 1024;
/// Write out what has accumulated once a batch's responses reach this size,
/// so a long pipeline of large hits does not buffer without bound.
const WRITE_HIGH_WATER: usize = 256 * 1024;
/// A batch also stops after this many waiting responses.
const MAX_WAITING: usize = 1024;
/// A buffer that grew past this for one large frame is not kept.
const BUFFER_KEEP: usize = 1024 * 1024;

/// Counts a connection from admission until it closes, wherever it moves.
pub struct ConnectionGuard {
    shared: Arc<Shared>,
}

impl ConnectionGuard {
    /// Admits a connection if the server is under `max_connections`.
    pub fn try_admit(shared: Arc<Shared>) -> Option<ConnectionGuard> {
        let counters = &shared.counters;
        let previous = counters.curr_connections.fetch_add(1, Ordering::AcqRel);
        if previous >= shared.config.max_connections {
            counters.curr_connections.fetch_sub(1, Ordering::AcqRel);
            counters
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            return None;
        }
        counters.total_connections.fetch_add(1, Ordering::Relaxed);
        Some(ConnectionGuard { shared })
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.shared
            .counters
            .curr_connections
            .fetch_sub(1, Ordering::AcqRel);
    }
}

/// Answers a connection over the limit with `BUSY` and closes it.
pub async fn reject_busy(mut stream: TcpStream, max_connections: usize) {
    let response = Response {
        opaque: 0,
        opcode: Opcode::HELLO,
        outcome: error(
            ErrorCode::Busy,
            format!("the server is at its limit of {max_connections} connections"),
        ),
    };
    let mut bytes = BytesMut::with_capacity(response.encoded_len());
    response.encode(&mut bytes);
    let write = async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// Serves a connection accepted by this worker.
pub async fn serve(
    context: Rc<WorkerContext>,
    stream: TcpStream,
    unread: BytesMut,
    hello_opaque: Option<u32>,
    guard: ConnectionGuard,
) {
    let limits = context.shared.config.limits;
    let mut connection = Connection {
        context,
        stream,
        codec: ServerCodec::new(limits),
        read_buf: unread,
        write_buf: BytesMut::with_capacity(READ_CHUNK),
        chunks: Vec::new(),
        chunk_bytes: 0,
        queue: VecDeque::new(),
        guard,
    };
    if let Some(opaque) = hello_opaque {
        let outcome = connection.hello_outcome();
        connection.respond(opaque, Opcode::HELLO, outcome, false);
    }
    match connection.run().await {
        Ok(Some(Migration { shard, opaque })) => connection.hand_off(shard, opaque),
        Ok(None) => {}
        Err(error) => tracing::debug!(%error, "connection ended"),
    }
}

/// Serves a connection another worker handed over at HELLO.
pub async fn adopt(context: Rc<WorkerContext>, handoff: Handoff) {
    let Handoff {
        stream,
        unread,
        hello_opaque,
        guard,
    } = handoff;
    match TcpStream::from_std(stream) {
        Ok(stream) => serve(context, stream, unread, Some(hello_opaque), guard).await,
        Err(error) => tracing::warn!(%error, "could not adopt a connection"),
    }
}

/// Encoded response frames not yet written.
enum Slot {
    Ready(Bytes),
    /// Frames that wait on other shards; may be none (quiet success).
    Waiting(Pin<Box<dyn Future<Output = Vec<Bytes>>>>),
}

/// Why a batch stopped.
enum BatchEnd {
    /// Everything buffered was executed; read more.
    NeedInput,
    /// Responses piled up; write them, then go on with the buffered input.
    WriteFirst,
    /// The client asked at HELLO to move to another shard.
    Migrate(Migration),
    /// The stream can no longer be framed; answer was queued, now close.
    Close,
}

struct Migration {
    shard: u16,
    opaque: u32,
}

struct Connection {
    context: Rc<WorkerContext>,
    stream: TcpStream,
    codec: ServerCodec,
    read_buf: BytesMut,
    /// Responses encoded in place, not yet handed to `chunks`.
    write_buf: BytesMut,
    /// Frames to write, in order, ahead of `write_buf`: forwarded answers,
    /// and the parts of `write_buf` sealed before them.
    chunks: Vec<Bytes>,
    /// Bytes in `chunks`.
    chunk_bytes: usize,
    queue: VecDeque<Slot>,
    guard: ConnectionGuard,
}

impl Connection {
    /// Serves until the peer closes, shutdown, a fatal frame, or a move.
    async fn run(&mut self) -> std::io::Result<Option<Migration>> {
        let shutdown = self.context.shared.shutdown.clone();
        loop {
            let end = self.execute_buffered();
            self.write_responses().await?;
            match end {
                BatchEnd::NeedInput => {}
                BatchEnd::WriteFirst => continue,
                BatchEnd::Migrate(migration) => return Ok(Some(migration)),
                BatchEnd::Close => return Ok(None),
            }
            if self.read_buf.capacity() > BUFFER_KEEP && self.read_buf.is_empty() {
                self.read_buf = BytesMut::new();
            }
            self.read_buf.reserve(READ_CHUNK);
            let read = tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ok(None),
                read = self.stream.read_buf(&mut self.read_buf) => read?,
            };
            if read == 0 {
                return Ok(None);
            }
        }
    }

    /// Decodes and executes every complete frame in the read buffer.
    fn execute_buffered(&mut self) -> BatchEnd {
        let now_ms = self.context.now_ms();
        loop {
            let unwritten = self.write_buf.len() + self.chunk_bytes;
            if unwritten >= WRITE_HIGH_WATER || self.queue.len() >= MAX_WAITING {
                return BatchEnd::WriteFirst;
            }
            match self.codec.decode(&mut self.read_buf) {
                Ok(None) => return BatchEnd::NeedInput,
                Ok(Some(Ok(request))) => {
                    if let Some(migration) = self.execute(request, now_ms) {
                        return BatchEnd::Migrate(migration);
                    }
                }
                Ok(Some(Err(bad))) => {
                    let outcome = Outcome::Error(bad.error.into());
                    self.respond(bad.opaque, bad.opcode, outcome, false);
                }
                Err(fatal) => {
                    if let Some((code, opaque, opcode)) = fatal.response_parts() {
                        self.respond(opaque, opcode, error(code, fatal.to_string()), false);
                    }
                    tracing::debug!(error = %fatal, "closing after a fatal frame");
                    return BatchEnd::Close;
                }
            }
        }
    }

    /// Executes one request; returns a migration if HELLO asked for one.
    fn execute(&mut self, request: Request, now_ms: u64) -> Option<Migration> {
        let Request {
            opaque,
            flags,
            command,
        } = request;
        let opcode = command.opcode();
        let quiet = flags.contains(Flags::QUIET);
        let with_tags = flags.contains(Flags::WITH_TAGS);
        let shared = &self.context.shared;
        match command {
            Command::Hello(Hello { want_shard, .. }) => match want_shard {
                Some(shard) if shard >= shared.router.shard_count() => {
                    let message = format!(
                        "want_shard {shard} but the server has {} shards",
                        shared.router.shard_count()
                    );
                    self.respond(opaque, opcode, error(ErrorCode::Malformed, message), quiet);
                }
                Some(shard) if shard != self.context.index => {
                    return Some(Migration { shard, opaque });
                }
                _ => {
                    let outcome = self.hello_outcome();
                    self.respond(opaque, opcode, outcome, quiet);
                }
            },
            Command::Ping | Command::Noop => self.respond(opaque, opcode, Outcome::Ok, quiet),
            Command::Get(_) | Command::Set(_) | Command::Delete(_) | Command::Touch(_) => {
                self.keyed(opaque, command, quiet, with_tags, now_ms);
            }
            Command::GetMany(get_many) => self.get_many(opaque, get_many, quiet, with_tags, now_ms),
            Command::InvalidateTags(invalidate) => {
                shared
                    .counters
                    .invalidations
                    .fetch_add(1, Ordering::Relaxed);
                let seq = shared.sequence.advance();
                let tags: Arc<[Bytes]> = invalidate.tags.into();
                self.context
                    .shard
                    .borrow_mut()
                    .invalidate(&tags, InvalidationSeq::new(seq));
                self.broadcast(opaque, opcode, quiet, Outcome::Sequence(seq), |reply| {
                    ShardMessage::Invalidate {
                        tags: tags.clone(),
                        seq,
                        reply,
                    }
                });
            }
            Command::FlushAll => {
                shared.counters.flushes.fetch_add(1, Ordering::Relaxed);
                let seq = shared.sequence.advance();
                self.context
                    .shard
                    .borrow_mut()
                    .flush_all(InvalidationSeq::new(seq));
                self.broadcast(opaque, opcode, quiet, Outcome::Sequence(seq), |reply| {
                    ShardMessage::FlushAll { seq, reply }
                });
            }
            Command::Stats => self.stats(opaque, opcode),
        }
        None
    }

    /// GET, SET, DELETE, TOUCH: inline on the owner, else one hop.
    fn keyed(&mut self, opaque: u32, command: Command, quiet: bool, with_tags: bool, now_ms: u64) {
        let opcode = command.opcode();
        let shared = &self.context.shared;
        let owner = match command.routing_key() {
            Some(key) => shared.router.shard_of(key),
            None => self.context.index,
        };
        // Read now, in request order, even when another shard runs the
        // command (see `ShardMessage::Keyed::seq`).
        let seq = shared.sequence.current();
        if owner == self.context.index {
            let request = dispatch::Keyed {
                command: &command,
                opaque,
                quiet,
                with_tags,
                seq,
                now_ms,
            };
            let mut shard = self.context.shard.borrow_mut();
            if self.queue.is_empty() {
                dispatch::answer_keyed(&mut shard, &request, &mut self.write_buf);
            } else {
                let mut frame = BytesMut::new();
                dispatch::answer_keyed(&mut shard, &request, &mut frame);
                drop(shard);
                self.emit(frame.freeze());
            }
            return;
        }
        let (reply, answer) = oneshot::channel();
        let message = ShardMessage::Keyed {
            command,
            opaque,
            quiet,
            with_tags,
            seq,
            reply,
        };
        if !shared.router.send(owner, message) {
            self.respond(opaque, opcode, shutting_down(), quiet);
            return;
        }
        self.wait(async move {
            match answer.await {
                Ok(frame) => vec![frame],
                Err(_) => vec![encoded(response(opaque, opcode, shutting_down()))],
            }
        });
    }

    /// GETM: local keys inline, the rest in one message per owning shard;
    /// the frames go out in key order whoever encoded them.
    fn get_many(
        &mut self,
        opaque: u32,
        get_many: GetMany,
        quiet: bool,
        with_tags: bool,
        now_ms: u64,
    ) {
        let shared = &self.context.shared;
        let seq = shared.sequence.current();
        let lookup = dispatch::ManyLookup {
            opaque,
            quiet,
            with_tags,
            seq,
            now_ms,
        };
        let mut frames: Vec<Bytes> = vec![Bytes::new(); get_many.keys.len()];
        let mut remote: Vec<Vec<(u16, Bytes)>> =
            vec![Vec::new(); usize::from(shared.router.shard_count())];
        {
            let mut shard = self.context.shard.borrow_mut();
            let mut scratch = BytesMut::new();
            for (index, key) in get_many.keys.into_iter().enumerate() {
                let owner = shared.router.shard_of(&key);
                if owner == self.context.index {
                    frames[index] = dispatch::answer_lookup(
                        &mut shard,
                        &lookup,
                        index as u16,
                        &key,
                        &mut scratch,
                    );
                } else {
                    remote[usize::from(owner)].push((index as u16, key));
                }
            }
        }
        let mut answers = Vec::new();
        for (owner, keys) in remote.into_iter().enumerate() {
            if keys.is_empty() {
                continue;
            }
            let (reply, answer) = oneshot::channel();
            let message = ShardMessage::GetMany {
                keys,
                lookup,
                reply,
            };
            if !shared.router.send(owner as u16, message) {
                self.respond(opaque, Opcode::GETM, shutting_down(), false);
                return;
            }
            answers.push(answer);
        }
        if answers.is_empty() {
            for frame in frames {
                self.emit(frame);
            }
            return;
        }
        self.wait(async move {
            for answer in answers {
                match answer.await {
                    Ok(found) => {
                        for (index, frame) in found {
                            frames[usize::from(index)] = frame;
                        }
                    }
                    Err(_) => {
                        return vec![encoded(response(opaque, Opcode::GETM, shutting_down()))]
                    }
                }
            }
            frames
        });
    }

    /// Applies an all-shard operation (already applied locally) everywhere
    /// else, answering once every shard has acknowledged: the moment of the
    /// answer is the moment the operation is visible on every thread.
    fn broadcast(
        &mut self,
        opaque: u32,
        opcode: Opcode,
        quiet: bool,
        done: Outcome,
        message: impl Fn(oneshot::Sender<()>) -> ShardMessage,
    ) {
        let router = &self.context.shared.router;
        let mut acks = Vec::new();
        for shard in (0..router.shard_count()).filter(|&shard| shard != self.context.index) {
            let (reply, ack) = oneshot::channel();
            if !router.send(shard, message(reply)) {
                self.respond(opaque, opcode, shutting_down(), quiet);
                return;
            }
            acks.push(ack);
        }
        if acks.is_empty() {
            self.respond(opaque, opcode, done, quiet);
            return;
        }
        self.wait(async move {
            for ack in acks {
                if ack.await.is_err() {
                    return vec![encoded(response(opaque, opcode, shutting_down()))];
                }
            }
            unless_quiet(opaque, opcode, done, quiet)
                .map(encoded)
                .into_iter()
                .collect()
        });
    }

    fn stats(&mut self, opaque: u32, opcode: Opcode) {
        let router = &self.context.shared.router;
        let mut answers = Vec::new();
        for shard in 0..router.shard_count() {
            if shard == self.context.index {
                continue;
            }
            let (reply, answer) = oneshot::channel();
            if router.send(shard, ShardMessage::Stats { reply }) {
                answers.push((shard, answer));
            }
        }
        let local = (self.context.index, self.context.shard.borrow().stats());
        let shared = self.context.shared.clone();
        self.wait(async move {
            let mut per_shard = vec![local];
            for (shard, answer) in answers {
                if let Ok(stats) = answer.await {
                    per_shard.push((shard, stats));
                }
            }
            per_shard.sort_by_key(|(shard, _)| *shard);
            let text = stats::render(&shared, &per_shard);
            vec![encoded(response(opaque, opcode, Outcome::Stats(text)))]
        });
    }

    fn hello_outcome(&self) -> Outcome {
        let shared = &self.context.shared;
        Outcome::Hello(HelloInfo {
            version: tagcached_protocol::PROTOCOL_VERSION,
            shard_count: shared.router.shard_count(),
            shard: self.context.index,
            hash: HelloInfo::HASH_FNV1A_64,
            features: Features::FENCED_SET | Features::SHARD_AWARE,
            limits: shared.config.limits,
            server_version: Bytes::from_static(stats::SERVER_VERSION.as_bytes()),
        })
    }

    /// Sends an outcome, unless it is a quiet request's success.
    fn respond(&mut self, opaque: u32, opcode: Opcode, outcome: Outcome, quiet: bool) {
        if let Some(response) = unless_quiet(opaque, opcode, outcome, quiet) {
            self.push(response);
        }
    }

    fn push(&mut self, response: Response) {
        if self.queue.is_empty() {
            self.write_buf.reserve(response.encoded_len());
            response.encode(&mut self.write_buf);
        } else {
            self.queue.push_back(Slot::Ready(encoded(response)));
        }
    }

    /// Sends a frame encoded elsewhere (empty: a quiet success, nothing).
    fn emit(&mut self, frame: Bytes) {
        if self.queue.is_empty() {
            self.append(frame);
        } else {
            self.queue.push_back(Slot::Ready(frame));
        }
    }

    /// Puts an encoded frame behind everything encoded so far, without
    /// copying it.
    fn append(&mut self, frame: Bytes) {
        if frame.is_empty() {
            return;
        }
        if !self.write_buf.is_empty() {
            let sealed = self.write_buf.split().freeze();
            self.chunk_bytes += sealed.len();
            self.chunks.push(sealed);
        }
        self.chunk_bytes += frame.len();
        self.chunks.push(frame);
    }

    fn wait(&mut self, frames: impl Future<Output = Vec<Bytes>> + 'static) {
        self.queue.push_back(Slot::Waiting(Box::pin(frames)));
    }

    /// Gathers every queued frame in order, waiting where needed, and
    /// writes the lot: one write, vectored when other shards' frames are
    /// among them.
    async fn write_responses(&mut self) -> std::io::Result<()> {
        while let Some(slot) = self.queue.pop_front() {
            match slot {
                Slot::Ready(frame) => self.append(frame),
                Slot::Waiting(frames) => {
                    for frame in frames.await {
                        self.append(frame);
                    }
                }
            }
        }
        if !self.chunks.is_empty() {
            let tail = self.write_buf.split().freeze();
            self.chunks.push(tail);
            write_all_vectored(&mut self.stream, &mut self.chunks).await?;
            self.chunk_bytes = 0;
        } else if !self.write_buf.is_empty() {
            self.stream.write_all(&self.write_buf).await?;
            self.write_buf.clear();
        }
        if self.write_buf.capacity() > BUFFER_KEEP {
            self.write_buf = BytesMut::with_capacity(READ_CHUNK);
        }
        Ok(())
    }

    /// Moves the connection to `shard`'s worker, which answers the HELLO.
    fn hand_off(self, shard: u16, opaque: u32) {
        let Connection {
            context,
            stream,
            read_buf,
            guard,
            ..
        } = self;
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, "could not detach a connection to move it");
                return;
            }
        };
        let handoff = Handoff {
            stream,
            unread: read_buf,
            hello_opaque: opaque,
            guard,
        };
        // If the target has stopped (shutdown), dropping the handoff closes
        // the socket, which is what shutdown does to every connection.
        context
            .shared
            .router
            .send(shard, ShardMessage::Adopt(handoff));
    }
}

fn response(opaque: u32, opcode: Opcode, outcome: Outcome) -> Response {
    Response {
        opaque,
        opcode,
        outcome,
    }
}

/// Most buffers handed to one `writev`.
const MAX_IO_SLICES: usize = 64;

/// Writes every chunk, in order, with as few system calls as the kernel
/// allows; empties `chunks`.
async fn write_all_vectored(
    stream: &mut TcpStream,
    chunks: &mut Vec<Bytes>,
) -> std::io::Result<()> {
    let mut next = 0;
    while next < chunks.len() {
        let slices: Vec<IoSlice<'_>> = chunks[next..]
            .iter()
            .filter(|chunk| !chunk.is_empty())
            .take(MAX_IO_SLICES)
            .map(|chunk| IoSlice::new(chunk))
            .collect();
        if slices.is_empty() {
            break;
        }
        let mut written = stream.write_vectored(&slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while written > 0 {
            let chunk = &mut chunks[next];
            if written >= chunk.len() {
                written -= chunk.len();
                next += 1;
            } else {
                chunk.advance(written);
                written = 0;
            }
        }
        while next < chunks.len() && chunks[next].is_empty() {
            next += 1;
        }
    }
    chunks.clear();
    Ok(())
}

/// A response encoded on its own, to queue or send between threads.
fn encoded(response: Response) -> Bytes {
    let mut frame = BytesMut::with_capacity(response.encoded_len());
    response.encode(&mut frame);
    frame.freeze()
}

fn unless_quiet(opaque: u32, opcode: Opcode, outcome: Outcome, quiet: bool) -> Option<Response> {
    if quiet && outcome.is_quiet_success(opcode) {
        None
    } else {
        Some(response(opaque, opcode, outcome))
    }
}

fn error(code: ErrorCode, message: impl Into<Bytes>) -> Outcome {
    Outcome::Error(ErrorReply::new(code, message))
}

fn shutting_down() -> Outcome {
    error(
        ErrorCode::ShuttingDown,
        Bytes::from_static(b"the server is shutting down"),
    )
}
