//! The `tagcached` binary as a process: flags, serving, and a graceful stop
//! on SIGTERM that answers every request already read and exits 0.
//!
//! The binary is found (and brought up to date) by
//! [`tagcached_tests::tagcached_binary`]; see there why it is not
//! `env!("CARGO_BIN_EXE_tagcached")`. [`tagcached_tests::Daemon`] runs it.

use std::net::SocketAddr;
use std::time::Duration;

use tagcached_protocol::request::Command;
use tagcached_protocol::response::Outcome;
use tagcached_protocol::Request;
use tagcached_tests::daemon::built_binary;
use tagcached_tests::{get_cmd, set_cmd, within, Daemon, Deadline, RawConn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_serves_and_on_sigterm_answers_what_it_read_then_exits_zero() {
    let _ = built_binary().await;
    within(async {
        let mut daemon = Daemon::start(&["--threads", "2", "--memory", "64MiB"]).await;
        assert!(daemon.addr().ip().is_loopback());
        let mut conn = daemon.connect().await;
        let hello = conn.hello(None).await;
        assert_eq!(hello.shard_count, 2);
        conn.store("greeting", "hello", &["t"]).await;
        assert_eq!(conn.value("greeting").await.as_deref(), Some(&b"hello"[..]));
        let mut idle = daemon.connect().await;
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
            RawConn::connect(daemon.addr()).await.is_err(),
            "nothing listens after exit"
        );
    })
    .await;
}

/// Regression (issue 8): a connection the daemon closed on SIGTERM while
/// requests it had not read waited in the socket was reset, and a reset
/// throws away the answers written but not yet sent, so requests the
/// daemon had read and run went unanswered. Now: every request read is
/// answered, none of the unread ones is run, and the connection ends with
/// the end of stream after the last answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sigterm_unread_requests_are_not_run_and_every_answer_before_them_arrives() {
    let _ = built_binary().await;
    within(async {
        let mut daemon = Daemon::start(&["--threads", "2", "--memory", "64MiB"]).await;
        let mut conn = daemon.connect().await;
        const BIG: usize = 256 * 1024;
        const GETS: u32 = 120;
        conn.store("big", vec![0x5Au8; BIG], &[]).await;
        // Small enough to be read in one go; its answers, 30 MB, are far
        // larger than the socket buffers, so the daemon is still writing
        // them when the next batch arrives, and reads nothing more until
        // the client has taken them all.
        let read: Vec<Request> = (0..GETS).map(|i| Request::new(i, get_cmd("big"))).collect();
        conn.send_batch(&read).await;
        let first = conn.recv().await;
        assert!(matches!(&first.outcome, Outcome::Hit(hit) if hit.value.len() == BIG));
        let unread: Vec<Request> = (0..100)
            .map(|i| {
                let set = set_cmd(format!("unread-{i}"), "v", &[]);
                Request::new(1000 + i, Command::Set(set))
            })
            .collect();
        conn.send_batch(&unread).await;

        daemon.terminate().await;
        // New connections are refused while this one is still answered.
        let deadline = Deadline::new("new connections to be refused", Duration::from_secs(5));
        while !refused(daemon.addr()).await {
            deadline.tick().await;
        }
        for request in &read[1..] {
            let response = conn.recv().await;
            assert_eq!(response.opaque, request.opaque, "answered in order");
            assert!(matches!(&response.outcome, Outcome::Hit(hit) if hit.value.len() == BIG));
        }
        // The end of stream, not a reset, and no answer to an unread request.
        let last = conn.try_recv().await;
        assert!(
            last.is_none(),
            "the connection ends cleanly after the last answer: {last:?}"
        );
        let status = daemon.exit_status().await;
        assert_eq!(status.code(), Some(0), "exit status {status}");
    })
    .await;
}

/// Whether a connection to `addr` is refused, or closed unanswered.
async fn refused(addr: SocketAddr) -> bool {
    let Ok(mut conn) = RawConn::connect(addr).await else {
        return true;
    };
    let ping = Request::new(1, Command::Ping);
    if conn.send_raw(&ping_bytes(&ping)).await.is_err() {
        return true;
    }
    !matches!(conn.try_recv().await, Some(Ok(_)))
}

fn ping_bytes(request: &Request) -> Vec<u8> {
    let mut bytes = bytes::BytesMut::new();
    request.encode(&mut bytes);
    bytes.to_vec()
}

#[tokio::test]
async fn help_lists_every_flag() {
    let binary = built_binary().await;
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
    let binary = built_binary().await;
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
