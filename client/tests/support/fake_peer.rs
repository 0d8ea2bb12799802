//! The server side of a scripted fake peer: receive a request, answer it
//! with whatever outcome the test needs, including ones a real server would
//! never send.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tagcached_protocol::response::{Features, HelloInfo, Hit, Lease};
use tagcached_protocol::{Command, Limits, Outcome, Request, Response, ServerCodec};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// One accepted connection, framed as the server sees it.
pub type Peer = Framed<TcpStream, ServerCodec>;

/// The next request from the client; panics if there is none.
pub async fn receive(peer: &mut Peer) -> Request {
    peer.next()
        .await
        .expect("a request")
        .expect("framed")
        .expect("valid")
}

/// Answers `request` with `outcome`.
pub async fn answer(peer: &mut Peer, request: &Request, outcome: Outcome) {
    let response = Response {
        opaque: request.opaque,
        opcode: request.command.opcode(),
        outcome,
    };
    peer.send(&response).await.expect("send");
}

/// Receives the client's HELLO and answers as a one-shard server with the
/// default limits.
pub async fn answer_hello(peer: &mut Peer) {
    let hello = receive(peer).await;
    assert!(matches!(hello.command, Command::Hello(_)), "{hello:?}");
    let info = HelloInfo {
        version: 1,
        shard_count: 1,
        shard: 0,
        hash: HelloInfo::HASH_FNV1A_64,
        features: Features::FENCED_SET | Features::SHARD_AWARE,
        limits: Limits::default(),
        server_version: Bytes::from_static(b"fake 0"),
    };
    answer(peer, &hello, Outcome::Hello(info)).await;
}

/// A GET hit carrying `value`.
pub fn hit(value: &'static [u8]) -> Outcome {
    Outcome::Hit(Hit {
        key_index: None,
        fence: 1,
        lease: Lease::NotRequested,
        cas: 1,
        client_flags: 0,
        tags: Vec::new(),
        value: Bytes::from_static(value),
    })
}
