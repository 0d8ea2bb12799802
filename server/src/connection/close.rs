//! How the server ends a connection it chose to end (a fatal frame, a
//! timeout, BUSY, shutdown): every answer due, then the end of stream, then
//! a bounded drain, so that the client reads its answers and a clean end of
//! stream rather than a reset (protocol.md §1).
//!
//! Closing a socket whose receive queue holds bytes the server never read
//! makes the kernel send a reset instead of the end of stream, and a reset
//! throws away what the server wrote that the network has not carried yet:
//! the answers of requests that ran. A client that pipelines nearly always
//! has requests in flight when the server stops reading. So the server
//! shuts down its sending side first (the end of stream follows the last
//! answer), reads and discards what still arrives until the client closes
//! its side, goes quiet for [`LINGER_QUIET`], or [`LINGER_MAX`] has passed,
//! and only then closes. A connection that lingers still counts against
//! `max_connections`: an fd is held until the socket is closed.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// A client that sends nothing for this long after the end of stream has
/// stopped sending: close.
pub const LINGER_QUIET: Duration = Duration::from_secs(1);
/// The longest the server drains a connection it ended.
pub const LINGER_MAX: Duration = Duration::from_secs(5);

/// Sends the end of stream after everything written to `stream`, then
/// discards input (through `buffer`, emptied each time) until the client
/// closes, goes quiet, or the bound passes. The caller then drops the
/// stream, with nothing unread that could turn the close into a reset. (Over
/// TLS the end of stream is a `close_notify` alert, then the socket's.)
pub(super) async fn linger<S>(stream: &mut S, buffer: &mut BytesMut)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if stream.shutdown().await.is_err() {
        return;
    }
    let give_up = Instant::now() + LINGER_MAX;
    loop {
        buffer.clear();
        buffer.reserve(super::READ_CHUNK);
        let until = give_up.min(Instant::now() + LINGER_QUIET);
        match tokio::time::timeout_at(until, stream.read_buf(buffer)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => return,
            Ok(Ok(_)) => {}
        }
    }
}
