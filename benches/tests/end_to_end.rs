//! The bench binary against the real tagcached server, started in-process
//! on an ephemeral port. Every run is bounded in time: a bench that hangs
//! is killed and the test fails.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tagcached::{Config, Server};

const BENCH: &str = env!("CARGO_BIN_EXE_tagcached-bench");

fn bench(args: &[&str]) -> Command {
    let mut command = Command::new(BENCH);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Waits for `child` at most `limit`, killing it and failing past that.
fn wait_bounded(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the bench") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the bench did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the bench to completion within `limit`: status, stdout, stderr.
fn run_bounded(args: &[&str], limit: Duration) -> (ExitStatus, String, String) {
    let mut child = bench(args).spawn().expect("start the bench");
    // Pipes are drained on threads so a chatty bench cannot block on them.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).unwrap();
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    });
    let status = wait_bounded(&mut child, limit);
    (status, out.join().unwrap(), err.join().unwrap())
}

/// Runs the bench (for at most a minute), which must succeed and print
/// one JSON object: its report.
fn run_json(args: &[&str]) -> serde_json::Value {
    let (status, stdout, stderr) = run_bounded(args, Duration::from_secs(60));
    assert!(status.success(), "{args:?}: {status}: {stderr}");
    serde_json::from_str(&stdout).expect("one JSON object")
}

fn start_server() -> Server {
    Server::start(Config::local_ephemeral()).expect("start tagcached")
}

#[test]
fn a_one_second_run_reports_json_with_ops_and_no_errors() {
    let server = start_server();
    let addr = server.local_addr().to_string();
    let (status, stdout, stderr) = run_bounded(
        &[
            "--server",
            &addr,
            "--duration",
            "1",
            "--json",
            "--connections",
            "4",
            "--threads",
            "2",
            "--pipeline",
            "4",
            "--keys",
            "2000",
            "--prefill",
            "--tags-per-item",
            "2",
            "--tag-space",
            "50",
            "--invalidate-rate",
            "50",
            "--distribution",
            "zipf:0.9",
            "--delete-ratio",
            "0.05",
            "--get-ratio",
            "0.8",
            "--set-ratio",
            "0.15",
        ],
        Duration::from_secs(60),
    );
    assert!(status.success(), "{status}: {stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert!(json["ops"].as_u64().unwrap() > 0, "{json}");
    assert!(json["ops_per_sec"].as_f64().unwrap() > 0.0);
    assert_eq!(json["errors"], 0, "{json}");
    assert!(
        json["hit_ratio"].as_f64().unwrap() > 0.0,
        "prefilled keys hit: {json}"
    );
    assert!(json["latency_us"]["p50"].as_f64().unwrap() > 0.0);
    assert!(
        json["latency_us"]["p99"].as_f64().unwrap() >= json["latency_us"]["p50"].as_f64().unwrap()
    );
    assert!(json["latency_us"]["p999"].is_number());
    assert_eq!(json["shard_aware"], true);
    assert_eq!(json["shard_count"], 2);
    assert_eq!(
        json["connections"], 5,
        "the invalidator has its own connection"
    );
    for kind in ["get", "set", "delete", "invalidate"] {
        assert!(
            json["per_op"][kind]["ops"].as_u64().unwrap() > 0,
            "{kind}: {json}"
        );
        assert_eq!(json["per_op"][kind]["errors"], 0, "{kind}: {json}");
    }
    assert!(stderr.contains("ops/s"), "a progress line: {stderr}");
}

#[test]
fn an_open_loop_run_sends_exactly_the_requests_asked() {
    let server = start_server();
    let addr = server.local_addr().to_string();
    let (status, stdout, stderr) = run_bounded(
        &[
            "--server",
            &addr,
            "--rate",
            "4000",
            "--requests",
            "2000",
            "--json",
            "-c",
            "3",
            "-t",
            "1",
            "--no-shard-aware",
            "--quiet",
        ],
        Duration::from_secs(60),
    );
    assert!(status.success(), "{status}: {stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["ops"], 2000, "{json}");
    assert_eq!(json["errors"], 0);
    assert_eq!(json["mode"], "open");
    assert_eq!(json["shard_aware"], false);
    assert!(json["send_lag_us"]["p50"].is_number());
    // 2000 requests at 4000/s take about half a second, not less.
    assert!(json["elapsed_s"].as_f64().unwrap() > 0.4, "{json}");
    assert!(stderr.is_empty() || !stderr.contains("error"), "{stderr}");
}

#[test]
fn a_server_that_is_down_is_reported_not_waited_for() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let server = format!("127.0.0.1:{port}");
    let (status, stdout, stderr) = run_bounded(
        &["--server", &server, "--duration", "1"],
        Duration::from_secs(20),
    );
    assert_eq!(status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("cannot connect"), "{stderr}");
    assert!(stdout.is_empty());
}

#[test]
fn a_server_that_stops_mid_run_ends_the_run_with_an_error() {
    let server = start_server();
    let addr = server.local_addr().to_string();
    let mut child = bench(&["--server", &addr, "--duration", "60", "-c", "4", "-t", "1"])
        .spawn()
        .unwrap();
    // Stop the server once the first progress line shows the run is on.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !line.contains("ops/s") {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 || Instant::now() > deadline {
            let _ = child.kill();
            panic!("no progress line from the bench");
        }
    }
    server.shutdown();
    let status = wait_bounded(&mut child, Duration::from_secs(20));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert_eq!(status.code(), Some(1), "{rest}");
    assert!(rest.contains("error"), "{rest}");
    drop(server);
}

#[test]
fn bad_arguments_exit_with_status_2_and_a_reason() {
    for (args, reason) in [
        (&["--connections", "0"][..], "--connections"),
        (&["--value-size", "9..3"], "empty range"),
        (&["--distribution", "zipf:-1"], "zipf"),
        (&["--nonsense"], "unexpected argument"),
        (&["--stampede", "soft"], "--invalidate-rate"),
        (&["--origin-latency", "5"], "--stampede"),
    ] {
        let (status, _, stderr) = run_bounded(args, Duration::from_secs(20));
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
    }
}

/// `--stampede`, one second against the in-process server: the JSON report,
/// and what the mode guarantees whatever the machine's speed.
fn stampede(refresh: &str) -> serde_json::Value {
    let server = start_server();
    let addr = server.local_addr().to_string();
    let json = run_json(&[
        "--server",
        &addr,
        "--stampede",
        refresh,
        "--duration",
        "1",
        "--json",
        "--connections",
        "8",
        "--threads",
        "2",
        "--keys",
        "8",
        "--tag-space",
        "8",
        "--invalidate-rate",
        "20",
        "--origin-latency",
        "5",
        "--rate",
        "2000",
    ]);
    assert_eq!(json["workload"], "stampede");
    assert_eq!(json["refresh"], refresh);
    assert!(json["invalidations"].as_u64().unwrap() > 0, "{json}");
    assert!(json["reads"].as_u64().unwrap() > 0, "{json}");
    assert!(json["latency_us"]["p99"].is_number(), "{json}");
    assert!(json["start_lag_us"]["p50"].is_number(), "{json}");
    assert_eq!(json["keys_per_tag"], 1.0);
    json
}

#[test]
fn a_hard_stampede_run_recomputes_on_every_miss() {
    let json = stampede("hard");
    let count = |name: &str| json[name].as_u64().unwrap();
    assert_eq!((count("stale"), count("hot_misses")), (0, 0), "{json}");
    assert!(count("recomputations") > 0, "{json}");
    assert_eq!(count("sets_lease_lost"), 0, "no leases: {json}");
    assert_eq!(json["soft_window_s"], serde_json::Value::Null);
}

#[test]
fn a_soft_stampede_run_recomputes_once_per_invalidation_and_never_misses() {
    let json = stampede("soft");
    let count = |name: &str| json[name].as_u64().unwrap();
    // Every key is stored before measuring, and a 60 s window outlives the
    // run: readers always have a value, fresh or stale.
    assert_eq!((count("misses"), count("hot_misses")), (0, 0), "{json}");
    // One lease per stale period: one per invalidation of the key's tag
    // (one key each here), plus one per refresh an invalidation fenced.
    assert!(
        count("recomputations") <= count("invalidations") + count("sets_fenced"),
        "{json}"
    );
    assert_eq!(json["soft_window_s"], 60);
}

/// Issue 11: every kind of connection the bench opens (the workload's,
/// the invalidator's, the stampede's) authenticates with
/// `--auth-token-file` when the server requires it, and a run without it
/// fails saying so.
#[test]
fn every_connection_authenticates_with_the_auth_token_file() {
    let dir = std::env::temp_dir().join(format!("tagcached-bench-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let path = dir.join("tokens");
    std::fs::write(&path, "# bench\nbench-token\n").expect("write the token file");
    let mut config = Config::local_ephemeral();
    config.auth = Some(tagcached::auth::AuthConfig {
        token_file: path.clone(),
        tokens: std::sync::Arc::new(
            tagcached::auth::TokenSet::parse("bench-token\n").expect("a token"),
        ),
        timeout: Duration::from_secs(10),
    });
    let server = Server::start(config).expect("start tagcached");
    let addr = server.local_addr().to_string();
    let file = path.to_str().expect("a UTF-8 path");
    let common = [
        "--server",
        &addr,
        "--duration",
        "1",
        "--json",
        "--connections",
        "2",
        "--threads",
        "1",
    ];
    let workload = ["--keys", "100", "--prefill", "--invalidate-rate", "20"];
    let stampede = [
        "--stampede",
        "soft",
        "--keys",
        "4",
        "--tag-space",
        "4",
        "--invalidate-rate",
        "10",
        "--rate",
        "200",
    ];
    for extra in [&workload[..], &stampede[..]] {
        let args: Vec<&str> = common
            .iter()
            .chain(extra)
            .copied()
            .chain(["--auth-token-file", file])
            .collect();
        let json = run_json(&args);
        assert!(
            json["ops"].as_u64().or(json["reads"].as_u64()).unwrap() > 0,
            "{json}"
        );
    }
    let without: Vec<&str> = common.iter().chain(&workload).copied().collect();
    let (status, _, stderr) = run_bounded(&without, Duration::from_secs(60));
    assert!(!status.success());
    assert!(stderr.contains("--auth-token-file"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--tls-ca` against a TLS daemon: the handshake, shard-aware connections
/// moved at HELLO, and replies read through TLS.
#[test]
fn a_tls_run_completes_without_errors() {
    use tagcached_tests::tls::TestPki;
    let pki = TestPki::new("bench CA");
    let mut config = Config::local_ephemeral();
    config.tls = Some(pki.server_files(false));
    let server = Server::start(config).expect("start tagcached with TLS");
    let addr = server.local_addr().to_string();
    let ca = pki.ca_file.to_str().expect("UTF-8 path");
    let (status, stdout, stderr) = run_bounded(
        &[
            "--server",
            &addr,
            "--tls-ca",
            ca,
            "--duration",
            "1",
            "--json",
            "--connections",
            "4",
            "--pipeline",
            "8",
            "--keys",
            "1000",
            "--prefill",
        ],
        Duration::from_secs(60),
    );
    assert!(status.success(), "{status}: {stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert!(json["ops"].as_u64().unwrap() > 0, "{json}");
    assert_eq!(json["errors"], 0, "{json}");
    assert_eq!(json["tls"], true, "{json}");
    assert_eq!(json["shard_aware"], true, "{json}");

    // A plain run against the TLS port fails instead of hanging.
    let (status, _, stderr) = run_bounded(
        &["--server", &addr, "--duration", "1", "--connections", "1"],
        Duration::from_secs(60),
    );
    assert!(!status.success(), "{stderr}");
}

/// `--server-pid` reports the CPU time the named process spent while the
/// bench measured, per request. The server here runs in this test's own
/// process, which is busy serving the run.
#[test]
fn server_pid_reports_the_servers_cpu_time_per_request() {
    let server = start_server();
    let addr = server.local_addr().to_string();
    // A one-second run that asks for the CPU time of `pid`.
    let run = |pid: u32| {
        let pid = pid.to_string();
        let args = [
            "--server",
            &addr,
            "--duration",
            "1",
            "--json",
            "--quiet",
            "--connections",
            "2",
            "--threads",
            "1",
            "--server-pid",
            &pid,
        ];
        let (status, stdout, stderr) = run_bounded(&args, Duration::from_secs(60));
        assert!(status.success(), "{status}: {stderr}");
        let json: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
        (json, stderr)
    };

    let pid = std::process::id();
    let (json, _) = run(pid);
    let cpu = &json["server_cpu"];
    assert_eq!(cpu["pid"], pid, "{json}");
    let seconds = cpu["user_s"].as_f64().unwrap() + cpu["system_s"].as_f64().unwrap();
    assert!(seconds > 0.0, "a second of serving took no CPU: {json}");
    let ops = json["ops"].as_f64().unwrap();
    let per_op = cpu["us_per_op"].as_f64().unwrap();
    assert!(
        (per_op - seconds * 1e6 / ops).abs() <= 1e-6 * per_op,
        "{json}"
    );

    // A process that is not there: the run goes on, and says why the
    // figure is missing.
    let (json, stderr) = run(u32::MAX);
    assert_eq!(json["server_cpu"], serde_json::Value::Null, "{json}");
    assert!(stderr.contains("could not be read"), "{stderr}");
}
