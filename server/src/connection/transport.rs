//! [`Transport`]: what a connection is served over, plain TCP or TLS. The
//! connection code is generic over it, so each is compiled on its own and
//! the plain path pays nothing for TLS.

use std::io;
use std::net::SocketAddr;

use rustls::ServerConnection;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::tls::TlsStream;

/// A stream a connection reads requests from and writes answers to.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + 'static {
    /// The client's address, for the log.
    fn peer_addr(&self) -> io::Result<SocketAddr>;

    /// The socket, detached from this worker's reactor so another worker
    /// can take it, and the TLS state that goes with it, if any.
    fn detach(self) -> io::Result<(std::net::TcpStream, Option<Box<ServerConnection>>)>;
}

impl Transport for TcpStream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        TcpStream::peer_addr(self)
    }

    fn detach(self) -> io::Result<(std::net::TcpStream, Option<Box<ServerConnection>>)> {
        Ok((self.into_std()?, None))
    }
}

impl Transport for TlsStream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        TlsStream::peer_addr(self)
    }

    fn detach(self) -> io::Result<(std::net::TcpStream, Option<Box<ServerConnection>>)> {
        let (socket, session) = self.into_parts();
        Ok((socket.into_std()?, Some(session)))
    }
}
