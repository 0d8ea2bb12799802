//! `tagcached-cli` as a child process, run to completion and bounded in
//! time, for the tests of what it prints, where, and its exit status.

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The binary under test, built by Cargo for this package's tests.
pub const CLI: &str = env!("CARGO_BIN_EXE_tagcached-cli");

/// The longest one run may take before it is killed and the test fails:
/// well past the CLI's own 10 s bound on connecting and on its command.
pub const RUN_BOUND: Duration = Duration::from_secs(20);

/// What a finished run left behind.
#[derive(Debug)]
pub struct Output {
    /// The exit code (`None` if a signal ended it).
    pub code: Option<i32>,
    /// Everything written to standard output, byte for byte.
    pub stdout: Vec<u8>,
    /// Everything written to standard error.
    pub stderr: String,
}

impl Output {
    /// Standard output as text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("UTF-8 on stdout")
    }
}

/// `tagcached-cli --server SERVER ARGS...`, not yet started.
pub fn command(server: &str, args: &[&str]) -> Command {
    let mut command = Command::new(CLI);
    command.args(["--server", server]).args(args);
    command
}

/// Runs `tagcached-cli --server SERVER ARGS...` with nothing on stdin.
pub fn cli(server: &str, args: &[&str]) -> Output {
    run(command(server, args), b"")
}

/// Runs `tagcached-cli --server SERVER ARGS...` with `stdin` on stdin.
pub fn cli_with_stdin(server: &str, args: &[&str], stdin: &[u8]) -> Output {
    run(command(server, args), stdin)
}

/// Runs `command` to completion with `stdin` as its standard input and its
/// output piped; fails (killing it) past [`RUN_BOUND`].
pub fn run(mut command: Command, stdin: &[u8]) -> Output {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("start the command");
    // Pipes are fed and drained on threads, so that neither side can block
    // the other on a full pipe.
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        // The child may exit without reading: a broken pipe is no failure.
        let _ = input.write_all(&stdin);
    });
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let status = wait_bounded(&mut child);
    feeder.join().expect("stdin feeder");
    Output {
        code: status.code(),
        stdout: stdout.join().expect("stdout reader"),
        stderr: String::from_utf8(stderr.join().expect("stderr reader")).expect("UTF-8 on stderr"),
    }
}

/// Reads `source` to its end on a thread.
pub fn drain(mut source: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        source
            .read_to_end(&mut bytes)
            .expect("read the child's output");
        bytes
    })
}

/// Waits for `child` at most [`RUN_BOUND`], killing it and failing past
/// that.
pub fn wait_bounded(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + RUN_BOUND;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the command did not finish within {RUN_BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
