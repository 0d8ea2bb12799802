//! Bearer tokens for the admin API (`--admin-token-file`), and their
//! reload. The file's format and the constant-time comparison are the data
//! port's ([`crate::auth::TokenSet`]).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use hyper::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use hyper::http::request::Parts;
use hyper::StatusCode;

use super::reply::{self, Reply};
use crate::auth::{TokenFileError, TokenSet};
use crate::config::AdminConfig;

/// The tokens in force, shared by the admin thread, which checks them, and
/// [`crate::Server::reload`], which replaces them. A lock is fine here:
/// the admin API is not the data path.
#[derive(Debug)]
pub struct AdminTokens {
    file: Option<PathBuf>,
    tokens: RwLock<Option<Arc<TokenSet>>>,
}

impl AdminTokens {
    /// The tokens read at start.
    pub fn new(config: &AdminConfig) -> AdminTokens {
        AdminTokens {
            file: config.token_file.clone(),
            tokens: RwLock::new(config.tokens.clone()),
        }
    }

    /// Re-reads the token file, if there is one. On an error the tokens in
    /// force stay, so a typo in the file locks no one out. Returns how
    /// many tokens are now in force (`None`: no file).
    pub fn reload(&self) -> Result<Option<usize>, TokenFileError> {
        let Some(file) = &self.file else {
            return Ok(None);
        };
        let tokens = TokenSet::read(file)?;
        let count = tokens.len();
        *self
            .tokens
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(tokens));
        Ok(Some(count))
    }

    /// Whether requests need a token.
    pub fn required(&self) -> bool {
        self.current().is_some()
    }

    fn current(&self) -> Option<Arc<TokenSet>> {
        self.tokens
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// `None` if the request may go on: no token is configured, or it
    /// carries `Authorization: Bearer <a token in force>`; otherwise the
    /// 401 to answer, with `WWW-Authenticate: Bearer`.
    pub fn refuse(&self, request: &Parts) -> Option<Reply> {
        let tokens = self.current()?;
        let presented = request
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| bearer(value.as_bytes()));
        let message = match presented {
            Some(token) if tokens.accepts(token) => return None,
            Some(_) => "the bearer token is not one of --admin-token-file's",
            None => "this endpoint needs `Authorization: Bearer <token>`",
        };
        let mut answer = reply::error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message);
        answer
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        Some(answer)
    }
}

/// The token of an `Authorization: Bearer <token>` value (the scheme is
/// case-insensitive, RFC 6750).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn the_bearer_scheme_is_read_case_insensitively() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Bear"), None);
    }
}
