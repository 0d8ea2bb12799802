//! [`TlsOptions`]: connecting to a server that serves TLS (protocol.md §1).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::error::{Error, Result};

/// How to verify a TLS server, and the certificate to present if it asks
/// for one. Cheap to clone.
///
/// ```no_run
/// # fn example() -> tagcached_client::Result<()> {
/// use tagcached_client::{Client, TlsOptions};
///
/// let tls = TlsOptions::with_ca_file("/etc/tagcached/ca.pem")?
///     .client_certificate("/etc/app/client.pem", "/etc/app/client.key")?;
/// let cache = Client::builder().server("cache.internal:11311").tls(tls).build()?;
/// # Ok(()) }
/// ```
///
/// The server's certificate must name the host the client connects to:
/// the host of each server address a [`Client`](crate::Client) is given,
/// or the name set with [`TlsOptions::server_name`].
#[derive(Debug, Clone)]
pub struct TlsOptions {
    roots: Arc<RootCertStore>,
    identity: Option<Identity>,
    server_name: Option<ServerName<'static>>,
    config: Arc<ClientConfig>,
}

/// A client certificate chain and its key.
#[derive(Debug)]
struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Identity {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl TlsOptions {
    /// Trusts the operating system's CA certificates (the OS store, as
    /// rustls-native-certs reads it). Fails if none can be loaded.
    pub fn with_system_roots() -> Result<TlsOptions> {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = RootCertStore::empty();
        let (added, _unparsable) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            let why = found
                .errors
                .first()
                .map_or("none found".to_owned(), ToString::to_string);
            return Err(tls_error(format!("no system CA certificates: {why}")));
        }
        TlsOptions::trusting(roots)
    }

    /// Trusts only the CA certificates in the PEM file `path`.
    pub fn with_ca_file(path: impl AsRef<Path>) -> Result<TlsOptions> {
        let path = path.as_ref();
        TlsOptions::with_ca_pem(&read(path)?)
            .map_err(|error| tls_error(format!("{}: {error}", path.display())))
    }

    /// Trusts only the CA certificates in `pem`.
    pub fn with_ca_pem(pem: &[u8]) -> Result<TlsOptions> {
        let mut roots = RootCertStore::empty();
        for certificate in certificates(pem)? {
            roots
                .add(certificate)
                .map_err(|error| tls_error(format!("not a usable CA certificate: {error}")))?;
        }
        TlsOptions::trusting(roots)
    }

    /// Presents the certificate chain and key in these PEM files to a
    /// server that requires client certificates (`--tls-client-ca`).
    pub fn client_certificate(
        self,
        cert_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
    ) -> Result<TlsOptions> {
        let (cert_path, key_path) = (cert_path.as_ref(), key_path.as_ref());
        let chain = certificates(&read(cert_path)?)
            .map_err(|error| tls_error(format!("{}: {error}", cert_path.display())))?;
        let key = PrivateKeyDer::from_pem_slice(&read(key_path)?).map_err(|error| {
            tls_error(format!(
                "{}: no usable private key: {error}",
                key_path.display()
            ))
        })?;
        self.with_identity(Some(Identity { chain, key }))
    }

    /// As [`client_certificate`](TlsOptions::client_certificate), from PEM
    /// text.
    pub fn client_certificate_pem(self, cert_pem: &[u8], key_pem: &[u8]) -> Result<TlsOptions> {
        let chain = certificates(cert_pem)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|error| tls_error(format!("no usable private key: {error}")))?;
        self.with_identity(Some(Identity { chain, key }))
    }

    /// Checks the server's certificate against `name` (a host name or an
    /// IP address) rather than the host of the address connected to.
    pub fn server_name(mut self, name: impl Into<String>) -> Result<TlsOptions> {
        let name = name.into();
        let parsed = ServerName::try_from(name.clone())
            .map_err(|_| tls_error(format!("`{name}` is not a host name or an IP address")))?;
        self.server_name = Some(parsed);
        Ok(self)
    }

    fn trusting(roots: RootCertStore) -> Result<TlsOptions> {
        let roots = Arc::new(roots);
        let config = client_config(&roots, None)?;
        Ok(TlsOptions {
            roots,
            identity: None,
            server_name: None,
            config,
        })
    }

    fn with_identity(mut self, identity: Option<Identity>) -> Result<TlsOptions> {
        self.config = client_config(&self.roots, identity.clone())?;
        self.identity = identity;
        Ok(self)
    }

    /// The name to check the certificate against when connecting to
    /// `address` (`host:port`, `[v6]:port`).
    pub(crate) fn name_for(&self, address: Option<&str>) -> Result<ServerName<'static>> {
        if let Some(name) = &self.server_name {
            return Ok(name.clone());
        }
        let Some(address) = address else {
            return Err(tls_error(
                "no server name: set TlsOptions::server_name, or connect through a Client, \
                 which takes it from the server's address"
                    .to_owned(),
            ));
        };
        let host = host_of(address);
        ServerName::try_from(host.to_owned())
            .map_err(|_| tls_error(format!("`{host}` (from {address}) is not a server name")))
    }

    /// Runs the handshake on `socket`.
    pub(crate) async fn handshake(
        &self,
        name: ServerName<'static>,
        socket: TcpStream,
    ) -> Result<TlsStream<TcpStream>> {
        Ok(TlsConnector::from(self.config.clone())
            .connect(name, socket)
            .await?)
    }
}

/// The host part of `host:port` or `[v6]:port` (the whole text if it has
/// no port).
fn host_of(address: &str) -> &str {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(host, _)| host);
    }
    match address.rsplit_once(':') {
        Some((host, _)) if !host.contains(':') => host,
        _ => address,
    }
}

fn client_config(
    roots: &Arc<RootCertStore>,
    identity: Option<Identity>,
) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| tls_error(error.to_string()))?
        .with_root_certificates(roots.clone());
    let config = match identity {
        Some(Identity { chain, key }) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|error| tls_error(format!("client certificate: {error}")))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|error| tls_error(format!("cannot read {}: {error}", path.display())))
}

/// Every `CERTIFICATE` in `pem`; at least one.
fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|error| tls_error(format!("bad PEM: {error}")))?;
    if certificates.is_empty() {
        return Err(tls_error("no PEM CERTIFICATE found".to_owned()));
    }
    Ok(certificates)
}

fn tls_error(message: String) -> Error {
    Error::InvalidArgument(format!("TLS: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_the_address_without_its_port() {
        assert_eq!(host_of("cache.internal:11311"), "cache.internal");
        assert_eq!(host_of("127.0.0.1:11311"), "127.0.0.1");
        assert_eq!(host_of("[::1]:11311"), "::1");
        assert_eq!(host_of("cache.internal"), "cache.internal");
        assert_eq!(host_of("::1"), "::1");
    }
}
