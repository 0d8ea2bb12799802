//! Reloading secrets from their files on SIGHUP ([`crate::Server::reload`]):
//! each file-based secret is read again and put in force, or, if it cannot
//! be used, the one in force is kept and the error logged, so that a typo in
//! a file never locks every client out.

use crate::admin::AdminTokens;
use crate::shared::Shared;

/// Reads every file-based secret again (the auth token file; the TLS
/// certificate, key and client CA, for later handshakes; the admin token
/// file) and logs what was reloaded or why not.
pub fn reload_secrets(shared: &Shared, admin_tokens: Option<&AdminTokens>) {
    if let Some(auth) = &shared.auth {
        match auth.reload() {
            Ok(tokens) => tracing::info!(
                file = %auth.token_file().display(),
                tokens,
                "reloaded the auth tokens"
            ),
            Err(error) => tracing::error!(
                %error,
                "could not reload the auth tokens; the tokens in force stay in force"
            ),
        }
    }
    if let Some(tls) = &shared.tls {
        let files = tls.files();
        match tls.reload() {
            Ok(()) => tracing::info!(
                cert = %files.cert.display(),
                key = %files.key.display(),
                client_ca = ?files.client_ca.as_ref().map(|ca| ca.display().to_string()),
                "reloaded the TLS certificate; new connections use it"
            ),
            Err(error) => tracing::error!(
                %error,
                "could not reload the TLS files; the certificate already loaded stays in force"
            ),
        }
    }
    if let Some(admin_tokens) = admin_tokens {
        match admin_tokens.reload() {
            Ok(Some(tokens)) => tracing::info!(tokens, "reloaded the admin tokens"),
            Ok(None) => {}
            Err(error) => tracing::error!(
                %error,
                "could not reload the admin tokens; the tokens in force stay in force"
            ),
        }
    }
}
