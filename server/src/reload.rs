//! Reloading secrets from their files on SIGHUP ([`crate::Server::reload`]):
//! each file-based secret is read again and put in force, or, if it cannot
//! be used, the one in force is kept and the error logged, so that a typo in
//! a file never locks every client out.

use crate::shared::Shared;

/// Reads every file-based secret again (today: the auth token file) and
/// logs what was reloaded or why not.
pub fn reload_secrets(shared: &Shared) {
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
}
