//! Round trips through the codecs (protocol.md §2–§6): every request and
//! every response outcome decodes back to itself, `encoded_len` is the number
//! of bytes written, and a pipelined stream decodes the same however the
//! transport splits it (too few bytes is `Ok(None)`, never an error).
//!
//! A response to a GET or GETM sent with LEASE is decoded with that flag
//! ([`lease_flags`]), as a client that knows its request does.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use tokio_util::codec::{Decoder, Encoder};

use tagcached_protocol::request::{
    Auth, Command, Delete, FlushAll, Get, GetMany, Hello, InvalidateTags, Set, SetMode, TagStatus,
    Touch, MAX_TOKEN_LENGTH,
};
use tagcached_protocol::response::{
    ErrorReply, Features, HelloInfo, Hit, Lease, Miss, Outcome, TagState, TagStatusInfo,
};
use tagcached_protocol::{
    ClientCodec, ClientFrameCodec, ErrorCode, Flags, Limits, Opcode, Request, Response,
    ServerCodec, Status, HEADER_LEN,
};

const MAX_KEY: usize = Limits::DEFAULT_MAX_KEY_LENGTH as usize;
const MAX_VALUE: usize = Limits::DEFAULT_MAX_VALUE_LENGTH as usize;
const MAX_TAG: usize = Limits::DEFAULT_MAX_TAG_LENGTH as usize;
const MAX_TAGS: usize = Limits::DEFAULT_MAX_TAGS as usize;
const MAX_KEYS: usize = Limits::DEFAULT_MAX_KEYS_PER_GETM as usize;
const MAX_TTL: u32 = Limits::DEFAULT_MAX_TTL;

// ---- requests ----

/// Any bytes, 1..=max_key_length long, often exactly at the limit.
fn key() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        4 => vec(any::<u8>(), 1..=32),
        1 => vec(any::<u8>(), 1..=MAX_KEY),
        1 => vec(any::<u8>(), MAX_KEY),
    ]
    .prop_map(Bytes::from)
}

/// Tags valid by §8.1: UTF-8 with no `White_Space` and no `Cc`, 1..=1024
/// bytes, sometimes exactly 1024 with multi-byte characters in them.
fn tag() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[^\\s\\p{Cc}]{1,16}",
        2 => "[a-z0-9:_./-]{1,12}",
        1 => "[^\\s\\p{Cc}]{0,200}".prop_map(|mut text| {
            // At most 800 bytes so far; pad to the limit exactly.
            while text.len() < MAX_TAG {
                text.push('x');
            }
            text
        }),
    ]
}

/// `min..=6` tags, or now and then exactly `max_tags` of them.
fn tags(min: usize) -> impl Strategy<Value = Vec<Bytes>> {
    prop_oneof![
        8 => vec(tag(), min..=6),
        1 => vec("[a-z0-9]{1,6}", MAX_TAGS),
    ]
    .prop_map(|tags| tags.into_iter().map(Bytes::from).collect())
}

/// Usually short, now and then exactly `max_value_length`.
fn value() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        8 => vec(any::<u8>(), 0..=300).prop_map(Bytes::from),
        1 => any::<u8>().prop_map(|byte| Bytes::from(vec![byte; MAX_VALUE])),
    ]
}

fn ttl() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0), Just(MAX_TTL), 0..=MAX_TTL]
}

fn set_mode() -> impl Strategy<Value = SetMode> {
    prop_oneof![
        Just(SetMode::Set),
        Just(SetMode::Add),
        Just(SetMode::Replace),
        any::<u64>().prop_map(SetMode::Cas),
    ]
}

fn set() -> impl Strategy<Value = Command> {
    (
        (set_mode(), any::<u32>(), ttl()),
        // Fence 0 on the wire means "no fence", so `Some(0)` has no encoding.
        prop::option::of(1..=u64::MAX),
        // A lease and a stale window are sent with their flags, so 0 is a
        // value like any other.
        prop::option::of(prop_oneof![Just(0), any::<u64>()]),
        prop::option::of(ttl()),
        key(),
        tags(0),
        value(),
    )
        .prop_map(
            |((mode, client_flags, ttl), fence, lease, stale_after, key, tags, value)| {
                Command::Set(Set {
                    mode,
                    client_flags,
                    ttl,
                    fence,
                    lease,
                    stale_after,
                    key,
                    tags,
                    value,
                })
            },
        )
}

/// No request-scoped tags (no REQUEST_TAGS), or some, or none with the flag.
fn request_tags() -> impl Strategy<Value = Option<Vec<Bytes>>> {
    prop::option::of(tags(0))
}

/// Hard (`None`) or soft with a window, 0 and `max_ttl` included.
fn soft_expire() -> impl Strategy<Value = Option<u32>> {
    prop::option::of(ttl())
}

fn get_many_keys() -> impl Strategy<Value = Vec<Bytes>> {
    prop_oneof![
        8 => vec(key(), 1..=8),
        1 => vec(vec(any::<u8>(), 1..=4).prop_map(Bytes::from), MAX_KEYS),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        // 0xFFFF on the wire is "any shard", so `Some(0xFFFF)` has no encoding.
        (
            any::<u8>(),
            prop::option::of(0..u16::MAX),
            vec(any::<u8>(), 0..=40)
        )
            .prop_map(|(max_version, want_shard, name)| Command::Hello(Hello {
                max_version,
                want_shard,
                client_name: Bytes::from(name),
            })),
        Just(Command::Ping),
        Just(Command::Noop),
        (key(), request_tags())
            .prop_map(|(key, request_tags)| Command::Get(Get { key, request_tags })),
        (get_many_keys(), request_tags())
            .prop_map(|(keys, request_tags)| Command::GetMany(GetMany { keys, request_tags })),
        set(),
        key().prop_map(|key| Command::Delete(Delete { key })),
        (ttl(), key()).prop_map(|(ttl, key)| Command::Touch(Touch { ttl, key })),
        (tags(1), soft_expire()).prop_map(|(tags, soft_expire)| {
            Command::InvalidateTags(InvalidateTags { tags, soft_expire })
        }),
        tags(1).prop_map(|tags| Command::TagStatus(TagStatus { tags })),
        soft_expire().prop_map(|soft_expire| Command::FlushAll(FlushAll { soft_expire })),
        Just(Command::Stats),
        vec(any::<u8>(), 1..=MAX_TOKEN_LENGTH).prop_map(|token| Command::Auth(Auth {
            token: Bytes::from(token),
        })),
    ]
}

/// A request with any subset of the flags its opcode allows (§2.1) but
/// those its command's fields put in the body, which decoding leaves out
/// of [`Request::flags`].
fn request() -> impl Strategy<Value = Request> {
    (any::<u32>(), command(), any::<u8>()).prop_map(|(opaque, command, bits)| {
        let opcode = command.opcode();
        Request {
            opaque,
            flags: Flags(bits & Flags::allowed_for(opcode).0)
                .without(Flags::body_flags_for(opcode)),
            command,
        }
    })
}

// ---- responses ----

fn any_limits() -> impl Strategy<Value = Limits> {
    any::<[u32; 7]>().prop_map(|[frame, key, value, tag, tags, keys, ttl]| Limits {
        max_key_length: key,
        max_value_length: value,
        max_tag_length: tag,
        max_tags: tags,
        max_keys_per_getm: keys,
        max_ttl: ttl,
        max_frame: frame,
    })
}

fn hello_info() -> impl Strategy<Value = HelloInfo> {
    (
        any::<u8>(),
        any::<u16>(),
        any::<u16>(),
        any::<u8>(),
        any::<u64>(),
        any_limits(),
        vec(any::<u8>(), 0..=40),
    )
        .prop_map(
            |(version, shard_count, shard, hash, features, limits, server_version)| HelloInfo {
                version,
                shard_count,
                shard,
                hash,
                features: Features(features),
                limits,
                server_version: Bytes::from(server_version),
            },
        )
}

/// No `lease` field, a 0 one, or a token.
fn lease() -> impl Strategy<Value = Lease> {
    prop_oneof![
        Just(Lease::NotRequested),
        Just(Lease::NotGranted),
        any::<u64>().prop_map(|token| Lease::from_field(Some(token))),
    ]
}

/// GET (no `key_index`) or GETM (with one, §6.4).
fn lookup_opcode() -> impl Strategy<Value = (Opcode, Option<u16>)> {
    prop_oneof![
        Just((Opcode::GET, None)),
        any::<u16>().prop_map(|index| (Opcode::GETM, Some(index))),
    ]
}

fn hit(key_index: Option<u16>) -> impl Strategy<Value = Hit> {
    (
        any::<u64>(),
        lease(),
        any::<u64>(),
        any::<u32>(),
        vec(tag(), 0..=4),
        value(),
    )
        .prop_map(move |(fence, lease, cas, client_flags, tags, value)| Hit {
            key_index,
            fence,
            lease,
            cas,
            client_flags,
            tags: tags.into_iter().map(Bytes::from).collect(),
            value,
        })
}

fn miss(key_index: Option<u16>) -> impl Strategy<Value = Miss> {
    (any::<u64>(), lease()).prop_map(move |(fence, lease)| Miss {
        key_index,
        fence,
        lease,
    })
}

/// HIT, STALE, MISS and HOT_MISS, to GET or GETM, with or without a lease.
fn lookup() -> impl Strategy<Value = (Opcode, Outcome)> {
    lookup_opcode().prop_flat_map(|(opcode, key_index)| {
        prop_oneof![
            hit(key_index).prop_map(Outcome::Hit),
            hit(key_index).prop_map(Outcome::Stale),
            miss(key_index).prop_map(Outcome::Miss),
            miss(key_index).prop_map(Outcome::HotMiss),
        ]
        .prop_map(move |outcome| (opcode, outcome))
    })
}

fn tag_status_info() -> impl Strategy<Value = TagStatusInfo> {
    let state = any::<[u64; 6]>().prop_map(
        |[entries, hard_seq, hard_at, soft_seq, soft_at, soft_until]| TagState {
            entries,
            hard_seq,
            hard_at,
            soft_seq,
            soft_at,
            soft_until,
        },
    );
    let statuses = prop_oneof![
        8 => vec(state.clone(), 0..=6),
        1 => vec(state, MAX_TAGS),
    ];
    (any::<[u64; 4]>(), statuses).prop_map(|([seq, now, forgotten_seq, forgotten_at], statuses)| {
        TagStatusInfo {
            seq,
            now,
            forgotten_seq,
            forgotten_at,
            statuses,
        }
    })
}

/// Every named code, and codes from newer servers (`Other` holds only codes
/// this crate does not name: a named one decodes to its variant).
fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        4 => (0x0100u16..=0x010F).prop_map(|code| ErrorCode::from_status(Status(code)).unwrap()),
        1 => (0x0110u16..=u16::MAX).prop_map(ErrorCode::Other),
    ]
}

fn any_opcode() -> impl Strategy<Value = Opcode> {
    any::<u8>().prop_map(Opcode)
}

/// Each outcome with an opcode it can answer.
fn opcode_and_outcome() -> impl Strategy<Value = (Opcode, Outcome)> {
    prop_oneof![
        hello_info().prop_map(|info| (Opcode::HELLO, Outcome::Hello(info))),
        select(vec![
            Opcode::PING,
            Opcode::NOOP,
            Opcode::DELETE,
            Opcode::TOUCH
        ])
        .prop_map(|opcode| (opcode, Outcome::Ok)),
        lookup(),
        any::<u64>().prop_map(|cas| (Opcode::SET, Outcome::Stored { cas })),
        select(vec![
            (Opcode::SET, Outcome::NotStored),
            (Opcode::SET, Outcome::Exists),
            (Opcode::SET, Outcome::NotFound),
            (Opcode::SET, Outcome::Fenced),
            (Opcode::SET, Outcome::LeaseLost),
            (Opcode::DELETE, Outcome::NotFound),
            (Opcode::TOUCH, Outcome::NotFound),
        ]),
        (
            select(vec![Opcode::INVALIDATE_TAGS, Opcode::FLUSH_ALL]),
            any::<u64>()
        )
            .prop_map(|(opcode, seq)| (opcode, Outcome::Sequence(seq))),
        vec(any::<u8>(), 0..=200)
            .prop_map(|text| (Opcode::STATS, Outcome::Stats(Bytes::from(text)))),
        tag_status_info().prop_map(|info| (Opcode::TAG_STATUS, Outcome::TagStatus(info))),
        (any_opcode(), error_code(), vec(any::<u8>(), 0..=80)).prop_map(
            |(opcode, code, message)| (opcode, Outcome::Error(ErrorReply::new(code, message)))
        ),
        // Outcome statuses from a newer server.
        (any_opcode(), 0x000Bu16..=0x00FF, vec(any::<u8>(), 0..=40)).prop_map(
            |(opcode, status, body)| (
                opcode,
                Outcome::Unknown {
                    status: Status(status),
                    body: Bytes::from(body)
                }
            )
        ),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    (any::<u32>(), opcode_and_outcome()).prop_map(|(opaque, (opcode, outcome))| Response {
        opaque,
        opcode,
        outcome,
    })
}

// ---- helpers ----

/// The flags of the request `response` answers, as far as they change how
/// it is read: LEASE if its lookup carries a `lease` field.
fn lease_flags(response: &Response) -> Flags {
    let lease = match &response.outcome {
        Outcome::Hit(hit) | Outcome::Stale(hit) => hit.lease,
        Outcome::Miss(miss) | Outcome::HotMiss(miss) => miss.lease,
        _ => Lease::NotRequested,
    };
    if lease == Lease::NotRequested {
        Flags::NONE
    } else {
        Flags::LEASE
    }
}

fn encode_requests(requests: &[Request]) -> Bytes {
    let mut codec = ClientCodec::default();
    let mut wire = BytesMut::new();
    for request in requests {
        let before = wire.len();
        codec.encode(request, &mut wire).unwrap();
        assert_eq!(wire.len() - before, request.encoded_len(), "{request:?}");
    }
    wire.freeze()
}

fn encode_responses(responses: &[Response]) -> Bytes {
    let mut codec = ServerCodec::default();
    let mut wire = BytesMut::new();
    for response in responses {
        let before = wire.len();
        codec.encode(response, &mut wire).unwrap();
        assert_eq!(wire.len() - before, response.encoded_len(), "{response:?}");
    }
    wire.freeze()
}

/// Feeds `wire` to `codec` cut at `cuts`, decoding after each piece until
/// the codec asks for more; checks that asking for more consumes nothing.
fn decode_in_pieces<D: Decoder>(mut codec: D, wire: &[u8], cuts: &[Index]) -> Vec<D::Item>
where
    D::Error: std::fmt::Debug,
{
    let mut ends: Vec<usize> = cuts.iter().map(|cut| cut.index(wire.len() + 1)).collect();
    ends.push(wire.len());
    ends.sort_unstable();
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    let mut fed = 0;
    for end in ends {
        buf.extend_from_slice(&wire[fed..end]);
        fed = end;
        loop {
            let before = buf.len();
            match codec
                .decode(&mut buf)
                .expect("partial input is never an error")
            {
                Some(item) => items.push(item),
                None => {
                    assert_eq!(buf.len(), before, "Ok(None) consumed input");
                    break;
                }
            }
        }
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    items
}

// ---- properties ----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_request_round_trips(request in request()) {
        let mut buf = BytesMut::from(&encode_requests(std::slice::from_ref(&request))[..]);
        let decoded = ServerCodec::default()
            .decode(&mut buf)
            .unwrap()
            .expect("a whole frame")
            .expect("a valid request");
        prop_assert_eq!(&decoded, &request);
        prop_assert!(buf.is_empty());
    }

    /// Decoding leaves out of `Request::flags` the flags the body carries,
    /// so a request holding them there still encodes a frame whose flags
    /// and body agree, and decodes to the request without them.
    #[test]
    fn body_flags_come_from_the_command_whatever_the_request_holds(
        request in request(),
        bits in any::<u8>(),
    ) {
        let opcode = request.command.opcode();
        let body_flags = Flags(bits & Flags::body_flags_for(opcode).0);
        let holding = Request { flags: request.flags | body_flags, ..request.clone() };
        prop_assert_eq!(holding.wire_flags(), request.wire_flags());
        prop_assert_eq!(encode_requests(&[holding]), encode_requests(std::slice::from_ref(&request)));
        let wire_body_flags = Flags(request.wire_flags().0 & Flags::body_flags_for(opcode).0);
        prop_assert_eq!(wire_body_flags, request.command.body_flags());
    }

    #[test]
    fn every_response_round_trips(response in response()) {
        let flags = lease_flags(&response);
        let wire = encode_responses(std::slice::from_ref(&response));
        let mut buf = BytesMut::from(&wire[..]);
        let decoded = ClientFrameCodec::default()
            .decode(&mut buf)
            .unwrap()
            .expect("a whole frame")
            .decode(flags)
            .expect("a valid body");
        prop_assert_eq!(&decoded, &response);
        prop_assert!(buf.is_empty());
        if flags == Flags::NONE {
            let mut buf = BytesMut::from(&wire[..]);
            let decoded = ClientCodec::default().decode(&mut buf).unwrap();
            prop_assert_eq!(decoded, Some(response));
        }
    }

    #[test]
    fn pipelined_requests_decode_the_same_in_any_split(
        requests in vec(request(), 1..=6),
        cuts in vec(any::<Index>(), 0..=12),
    ) {
        let wire = encode_requests(&requests);
        let decoded: Vec<Request> = decode_in_pieces(ServerCodec::default(), &wire, &cuts)
            .into_iter()
            .map(|item| item.expect("a valid request"))
            .collect();
        prop_assert_eq!(decoded, requests);
    }

    #[test]
    fn pipelined_responses_decode_the_same_in_any_split(
        responses in vec(response(), 1..=6),
        cuts in vec(any::<Index>(), 0..=12),
    ) {
        let wire = encode_responses(&responses);
        let decoded: Vec<Response> = decode_in_pieces(ClientFrameCodec::default(), &wire, &cuts)
            .into_iter()
            .zip(&responses)
            .map(|(frame, response)| frame.decode(lease_flags(response)).expect("a valid body"))
            .collect();
        prop_assert_eq!(decoded, responses);
    }
}

// ---- fixed cases ----

/// `max_tags` longest tags, each distinct.
fn longest_tags() -> Vec<Bytes> {
    (0..MAX_TAGS)
        .map(|i| Bytes::from(format!("{i:0>width$}", width = MAX_TAG)))
        .collect()
}

/// Asserts that `request` is exactly `max_frame` long and decodes under
/// `limits`.
fn assert_fills_max_frame(request: Request, limits: Limits) {
    assert_eq!(
        request.encoded_len(),
        HEADER_LEN + limits.max_frame as usize
    );
    let mut buf = BytesMut::from(&encode_requests(std::slice::from_ref(&request))[..]);
    let decoded = ServerCodec::new(limits)
        .decode(&mut buf)
        .expect("fits in max_frame")
        .expect("a whole frame")
        .expect("a valid request");
    assert_eq!(decoded, request);
}

/// Regression: the default `max_frame` was `max_value_length + 1 MiB`, and
/// a SET at every limit at once (longest key, 1024 tags of 1024 bytes,
/// 1 MiB value) was refused as FRAME_TOO_LARGE. Since issue 9 the SET also
/// carries a lease and a stale window.
#[test]
fn the_largest_set_the_limits_allow_fits_in_a_frame() {
    let request = Request::new(
        1,
        Command::Set(Set {
            mode: SetMode::Cas(u64::MAX),
            client_flags: u32::MAX,
            ttl: MAX_TTL,
            fence: Some(u64::MAX),
            lease: Some(u64::MAX),
            stale_after: Some(MAX_TTL),
            key: Bytes::from(vec![0xFF; MAX_KEY]),
            tags: longest_tags(),
            value: Bytes::from(vec![b'v'; MAX_VALUE]),
        }),
    );
    assert_fills_max_frame(request, Limits::default());
}

/// With small values the largest request is a GETM with REQUEST_TAGS
/// (protocol.md §7).
#[test]
fn the_largest_getm_the_limits_allow_fits_in_a_frame() {
    let keys = (0..MAX_KEYS)
        .map(|i| Bytes::from(format!("{i:0>width$}", width = MAX_KEY)))
        .collect();
    let request = Request::new(
        1,
        Command::GetMany(GetMany {
            keys,
            request_tags: Some(longest_tags()),
        }),
    );
    assert_fills_max_frame(request, Limits::with_max_value_length(0));
}

/// The frames answering one GETM sent with LEASE, each with its
/// `key_index` and `lease`, read as a client that knows its request.
#[test]
fn a_getm_with_lease_is_answered_frame_by_frame() {
    let granted = Lease::from_field(Some(0xABCD));
    let responses: Vec<Response> = [
        Outcome::Miss(Miss {
            key_index: Some(0),
            fence: 3,
            lease: granted,
        }),
        Outcome::HotMiss(Miss {
            key_index: Some(1),
            fence: 3,
            lease: Lease::NotGranted,
        }),
        Outcome::Stale(Hit {
            key_index: Some(2),
            fence: 3,
            lease: Lease::NotGranted,
            cas: 9,
            client_flags: 0,
            tags: Vec::new(),
            value: Bytes::from_static(b"old"),
        }),
    ]
    .into_iter()
    .map(|outcome| Response {
        opaque: 8,
        opcode: Opcode::GETM,
        outcome,
    })
    .collect();
    let mut buf = BytesMut::from(&encode_responses(&responses)[..]);
    let mut frames = ClientFrameCodec::default();
    for response in &responses {
        let frame = frames.decode(&mut buf).unwrap().expect("a whole frame");
        assert_eq!(
            &frame.decode(Flags::LEASE | Flags::QUIET).unwrap(),
            response
        );
    }
    assert!(buf.is_empty());
}

#[test]
fn every_named_error_code_round_trips() {
    let mut seen = 0;
    for code in 0x0100..=0x010Fu16 {
        let error = ErrorCode::from_status(Status(code)).unwrap();
        assert!(!matches!(error, ErrorCode::Other(_)), "{code:#06x} unnamed");
        let response = Response {
            opaque: u32::from(code),
            opcode: Opcode::GET,
            outcome: Outcome::Error(ErrorReply::new(error, error.name())),
        };
        let mut buf = BytesMut::from(&encode_responses(std::slice::from_ref(&response))[..]);
        let decoded = ClientCodec::default().decode(&mut buf).unwrap().unwrap();
        assert_eq!(decoded, response);
        seen += 1;
    }
    assert_eq!(seen, 16);
}

#[test]
fn every_prefix_of_a_frame_asks_for_more() {
    let requests = [
        Request::new(
            1,
            Command::Get(Get {
                key: Bytes::from_static(b"user:1"),
                request_tags: Some(vec![Bytes::from_static(b"_N_T_/blog")]),
            }),
        ),
        Request::new(
            2,
            Command::Set(Set {
                mode: SetMode::Add,
                client_flags: 7,
                ttl: 60,
                fence: Some(9),
                lease: Some(4),
                stale_after: Some(30),
                key: Bytes::from_static(b"k"),
                tags: vec![Bytes::from_static(b"t"), Bytes::from_static("ü".as_bytes())],
                value: Bytes::from_static(b"value"),
            }),
        ),
    ];
    let wire = encode_requests(&requests);
    let first = requests[0].encoded_len();
    for end in 0..wire.len() {
        let mut buf = BytesMut::from(&wire[..end]);
        let mut codec = ServerCodec::default();
        if end >= first {
            let item = codec.decode(&mut buf).unwrap().unwrap().unwrap();
            assert_eq!(item, requests[0]);
        }
        let before = buf.len();
        assert!(
            codec.decode(&mut buf).unwrap().is_none(),
            "prefix of {end} bytes"
        );
        assert_eq!(buf.len(), before);
    }
}

#[test]
fn quiet_successes_are_those_of_protocol_md_section_5() {
    let miss = |lease| {
        Outcome::Miss(Miss {
            key_index: None,
            fence: 1,
            lease,
        })
    };
    assert!(miss(Lease::NotRequested).is_quiet_success(Opcode::GET));
    assert!(miss(Lease::NotGranted).is_quiet_success(Opcode::GETM));
    // "MISS that grants no lease": one that grants it is sent.
    assert!(!miss(Lease::from_field(Some(1))).is_quiet_success(Opcode::GET));
    assert!(Outcome::Stored { cas: 1 }.is_quiet_success(Opcode::SET));
    assert!(Outcome::Ok.is_quiet_success(Opcode::DELETE));
    assert!(Outcome::NotFound.is_quiet_success(Opcode::DELETE));
    assert!(Outcome::Ok.is_quiet_success(Opcode::TOUCH));
    assert!(!Outcome::NotFound.is_quiet_success(Opcode::TOUCH));
    assert!(Outcome::Sequence(3).is_quiet_success(Opcode::INVALIDATE_TAGS));
    assert!(Outcome::Sequence(3).is_quiet_success(Opcode::FLUSH_ALL));
    for loud in [
        Outcome::NotStored,
        Outcome::Exists,
        Outcome::Fenced,
        Outcome::LeaseLost,
        Outcome::Error(ErrorReply::new(ErrorCode::Malformed, "x")),
    ] {
        assert!(!loud.is_quiet_success(Opcode::SET), "{loud:?}");
    }
}
