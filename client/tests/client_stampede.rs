//! A stampede across processes (issue 9): a thousand concurrent cache-aside
//! calls for one missing key, from two OS processes over a dozen
//! connections, compute the value once, and every caller gets it.
//!
//! The second process is this test binary run again, told by
//! [`SECOND_PROCESS`] where the server is; it runs only
//! [`stampede_second_process`], which does nothing in an ordinary run. Both
//! processes count what they do through the daemon itself, so that each
//! sees the other: a caller SETs a marker tagged [`ARRIVED`] before it
//! fetches, a computation SETs one tagged [`COMPUTED`], and TAG_STATUS
//! counts the entries carrying each tag. The computation holds on until
//! all the callers of both processes have arrived, so they all meet it.

mod support;

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::join_all;
use tagcached_client::{Client, Error, FetchOptions, FetchOutcome, SetOptions};

use support::cli::run;
use support::{bounded, start_server_with};

/// Where the second process finds the server; unset in an ordinary run.
const SECOND_PROCESS: &str = "TAGCACHED_STAMPEDE_SERVER";
/// Callers in each process.
const CALLERS_PER_PROCESS: usize = 500;
const PROCESSES: usize = 2;
/// Connections per lane in each process: the key's lane alone then has
/// this many, so the callers are spread over at least twice as many.
const POOL_SIZE: usize = 6;
const KEY: &str = "stampede:page";
const VALUE: &str = "<h1>computed once</h1>";
/// The tag of the callers' arrival markers.
const ARRIVED: &str = "stampede:arrived";
/// The tag of the computations' markers.
const COMPUTED: &str = "stampede:computed";
/// Longer than the computation can take waiting for the callers, so that
/// nobody gives up waiting and computes.
const MAX_WAIT: Duration = Duration::from_secs(25);

/// A client of `server` that spreads its calls over several connections.
fn client(server: &str) -> Client {
    Client::builder()
        .server(server)
        .pool_size(POOL_SIZE)
        .build()
        .expect("client")
}

/// How many entries carry `tag`, summed over the client's servers.
async fn entries(cache: &Client, tag: &str) -> u64 {
    let reports = cache.tag_status([tag]).await.expect("tag status");
    reports.iter().map(|report| report.tags[0].entries).sum()
}

/// One process's share of the stampede: its callers, all at once, each
/// marking its arrival and then fetching the key; their outcomes.
async fn stampede(server: &str, process: usize) -> Vec<FetchOutcome> {
    let cache = client(server);
    let options = FetchOptions::new()
        .tag("stampede")
        .max_wait(MAX_WAIT)
        .ttl(Duration::from_secs(600));
    let arrived = SetOptions::new().tag(ARRIVED);
    let computed = SetOptions::new().tag(COMPUTED);
    let callers = (0..CALLERS_PER_PROCESS).map(|caller| {
        let (cache, options, arrived, computed) = (&cache, &options, &arrived, &computed);
        async move {
            let marker = format!("arrived:{process}:{caller}");
            cache.set(marker, "", arrived).await.expect("mark arrival");
            let fetched = cache
                .fetch(KEY, options, |_| async move {
                    let marker = format!("computed:{process}:{caller}");
                    cache.set(marker, "", computed).await?;
                    // Hold on until every caller of both processes has
                    // arrived: then they all overlap this computation.
                    let everyone = (CALLERS_PER_PROCESS * PROCESSES) as u64;
                    while entries(cache, ARRIVED).await < everyone {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Ok::<_, Error>(VALUE)
                })
                .await
                .expect("fetch");
            assert_eq!(fetched.value, Bytes::from_static(VALUE.as_bytes()));
            fetched.outcome
        }
    });
    join_all(callers).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_callers_in_two_processes_compute_a_missing_value_once() {
    bounded(async {
        // The computation waits for the second process to start: keep its
        // lease past that, so that no waiter is granted a second one.
        let server = start_server_with(|config| config.lease_time = Duration::from_secs(60));
        let addr = server.local_addr().to_string();
        let mut second = Command::new(std::env::current_exe().expect("this test binary"));
        second
            .args(["--exact", "stampede_second_process", "--nocapture"])
            .env(SECOND_PROCESS, &addr);
        let second = tokio::task::spawn_blocking(move || run(second, b""));

        let outcomes = stampede(&addr, 0).await;
        let second = second.await.expect("the second process ran");
        assert_eq!(second.code, Some(0), "the second process: {second:?}");

        let cache = client(&addr);
        assert_eq!(entries(&cache, COMPUTED).await, 1, "computed exactly once");
        let computed_here = outcomes
            .iter()
            .filter(|outcome| **outcome == FetchOutcome::Computed)
            .count();
        assert!(computed_here <= 1, "{outcomes:?}");
        assert!(
            outcomes.iter().all(|outcome| matches!(
                outcome,
                FetchOutcome::Computed | FetchOutcome::Waited | FetchOutcome::Hit
            )),
            "{outcomes:?}"
        );
        let stats = cache.stats().await.remove(0).1.expect("stats");
        let connections: u64 = stats
            .iter()
            .find(|(name, _)| name == "total_connections")
            .and_then(|(_, value)| value.parse().ok())
            .expect("total_connections");
        assert!(
            connections >= (POOL_SIZE * PROCESSES) as u64,
            "over {connections} connections"
        );
    })
    .await;
}

/// The second process of the stampede; does nothing unless
/// [`SECOND_PROCESS`] names a server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stampede_second_process() {
    let Ok(server) = std::env::var(SECOND_PROCESS) else {
        return;
    };
    bounded(async {
        let outcomes = stampede(&server, 1).await;
        assert_eq!(outcomes.len(), CALLERS_PER_PROCESS);
    })
    .await;
}
