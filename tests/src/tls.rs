//! Certificates made at test time ([`TestPki`]): a CA, a server
//! certificate for `localhost` and `127.0.0.1`, client certificates, all
//! generated with rcgen and written as PEM files to a directory that is
//! removed when the test ends. No key is ever checked in.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
pub use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::RawConn;

/// A certificate authority made for one test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// A new CA whose common name is `name`.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, key).expect("self-signed CA"),
        }
    }

    /// The CA's certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate signed by this CA for `names` (host names or IP
    /// addresses) with serial number `serial`, for a server or a client;
    /// returns the certificate and its key, PEM.
    pub fn issue(&self, names: &[&str], serial: u64, usage: Usage) -> (String, String) {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params.serial_number = Some(SerialNumber::from(serial));
        params
            .distinguished_name
            .push(DnType::CommonName, format!("tagcached test {serial}"));
        params.extended_key_usages = vec![match usage {
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("signed leaf");
        (cert.pem(), key.serialize_pem())
    }
}

/// What a certificate is for.
#[derive(Debug, Clone, Copy)]
pub enum Usage {
    /// A server's (TLS Web Server Authentication).
    Server,
    /// A client's (TLS Web Client Authentication).
    Client,
}

/// A directory of PEM files for one test, removed on drop.
pub struct PemDir {
    path: PathBuf,
}

impl PemDir {
    /// A new empty directory under the system's temporary directory.
    pub fn new() -> PemDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "tagcached-tls-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create the PEM directory");
        PemDir { path }
    }

    /// Writes `contents` to `name` in the directory; returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path.join(name);
        std::fs::write(&path, contents).expect("write a PEM file");
        path
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Default for PemDir {
    fn default() -> PemDir {
        PemDir::new()
    }
}

impl Drop for PemDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A CA, a server certificate it signed (serial 1) and a client
/// certificate it signed (serial 2), written as PEM files.
pub struct TestPki {
    /// The CA.
    pub ca: TestCa,
    /// Where the files are.
    pub dir: PemDir,
    /// `ca.pem`.
    pub ca_file: PathBuf,
    /// `server.pem`: for `localhost` and `127.0.0.1`.
    pub server_cert: PathBuf,
    /// `server.key`.
    pub server_key: PathBuf,
    /// `client.pem`.
    pub client_cert: PathBuf,
    /// `client.key`.
    pub client_key: PathBuf,
}

impl TestPki {
    /// Names the server certificate is valid for.
    pub const SERVER_NAMES: [&'static str; 2] = ["localhost", "127.0.0.1"];

    /// A new CA and certificates, with the CA's common name `name`.
    pub fn new(name: &str) -> TestPki {
        let ca = TestCa::new(name);
        let dir = PemDir::new();
        let (server_pem, server_key) = ca.issue(&TestPki::SERVER_NAMES, 1, Usage::Server);
        let (client_pem, client_key) = ca.issue(&["client"], 2, Usage::Client);
        TestPki {
            ca_file: dir.write("ca.pem", &ca.cert_pem()),
            server_cert: dir.write("server.pem", &server_pem),
            server_key: dir.write("server.key", &server_key),
            client_cert: dir.write("client.pem", &client_pem),
            client_key: dir.write("client.key", &client_key),
            ca,
            dir,
        }
    }

    /// The server's TLS files, with client certificates required if
    /// `require_client_certs`.
    pub fn server_files(&self, require_client_certs: bool) -> tagcached::config::TlsFiles {
        tagcached::config::TlsFiles {
            cert: self.server_cert.clone(),
            key: self.server_key.clone(),
            client_ca: require_client_certs.then(|| self.ca_file.clone()),
        }
    }

    /// A client configuration trusting this CA only, presenting the client
    /// certificate if `with_client_cert`.
    pub fn client_config(&self, with_client_cert: bool) -> Arc<ClientConfig> {
        client_config(&self.ca_file, with_client_cert.then_some(self))
    }

    /// A TLS connection to `addr` as `localhost`, trusting this CA.
    pub async fn connect(
        &self,
        addr: SocketAddr,
        with_client_cert: bool,
    ) -> std::io::Result<RawConn<TlsStream<TcpStream>>> {
        tls_connect(addr, self.client_config(with_client_cert)).await
    }
}

/// A client configuration trusting the CAs in `ca_file`, presenting the
/// client certificate of `identity` if given; ring as the crypto.
pub fn client_config(ca_file: &Path, identity: Option<&TestPki>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).expect("read the CA") {
        roots
            .add(cert.expect("a CA certificate"))
            .expect("add the CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots);
    let config = match identity {
        Some(pki) => {
            let chain = CertificateDer::pem_file_iter(&pki.client_cert)
                .expect("read the client certificate")
                .collect::<Result<Vec<_>, _>>()
                .expect("client certificate");
            let key = PrivateKeyDer::from_pem_file(&pki.client_key).expect("client key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client certificate and key")
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// A TLS connection to `addr` as `localhost` with `config`; fails if the
/// handshake does.
pub async fn tls_connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> std::io::Result<RawConn<TlsStream<TcpStream>>> {
    let socket = TcpStream::connect(addr).await?;
    socket.set_nodelay(true)?;
    let name = ServerName::try_from("localhost").expect("a server name");
    let stream = TlsConnector::from(config).connect(name, socket).await?;
    Ok(RawConn::over(stream))
}
