//! Every flag also reads a `TAGCACHED_*` environment variable, as
//! containers expect, and sizes take decimals (issue 8, item 11).

use tagcached_tests::daemon::built_binary;
use tagcached_tests::{run_to_exit, within, Daemon};

/// Before: only --port, --bind, --threads, --memory and --log-level read the
/// environment (the last as `TAGCACHED_LOG`), and `1.5GiB` was refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flag_reads_its_environment_variable_and_sizes_take_decimals() {
    let binary = built_binary().await;
    within(async {
        let mut command = tokio::process::Command::new(binary);
        command.envs([
            ("TAGCACHED_PORT", "0"),
            ("TAGCACHED_BIND", "127.0.0.1"),
            ("TAGCACHED_THREADS", "3"),
            ("TAGCACHED_MEMORY", "1.5GiB"),
            ("TAGCACHED_MAX_CONNECTIONS", "7"),
            ("TAGCACHED_MAX_VALUE_SIZE", "0.5MiB"),
            ("TAGCACHED_MAX_KEY_SIZE", "100"),
            ("TAGCACHED_MAX_TAGS", "9"),
            ("TAGCACHED_CONNECTION_MEMORY", "2.25MiB"),
            ("TAGCACHED_PARTIAL_FRAME_MEMORY", "64MiB"),
            ("TAGCACHED_IDLE_TIMEOUT", "60"),
            ("TAGCACHED_FRAME_TIMEOUT", "2"),
            ("TAGCACHED_LOG_LEVEL", "info"),
        ]);
        let mut daemon = Daemon::spawn(command).await;
        let mut conn = daemon.connect().await;
        let hello = conn.hello(None).await;
        assert_eq!(hello.shard_count, 3);
        assert_eq!(hello.limits.max_key_length, 100);
        assert_eq!(hello.limits.max_tags, 9);
        assert_eq!(hello.limits.max_value_length, 512 << 10);
        let log = daemon.drain_log();
        let line = log
            .iter()
            .find(|line| line.contains("listening"))
            .expect("the listening line");
        for field in [
            "memory=1.5GiB",
            "max_connections=7",
            "connection_memory=2.25MiB",
            "partial_frame_memory=64MiB",
            "idle_timeout=60s",
            "frame_timeout=2s",
        ] {
            assert!(line.contains(field), "`{field}` in `{line}`");
        }
    })
    .await;
}

#[tokio::test]
async fn a_flag_wins_over_its_environment_variable_and_bad_values_exit_2() {
    let _ = built_binary().await;
    within(async {
        let output = run_to_exit(&["--port", "0"], &[("TAGCACHED_MEMORY", "1.5 parsecs")]).await;
        assert_eq!(output.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&output.stderr).contains("parsecs"));
        // The flag wins over a valid variable: --threads 0 is refused.
        let output = run_to_exit(
            &["--port", "0", "--threads", "0"],
            &[("TAGCACHED_THREADS", "2")],
        )
        .await;
        assert_eq!(output.status.code(), Some(2), "--threads 0 is refused");
    })
    .await;
}
