//! TLS on the data port (protocol.md §1): real handshakes against
//! certificates made at test time, client certificates, reloading, the
//! shard hand-off and pipelining over TLS, and what a client that speaks
//! the wrong thing, or nothing, gets.

use std::time::Duration;

use tagcached_protocol::request::Command;
use tagcached_protocol::response::Outcome;
use tagcached_protocol::Request;
use tagcached_tests::tls::{client_config, tls_connect, TestCa, TestPki, Usage};
use tagcached_tests::{
    get_cmd, hello_cmd, keys_on_shard, set_cmd, within, Daemon, Deadline, RawConn, TestServer,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SHARDS: u16 = 4;

fn tls_server(pki: &TestPki, require_client_certs: bool) -> TestServer {
    let files = pki.server_files(require_client_certs);
    TestServer::with_config(|config| {
        config.threads = SHARDS as usize;
        config.tls = Some(files);
    })
}

/// Whether the server answers HELLO on `conn`: false if the connection
/// fails or closes instead.
async fn answers_hello<S>(conn: &mut RawConn<S>) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let request = Request::new(conn.next_opaque(), hello_cmd(None));
    conn.send_batch([&request]).await;
    matches!(conn.try_recv().await, Some(Ok(response)) if matches!(response.outcome, Outcome::Hello(_)))
}

#[tokio::test]
async fn a_tls_client_is_served_and_its_pipeline_answered_in_order() {
    within(async {
        let pki = TestPki::new("pipeline CA");
        let server = tls_server(&pki, false);
        let mut conn = pki.connect(server.addr(), false).await.expect("handshake");
        conn.hello(None).await;
        conn.store("tls-key", "over TLS", &["t"]).await;
        assert_eq!(
            conn.value("tls-key").await.as_deref(),
            Some(&b"over TLS"[..])
        );

        // 2,000 requests in one write, larger than a TLS record and than
        // one read: answered in order.
        let mut requests = Vec::new();
        for i in 0..1000u32 {
            let key = format!("p-{i}");
            requests.push(Request::new(
                2 * i + 1,
                Command::Set(set_cmd(&key, format!("v{i}"), &["p"])),
            ));
            requests.push(Request::new(2 * i + 2, get_cmd(&key)));
        }
        conn.send_batch(&requests).await;
        for request in &requests {
            let response = conn.recv().await;
            assert_eq!(response.opaque, request.opaque);
            if let Command::Get(_) = request.command {
                let Outcome::Hit(hit) = response.outcome else {
                    panic!("GET {} answered {:?}", request.opaque, response.outcome);
                };
                assert_eq!(hit.value, format!("v{}", (request.opaque - 2) / 2));
            }
        }
        // A value of a megabyte crosses many records both ways.
        let large = "x".repeat(1 << 20);
        conn.store("large", large.as_str(), &[]).await;
        assert_eq!(conn.value("large").await.map(|v| v.len()), Some(1 << 20));
    })
    .await;
}

/// HELLO asking for each shard, with SETs and GETs for keys of every shard
/// in the same write: the TLS session moves with the socket, including the
/// requests already decrypted behind the HELLO.
#[tokio::test]
async fn a_tls_connection_moves_to_the_shard_it_asks_for_with_its_pipeline() {
    within(async {
        let pki = TestPki::new("hand-off CA");
        let server = tls_server(&pki, false);
        for shard in 0..SHARDS {
            let mut conn = pki.connect(server.addr(), false).await.expect("handshake");
            let keys: Vec<String> = (0..SHARDS)
                .flat_map(|owner| keys_on_shard(&format!("moved-{shard}"), owner, SHARDS, 5))
                .collect();
            let mut requests = vec![Request::new(1, hello_cmd(Some(shard)))];
            for (i, key) in keys.iter().enumerate() {
                let opaque = 10 + 2 * i as u32;
                requests.push(Request::new(opaque, Command::Set(set_cmd(key, key, &[]))));
                requests.push(Request::new(opaque + 1, get_cmd(key)));
            }
            conn.send_batch(&requests).await;
            let Outcome::Hello(info) = conn.recv().await.outcome else {
                panic!("HELLO not answered first");
            };
            assert_eq!((info.shard, info.shard_count), (shard, SHARDS));
            for request in &requests[1..] {
                let response = conn.recv().await;
                assert_eq!(response.opaque, request.opaque, "in order");
                match (&request.command, &response.outcome) {
                    (Command::Set(_), Outcome::Stored { .. }) => {}
                    (Command::Get(get), Outcome::Hit(hit)) => assert_eq!(hit.value, get.key),
                    (command, outcome) => panic!("{command:?} answered {outcome:?}"),
                }
            }
            // And it keeps working on its new worker.
            assert_eq!(conn.hello(None).await.shard, shard);
            conn.ping().await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_client_that_trusts_another_ca_refuses_the_server() {
    within(async {
        let pki = TestPki::new("the server's CA");
        let server = tls_server(&pki, false);
        let other = TestPki::new("another CA");
        let error = tls_connect(server.addr(), other.client_config(false))
            .await
            .err()
            .expect("the handshake fails");
        assert!(
            error.to_string().contains("UnknownIssuer") || error.to_string().contains("issuer"),
            "{error}"
        );
        // The server is unharmed.
        let mut conn = pki.connect(server.addr(), false).await.expect("handshake");
        conn.ping().await;
    })
    .await;
}

/// A plain client on a TLS port sends a frame where a ClientHello belongs:
/// the server ends the handshake with an alert and closes, the client
/// reads no response and does not hang, and other connections are served.
#[tokio::test]
async fn a_plain_client_on_a_tls_port_fails_cleanly_and_others_are_served() {
    within(async {
        let pki = TestPki::new("plain CA");
        let server = tls_server(&pki, false);
        let mut tls = pki.connect(server.addr(), false).await.expect("handshake");
        tls.hello(None).await;

        let mut plain = TcpStream::connect(server.addr()).await.expect("connect");
        let mut hello = bytes::BytesMut::new();
        Request::new(1, hello_cmd(None)).encode(&mut hello);
        plain.write_all(&hello).await.expect("send HELLO");
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut answer))
            .await
            .expect("the server closes the connection");
        if read.is_ok() {
            // A TLS alert record (content type 21, TLS 1.2 framing, two
            // bytes), not a tagcached frame.
            assert_eq!(answer.len(), 7, "{answer:02x?}");
            assert_eq!(
                &answer[..5],
                &[0x15, 0x03, 0x03, 0x00, 0x02],
                "{answer:02x?}"
            );
        }

        tls.store("after", "plain", &[]).await;
        let mut fresh = pki.connect(server.addr(), false).await.expect("handshake");
        assert_eq!(fresh.value("after").await.as_deref(), Some(&b"plain"[..]));
    })
    .await;
}

/// And the reverse: a TLS client on a plain port reads a protocol error
/// frame where a ServerHello belongs, and its handshake fails.
#[tokio::test]
async fn a_tls_client_on_a_plain_port_fails_its_handshake() {
    within(async {
        let pki = TestPki::new("reverse CA");
        let server = TestServer::start();
        let error = pki
            .connect(server.addr(), false)
            .await
            .err()
            .expect("no handshake with a plain server");
        assert!(!error.to_string().is_empty());
        server.connect().await.ping().await;
    })
    .await;
}

#[tokio::test]
async fn client_certificates_are_required_when_a_client_ca_is_given() {
    within(async {
        let pki = TestPki::new("client CA");
        let server = tls_server(&pki, true);

        // No certificate: under TLS 1.3 the client's side of the handshake
        // can end before the server has checked; the server refuses it, and
        // no request is answered.
        if let Ok(mut conn) = pki.connect(server.addr(), false).await {
            assert!(
                !answers_hello(&mut conn).await,
                "served without a certificate"
            );
        }

        // A certificate from another CA: refused the same way.
        let stranger = TestCa::new("stranger");
        let (cert, key) = stranger.issue(&["client"], 7, Usage::Client);
        let impostor = TestPki {
            client_cert: pki.dir.write("impostor.pem", &cert),
            client_key: pki.dir.write("impostor.key", &key),
            ..TestPki::new("unused")
        };
        let config = client_config(&pki.ca_file, Some(&impostor));
        if let Ok(mut conn) = tls_connect(server.addr(), config).await {
            assert!(
                !answers_hello(&mut conn).await,
                "served with a stranger's certificate"
            );
        }

        // The CA's own client certificate works.
        let mut conn = pki.connect(server.addr(), true).await.expect("handshake");
        assert!(answers_hello(&mut conn).await);
        conn.store("mutual", "tls", &[]).await;
        assert_eq!(conn.value("mutual").await.as_deref(), Some(&b"tls"[..]));
    })
    .await;
}

/// A reload puts new files in force for later handshakes; connections
/// already open keep going; files that do not load leave the last good
/// ones in force.
#[tokio::test]
async fn reloading_swaps_the_certificate_for_new_connections_only() {
    within(async {
        let first = TestPki::new("first CA");
        let server = tls_server(&first, false);
        let mut old = first
            .connect(server.addr(), false)
            .await
            .expect("handshake");
        old.hello(None).await;

        // New files from another CA, written over the same paths.
        let second = TestPki::new("second CA");
        std::fs::copy(&second.server_cert, &first.server_cert).expect("copy the cert");
        std::fs::copy(&second.server_key, &first.server_key).expect("copy the key");
        server.reload();
        assert!(
            first.connect(server.addr(), false).await.is_err(),
            "the old CA no longer fits"
        );
        let mut new = second
            .connect(server.addr(), false)
            .await
            .expect("the new CA fits");
        new.ping().await;
        old.ping().await;

        // A broken key: the reload fails and the second certificate stays.
        std::fs::write(&first.server_key, "not a key").expect("write");
        server.reload();
        let mut after = second
            .connect(server.addr(), false)
            .await
            .expect("still the new CA");
        after.ping().await;
    })
    .await;
}

/// Handshakes count against max_connections: a client that connects and
/// says nothing holds a slot until it is closed after the frame timeout,
/// counted in `frame_timeouts`.
#[tokio::test]
async fn a_client_that_never_finishes_its_handshake_is_closed_after_the_frame_timeout() {
    within(async {
        let pki = TestPki::new("timeout CA");
        let files = pki.server_files(false);
        let server = TestServer::with_config(|config| {
            config.tls = Some(files);
            config.frame_timeout = Some(Duration::from_secs(1));
            config.max_connections = 3;
        });
        let mut watcher = pki.connect(server.addr(), false).await.expect("handshake");
        let mut silent = TcpStream::connect(server.addr()).await.expect("connect");
        let mut partial = TcpStream::connect(server.addr()).await.expect("connect");
        // The first bytes of a ClientHello record, and no more.
        partial.write_all(&[0x16, 0x03, 0x01]).await.expect("write");
        let deadline = Deadline::new("both handshakes counted", Duration::from_secs(5));
        while watcher.stats().await.num("curr_connections") < 3 {
            deadline.tick().await;
        }
        // Every slot is taken: a fourth connection is closed unanswered.
        match pki.connect(server.addr(), false).await {
            Err(_) => {}
            Ok(mut refused) => assert!(!answers_hello(&mut refused).await, "over the limit"),
        }
        for stream in [&mut silent, &mut partial] {
            let mut rest = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest))
                .await
                .expect("closed after the frame timeout");
            assert!(
                read.map_or(true, |_| rest.len() < 100),
                "no answer but an alert"
            );
        }
        let deadline = Deadline::new("the timeouts counted", Duration::from_secs(5));
        while watcher.stats().await.num("frame_timeouts") < 2 {
            deadline.tick().await;
        }
        pki.connect(server.addr(), false)
            .await
            .expect("slots free again")
            .ping()
            .await;
    })
    .await;
}

/// The binary: `--tls-cert`, `--tls-key`, and SIGHUP reloads.
#[tokio::test]
async fn the_daemon_serves_tls_and_reloads_on_sighup() {
    let first = TestPki::new("daemon first CA");
    let cert = first.server_cert.to_str().expect("UTF-8 path").to_owned();
    let key = first.server_key.to_str().expect("UTF-8 path").to_owned();
    let mut daemon = Daemon::start(&["--tls-cert", &cert, "--tls-key", &key]).await;
    within(async {
        let mut conn = first
            .connect(daemon.addr(), false)
            .await
            .expect("handshake");
        conn.ping().await;
        let second = TestPki::new("daemon second CA");
        std::fs::copy(&second.server_cert, &first.server_cert).expect("copy the cert");
        std::fs::copy(&second.server_key, &first.server_key).expect("copy the key");
        daemon.hang_up().await;
        let deadline = Deadline::new("the reload", Duration::from_secs(5));
        while second.connect(daemon.addr(), false).await.is_err() {
            deadline.tick().await;
        }
        conn.ping().await;
    })
    .await;
    daemon.terminate().await;
    assert!(daemon.exit_status().await.success());
    let log = daemon.drain_log().join("\n");
    assert!(log.contains("reloaded the TLS certificate"), "{log}");
}

#[tokio::test]
async fn a_missing_certificate_file_is_a_start_error_naming_it() {
    let pki = TestPki::new("missing CA");
    let key = pki.server_key.to_str().expect("UTF-8 path");
    let missing = pki.dir.path().join("nope.pem");
    let missing = missing.to_str().expect("UTF-8 path");
    let output = tagcached_tests::run_to_exit(
        &["--port", "0", "--tls-cert", missing, "--tls-key", key],
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nope.pem"), "{stderr}");
}

/// The Rust client: a shard-aware pool over TLS, the name checked being
/// the address's host (an IP address here), and with a client certificate.
#[tokio::test]
async fn the_rust_client_connects_with_tls_and_a_client_certificate() {
    use tagcached_client::{Client, ConnectOptions, SetOptions, TlsOptions};
    within(async {
        let pki = TestPki::new("Rust client CA");
        let server = tls_server(&pki, true);
        let tls = TlsOptions::with_ca_file(&pki.ca_file)
            .expect("the CA loads")
            .client_certificate(&pki.client_cert, &pki.client_key)
            .expect("the client certificate loads");
        let client = Client::builder()
            .server(server.addr().to_string())
            .tls(tls.clone())
            .build()
            .expect("a client");
        for i in 0..50 {
            let key = format!("rust-{i}");
            client
                .set(&key, format!("v{i}"), &SetOptions::new().tag("rust"))
                .await
                .expect("SET over TLS");
            let item = client
                .get(&key)
                .await
                .expect("GET over TLS")
                .expect("a hit");
            assert_eq!(item.value, format!("v{i}"));
        }
        client
            .invalidate_tags(["rust"])
            .await
            .expect("INVALIDATE_TAGS");
        assert!(client.get("rust-0").await.expect("GET").is_none());

        // One connection, by name; without one, connect refuses to guess.
        let named =
            ConnectOptions::new().tls(tls.clone().server_name("localhost").expect("a name"));
        named
            .connect(server.addr())
            .await
            .expect("connect")
            .ping()
            .await
            .expect("PING");
        let unnamed = ConnectOptions::new().tls(tls);
        assert!(unnamed.connect(server.addr()).await.is_err());

        // No client certificate: refused.
        let anonymous = TlsOptions::with_ca_file(&pki.ca_file).expect("the CA loads");
        let refused = ConnectOptions::new()
            .tls(anonymous.server_name("localhost").expect("a name"))
            .connect(server.addr())
            .await;
        assert!(refused.is_err(), "served without a client certificate");
    })
    .await;
}

#[tokio::test]
async fn the_rust_client_refuses_a_server_its_ca_did_not_sign() {
    use tagcached_client::{Client, TlsOptions};
    within(async {
        let pki = TestPki::new("server CA");
        let server = tls_server(&pki, false);
        let other = TestPki::new("client's CA");
        let client = Client::builder()
            .server(server.addr().to_string())
            .tls(TlsOptions::with_ca_file(&other.ca_file).expect("the CA loads"))
            .build()
            .expect("a client");
        let error = client.ping().await.expect_err("the handshake fails");
        assert!(error.to_string().contains("certificate"), "{error}");
        assert!(TlsOptions::with_ca_file(pki.dir.path().join("missing.pem")).is_err());
        assert!(
            TlsOptions::with_ca_file(&pki.server_key).is_err(),
            "a key is no CA"
        );
    })
    .await;
}

/// TLS and tokens together: the token is asked for inside TLS, and a
/// connection that authenticated keeps its standing when HELLO moves it,
/// TLS session and all, to another worker.
#[tokio::test]
async fn auth_works_inside_tls_and_survives_the_move_to_another_shard() {
    use tagcached_protocol::request::Auth;
    use tagcached_protocol::ErrorCode;
    let pki = TestPki::new("auth CA");
    let tokens = pki.dir.write("tokens", "tls-token\n");
    let path = |path: &std::path::Path| path.to_str().expect("UTF-8 path").to_owned();
    let (cert, key, tokens) = (path(&pki.server_cert), path(&pki.server_key), path(&tokens));
    let args = [
        "--threads",
        "2",
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--auth-token-file",
        &tokens,
    ];
    let daemon = Daemon::start(&args).await;
    within(async {
        let mut conn = pki.connect(daemon.addr(), false).await.expect("handshake");
        let info = conn.hello(None).await;
        assert!(info
            .features
            .contains(tagcached_protocol::response::Features::AUTH));
        tagcached_tests::assert_error(&conn.run(get_cmd("k")).await, ErrorCode::AuthRequired);
        let auth = Command::Auth(Auth {
            token: bytes::Bytes::from_static(b"tls-token"),
        });
        assert_eq!(conn.run(auth).await, Outcome::Ok);
        let other = 1 - info.shard;
        assert_eq!(conn.hello(Some(other)).await.shard, other);
        conn.store("after-move", "authenticated", &[]).await;
        assert_eq!(
            conn.value("after-move").await.as_deref(),
            Some(&b"authenticated"[..])
        );
    })
    .await;
}
