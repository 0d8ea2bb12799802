//! The two tasks that drive one connection, and the [`Link`] callers use to
//! reach them.
//!
//! Callers hand [`Submission`]s to a bounded queue. The *writer* task takes
//! whatever has queued up, gives each request its opaque, registers it with
//! the reader, and writes the lot in as few `write` calls as it can: many
//! concurrent callers share one system call and, usually, one TCP segment.
//! The *reader* task splits response frames off the stream and routes each
//! to its request through an [`InFlightQueue`], which reads the frame's body
//! with the flags its request was sent with.
//!
//! Reading and writing are separate tasks, not one `select!` loop, so that a
//! large batch being written can never wait on responses nobody is reading:
//! the server stops reading when its send buffer is full, and a single task
//! blocked in `write` would deadlock against it.
//!
//! A request is registered with the reader before its bytes are written, so
//! its response can never arrive first. When either task fails (the socket
//! breaks, the server sends something out of step) it records the reason
//! once in [`Shared`] and cancels the other; every request in flight or
//! still queued then fails with that reason, and later submissions fail at
//! once. Dropping every handle to the connection ends the writer, which
//! ends the reader and closes the socket.

use std::io;
use std::sync::{Arc, OnceLock};

use bytes::BytesMut;
use futures_util::StreamExt;
use tagcached_protocol::{ClientFrameCodec, Limits, Outcome, Request, Response};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::in_flight::{Frames, InFlight, InFlightQueue};

/// Bytes the writer gathers before it writes, even if more requests wait:
/// large enough to fill segments, small enough that the first request of a
/// long pipeline goes out early.
const WRITE_CHUNK: usize = 64 * 1024;

/// Write buffer capacity kept between batches; a larger buffer (grown for a
/// big value) is released.
const RETAINED_BUFFER: usize = 4 * WRITE_CHUNK;

/// Initial read buffer: room for the responses to a few hundred pipelined
/// small requests in one `read` (tokio-util's default of 8 KiB takes
/// several system calls for them).
const READ_BUFFER: usize = 64 * 1024;

/// One request, with the channel its frames go back on.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// The request; the writer overwrites its opaque.
    pub(crate) request: Request,
    /// Where its frames, or its failure, go.
    pub(crate) reply: oneshot::Sender<Frames>,
}

impl Outgoing {
    /// A request to send, and the receiver its frames will arrive on.
    pub(crate) fn new(request: Request) -> (Outgoing, oneshot::Receiver<Frames>) {
        let (reply, frames) = oneshot::channel();
        (Outgoing { request, reply }, frames)
    }
}

/// What a caller hands the writer: requests that go out back to back.
#[derive(Debug)]
pub(crate) enum Submission {
    /// A single request (no allocation for the common case).
    One(Outgoing),
    /// Several, written in this order with nothing in between.
    Batch(Vec<Outgoing>),
}

/// State both tasks and every handle see.
#[derive(Debug, Default)]
struct Shared {
    /// Why the connection closed; set once, by whichever side noticed first.
    closed: OnceLock<Error>,
    /// Cancelled when the connection closes, to stop the other task.
    shutdown: CancellationToken,
}

impl Shared {
    fn close(&self, reason: Error) {
        let _ = self.closed.set(reason);
        self.shutdown.cancel();
    }

    /// The error a request gets once the connection is closed.
    fn reason(&self) -> Error {
        self.closed.get().cloned().unwrap_or(Error::Closed)
    }
}

/// A handle on one connection's tasks: submits requests, awaits their
/// frames. Dropping it (the last clone of the owning connection) closes the
/// connection.
#[derive(Debug)]
pub(crate) struct Link {
    submissions: mpsc::Sender<Submission>,
    shared: Arc<Shared>,
}

impl Link {
    /// Spawns the reader and writer tasks on the current tokio runtime.
    ///
    /// `queue_depth` submissions may wait for the writer before callers
    /// wait to submit.
    pub(crate) fn spawn<R, W>(read: R, write: W, queue_depth: usize) -> Link
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let shared = Arc::new(Shared::default());
        let (submissions, queued) = mpsc::channel(queue_depth.max(1));
        let (register, registered) = mpsc::unbounded_channel();
        let writer = RequestWriter {
            socket: write,
            buffer: BytesMut::with_capacity(WRITE_CHUNK),
            next_opaque: 1,
            register,
            shared: Arc::clone(&shared),
        };
        tokio::spawn(write_loop(writer, queued));
        tokio::spawn(read_loop(read, registered, Arc::clone(&shared)));
        Link {
            submissions,
            shared,
        }
    }

    /// Whether the connection has closed; every request will fail.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.closed.get().is_some()
    }

    /// Queues requests for the writer; fails at once if the connection is
    /// closed.
    pub(crate) async fn submit(&self, submission: Submission) -> Result<()> {
        if let Some(reason) = self.shared.closed.get() {
            return Err(reason.clone());
        }
        self.submissions
            .send(submission)
            .await
            .map_err(|_| self.shared.reason())
    }

    /// Waits for one submitted request's frames.
    pub(crate) async fn frames(&self, frames: oneshot::Receiver<Frames>) -> Result<Vec<Response>> {
        // A dropped sender means the request was discarded while the
        // connection closed.
        frames.await.unwrap_or_else(|_| Err(self.shared.reason()))
    }

    /// Sends one request and waits for its frames.
    pub(crate) async fn round_trip(&self, request: Request) -> Result<Vec<Response>> {
        let (outgoing, frames) = Outgoing::new(request);
        self.submit(Submission::One(outgoing)).await?;
        self.frames(frames).await
    }
}

/// The writer task's state: the socket, the encode buffer, the opaque
/// counter.
struct RequestWriter<W> {
    socket: W,
    buffer: BytesMut,
    next_opaque: u32,
    register: mpsc::UnboundedSender<InFlight>,
    shared: Arc<Shared>,
}

impl<W: AsyncWrite + Unpin> RequestWriter<W> {
    /// The next opaque. Never 0, which the server uses for errors about
    /// the connection itself; wrapping is safe because four billion
    /// requests are never in flight at once.
    fn allocate_opaque(&mut self) -> u32 {
        let opaque = self.next_opaque;
        self.next_opaque = self.next_opaque.checked_add(1).unwrap_or(1);
        opaque
    }

    /// Registers and encodes a submission, writing whenever a chunk fills.
    async fn stage(&mut self, submission: Submission) -> io::Result<()> {
        match submission {
            Submission::One(outgoing) => {
                self.stage_one(outgoing);
                self.write_if_full().await
            }
            Submission::Batch(batch) => {
                for outgoing in batch {
                    self.stage_one(outgoing);
                    self.write_if_full().await?;
                }
                Ok(())
            }
        }
    }

    fn stage_one(&mut self, Outgoing { mut request, reply }: Outgoing) {
        if reply.is_closed() {
            // The caller gave up before the request was sent: skip it
            // rather than spend a round trip on an answer nobody reads.
            return;
        }
        request.opaque = self.allocate_opaque();
        if let Err(mpsc::error::SendError(entry)) =
            self.register.send(InFlight::new(&request, reply))
        {
            entry.fail(self.shared.reason());
            return;
        }
        self.buffer.reserve(request.encoded_len());
        request.encode(&mut self.buffer);
    }

    async fn write_if_full(&mut self) -> io::Result<()> {
        if self.buffer.len() >= WRITE_CHUNK {
            self.write().await?;
        }
        Ok(())
    }

    /// Writes everything staged.
    async fn write(&mut self) -> io::Result<()> {
        if !self.buffer.is_empty() {
            self.socket.write_all(&self.buffer).await?;
            // Sends what a TLS stream still holds (nothing for TCP).
            self.socket.flush().await?;
            self.buffer.clear();
        }
        if self.buffer.capacity() > RETAINED_BUFFER {
            self.buffer = BytesMut::with_capacity(WRITE_CHUNK);
        }
        Ok(())
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: RequestWriter<W>,
    mut queued: mpsc::Receiver<Submission>,
) {
    let shared = Arc::clone(&writer.shared);
    loop {
        let first = tokio::select! {
            biased;
            () = shared.shutdown.cancelled() => break,
            next = queued.recv() => match next {
                Some(submission) => submission,
                None => {
                    // Every handle is gone, so nobody waits for anything.
                    shared.close(Error::Closed);
                    break;
                }
            },
        };
        let written = async {
            writer.stage(first).await?;
            while let Ok(next) = queued.try_recv() {
                writer.stage(next).await?;
            }
            writer.write().await
        };
        let result = tokio::select! {
            biased;
            () = shared.shutdown.cancelled() => break,
            result = written => result,
        };
        if let Err(error) = result {
            shared.close(Error::from(error));
            break;
        }
    }
    queued.close();
    let reason = shared.reason();
    while let Ok(submission) = queued.try_recv() {
        let outgoing = match submission {
            Submission::One(outgoing) => vec![outgoing],
            Submission::Batch(batch) => batch,
        };
        for Outgoing { reply, .. } in outgoing {
            let _ = reply.send(Err(reason.clone()));
        }
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    socket: R,
    mut registered: mpsc::UnboundedReceiver<InFlight>,
    shared: Arc<Shared>,
) {
    let mut frames = FramedRead::with_capacity(socket, ClientFrameCodec::default(), READ_BUFFER);
    let mut in_flight = InFlightQueue::default();
    let failure = loop {
        let next = tokio::select! {
            biased;
            () = shared.shutdown.cancelled() => break None,
            next = frames.next() => next,
        };
        let frame = match next {
            Some(Ok(frame)) => frame,
            Some(Err(error)) => break Some(Error::from(error)),
            None => break Some(Error::Closed),
        };
        // Requests are registered before they are written, so this frame's
        // request is registered by now.
        while let Ok(entry) = registered.try_recv() {
            in_flight.push(entry);
        }
        let response = match in_flight.decode(frame) {
            Ok(response) => response,
            Err(error) => break Some(error),
        };
        if let Outcome::Hello(info) = &response.outcome {
            // Every hit the server's limits allow fits in its max_frame
            // (see `Limits::largest_request_body`); never go below the
            // default, which also bounds STATS.
            let max_frame = info.limits.max_frame.max(Limits::default().max_frame);
            *frames.decoder_mut() = ClientFrameCodec::new(max_frame);
        }
        if let Err(error) = in_flight.deliver(response) {
            break Some(error);
        }
    };
    if let Some(reason) = failure {
        shared.close(reason);
    }
    registered.close();
    while let Ok(entry) = registered.try_recv() {
        in_flight.push(entry);
    }
    in_flight.fail_all(&shared.reason());
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tagcached_protocol::request::Get;
    use tagcached_protocol::{Command, ServerCodec};
    use tokio_util::codec::Decoder;

    use super::*;

    fn writer() -> (RequestWriter<Vec<u8>>, mpsc::UnboundedReceiver<InFlight>) {
        let (register, registered) = mpsc::unbounded_channel();
        let writer = RequestWriter {
            socket: Vec::new(),
            buffer: BytesMut::new(),
            next_opaque: 1,
            register,
            shared: Arc::new(Shared::default()),
        };
        (writer, registered)
    }

    fn get(key: &'static [u8]) -> Request {
        Request::new(
            0,
            Command::Get(Get {
                key: Bytes::from_static(key),
                request_tags: None,
            }),
        )
    }

    fn decode_all(bytes: &[u8]) -> Vec<Request> {
        let mut buffer = BytesMut::from(bytes);
        let mut codec = ServerCodec::default();
        let mut requests = Vec::new();
        while let Some(request) = codec.decode(&mut buffer).expect("framed") {
            requests.push(request.expect("valid request"));
        }
        assert!(buffer.is_empty());
        requests
    }

    #[tokio::test]
    async fn a_batch_goes_out_in_one_write_with_fresh_opaques_in_order() {
        let (mut writer, mut registered) = writer();
        let (first, _first) = Outgoing::new(get(b"a"));
        let (second, _second) = Outgoing::new(get(b"b"));
        writer
            .stage(Submission::Batch(vec![first, second]))
            .await
            .expect("staged");
        assert!(writer.socket.is_empty(), "small batches wait for write()");
        writer.write().await.expect("written");
        let sent = decode_all(&writer.socket);
        let opaques: Vec<u32> = sent.iter().map(|request| request.opaque).collect();
        assert_eq!(opaques, vec![1, 2]);
        assert_eq!(sent[1].command, get(b"b").command);
        assert!(registered.try_recv().is_ok() && registered.try_recv().is_ok());
    }

    #[tokio::test]
    async fn a_request_whose_caller_left_before_sending_is_skipped() {
        let (mut writer, mut registered) = writer();
        let (abandoned, frames) = Outgoing::new(get(b"a"));
        drop(frames);
        let (kept, _kept) = Outgoing::new(get(b"b"));
        writer
            .stage(Submission::One(abandoned))
            .await
            .expect("staged");
        writer.stage(Submission::One(kept)).await.expect("staged");
        writer.write().await.expect("written");
        let sent = decode_all(&writer.socket);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].command, get(b"b").command);
        assert!(registered.try_recv().is_ok());
        assert!(registered.try_recv().is_err());
    }

    #[test]
    fn opaques_skip_zero_when_they_wrap() {
        let (mut writer, _registered) = writer();
        writer.next_opaque = u32::MAX;
        assert_eq!(writer.allocate_opaque(), u32::MAX);
        assert_eq!(writer.allocate_opaque(), 1);
    }

    #[tokio::test]
    async fn a_request_registered_after_the_reader_left_fails_instead_of_hanging() {
        let (mut writer, registered) = writer();
        drop(registered);
        writer.shared.close(Error::Closed);
        let (outgoing, frames) = Outgoing::new(get(b"a"));
        writer
            .stage(Submission::One(outgoing))
            .await
            .expect("staged");
        assert!(matches!(frames.await, Ok(Err(Error::Closed))));
    }
}
