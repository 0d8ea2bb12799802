//! AUTH (protocol.md §6.12).

use bytes::{BufMut, Bytes};

use crate::error::Invalid;
use crate::wire::BodyReader;

/// The longest token AUTH carries, in bytes. Long enough for any secret a
/// person or a generator makes (a 256-bit key is 43 characters of base64),
/// and small enough that an AUTH fits the frame limit a connection has
/// before it authenticates ([`crate::Limits::PRE_AUTH_MAX_FRAME`]).
pub const MAX_TOKEN_LENGTH: usize = 512;

/// The tokens of a token file's text, with their line numbers (from 1):
/// one token per line, blank lines and lines starting with `#` skipped,
/// whitespace around each token dropped. The server reads its
/// `--auth-token-file` this way, and the clients their own, so that one
/// file can serve both.
pub fn token_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .map(str::trim)
        .enumerate()
        .filter(|(_, token)| !token.is_empty() && !token.starts_with('#'))
        .map(|(index, token)| (index + 1, token))
}

/// A token presented to a server that requires authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct Auth {
    /// The token's bytes: 1..=[`MAX_TOKEN_LENGTH`] of them.
    pub token: Bytes,
}

impl Auth {
    pub(crate) fn decode(reader: BodyReader) -> Result<Auth, Invalid> {
        let token = reader.rest();
        if token.is_empty() || token.len() > MAX_TOKEN_LENGTH {
            return Err(Invalid::malformed(format!(
                "an AUTH token is 1 to {MAX_TOKEN_LENGTH} bytes, not {}",
                token.len()
            )));
        }
        Ok(Auth { token })
    }

    pub(crate) fn body_len(&self) -> usize {
        self.token.len()
    }

    pub(crate) fn encode_body(&self, dst: &mut impl BufMut) {
        dst.put_slice(&self.token);
    }
}

/// Never prints the token: requests end up in logs and panic messages.
impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("token", &format_args!("<{} bytes>", self.token.len()))
            .finish()
    }
}
