//! Accepting a connection on a TLS port: the handshake, bounded in time,
//! then the same service as a plain connection.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpStream;

use super::accept;
use crate::admission::ConnectionGuard;
use crate::context::WorkerContext;
use crate::log_limit::LogLimiter;
use crate::tls::TlsStream;

/// Failed handshakes, logged at most once a second (a scanner or a plain
/// client on the TLS port fails one per connection).
static HANDSHAKE_FAILED: LogLimiter = LogLimiter::new(Duration::from_secs(1));

/// Runs the TLS handshake on a connection this worker accepted (already
/// counted by `guard`), then serves it. The handshake must end within the
/// frame timeout, or the idle timeout if that is off (a client that
/// connects and never finishes it is a frame that never arrives whole),
/// and counts as one of those timeouts if it does not.
pub async fn serve_tls(context: Rc<WorkerContext>, socket: TcpStream, guard: ConnectionGuard) {
    let shared = context.shared.clone();
    let Some(tls) = &shared.tls else {
        return;
    };
    let session = match tls.new_session() {
        Ok(session) => session,
        Err(error) => {
            tracing::warn!(%error, "cannot start a TLS session");
            return;
        }
    };
    let mut stream = TlsStream::from_parts(socket, session);
    let config = &shared.config;
    let (bound, counter) = match (config.frame_timeout, config.idle_timeout) {
        (Some(frame), _) => (Some(frame), &shared.counters.frame_timeouts),
        (None, idle) => (idle, &shared.counters.idle_kicks),
    };
    let handshake = stream.handshake();
    let outcome = match bound {
        Some(bound) => tokio::time::timeout(bound, handshake).await,
        None => Ok(handshake.await),
    };
    match outcome {
        Ok(Ok(())) => accept(context, stream, guard).await,
        Ok(Err(error)) => {
            if let Some(suppressed) = HANDSHAKE_FAILED.allow() {
                tracing::info!(
                    peer = ?stream.peer_addr().ok(),
                    %error,
                    suppressed,
                    "TLS handshake failed"
                );
            }
        }
        Err(_elapsed) => {
            counter.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                peer = ?stream.peer_addr().ok(),
                "closing a connection whose TLS handshake did not finish in time"
            );
        }
    }
}
