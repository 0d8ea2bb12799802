//! Authentication on the data port (issue 11, protocol.md §6.12), against
//! the real daemon: what a connection is served before AUTH, what a wrong
//! token costs, token files with several tokens and their reload on SIGHUP,
//! the pre-auth frame limit and timeout, the move between shards, and the
//! refusal to serve a non-loopback address without authentication.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tagcached_protocol::request::{Auth, Command, Hello};
use tagcached_protocol::response::{Features, Outcome};
use tagcached_protocol::{ErrorCode, Limits, Opcode, Request};
use tagcached_tests::daemon::built_binary;
use tagcached_tests::{
    assert_error, get_cmd, hello_cmd, keys_on_shard, raw_frame, raw_frame_with, run_to_exit,
    set_cmd, within, Daemon, Deadline, RawConn, REQUEST_MAGIC,
};

/// A token file in the system's temporary directory, removed on drop.
struct TokenFile {
    path: PathBuf,
}

impl TokenFile {
    fn new(text: &str) -> TokenFile {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "tagcached-auth-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, text).expect("write the token file");
        TokenFile { path }
    }

    fn rewrite(&self, text: &str) {
        std::fs::write(&self.path, text).expect("rewrite the token file");
    }

    fn path(&self) -> &str {
        self.path.to_str().expect("a UTF-8 temporary path")
    }
}

impl Drop for TokenFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn auth_cmd(token: &str) -> Command {
    Command::Auth(Auth {
        token: Bytes::copy_from_slice(token.as_bytes()),
    })
}

/// A daemon requiring one of the tokens of `tokens`, with `extra` flags.
async fn daemon_with(tokens: &TokenFile, extra: &[&str]) -> Daemon {
    let mut args = vec![
        "--threads",
        "2",
        "--memory",
        "64MiB",
        "--auth-token-file",
        tokens.path(),
    ];
    args.extend_from_slice(extra);
    Daemon::start(&args).await
}

/// A connection that has authenticated with `token`.
async fn authenticated(daemon: &Daemon, token: &str) -> RawConn {
    let mut conn = daemon.connect().await;
    assert_eq!(conn.run(auth_cmd(token)).await, Outcome::Ok, "AUTH {token}");
    conn
}

/// Whether a new connection's AUTH with `token` is accepted (a refused one
/// is closed by the server, as protocol.md §6.12 says).
async fn token_works(daemon: &Daemon, token: &str) -> bool {
    let mut conn = daemon.connect().await;
    match conn.run(auth_cmd(token)).await {
        Outcome::Ok => true,
        refused => {
            assert_error(&refused, ErrorCode::AuthFailed);
            conn.expect_closed().await;
            false
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_auth_only_hello_ping_and_auth_are_served() {
    let _ = built_binary().await;
    within(async {
        let tokens = TokenFile::new("right\n");
        let daemon = daemon_with(&tokens, &[]).await;
        let mut conn = daemon.connect().await;
        let hello = conn.hello(None).await;
        assert!(hello.features.contains(Features::AUTH), "bit 5 says so");
        assert_eq!(
            hello.limits.max_frame,
            Limits::default().max_frame,
            "HELLO reports the limits of an authenticated connection"
        );
        conn.ping().await;
        let refused = [
            get_cmd("k"),
            Command::Set(set_cmd("k", "v", &["t"])),
            Command::Noop,
            Command::Stats,
            // A bad key is not looked at: AUTH_REQUIRED comes first.
            get_cmd(""),
        ];
        for command in refused {
            assert_error(&conn.run(command).await, ErrorCode::AuthRequired);
        }
        // An unknown opcode too, and the connection stays open.
        conn.send_raw(&raw_frame(0x03, 0, 7, b""))
            .await
            .expect("write");
        let response = conn.recv().await;
        assert_eq!((response.opaque, response.opcode), (7, Opcode(0x03)));
        assert_error(&response.outcome, ErrorCode::AuthRequired);

        assert_eq!(conn.run(auth_cmd("right")).await, Outcome::Ok);
        assert!(conn.get_miss("k").await.fence > 0);
        conn.store("k", "v", &["t"]).await;
        let stats = conn.stats().await;
        assert_eq!(stats.num("auth_refusals"), 6);
        assert_eq!(stats.num("auth_failures"), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_refused_and_the_connection_closed_after_it() {
    let _ = built_binary().await;
    within(async {
        let tokens = TokenFile::new("right\n");
        let daemon = daemon_with(&tokens, &[]).await;
        let mut conn = daemon.connect().await;
        // Pipelined: the PING before is answered, the GET after is not.
        let requests = [
            Request::new(1, Command::Ping),
            Request::new(2, auth_cmd("wrong")),
            Request::new(3, get_cmd("k")),
        ];
        conn.send_batch(&requests).await;
        assert_eq!(conn.recv().await.outcome, Outcome::Ok);
        let refused = conn.recv().await;
        assert_eq!((refused.opaque, refused.opcode), (2, Opcode::AUTH));
        assert_error(&refused.outcome, ErrorCode::AuthFailed);
        conn.expect_closed().await;

        // A prefix, and the token with a byte more, are wrong too.
        assert!(!token_works(&daemon, "righ").await);
        assert!(!token_works(&daemon, "rightt").await);
        // An authenticated connection that presents a wrong token is
        // closed as well.
        let mut conn = authenticated(&daemon, "right").await;
        assert_error(&conn.run(auth_cmd("wrong")).await, ErrorCode::AuthFailed);
        conn.expect_closed().await;
        // A token too long for the protocol is MALFORMED, not a failure.
        let mut conn = daemon.connect().await;
        let long = "x".repeat(513);
        assert_error(&conn.run(auth_cmd(&long)).await, ErrorCode::Malformed);
        assert_eq!(conn.run(auth_cmd("right")).await, Outcome::Ok);
        assert_eq!(conn.stats().await.num("auth_failures"), 4);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_token_of_the_file_works() {
    let _ = built_binary().await;
    within(async {
        let tokens =
            TokenFile::new("# the old one, until the clients move\n  old-token \n\nnew token\n");
        let daemon = daemon_with(&tokens, &[]).await;
        let mut old = authenticated(&daemon, "old-token").await;
        let mut new = authenticated(&daemon, "new token").await;
        old.store("k", "v", &["t"]).await;
        assert_eq!(new.value("k").await.as_deref(), Some(&b"v"[..]));
        assert!(!token_works(&daemon, "# the old one, until the clients move").await);
        assert!(!token_works(&daemon, " old-token ").await);
    })
    .await;
}

/// Requests are checked in order against the state the ones before them
/// left: a client may send HELLO, AUTH and a SET larger than the pre-auth
/// frame limit at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_of_hello_auth_and_a_large_set_is_served() {
    let _ = built_binary().await;
    within(async {
        let tokens = TokenFile::new("right\n");
        let daemon = daemon_with(&tokens, &[]).await;
        let mut conn = daemon.connect().await;
        let large = vec![b'v'; 100_000];
        let requests = [
            Request::new(1, hello_cmd(None)),
            Request::new(2, auth_cmd("right")),
            Request::new(3, Command::Set(set_cmd("large", &large, &["t"]))),
            Request::new(4, get_cmd("large")),
        ];
        conn.send_batch(&requests).await;
        assert!(matches!(conn.recv().await.outcome, Outcome::Hello(_)));
        assert_eq!(conn.recv().await.outcome, Outcome::Ok);
        assert!(matches!(conn.recv().await.outcome, Outcome::Stored { .. }));
        match conn.recv().await.outcome {
            Outcome::Hit(hit) => assert_eq!(hit.value.len(), large.len()),
            other => panic!("GET answered {other:?}"),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_auth_a_frame_over_4_kib_is_frame_too_large_and_closes() {
    let _ = built_binary().await;
    within(async {
        let tokens = TokenFile::new("right\n");
        let daemon = daemon_with(&tokens, &[]).await;
        // 4096 bytes of body is allowed: a HELLO with a long client name.
        let mut conn = daemon.connect().await;
        let hello = Command::Hello(Hello {
            max_version: 1,
            want_shard: None,
            client_name: Bytes::from(vec![b'n'; 4096 - 3]),
        });
        assert!(matches!(conn.run(hello).await, Outcome::Hello(_)));
        // One more is not, refused from its header alone.
        let header = raw_frame_with(REQUEST_MAGIC, 1, 0x50, 0, 9, 4097, b"");
        conn.send_raw(&header).await.expect("write");
        let response = conn.recv().await;
        assert_eq!((response.opaque, response.opcode), (9, Opcode::AUTH));
        assert_error(&response.outcome, ErrorCode::FrameTooLarge);
        conn.expect_closed().await;
        // Once authenticated, the usual limit applies.
        let mut conn = authenticated(&daemon, "right").await;
        conn.store("k", vec![b'v'; 5000], &[]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_does_not_authenticate_in_time_is_closed() {
    let _ = built_binary().await;
    within(async {
        let tokens = TokenFile::new("right\n");
        let daemon = daemon_with(&tokens, &["--auth-timeout", "2"]).await;
        let mut done = authenticated(&daemon, "right").await;
        let started = Instant::now();
        let mut waiting = daemon.connect().await;
        // A PING a second in does not extend the deadline: the close comes
        // 2 s after the accept, not 2 s after the PING.
        tokio::time::sleep(Duration::from_secs(1)).await;
        waiting.ping().await;
        waiting.expect_closed().await;
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(1950) && elapsed < Duration::from_millis(2900),
            "closed {elapsed:?} after the connect, not at the auth timeout"
        );
        // The authenticated connection, older than that, is not closed.
        done.ping().await;
        assert_eq!(done.stats().await.num("auth_timeouts"), 1);
    })
    .await;
}

/// SIGHUP reads the token file again: new connections need a token of the
/// new file, connections already authenticated stay so, and a file that
/// cannot be used leaves the tokens in force.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_tokens_and_a_broken_file_keeps_them() {
    let _ = built_binary().await;
    within(async {
        let tokens = TokenFile::new("old\n");
        let mut daemon = daemon_with(&tokens, &[]).await;
        let mut before = authenticated(&daemon, "old").await;

        tokens.rewrite("new\n");
        hang_up(&mut daemon, "reloaded the auth tokens").await;
        assert!(
            !token_works(&daemon, "old").await,
            "the old token is refused"
        );
        assert!(token_works(&daemon, "new").await, "the new one works");
        before.ping().await;
        before.store("k", "v", &[]).await;

        tokens.rewrite("# emptied by mistake\n");
        hang_up(&mut daemon, "could not reload the auth tokens").await;
        assert!(
            token_works(&daemon, "new").await,
            "kept after a broken file"
        );

        std::fs::remove_file(&tokens.path).expect("remove the token file");
        hang_up(&mut daemon, "could not reload the auth tokens").await;
        assert!(
            token_works(&daemon, "new").await,
            "kept after a missing file"
        );
    })
    .await;
}

/// SIGHUP's default action ends a process: a daemon with nothing to reload
/// must take it as a reload too, and keep serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_without_a_token_file_keeps_the_daemon_serving() {
    let _ = built_binary().await;
    within(async {
        let mut daemon = Daemon::start(&["--threads", "1", "--memory", "64MiB"]).await;
        let mut conn = daemon.connect().await;
        conn.store("k", "v", &[]).await;
        hang_up(&mut daemon, "SIGHUP: reloading secrets").await;
        assert_eq!(conn.value("k").await.as_deref(), Some(&b"v"[..]));
        daemon.connect().await.ping().await;
    })
    .await;
}

/// Sends SIGHUP and waits for the log line saying what the reload did.
async fn hang_up(daemon: &mut Daemon, expected: &str) {
    let pid = daemon.pid().to_string();
    let status = tokio::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .await
        .expect("run kill");
    assert!(status.success(), "kill -HUP {pid}: {status}");
    let deadline = Deadline::new(format!("the log line {expected:?}"), Duration::from_secs(5));
    while !daemon
        .drain_log()
        .iter()
        .any(|line| line.contains(expected))
    {
        deadline.tick().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_to_another_shard_keeps_the_auth_state() {
    let _ = built_binary().await;
    within(async {
        let tokens = TokenFile::new("right\n");
        let daemon = daemon_with(&tokens, &[]).await;
        for shard in 0..2u16 {
            let key = &keys_on_shard("moved", shard, 2, 1)[0];
            // Authenticated, then moved: still authenticated.
            let mut conn = authenticated(&daemon, "right").await;
            assert_eq!(conn.hello(Some(shard)).await.shard, shard);
            conn.store(key, "v", &[]).await;
            // Moved before authenticating: still refused, still held to the
            // small frame limit, and AUTH works on the new shard.
            let mut conn = daemon.connect().await;
            assert_eq!(conn.hello(Some(shard)).await.shard, shard);
            assert_error(&conn.get(key).await, ErrorCode::AuthRequired);
            assert_eq!(conn.run(auth_cmd("right")).await, Outcome::Ok);
            assert_eq!(conn.value(key).await.as_deref(), Some(&b"v"[..]));
            let mut conn = daemon.connect().await;
            assert_eq!(conn.hello(Some(shard)).await.shard, shard);
            let header = raw_frame_with(REQUEST_MAGIC, 1, 0x20, 0, 5, 5000, b"");
            conn.send_raw(&header).await.expect("write");
            assert_error(&conn.recv().await.outcome, ErrorCode::FrameTooLarge);
            conn.expect_closed().await;
        }
    })
    .await;
}

/// The auth timeout counts from the accept, not from the move (HELLO's
/// hand-off to another worker must not grant a connection a new deadline).
/// With a 4 s timeout and the move at 2 s, the close comes at 4 s; a
/// restarted clock would put it at 6 s or later. The bound of 5.5 s, and
/// the 2 s the move has before the deadline, leave room for a loaded
/// machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_to_another_shard_does_not_restart_the_auth_timeout() {
    let _ = built_binary().await;
    within(async {
        let tokens = TokenFile::new("right\n");
        let daemon = daemon_with(&tokens, &["--auth-timeout", "4"]).await;
        let mut conn = daemon.connect().await;
        let started = Instant::now();
        let home = conn.hello(None).await.shard;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(conn.hello(Some(1 - home)).await.shard, 1 - home);
        conn.expect_closed().await;
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_millis(5500),
            "closed {elapsed:?} after the accept: the move restarted the clock"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_tokens_reports_bit_5_clear_and_answers_auth_ok() {
    let _ = built_binary().await;
    within(async {
        let daemon = Daemon::start(&["--threads", "1", "--memory", "64MiB"]).await;
        let mut conn = daemon.connect().await;
        assert!(!conn.hello(None).await.features.contains(Features::AUTH));
        assert_eq!(conn.run(auth_cmd("anything")).await, Outcome::Ok);
        conn.store("k", "v", &[]).await;
    })
    .await;
}

/// Redis's protected mode, made explicit. The tests stay off the network:
/// the address (TEST-NET-1, RFC 5737) is not this machine's, so a start
/// that gets past the check fails to bind and exits 1 with another message.
#[tokio::test]
async fn a_non_loopback_bind_without_authentication_refuses_to_start() {
    let _ = built_binary().await;
    within(async {
        let bind = [("TAGCACHED_BIND", "192.0.2.1")];
        let refused = run_to_exit(&["--port", "0", "--threads", "1"], &bind).await;
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(1), "stderr:\n{stderr}");
        assert!(
            stderr.contains("192.0.2.1") && stderr.contains("--insecure-no-auth"),
            "names the way out:\n{stderr}"
        );
        assert!(
            !stderr.contains("cannot listen"),
            "refused before binding:\n{stderr}"
        );

        let args = ["--port", "0", "--threads", "1", "--insecure-no-auth"];
        let insecure = run_to_exit(&args, &bind).await;
        let stderr = String::from_utf8_lossy(&insecure.stderr);
        assert!(stderr.contains("cannot listen on 192.0.2.1"), "{stderr}");
        assert!(
            stderr.contains("without authentication"),
            "warned:\n{stderr}"
        );

        let tokens = TokenFile::new("right\n");
        let args = [
            "--port",
            "0",
            "--threads",
            "1",
            "--auth-token-file",
            tokens.path(),
        ];
        let with_tokens = run_to_exit(&args, &bind).await;
        let stderr = String::from_utf8_lossy(&with_tokens.stderr);
        assert!(stderr.contains("cannot listen on 192.0.2.1"), "{stderr}");
        assert!(!stderr.contains("--insecure-no-auth"), "{stderr}");
    })
    .await;
}

#[tokio::test]
async fn a_token_file_that_cannot_be_used_stops_the_start() {
    let _ = built_binary().await;
    within(async {
        let empty = TokenFile::new("# no token yet\n\n");
        let missing = Path::new("/nonexistent/tagcached-tokens");
        for (file, expected) in [
            (empty.path(), "holds no token"),
            (
                missing.to_str().expect("UTF-8"),
                "cannot read the token file",
            ),
        ] {
            let output = run_to_exit(
                &["--port", "0", "--threads", "1", "--auth-token-file", file],
                &[],
            )
            .await;
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
            assert!(stderr.contains(expected), "{stderr}");
        }
    })
    .await;
}
