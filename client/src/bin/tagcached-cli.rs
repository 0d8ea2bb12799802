//! `tagcached-cli`: run one command against a tagcached server.
//!
//! Exit status: 0 when the command did what it says; 1 when it ran but
//! found nothing or did not apply (a miss, `NOT_FOUND`, `NOT_STORED`,
//! `EXISTS`, `FENCED`); 2 for a usage, connection or server error, with the
//! message on standard error.
//!
//! The command line is parsed by clap into [`Args`], then turned into one
//! [`Invocation`] in [`Args::into_invocation`]; [`run`] is a thin layer over
//! the library.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use tagcached_client::{ConnectOptions, Connection, SetMode, SetOptions, SetOutcome};

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

    #[command(subcommand)]
    command: CommandArgs,
}

#[derive(Debug, Subcommand)]
enum CommandArgs {
    /// Check the server answers; prints PONG.
    Ping,
    /// Store a value; prints STORED, or why not (exit 1).
    Set(SetArgs),
    /// Write a value's raw bytes to stdout; a miss writes nothing (exit 1).
    Get {
        /// The key.
        key: OsString,
        /// Also print the entry's tags to stderr, as `tags: a b c`.
        #[arg(long)]
        show_tags: bool,
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
        /// The new TTL in seconds; 0 never expires.
        #[arg(value_name = "SECS")]
        ttl: u32,
    },
    /// Invalidate every entry carrying any of the tags; prints the
    /// invalidation sequence number.
    Invalidate {
        /// The tags.
        #[arg(required = true, value_name = "TAG")]
        tags: Vec<String>,
    },
    /// Remove every entry; prints OK.
    Flush,
    /// Print the server's counters, one `name value` per line.
    Stats,
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
    action: Action,
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
        show_tags: bool,
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
    },
    Flush,
    Stats,
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
                    },
                }
            }
            CommandArgs::Get { key, show_tags } => Action::Get {
                key: key.into_encoded_bytes(),
                show_tags,
            },
            CommandArgs::Del { key } => Action::Delete {
                key: key.into_encoded_bytes(),
            },
            CommandArgs::Touch { key, ttl } => Action::Touch {
                key: key.into_encoded_bytes(),
                ttl: Duration::from_secs(ttl.into()),
            },
            CommandArgs::Invalidate { tags } => Action::Invalidate { tags },
            CommandArgs::Flush => Action::Flush,
            CommandArgs::Stats => Action::Stats,
        };
        Invocation {
            server: self.server,
            timeout: (self.timeout > 0).then(|| Duration::from_secs(self.timeout)),
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
    let connection = options
        .connect(server.as_str())
        .await
        .with_context(|| format!("connecting to {server}"))?;
    execute(&connection, action).await
}

async fn execute(connection: &Connection, action: Action) -> anyhow::Result<bool> {
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
        Action::Get { key, show_tags } => {
            let item = if show_tags {
                connection.get_with_tags(key).await?.into_item()
            } else {
                connection.get(key).await?
            };
            match item {
                Some(item) => {
                    if show_tags {
                        let tags: Vec<_> = item
                            .tags
                            .iter()
                            .map(|tag| String::from_utf8_lossy(tag))
                            .collect();
                        eprintln!("tags: {}", tags.join(" "));
                    }
                    stdout.write_all(&item.value)?;
                    true
                }
                None => false,
            }
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
        Action::Invalidate { tags } => {
            writeln!(stdout, "{}", connection.invalidate_tags(tags).await?)?;
            true
        }
        Action::Flush => {
            connection.flush_all().await?;
            writeln!(stdout, "OK")?;
            true
        }
        Action::Stats => {
            for (name, value) in connection.stats().await? {
                writeln!(stdout, "{name} {value}")?;
            }
            true
        }
    };
    stdout.flush()?;
    Ok(applied)
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
                show_tags: true
            }
        );
        assert_eq!(
            parse(&["del", "k"]).action,
            Action::Delete { key: b"k".to_vec() }
        );
        assert_eq!(
            parse(&["touch", "k", "30"]).action,
            Action::Touch {
                key: b"k".to_vec(),
                ttl: Duration::from_secs(30)
            }
        );
        assert_eq!(
            parse(&["invalidate", "a", "b"]).action,
            Action::Invalidate {
                tags: vec!["a".to_owned(), "b".to_owned()]
            }
        );
        assert_eq!(parse(&["flush"]).action, Action::Flush);
        assert_eq!(parse(&["stats"]).action, Action::Stats);
        assert_eq!(parse(&["ping"]).action, Action::Ping);
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
            &["set", "k"],
            &["set", "k", "v", "--mode", "sometimes"],
            &["frobnicate"],
        ] {
            let error = parse_error(args);
            assert_eq!(error.exit_code(), 2, "{args:?}: {error}");
        }
    }
}
