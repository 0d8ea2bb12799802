//! What callers see when the connection breaks under them.
//!
//! A scripted fake peer on 127.0.0.1:0 answers HELLO and then misbehaves:
//! closes with requests in flight, answers out of step, refuses with BUSY.
//! Every test is bounded, because the failure these guard against is a hang.
//! The commands' behaviour against a real server is tested end to end in
//! the workspace's `tests/`.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tagcached_client::{Connection, Error, ErrorCode, SetOptions};
use tagcached_protocol::response::ErrorReply;
use tagcached_protocol::{Opcode, Outcome, Response, ServerCodec};
use tokio::net::TcpListener;
use tokio_util::codec::Framed;

mod support;
use support::fake_peer::{answer, answer_hello, hit, receive, Peer};

const BOUND: Duration = Duration::from_secs(5);

/// Runs `script` against the first connection to the returned address.
async fn fake_peer<F, Fut>(script: F) -> SocketAddr
where
    F: FnOnce(Peer) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        script(Framed::new(stream, ServerCodec::default())).await;
    });
    addr
}

async fn bounded<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, future)
        .await
        .expect("finished instead of hanging")
}

#[tokio::test]
async fn requests_in_flight_fail_when_the_server_closes_mid_request() {
    bounded(async {
        let addr = fake_peer(|mut peer| async move {
            answer_hello(&mut peer).await;
            let first = receive(&mut peer).await;
            let _second = receive(&mut peer).await;
            let _third = receive(&mut peer).await;
            answer(&mut peer, &first, hit(b"first")).await;
            // Close with the second and third unanswered.
        })
        .await;
        let connection = Connection::connect(addr).await.expect("connect");
        let (first, second, third) = tokio::join!(
            connection.get("a"),
            connection.get("b"),
            connection.get("c"),
        );
        let first = first.expect("answered before the close").expect("hit");
        assert_eq!(first.value, Bytes::from_static(b"first"));
        for result in [second, third] {
            let error = result.expect_err("in flight at the close");
            assert!(error.is_connection_error(), "{error}");
        }
        assert!(connection.is_closed());
    })
    .await;
}

#[tokio::test]
async fn new_requests_fail_fast_once_the_connection_is_gone() {
    bounded(async {
        let addr = fake_peer(|mut peer| async move {
            answer_hello(&mut peer).await;
            let _ping = receive(&mut peer).await;
        })
        .await;
        let connection = Connection::connect(addr).await.expect("connect");
        let error = connection.ping().await.expect_err("peer closed");
        assert!(matches!(error, Error::Closed), "{error}");
        // Nobody is listening any more: these must fail without a round trip.
        for _ in 0..3 {
            let error = connection
                .set("k", "v", &SetOptions::new())
                .await
                .expect_err("closed");
            assert!(matches!(error, Error::Closed), "{error}");
        }
        let mut pipeline = connection.pipeline();
        pipeline.ping();
        let error = pipeline.execute().await.expect_err("closed");
        assert!(matches!(error, Error::Closed), "{error}");
    })
    .await;
}

#[tokio::test]
async fn a_server_that_closes_an_idle_connection_fails_the_next_request() {
    bounded(async {
        let addr = fake_peer(|mut peer| async move {
            answer_hello(&mut peer).await;
        })
        .await;
        let connection = Connection::connect(addr).await.expect("connect");
        let error = connection.get("k").await.expect_err("peer closed");
        assert!(error.is_connection_error(), "{error}");
    })
    .await;
}

#[tokio::test]
async fn a_response_out_of_step_fails_every_request_instead_of_misdelivering() {
    bounded(async {
        let addr = fake_peer(|mut peer| async move {
            answer_hello(&mut peer).await;
            let _first = receive(&mut peer).await;
            let second = receive(&mut peer).await;
            // Answers the second request first: the stream can't be trusted.
            answer(&mut peer, &second, hit(b"second")).await;
            // Hold the socket open: the client must fail on its own.
            let _ = peer.next().await;
        })
        .await;
        let connection = Connection::connect(addr).await.expect("connect");
        let (first, second) = tokio::join!(connection.get("a"), connection.get("b"));
        for result in [first, second] {
            let error = result.expect_err("out of step");
            assert!(matches!(error, Error::Protocol(_)), "{error}");
        }
        assert!(connection.is_closed());
    })
    .await;
}

#[tokio::test]
async fn a_pipeline_fails_as_a_whole_when_the_connection_breaks() {
    bounded(async {
        let addr = fake_peer(|mut peer| async move {
            answer_hello(&mut peer).await;
            // Take some of the batch, answer nothing, close.
            let _ = receive(&mut peer).await;
        })
        .await;
        let connection = Connection::connect(addr).await.expect("connect");
        let options = SetOptions::new();
        let mut pipeline = connection.pipeline();
        for n in 0..1000 {
            pipeline.set_quiet(format!("key:{n}"), "value", &options);
        }
        let error = pipeline.execute().await.expect_err("connection broke");
        assert!(error.is_connection_error(), "{error}");
    })
    .await;
}

#[tokio::test]
async fn busy_at_hello_fails_connect_with_the_servers_code() {
    bounded(async {
        let addr = fake_peer(|mut peer| async move {
            let _hello = receive(&mut peer).await;
            let busy = Response {
                opaque: 0,
                opcode: Opcode::HELLO,
                outcome: Outcome::Error(ErrorReply::new(ErrorCode::Busy, "at max_connections")),
            };
            peer.send(&busy).await.expect("send");
        })
        .await;
        let error = Connection::connect(addr).await.expect_err("busy");
        assert!(
            matches!(
                &error,
                Error::Server {
                    code: ErrorCode::Busy,
                    message
                } if message == "at max_connections"
            ),
            "{error}"
        );
        assert!(error.is_connection_error());
    })
    .await;
}
