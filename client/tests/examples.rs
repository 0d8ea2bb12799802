//! The examples run against servers someone else uses (`TAGCACHED_SERVER`):
//! they flush nothing and leave every entry they did not write as they
//! found it, even entries under the very keys and tags they use.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use bytes::Bytes;
use tagcached_client::{Connection, SetOptions};

use support::cli::run;
use support::{bounded, start_server, stop_server};

/// The example `name`'s binary, built on first use.
///
/// Cargo gives integration tests the path of the package's binaries, not
/// of its examples, so this finds them (`<target>/<profile>/examples/`)
/// after `cargo build --examples` for the target directory and profile of
/// this test, with the workspace and features that CI tests, so that the
/// build is a no-op after `cargo test --workspace --all-features` (which
/// builds the examples) and never runs a stale one otherwise.
fn example(name: &str) -> PathBuf {
    static PROFILE_DIR: OnceLock<PathBuf> = OnceLock::new();
    let profile_dir = PROFILE_DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test executable's path");
        // <target>/<profile>/deps/<test>-<hash>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test executable is in <target>/<profile>/deps");
        let target_dir = profile_dir.parent().expect("<target>/<profile>");
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("client/ is inside the workspace");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .current_dir(workspace)
            .env("CARGO_TARGET_DIR", target_dir)
            .args(["build", "--quiet", "--workspace", "--all-features"])
            .arg("--examples");
        match profile_dir.file_name().and_then(|name| name.to_str()) {
            Some("debug") => {}
            Some("release") => {
                build.arg("--release");
            }
            Some(profile) => {
                build.args(["--profile", profile]);
            }
            None => panic!("no profile directory in {}", exe.display()),
        }
        let status = build.status().expect("run cargo to build the examples");
        assert!(status.success(), "building the examples failed: {status}");
        profile_dir.to_path_buf()
    });
    let binary = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(binary.is_file(), "no example at {}", binary.display());
    binary
}

/// An entry of someone else's, under a name an example uses.
struct Sentinel {
    key: &'static str,
    tag: &'static str,
}

/// For each example, entries under the keys and tags it uses when it
/// starts its own server.
const SENTINELS: [Sentinel; 6] = [
    // basic
    Sentinel {
        key: "user:42:name",
        tag: "user:42",
    },
    Sentinel {
        key: "product:1",
        tag: "products",
    },
    // web_handler
    Sentinel {
        key: "v1:user:3:profile",
        tag: "user:3",
    },
    // cluster
    Sentinel {
        key: "product:7",
        tag: "catalog",
    },
    // measure_pool
    Sentinel {
        key: "key:5",
        tag: "measure",
    },
    // Named by none: only a FLUSH_ALL would remove it.
    Sentinel {
        key: "unrelated",
        tag: "unrelated",
    },
];

const SENTINEL_VALUE: &str = "someone else's";

/// Issue 8: `web_handler` flushed the server named by `TAGCACHED_SERVER`,
/// and the examples wrote and invalidated fixed names on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_on_a_server_they_did_not_start_leave_its_entries_alone() {
    // Built before the bounded part, as a first build can take minutes.
    let binaries = tokio::task::spawn_blocking(|| {
        ["basic", "web_handler", "cluster", "measure_pool"].map(|name| (name, example(name)))
    })
    .await
    .expect("build the examples");
    bounded(async {
        let servers = [start_server(), start_server()];
        let addrs: Vec<String> = servers
            .iter()
            .map(|server| server.local_addr().to_string())
            .collect();
        let connections = [
            Connection::connect(addrs[0].as_str())
                .await
                .expect("connect"),
            Connection::connect(addrs[1].as_str())
                .await
                .expect("connect"),
        ];
        for connection in &connections {
            for sentinel in &SENTINELS {
                let options = SetOptions::new().tag(sentinel.tag);
                let stored = connection
                    .set(sentinel.key, SENTINEL_VALUE, &options)
                    .await
                    .expect("set");
                assert!(stored.is_stored());
            }
        }

        for (name, binary) in binaries {
            let mut command = Command::new(binary);
            let servers = if name == "cluster" {
                addrs.join(",")
            } else {
                addrs[0].clone()
            };
            command.env("TAGCACHED_SERVER", servers);
            if name == "measure_pool" {
                // Tasks, requests per task, runs: enough to exercise it.
                command.args(["4", "20", "1"]);
            }
            let output = tokio::task::spawn_blocking(move || run(command, b""))
                .await
                .expect("run the example");
            assert_eq!(output.code, Some(0), "{name}: {output:?}");
            assert_left_alone(name, &connections, &addrs).await;
            assert!(
                output
                    .stdout_text()
                    .contains("under the key and tag prefix"),
                "{name} says it uses a prefix: {output:?}"
            );
        }
        for server in servers {
            stop_server(server).await;
        }
    })
    .await;
}

/// Fails unless every sentinel on both servers has its value, and neither
/// server was flushed, after running `example`.
async fn assert_left_alone(example: &str, connections: &[Connection; 2], addrs: &[String]) {
    for (connection, addr) in connections.iter().zip(addrs) {
        for sentinel in &SENTINELS {
            let item = connection.get(sentinel.key).await.expect("get");
            assert_eq!(
                item.map(|item| item.value),
                Some(Bytes::from(SENTINEL_VALUE)),
                "{example} left {} on {addr} alone",
                sentinel.key
            );
        }
        let stats = connection.stats().await.expect("stats");
        let flushes = stats
            .iter()
            .find(|(name, _)| name == "cmd_flush")
            .map(|(_, value)| value.as_str());
        assert_eq!(flushes, Some("0"), "{example} flushed nothing on {addr}");
    }
}
