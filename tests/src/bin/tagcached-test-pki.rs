//! `tagcached-test-pki DIR`: writes certificates made now (rcgen) as PEM
//! files into DIR, for tests in other languages (the Node client's) that
//! have no way to make X.509 certificates themselves: `ca.pem`,
//! `server.pem` and `server.key` (for `localhost` and `127.0.0.1`),
//! `client.pem` and `client.key` (signed by the same CA), and
//! `other-ca.pem` (a CA that signed nothing here). Keys are never checked
//! in; the caller removes DIR.

use std::path::PathBuf;

use tagcached_tests::tls::{TestCa, TestPki};

fn main() -> Result<(), String> {
    let mut args = std::env::args_os().skip(1);
    // A first argument that starts with `-` (`--help`) is a flag, not a
    // directory to fill.
    let (Some(dir), None) = (args.next(), args.next()) else {
        return Err("usage: tagcached-test-pki DIR".to_owned());
    };
    if dir.to_string_lossy().starts_with('-') {
        return Err("usage: tagcached-test-pki DIR".to_owned());
    }
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    let pki = TestPki::new("tagcached test CA");
    let files = [
        (&pki.ca_file, "ca.pem"),
        (&pki.server_cert, "server.pem"),
        (&pki.server_key, "server.key"),
        (&pki.client_cert, "client.pem"),
        (&pki.client_key, "client.key"),
    ];
    for (from, name) in files {
        std::fs::copy(from, dir.join(name)).map_err(|error| format!("{name}: {error}"))?;
    }
    let other = TestCa::new("another test CA");
    std::fs::write(dir.join("other-ca.pem"), other.cert_pem())
        .map_err(|error| format!("other-ca.pem: {error}"))?;
    Ok(())
}
