//! How connections end (protocol.md §1, §2): what a fatal error echoes, the
//! end of stream after the last answer when the server ends a connection,
//! how long it drains one it ended, when a connection stops counting
//! against `max_connections`, and a stopping server's grace period.

use std::time::{Duration, Instant};

use tagcached_protocol::request::Command;
use tagcached_protocol::response::Outcome;
use tagcached_protocol::{ErrorCode, Limits, Opcode, Request};
use tagcached_tests::{
    expect_error, get_cmd, raw_frame, raw_frame_with, within, Deadline, RawConn, TestServer,
    REQUEST_MAGIC, RESPONSE_MAGIC,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PING: u8 = 0x01;
const GET: u8 = 0x10;
const SET: u8 = 0x20;
const STATS: u8 = 0x41;

/// The server's `curr_connections`, asked on `conn`.
async fn connections(conn: &mut RawConn) -> u64 {
    conn.stats().await.num("curr_connections")
}

/// Regression (issue 8): after a fatal frame the server closed with the
/// client's further requests unread, which the kernel turns into a reset,
/// not the end of stream. Also pins which opcode and opaque each fatal
/// error echoes (protocol.md §2).
#[tokio::test]
async fn a_fatal_error_echoes_the_header_it_could_trust_then_the_stream_ends() {
    within(async {
        let server = TestServer::start();
        let max_frame = Limits::default().max_frame;
        // (what, header, status, echoed opcode, echoed opaque)
        let cases = [
            (
                "magic 0x00",
                raw_frame_with(0x00, 1, SET, 0, 99, 0, &[]),
                ErrorCode::BadMagic,
                Opcode::HELLO,
                0,
            ),
            (
                "the response magic",
                raw_frame_with(RESPONSE_MAGIC, 1, STATS, 0, 98, 0, &[]),
                ErrorCode::BadMagic,
                Opcode::HELLO,
                0,
            ),
            (
                "version 2, an unknown opcode",
                raw_frame_with(REQUEST_MAGIC, 2, 0x7F, 0, 21, 0, &[]),
                ErrorCode::BadVersion,
                Opcode(0x7F),
                21,
            ),
            (
                "version 0",
                raw_frame_with(REQUEST_MAGIC, 0, GET, 0, 22, 0, &[]),
                ErrorCode::BadVersion,
                Opcode::GET,
                22,
            ),
            (
                "body_length max_frame + 1, an unknown opcode",
                raw_frame_with(REQUEST_MAGIC, 1, 0x99, 0, 23, max_frame + 1, &[]),
                ErrorCode::FrameTooLarge,
                Opcode(0x99),
                23,
            ),
        ];
        for (what, header, code, opcode, opaque) in cases {
            let mut conn = server.connect().await;
            let mut bytes = raw_frame(PING, 0, 1, &[]);
            bytes.extend(&header);
            // Requests pipelined behind the bad frame, more than one read
            // takes: never executed, never answered.
            while bytes.len() < 256 * 1024 {
                bytes.extend(raw_frame(PING, 0, 2, &[]));
            }
            conn.send_raw(&bytes).await.expect("send");
            let ping = conn.recv().await;
            assert_eq!((ping.opaque, ping.outcome), (1, Outcome::Ok), "{what}");
            let error = conn.recv().await;
            assert_eq!(expect_error(&error.outcome).code, code, "{what}");
            assert_eq!((error.opcode, error.opaque), (opcode, opaque), "{what}");
            assert!(
                conn.try_recv().await.is_none(),
                "{what}: the end of stream, not a reset or another answer"
            );
        }
    })
    .await;
}

/// A connection the server ended is drained until the client closes its
/// side, or sends nothing for 1 s, or 5 s have passed; it counts against
/// `max_connections` until then (protocol.md §1).
#[tokio::test]
async fn a_connection_the_server_ended_is_closed_when_the_client_closes_or_goes_quiet() {
    within(async {
        let server = TestServer::start();
        let mut observer = server.connect().await;
        let bad_magic = raw_frame_with(0x00, 1, PING, 0, 0, 0, &[]);

        // The client closes its side after the end of stream: released at
        // once.
        let mut conn = server.connect().await;
        conn.send_raw(&bad_magic).await.expect("send");
        assert_eq!(conn.recv().await.opaque, 0);
        conn.expect_closed().await;
        let mut stream = conn.into_stream();
        let started = Instant::now();
        stream.shutdown().await.expect("shut down the sending side");
        let deadline = Deadline::new("the ended connection to go", Duration::from_secs(5));
        while connections(&mut observer).await != 1 {
            deadline.tick().await;
        }
        assert!(
            started.elapsed() < Duration::from_millis(900),
            "released before 1 s"
        );

        // The client keeps its socket open and sends nothing: closed 1 s
        // after the last byte.
        let mut conn = server.connect().await;
        conn.send_raw(&bad_magic).await.expect("send");
        conn.recv().await;
        conn.expect_closed().await;
        let ended = Instant::now();
        assert_eq!(connections(&mut observer).await, 2, "still counted");
        let deadline = Deadline::new("the quiet connection to go", Duration::from_secs(5));
        while connections(&mut observer).await != 1 {
            deadline.tick().await;
        }
        let quiet = ended.elapsed();
        assert!(
            quiet >= Duration::from_millis(900) && quiet < Duration::from_secs(3),
            "closed after {quiet:?}"
        );
        drop(conn);

        // The client keeps sending: drained for 5 s, then closed.
        let mut conn = server.connect().await;
        conn.send_raw(&bad_magic).await.expect("send");
        conn.recv().await;
        conn.expect_closed().await;
        let ended = Instant::now();
        let mut stream = conn.into_stream();
        let mut closed_after = None;
        while ended.elapsed() < Duration::from_secs(9) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if connections(&mut observer).await == 1 {
                closed_after = Some(ended.elapsed());
                break;
            }
            // Ignored once the server has closed its socket.
            let _ = stream.write_all(b"still talking").await;
        }
        let closed_after = closed_after.expect("closed within 9 s");
        assert!(
            closed_after >= Duration::from_millis(4900) && closed_after < Duration::from_secs(7),
            "closed after {closed_after:?}"
        );
    })
    .await;
}

/// protocol.md §1: a connection stops counting against `max_connections`
/// before the server closes its socket, so a client that shut down its
/// sending side and read the end of stream can connect again at once; a
/// connection refused with BUSY never counted.
#[tokio::test]
async fn a_slot_is_free_once_the_client_has_read_the_end_of_stream() {
    within(async {
        let server = TestServer::with_config(|config| config.max_connections = 1);
        for round in 0..50 {
            let mut conn = server.connect().await;
            let ping = Request::new(round, Command::Ping);
            assert_eq!(
                conn.call(ping).await.outcome,
                Outcome::Ok,
                "round {round}: admitted at once, not BUSY"
            );
            if round == 0 {
                let mut refused = server.connect().await;
                let busy = refused.recv().await;
                assert_eq!(expect_error(&busy.outcome).code, ErrorCode::Busy);
                refused.expect_closed().await;
                assert_eq!(connections(&mut conn).await, 1, "BUSY never counted");
            }
            let mut stream = conn.into_stream();
            stream.shutdown().await.expect("shut down the sending side");
            let mut rest = Vec::new();
            stream
                .read_to_end(&mut rest)
                .await
                .expect("the end of stream");
            assert!(rest.is_empty(), "nothing more was due");
        }
    })
    .await;
}

/// protocol.md §1: a stopping server waits for connections for its grace
/// period, then closes one whose client has not read its answers, with
/// them unsent. (The daemon's grace period is the default, 10 s.)
#[tokio::test]
async fn a_stopping_server_gives_a_client_that_does_not_read_its_grace_period() {
    assert_eq!(
        tagcached::Config::local_ephemeral().shutdown_grace,
        Duration::from_secs(10)
    );
    within(async {
        const GRACE: Duration = Duration::from_secs(1);
        let server = TestServer::with_config(|config| config.shutdown_grace = GRACE);
        let mut conn = server.connect().await;
        const BIG: usize = 256 * 1024;
        const GETS: u32 = 120;
        conn.store("big", vec![0x5Au8; BIG], &[]).await;
        let gets: Vec<Request> = (0..GETS).map(|i| Request::new(i, get_cmd("big"))).collect();
        conn.send_batch(&gets).await;
        assert!(matches!(conn.recv().await.outcome, Outcome::Hit(_)));

        // The client reads nothing more while the server stops.
        let started = Instant::now();
        let stop = tokio::task::spawn_blocking(move || server.stop());
        stop.await.expect("stop task").expect("a clean stop");
        let took = started.elapsed();
        assert!(
            took >= GRACE && took < GRACE + Duration::from_secs(3),
            "stopped after {took:?}"
        );

        let mut answered = 1;
        while let Some(Ok(response)) = conn.try_recv().await {
            assert!(matches!(response.outcome, Outcome::Hit(_)));
            answered += 1;
        }
        assert!(answered < GETS, "all {GETS} answers were sent");
    })
    .await;
}
