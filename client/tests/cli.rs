//! `tagcached-cli` against a real server (in-process, on 127.0.0.1:0), as
//! a script or a person at a terminal runs it: what it prints, on which
//! stream, and its exit status.

mod support;

use std::time::{Duration, Instant};

use support::cli::{cli, cli_with_stdin, Output};
use support::start_server;

/// The exit status of a command that ran but did not apply (a miss, a hot
/// miss, NOT_FOUND, EXISTS, FENCED, LEASE_LOST).
const DID_NOT_APPLY: Option<i32> = Some(1);

#[track_caller]
fn assert_ok(output: &Output, stdout: &str) {
    assert_eq!(output.code, Some(0), "{output:?}");
    assert_eq!(output.stdout_text(), stdout, "{output:?}");
    assert_eq!(output.stderr, "", "{output:?}");
}

/// The number on the stderr line `name: N`.
#[track_caller]
fn shown(output: &Output, name: &str) -> u64 {
    let prefix = format!("{name}: ");
    let line = output
        .stderr
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no `{name}:` line on stderr: {output:?}"));
    line.parse()
        .unwrap_or_else(|_| panic!("`{name}: {line}` is not a number"))
}

#[test]
fn get_writes_exactly_the_stored_bytes_to_a_pipe_and_a_miss_writes_nothing() {
    let server = start_server();
    let addr = server.local_addr().to_string();
    assert_ok(&cli(&addr, &["set", "page", "<h1>Ada</h1>"]), "STORED\n");
    let hit = cli(&addr, &["get", "page"]);
    assert_ok(&hit, "<h1>Ada</h1>");
    assert_eq!(hit.stdout, b"<h1>Ada</h1>", "no newline added on a pipe");

    // What `set k -` read from stdin comes back byte for byte, newlines,
    // NULs and invalid UTF-8 included.
    let bytes = b"\x00line one\nline two\n\xff\xfe";
    let stored = cli_with_stdin(&addr, &["set", "bytes", "-"], bytes);
    assert_ok(&stored, "STORED\n");
    let hit = cli(&addr, &["get", "bytes"]);
    assert_eq!(hit.code, Some(0), "{hit:?}");
    assert_eq!(hit.stdout, bytes);

    let miss = cli(&addr, &["get", "absent"]);
    assert_eq!(miss.code, DID_NOT_APPLY, "{miss:?}");
    assert!(miss.stdout.is_empty() && miss.stderr.is_empty(), "{miss:?}");
}

/// Issue 8: on a terminal the value was left without a newline, so the
/// prompt followed it on the same line.
#[cfg(unix)]
#[test]
fn get_on_a_terminal_ends_the_value_with_a_newline_unless_it_has_one() {
    let server = start_server();
    let addr = server.local_addr().to_string();
    assert_ok(&cli(&addr, &["set", "page", "<h1>Ada</h1>"]), "STORED\n");
    assert_ok(&cli(&addr, &["set", "line", "a line\n"]), "STORED\n");

    // The terminal's line discipline writes each newline as CR LF.
    let (code, screen, stderr) = terminal::run(&addr, &["get", "page"]);
    assert_eq!((code, stderr.as_str()), (Some(0), ""));
    assert_eq!(screen, b"<h1>Ada</h1>\r\n");
    let (code, screen, _) = terminal::run(&addr, &["get", "line"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        screen, b"a line\r\n",
        "no blank line after a value's own newline"
    );
    let (code, screen, _) = terminal::run(&addr, &["get", "absent"]);
    assert_eq!((code, screen), (DID_NOT_APPLY, Vec::new()));
}

/// Issue 8: `set --cas N` asked for a CAS value that the CLI could not show.
#[test]
fn show_cas_prints_the_cas_value_that_set_cas_takes() {
    let server = start_server();
    let addr = server.local_addr().to_string();
    assert_ok(&cli(&addr, &["set", "k", "one", "--tag", "t"]), "STORED\n");
    let read = cli(&addr, &["get", "k", "--show-cas"]);
    assert_eq!(read.code, Some(0), "{read:?}");
    assert_eq!(read.stdout, b"one", "the value alone on stdout");
    assert_eq!(read.stderr.lines().count(), 1, "{read:?}");
    let cas = shown(&read, "cas");

    let cas_arg = cas.to_string();
    assert_ok(
        &cli(&addr, &["set", "k", "two", "--tag", "t", "--cas", &cas_arg]),
        "STORED\n",
    );
    // The value has changed since that read: the same CAS value is stale.
    let stale = cli(&addr, &["set", "k", "three", "--cas", &cas_arg]);
    assert_eq!(stale.code, DID_NOT_APPLY, "{stale:?}");
    assert_eq!(stale.stdout_text(), "EXISTS\n");
    let read = cli(
        &addr,
        &["get", "k", "--show-tags", "--show-cas", "--show-fence"],
    );
    assert_eq!(read.stdout, b"two");
    let lines: Vec<&str> = read.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{read:?}");
    assert_eq!(lines[0], "tags: t");
    assert!(lines[1].starts_with("cas: ") && lines[2].starts_with("fence: "));
    assert_ne!(shown(&read, "cas"), cas, "a new value, a new CAS value");
}

/// Issue 8: `set --fence N` asked for a fence that the CLI could not show.
/// A miss shows it too: that is where cache-aside takes it from.
#[test]
fn show_fence_prints_the_fence_that_set_fence_takes_on_a_miss_or_a_hit() {
    let server = start_server();
    let addr = server.local_addr().to_string();
    let miss = cli(&addr, &["get", "page", "--show-fence"]);
    assert_eq!(miss.code, DID_NOT_APPLY, "{miss:?}");
    assert!(miss.stdout.is_empty(), "{miss:?}");
    assert_eq!(miss.stderr.lines().count(), 1, "{miss:?}");
    let fence = shown(&miss, "fence").to_string();
    // Nothing invalidated since the miss: the fenced SET is stored.
    assert_ok(
        &cli(
            &addr,
            &["set", "page", "v1", "--tag", "t", "--fence", &fence],
        ),
        "STORED\n",
    );

    let hit = cli(&addr, &["get", "page", "--show-fence"]);
    assert_eq!(hit.stdout, b"v1");
    let fence = shown(&hit, "fence").to_string();
    let invalidated = cli(&addr, &["invalidate", "t"]);
    assert_eq!(invalidated.code, Some(0), "{invalidated:?}");
    // `t` was invalidated after the fence: a value computed from that read
    // is refused.
    let fenced = cli(
        &addr,
        &["set", "page", "v2", "--tag", "t", "--fence", &fence],
    );
    assert_eq!(fenced.code, DID_NOT_APPLY, "{fenced:?}");
    assert_eq!(fenced.stdout_text(), "FENCED\n");
}

/// Issue 8: `touch` took its TTL only as a second argument, where `set`
/// takes `--ttl`. Both forms now work.
#[test]
fn touch_takes_ttl_as_set_does_and_still_as_a_second_argument() {
    let server = start_server();
    let addr = server.local_addr().to_string();
    for key in ["by-flag", "by-argument", "kept"] {
        assert_ok(&cli(&addr, &["set", key, "v", "--ttl", "3600"]), "STORED\n");
    }
    assert_ok(
        &cli(&addr, &["touch", "by-flag", "--ttl", "1"]),
        "TOUCHED\n",
    );
    assert_ok(&cli(&addr, &["touch", "by-argument", "1"]), "TOUCHED\n");
    assert_ok(&cli(&addr, &["touch", "kept", "--ttl", "0"]), "TOUCHED\n");
    let absent = cli(&addr, &["touch", "absent", "--ttl", "5"]);
    assert_eq!(absent.code, DID_NOT_APPLY, "{absent:?}");
    assert_eq!(absent.stdout_text(), "NOT_FOUND\n");
    let neither = cli(&addr, &["touch", "kept"]);
    assert_eq!(neither.code, Some(2), "a TTL is required: {neither:?}");

    // The one-second TTLs run out; the entry touched with 0 never expires.
    let deadline = Instant::now() + Duration::from_secs(10);
    for key in ["by-flag", "by-argument"] {
        while cli(&addr, &["get", key]).code != DID_NOT_APPLY {
            assert!(Instant::now() < deadline, "{key} never expired");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_eq!(cli(&addr, &["get", "kept"]).stdout, b"v");
}

/// The value of `name=` in a `tags` line.
#[track_caller]
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let prefix = format!("{name}=");
    line.split(' ')
        .find_map(|word| word.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
}

/// Issue 9: `invalidate --soft`, `get --allow-stale` and `tags`.
#[test]
fn a_soft_invalidation_is_stale_to_get_allow_stale_and_a_miss_to_get() {
    let server = start_server();
    let addr = server.local_addr().to_string();
    assert_ok(
        &cli(&addr, &["set", "page", "v1", "--tag", "posts"]),
        "STORED\n",
    );
    let soft = cli(&addr, &["invalidate", "posts", "--soft", "--expire", "60"]);
    assert_eq!(soft.code, Some(0), "{soft:?}");
    let soft_seq = soft.stdout_text().trim().to_owned();

    let plain = cli(&addr, &["get", "page"]);
    assert_eq!(plain.code, DID_NOT_APPLY, "a plain read misses: {plain:?}");
    assert!(plain.stdout.is_empty(), "{plain:?}");
    let stale = cli(&addr, &["get", "page", "--allow-stale"]);
    assert_eq!(stale.code, Some(0), "{stale:?}");
    assert_eq!(stale.stdout, b"v1");
    assert_eq!(stale.stderr, "STALE\n");

    let tags = cli(&addr, &["tags", "posts", "never-invalidated"]);
    assert_eq!(tags.code, Some(0), "{tags:?}");
    let text = tags.stdout_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{tags:?}");
    assert!(
        lines[0].starts_with("posts entries=1 hard=none soft="),
        "{tags:?}"
    );
    assert_eq!(field(lines[0], "soft"), soft_seq);
    let at: u64 = field(lines[0], "soft_at").parse().expect("Unix ms");
    let until: u64 = field(lines[0], "soft_until").parse().expect("Unix ms");
    assert_eq!(until - at, 60_000, "the window asked for");
    assert_eq!(lines[1], "never-invalidated entries=0 hard=none soft=none");

    // A hard invalidation ends the window at once.
    let hard = cli(&addr, &["invalidate", "posts"]);
    assert_eq!(hard.code, Some(0), "{hard:?}");
    let gone = cli(&addr, &["get", "page", "--allow-stale"]);
    assert_eq!(gone.code, DID_NOT_APPLY, "{gone:?}");
    let tags = cli(&addr, &["tags", "posts"]).stdout_text();
    assert_eq!(field(&tags, "hard"), hard.stdout_text().trim());
}

/// Issue 9: `flush --soft` makes every entry stale, not gone.
#[test]
fn a_soft_flush_leaves_every_entry_stale() {
    let server = start_server();
    let addr = server.local_addr().to_string();
    assert_ok(&cli(&addr, &["set", "untagged", "v"]), "STORED\n");
    assert_ok(&cli(&addr, &["flush", "--soft", "--expire", "60"]), "OK\n");
    assert_eq!(cli(&addr, &["get", "untagged"]).code, DID_NOT_APPLY);
    let stale = cli(&addr, &["get", "untagged", "--allow-stale"]);
    assert_eq!((stale.code, stale.stderr.as_str()), (Some(0), "STALE\n"));
    assert_ok(&cli(&addr, &["flush"]), "OK\n");
    let gone = cli(&addr, &["get", "untagged", "--allow-stale"]);
    assert_eq!(gone.code, DID_NOT_APPLY, "{gone:?}");
}

/// Issue 9: `get --lease` prints the token `set --lease` takes; a second
/// reader is told someone is on it; a DELETE makes the lease lost.
#[test]
fn get_lease_grants_one_reader_the_token_that_set_lease_takes() {
    let server = start_server();
    let addr = server.local_addr().to_string();
    let first = cli(&addr, &["get", "k", "--lease"]);
    assert_eq!(first.code, DID_NOT_APPLY, "{first:?}");
    let token = shown(&first, "lease").to_string();
    let second = cli(&addr, &["get", "k", "--lease"]);
    assert_eq!(
        (second.code, second.stderr.as_str()),
        (DID_NOT_APPLY, "HOT_MISS\n")
    );
    assert_ok(
        &cli(
            &addr,
            &["set", "k", "v", "--lease", &token, "--stale-after", "1"],
        ),
        "STORED\n",
    );
    assert_ok(&cli(&addr, &["get", "k"]), "v");
    // The lease ended with the SET that stored.
    let again = cli(&addr, &["set", "k", "v2", "--lease", &token]);
    assert_eq!(again.code, DID_NOT_APPLY, "{again:?}");
    assert_eq!(again.stdout_text(), "LEASE_LOST\n");

    // A second later the entry is stale, and one reader may refresh it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let refresh = loop {
        let read = cli(&addr, &["get", "k", "--allow-stale", "--lease"]);
        if read.stderr.starts_with("STALE") {
            break read;
        }
        assert!(Instant::now() < deadline, "never stale: {read:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(refresh.stdout, b"v");
    let token = shown(&refresh, "lease").to_string();
    assert_ok(&cli(&addr, &["del", "k"]), "DELETED\n");
    let lost = cli(&addr, &["set", "k", "v3", "--lease", &token]);
    assert_eq!(lost.code, DID_NOT_APPLY, "{lost:?}");
    assert_eq!(lost.stdout_text(), "LEASE_LOST\n");
}

/// Running the CLI with its standard output on a pseudo-terminal.
#[cfg(unix)]
mod terminal {
    use std::fs::File;
    use std::io::{ErrorKind, Read};
    use std::process::Stdio;
    use std::sync::mpsc;

    use rustix::fs::{Mode, OFlags};
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};

    use crate::support::cli::{command, drain, wait_bounded, RUN_BOUND};

    /// Runs `tagcached-cli --server SERVER ARGS...` with stdout on a new
    /// terminal and stderr on a pipe: its exit code, what the terminal
    /// showed, and stderr.
    pub fn run(server: &str, args: &[&str]) -> (Option<i32>, Vec<u8>, String) {
        let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
        let controller = openpt(flags).expect("open a pseudo-terminal");
        grantpt(&controller).expect("grantpt");
        unlockpt(&controller).expect("unlockpt");
        let name = ptsname(&controller, Vec::new()).expect("ptsname");
        let terminal = rustix::fs::open(
            name.as_c_str(),
            OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .expect("open the terminal");

        let mut command = command(server, args);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(File::from(terminal)))
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start tagcached-cli");
        // Our copy of the terminal closes with the command, so the
        // controller reads the end once the child has exited.
        drop(command);
        let stderr = drain(child.stderr.take().expect("stderr"));
        let (screen_tx, screen_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = screen_tx.send(read_screen(File::from(controller)));
        });
        let status = wait_bounded(&mut child);
        let screen = screen_rx
            .recv_timeout(RUN_BOUND)
            .expect("the terminal's output ends when the child exits");
        let stderr = String::from_utf8(stderr.join().expect("stderr")).expect("UTF-8");
        (status.code(), screen, stderr)
    }

    /// Everything written to the terminal, until its last writer closes it
    /// (which Linux reports to the controller as EIO).
    fn read_screen(mut controller: File) -> Vec<u8> {
        let mut screen = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            match controller.read(&mut buffer) {
                Ok(0) => return screen,
                Ok(n) => screen.extend_from_slice(&buffer[..n]),
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error)
                    if error.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) =>
                {
                    return screen
                }
                Err(error) => panic!("reading the terminal: {error}"),
            }
        }
    }
}

/// `--tls-ca`, `--tls-cert` and `--tls-key` against a daemon that requires
/// client certificates; the server name is the host of `--server`.
#[test]
fn tls_flags_verify_the_server_and_present_a_client_certificate() {
    use tagcached_tests::tls::TestPki;
    let pki = TestPki::new("CLI CA");
    let files = pki.server_files(true);
    let server = support::start_server_with(|config| config.tls = Some(files));
    let addr = server.local_addr().to_string();
    let path = |path: &std::path::Path| path.to_str().expect("UTF-8 path").to_owned();
    let (ca, cert, key) = (
        path(&pki.ca_file),
        path(&pki.client_cert),
        path(&pki.client_key),
    );
    let with_certificate = ["--tls-ca", &ca, "--tls-cert", &cert, "--tls-key", &key];
    let set: Vec<&str> = with_certificate
        .iter()
        .copied()
        .chain(["set", "k", "tls"])
        .collect();
    assert_ok(&cli(&addr, &set), "STORED\n");
    let get: Vec<&str> = with_certificate
        .iter()
        .copied()
        .chain(["get", "k"])
        .collect();
    assert_ok(&cli(&addr, &get), "tls");

    // No client certificate: the server refuses; a usage error, exit 2.
    let refused = cli(&addr, &["--tls-ca", &ca, "ping"]);
    assert_eq!(refused.code, Some(2), "{refused:?}");
    // A CA that did not sign the server's certificate.
    let other = TestPki::new("another CA");
    let other_ca = path(&other.ca_file);
    let untrusted = cli(
        &addr,
        &[
            "--tls-ca",
            &other_ca,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "ping",
        ],
    );
    assert_eq!(untrusted.code, Some(2), "{untrusted:?}");
    assert!(untrusted.stderr.contains("certificate"), "{untrusted:?}");
    // Plain TCP to a TLS port fails too, and says where.
    let plain = cli(&addr, &["ping"]);
    assert_eq!(plain.code, Some(2), "{plain:?}");
    assert!(plain.stderr.contains(&addr), "{plain:?}");
}
