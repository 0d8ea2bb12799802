//! Connections the server gives up on (protocol.md §1): one that sends
//! nothing for `idle_timeout`, and one whose frame has not arrived whole
//! within `frame_timeout` of its first byte. Either is closed without a
//! response, counted in STATS, and frees its `max_connections` slot.

use std::time::{Duration, Instant};

use tagcached_protocol::request::Command;
use tagcached_protocol::response::Outcome;
use tagcached_protocol::{ErrorCode, Request};
use tagcached_tests::{assert_error, raw_frame, within, Deadline, RawConn, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Short enough for a test, long enough that a loaded machine running the
/// test does not trip it for a client that is only slow.
const IDLE: Duration = Duration::from_millis(800);
const FRAME: Duration = Duration::from_millis(500);

#[tokio::test]
async fn a_connection_that_sends_nothing_for_the_idle_timeout_is_closed_and_a_busy_one_is_not() {
    within(async {
        let server = TestServer::with_config(|config| config.idle_timeout = Some(IDLE));
        let mut idle = server.connect().await;
        idle.ping().await;
        let last_input = Instant::now();
        let closed = tokio::spawn(async move {
            idle.expect_closed().await;
            last_input.elapsed()
        });
        // Another connection sends a request more often than the timeout,
        // for longer than it: it stays.
        let mut busy = server.connect().await;
        for _ in 0..10 {
            busy.ping().await;
            tokio::time::sleep(IDLE / 4).await;
        }
        let idle_for = closed.await.expect("the idle connection's task");
        assert!(
            idle_for >= IDLE,
            "closed after {idle_for:?}, before {IDLE:?}"
        );
        assert_eq!(busy.stats().await.num("idle_kicks"), 1);
    })
    .await;
}

#[tokio::test]
async fn half_sent_headers_are_closed_after_the_frame_timeout_and_free_their_slots() {
    const SLOTS: usize = 20;
    within(async {
        let server = TestServer::with_config(|config| {
            config.max_connections = SLOTS;
            config.frame_timeout = Some(FRAME);
            // Only the frame timeout may close them.
            config.idle_timeout = None;
        });
        let ping = raw_frame(0x01, 0, 7, &[]);
        let mut stalled = Vec::new();
        let first_stalled = Instant::now();
        for _ in 0..SLOTS {
            let mut conn = server.connect().await;
            // A whole PING first: the server has admitted the connection
            // (its workers accept in their own time) before it stalls.
            conn.ping().await;
            conn.send_raw(&ping[..8]).await.expect("half a header");
            stalled.push(conn);
        }
        // Every slot is taken: a new client is turned away, unless this
        // machine was so slow that the first stalled connections have
        // already timed out.
        let mut turned_away = server.connect().await;
        turned_away.send(&Request::new(1, Command::Ping)).await;
        let answer = turned_away.recv().await.outcome;
        if first_stalled.elapsed() < FRAME {
            assert_error(&answer, ErrorCode::Busy);
        }

        let started = Instant::now();
        for conn in &mut stalled {
            conn.expect_closed().await;
        }
        assert!(
            started.elapsed() < FRAME * 10,
            "closed late: {:?}",
            started.elapsed()
        );

        // The slots come back once the closed connections are gone.
        let deadline = Deadline::new("a free connection slot", Duration::from_secs(5));
        let mut conn = loop {
            let mut conn = server.connect().await;
            conn.send(&Request::new(1, Command::Ping)).await;
            match conn.recv().await.outcome {
                Outcome::Ok => break conn,
                outcome => assert_error(&outcome, ErrorCode::Busy),
            }
            deadline.tick().await;
        };
        assert_eq!(conn.stats().await.num("frame_timeouts"), SLOTS as u64);
    })
    .await;
}

/// The frame timeout bounds a frame's whole arrival, not the gaps in it: a
/// client that trickles a frame, a few bytes at a time well inside the
/// timeout, is still closed once the frame has taken longer.
#[tokio::test]
async fn a_trickled_frame_is_closed_when_its_whole_arrival_takes_longer_than_the_timeout() {
    within(async {
        let server = TestServer::with_config(|config| config.frame_timeout = Some(FRAME));
        let conn = RawConn::connect(server.addr()).await.expect("connect");
        let mut stream = conn.into_stream();
        let frame = raw_frame(0x10, 0, 9, &[b'k'; 200]);
        let started = Instant::now();
        let mut sent = 0;
        // 20 pieces, one every FRAME / 10: twice the timeout for the frame.
        // Until the server's end of stream: it drains what follows
        // (protocol.md §1), so writes alone would not show the close.
        for piece in frame.chunks(frame.len() / 20 + 1) {
            let mut byte = [0u8; 1];
            match stream.try_read(&mut byte) {
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                Ok(0) | Err(_) => break,
                Ok(_) => panic!("an answer to a frame that never arrived whole"),
            }
            if stream.write_all(piece).await.is_err() {
                break;
            }
            sent += piece.len();
            tokio::time::sleep(FRAME / 10).await;
        }
        // Closed with no answer: the GET never completed.
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
        assert!(rest.is_empty(), "no answer");
        assert!(started.elapsed() >= FRAME);
        assert!(
            sent < frame.len(),
            "the whole frame ({sent} bytes) went out"
        );

        // Whole frames, however many and however long the connection lives,
        // are never cut off.
        let mut steady = server.connect().await;
        let lived = Instant::now();
        while lived.elapsed() < FRAME * 2 {
            steady.ping().await;
            tokio::time::sleep(FRAME / 5).await;
        }
        assert_eq!(steady.stats().await.num("frame_timeouts"), 1);
    })
    .await;
}
