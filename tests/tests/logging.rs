//! What the daemon logs (issue 8, item 9): `--log-level` refuses words it
//! does not know instead of silently logging nothing; the default level
//! shows one line per listener with human-readable sizes; and a connection
//! closed for a protocol error (a memcached client pointed at the port by
//! mistake) shows up at info, rate-limited.

use std::time::{Duration, Instant};

use tagcached_tests::daemon::built_binary;
use tagcached_tests::{run_to_exit, within, Daemon, Deadline};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Before: `--log-level warning` was taken as a filter for a target named
/// `warning`, and the daemon ran with every line filtered out.
#[tokio::test]
async fn an_unknown_log_level_is_refused_with_exit_2() {
    let _ = built_binary().await;
    within(async {
        for level in ["warning", "verbose", "tagcached=loud"] {
            let output = run_to_exit(&["--port", "0", "--log-level", level], &[]).await;
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{level}: {stderr}");
            assert!(stderr.contains(level), "{level}: {stderr}");
        }
        let output = run_to_exit(&["--port", "0"], &[("TAGCACHED_LOG_LEVEL", "warning")]).await;
        assert_eq!(output.status.code(), Some(2), "from the environment too");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("did you mean `warn`"), "{stderr}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn levels_and_filter_directives_are_accepted() {
    let binary = built_binary().await;
    within(async {
        for level in [
            "WARN",
            "debug",
            "tagcached=debug",
            "warn,tagcached::worker=trace",
        ] {
            let mut command = tokio::process::Command::new(binary);
            command.args(["--port", "0", "--bind", "127.0.0.1", "--threads", "1"]);
            // The address line is at info: a stricter filter would hide it.
            command.args(["--log-level", &format!("{level},tagcached=info")]);
            let daemon = Daemon::spawn(command).await;
            daemon.connect().await.ping().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_level_logs_each_listener_with_readable_sizes() {
    let binary = built_binary().await;
    within(async {
        // No --log-level: the default.
        let mut command = tokio::process::Command::new(binary);
        command.args(["--port", "0", "--bind", "127.0.0.1", "--threads", "2"]);
        command.args(["--memory", "96MiB", "--connection-memory", "512KiB"]);
        let mut daemon = Daemon::spawn(command).await;
        daemon.connect().await.ping().await;
        let log = daemon.drain_log();
        let listening: Vec<_> = log
            .iter()
            .filter(|line| line.contains("listening"))
            .collect();
        assert_eq!(listening.len(), 1, "one listener:\n{}", log.join("\n"));
        let line = listening[0];
        for field in [
            "memory=96MiB",
            "connection_memory=512KiB",
            "max_value_size=1MiB",
            "max_connections=10000",
            "threads=2",
        ] {
            assert!(line.contains(field), "`{field}` in `{line}`");
        }
    })
    .await;
}

/// Before: a connection closed for a frame that breaks framing was logged
/// at debug only, so a memcached client pointed at the port by mistake left
/// no trace at the default level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_error_is_logged_at_info_with_the_peer_and_rate_limited() {
    const CLIENTS: usize = 30;
    let _ = built_binary().await;
    within(async {
        let mut daemon = Daemon::start(&["--threads", "1"]).await;
        let started = Instant::now();
        let mut peers = Vec::new();
        for _ in 0..CLIENTS {
            let mut stream = tokio::net::TcpStream::connect(daemon.addr())
                .await
                .expect("connect");
            peers.push(stream.local_addr().expect("local addr"));
            stream.write_all(b"mg foo v\r\n").await.expect("send");
            // A memcached meta GET, shorter than a header: the server answers
            // BAD_MAGIC and closes.
            let mut answer = Vec::new();
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
                .await
                .expect("closed within 5 s")
                .expect("read");
        }
        let first = peers[0].to_string();
        let deadline = Deadline::new("the protocol error line", Duration::from_secs(5));
        let mut log = Vec::new();
        let line = loop {
            log.extend(daemon.drain_log());
            if let Some(line) = log.iter().find(|line| line.contains("protocol error")) {
                break line.clone();
            }
            deadline.tick().await;
        };
        assert!(line.contains(" INFO "), "{line}");
        assert!(line.contains(&first), "the peer {first}: {line}");
        assert!(line.contains("BAD_MAGIC"), "the status: {line}");
        // At most one line a second (and the first).
        let logged = log
            .iter()
            .filter(|line| line.contains("protocol error"))
            .count();
        let allowed = 2 + started.elapsed().as_secs() as usize;
        assert!(
            logged <= allowed,
            "{logged} lines for {CLIENTS} clients in {:?}",
            started.elapsed()
        );
    })
    .await;
}
