//! TLS on the data port (`--tls-cert`, `--tls-key`, `--tls-client-ca`).
//!
//! When configured, every connection speaks TLS from its first byte
//! (protocol.md §1). The accepting worker counts the connection against
//! `max_connections` first, then runs the handshake, bounded by the frame
//! timeout (or, if that is off, the idle timeout), and then serves it
//! exactly as a plain one: the connection code is generic over the stream
//! ([`crate::connection`]), and the plain path is its own instance, not a
//! branch on every read.
//!
//! The rustls connection is driven by hand over the socket
//! ([`stream::TlsStream`]), so that at a HELLO asking for another shard the
//! socket and its TLS state move to that shard's worker together, with
//! whatever either holds ([`crate::router::Handoff`]).
//!
//! [`ServerTls`] holds the configuration new handshakes use. SIGHUP
//! ([`crate::Server::reload`]) reads the files again and swaps it in;
//! established connections keep the one they started with. A file that no
//! longer loads leaves the old configuration in force.

pub mod files;
pub mod stream;

use std::sync::{Arc, RwLock};

use rustls::{ServerConfig, ServerConnection};

pub use self::files::TlsError;
pub use self::stream::TlsStream;
use crate::config::TlsFiles;

/// Bytes of TLS records a connection may have waiting to be sent before a
/// write takes no more plaintext (rustls' default, stated here as the
/// bound): on top of the connection's answer budget.
pub const SEND_BUFFER_LIMIT: usize = 64 * 1024;

/// The TLS configuration in force, and the files it is reloaded from.
pub struct ServerTls {
    files: TlsFiles,
    /// Read once per accepted connection, written by a reload: never on the
    /// request path.
    config: RwLock<Arc<ServerConfig>>,
}

impl ServerTls {
    /// Loads the files; fails naming the file at fault.
    pub fn load(files: TlsFiles) -> Result<ServerTls, TlsError> {
        let config = files::server_config(&files)?;
        Ok(ServerTls {
            files,
            config: RwLock::new(config),
        })
    }

    /// Whether clients must present a certificate.
    pub fn requires_client_certificates(&self) -> bool {
        self.files.client_ca.is_some()
    }

    /// A server-side TLS connection, before its handshake, with the
    /// configuration in force now.
    pub fn new_session(&self) -> Result<Box<ServerConnection>, rustls::Error> {
        let config = self
            .config
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let mut session = ServerConnection::new(config)?;
        session.set_buffer_limit(Some(SEND_BUFFER_LIMIT));
        Ok(Box::new(session))
    }

    /// Reads the files again and, if they load, makes them the
    /// configuration of every later handshake; otherwise keeps the one in
    /// force and returns why.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = files::server_config(&self.files)?;
        *self
            .config
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = config;
        Ok(())
    }

    /// The files, for the log.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }
}
