//! A panic in a worker's task must not leave a half-alive daemon: with the
//! hook the binary installs, the whole process aborts and says why.
//!
//! The test runs itself again as a child process (the child's branch is
//! chosen by an environment variable), because what it checks is that the
//! process dies.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD: &str = "TAGCACHED_ABORT_ON_PANIC_CHILD";
const MESSAGE: &str = "a worker task broke an invariant";
const CHILD_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn a_panic_in_a_worker_task_aborts_the_process_and_logs_it() {
    if std::env::var_os(CHILD).is_some() {
        panic_in_a_worker_task();
    }
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "--exact",
            "a_panic_in_a_worker_task_aborts_the_process_and_logs_it",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the child");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if started.elapsed() > CHILD_TIMEOUT {
            let _ = child.kill();
            panic!("the child neither aborted nor exited within {CHILD_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stderr = std::io::read_to_string(child.stderr.take().expect("stderr")).expect("stderr");
    assert_eq!(
        status.signal(),
        Some(libc_sigabrt()),
        "the child should die of SIGABRT, got {status}; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains(MESSAGE) && stderr.contains("tagcached-worker-test"),
        "the abort names the panic and its thread; stderr:\n{stderr}"
    );
}

/// What the child does: a task on a worker-like thread (a single-threaded
/// runtime, as the daemon's workers have) panics. Without the hook, tokio
/// would catch the panic, the thread would go on, and so would the process.
fn panic_in_a_worker_task() -> ! {
    tagcached::abort::abort_on_panic();
    let worker = std::thread::Builder::new()
        .name("tagcached-worker-test".into())
        .spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a runtime");
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, async {
                let task = tokio::task::spawn_local(async { panic!("{MESSAGE}") });
                let _ = task.await;
                // Only reached if the panic did not abort.
                std::thread::sleep(CHILD_TIMEOUT * 2);
            });
        })
        .expect("spawn the worker");
    let _ = worker.join();
    std::process::exit(0);
}

/// SIGABRT's number, 6 on every Linux; named here rather than taking the
/// `libc` crate for one constant.
fn libc_sigabrt() -> i32 {
    6
}
