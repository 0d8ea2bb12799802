//! One connection's loop: take what the pacing allows from an op source,
//! encode it, write it, read, pair each reply with the oldest request in
//! flight, record.
//!
//! Every wait is bounded: connecting and every write by the timeout, and
//! reading by a deadline that moves forward only when bytes arrive, so a
//! server that stops answering ends the run with an error instead of
//! hanging it.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tagcached_protocol::response::HelloInfo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout, timeout_at};

use crate::schedule::TIMER_RESOLUTION;

use crate::config::Protocol;
use crate::dataset::Dataset;
use crate::driver::tagcached::{hello, HelloError};
use crate::driver::{Driver, ProtocolError};
use crate::recorder::Recorder;
use crate::schedule::{latency_ns, Pacing};
use crate::stream::{BenchStream, TlsClient};
use crate::workload::{Batch, OpKind, OpSource};

/// Read buffer growth step; replies larger than this are read in pieces.
const READ_CHUNK: usize = 64 * 1024;

/// The longest an idle open-loop connection sleeps before it looks again
/// at whether it should stop.
const MAX_IDLE_SLEEP: Duration = Duration::from_millis(50);

/// Open loop: how long after the deadline requests due before it may still
/// be sent. Covers the timer waking late for the last ones; a server that
/// is truly behind leaves a backlog anyway, which is reported.
const OPEN_LOOP_GRACE: Duration = Duration::from_millis(100);

/// Why a connection failed. Any of these ends the run.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// TCP connect failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The server.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// TCP connect took too long.
    #[error("connecting to {addr} timed out after {timeout:?}")]
    ConnectTimeout {
        /// The server.
        addr: SocketAddr,
        /// The bound.
        timeout: Duration,
    },
    /// The tagcached handshake failed.
    #[error("HELLO to {addr}: {source}")]
    Hello {
        /// The server.
        addr: SocketAddr,
        /// Why.
        source: HelloError,
    },
    /// Reading or writing failed.
    #[error("connection {index}: {source}")]
    Io {
        /// Which connection.
        index: usize,
        /// Why.
        source: io::Error,
    },
    /// The server closed the connection.
    #[error(
        "connection {index}: the server closed the connection ({in_flight} requests in flight)"
    )]
    Closed {
        /// Which connection.
        index: usize,
        /// Requests left unanswered.
        in_flight: usize,
    },
    /// The server did not answer in time.
    #[error("connection {index}: no reply from the server in {timeout:?} ({in_flight} requests in flight)")]
    Timeout {
        /// Which connection.
        index: usize,
        /// The bound.
        timeout: Duration,
        /// Requests left unanswered.
        in_flight: usize,
    },
    /// The server's bytes did not parse.
    #[error("connection {index}: {source}")]
    Protocol {
        /// Which connection.
        index: usize,
        /// Why.
        source: ProtocolError,
    },
}

/// Connects, over TLS if `tls` is given (and, for tagcached, says HELLO
/// asking for `want_shard`, then AUTH with `auth_token` if the server
/// requires it).
pub async fn open(
    addr: SocketAddr,
    tls: Option<&TlsClient>,
    protocol: Protocol,
    want_shard: Option<u16>,
    auth_token: Option<&bytes::Bytes>,
    connect_timeout: Duration,
) -> Result<(BenchStream, Option<HelloInfo>), ConnectionError> {
    let connect = async {
        let socket = TcpStream::connect(addr).await?;
        socket.set_nodelay(true)?;
        match tls {
            Some(tls) => tls.connect(socket).await,
            None => Ok(BenchStream::Plain(socket)),
        }
    };
    let mut stream = timeout(connect_timeout, connect)
        .await
        .map_err(|_| ConnectionError::ConnectTimeout {
            addr,
            timeout: connect_timeout,
        })?
        .map_err(|source| ConnectionError::Connect { addr, source })?;
    let info = match protocol {
        Protocol::Tagcached => Some(
            hello(&mut stream, want_shard, auth_token, connect_timeout)
                .await
                .map_err(|source| ConnectionError::Hello { addr, source })?,
        ),
        Protocol::Memcached | Protocol::Redis => None,
    };
    Ok((stream, info))
}

/// When a phase stops issuing requests (those in flight still complete).
#[derive(Debug, Clone, Copy)]
pub struct StopWhen<'a> {
    /// Issue nothing due at or after this instant (open loop: requests due
    /// before it may still go out for [`OPEN_LOOP_GRACE`] after it).
    pub deadline: Option<Instant>,
    /// Stop once this count of other connections still running reaches 0
    /// (the invalidator follows the workload).
    pub others_running: Option<&'a AtomicUsize>,
    /// Stop at once, without draining: another connection failed.
    pub abort: &'a AtomicBool,
}

impl StopWhen<'_> {
    /// Whether more requests may go out at `now` under `pacing`.
    fn issuing(&self, now: Instant, pacing: &Pacing) -> bool {
        let before_deadline = match (self.deadline, pacing) {
            (None, _) => true,
            (Some(deadline), Pacing::Closed) => now < deadline,
            (Some(deadline), Pacing::Open { schedule, .. }) => {
                schedule.next_due() < deadline && now < deadline + OPEN_LOOP_GRACE
            }
        };
        before_deadline
            && self
                .others_running
                .map_or(true, |running| running.load(Ordering::Relaxed) > 0)
    }
}

/// How a phase ended.
#[derive(Debug, Clone, Copy)]
pub struct PhaseEnd {
    /// When its last reply arrived.
    pub finished: Instant,
    /// Open loop: requests due before the deadline that were never sent.
    pub backlog: u64,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    kind: OpKind,
    /// Due time (open loop) or send time (closed loop): latency runs from it.
    intended: Instant,
    /// When it was sent.
    sent: Instant,
}

/// A connection and its buffers.
pub struct Connection<D> {
    index: usize,
    stream: BenchStream,
    driver: D,
    data: Rc<Dataset>,
    read_buf: BytesMut,
    write_buf: BytesMut,
    in_flight: VecDeque<InFlight>,
    batch: Batch,
    timeout: Duration,
}

impl<D: Driver> Connection<D> {
    /// Wraps an open stream.
    pub fn new(
        index: usize,
        stream: BenchStream,
        driver: D,
        data: Rc<Dataset>,
        timeout: Duration,
    ) -> Connection<D> {
        Connection {
            index,
            stream,
            driver,
            data,
            read_buf: BytesMut::with_capacity(READ_CHUNK),
            write_buf: BytesMut::with_capacity(READ_CHUNK),
            in_flight: VecDeque::new(),
            batch: Batch::default(),
            timeout,
        }
    }

    /// The thread's dataset this connection sends from.
    pub fn data(&self) -> &Dataset {
        &self.data
    }

    /// Runs `source` until it is exhausted or `stop` says so, keeping at
    /// most `pipeline` requests in flight, paced by `pacing`, and records
    /// each completed request in `recorder` if one is given.
    pub async fn run(
        &mut self,
        source: &mut impl OpSource,
        mut pacing: Pacing,
        pipeline: usize,
        stop: StopWhen<'_>,
        recorder: Option<&RefCell<Recorder>>,
    ) -> Result<PhaseEnd, ConnectionError> {
        let index = self.index;
        let mut exhausted = false;
        let mut reply_by = Instant::now() + self.timeout;
        let mut finished = Instant::now();
        loop {
            if stop.abort.load(Ordering::Relaxed) {
                break;
            }
            let now = Instant::now();
            let issuing = !exhausted && stop.issuing(now, &pacing);
            if issuing && self.in_flight.len() < pipeline {
                let was_idle = self.in_flight.is_empty();
                exhausted = self.fill(source, &mut pacing, pipeline, stop.deadline, now);
                if !self.batch.ops.is_empty() {
                    if was_idle {
                        reply_by = now + self.timeout;
                    }
                    self.send().await?;
                }
            }
            let more_to_send = !exhausted && stop.issuing(now, &pacing);
            let wake = match &pacing {
                Pacing::Open { schedule, spin }
                    if more_to_send && self.in_flight.len() < pipeline =>
                {
                    // `more_to_send` means the next request is due before
                    // any deadline.
                    let wake = schedule.next_due().min(now + MAX_IDLE_SLEEP);
                    Some((wake, *spin))
                }
                _ => None,
            };
            if self.in_flight.is_empty() {
                match wake {
                    Some((wake, spin)) => {
                        wait_until(wake, spin).await;
                        continue;
                    }
                    None => break,
                }
            }
            self.read_buf.reserve(READ_CHUNK);
            let read = timeout_at(reply_by.into(), self.stream.read_buf(&mut self.read_buf));
            let read = match wake {
                Some((wake, spin)) => {
                    tokio::select! {
                        biased;
                        read = read => read,
                        () = wait_until(wake, spin) => continue,
                    }
                }
                None => read.await,
            };
            let in_flight = self.in_flight.len();
            let count = read
                .map_err(|_| ConnectionError::Timeout {
                    index,
                    timeout: self.timeout,
                    in_flight,
                })?
                .map_err(|source| ConnectionError::Io { index, source })?;
            if count == 0 {
                return Err(ConnectionError::Closed { index, in_flight });
            }
            let completed = Instant::now();
            reply_by = completed + self.timeout;
            finished = completed;
            self.complete(completed, recorder)?;
        }
        let backlog = match (&pacing, stop.deadline) {
            (Pacing::Open { schedule, .. }, Some(deadline)) => schedule.backlog(deadline),
            _ => 0,
        };
        Ok(PhaseEnd { finished, backlog })
    }

    /// Draws the requests the pacing allows into the batch; returns whether
    /// the source ran dry.
    fn fill(
        &mut self,
        source: &mut impl OpSource,
        pacing: &mut Pacing,
        pipeline: usize,
        deadline: Option<Instant>,
        now: Instant,
    ) -> bool {
        self.batch.clear();
        while self.in_flight.len() < pipeline {
            let intended = match pacing {
                Pacing::Closed => now,
                Pacing::Open { schedule, .. } => {
                    let due = schedule.next_due();
                    if due > now || deadline.is_some_and(|deadline| due >= deadline) {
                        break;
                    }
                    due
                }
            };
            let Some(kind) = source.next_op(&mut self.batch) else {
                return true;
            };
            if let Pacing::Open { schedule, .. } = pacing {
                schedule.take_due(now);
            }
            self.in_flight.push_back(InFlight {
                kind,
                intended,
                sent: now,
            });
        }
        false
    }

    async fn send(&mut self) -> Result<(), ConnectionError> {
        let index = self.index;
        self.driver
            .encode(&self.batch, &self.data, &mut self.write_buf);
        let in_flight = self.in_flight.len();
        let write = async {
            self.stream.write_all(&self.write_buf).await?;
            // Sends what TLS still holds (nothing for TCP).
            self.stream.flush().await
        };
        timeout(self.timeout, write)
            .await
            .map_err(|_| ConnectionError::Timeout {
                index,
                timeout: self.timeout,
                in_flight,
            })?
            .map_err(|source| ConnectionError::Io { index, source })?;
        self.write_buf.clear();
        Ok(())
    }

    /// Parses every complete reply in the read buffer.
    fn complete(
        &mut self,
        completed: Instant,
        recorder: Option<&RefCell<Recorder>>,
    ) -> Result<(), ConnectionError> {
        let index = self.index;
        let mut recorder = recorder.map(RefCell::borrow_mut);
        while let Some(reply) = self
            .driver
            .decode(&mut self.read_buf)
            .map_err(|source| ConnectionError::Protocol { index, source })?
        {
            let Some(request) = self.in_flight.pop_front() else {
                return Err(ConnectionError::Protocol {
                    index,
                    source: ProtocolError("a reply with no request in flight".into()),
                });
            };
            if let Some(recorder) = recorder.as_mut() {
                recorder.record(
                    request.kind,
                    reply,
                    latency_ns(request.intended, completed),
                    latency_ns(request.intended, request.sent),
                );
            }
        }
        Ok(())
    }
}

/// Waits until `wake`: by the timer while it is more than a tick away, then,
/// with `spin`, by yielding so the thread's other connections and its I/O
/// run meanwhile (see [`crate::schedule`]). Returns early at worst; callers
/// look at the clock again.
async fn wait_until(wake: Instant, spin: bool) {
    let now = Instant::now();
    if !spin {
        sleep_until(wake.into()).await;
    } else if wake.saturating_duration_since(now) > TIMER_RESOLUTION {
        sleep_until((wake - TIMER_RESOLUTION).into()).await;
    } else {
        tokio::task::yield_now().await;
    }
}
