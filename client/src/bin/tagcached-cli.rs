//! `tagcached-cli`: run one command against a tagcached server.
//!
//! Exit status: 0 when the command did what it says (`get --allow-stale`
//! that finds a stale value included); 1 when it ran but found nothing or
//! did not apply (a miss, a hot miss, `NOT_FOUND`, `NOT_STORED`, `EXISTS`,
//! `FENCED`, `LEASE_LOST`); 2 for a usage, connection or server error, with
//! the message on standard error.
//!
//! Standard output carries only what a script wants to capture: `get`
//! writes the value's bytes unchanged to a pipe or file (on a terminal it
//! ends them with a newline, so the prompt starts on a line of its own),
//! the other commands one answer per line. What `get` says besides the
//! value goes to standard error, after the value: `STALE` or `HOT_MISS`
//! when the read found that, then what it was asked to show (`--lease`,
//! `--show-tags`, `--show-cas`, `--show-fence`), one `name: value` line
//! each.
//!
//! The command line is parsed by clap into [`Args`], then turned into one
//! [`Invocation`] in [`Args::into_invocation`]; [`run`] is a thin layer over
//! the library.

use std::ffi::OsString;
use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use std::num::NonZeroU64;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use tagcached_client::{
    ConnectOptions, Connection, LeaseToken, Lookup, ReadOptions, SetMode, SetOptions, SetOutcome,
    TagState, TlsOptions,
};

/// The stale window of `invalidate --soft` and `flush --soft` without
/// `--expire`: an hour, long enough for every page to be refreshed, short
/// enough that a page nobody asks for is not kept for a day.
const DEFAULT_SOFT_WINDOW: u32 = 3600;

/// Talk to a tagcached server.
#[derive(Debug, Parser)]
#[command(name = "tagcached-cli", version)]
struct Args {
    /// The server's address.
    #[arg(
        long,
        short = 's',
        env = "TAGCACHED_SERVER",
        default_value = "127.0.0.1:11311",
        value_name = "HOST:PORT"
    )]
    server: String,

    /// Give up connecting, and on the command, after this many seconds;
    /// 0 waits forever.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    timeout: u64,

    /// A file whose first token is sent with AUTH when the server requires
    /// authentication: the format of the server's --auth-token-file (one
    /// token per line, blank lines and # comments skipped). Without it, the
    /// token is taken from the environment variable TAGCACHED_AUTH_TOKEN,
    /// if set. Never put a token on the command line.
    #[arg(long, value_name = "FILE", env = "TAGCACHED_AUTH_TOKEN_FILE")]
    auth_token_file: Option<std::path::PathBuf>,

    /// Connect with TLS, verifying the server's certificate against the
    /// system's CA certificates (or --tls-ca's) and the host of --server
    /// (or --tls-server-name).
    #[arg(long, env = "TAGCACHED_TLS")]
    tls: bool,

    /// Verify the server against the CA certificates in this PEM file
    /// instead of the system's; implies --tls.
    #[arg(long, value_name = "FILE", env = "TAGCACHED_TLS_CA")]
    tls_ca: Option<PathBuf>,

    /// Present this PEM client certificate, for a server started with
    /// --tls-client-ca; needs --tls-key, implies --tls. (Its variable is not
    /// TAGCACHED_TLS_CERT, which is the daemon's own certificate.)
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        env = "TAGCACHED_TLS_CLIENT_CERT"
    )]
    tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_cert",
        env = "TAGCACHED_TLS_CLIENT_KEY"
    )]
    tls_key: Option<PathBuf>,

    /// The name the server's certificate must carry [default: the host of
    /// --server]; implies --tls.
    #[arg(long, value_name = "NAME", env = "TAGCACHED_TLS_SERVER_NAME")]
    tls_server_name: Option<String>,

    #[command(subcommand)]
    command: CommandArgs,
}

#[derive(Debug, Subcommand)]
enum CommandArgs {
    /// Check the server answers; prints PONG.
    Ping,
    /// Store a value; prints STORED, or why not (exit 1).
    Set(SetArgs),
    /// Write a value's bytes to stdout (ending them with a newline only on
    /// a terminal); a miss writes nothing (exit 1).
    Get {
        /// The key.
        key: OsString,
        /// Also write a stale value (an invalidated tag's soft window, or
        /// the entry's stale window); stderr then says `STALE`, and the
        /// exit status is 0.
        #[arg(long)]
        allow_stale: bool,
        /// Ask for the key's refresh lease: a read that finds no fresh
        /// value prints `lease: N` on stderr, for `set --lease N`, or
        /// `HOT_MISS` (exit 1) if another reader holds it.
        #[arg(long)]
        lease: bool,
        /// Also print the entry's tags to stderr, as `tags: a b c`.
        #[arg(long)]
        show_tags: bool,
        /// Also print the entry's CAS value to stderr, as `cas: N`, for
        /// `set --cas N`.
        #[arg(long)]
        show_cas: bool,
        /// Also print the fence to stderr, as `fence: N`, for
        /// `set --fence N`; a miss prints it too.
        #[arg(long)]
        show_fence: bool,
    },
    /// Delete a key; prints DELETED, or NOT_FOUND (exit 1).
    Del {
        /// The key.
        key: OsString,
    },
    /// Reset a key's time to live; prints TOUCHED, or NOT_FOUND (exit 1).
    Touch {
        /// The key.
        key: OsString,
        /// The new TTL in seconds, as `set --ttl` takes it; 0 never expires.
        #[arg(
            long,
            value_name = "SECS",
            required_unless_present = "secs",
            conflicts_with = "secs"
        )]
        ttl: Option<u32>,
        /// The new TTL as a second argument, `touch KEY SECS`: the older
        /// form of `--ttl`, still accepted.
        #[arg(value_name = "SECS")]
        secs: Option<u32>,
    },
    /// Invalidate every entry carrying any of the tags (`--soft`: make them
    /// stale for a while); prints the invalidation sequence number.
    Invalidate {
        /// The tags.
        #[arg(required = true, value_name = "TAG")]
        tags: Vec<String>,
        #[command(flatten)]
        soft: SoftArgs,
    },
    /// Remove every entry (`--soft`: make every entry stale for a while);
    /// prints OK.
    Flush {
        #[command(flatten)]
        soft: SoftArgs,
    },
    /// Print the server's counters, one `name value` per line.
    Stats,
    /// Print each tag's latest invalidations and how many entries carry it.
    ///
    /// One line per tag: `TAG entries=N hard=SEQ hard_at=MS soft=SEQ
    /// soft_at=MS soft_until=MS`, times in Unix milliseconds, `hard=none`
    /// or `soft=none` when the server remembers no such invalidation (never
    /// invalidated, or forgotten). `entries` counts what the server holds,
    /// including entries dead but not yet removed.
    Tags {
        /// The tags.
        #[arg(required = true, value_name = "TAG")]
        tags: Vec<String>,
    },
}

/// Whether an invalidation or a flush is soft, and its window.
#[derive(Debug, clap::Args)]
struct SoftArgs {
    /// Invalidate softly: entries turn stale, served only to reads that
    /// allow stale data (`get --allow-stale`), and are gone once the window
    /// passes.
    #[arg(long)]
    soft: bool,
    /// The soft window in seconds; 0 is a hard invalidation.
    #[arg(long, value_name = "SECS", requires = "soft", default_value_t = DEFAULT_SOFT_WINDOW)]
    expire: u32,
}

impl SoftArgs {
    /// The soft window, or `None` for a hard invalidation.
    fn window(&self) -> Option<Duration> {
        self.soft.then(|| Duration::from_secs(self.expire.into()))
    }
}

#[derive(Debug, clap::Args)]
struct SetArgs {
    /// The key.
    key: OsString,
    /// The value; `-` reads it from stdin.
    value: OsString,
    /// Seconds to live; 0 never expires.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    ttl: u32,
    /// A tag for the entry; repeat for more.
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Client flags, returned with every hit.
    #[arg(long, value_name = "N", default_value_t = 0)]
    flags: u32,
    /// When to store: always, only if absent, only if present.
    #[arg(long, value_enum, default_value_t = ModeArg::Set)]
    mode: ModeArg,
    /// Store only if the entry's CAS value is N (from a GET).
    #[arg(long, value_name = "N", conflicts_with = "mode")]
    cas: Option<u64>,
    /// Refuse (FENCED) if a tag was invalidated after fence N (from a GET).
    #[arg(long, value_name = "N")]
    fence: Option<u64>,
    /// Store as the holder of lease TOKEN (from `get --lease`); refused
    /// with LEASE_LOST if the lease was superseded, FENCED if a tag was
    /// invalidated since it was granted.
    #[arg(long, value_name = "TOKEN")]
    lease: Option<NonZeroU64>,
    /// Seconds after which the entry turns stale (served to `get
    /// --allow-stale` until the TTL ends); 0 never.
    #[arg(long, value_name = "SECS")]
    stale_after: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    Set,
    Add,
    Replace,
}

/// A validated command line: where, how long, what.
#[derive(Debug)]
struct Invocation {
    server: String,
    timeout: Option<Duration>,
    auth: Option<TokenSource>,
    tls: Option<TlsFiles>,
    action: Action,
}

/// How to connect with TLS, as given on the command line.
#[derive(Debug, Default, PartialEq)]
struct TlsFiles {
    ca: Option<PathBuf>,
    identity: Option<(PathBuf, PathBuf)>,
    server_name: Option<String>,
}

impl TlsFiles {
    /// Reads the files into the client's options.
    fn options(&self) -> anyhow::Result<TlsOptions> {
        let mut options = match &self.ca {
            Some(ca) => TlsOptions::with_ca_file(ca)?,
            None => TlsOptions::with_system_roots()?,
        };
        if let Some((cert, key)) = &self.identity {
            options = options.client_certificate(cert, key)?;
        }
        if let Some(name) = &self.server_name {
            options = options.server_name(name.as_str())?;
        }
        Ok(options)
    }
}

/// Where the token for AUTH comes from.
#[derive(PartialEq)]
enum TokenSource {
    /// `--auth-token-file`: read when the command runs.
    File(std::path::PathBuf),
    /// `TAGCACHED_AUTH_TOKEN`.
    Environment(String),
}

/// Never prints a token.
impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::File(path) => write!(f, "File({})", path.display()),
            TokenSource::Environment(_) => f.write_str("Environment(<redacted>)"),
        }
    }
}

impl TokenSource {
    /// `--auth-token-file` if given, else `TAGCACHED_AUTH_TOKEN` if set
    /// and not blank.
    fn choose(
        file: Option<std::path::PathBuf>,
        environment: Option<String>,
    ) -> Option<TokenSource> {
        file.map(TokenSource::File).or_else(|| {
            environment
                .map(|token| token.trim().to_owned())
                .filter(|token| !token.is_empty())
                .map(TokenSource::Environment)
        })
    }

    /// The token's bytes.
    fn read(self) -> anyhow::Result<Vec<u8>> {
        match self {
            TokenSource::Environment(token) => Ok(token.into_bytes()),
            TokenSource::File(path) => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading --auth-token-file {}", path.display()))?;
                let (_, token) = tagcached_protocol::request::token_lines(&text)
                    .next()
                    .with_context(|| {
                        format!("--auth-token-file {} holds no token", path.display())
                    })?;
                Ok(token.as_bytes().to_vec())
            }
        }
    }
}

#[derive(Debug, PartialEq)]
enum Action {
    Ping,
    Set {
        key: Vec<u8>,
        value: ValueSource,
        options: SetOptions,
    },
    Get {
        key: Vec<u8>,
        read: ReadOptions,
        shown: Shown,
    },
    Delete {
        key: Vec<u8>,
    },
    Touch {
        key: Vec<u8>,
        ttl: Duration,
    },
    Invalidate {
        tags: Vec<String>,
        soft: Option<Duration>,
    },
    Flush {
        soft: Option<Duration>,
    },
    Stats,
    Tags {
        tags: Vec<String>,
    },
}

/// What `get` prints on stderr besides the value.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Shown {
    tags: bool,
    cas: bool,
    fence: bool,
}

#[derive(Debug, PartialEq)]
enum ValueSource {
    Argument(Vec<u8>),
    Stdin,
}

impl ValueSource {
    /// The value's bytes, reading stdin to its end if that is the source.
    fn into_bytes(self) -> anyhow::Result<Vec<u8>> {
        match self {
            ValueSource::Argument(value) => Ok(value),
            ValueSource::Stdin => {
                let mut value = Vec::new();
                io::stdin()
                    .read_to_end(&mut value)
                    .context("reading the value from stdin")?;
                Ok(value)
            }
        }
    }
}

impl Args {
    fn into_invocation(self) -> Invocation {
        let action = match self.command {
            CommandArgs::Ping => Action::Ping,
            CommandArgs::Set(set) => {
                let mode = match (set.cas, set.mode) {
                    (Some(cas), _) => SetMode::Cas(cas),
                    (None, ModeArg::Set) => SetMode::Set,
                    (None, ModeArg::Add) => SetMode::Add,
                    (None, ModeArg::Replace) => SetMode::Replace,
                };
                let value = if set.value == "-" {
                    ValueSource::Stdin
                } else {
                    ValueSource::Argument(set.value.into_encoded_bytes())
                };
                Action::Set {
                    key: set.key.into_encoded_bytes(),
                    value,
                    options: SetOptions {
                        ttl: Duration::from_secs(set.ttl.into()),
                        tags: set.tags.into_iter().map(Bytes::from).collect(),
                        client_flags: set.flags,
                        mode,
                        fence: set.fence,
                        lease: set.lease.map(LeaseToken::from),
                        stale_after: set.stale_after.map(|secs| Duration::from_secs(secs.into())),
                    },
                }
            }
            CommandArgs::Get {
                key,
                allow_stale,
                lease,
                show_tags,
                show_cas,
                show_fence,
            } => Action::Get {
                key: key.into_encoded_bytes(),
                read: ReadOptions {
                    with_tags: show_tags,
                    allow_stale,
                    lease,
                    ..ReadOptions::default()
                },
                shown: Shown {
                    tags: show_tags,
                    cas: show_cas,
                    fence: show_fence,
                },
            },
            CommandArgs::Del { key } => Action::Delete {
                key: key.into_encoded_bytes(),
            },
            CommandArgs::Touch { key, ttl, secs } => {
                let ttl = ttl.or(secs).expect("clap requires --ttl or SECS");
                Action::Touch {
                    key: key.into_encoded_bytes(),
                    ttl: Duration::from_secs(ttl.into()),
                }
            }
            CommandArgs::Invalidate { tags, soft } => Action::Invalidate {
                tags,
                soft: soft.window(),
            },
            CommandArgs::Flush { soft } => Action::Flush {
                soft: soft.window(),
            },
            CommandArgs::Stats => Action::Stats,
            CommandArgs::Tags { tags } => Action::Tags { tags },
        };
        let tls_asked = self.tls
            || self.tls_ca.is_some()
            || self.tls_cert.is_some()
            || self.tls_server_name.is_some();
        let tls = tls_asked.then(|| TlsFiles {
            ca: self.tls_ca,
            identity: self.tls_cert.zip(self.tls_key),
            server_name: self.tls_server_name,
        });
        Invocation {
            server: self.server,
            timeout: (self.timeout > 0).then(|| Duration::from_secs(self.timeout)),
            auth: TokenSource::choose(
                self.auth_token_file,
                std::env::var("TAGCACHED_AUTH_TOKEN").ok(),
            ),
            tls,
            action,
        }
    }
}

fn main() -> ExitCode {
    let invocation = Args::parse().into_invocation();
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|runtime| runtime.block_on(run(invocation)));
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("tagcached-cli: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the command; `Ok(false)` when it ran but did not apply (exit 1).
async fn run(invocation: Invocation) -> anyhow::Result<bool> {
    let Invocation {
        server,
        timeout,
        auth,
        tls,
        action,
    } = invocation;
    // Read stdin first, so a slow producer does not hold a connection open.
    let action = match action {
        Action::Set {
            key,
            value,
            options,
        } => Action::Set {
            key,
            value: ValueSource::Argument(value.into_bytes()?),
            options,
        },
        other => other,
    };
    let mut options = ConnectOptions::new().client_name("tagcached-cli");
    if let Some(timeout) = timeout {
        options = options.connect_timeout(timeout).request_timeout(timeout);
    }
    if let Some(source) = auth {
        options = options.auth_token(source.read()?);
    }
    if let Some(tls) = &tls {
        options = options.tls(tls.options()?);
    }
    let connection = options
        .connect_to_address(&server)
        .await
        .with_context(|| format!("connecting to {server}"))?;
    execute(&connection, action).await
}

async fn execute(connection: &Connection, action: Action) -> anyhow::Result<bool> {
    let stdout_is_terminal = io::stdout().is_terminal();
    let mut stdout = io::stdout().lock();
    let applied = match action {
        Action::Ping => {
            connection.ping().await?;
            writeln!(stdout, "PONG")?;
            true
        }
        Action::Set {
            key,
            value,
            options,
        } => {
            let outcome = connection.set(key, value.into_bytes()?, &options).await?;
            writeln!(stdout, "{}", outcome.name())?;
            matches!(outcome, SetOutcome::Stored { .. })
        }
        Action::Get { key, read, shown } => {
            let lookup = connection.get_with(key, &read).await?;
            // The value first, then the rest on stderr: on a terminal they
            // then appear in that order.
            if let Some(item) = lookup.item() {
                write_value(&mut stdout, &item.value, stdout_is_terminal)?;
                stdout.flush()?;
            }
            write_shown(&mut io::stderr().lock(), &lookup, shown)?;
            lookup.item().is_some()
        }
        Action::Delete { key } => {
            let found = connection.delete(key).await?;
            writeln!(stdout, "{}", if found { "DELETED" } else { "NOT_FOUND" })?;
            found
        }
        Action::Touch { key, ttl } => {
            let found = connection.touch(key, ttl).await?;
            writeln!(stdout, "{}", if found { "TOUCHED" } else { "NOT_FOUND" })?;
            found
        }
        Action::Invalidate { tags, soft } => {
            let seq = match soft {
                Some(expire) => connection.soft_invalidate_tags(tags, expire).await?,
                None => connection.invalidate_tags(tags).await?,
            };
            writeln!(stdout, "{seq}")?;
            true
        }
        Action::Flush { soft } => {
            match soft {
                Some(expire) => connection.soft_flush_all(expire).await?,
                None => connection.flush_all().await?,
            };
            writeln!(stdout, "OK")?;
            true
        }
        Action::Stats => {
            for (name, value) in connection.stats().await? {
                writeln!(stdout, "{name} {value}")?;
            }
            true
        }
        Action::Tags { tags } => {
            for state in connection.tag_status(tags).await?.tags {
                writeln!(stdout, "{}", tag_line(&state))?;
            }
            true
        }
    };
    stdout.flush()?;
    Ok(applied)
}

/// Writes a value as `get` prints it: its bytes unchanged, and on a
/// terminal a newline after them unless they end with one, so that the
/// prompt starts on a line of its own. A pipe or file gets the bytes alone,
/// so `tc get k > file` stores exactly what was SET.
fn write_value(out: &mut impl Write, value: &[u8], terminal: bool) -> io::Result<()> {
    out.write_all(value)?;
    if terminal && !value.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Writes what `get` says besides the value: `STALE` or `HOT_MISS` if the
/// read found that, the lease granted, then what it was asked to show, one
/// `name: value` line each: a hit's tags and CAS value, and the fence of a
/// hit or a miss.
fn write_shown(out: &mut impl Write, lookup: &Lookup, shown: Shown) -> io::Result<()> {
    match lookup {
        Lookup::Stale { .. } => writeln!(out, "STALE")?,
        Lookup::HotMiss { .. } => writeln!(out, "HOT_MISS")?,
        Lookup::Hit(_) | Lookup::Miss { .. } => {}
    }
    if let Some(lease) = lookup.lease() {
        writeln!(out, "lease: {lease}")?;
    }
    if let Some(item) = lookup.item() {
        if shown.tags {
            let tags: Vec<_> = item
                .tags
                .iter()
                .map(|tag| String::from_utf8_lossy(tag))
                .collect();
            writeln!(out, "tags: {}", tags.join(" "))?;
        }
        if shown.cas {
            writeln!(out, "cas: {}", item.cas)?;
        }
    }
    if shown.fence {
        writeln!(out, "fence: {}", lookup.fence())?;
    }
    Ok(())
}

/// One line of `tags`: `TAG entries=N hard=SEQ hard_at=MS soft=SEQ
/// soft_at=MS soft_until=MS`, with `hard=none`, `soft=none` for an
/// invalidation the server does not remember.
fn tag_line(state: &TagState) -> String {
    let mut line = format!(
        "{} entries={}",
        String::from_utf8_lossy(&state.tag),
        state.entries
    );
    match state.hard {
        Some(hard) => line.push_str(&format!(" hard={} hard_at={}", hard.seq, millis(hard.at))),
        None => line.push_str(" hard=none"),
    }
    match state.soft {
        Some(soft) => line.push_str(&format!(
            " soft={} soft_at={} soft_until={}",
            soft.seq,
            millis(soft.at),
            millis(soft.until)
        )),
        None => line.push_str(" soft=none"),
    }
    line
}

/// `time` in Unix milliseconds, as the server sent it.
fn millis(time: SystemTime) -> u128 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis())
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Invocation {
        let args = std::iter::once("tagcached-cli").chain(args.iter().copied());
        Args::try_parse_from(args)
            .expect("valid arguments")
            .into_invocation()
    }

    fn parse_error(args: &[&str]) -> clap::Error {
        let args = std::iter::once("tagcached-cli").chain(args.iter().copied());
        Args::try_parse_from(args).expect_err("invalid arguments")
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn any_tls_flag_turns_tls_on_and_a_certificate_needs_its_key() {
        assert_eq!(parse(&["ping"]).tls, None);
        assert_eq!(parse(&["--tls", "ping"]).tls, Some(TlsFiles::default()));
        let invocation = parse(&["--tls-ca", "ca.pem", "--tls-server-name", "cache", "ping"]);
        assert_eq!(
            invocation.tls,
            Some(TlsFiles {
                ca: Some("ca.pem".into()),
                identity: None,
                server_name: Some("cache".to_owned()),
            })
        );
        let error = parse_error(&["--tls-cert", "client.pem", "ping"]);
        assert_eq!(error.kind(), ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn set_gathers_every_option_into_set_options() {
        let invocation = parse(&[
            "--server",
            "cache:1234",
            "set",
            "k",
            "v",
            "--ttl",
            "60",
            "--tag",
            "a",
            "--tag",
            "b",
            "--flags",
            "7",
            "--mode",
            "add",
            "--fence",
            "99",
        ]);
        assert_eq!(invocation.server, "cache:1234");
        assert_eq!(
            invocation.action,
            Action::Set {
                key: b"k".to_vec(),
                value: ValueSource::Argument(b"v".to_vec()),
                options: SetOptions {
                    ttl: Duration::from_secs(60),
                    tags: vec![Bytes::from("a"), Bytes::from("b")],
                    client_flags: 7,
                    mode: SetMode::Add,
                    fence: Some(99),
                    lease: None,
                    stale_after: None,
                },
            }
        );
    }

    #[test]
    fn set_defaults_to_storing_forever_untagged_and_unfenced() {
        let Action::Set { options, .. } = parse(&["set", "k", "v"]).action else {
            panic!("not a set");
        };
        assert_eq!(options, SetOptions::default());
    }

    #[test]
    fn cas_selects_cas_mode_and_conflicts_with_an_explicit_mode() {
        let Action::Set { options, .. } = parse(&["set", "k", "v", "--cas", "42"]).action else {
            panic!("not a set");
        };
        assert_eq!(options.mode, SetMode::Cas(42));
        let error = parse_error(&["set", "k", "v", "--cas", "42", "--mode", "add"]);
        assert_eq!(error.kind(), ErrorKind::ArgumentConflict);
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn a_dash_value_reads_stdin() {
        let Action::Set { value, .. } = parse(&["set", "k", "-"]).action else {
            panic!("not a set");
        };
        assert_eq!(value, ValueSource::Stdin);
    }

    #[test]
    fn get_del_touch_and_invalidate_parse_their_arguments() {
        assert_eq!(
            parse(&["get", "k", "--show-tags"]).action,
            Action::Get {
                key: b"k".to_vec(),
                read: ReadOptions::new().with_tags(),
                shown: Shown {
                    tags: true,
                    ..Shown::default()
                }
            }
        );
        assert_eq!(
            parse(&["get", "k", "--show-cas", "--show-fence"]).action,
            Action::Get {
                key: b"k".to_vec(),
                read: ReadOptions::new(),
                shown: Shown {
                    tags: false,
                    cas: true,
                    fence: true
                }
            }
        );
        assert_eq!(
            parse(&["del", "k"]).action,
            Action::Delete { key: b"k".to_vec() }
        );
        assert_eq!(
            parse(&["touch", "k", "--ttl", "30"]).action,
            Action::Touch {
                key: b"k".to_vec(),
                ttl: Duration::from_secs(30)
            }
        );
        assert_eq!(
            parse(&["invalidate", "a", "b"]).action,
            Action::Invalidate {
                tags: vec!["a".to_owned(), "b".to_owned()],
                soft: None,
            }
        );
        assert_eq!(parse(&["flush"]).action, Action::Flush { soft: None });
        assert_eq!(
            parse(&["tags", "a", "b"]).action,
            Action::Tags {
                tags: vec!["a".to_owned(), "b".to_owned()]
            }
        );
        assert_eq!(parse(&["stats"]).action, Action::Stats);
        assert_eq!(parse(&["ping"]).action, Action::Ping);
    }

    #[test]
    fn touch_takes_its_ttl_as_set_does_or_as_the_older_second_argument() {
        let touch = |args: &[&str]| match parse(args).action {
            Action::Touch { key, ttl } => (key, ttl),
            other => panic!("not a touch: {other:?}"),
        };
        let expected = (b"k".to_vec(), Duration::from_secs(30));
        assert_eq!(touch(&["touch", "k", "--ttl", "30"]), expected);
        assert_eq!(touch(&["touch", "--ttl", "30", "k"]), expected);
        assert_eq!(touch(&["touch", "k", "30"]), expected);
        assert_eq!(touch(&["touch", "k", "--ttl", "0"]).1, Duration::ZERO);

        let neither = parse_error(&["touch", "k"]);
        assert_eq!(neither.kind(), ErrorKind::MissingRequiredArgument);
        let both = parse_error(&["touch", "k", "30", "--ttl", "30"]);
        assert_eq!(both.kind(), ErrorKind::ArgumentConflict);
        assert_eq!((neither.exit_code(), both.exit_code()), (2, 2));
    }

    #[test]
    fn a_value_is_written_raw_and_ends_with_a_newline_only_on_a_terminal() {
        let written = |value: &[u8], terminal: bool| {
            let mut out = Vec::new();
            write_value(&mut out, value, terminal).expect("write to a Vec");
            out
        };
        assert_eq!(written(b"<h1>Ada</h1>", false), b"<h1>Ada</h1>");
        assert_eq!(written(b"<h1>Ada</h1>", true), b"<h1>Ada</h1>\n");
        // A value that already ends a line is not given a blank one.
        assert_eq!(written(b"line\n", true), b"line\n");
        assert_eq!(written(b"line\n", false), b"line\n");
        assert_eq!(written(b"", false), b"");
        assert_eq!(written(b"", true), b"\n");
    }

    #[test]
    fn shown_lines_are_tags_cas_and_fence_and_a_miss_shows_its_fence() {
        let shown = |lookup: &Lookup, shown: Shown| {
            let mut out = Vec::new();
            write_shown(&mut out, lookup, shown).expect("write to a Vec");
            String::from_utf8(out).expect("UTF-8")
        };
        let hit = Lookup::Hit(tagcached_client::Item {
            value: Bytes::from_static(b"v"),
            cas: 7,
            client_flags: 0,
            fence: 99,
            tags: vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")],
        });
        let all = Shown {
            tags: true,
            cas: true,
            fence: true,
        };
        assert_eq!(shown(&hit, all), "tags: a b\ncas: 7\nfence: 99\n");
        assert_eq!(shown(&hit, Shown::default()), "");
        let miss = Lookup::Miss {
            fence: 100,
            lease: None,
        };
        assert_eq!(shown(&miss, all), "fence: 100\n");
        assert_eq!(
            shown(
                &miss,
                Shown {
                    fence: false,
                    ..all
                }
            ),
            ""
        );
    }

    #[test]
    fn soft_invalidations_and_flushes_take_a_window_that_defaults_to_an_hour() {
        let hour = Some(Duration::from_secs(DEFAULT_SOFT_WINDOW.into()));
        assert_eq!(
            parse(&["invalidate", "--soft", "a"]).action,
            Action::Invalidate {
                tags: vec!["a".to_owned()],
                soft: hour,
            }
        );
        assert_eq!(
            parse(&["invalidate", "a", "--soft", "--expire", "60"]).action,
            Action::Invalidate {
                tags: vec!["a".to_owned()],
                soft: Some(Duration::from_secs(60)),
            }
        );
        assert_eq!(
            parse(&["flush", "--soft", "--expire", "0"]).action,
            Action::Flush {
                soft: Some(Duration::ZERO)
            }
        );
        let hard_with_a_window = parse_error(&["invalidate", "a", "--expire", "60"]);
        assert_eq!(
            hard_with_a_window.kind(),
            ErrorKind::MissingRequiredArgument
        );
    }

    #[test]
    fn get_and_set_take_the_stale_and_lease_options() {
        let Action::Get { read, .. } = parse(&["get", "k", "--allow-stale", "--lease"]).action
        else {
            panic!("not a get");
        };
        assert_eq!(read, ReadOptions::new().allow_stale().lease());
        let Action::Set { options, .. } =
            parse(&["set", "k", "v", "--lease", "12", "--stale-after", "30"]).action
        else {
            panic!("not a set");
        };
        assert_eq!(options.lease, LeaseToken::new(12));
        assert_eq!(options.stale_after, Some(Duration::from_secs(30)));
        let no_lease = parse_error(&["set", "k", "v", "--lease", "0"]);
        assert_eq!(no_lease.exit_code(), 2, "0 is no lease token");
    }

    #[test]
    fn a_stale_value_or_a_hot_miss_is_said_first_and_a_granted_lease_next() {
        let shown = |lookup: &Lookup| {
            let mut out = Vec::new();
            write_shown(&mut out, lookup, Shown::default()).expect("write to a Vec");
            String::from_utf8(out).expect("UTF-8")
        };
        let item = tagcached_client::Item {
            value: Bytes::from_static(b"v"),
            cas: 7,
            client_flags: 0,
            fence: 99,
            tags: Vec::new(),
        };
        let lease = LeaseToken::new(5);
        assert_eq!(shown(&Lookup::Stale { item, lease }), "STALE\nlease: 5\n");
        assert_eq!(shown(&Lookup::HotMiss { fence: 1 }), "HOT_MISS\n");
        assert_eq!(shown(&Lookup::Miss { fence: 1, lease }), "lease: 5\n");
    }

    #[test]
    fn a_tag_line_names_each_invalidation_or_none() {
        use tagcached_client::{Invalidation, SoftInvalidation};
        let at = |millis| UNIX_EPOCH + Duration::from_millis(millis);
        let never = TagState {
            tag: Bytes::from_static(b"posts"),
            entries: 3,
            hard: None,
            soft: None,
        };
        assert_eq!(tag_line(&never), "posts entries=3 hard=none soft=none");
        let both = TagState {
            tag: Bytes::from_static(b"user:3"),
            entries: 0,
            hard: Some(Invalidation {
                seq: 10,
                at: at(1_000),
            }),
            soft: Some(SoftInvalidation {
                seq: 11,
                at: at(2_000),
                until: at(62_000),
            }),
        };
        assert_eq!(
            tag_line(&both),
            "user:3 entries=0 hard=10 hard_at=1000 soft=11 soft_at=2000 soft_until=62000"
        );
    }

    #[test]
    fn the_server_defaults_to_the_local_port_unless_the_environment_says_otherwise() {
        let invocation = parse(&["ping"]);
        match std::env::var("TAGCACHED_SERVER") {
            Ok(server) => assert_eq!(invocation.server, server),
            Err(_) => assert_eq!(invocation.server, "127.0.0.1:11311"),
        }
        assert_eq!(invocation.timeout, Some(Duration::from_secs(10)));
        assert_eq!(parse(&["--timeout", "0", "ping"]).timeout, None);
    }

    #[test]
    fn usage_errors_exit_with_status_two() {
        for args in [
            &["invalidate"][..],
            &["touch", "k", "soon"],
            &["touch", "k", "--ttl", "soon"],
            &["set", "k"],
            &["set", "k", "v", "--mode", "sometimes"],
            &["frobnicate"],
        ] {
            let error = parse_error(args);
            assert_eq!(error.exit_code(), 2, "{args:?}: {error}");
        }
    }
}
