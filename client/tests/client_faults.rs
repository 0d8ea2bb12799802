//! A [`Client`] when servers fail: killed and restarted mid-run, requests
//! that time out, servers that stop answering and are marked down.

mod support;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::join_all;
use futures_util::{FutureExt, StreamExt};
use tagcached_client::{Client, Error, Lookup, SetOptions};
use tagcached_protocol::response::{Lease, Miss};
use tagcached_protocol::{Outcome, ServerCodec};
use tokio::net::TcpListener;
use tokio_util::codec::Framed;

use support::fake_peer::{answer, answer_hello, hit, receive, Peer};
use support::{bounded, eventually, start_server, start_server_at, stop_server, Proxy};

fn fast_failing_client(addr: impl ToString) -> Client {
    Client::builder()
        .server(addr.to_string())
        .connect_timeout(Duration::from_millis(500))
        .request_timeout(Duration::from_millis(500))
        .failure_threshold(3)
        .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(100))
        .build()
        .expect("client")
}

/// What the tasks of the restart test saw.
#[derive(Default)]
struct Tally {
    successes: AtomicUsize,
    errors: AtomicUsize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_and_restarted_mid_run_fails_requests_cleanly_and_recovers() {
    bounded(async {
        let server = start_server();
        let addr = server.local_addr();
        let client = fast_failing_client(addr);
        let tally = Arc::new(Tally::default());
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = (0..100)
            .map(|task| {
                let (client, tally, stop) = (client.clone(), tally.clone(), stop.clone());
                tokio::spawn(async move { own_keys_loop(task, client, tally, stop).await })
            })
            .collect();

        eventually(Duration::from_secs(10), "traffic before the kill", || {
            tally.successes.load(Ordering::SeqCst) >= 2000
        })
        .await;
        stop_server(server).await;
        eventually(Duration::from_secs(10), "failures while it is down", || {
            tally.errors.load(Ordering::SeqCst) >= 100
        })
        .await;
        eventually(Duration::from_secs(10), "marked down while dead", || {
            client.server_status()[0].down
        })
        .await;

        let server = start_server_at(addr);
        let recovered_from = tally.successes.load(Ordering::SeqCst);
        eventually(Duration::from_secs(10), "traffic after the restart", || {
            tally.successes.load(Ordering::SeqCst) >= recovered_from + 2000
        })
        .await;
        stop.store(true, Ordering::SeqCst);
        for task in tasks {
            task.await.expect("a task saw its own values only");
        }
        assert!(!client.server_status()[0].down, "back up");
        drop(server);
    })
    .await;
}

/// Writes and reads keys only this task writes, until `stop`, checking
/// every hit is a value this task wrote to that key.
async fn own_keys_loop(task: usize, client: Client, tally: Arc<Tally>, stop: Arc<AtomicBool>) {
    let options = SetOptions::new().tag(format!("task:{task}"));
    let mut written: HashMap<String, Vec<Bytes>> = HashMap::new();
    let mut round = 0usize;
    while !stop.load(Ordering::SeqCst) {
        round += 1;
        let key = format!("task:{task}:key:{}", round % 4);
        let value = Bytes::from(format!("{key}:round:{round}"));
        written.entry(key.clone()).or_default().push(value.clone());
        match client.set(&key, value, &options).await {
            Ok(outcome) => {
                assert!(outcome.is_stored());
                tally.successes.fetch_add(1, Ordering::SeqCst);
            }
            Err(error) => {
                assert!(error.is_unavailable(), "{error}");
                tally.errors.fetch_add(1, Ordering::SeqCst);
                // Failing fast while down: give the others the CPU.
                tokio::task::yield_now().await;
            }
        }
        match client.get(&key).await {
            Ok(Some(item)) => {
                assert!(
                    written[&key].contains(&item.value),
                    "task {task} read {:?} under {key}",
                    item.value
                );
                tally.successes.fetch_add(1, Ordering::SeqCst);
            }
            Ok(None) => {}
            Err(error) => {
                assert!(error.is_unavailable(), "{error}");
                tally.errors.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_cut_off_mid_request_fails_requests_in_flight_and_comes_back() {
    bounded(async {
        let server = start_server();
        let proxy = Proxy::start(server.local_addr()).await;
        let client = fast_failing_client(proxy.addr());
        client.set("k", "v", &SetOptions::new()).await.expect("set");
        // Two hundred requests in flight when the connections are cut: one
        // poll of each submits it.
        let mut answered = Vec::new();
        let mut in_flight = Vec::new();
        for _ in 0..200 {
            let mut read = Box::pin(client.get("k"));
            match (&mut read).now_or_never() {
                Some(result) => answered.push(result),
                None => in_flight.push(read),
            }
        }
        proxy.cut();
        answered.extend(join_all(in_flight).await);
        for read in answered {
            match read {
                Ok(Some(item)) => assert_eq!(item.value, Bytes::from_static(b"v")),
                Ok(None) => panic!("a miss for a stored key"),
                Err(error) => assert!(error.is_connection_error(), "{error}"),
            }
        }
        // Overlapping failures count once: one cut is not three failures.
        let status = &client.server_status()[0];
        assert!(
            status.consecutive_failures <= 1 && !status.down,
            "{status:?}"
        );

        proxy.restore();
        // A request may still meet the broken connection if the client has
        // not read its end yet; the next one reconnects.
        let started = Instant::now();
        let hit = loop {
            match client.get("k").await {
                Ok(hit) => break hit.expect("hit"),
                Err(error) => assert!(error.is_connection_error(), "{error}"),
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "never reconnected"
            );
        };
        assert_eq!(hit.value, Bytes::from_static(b"v"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_answering_times_out_then_is_marked_down_and_misses() {
    bounded(async {
        let addr = silent_after_hello().await;
        let client = Client::builder()
            .server(addr.to_string())
            .request_timeout(Duration::from_millis(50))
            .failure_threshold(3)
            .reconnect_backoff(Duration::from_secs(60), Duration::from_secs(60))
            .build()
            .expect("client");
        for _ in 0..3 {
            let started = Instant::now();
            let error = client.get("k").await.expect_err("no answer");
            assert!(matches!(error, Error::Timeout(_)), "{error}");
            assert!(started.elapsed() < Duration::from_secs(2));
        }
        assert!(client.server_status()[0].down);
        // Down: reads miss and writes fail at once, without a round trip.
        let started = Instant::now();
        assert_eq!(
            client.get_with_fence("k").await.expect("miss"),
            Lookup::unavailable()
        );
        let error = client
            .set("k", "v", &SetOptions::new())
            .await
            .expect_err("down");
        assert!(matches!(error, Error::ServerDown { .. }), "{error}");
        assert_eq!(client.get_many(["a", "b"]).await.expect("misses").len(), 2);
        assert!(started.elapsed() < Duration::from_millis(50));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_request_does_not_desynchronise_the_connection() {
    bounded(async {
        let addr = scripted(|mut peer| async move {
            let first = receive(&mut peer).await;
            // Answer nothing until the second request is in: by then the
            // first has timed out on the client.
            let second = receive(&mut peer).await;
            answer(&mut peer, &first, hit(b"first")).await;
            answer(&mut peer, &second, hit(b"second")).await;
            let third = receive(&mut peer).await;
            answer(&mut peer, &third, miss()).await;
            let _ = peer.next().await;
        })
        .await;
        let client = Client::builder()
            .server(addr.to_string())
            .request_timeout(Duration::from_millis(100))
            .build()
            .expect("client");
        let error = client.get("first").await.expect_err("timed out");
        assert!(error.is_timeout(), "{error}");
        let second = client.get("second").await.expect("answered").expect("hit");
        assert_eq!(second.value, Bytes::from_static(b"second"));
        assert!(client.get("third").await.expect("answered").is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_accepts_but_never_says_hello_fails_the_connect_in_time() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let _held = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let client = Client::builder()
            .server(addr.to_string())
            .connect_timeout(Duration::from_millis(50))
            .failure_threshold(2)
            .reconnect_backoff(Duration::from_millis(1), Duration::from_millis(1))
            .build()
            .expect("client");
        let error = client.ping().await.expect_err("no hello");
        assert!(error.to_string().contains("timed out"), "{error}");
        // Each attempt is bounded by the connect timeout, and the second
        // failure marks the server down.
        let started = Instant::now();
        while !client.server_status()[0].down {
            let _ = client.get("k").await;
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "not marked down"
            );
        }
        assert!(client.get("k").await.expect("down: a miss").is_none());
    })
    .await;
}

/// A fake server that answers HELLO and then nothing at all.
async fn silent_after_hello() -> SocketAddr {
    scripted(|mut peer| async move { while peer.next().await.is_some() {} }).await
}

/// A fake server: answers HELLO on every connection, then runs `script`
/// on the first.
async fn scripted<F, Fut>(script: F) -> SocketAddr
where
    F: FnOnce(Peer) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let mut script = Some(script);
        let mut others = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            let mut peer = Framed::new(stream, ServerCodec::default());
            answer_hello(&mut peer).await;
            match script.take() {
                Some(script) => {
                    tokio::spawn(script(peer));
                }
                None => others.push(peer),
            }
        }
    });
    addr
}

fn miss() -> Outcome {
    Outcome::Miss(Miss {
        key_index: None,
        fence: 1,
        lease: Lease::NotRequested,
    })
}
