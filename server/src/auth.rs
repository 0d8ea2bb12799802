//! Authentication on the data port (protocol.md §6.12): the tokens a server
//! accepts, read from the operator's token file, compared in constant time,
//! and replaced on reload; and where a connection stands with respect to
//! them ([`AuthState`]).
//!
//! Only AUTH reads the tokens, never the request path: a connection checks
//! whether it has authenticated once per round, and an authenticated one
//! pays nothing more.
//!
//! # The token file
//!
//! UTF-8 text, one token per line; blank lines and lines starting with `#`
//! are skipped, and whitespace around each token is dropped. Several tokens
//! let an operator rotate them: add the new one, reload (SIGHUP), move the
//! clients over, remove the old one, reload. A file with no token, a token
//! longer than [`MAX_TOKEN_LENGTH`], or a file that cannot be read is an
//! error: at start the server does not start, and on reload the tokens in
//! force stay in force (a typo must not lock every client out).

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use subtle::{Choice, ConstantTimeEq};
use tagcached_protocol::request::token_lines;
pub use tagcached_protocol::request::MAX_TOKEN_LENGTH;
use tokio::time::Instant;

/// Default `--auth-timeout`: a connection has this long from being
/// accepted to authenticate before it is closed. Ten seconds is ample for
/// a TCP and TLS handshake and an AUTH across the world, and short enough
/// that connections which never authenticate do not pile up against
/// `max_connections`.
pub const DEFAULT_AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a token file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// It could not be read, or is not UTF-8.
    #[error("cannot read the token file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// It holds no token: every line is blank or a comment.
    #[error("the token file {} holds no token (one token per line; # starts a comment)", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A token longer than the protocol carries.
    #[error(
        "the token on line {line} of {} is {length} bytes; the limit is {MAX_TOKEN_LENGTH}",
        path.display()
    )]
    TooLong {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// The token's length.
        length: usize,
    },
}

/// One accepted token, zero-padded to the longest length so that comparing
/// it takes the same time whatever its length and the candidate's.
struct PaddedToken {
    length: u64,
    bytes: Box<[u8; MAX_TOKEN_LENGTH]>,
}

impl PaddedToken {
    /// `token` padded; the caller guarantees it is at most
    /// [`MAX_TOKEN_LENGTH`] bytes (longer ones are cut, and never match).
    fn new(token: &[u8]) -> PaddedToken {
        let mut bytes = Box::new([0u8; MAX_TOKEN_LENGTH]);
        let length = token.len().min(MAX_TOKEN_LENGTH);
        bytes[..length].copy_from_slice(&token[..length]);
        PaddedToken {
            length: token.len() as u64,
            bytes,
        }
    }

    fn ct_eq(&self, other: &PaddedToken) -> Choice {
        self.length.ct_eq(&other.length) & self.bytes[..].ct_eq(&other.bytes[..])
    }
}

/// The tokens a server accepts: at least one.
pub struct TokenSet {
    tokens: Vec<PaddedToken>,
}

impl TokenSet {
    /// Reads a token file (see the module comment).
    pub fn read(path: &Path) -> Result<TokenSet, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        TokenSet::parse(&text).map_err(|error| error.at(path))
    }

    /// Parses a token file's text; errors name no file yet (tests and
    /// embedders that hold tokens in memory use it directly).
    pub fn parse(text: &str) -> Result<TokenSet, TokenFileError> {
        let mut tokens = Vec::new();
        for (line, token) in token_lines(text) {
            if token.len() > MAX_TOKEN_LENGTH {
                return Err(TokenFileError::TooLong {
                    path: PathBuf::new(),
                    line,
                    length: token.len(),
                });
            }
            tokens.push(PaddedToken::new(token.as_bytes()));
        }
        if tokens.is_empty() {
            return Err(TokenFileError::Empty {
                path: PathBuf::new(),
            });
        }
        Ok(TokenSet { tokens })
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Never true: a token set holds at least one token.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Whether `candidate` is one of the tokens. Takes the same time
    /// whichever token matches, if any, and whatever the candidate's
    /// length: every token is compared, over [`MAX_TOKEN_LENGTH`] bytes,
    /// without an early exit, so timing tells an attacker neither a prefix
    /// nor a length.
    pub fn accepts(&self, candidate: &[u8]) -> bool {
        let candidate = PaddedToken::new(candidate);
        let mut found = Choice::from(0);
        for token in &self.tokens {
            found |= token.ct_eq(&candidate);
        }
        found.into()
    }
}

impl TokenFileError {
    fn at(self, file: &Path) -> TokenFileError {
        match self {
            TokenFileError::Read { source, .. } => TokenFileError::Read {
                path: file.to_owned(),
                source,
            },
            TokenFileError::Empty { .. } => TokenFileError::Empty {
                path: file.to_owned(),
            },
            TokenFileError::TooLong { line, length, .. } => TokenFileError::TooLong {
                path: file.to_owned(),
                line,
                length,
            },
        }
    }
}

/// Never prints a token.
impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenSet({} tokens)", self.tokens.len())
    }
}

/// How a server authenticates connections, as configured.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Where the tokens come from, read again on reload.
    pub token_file: PathBuf,
    /// The tokens read at start.
    pub tokens: Arc<TokenSet>,
    /// How long a connection has, from being accepted, to authenticate.
    pub timeout: Duration,
}

/// The tokens in force, shared by every worker and replaced on reload.
pub struct Authenticator {
    token_file: PathBuf,
    tokens: RwLock<Arc<TokenSet>>,
    timeout: Duration,
}

impl Authenticator {
    /// Starts with the tokens read at start.
    pub fn new(config: &AuthConfig) -> Authenticator {
        Authenticator {
            token_file: config.token_file.clone(),
            tokens: RwLock::new(config.tokens.clone()),
            timeout: config.timeout,
        }
    }

    /// Whether `token` is one of the tokens in force (constant time, see
    /// [`TokenSet::accepts`]).
    pub fn accepts(&self, token: &[u8]) -> bool {
        let tokens = self
            .tokens
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        tokens.accepts(token)
    }

    /// The state a connection accepted now starts in.
    pub fn new_connection(&self) -> AuthState {
        AuthState::Pending {
            deadline: Instant::now() + self.timeout,
        }
    }

    /// Reads the token file again and puts its tokens in force for every
    /// AUTH from now on; connections already authenticated stay so. On an
    /// error the tokens in force are kept. Returns how many tokens are in
    /// force.
    pub fn reload(&self) -> Result<usize, TokenFileError> {
        let tokens = TokenSet::read(&self.token_file)?;
        let count = tokens.len();
        *self.tokens.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(tokens);
        Ok(count)
    }

    /// The token file.
    pub fn token_file(&self) -> &Path {
        &self.token_file
    }
}

/// Where a connection stands: free to send anything, or still to
/// authenticate. It moves with the connection when HELLO hands it to
/// another worker, so neither the state nor the deadline is reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthState {
    /// Authenticated, or the server requires no authentication.
    Open,
    /// The server requires authentication and the connection has not
    /// authenticated: only HELLO, PING and AUTH are served, frames are
    /// small, and the connection is closed at `deadline`.
    Pending {
        /// When the connection is closed if it has not authenticated.
        deadline: Instant,
    },
}

impl AuthState {
    /// The state of a connection accepted now by a server with `auth`.
    pub fn for_new_connection(auth: Option<&Authenticator>) -> AuthState {
        auth.map_or(AuthState::Open, Authenticator::new_connection)
    }

    /// When the connection is closed unless it authenticates first.
    pub fn deadline(self) -> Option<Instant> {
        match self {
            AuthState::Open => None,
            AuthState::Pending { deadline } => Some(deadline),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str) -> TokenSet {
        TokenSet::parse(text).expect("a valid token file")
    }

    #[test]
    fn accepts_exactly_the_tokens_of_the_file() {
        let tokens = set("# rotated 2026-11\n  old-token  \n\nnew token with spaces\n");
        assert_eq!(tokens.len(), 2);
        assert!(tokens.accepts(b"old-token"));
        assert!(tokens.accepts(b"new token with spaces"));
        for wrong in [
            &b""[..],
            b"old-toke",
            b"old-tokenn",
            b"old-token ",
            b"OLD-TOKEN",
            b"# rotated 2026-11",
            b"new",
        ] {
            assert!(
                !tokens.accepts(wrong),
                "{:?}",
                String::from_utf8_lossy(wrong)
            );
        }
    }

    /// Zero padding must not make a token equal to itself with NULs added.
    #[test]
    fn a_candidate_that_differs_only_by_trailing_zero_bytes_is_refused() {
        let tokens = set("abc\n");
        assert!(!tokens.accepts(b"abc\0"));
        assert!(!tokens.accepts(b"abc\0\0\0"));
        let longest = "x".repeat(MAX_TOKEN_LENGTH);
        let tokens = set(&longest);
        assert!(tokens.accepts(longest.as_bytes()));
        let longer = format!("{longest}x");
        assert!(
            !tokens.accepts(longer.as_bytes()),
            "cut to the longest length"
        );
    }

    #[test]
    fn a_file_without_tokens_or_with_a_token_too_long_is_refused() {
        assert!(matches!(
            TokenSet::parse("\n# only a comment\n   \n"),
            Err(TokenFileError::Empty { .. })
        ));
        let long = format!("ok\n{}\n", "y".repeat(MAX_TOKEN_LENGTH + 1));
        assert!(matches!(
            TokenSet::parse(&long),
            Err(TokenFileError::TooLong {
                line: 2,
                length: 513,
                ..
            })
        ));
    }

    #[test]
    fn a_failed_reload_keeps_the_tokens_in_force() {
        let dir = std::env::temp_dir().join(format!("tagcached-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let path = dir.join("tokens");
        std::fs::write(&path, "first\n").expect("write the token file");
        let config = AuthConfig {
            token_file: path.clone(),
            tokens: Arc::new(TokenSet::read(&path).expect("valid")),
            timeout: DEFAULT_AUTH_TIMEOUT,
        };
        let auth = Authenticator::new(&config);
        std::fs::write(&path, "# nothing\n").expect("write the token file");
        assert!(matches!(auth.reload(), Err(TokenFileError::Empty { .. })));
        assert!(auth.accepts(b"first"));
        std::fs::write(&path, "second\nthird\n").expect("write the token file");
        assert_eq!(auth.reload().expect("valid"), 2);
        assert!(!auth.accepts(b"first"));
        assert!(auth.accepts(b"second") && auth.accepts(b"third"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
