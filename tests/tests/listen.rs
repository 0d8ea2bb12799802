//! Where the daemon listens: it refuses an address another process already
//! listens on (issue 8, item 8), and `--bind` takes host names and warns
//! about a non-loopback address served without authentication (item 11),
//! which since issue 11 takes `--insecure-no-auth` (tests/tests/auth.rs).

use tagcached_tests::daemon::built_binary;
use tagcached_tests::{run_to_exit, within, Daemon};

/// Before: the second daemon joined the first's port through SO_REUSEPORT,
/// started silently, and the kernel split new connections between the two,
/// so an invalidation sent to one left the other serving stale entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_a_port_in_use_exits_1_and_the_first_keeps_serving() {
    let _ = built_binary().await;
    within(async {
        let first = Daemon::start(&["--threads", "2", "--memory", "64MiB"]).await;
        let mut conn = first.connect().await;
        conn.store("k", "v", &["t"]).await;

        let port = first.addr().port().to_string();
        let second = run_to_exit(
            &["--port", &port, "--bind", "127.0.0.1", "--threads", "2"],
            &[],
        )
        .await;
        let stderr = String::from_utf8_lossy(&second.stderr);
        assert_eq!(second.status.code(), Some(1), "stderr:\n{stderr}");
        assert!(
            stderr.contains(&format!("127.0.0.1:{port} is in use by another process")),
            "a clear message:\n{stderr}"
        );

        // Every new connection still reaches the first daemon.
        conn.invalidate(&["t"]).await;
        for _ in 0..10 {
            let mut other = first.connect().await;
            assert_eq!(other.value("k").await, None, "invalidated everywhere");
        }
        conn.ping().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_accepts_a_host_name() {
    let binary = built_binary().await;
    within(async {
        let mut command = tokio::process::Command::new(binary);
        command.args(["--port", "0", "--bind", "localhost", "--threads", "1"]);
        let daemon = Daemon::spawn(command).await;
        assert!(daemon.addr().ip().is_loopback());
        daemon.connect().await.ping().await;
    })
    .await;
}

/// A bind address that is not loopback, served without authentication
/// (`--insecure-no-auth`), is warned about before anything listens. The test stays off the network: the
/// address (TEST-NET-1, RFC 5737) is not this machine's, so the bind fails
/// and the daemon exits 1 after the warning.
#[tokio::test]
async fn a_non_loopback_bind_without_authentication_is_warned_about() {
    let _ = built_binary().await;
    within(async {
        let output = run_to_exit(
            &["--port", "0", "--threads", "1", "--insecure-no-auth"],
            &[("TAGCACHED_BIND", "192.0.2.1")],
        )
        .await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("WARN") && stderr.contains("without authentication"),
            "a warning:\n{stderr}"
        );
        assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
        assert!(stderr.contains("cannot listen on 192.0.2.1"), "{stderr}");
    })
    .await;
}
