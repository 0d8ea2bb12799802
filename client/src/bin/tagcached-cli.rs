//! `tagcached-cli`: run one command against a tagcached server.
//!
//! Exit status: 0 when the command did what it says; 1 when it ran but
//! found nothing or did not apply (a miss, `NOT_FOUND`, `NOT_STORED`,
//! `EXISTS`, `FENCED`); 2 for a usage, connection or server error, with the
//! message on standard error.
//!
//! Standard output carries only what a script wants to capture: `get`
//! writes the value's bytes unchanged to a pipe or file (on a terminal it
//! ends them with a newline, so the prompt starts on a line of its own),
//! the other commands one answer per line. What `get` is asked to show
//! besides the value (`--show-tags`, `--show-cas`, `--show-fence`) goes to
//! standard error, one `name: value` line each, after the value.
//!
//! The command line is parsed by clap into [`Args`], then turned into one
//! [`Invocation`] in [`Args::into_invocation`]; [`run`] is a thin layer over
//! the library.

use std::ffi::OsString;
use std::io::{self, IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use tagcached_client::{ConnectOptions, Connection, Lookup, SetMode, SetOptions, SetOutcome};

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
    /// Write a value's bytes to stdout (ending them with a newline only on
    /// a terminal); a miss writes nothing (exit 1).
    Get {
        /// The key.
        key: OsString,
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
    },
    Flush,
    Stats,
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
                        ..SetOptions::default()
                    },
                }
            }
            CommandArgs::Get {
                key,
                show_tags,
                show_cas,
                show_fence,
            } => Action::Get {
                key: key.into_encoded_bytes(),
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
        Action::Get { key, shown } => {
            let lookup = if shown.tags {
                connection.get_with_tags(key).await?
            } else {
                connection.get_with_fence(key).await?
            };
            // The value first, then what was asked for on stderr: on a
            // terminal they then appear in that order.
            if let Some(item) = lookup.item() {
                write_value(&mut stdout, &item.value, stdout_is_terminal)?;
                stdout.flush()?;
            }
            write_shown(&mut io::stderr().lock(), &lookup, shown)?;
            lookup.is_hit()
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

/// Writes what `get` was asked to show, one `name: value` line each:
/// a hit's tags and CAS value, and the fence of a hit or a miss.
fn write_shown(out: &mut impl Write, lookup: &Lookup, shown: Shown) -> io::Result<()> {
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
                    ..SetOptions::default()
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
                tags: vec!["a".to_owned(), "b".to_owned()]
            }
        );
        assert_eq!(parse(&["flush"]).action, Action::Flush);
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
