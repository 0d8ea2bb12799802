//! [`TlsStream`]: a `rustls::ServerConnection` driven over a tokio
//! `TcpStream` by hand, so the two can be taken apart at HELLO and moved to
//! another worker with everything either holds (tokio-rustls' stream can
//! be taken apart but not put back together).
//!
//! Reads give the plaintext rustls has decrypted, reading and decrypting
//! more records only when none is left; writes hand plaintext to rustls and
//! push the records out as far as the socket takes them without waiting;
//! `flush` waits until every record is out. What rustls holds is bounded
//! by its own limits: at most 16 KiB of decrypted plaintext not yet read
//! (it reads no more records until that is taken), one record being
//! received (16 KiB and its overhead, read 4 KiB at a time; 64 KiB during
//! the handshake), and [`super::SEND_BUFFER_LIMIT`] of records not yet
//! written (past which a write takes nothing until the socket drains).

use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use rustls::ServerConnection;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TLS connection on a socket; see the module comment.
pub struct TlsStream {
    socket: TcpStream,
    session: Box<ServerConnection>,
    /// Whether `close_notify` has been queued (by a shutdown).
    close_notify_sent: bool,
}

impl TlsStream {
    /// A TLS connection over `socket`: a new one, before its handshake, or
    /// one taken apart with [`TlsStream::into_parts`] on another worker.
    pub fn from_parts(socket: TcpStream, session: Box<ServerConnection>) -> TlsStream {
        TlsStream {
            socket,
            session,
            close_notify_sent: false,
        }
    }

    /// The socket and the TLS state, which keeps every plaintext byte
    /// received and not yet read, and every record not yet written (those
    /// go out with the next write or flush on whichever worker rebuilds the
    /// stream).
    pub fn into_parts(self) -> (TcpStream, Box<ServerConnection>) {
        (self.socket, self.session)
    }

    /// The client's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket.peer_addr()
    }

    /// Runs the handshake to its end: resolves once application data may
    /// flow, or fails with the reason (after sending the alert rustls
    /// queued for it, if the socket takes it at once). The caller bounds
    /// it in time.
    pub async fn handshake(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_handshake(cx)).await
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.poll_write_records(cx))?;
            if !self.session.is_handshaking() {
                return Poll::Ready(Ok(()));
            }
            if ready!(self.poll_read_records(cx))? == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the client closed the connection during the TLS handshake",
                )));
            }
        }
    }

    /// Reads records from the socket into rustls and decrypts them;
    /// returns how many bytes the socket gave (0: end of stream).
    fn poll_read_records(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let read = loop {
            match self.session.read_tls(&mut SocketReader(&self.socket)) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.socket.poll_read_ready(cx))?;
                }
                outcome => break outcome?,
            }
        };
        if let Err(error) = self.session.process_new_packets() {
            // Best effort: the alert explains the failure to the client.
            let _ = self.session.write_tls(&mut SocketWriter(&self.socket));
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, error)));
        }
        Poll::Ready(Ok(read))
    }

    /// Writes every record rustls has queued, waiting while the socket is
    /// full.
    fn poll_write_records(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.session.wants_write() {
            match self.session.write_tls(&mut SocketWriter(&self.socket)) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.socket.poll_write_ready(cx))?;
                }
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// After plaintext went in: pushes its records out as far as the
    /// socket takes them now. A full socket is not an error here; `flush`
    /// waits for it.
    fn push_records(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        match self.poll_write_records(cx) {
            Poll::Ready(Err(error)) => Err(error),
            _ => Ok(()),
        }
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // Plaintext already decrypted is read without touching the socket,
        // so without this a connection whose client keeps sending would
        // never yield its worker to the others (tokio's socket reads and
        // writes count against the task's budget the same way).
        let coop = ready!(tokio::task::coop::poll_proceed(cx));
        loop {
            match this.session.reader().read(buf.initialize_unfilled()) {
                Ok(read) => {
                    buf.advance(read);
                    coop.made_progress();
                    return Poll::Ready(Ok(()));
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                // A client that closes its socket without TLS's close_notify
                // has ended the stream as a TCP client does; the protocol
                // frames every message, so a truncated one is seen as such.
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                    coop.made_progress();
                    return Poll::Ready(Ok(()));
                }
                Err(error) => return Poll::Ready(Err(error)),
            }
            // Records rustls answers with (a key update) go out first.
            this.push_records(cx)?;
            ready!(this.poll_read_records(cx))?;
        }
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let coop = ready!(tokio::task::coop::poll_proceed(cx));
        loop {
            let taken = this.session.writer().write(buf)?;
            if taken > 0 || buf.is_empty() {
                this.push_records(cx)?;
                coop.made_progress();
                return Poll::Ready(Ok(taken));
            }
            // rustls' buffer of records to send is full.
            ready!(this.poll_write_records(cx))?;
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let total: usize = bufs.iter().map(|buf| buf.len()).sum();
        let coop = ready!(tokio::task::coop::poll_proceed(cx));
        loop {
            let taken = this.session.writer().write_vectored(bufs)?;
            if taken > 0 || total == 0 {
                this.push_records(cx)?;
                coop.made_progress();
                return Poll::Ready(Ok(taken));
            }
            ready!(this.poll_write_records(cx))?;
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_write_records(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_notify_sent {
            this.session.send_close_notify();
            this.close_notify_sent = true;
        }
        ready!(this.poll_write_records(cx))?;
        Pin::new(&mut this.socket).poll_shutdown(cx)
    }
}

/// `io::Read` over a tokio socket that never blocks: `WouldBlock` when
/// nothing is there (and the socket's readiness is cleared for the next
/// wait).
struct SocketReader<'a>(&'a TcpStream);

impl Read for SocketReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

/// `io::Write` over a tokio socket that never blocks.
struct SocketWriter<'a>(&'a TcpStream);

impl Write for SocketWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
