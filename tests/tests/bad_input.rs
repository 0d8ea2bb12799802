//! Every error of protocol.md §4 a client can provoke, table-driven; fatal
//! framing errors close the connection, every other error leaves it usable.
//! Also: clients that vanish mid-frame, and the connection limit.

use std::time::Duration;

use bytes::BufMut;
use tagcached_protocol::response::Outcome;
use tagcached_protocol::{ErrorCode, Limits, Opcode, Request};
use tagcached_tests::{
    expect_error, raw_frame, raw_frame_with, within, Deadline, RawConn, TestServer, REQUEST_MAGIC,
    RESPONSE_MAGIC,
};

const HELLO: u8 = 0x00;
const PING: u8 = 0x01;
const NOOP: u8 = 0x02;
const GET: u8 = 0x10;
const GETM: u8 = 0x11;
const SET: u8 = 0x20;
const DELETE: u8 = 0x21;
const TOUCH: u8 = 0x22;
const INVALIDATE: u8 = 0x30;
const FLUSH_ALL: u8 = 0x40;
const STATS: u8 = 0x41;
const QUIET: u8 = 0x01;
const WITH_TAGS: u8 = 0x02;

/// A SET body (protocol.md §6.5) with every field chosen, `tag_count`
/// included, so it can disagree with `tags`.
struct SetBody<'a> {
    mode: u8,
    tag_count: u16,
    ttl: u32,
    key: &'a [u8],
    tags: Vec<&'a [u8]>,
    value: &'a [u8],
}

impl<'a> SetBody<'a> {
    fn new(key: &'a [u8], tags: &[&'a [u8]], value: &'a [u8]) -> SetBody<'a> {
        SetBody {
            mode: 0,
            tag_count: tags.len() as u16,
            ttl: 0,
            key,
            tags: tags.to_vec(),
            value,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut body = Vec::new();
        body.put_u8(self.mode);
        body.put_u8(0);
        body.put_u16(self.tag_count);
        body.put_u32(0);
        body.put_u32(self.ttl);
        body.put_u64(0);
        body.put_u64(0);
        body.put_u16(self.key.len() as u16);
        body.put_slice(self.key);
        for tag in &self.tags {
            body.put_u16(tag.len() as u16);
            body.put_slice(tag);
        }
        body.put_slice(self.value);
        body
    }
}

/// A body of a u16 count and u16-length-prefixed strings (GETM keys,
/// INVALIDATE_TAGS tags), with the count chosen freely.
fn counted_strings(count: u16, strings: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    body.put_u16(count);
    for string in strings {
        body.put_u16(string.len() as u16);
        body.put_slice(string);
    }
    body
}

fn hello_body(want_shard: u16) -> Vec<u8> {
    let mut body = vec![1];
    body.put_u16(want_shard);
    body.put_slice(b"bad-input");
    body
}

fn touch_body(ttl: u32, key: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.put_u32(ttl);
    body.put_slice(key);
    body
}

/// One bad request: its opcode, flags and body, and the error it earns.
struct Case {
    name: &'static str,
    opcode: u8,
    flags: u8,
    body: Vec<u8>,
    expect: ErrorCode,
}

fn case(name: &'static str, opcode: u8, flags: u8, body: Vec<u8>, expect: ErrorCode) -> Case {
    Case {
        name,
        opcode,
        flags,
        body,
        expect,
    }
}

/// Every non-fatal error a client can trigger on a default two-shard server.
fn non_fatal_cases() -> Vec<Case> {
    use ErrorCode::*;
    let max_ttl = Limits::DEFAULT_MAX_TTL;
    let long_key = vec![b'k'; 251];
    let long_tag = vec![b't'; 1025];
    let too_big = vec![0u8; Limits::DEFAULT_MAX_VALUE_LENGTH as usize + 1];
    let set = |key: &'static [u8], tags: &[&'static [u8]]| SetBody::new(key, tags, b"v").bytes();
    let mut cases = vec![
        // UNKNOWN_OPCODE, including every reserved range.
        case("opcode 0x03", 0x03, 0, vec![], UnknownOpcode),
        case(
            "reserved read 0x12",
            0x12,
            0,
            b"key".to_vec(),
            UnknownOpcode,
        ),
        case("reserved read 0x1F", 0x1F, 0, vec![], UnknownOpcode),
        case("reserved write 0x23", 0x23, 0, vec![], UnknownOpcode),
        case("reserved invalidation 0x32", 0x32, 0, vec![], UnknownOpcode),
        case("reserved auth 0x51", 0x51, 0, vec![], UnknownOpcode),
        case("opcode 0xFF", 0xFF, 0, vec![1, 2, 3], UnknownOpcode),
        case("opcode before flags", 0x12, 0xFC, vec![], UnknownOpcode),
        // BAD_FLAGS: unknown bits, and known bits where they mean nothing.
        case(
            "reserved flag bit 7 on GET",
            GET,
            0x80,
            b"k".to_vec(),
            BadFlags,
        ),
        case("reserved flag bit 7", DELETE, 0x80, b"k".to_vec(), BadFlags),
        case("WITH_TAGS on SET", SET, WITH_TAGS, set(b"k", &[]), BadFlags),
        case(
            "WITH_TAGS on DELETE",
            DELETE,
            WITH_TAGS,
            b"k".to_vec(),
            BadFlags,
        ),
        case(
            "WITH_TAGS on INVALIDATE",
            INVALIDATE,
            WITH_TAGS,
            counted_strings(1, &[b"t"]),
            BadFlags,
        ),
        case("QUIET on HELLO", HELLO, QUIET, hello_body(0xFFFF), BadFlags),
        case("QUIET on PING", PING, QUIET, vec![], BadFlags),
        case("QUIET on NOOP", NOOP, QUIET, vec![], BadFlags),
        case("QUIET on STATS", STATS, QUIET, vec![], BadFlags),
        case("flags before body", SET, WITH_TAGS, vec![0; 3], BadFlags),
        // MALFORMED: short bodies, trailing bytes, lengths that overrun, bad
        // field values.
        case("PING with a body", PING, 0, vec![0], Malformed),
        case("NOOP with a body", NOOP, 0, vec![0, 0], Malformed),
        case("FLUSH_ALL with a body", FLUSH_ALL, 0, vec![0], Malformed),
        case("STATS with a body", STATS, 0, b"items".to_vec(), Malformed),
        case("SET too short", SET, 0, vec![0; 10], Malformed),
        case("SET with no key length", SET, 0, vec![0; 28], Malformed),
        case("TOUCH too short", TOUCH, 0, vec![0; 3], Malformed),
        case("GETM too short", GETM, 0, vec![0], Malformed),
        case("INVALIDATE too short", INVALIDATE, 0, vec![0], Malformed),
        case("HELLO empty", HELLO, 0, vec![], Malformed),
        case("HELLO too short", HELLO, 0, vec![1, 0], Malformed),
        case(
            "HELLO want_shard = shard_count",
            HELLO,
            0,
            hello_body(2),
            Malformed,
        ),
        case(
            "HELLO want_shard 0xFFFE",
            HELLO,
            0,
            hello_body(0xFFFE),
            Malformed,
        ),
        case(
            "INVALIDATE no tags",
            INVALIDATE,
            0,
            counted_strings(0, &[]),
            Malformed,
        ),
        case(
            "INVALIDATE trailing",
            INVALIDATE,
            0,
            [counted_strings(1, &[b"t"]), vec![0]].concat(),
            Malformed,
        ),
        case(
            "INVALIDATE tag overruns",
            INVALIDATE,
            0,
            vec![0, 1, 0, 9, b'a'],
            Malformed,
        ),
        case(
            "GETM trailing",
            GETM,
            0,
            [counted_strings(1, &[b"k"]), vec![7]].concat(),
            Malformed,
        ),
        case(
            "GETM key overruns",
            GETM,
            0,
            vec![0, 1, 0, 200, b'k'],
            Malformed,
        ),
        case(
            "GETM fewer keys than counted",
            GETM,
            0,
            counted_strings(3, &[b"a", b"b"]),
            Malformed,
        ),
    ];
    let mut bad_mode = SetBody::new(b"k", &[], b"v");
    bad_mode.mode = 4;
    cases.push(case("SET mode 4", SET, 0, bad_mode.bytes(), Malformed));
    // Field values in layout order: mode before tag_count.
    bad_mode.tag_count = 5000;
    cases.push(case(
        "SET mode before tag_count",
        SET,
        0,
        bad_mode.bytes(),
        Malformed,
    ));
    let mut key_overrun = SetBody::new(b"k", &[], b"").bytes();
    key_overrun[29] = 50; // key length 50, one byte present
    cases.push(case("SET key overruns", SET, 0, key_overrun, Malformed));
    let mut missing_tag = SetBody::new(b"k", &[b"t"], b"").bytes();
    missing_tag[3] = 2; // tag_count 2, one tag present, no value
    cases.push(case(
        "SET fewer tags than counted",
        SET,
        0,
        missing_tag,
        Malformed,
    ));

    // KEY_INVALID: empty or too long, in every keyed command.
    cases.extend([
        case("GET empty key", GET, 0, vec![], KeyInvalid),
        case("GET 251-byte key", GET, 0, long_key.clone(), KeyInvalid),
        case("DELETE empty key", DELETE, 0, vec![], KeyInvalid),
        case("TOUCH empty key", TOUCH, 0, touch_body(5, b""), KeyInvalid),
        case(
            "TOUCH 251-byte key",
            TOUCH,
            0,
            touch_body(5, &long_key),
            KeyInvalid,
        ),
        case("SET empty key", SET, 0, set(b"", &[]), KeyInvalid),
        case(
            "SET 251-byte key",
            SET,
            0,
            SetBody::new(&long_key, &[], b"v").bytes(),
            KeyInvalid,
        ),
        case(
            "GETM empty key",
            GETM,
            0,
            counted_strings(2, &[b"k", b""]),
            KeyInvalid,
        ),
        case(
            "GETM 251-byte key",
            GETM,
            0,
            counted_strings(1, &[&long_key]),
            KeyInvalid,
        ),
    ]);
    // VALUE_TOO_LARGE: one byte over max_value_length (still under max_frame).
    cases.push(case(
        "SET value over max_value_length",
        SET,
        0,
        SetBody::new(b"big", &[], &too_big).bytes(),
        ValueTooLarge,
    ));
    // TAG_INVALID: empty, too long, not UTF-8, whitespace, control chars.
    let bad_tags: [(&'static str, &[u8]); 11] = [
        ("space", b"a b"),
        ("tab", b"tab\t"),
        ("newline", b"nl\n"),
        ("NUL", b"nul\x00"),
        ("control 0x01", b"\x01"),
        ("DEL", b"\x7f"),
        ("empty", b""),
        ("bad UTF-8", &[0xFF, 0xFE]),
        ("truncated UTF-8", &[b'a', 0xC3]),
        ("no-break space", "nbsp\u{a0}x".as_bytes()),
        ("em space", "\u{2003}".as_bytes()),
    ];
    for (name, tag) in bad_tags {
        let body = SetBody::new(b"bad-tag-key", &[b"good", tag], b"v").bytes();
        cases.push(case(name, SET, 0, body, TagInvalid));
        let body = counted_strings(2, &[b"good", tag]);
        cases.push(case(name, INVALIDATE, 0, body, TagInvalid));
    }
    cases.push(case(
        "1025-byte tag",
        SET,
        0,
        SetBody::new(b"bad-tag-key", &[&long_tag], b"v").bytes(),
        TagInvalid,
    ));
    cases.push(case(
        "1025-byte tag",
        INVALIDATE,
        0,
        counted_strings(1, &[&long_tag]),
        TagInvalid,
    ));
    // Tags are read before the value: a bad tag wins over a value too large.
    cases.push(case(
        "tag before value",
        SET,
        0,
        SetBody::new(b"k", &[b"a b"], &too_big).bytes(),
        TagInvalid,
    ));
    // TOO_MANY_TAGS: the count is checked before the tags are read.
    let mut many = SetBody::new(b"k", &[], b"");
    many.tag_count = 1025;
    cases.push(case("SET 1025 tags", SET, 0, many.bytes(), TooManyTags));
    let tags: Vec<Vec<u8>> = (0..1025).map(|i| format!("t{i}").into_bytes()).collect();
    let tags: Vec<&[u8]> = tags.iter().map(Vec::as_slice).collect();
    cases.push(case(
        "INVALIDATE 1025 tags",
        INVALIDATE,
        0,
        counted_strings(1025, &tags),
        TooManyTags,
    ));
    // BAD_TTL: over max_ttl; checked before the key.
    let mut ttl = SetBody::new(b"k", &[], b"v");
    ttl.ttl = max_ttl + 1;
    cases.push(case("SET ttl over max_ttl", SET, 0, ttl.bytes(), BadTtl));
    ttl.key = b"";
    cases.push(case("SET ttl before key", SET, 0, ttl.bytes(), BadTtl));
    cases.push(case(
        "TOUCH ttl u32::MAX",
        TOUCH,
        0,
        touch_body(u32::MAX, b"k"),
        BadTtl,
    ));
    // TOO_MANY_KEYS: none, or more than max_keys_per_getm.
    cases.push(case(
        "GETM no keys",
        GETM,
        0,
        counted_strings(0, &[]),
        TooManyKeys,
    ));
    cases.push(case(
        "GETM 1025 keys",
        GETM,
        0,
        counted_strings(1025, &[]),
        TooManyKeys,
    ));
    cases
}

#[tokio::test]
async fn every_non_fatal_error_is_answered_and_the_connection_goes_on() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        conn.store("sentinel", "intact", &["good"]).await;
        let cases = non_fatal_cases();
        for (index, case) in cases.iter().enumerate() {
            let opaque = 0x5000 + index as u32;
            let frame = raw_frame(case.opcode, case.flags, opaque, &case.body);
            conn.send_raw(&frame).await.expect("send");
            let response = conn.recv().await;
            let context = format!("case {index} `{}` ({:#04x})", case.name, case.opcode);
            assert_eq!(response.opaque, opaque, "{context}");
            assert_eq!(response.opcode, Opcode(case.opcode), "{context}");
            let error = expect_error(&response.outcome);
            assert_eq!(error.code, case.expect, "{context}: {:?}", error.message);
            assert!(!error.message.is_empty(), "{context}: a message");
            std::str::from_utf8(&error.message).expect("messages are UTF-8");
            // The same connection still works.
            conn.ping().await;
        }
        // Nothing was stored or invalidated by a refused request.
        conn.get_miss("bad-tag-key").await;
        conn.get_miss("big").await;
        assert_eq!(
            conn.value("sentinel").await.as_deref(),
            Some(&b"intact"[..])
        );
    })
    .await;
}

/// The same errors, all pipelined in one write: each is answered in its
/// place and none disturbs the framing of the next.
#[tokio::test]
async fn pipelined_errors_are_answered_in_order() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        let cases = non_fatal_cases();
        let mut bytes = Vec::new();
        for (index, case) in cases.iter().enumerate() {
            bytes.extend(raw_frame(case.opcode, case.flags, index as u32, &case.body));
            bytes.extend(raw_frame(PING, 0, 0x8000 + index as u32, &[]));
        }
        conn.send_raw(&bytes).await.expect("send");
        for (index, case) in cases.iter().enumerate() {
            let response = conn.recv().await;
            assert_eq!(response.opaque, index as u32);
            assert_eq!(
                expect_error(&response.outcome).code,
                case.expect,
                "{}",
                case.name
            );
            let ping = conn.recv().await;
            assert_eq!(
                (ping.opaque, ping.outcome),
                (0x8000 + index as u32, Outcome::Ok)
            );
        }
    })
    .await;
}

/// A fatal frame: the header alone, nothing after it, so the server has read
/// everything sent when it closes.
struct Fatal {
    name: &'static str,
    header: Vec<u8>,
    expect: ErrorCode,
    opaque: u32,
}

#[tokio::test]
async fn fatal_framing_errors_answer_then_close() {
    within(async {
        let server = TestServer::start();
        let max_frame = Limits::default().max_frame;
        let header = |magic, version, opaque, body_length| {
            raw_frame_with(magic, version, GET, 0, opaque, body_length, &[])
        };
        let cases = [
            Fatal {
                name: "magic 0x00",
                header: header(0x00, 1, 11, 0),
                expect: ErrorCode::BadMagic,
                opaque: 0,
            },
            Fatal {
                name: "the response magic",
                header: header(RESPONSE_MAGIC, 1, 12, 0),
                expect: ErrorCode::BadMagic,
                opaque: 0,
            },
            Fatal {
                name: "version 2",
                header: header(REQUEST_MAGIC, 2, 13, 0),
                expect: ErrorCode::BadVersion,
                opaque: 13,
            },
            Fatal {
                name: "version 0",
                header: header(REQUEST_MAGIC, 0, 14, 0),
                expect: ErrorCode::BadVersion,
                opaque: 14,
            },
            Fatal {
                name: "body_length max_frame + 1",
                header: header(REQUEST_MAGIC, 1, 15, max_frame + 1),
                expect: ErrorCode::FrameTooLarge,
                opaque: 15,
            },
            Fatal {
                name: "body_length u32::MAX",
                header: header(REQUEST_MAGIC, 1, 16, u32::MAX),
                expect: ErrorCode::FrameTooLarge,
                opaque: 16,
            },
        ];
        for case in cases {
            let mut conn = server.connect().await;
            // A good request first, in the same write: answered before the
            // error.
            let mut bytes = raw_frame(PING, 0, 1, &[]);
            bytes.extend(&case.header);
            conn.send_raw(&bytes).await.expect("send");
            let ping = conn.recv().await;
            assert_eq!(
                (ping.opaque, ping.outcome),
                (1, Outcome::Ok),
                "{}",
                case.name
            );
            let response = conn.recv().await;
            assert_eq!(response.opaque, case.opaque, "{}", case.name);
            assert_eq!(
                expect_error(&response.outcome).code,
                case.expect,
                "{}",
                case.name
            );
            conn.expect_closed().await;
        }
        // The server itself is unharmed.
        server.connect().await.ping().await;
    })
    .await;
}

/// `body_length` equal to `max_frame` is not FRAME_TOO_LARGE: the frame is
/// read whole and judged on its body (here a 2 MB GET key).
#[tokio::test]
async fn a_body_of_exactly_max_frame_is_read_and_judged_on_its_body() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        let body = vec![b'k'; Limits::default().max_frame as usize];
        conn.send_raw(&raw_frame(GET, 0, 5, &body))
            .await
            .expect("send");
        let response = conn.recv().await;
        assert_eq!(response.opaque, 5);
        assert_eq!(expect_error(&response.outcome).code, ErrorCode::KeyInvalid);
        conn.ping().await;
    })
    .await;
}

/// A frame whose declared length is within max_frame is waited for, not
/// refused, even when it arrives in pieces.
#[tokio::test]
async fn a_frame_arriving_byte_by_byte_is_assembled() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        let frame = raw_frame(SET, 0, 9, &SetBody::new(b"slow", &[b"t"], b"value").bytes());
        for byte in &frame {
            conn.send_raw(&[*byte]).await.expect("send");
        }
        assert!(matches!(conn.recv().await.outcome, Outcome::Stored { .. }));
        assert_eq!(conn.value("slow").await.as_deref(), Some(&b"value"[..]));
    })
    .await;
}

/// Clients that send part of a frame and vanish, or pipeline requests and
/// vanish without reading the answers, harm nothing.
#[tokio::test]
async fn clients_vanishing_mid_frame_harm_nothing() {
    within(async {
        let server = TestServer::start();
        let mut steady = server.connect().await;
        steady.store("kept", "intact", &["t"]).await;

        let set = SetBody::new(b"kept", &[b"t"], b"overwritten").bytes();
        let whole = raw_frame(SET, 0, 1, &set);
        let partials: [&[u8]; 3] = [&whole[..8], &whole[..16], &whole[..whole.len() - 3]];
        for partial in partials {
            let mut conn = server.connect().await;
            conn.ping().await;
            conn.send_raw(partial).await.expect("send");
            drop(conn);
        }
        // Pipelined requests, then gone before any answer is read.
        {
            let mut conn = server.connect().await;
            let mut bytes = Vec::new();
            for i in 0..500 {
                bytes.extend(raw_frame(GET, 0, i, b"kept"));
            }
            conn.send_raw(&bytes).await.expect("send");
        }

        assert_eq!(steady.value("kept").await.as_deref(), Some(&b"intact"[..]));
        steady.ping().await;
        server.connect().await.ping().await;
        // The server notices each vanished client and stops counting it.
        let deadline = Deadline::new("vanished clients to be dropped", Duration::from_secs(5));
        while steady.stats().await.num("curr_connections") != 1 {
            deadline.tick().await;
        }
    })
    .await;
}

/// Connects and PINGs; `None` if the server answered BUSY instead.
async fn try_admitted(server: &TestServer) -> Option<RawConn> {
    let mut conn = server.connect().await;
    conn.send(&Request::new(
        77,
        tagcached_protocol::request::Command::Ping,
    ))
    .await;
    let response = conn.recv().await;
    match response.outcome {
        Outcome::Ok => Some(conn),
        Outcome::Error(error) if error.code == ErrorCode::Busy => None,
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn connections_over_the_limit_get_busy_and_a_freed_slot_is_reused() {
    within(async {
        let server = TestServer::with_config(|config| config.max_connections = 2);
        let mut first = server.connect().await;
        first.ping().await;
        let mut second = server.connect().await;
        second.ping().await;

        let mut third = server.connect().await;
        let busy = third.recv().await;
        assert_eq!(busy.opaque, 0);
        assert_eq!(expect_error(&busy.outcome).code, ErrorCode::Busy);
        third.expect_closed().await;

        let stats = first.stats().await;
        assert_eq!(stats.num("curr_connections"), 2);
        assert!(stats.num("rejected_connections") >= 1);

        // Once a connection closes (noticed asynchronously), a new one fits.
        drop(second);
        let deadline = Deadline::new("a freed connection slot", Duration::from_secs(5));
        let mut admitted = loop {
            match try_admitted(&server).await {
                Some(conn) => break conn,
                None => deadline.tick().await,
            }
        };
        admitted.ping().await;
        first.ping().await;
        assert!(try_admitted(&server).await.is_none(), "full again");
    })
    .await;
}
