//! [`BenchStream`]: a connection to the server, plain TCP or TLS
//! (`--tls`), and [`TlsClient`], how to make the TLS one. One enum rather
//! than a type parameter: the branch per read and write is the same for
//! every run, so TLS and plain runs are compared on equal terms.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// How to open TLS connections: the roots to verify the server with, and
/// the name its certificate must carry.
#[derive(Debug, Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl TlsClient {
    /// Verifies the server named `name` against the CA certificates in the
    /// PEM file `ca`, or the system's if `None`.
    pub fn new(ca: Option<&Path>, name: &str) -> Result<TlsClient, String> {
        let mut roots = RootCertStore::empty();
        match ca {
            Some(ca) => {
                let pem = std::fs::read(ca)
                    .map_err(|error| format!("cannot read {}: {error}", ca.display()))?;
                for certificate in CertificateDer::pem_slice_iter(&pem) {
                    let certificate =
                        certificate.map_err(|error| format!("{}: {error}", ca.display()))?;
                    roots
                        .add(certificate)
                        .map_err(|error| format!("{}: {error}", ca.display()))?;
                }
            }
            None => {
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            }
        }
        if roots.is_empty() {
            return Err("no CA certificate to verify the server with".to_owned());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(name.to_owned())
            .map_err(|_| format!("`{name}` is not a host name or an IP address"))?;
        Ok(TlsClient {
            config: Arc::new(config),
            name,
        })
    }

    /// Runs the handshake on `socket`.
    pub async fn connect(&self, socket: TcpStream) -> io::Result<BenchStream> {
        let stream = TlsConnector::from(self.config.clone())
            .connect(self.name.clone(), socket)
            .await?;
        Ok(BenchStream::Tls(Box::new(stream)))
    }
}

/// A connection to the server.
#[derive(Debug)]
pub enum BenchStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for BenchStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            BenchStream::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            BenchStream::Tls(stream) => {
                // tokio-rustls hands out plaintext it has already decrypted
                // without touching the socket, so without this a connection
                // could keep its thread from the others, which a TCP read
                // (counted against the task's budget) never does.
                let coop = ready!(tokio::task::coop::poll_proceed(cx));
                let read = Pin::new(stream.as_mut()).poll_read(cx, buf);
                if read.is_ready() {
                    coop.made_progress();
                }
                read
            }
        }
    }
}

impl AsyncWrite for BenchStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            BenchStream::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            BenchStream::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            BenchStream::Plain(stream) => Pin::new(stream).poll_flush(cx),
            BenchStream::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            BenchStream::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            BenchStream::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}
