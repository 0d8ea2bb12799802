//! The `tagcached` binary as a process: flags, serving, and a graceful stop
//! on SIGTERM that answers every request already read and exits 0.
//!
//! The binary is found (and brought up to date) by
//! [`tagcached_tests::tagcached_binary`]; see there why it is not
//! `env!("CARGO_BIN_EXE_tagcached")`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tagcached_protocol::request::Command;
use tagcached_protocol::response::Outcome;
use tagcached_protocol::Request;
use tagcached_tests::{get_cmd, set_cmd, within, RawConn};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr};
use tokio::sync::mpsc;

/// Bound on building the binary (a no-op when it is current).
const BUILD_TIMEOUT: Duration = Duration::from_secs(300);
/// Bound on the process starting, and on it stopping after SIGTERM.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(10);

async fn binary() -> &'static Path {
    let build = tokio::task::spawn_blocking(tagcached_tests::tagcached_binary);
    tokio::time::timeout(BUILD_TIMEOUT, build)
        .await
        .expect("the tagcached binary builds within BUILD_TIMEOUT")
        .expect("the build task")
}

/// A running daemon, killed if the test fails before it stops.
struct Daemon {
    child: Child,
    addr: SocketAddr,
    /// Every stderr line, forwarded as read.
    log: mpsc::UnboundedReceiver<String>,
}

impl Daemon {
    /// Starts the binary on port 0 and reads the bound address from its
    /// `local_addr=` log line.
    async fn start(args: &[&str]) -> Daemon {
        let mut child = tokio::process::Command::new(binary().await)
            .args(["--port", "0", "--bind", "127.0.0.1", "--log-level", "info"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn tagcached");
        let (lines, mut log) = mpsc::unbounded_channel();
        tokio::spawn(forward_lines(child.stderr.take().expect("stderr"), lines));
        let addr = tokio::time::timeout(PROCESS_TIMEOUT, async {
            while let Some(line) = log.recv().await {
                if let Some(addr) = local_addr(&line) {
                    return addr;
                }
            }
            panic!("tagcached exited without logging its address");
        })
        .await
        .expect("tagcached logs its address within PROCESS_TIMEOUT");
        Daemon { child, addr, log }
    }

    /// Sends SIGTERM, with the `kill` command: `libc::kill` would need
    /// `unsafe`, which the workspace forbids.
    async fn terminate(&self) {
        let pid = self.child.id().expect("still running").to_string();
        let status = tokio::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .expect("run kill");
        assert!(status.success(), "kill -TERM {pid}: {status}");
    }

    async fn exit_status(&mut self) -> ExitStatus {
        tokio::time::timeout(PROCESS_TIMEOUT, self.child.wait())
            .await
            .expect("tagcached exits within PROCESS_TIMEOUT of SIGTERM")
            .expect("wait for tagcached")
    }

    /// The log lines written so far (all of them once the process exited).
    fn drain_log(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Ok(line) = self.log.try_recv() {
            lines.push(line);
        }
        lines
    }
}

async fn forward_lines(stderr: ChildStderr, lines: mpsc::UnboundedSender<String>) {
    let mut reader = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = reader.next_line().await {
        if lines.send(line).is_err() {
            break;
        }
    }
}

/// The address in a line such as
/// `... INFO tagcached: tagcached listening local_addr=127.0.0.1:4242 threads=2`.
fn local_addr(line: &str) -> Option<SocketAddr> {
    let (_, rest) = line.split_once("local_addr=")?;
    rest.split_whitespace().next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_serves_and_on_sigterm_answers_what_it_read_then_exits_zero() {
    let _ = binary().await;
    within(async {
        let mut daemon = Daemon::start(&["--threads", "2", "--memory", "64MiB"]).await;
        assert!(daemon.addr.ip().is_loopback());
        let mut conn = RawConn::connect(daemon.addr).await.expect("connect");
        let hello = conn.hello(None).await;
        assert_eq!(hello.shard_count, 2);
        conn.store("greeting", "hello", &["t"]).await;
        assert_eq!(conn.value("greeting").await.as_deref(), Some(&b"hello"[..]));
        let mut idle = RawConn::connect(daemon.addr).await.expect("connect");
        idle.ping().await;

        // A pipeline small enough to arrive in one read, whose answers are
        // far larger than the socket buffers: the daemon has read every
        // request but is still writing answers when SIGTERM arrives.
        const BIG: usize = 256 * 1024;
        const GETS: u32 = 120;
        let big = vec![0x5Au8; BIG];
        conn.store("big", &big, &[]).await;
        let mut requests = Vec::new();
        for i in 0..GETS {
            requests.push(Request::new(3 * i, get_cmd("big")));
            let key = format!("in-flight-{i}");
            requests.push(Request::new(
                3 * i + 1,
                Command::Set(set_cmd(&key, "v", &[])),
            ));
            requests.push(Request::new(3 * i + 2, Command::Ping));
        }
        conn.send_batch(&requests).await;
        let first = conn.recv().await;
        assert!(matches!(&first.outcome, Outcome::Hit(hit) if hit.value.len() == BIG));

        daemon.terminate().await;
        for request in &requests[1..] {
            let response = conn.recv().await;
            assert_eq!(response.opaque, request.opaque, "answered in order");
            match (&request.command, &response.outcome) {
                (Command::Get(_), Outcome::Hit(hit)) => assert_eq!(hit.value.len(), BIG),
                (Command::Set(_), Outcome::Stored { .. }) | (Command::Ping, Outcome::Ok) => {}
                (_, outcome) => panic!("request {} answered {outcome:?}", request.opaque),
            }
        }
        // Then each connection is closed, and the process exits 0.
        conn.expect_closed().await;
        idle.expect_closed().await;
        let status = daemon.exit_status().await;
        let log = daemon.drain_log();
        assert_eq!(
            status.code(),
            Some(0),
            "exit status {status}; log:\n{}",
            log.join("\n")
        );
        assert!(
            log.iter().any(|line| line.contains("stopped")),
            "log:\n{}",
            log.join("\n")
        );
        assert!(
            RawConn::connect(daemon.addr).await.is_err(),
            "nothing listens after exit"
        );
    })
    .await;
}

#[tokio::test]
async fn help_lists_every_flag() {
    let binary = binary().await;
    within(async {
        let output = tokio::process::Command::new(binary)
            .arg("--help")
            .kill_on_drop(true)
            .output()
            .await
            .expect("run tagcached --help");
        assert!(output.status.success(), "{:?}", output.status);
        let help = String::from_utf8(output.stdout).expect("UTF-8 help");
        for flag in [
            "--port",
            "--bind",
            "--threads",
            "--memory",
            "--max-value-size",
            "--max-connections",
            "--log-level",
            "--help",
            "--version",
        ] {
            assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
        }
    })
    .await;
}

#[tokio::test]
async fn invalid_flags_are_refused_with_a_nonzero_exit() {
    let binary = binary().await;
    within(async {
        for args in [
            &["--threads", "0"][..],
            &["--memory", "lots"],
            &["--threads", "4", "--memory", "1MiB"],
            &["--no-such-flag"],
        ] {
            let output = tokio::process::Command::new(binary)
                .args(["--port", "0"])
                .args(args)
                .kill_on_drop(true)
                .output()
                .await
                .expect("run tagcached");
            assert!(!output.status.success(), "{args:?} was accepted");
            assert!(
                !output.stderr.is_empty(),
                "{args:?}: an explanation on stderr"
            );
        }
    })
    .await;
}

/// The library's graceful stop, in process: idle connections are closed,
/// new ones refused, and `wait` reports a clean exit.
#[tokio::test]
async fn in_process_shutdown_closes_connections_and_waits_cleanly() {
    within(async {
        let server = tagcached_tests::TestServer::start();
        let addr = server.addr();
        let mut idle = server.connect().await;
        idle.ping().await;
        let stop = tokio::task::spawn_blocking(move || server.stop());
        idle.expect_closed().await;
        stop.await
            .expect("stop task")
            .expect("workers exit cleanly");
        assert!(RawConn::connect(addr).await.is_err(), "nothing listens");
    })
    .await;
}
