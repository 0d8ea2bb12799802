//! The `tagcached` binary as a child process ([`Daemon`]), for the tests
//! that need what only a process has: its flags, its exit status, its
//! response to signals, its log, and its memory as the kernel counts it
//! ([`Daemon::vm_rss_bytes`]).
//!
//! The daemon listens on 127.0.0.1 port 0 and logs the address it bound;
//! [`Daemon::start`] returns once that line is read, so nothing sleeps
//! waiting for start-up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command as ProcessCommand, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr};
use tokio::sync::mpsc;

use crate::RawConn;

/// Bound on building the binary (a no-op when it is current).
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(300);
/// Bound on the process starting, and on it stopping after SIGTERM.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(10);

/// The `tagcached` daemon binary, built on first use.
///
/// `env!("CARGO_BIN_EXE_tagcached")` exists only in the tests of the package
/// that owns the binary, and Cargo does not build a dependency's binaries,
/// so this finds the binary itself: next to the test executable's `deps`
/// directory (`<target>/<profile>/tagcached`), after running
/// `cargo build --bin tagcached` for that target directory and profile. The
/// build is a no-op when the binary is current, and running it every time
/// means a test never runs a stale daemon. Cargo does not hold the build
/// lock while tests run, so the nested build cannot deadlock.
///
/// This blocks; async tests call [`built_binary`] instead.
pub fn tagcached_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test executable's path");
        // <target>/<profile>/deps/<test>-<hash>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test executable is in <target>/<profile>/deps");
        let target_dir = profile_dir.parent().expect("<target>/<profile>");
        let binary = profile_dir.join(format!("tagcached{}", std::env::consts::EXE_SUFFIX));
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("tests/ is inside the workspace");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = ProcessCommand::new(cargo);
        build
            .current_dir(workspace)
            .env("CARGO_TARGET_DIR", target_dir)
            // Naming this package too unifies features with the test build,
            // so the binary links the dependencies already built for it.
            .args([
                "build",
                "--quiet",
                "-p",
                "tagcached",
                "-p",
                "tagcached-tests",
            ])
            .args(["--bin", "tagcached"]);
        match profile_dir.file_name().and_then(|name| name.to_str()) {
            Some("debug") => {}
            Some("release") => {
                build.arg("--release");
            }
            Some(profile) => {
                build.args(["--profile", profile]);
            }
            None => panic!("no profile directory in {}", exe.display()),
        }
        let status = build
            .status()
            .expect("run cargo to build the tagcached binary");
        assert!(
            status.success(),
            "building the tagcached binary failed: {status}"
        );
        assert!(binary.is_file(), "no binary at {}", binary.display());
        binary
    })
}

/// [`tagcached_binary`] off the async runtime, bounded by
/// [`BUILD_TIMEOUT`]. A test calls it before its [`crate::within`] body, so
/// a first build does not eat the body's time.
pub async fn built_binary() -> &'static Path {
    let build = tokio::task::spawn_blocking(tagcached_binary);
    tokio::time::timeout(BUILD_TIMEOUT, build)
        .await
        .expect("the tagcached binary builds within BUILD_TIMEOUT")
        .expect("the build task")
}

/// Runs the binary with exactly `args` (no [`BASE_ARGS`]) and `env` until
/// it exits, for a start that must fail; panics if it is still running
/// after [`PROCESS_TIMEOUT`] (and kills it).
pub async fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let output = tokio::process::Command::new(built_binary().await)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(PROCESS_TIMEOUT, output)
        .await
        .unwrap_or_else(|_| panic!("tagcached {args:?} still running after {PROCESS_TIMEOUT:?}"))
        .expect("run tagcached")
}

/// A running `tagcached` process on 127.0.0.1, port 0. Dropping it kills
/// the process, so a failing test leaves none behind.
pub struct Daemon {
    child: Child,
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    /// The lines read while waiting for the address, until drained.
    unread: Vec<String>,
    /// Every stderr line, forwarded as read.
    log: mpsc::UnboundedReceiver<String>,
    /// The task forwarding them, until it has read the last line.
    forwarder: Option<tokio::task::JoinHandle<()>>,
}

/// The flags [`Daemon::start`] puts before a test's own.
pub const BASE_ARGS: [&str; 6] = ["--port", "0", "--bind", "127.0.0.1", "--log-level", "info"];

impl Daemon {
    /// Starts the binary with `args` after [`BASE_ARGS`], and reads the
    /// bound address from its `local_addr=` log line.
    pub async fn start(args: &[&str]) -> Daemon {
        let mut command = tokio::process::Command::new(built_binary().await);
        command.args(BASE_ARGS).args(args);
        Daemon::spawn(command).await
    }

    /// Starts `command`, which runs the binary ([`built_binary`]) with
    /// flags and an environment of the test's choosing, or a wrapper that
    /// execs it (`sh -c 'ulimit -n 256; exec "$0" "$@"' <binary> ...`), and
    /// reads the bound address from its `local_addr=` log line. The flags
    /// must keep it on loopback.
    pub async fn spawn(mut command: tokio::process::Command) -> Daemon {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn tagcached");
        let (lines, mut log) = mpsc::unbounded_channel();
        let forwarder = tokio::spawn(forward_lines(child.stderr.take().expect("stderr"), lines));
        let mut unread = Vec::new();
        let addr = tokio::time::timeout(PROCESS_TIMEOUT, async {
            while let Some(line) = log.recv().await {
                let addr = local_addr(&line);
                unread.push(line);
                if let Some(addr) = addr {
                    return addr;
                }
            }
            panic!(
                "tagcached exited without logging its address:\n{}",
                unread.join("\n")
            );
        })
        .await
        .expect("tagcached logs its address within PROCESS_TIMEOUT");
        assert!(addr.ip().is_loopback(), "tests stay on loopback: {addr}");
        // The admin listener is logged before the data port's listeners.
        let admin_addr = unread.iter().find_map(|line| admin_addr(line));
        assert!(
            admin_addr.map_or(true, |admin| admin.ip().is_loopback()),
            "tests stay on loopback: {admin_addr:?}"
        );
        Daemon {
            child,
            addr,
            admin_addr,
            unread,
            log,
            forwarder: Some(forwarder),
        }
    }

    /// Where the daemon listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the admin API listens, if `--admin-port` turned it on (read
    /// from its `admin_addr=` log line).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The process id; panics once the process has been waited for.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the daemon has not been waited for")
    }

    /// The daemon's resident set size in bytes, `VmRSS` in
    /// `/proc/<pid>/status`: the memory it holds as the kernel counts it,
    /// whatever its allocator believes. Linux only.
    pub fn vm_rss_bytes(&self) -> u64 {
        self.status_bytes("VmRSS")
    }

    /// The daemon's virtual memory size in bytes, `VmSize`: what it has
    /// reserved, touched or not. Linux only.
    pub fn vm_size_bytes(&self) -> u64 {
        self.status_bytes("VmSize")
    }

    fn status_bytes(&self, field: &str) -> u64 {
        let path = format!("/proc/{}/status", self.pid());
        let status =
            std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("read {path}: {error}"));
        parse_status_bytes(&status, field)
            .unwrap_or_else(|| panic!("no {field} line in {path}:\n{status}"))
    }

    /// A new raw connection.
    pub async fn connect(&self) -> RawConn {
        RawConn::connect(self.addr).await.expect("connect")
    }

    /// A new connection moved to `shard` by HELLO.
    pub async fn connect_to_shard(&self, shard: u16) -> RawConn {
        let mut conn = self.connect().await;
        let hello = conn.hello(Some(shard)).await;
        assert_eq!(hello.shard, shard, "HELLO moved the connection");
        conn
    }

    /// Sends SIGTERM, with the `kill` command: `libc::kill` would need
    /// `unsafe`, which the workspace forbids.
    pub async fn terminate(&self) {
        self.signal("TERM").await;
    }

    /// Sends SIGHUP: the daemon reloads its secrets (token files,
    /// certificates).
    pub async fn hang_up(&self) {
        self.signal("HUP").await;
    }

    async fn signal(&self, name: &str) {
        let pid = self.pid().to_string();
        let status = tokio::process::Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .await
            .expect("run kill");
        assert!(status.success(), "kill -{name} {pid}: {status}");
    }

    /// Waits for the process to exit, and for its last log line to be
    /// forwarded (the process can exit before its stderr is read), bounded
    /// by [`PROCESS_TIMEOUT`].
    pub async fn exit_status(&mut self) -> ExitStatus {
        let status = tokio::time::timeout(PROCESS_TIMEOUT, self.child.wait())
            .await
            .expect("tagcached exits within PROCESS_TIMEOUT")
            .expect("wait for tagcached");
        if let Some(forwarder) = self.forwarder.take() {
            tokio::time::timeout(PROCESS_TIMEOUT, forwarder)
                .await
                .expect("the log ends within PROCESS_TIMEOUT of the exit")
                .expect("the log forwarder");
        }
        status
    }

    /// The log lines written so far (all of them once the process exited),
    /// each returned once.
    pub fn drain_log(&mut self) -> Vec<String> {
        let mut lines = std::mem::take(&mut self.unread);
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

/// The address in the admin listener's line,
/// `... admin API listening admin_addr=127.0.0.1:4243 ...`.
fn admin_addr(line: &str) -> Option<SocketAddr> {
    let (_, rest) = line.split_once("admin_addr=")?;
    rest.split_whitespace().next()?.parse().ok()
}

/// The bytes in the `<field>:` line of a `/proc/<pid>/status` text, which
/// the kernel writes as `VmRSS:     1234 kB` (kB meaning KiB).
fn parse_status_bytes(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|line| {
        line.strip_prefix(field)
            .is_some_and(|rest| rest.starts_with(':'))
    })?;
    let mut fields = line[field.len() + 1..].split_whitespace();
    let kib: u64 = fields.next()?.parse().ok()?;
    match fields.next()? {
        "kB" => Some(kib * 1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_from_its_line_in_kib() {
        let status = "Name:\ttagcached\nVmPeak:\t  999 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_status_bytes(status, "VmRSS"), Some(12345 * 1024));
        assert_eq!(parse_status_bytes(status, "VmPeak"), Some(999 * 1024));
        assert_eq!(parse_status_bytes("Name:\tx\n", "VmRSS"), None);
        assert_eq!(parse_status_bytes("VmRSS:\t12 MB\n", "VmRSS"), None);
    }

    #[test]
    fn the_address_is_read_from_the_listening_line() {
        let line = "2024-01-01T00:00:00Z  INFO tagcached: tagcached listening \
                    local_addr=127.0.0.1:4242 threads=2";
        assert_eq!(local_addr(line), Some("127.0.0.1:4242".parse().unwrap()));
        assert_eq!(local_addr("INFO tagcached: stopped"), None);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn this_process_has_a_vm_rss() {
        let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
        assert!(parse_status_bytes(&status, "VmRSS").is_some_and(|bytes| bytes > 0));
    }
}
