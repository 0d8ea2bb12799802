//! The admin HTTP API (`--admin-port`, README "Operating"): `/metrics`
//! parsed by a Prometheus text-format parser and checked against traffic
//! sent through the data port, `/healthz` and `/readyz`, `/purge` seen
//! through the data port, its refusals, bearer tokens, and the start-up
//! rules.
//!
//! The parser is `prometheus-parse`: the most used parser of the
//! Prometheus text format on crates.io (Apache-2.0). Its last release is
//! from 2023, which matters little: the 0.0.4 format it reads is frozen.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_parse::{Scrape, Value};

use tagcached::auth::TokenSet;
use tagcached::AdminConfig;
use tagcached_protocol::response::Outcome;
use tagcached_protocol::{ErrorCode, Flags};
use tagcached_tests::http::{http, HttpReply};
use tagcached_tests::{keys_on_both_shards, run_to_exit, within, Daemon, Deadline, TestServer};

const TOKEN: &str = "s3cret-admin-token";

/// A two-shard server with the admin API on loopback, requiring `TOKEN`
/// if `with_token`, and at most `max_tags` tags per invalidation.
fn admin_server(with_token: bool, max_tags: u32) -> (TestServer, SocketAddr) {
    let server = TestServer::with_config(|config| {
        config.limits.max_tags = max_tags;
        config.admin = Some(AdminConfig {
            tokens: with_token.then(|| Arc::new(TokenSet::parse(TOKEN).expect("a token"))),
            ..AdminConfig::local_ephemeral()
        });
    });
    let admin = server.admin_addr().expect("the admin API is on");
    (server, admin)
}

fn bearer() -> (&'static str, String) {
    ("Authorization", format!("Bearer {TOKEN}"))
}

async fn get(admin: SocketAddr, path: &str) -> HttpReply {
    http(admin, "GET", path, &[], b"").await
}

async fn purge(admin: SocketAddr, body: &str) -> HttpReply {
    let headers = [("Content-Type", "application/json")];
    http(admin, "POST", "/purge", &headers, body.as_bytes()).await
}

/// `/metrics`, parsed.
async fn scrape(admin: SocketAddr) -> Scrape {
    let reply = get(admin, "/metrics").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let lines = reply.body.lines().map(|line| Ok(line.to_owned()));
    Scrape::parse(lines).expect("the Prometheus text format")
}

/// The value of the counter or gauge `name` with exactly `labels`.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let sample = scrape
        .samples
        .iter()
        .find(|sample| {
            sample.metric == name
                && sample.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(label, value)| sample.labels.get(label) == Some(value))
        })
        .unwrap_or_else(|| panic!("no sample {name}{labels:?}"));
    match sample.value {
        Value::Counter(value) | Value::Gauge(value) | Value::Untyped(value) => value,
        ref other => panic!("{name}: not a single value: {other:?}"),
    }
}

/// `name`{shard="0"} + `name`{shard="1"} (+ `extra` labels), checking
/// both shards report it.
fn both_shards(scrape: &Scrape, name: &str, extra: &[(&str, &str)]) -> f64 {
    ["0", "1"]
        .iter()
        .map(|shard| {
            let mut labels = vec![("shard", *shard)];
            labels.extend_from_slice(extra);
            value(scrape, name, &labels)
        })
        .sum()
}

/// The `_count` of `tagcached_command_duration_seconds{command}`, after
/// checking its buckets: cumulative, ending in `+Inf` at the count.
fn command_count(scrape: &Scrape, command: &str) -> f64 {
    let histogram = scrape
        .samples
        .iter()
        .find(|sample| {
            sample.metric == "tagcached_command_duration_seconds"
                && sample.labels.get("command") == Some(command)
        })
        .unwrap_or_else(|| panic!("no histogram for {command}"));
    let Value::Histogram(buckets) = &histogram.value else {
        panic!("{command}: not a histogram: {:?}", histogram.value)
    };
    assert!(buckets.len() > 10, "{buckets:?}");
    assert!(buckets
        .windows(2)
        .all(|pair| pair[0].less_than < pair[1].less_than && pair[0].count <= pair[1].count));
    let last = buckets.last().expect("buckets");
    assert!(last.less_than.is_infinite());
    let count = value(
        scrape,
        "tagcached_command_duration_seconds_count",
        &[("command", command)],
    );
    assert_eq!(last.count, count, "{command}: +Inf bucket vs _count");
    count
}

#[tokio::test]
async fn metrics_follow_traffic_on_the_data_port() {
    let (server, admin) = admin_server(false, 64);
    within(async {
        let before = scrape(admin).await;
        for name in [
            "tagcached_get_hits_total",
            "tagcached_entries",
            "tagcached_tags_tracked",
        ] {
            assert_eq!(both_shards(&before, name, &[]), 0.0, "{name}");
        }
        assert_eq!(command_count(&before, "GET"), 0.0);
        for name in before.samples.iter().map(|sample| &sample.metric) {
            assert!(name.starts_with("tagcached_"), "{name}");
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|base| before.docs.contains_key(*base))
                .unwrap_or(name);
            assert!(before.docs.contains_key(family), "{name} has no HELP");
        }

        let keys = keys_on_both_shards("metrics");
        let mut conn = server.connect().await;
        for key in &keys {
            conn.store(key, "v", &["t"]).await;
            conn.get_hit(key).await;
        }
        conn.get_miss("metrics-absent").await;
        let seq = conn.invalidate(&["t"]).await;
        for key in &keys {
            conn.get_miss(key).await;
        }

        let after = scrape(admin).await;
        assert_eq!(both_shards(&after, "tagcached_get_hits_total", &[]), 2.0);
        assert_eq!(both_shards(&after, "tagcached_get_misses_total", &[]), 3.0);
        // The GET or, first, the sweep removed each invalidated entry; only
        // a GET counts a miss as invalidated.
        assert_eq!(
            both_shards(&after, "tagcached_invalidated_reclaimed_total", &[]),
            2.0
        );
        assert!(both_shards(&after, "tagcached_get_misses_invalidated_total", &[]) <= 2.0);
        let stored = [("outcome", "stored")];
        assert_eq!(both_shards(&after, "tagcached_sets_total", &stored), 2.0);
        assert_eq!(
            both_shards(&after, "tagcached_memory_limit_bytes", &[]),
            (64 << 20) as f64
        );
        assert_eq!(
            value(&after, "tagcached_invalidations_total", &[("mode", "hard")]),
            1.0
        );
        assert_eq!(
            value(&after, "tagcached_invalidations_total", &[("mode", "soft")]),
            0.0
        );
        assert_eq!(
            value(&after, "tagcached_invalidations_numbered_total", &[]),
            1.0
        );
        assert!(seq > 1 << 53, "the sequence starts near 2^60: {seq}");
        assert_eq!(value(&after, "tagcached_connections", &[]), 1.0);
        assert_eq!(command_count(&after, "GET"), 5.0);
        assert_eq!(command_count(&after, "SET"), 2.0);
        assert_eq!(command_count(&after, "INVALIDATE_TAGS"), 1.0);
        assert_eq!(command_count(&after, "GETM"), 0.0);
        let get_sum = value(
            &after,
            "tagcached_command_duration_seconds_sum",
            &[("command", "GET")],
        );
        assert!(get_sum > 0.0 && get_sum < 30.0, "{get_sum}");
    })
    .await;
}

#[tokio::test]
async fn healthz_and_readyz_answer_and_readyz_fails_once_stopping() {
    let (server, admin) = admin_server(false, 64);
    within(async {
        let alive = get(admin, "/healthz").await;
        assert_eq!(
            (alive.status, alive.json()["status"].as_str()),
            (200, Some("alive"))
        );
        let ready = get(admin, "/readyz").await;
        assert_eq!(ready.status, 200, "{}", ready.body);
        assert_eq!(ready.json()["ready"], true);
        assert_eq!(ready.json()["workers"], 2);

        // An open connection keeps the workers (and the admin API) up
        // through the shutdown's grace period.
        let mut conn = server.connect().await;
        conn.ping().await;
        server.begin_shutdown();
        let stopping = get(admin, "/readyz").await;
        assert_eq!(stopping.status, 503, "{}", stopping.body);
        assert_eq!(stopping.json()["stopping"], true);
        assert_eq!(get(admin, "/healthz").await.status, 200);
    })
    .await;
}

#[tokio::test]
async fn purge_invalidates_what_the_data_port_serves() {
    let (server, admin) = admin_server(false, 64);
    within(async {
        let mut conn = server.connect().await;
        let keys = keys_on_both_shards("purged");
        for key in &keys {
            conn.store(key, "v", &["post:3"]).await;
            conn.get_hit(key).await;
        }
        conn.store("kept", "v", &["other"]).await;
        let before = conn.invalidate(&["unrelated"]).await;

        let purged = purge(admin, r#"{"tags": ["post:3", "posts"]}"#).await;
        assert_eq!(purged.status, 200, "{}", purged.body);
        let json = purged.json();
        assert_eq!(json["success"], true);
        let sequence = json["sequence"]
            .as_str()
            .expect("the sequence, as a string");
        assert_eq!(sequence.parse::<u64>().ok(), Some(before + 1));
        for key in &keys {
            conn.get_miss(key).await;
        }
        conn.get_hit("kept").await;
        assert_eq!(conn.invalidate(&["unrelated"]).await, before + 2);
    })
    .await;
}

#[tokio::test]
async fn a_soft_purge_leaves_entries_stale_for_allow_stale_reads() {
    let (server, admin) = admin_server(false, 64);
    within(async {
        let mut conn = server.connect().await;
        let keys = keys_on_both_shards("soft-purged");
        for key in &keys {
            conn.store(key, "old", &["posts"]).await;
        }
        let purged = purge(admin, r#"{"tags": ["posts"], "soft": true, "expire": 600}"#).await;
        assert_eq!(purged.status, 200, "{}", purged.body);
        for key in &keys {
            match conn.get_with(Flags::ALLOW_STALE, key).await {
                Outcome::Stale(hit) => assert_eq!(&hit.value[..], b"old"),
                other => panic!("{key}: expected STALE, got {other:?}"),
            }
            conn.get_miss(key).await;
        }
        let metrics = scrape(admin).await;
        assert_eq!(
            value(
                &metrics,
                "tagcached_invalidations_total",
                &[("mode", "soft")]
            ),
            1.0
        );
        assert_eq!(
            both_shards(&metrics, "tagcached_get_stale_hits_total", &[]),
            2.0
        );
    })
    .await;
}

#[tokio::test]
async fn bad_purges_get_clear_4xx_answers() {
    let (server, admin) = admin_server(false, 2);
    within(async {
        let cases: [(&str, u16, &str); 8] = [
            ("{not json", 400, "BAD_JSON"),
            (r#"{"tags": "posts"}"#, 400, "BAD_JSON"),
            (r#"{"tags": ["a"], "files": ["/x"]}"#, 400, "BAD_JSON"),
            (r#"{"tags": []}"#, 400, "NO_TAGS"),
            (r#"{"tags": ["a", "b", "c"]}"#, 400, "TOO_MANY_TAGS"),
            (r#"{"tags": ["two words"]}"#, 400, "TAG_INVALID"),
            (r#"{"tags": ["a"], "soft": true}"#, 400, "BAD_REQUEST"),
            (r#"{"tags": ["a"], "expire": 60}"#, 400, "BAD_REQUEST"),
        ];
        for (body, status, code) in cases {
            let reply = purge(admin, body).await;
            assert_eq!(
                (reply.status, reply.error_code()),
                (status, code.to_owned()),
                "{body}"
            );
        }
        let wrong_method = get(admin, "/purge").await;
        assert_eq!(
            (wrong_method.status, wrong_method.header("allow")),
            (405, Some("POST"))
        );
        assert_eq!(wrong_method.error_code(), "METHOD_NOT_ALLOWED");
        let post_metrics = http(admin, "POST", "/metrics", &[], b"").await;
        assert_eq!(post_metrics.status, 405);
        let unknown = get(admin, "/nope").await;
        assert_eq!(
            (unknown.status, unknown.error_code()),
            (404, "NOT_FOUND".to_owned())
        );
        // Declared too large: refused before a byte of the body is read.
        let declared = [("Content-Length", "1000000")];
        let too_large = http(admin, "POST", "/purge", &declared, b"").await;
        assert_eq!(
            (too_large.status, too_large.error_code()),
            (413, "PAYLOAD_TOO_LARGE".to_owned())
        );
        // None of it was numbered or reached the shards.
        let metrics = scrape(admin).await;
        assert_eq!(
            value(
                &metrics,
                "tagcached_invalidations_total",
                &[("mode", "hard")]
            ),
            0.0
        );
        assert_eq!(
            both_shards(&metrics, "tagcached_tag_invalidations_total", &[]),
            0.0
        );
        let numbered = "tagcached_invalidations_numbered_total";
        assert_eq!(value(&metrics, numbered, &[]), 0.0);
        let mut conn = server.connect().await;
        conn.invalidate(&["a"]).await;
        assert_eq!(value(&scrape(admin).await, numbered, &[]), 1.0);
    })
    .await;
}

#[tokio::test]
async fn a_token_is_required_everywhere_but_healthz() {
    let (_server, admin) = admin_server(true, 64);
    within(async {
        assert_eq!(get(admin, "/healthz").await.status, 200);
        for path in ["/metrics", "/readyz", "/nope"] {
            let refused = get(admin, path).await;
            assert_eq!(refused.status, 401, "{path}");
            assert_eq!(refused.header("www-authenticate"), Some("Bearer"), "{path}");
            assert_eq!(refused.error_code(), "UNAUTHORIZED");
        }
        let wrong = [("Authorization", "Bearer not-the-token")];
        assert_eq!(
            http(admin, "GET", "/metrics", &wrong, b"").await.status,
            401
        );
        let basic = [("Authorization", "Basic czNjcmV0")];
        assert_eq!(
            http(admin, "GET", "/metrics", &basic, b"").await.status,
            401
        );
        let unauthorized = purge(admin, r#"{"tags": ["x"]}"#).await;
        assert_eq!(unauthorized.status, 401);

        let (name, value) = bearer();
        let headers = [(name, value.as_str())];
        assert_eq!(
            http(admin, "GET", "/metrics", &headers, b"").await.status,
            200
        );
        assert_eq!(
            http(admin, "GET", "/readyz", &headers, b"").await.status,
            200
        );
        let body = br#"{"tags": ["x"]}"#;
        let purged = http(admin, "POST", "/purge", &headers, body).await;
        assert_eq!(purged.status, 200, "{}", purged.body);
    })
    .await;
}

/// The data port's token file may serve the admin port too; `/metrics`
/// counts what authentication refused.
#[tokio::test]
async fn auth_counters_are_exported_and_one_token_file_can_serve_both_ports() {
    let file = std::env::temp_dir().join(format!("tagcached-both-{}", std::process::id()));
    std::fs::write(&file, "shared-token\n").expect("write the token file");
    let path = file.to_str().expect("UTF-8 path").to_owned();
    let args = [
        "--auth-token-file",
        path.as_str(),
        "--admin-port",
        "0",
        "--admin-token-file",
        path.as_str(),
    ];
    let daemon = Daemon::start(&args).await;
    let admin = daemon.admin_addr().expect("the admin API is on");
    within(async {
        let mut conn = daemon.connect().await;
        match conn.get("k").await {
            Outcome::Error(error) => assert_eq!(error.code, ErrorCode::AuthRequired),
            other => panic!("GET before AUTH answered {other:?}"),
        }
        let headers = [("Authorization", "Bearer shared-token")];
        let reply = http(admin, "GET", "/metrics", &headers, b"").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let lines = reply.body.lines().map(|line| Ok(line.to_owned()));
        let metrics = Scrape::parse(lines).expect("the Prometheus text format");
        assert_eq!(value(&metrics, "tagcached_auth_refusals_total", &[]), 1.0);
        assert_eq!(value(&metrics, "tagcached_auth_failures_total", &[]), 0.0);
        assert_eq!(
            command_count(&metrics, "GET"),
            1.0,
            "refused requests are timed too"
        );
    })
    .await;
    let _ = std::fs::remove_file(&file);
}

/// The admin port may face a network: a client that sends half a request
/// head is cut off (`HEADER_READ_TIMEOUT`, 5 s), and connections past
/// `MAX_CONNECTIONS` (64) are closed as accepted, until slots free up.
#[tokio::test]
async fn slow_heads_are_cut_off_and_connections_are_capped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    let (_server, admin) = admin_server(false, 64);
    within(async {
        let mut slow = TcpStream::connect(admin).await.expect("connect");
        slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write half a head");
        let started = std::time::Instant::now();
        let mut answer = Vec::new();
        // Answered 408 or just closed; either way the connection ends.
        let _ = tokio::time::timeout(Duration::from_secs(15), slow.read_to_end(&mut answer))
            .await
            .expect("the slow connection is closed");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_secs(4), "closed after {waited:?}");

        let mut idle = Vec::new();
        for _ in 0..64 {
            idle.push(TcpStream::connect(admin).await.expect("connect"));
        }
        // The slots are taken once the admin thread has accepted all 64.
        let deadline = Deadline::new("the 65th connection to be closed", Duration::from_secs(5));
        loop {
            let mut extra = TcpStream::connect(admin).await.expect("connect");
            let _ = extra
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .await;
            let mut answer = Vec::new();
            let read =
                tokio::time::timeout(Duration::from_secs(2), extra.read_to_end(&mut answer)).await;
            if matches!(read, Ok(Ok(0)) | Ok(Err(_))) && answer.is_empty() {
                break;
            }
            deadline.tick().await;
        }
        drop(idle);
        let deadline = Deadline::new("a slot to free up", Duration::from_secs(5));
        loop {
            let mut again = TcpStream::connect(admin).await.expect("connect");
            let _ = again
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await;
            let mut answer = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(2), again.read_to_end(&mut answer)).await;
            if answer.starts_with(b"HTTP/1.1 200") {
                break;
            }
            deadline.tick().await;
        }
    })
    .await;
}

#[tokio::test]
async fn the_admin_api_is_off_unless_asked() {
    let server = TestServer::start();
    assert_eq!(server.admin_addr(), None);
    let mut daemon = Daemon::start(&["--threads", "1"]).await;
    assert_eq!(daemon.admin_addr(), None);
    let log = daemon.drain_log().join("\n");
    assert!(!log.contains("admin"), "{log}");
}

#[tokio::test]
async fn an_admin_port_beyond_loopback_without_a_token_refuses_to_start() {
    // Refused while validating the flags, before anything is bound.
    let output = run_to_exit(
        &[
            "--port",
            "0",
            "--admin-port",
            "0",
            "--admin-bind",
            "0.0.0.0",
        ],
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--admin-token-file") && stderr.contains("/purge"),
        "{stderr}"
    );
    let empty = std::env::temp_dir().join(format!("tagcached-empty-{}", std::process::id()));
    std::fs::write(&empty, "# no token yet\n").expect("write");
    let path = empty.to_str().expect("UTF-8 path");
    let output = run_to_exit(
        &[
            "--port",
            "0",
            "--admin-port",
            "0",
            "--admin-token-file",
            path,
        ],
        &[],
    )
    .await;
    let _ = std::fs::remove_file(&empty);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("holds no token"));
}

#[tokio::test]
async fn sighup_reloads_the_token_file_and_keeps_the_old_tokens_on_a_bad_one() {
    let file = std::env::temp_dir().join(format!("tagcached-admin-{}", std::process::id()));
    std::fs::write(&file, "# admin\nfirst-token\n").expect("write the token file");
    let path = file.to_str().expect("UTF-8 path").to_owned();
    let mut daemon = Daemon::start(&["--admin-port", "0", "--admin-token-file", &path]).await;
    let admin = daemon.admin_addr().expect("the admin API is on");
    let status_with = |token: &'static str| async move {
        let header = format!("Bearer {token}");
        http(admin, "GET", "/readyz", &[("Authorization", &header)], b"")
            .await
            .status
    };
    within(async {
        assert_eq!(status_with("first-token").await, 200);
        assert_eq!(status_with("second-token").await, 401);

        std::fs::write(&file, "second-token\n").expect("rewrite the token file");
        daemon.hang_up().await;
        let deadline = Deadline::new("the new token", Duration::from_secs(5));
        while status_with("second-token").await != 200 {
            deadline.tick().await;
        }
        assert_eq!(status_with("first-token").await, 401);

        // An unusable file: the tokens in force stay.
        std::fs::write(&file, "\n# emptied by mistake\n").expect("empty the token file");
        daemon.hang_up().await;
        // Only the log says the reload failed.
        let deadline = Deadline::new("the failed reload's log line", Duration::from_secs(5));
        while !daemon
            .drain_log()
            .iter()
            .any(|line| line.contains("could not reload the admin tokens"))
        {
            deadline.tick().await;
        }
        assert_eq!(status_with("second-token").await, 200);
    })
    .await;
    let _ = std::fs::remove_file(&file);
}
