//! Authentication (issue 11, protocol.md §6.12) from the client's side,
//! against a real server that requires it: every connection of a `Client`
//! (one per shard, and those it opens again after a cut) sends AUTH after
//! HELLO; a missing or wrong token is an [`Error::Auth`] naming the server;
//! and `tagcached-cli` takes its token from `--auth-token-file` or
//! `TAGCACHED_AUTH_TOKEN`.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::cli::{command, run};
use support::{bounded, start_server, start_server_with, Proxy};
use tagcached::auth::{AuthConfig, TokenSet};
use tagcached::Server;
use tagcached_client::{Client, ConnectOptions, Error, Features, SetOptions};

const TOKEN: &str = "client-test-token";

/// A server with two shards that requires [`TOKEN`] (or `second token`).
fn server_requiring_auth() -> Server {
    start_server_with(|config| {
        config.auth = Some(AuthConfig {
            // Only read again on reload, which these tests do not do.
            token_file: PathBuf::from("/nonexistent/tokens"),
            tokens: Arc::new(TokenSet::parse(&format!("{TOKEN}\nsecond token\n")).expect("tokens")),
            timeout: Duration::from_secs(10),
        });
    })
}

/// A token file holding `text`, removed on drop.
struct TokenFile(PathBuf);

impl TokenFile {
    fn new(name: &str, text: &str) -> TokenFile {
        let path = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::write(&path, text).expect("write the token file");
        TokenFile(path)
    }
}

impl Drop for TokenFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shard_aware_connection_authenticates() {
    bounded(async {
        let server = server_requiring_auth();
        let addr = server.local_addr().to_string();
        let client = Client::builder()
            .server(&addr)
            .auth_token(TOKEN)
            .build()
            .expect("client");
        // Keys on both shards, so both lanes open and authenticate.
        for i in 0..32 {
            let key = format!("k{i}");
            client
                .set(&key, "v", &SetOptions::new().tag("t"))
                .await
                .expect("set");
            assert!(client.get(&key).await.expect("get").is_some());
        }
        client.invalidate_tags(["t"]).await.expect("invalidate");
        assert!(client.get("k0").await.expect("get").is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnected_connections_authenticate_again() {
    bounded(async {
        let server = server_requiring_auth();
        let proxy = Proxy::start(server.local_addr()).await;
        let client = Client::builder()
            .server(proxy.addr().to_string())
            .auth_token("second token")
            .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(50))
            .build()
            .expect("client");
        client.set("k", "v", &SetOptions::new()).await.expect("set");
        proxy.cut();
        let _ = client.get("k").await;
        proxy.restore();
        let started = Instant::now();
        loop {
            match client.get("k").await {
                Ok(found) => {
                    assert!(found.is_some());
                    break;
                }
                Err(error) => assert!(error.is_connection_error(), "{error}"),
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "never reconnected"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_wrong_token_is_an_auth_error_naming_the_server() {
    bounded(async {
        let server = server_requiring_auth();
        let addr = server.local_addr();
        for (options, expected) in [
            (ConnectOptions::new(), "no auth token was given"),
            (ConnectOptions::new().auth_token("wrong"), "AUTH_FAILED"),
        ] {
            let error = options.connect(addr).await.expect_err("refused");
            match &error {
                Error::Auth { server, reason } => {
                    assert_eq!(server, &addr.to_string());
                    assert!(reason.contains(expected), "{reason}");
                }
                other => panic!("expected an auth error, got {other:?}"),
            }
            assert!(error.to_string().contains(&addr.to_string()), "{error}");
            assert!(error.is_connection_error());
        }
        let client = Client::builder()
            .server(addr.to_string())
            .auth_token("wrong")
            .build()
            .expect("client");
        let error = client
            .set("k", "v", &SetOptions::new())
            .await
            .expect_err("refused");
        assert!(
            matches!(error, Error::Auth { .. }),
            "the pool reports why: {error:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_not_sent_to_a_server_that_requires_none() {
    bounded(async {
        let server = start_server();
        let connection = ConnectOptions::new()
            .auth_token(TOKEN)
            .connect(server.local_addr())
            .await
            .expect("connects");
        assert!(!connection.hello_info().features.contains(Features::AUTH));
        connection.ping().await.expect("ping");
        assert!(!format!("{:?}", ConnectOptions::new().auth_token(TOKEN)).contains(TOKEN));
    })
    .await;
}

#[test]
fn the_cli_takes_its_token_from_a_file_or_the_environment() {
    let server = server_requiring_auth();
    let addr = server.local_addr().to_string();
    let file = TokenFile::new("tagcached-cli-token", &format!("# ops\n{TOKEN}\n"));
    let path = file.0.to_str().expect("a UTF-8 path");

    let mut from_file = command(&addr, &["--auth-token-file", path, "ping"]);
    from_file.env_remove("TAGCACHED_AUTH_TOKEN");
    let output = run(from_file, b"");
    assert_eq!(
        (output.code, output.stdout_text().as_str()),
        (Some(0), "PONG\n"),
        "{output:?}"
    );

    let mut from_env = command(&addr, &["set", "k", "v"]);
    from_env.env("TAGCACHED_AUTH_TOKEN", TOKEN);
    let output = run(from_env, b"");
    assert_eq!(
        (output.code, output.stdout_text().as_str()),
        (Some(0), "STORED\n"),
        "{output:?}"
    );

    let mut without = command(&addr, &["get", "k"]);
    without.env_remove("TAGCACHED_AUTH_TOKEN");
    let output = run(without, b"");
    assert_eq!(output.code, Some(2), "{output:?}");
    assert!(
        output.stderr.contains(&addr),
        "names the server: {output:?}"
    );
    assert!(output.stderr.contains("no auth token"), "{output:?}");

    let mut wrong = command(&addr, &["get", "k"]);
    wrong.env("TAGCACHED_AUTH_TOKEN", "wrong");
    let output = run(wrong, b"");
    assert_eq!(output.code, Some(2), "{output:?}");
    assert!(output.stderr.contains("AUTH_FAILED"), "{output:?}");
}
