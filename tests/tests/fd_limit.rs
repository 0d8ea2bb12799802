//! The daemon under a file descriptor limit lower than `--max-connections`
//! needs (issue 8, item 7). It raises its soft limit toward the hard limit
//! as far as it needs; when the hard limit is too low it lowers its
//! effective `--max-connections` and says so once, so a client past the
//! limit is answered BUSY instead of hanging in the accept queue while the
//! log fills with "accept failed".
//!
//! The limits are set by starting the daemon through
//! `sh -c 'ulimit ...; exec "$0" "$@"'`.

use std::time::Duration;

use tagcached_protocol::request::Command;
use tagcached_protocol::response::Outcome;
use tagcached_protocol::{ErrorCode, Request};
use tagcached_tests::daemon::built_binary;
use tagcached_tests::{within, Daemon, RawConn, BASE_ARGS};

/// How long an admitted or refused client may wait for its answer before it
/// counts as hanging.
const ANSWER_WITHIN: Duration = Duration::from_secs(3);

/// The daemon with `args`, started by `sh` after `ulimit <ulimit>`.
async fn daemon_under_ulimit(ulimit: &str, args: &[&str]) -> Daemon {
    let binary = built_binary().await;
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit {ulimit} && exec \"$0\" \"$@\""))
        .arg(binary)
        .args(BASE_ARGS)
        .args(args);
    Daemon::spawn(command).await
}

/// This process's hard limit on open files, from `/proc/self/limits`.
fn hard_nofile_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("read /proc/self/limits");
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("a `Max open files` line");
    let hard = line.split_whitespace().nth(4).expect("the hard limit");
    hard.parse().unwrap_or(u64::MAX)
}

/// What a new client is answered.
enum Answer {
    Served(RawConn),
    Busy(String),
}

/// Connects and PINGs; panics if nothing comes back within
/// [`ANSWER_WITHIN`].
async fn ping_new_client(daemon: &Daemon) -> Answer {
    let mut conn = daemon.connect().await;
    conn.send(&Request::new(7, Command::Ping)).await;
    let response = tokio::time::timeout(ANSWER_WITHIN, conn.recv())
        .await
        .expect("the new client is answered, not left hanging");
    match response.outcome {
        Outcome::Ok => Answer::Served(conn),
        Outcome::Error(error) if error.code == ErrorCode::Busy => {
            Answer::Busy(String::from_utf8_lossy(&error.message).into_owned())
        }
        other => panic!("PING answered {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soft_fd_limit_below_max_connections_is_raised_so_every_client_is_served() {
    const CLIENTS: usize = 400;
    if hard_nofile_limit() < 2_000 {
        eprintln!("skipped: the hard limit on open files is below 2,000 here");
        return;
    }
    let _ = built_binary().await;
    within(async {
        let mut daemon =
            daemon_under_ulimit("-Sn 256", &["--threads", "1", "--max-connections", "1000"]).await;
        let mut clients = Vec::with_capacity(CLIENTS);
        for i in 0..CLIENTS {
            match ping_new_client(&daemon).await {
                Answer::Served(conn) => clients.push(conn),
                Answer::Busy(message) => panic!("client {i} refused: {message}"),
            }
        }
        let log = daemon.drain_log();
        assert!(
            log.iter()
                .any(|line| line.contains("raised the open file limit from 256")),
            "the log says it raised the limit:\n{}",
            log.join("\n")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_fd_limit_below_max_connections_lowers_it_and_clients_past_it_get_busy() {
    let _ = built_binary().await;
    within(async {
        let mut daemon =
            daemon_under_ulimit("-n 256", &["--threads", "1", "--max-connections", "10000"]).await;
        // Clients are served up to the lowered limit, then answered BUSY.
        let mut clients = Vec::new();
        let busy = loop {
            assert!(clients.len() < 256, "no BUSY before the fd limit");
            match ping_new_client(&daemon).await {
                Answer::Served(conn) => clients.push(conn),
                Answer::Busy(message) => break message,
            }
        };
        assert!(clients.len() >= 128, "served only {}", clients.len());
        let limit = format!("limit of {} connections", clients.len());
        assert!(busy.contains(&limit), "BUSY says `{busy}`, not `{limit}`");
        for _ in 0..20 {
            assert!(matches!(ping_new_client(&daemon).await, Answer::Busy(_)));
        }
        for conn in &mut clients {
            conn.ping().await;
        }

        let log = daemon.drain_log();
        let lowered: Vec<_> = log
            .iter()
            .filter(|line| line.contains("lowering --max-connections"))
            .collect();
        assert_eq!(lowered.len(), 1, "said once:\n{}", log.join("\n"));
        assert!(
            lowered[0].contains(&format!("to {}", clients.len())),
            "{}",
            lowered[0]
        );
        assert!(
            !log.iter().any(|line| line.contains("accept failed")),
            "no accept failures:\n{}",
            log.join("\n")
        );
    })
    .await;
}
