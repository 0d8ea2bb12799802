//! protocol.md and this crate agree: the worked example of §11 is the bytes
//! the codecs write and read, and the tables of opcodes (§3), flags (§2.1),
//! status codes (§4), feature bits (§6.1) and default limits (§7) are the
//! crate's constants. The tests read protocol.md itself, so an edit to one
//! side that the other does not follow fails here.
//!
//! The frames of issue 9 (soft invalidation, leases, stale windows,
//! request-scoped tags, TAG_STATUS) have no worked example in protocol.md;
//! their bytes are written out below from the layouts of §6, field by
//! field, as §11 writes its own.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use tagcached_protocol::request::{
    Auth, Command, Get, InvalidateTags, Set, SetMode, TagStatus, MAX_TOKEN_LENGTH,
};
use tagcached_protocol::response::{
    Features, Hit, HitRef, Lease, Miss, Outcome, TagState, TagStatusInfo,
};
use tagcached_protocol::{
    ClientCodec, ClientFrameCodec, ErrorCode, FatalError, Flags, Limits, Opcode, Request, Response,
    ServerCodec, Status,
};

const SPEC: &str = include_str!("../../../protocol.md");

/// The text of the section whose heading starts with `heading`, up to the
/// next heading of the same or a higher level.
fn section(heading: &str) -> &'static str {
    let start = SPEC
        .find(&format!("\n{heading}"))
        .unwrap_or_else(|| panic!("protocol.md has no heading {heading:?}"));
    let level = heading.split(' ').next().unwrap();
    let body = &SPEC[start + 1..];
    let end = body[1..]
        .match_indices('\n')
        .map(|(at, _)| at + 2)
        .find(|&at| {
            let line = &body[at..];
            line.starts_with('#') && line.split(' ').next().unwrap().len() <= level.len()
        })
        .unwrap_or(body.len());
    &body[..end]
}

/// The cells of each table row in `text` whose first cell starts with
/// `first`, without their surrounding spaces and backquotes.
fn rows(text: &'static str, first: &str) -> Vec<Vec<&'static str>> {
    text.lines()
        .filter(|line| line.starts_with("| ") && line[2..].starts_with(first))
        .map(|line| {
            line.trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().trim_matches('`'))
                .collect()
        })
        .collect()
}

fn hex_cell(cell: &str) -> u16 {
    u16::from_str_radix(cell.trim_start_matches("0x"), 16).unwrap()
}

/// The bytes of each fenced hex dump in `text`.
fn hex_dumps(text: &str) -> Vec<Vec<u8>> {
    text.split("```").skip(1).step_by(2).map(hex).collect()
}

/// The bytes of a hex dump: on each line, the pairs of hex digits before
/// the first run of three spaces (the annotation), indentation aside.
fn hex(dump: &str) -> Vec<u8> {
    dump.lines()
        .flat_map(|line| {
            let line = line.trim_start();
            line.split("   ").next().unwrap().split_whitespace()
        })
        .map(|pair| u8::from_str_radix(pair, 16).expect("a hex byte"))
        .collect()
}

#[test]
fn the_set_example_of_section_11_is_what_the_codecs_write_and_read() {
    let dumps = hex_dumps(section("## 11."));
    let [set_bytes, stored_bytes] = &dumps[..] else {
        panic!("§11 should hold two hex dumps, found {}", dumps.len());
    };
    assert_eq!(set_bytes.len(), 16 + 35, "header plus body_length 35");
    assert_eq!(stored_bytes.len(), 16 + 8);

    // "A SET of key `k`, value `v`, tag `t`, no TTL, no fence, opaque 7".
    let set = Request::new(
        7,
        Command::Set(Set {
            mode: SetMode::Set,
            client_flags: 0,
            ttl: 0,
            fence: None,
            lease: None,
            stale_after: None,
            key: Bytes::from_static(b"k"),
            tags: vec![Bytes::from_static(b"t")],
            value: Bytes::from_static(b"v"),
        }),
    );
    let mut wire = BytesMut::new();
    ClientCodec::default().encode(&set, &mut wire).unwrap();
    assert_eq!(&wire[..], &set_bytes[..], "SET");
    assert_eq!(set.encoded_len(), set_bytes.len());
    let mut buf = BytesMut::from(&set_bytes[..]);
    let decoded = ServerCodec::default().decode(&mut buf).unwrap().unwrap();
    assert_eq!(decoded, Ok(set));

    // "Its response, STORED with CAS value 1".
    let stored = Response {
        opaque: 7,
        opcode: Opcode::SET,
        outcome: Outcome::Stored { cas: 1 },
    };
    let mut wire = BytesMut::new();
    ServerCodec::default().encode(&stored, &mut wire).unwrap();
    assert_eq!(&wire[..], &stored_bytes[..], "STORED");
    let mut buf = BytesMut::from(&stored_bytes[..]);
    assert_eq!(
        ClientCodec::default().decode(&mut buf).unwrap(),
        Some(stored)
    );
}

#[test]
fn opcodes_and_their_flags_are_those_of_sections_3_and_2_1() {
    let table = rows(section("## 3."), "`0x");
    assert_eq!(table.len(), 13);
    let mut opcodes = Vec::new();
    for row in table {
        let opcode = Opcode(hex_cell(row[0]) as u8);
        assert_eq!(opcode.name(), Some(row[1]), "{row:?}");
        let allowed = Flags::allowed_for(opcode);
        assert_eq!(
            allowed.contains(Flags::QUIET),
            row[3].starts_with("yes"),
            "{row:?}"
        );
        opcodes.push(opcode);
    }
    // §2.1: each flag is allowed on the opcodes its row names, and no
    // other; the reserved bit on none.
    let flags = rows(section("### 2.1"), "");
    let mut named = 0;
    for row in flags.iter().filter(|row| row[1].starts_with("0x")) {
        let mask = Flags(hex_cell(row[1]) as u8);
        if row[2] == "reserved" {
            assert!(opcodes
                .iter()
                .all(|&opcode| !Flags::allowed_for(opcode).contains(mask)));
            continue;
        }
        let on: Vec<&str> = row[3].split(", ").collect();
        for &opcode in &opcodes {
            assert_eq!(
                Flags::allowed_for(opcode).contains(mask),
                on.contains(&opcode.name().unwrap()),
                "{} on {opcode:?}",
                row[2]
            );
        }
        named |= mask.0;
    }
    assert_eq!(named, 0x7F, "bits 0 to 6 are named");
    let mask = |name: &str| {
        flags
            .iter()
            .find(|row| row[2] == name)
            .map(|row| hex_cell(row[1]))
    };
    for (name, flag) in [
        ("QUIET", Flags::QUIET),
        ("WITH_TAGS", Flags::WITH_TAGS),
        ("ALLOW_STALE", Flags::ALLOW_STALE),
        ("LEASE", Flags::LEASE),
        ("REQUEST_TAGS", Flags::REQUEST_TAGS),
        ("STALE_AFTER", Flags::STALE_AFTER),
        ("SOFT", Flags::SOFT),
    ] {
        assert_eq!(mask(name), Some(u16::from(flag.0)), "{name}");
    }
    // Every byte of the reserved ranges is unknown to the crate.
    for range in [0x12..=0x1F, 0x23..=0x2F, 0x32..=0x3F, 0x51..=0x5F] {
        assert!(range.into_iter().all(|byte| Opcode(byte).name().is_none()));
    }
}

/// Each command section's "Flags:" sentence names the flags the crate
/// allows on it (GETM's is "as GET").
#[test]
fn each_command_section_names_its_flags() {
    for (heading, opcode) in [
        ("### 6.3", Opcode::GET),
        ("### 6.5", Opcode::SET),
        ("### 6.8", Opcode::INVALIDATE_TAGS),
        ("### 6.9", Opcode::FLUSH_ALL),
    ] {
        let text = section(heading).replace('\n', " ");
        let (_, after) = text.split_once("Flags: ").expect(heading);
        let names: Vec<&str> = after.split('.').next().unwrap().split(", ").collect();
        let named = names.iter().fold(Flags::NONE, |flags, name| {
            flags
                | match *name {
                    "QUIET" => Flags::QUIET,
                    "WITH_TAGS" => Flags::WITH_TAGS,
                    "ALLOW_STALE" => Flags::ALLOW_STALE,
                    "LEASE" => Flags::LEASE,
                    "REQUEST_TAGS" => Flags::REQUEST_TAGS,
                    "STALE_AFTER" => Flags::STALE_AFTER,
                    "SOFT" => Flags::SOFT,
                    other => panic!("{heading}: unknown flag {other:?}"),
                }
        });
        assert_eq!(named, Flags::allowed_for(opcode), "{heading}");
    }
    assert!(section("### 6.4").contains("Flags: as GET."));
    assert_eq!(
        Flags::allowed_for(Opcode::GETM),
        Flags::allowed_for(Opcode::GET)
    );
    assert!(section("### 6.11").contains("No flags."));
    assert_eq!(Flags::allowed_for(Opcode::TAG_STATUS), Flags::NONE);
}

#[test]
fn status_codes_are_those_of_section_4() {
    let table = rows(section("## 4."), "`0x");
    assert_eq!(table.len(), 11 + 18);
    for row in table {
        let status = Status(hex_cell(row[0]));
        match ErrorCode::from_status(status) {
            None => assert_eq!(format!("{status:?}"), row[1], "{row:?}"),
            Some(code) => {
                assert_eq!(code.name(), row[1], "{row:?}");
                assert_eq!(code.status(), status);
                let closes =
                    row[2].starts_with("fatal") || row[2].contains("closes the connection");
                assert_eq!(code.is_fatal(), closes, "{row:?}");
            }
        }
    }
}

#[test]
fn feature_bits_are_those_of_section_6_1() {
    let table = rows(section("### 6.1"), "");
    let bit = |name: &str| -> u64 {
        let row = table.iter().find(|row| row[1].starts_with(name)).unwrap();
        1 << row[0].parse::<u32>().unwrap()
    };
    assert_eq!(bit("fenced SET"), Features::FENCED_SET.0);
    assert_eq!(bit("shard-aware"), Features::SHARD_AWARE.0);
    assert_eq!(
        bit("stale-while-revalidate"),
        Features::STALE_WHILE_REVALIDATE.0
    );
    assert_eq!(bit("lease tokens"), Features::LEASES.0);
    assert_eq!(bit("pending"), Features::PENDING_INVALIDATION.0);
    assert_eq!(bit("authentication"), Features::AUTH.0);
}

#[test]
fn default_limits_are_those_of_section_7() {
    let table = rows(section("## 7."), "max_");
    // The default is the parenthesised figure if there is one, else the
    // cell's first number.
    let default = |name: &str| -> u32 {
        let row = table.iter().find(|row| row[0] == name).unwrap();
        let cell = row[1];
        let figure = cell
            .split_once('(')
            .map_or(cell, |(_, inner)| inner.trim_end_matches(')'));
        figure
            .split_whitespace()
            .next()
            .unwrap()
            .replace(',', "")
            .parse()
            .unwrap()
    };
    let limits = Limits::default();
    assert_eq!(default("max_key_length"), limits.max_key_length);
    assert_eq!(default("max_value_length"), limits.max_value_length);
    assert_eq!(default("max_tag_length"), limits.max_tag_length);
    assert_eq!(default("max_tags"), limits.max_tags);
    assert_eq!(default("max_keys_per_getm"), limits.max_keys_per_getm);
    assert_eq!(default("max_ttl"), limits.max_ttl);
    assert_eq!(default("max_frame"), limits.max_frame);
}

// ---- the frames of issue 9, byte by byte ----

/// Asserts that `encode` writes `value` as the bytes of `dump` and says
/// how long they are, and that `decode` reads them back to `value`.
fn assert_bytes<T: std::fmt::Debug + PartialEq>(
    value: &T,
    dump: &str,
    encode: impl FnOnce(&mut BytesMut) -> usize,
    decode: impl FnOnce(&mut BytesMut) -> T,
) {
    let bytes = hex(dump);
    let mut wire = BytesMut::new();
    let encoded_len = encode(&mut wire);
    assert_eq!(&wire[..], &bytes[..], "{value:?}");
    assert_eq!(encoded_len, bytes.len());
    let mut buf = BytesMut::from(&bytes[..]);
    assert_eq!(&decode(&mut buf), value);
    assert!(buf.is_empty());
}

fn assert_request_bytes(request: &Request, dump: &str) {
    let encode = |wire: &mut BytesMut| {
        ClientCodec::default().encode(request, wire).unwrap();
        request.encoded_len()
    };
    let decode = |buf: &mut BytesMut| {
        ServerCodec::default()
            .decode(buf)
            .unwrap()
            .unwrap()
            .unwrap()
    };
    assert_bytes(request, dump, encode, decode);
}

/// As [`assert_request_bytes`], the response decoded as the answer to a
/// request sent with `request_flags`.
fn assert_response_bytes(response: &Response, request_flags: Flags, dump: &str) {
    let encode = |wire: &mut BytesMut| {
        ServerCodec::default().encode(response, wire).unwrap();
        response.encoded_len()
    };
    let decode = |buf: &mut BytesMut| {
        let frame = ClientFrameCodec::default().decode(buf).unwrap().unwrap();
        frame.decode(request_flags).unwrap()
    };
    assert_bytes(response, dump, encode, decode);
}

/// §6.8: SOFT puts `expire` before `tag_count`.
#[test]
fn a_soft_invalidate_tags_is_its_expire_then_its_tags() {
    let request = Request::new(
        9,
        Command::InvalidateTags(InvalidateTags {
            tags: vec![Bytes::from_static(b"t"), Bytes::from_static(b"u:1")],
            soft_expire: Some(300),
        }),
    );
    assert_request_bytes(
        &request,
        "
        C7 01 30 40  00 00 00 00  00 00 00 09  00 00 00 0E     INVALIDATE_TAGS, flags SOFT, body_length 14
        00 00 01 2C                                            expire 300
        00 02                                                  tag_count 2
        00 01 74                                               tag \"t\"
        00 03 75 3A 31                                         tag \"u:1\"
        ",
    );
}

/// §6.5: LEASE adds `lease: u64` and STALE_AFTER `stale_after: u32`, in
/// that order, after `fence`; QUIET held in `Request::flags` joins them.
#[test]
fn a_lease_set_with_a_stale_window_carries_both_after_its_fence() {
    let request = Request {
        opaque: 7,
        flags: Flags::QUIET,
        command: Command::Set(Set {
            mode: SetMode::Set,
            client_flags: 0,
            ttl: 3600,
            fence: Some(5),
            lease: Some(0x1122_3344_5566_7788),
            stale_after: Some(60),
            key: Bytes::from_static(b"k"),
            tags: vec![Bytes::from_static(b"t")],
            value: Bytes::from_static(b"v"),
        }),
    };
    assert_eq!(request.wire_flags(), Flags(0x29));
    assert_request_bytes(
        &request,
        "
        C7 01 20 29  00 00 00 00  00 00 00 07  00 00 00 2F     SET, flags QUIET LEASE STALE_AFTER, body_length 47
        00 00 00 01                                            mode SET, reserved, tag_count 1
        00 00 00 00                                            client_flags 0
        00 00 0E 10                                            ttl 3600
        00 00 00 00 00 00 00 00                                cas 0
        00 00 00 00 00 00 00 05                                fence 5
        11 22 33 44 55 66 77 88                                lease
        00 00 00 3C                                            stale_after 60
        00 01 6B                                               key \"k\"
        00 01 74                                               tag \"t\"
        76                                                     value \"v\"
        ",
    );
}

/// §6.3: REQUEST_TAGS puts the tags before the key; ALLOW_STALE and LEASE
/// change only the response.
#[test]
fn a_get_with_request_tags_sends_them_before_its_key() {
    let request = Request {
        opaque: 3,
        flags: Flags::ALLOW_STALE | Flags::LEASE,
        command: Command::Get(Get {
            key: Bytes::from_static(b"k"),
            request_tags: Some(vec![Bytes::from_static(b"_N_T_/blog")]),
        }),
    };
    assert_request_bytes(
        &request,
        "
        C7 01 10 1C  00 00 00 00  00 00 00 03  00 00 00 0F     GET, flags ALLOW_STALE LEASE REQUEST_TAGS, body_length 15
        00 01                                                  tag_count 1
        00 0A 5F 4E 5F 54 5F 2F 62 6C 6F 67                    tag \"_N_T_/blog\"
        6B                                                     key \"k\"
        ",
    );
    // REQUEST_TAGS with no tags is kept: a tag_count of 0.
    let none = Request::new(
        4,
        Command::Get(Get {
            key: Bytes::from_static(b"k"),
            request_tags: Some(Vec::new()),
        }),
    );
    assert_request_bytes(
        &none,
        "
        C7 01 10 10  00 00 00 00  00 00 00 04  00 00 00 03     GET, flags REQUEST_TAGS, body_length 3
        00 00                                                  tag_count 0
        6B                                                     key \"k\"
        ",
    );
}

/// §6.3, §6.4: a request with LEASE is answered with `lease` after
/// `fence`, in every lookup status; a GETM frame starts with `key_index`.
#[test]
fn lookups_answering_a_lease_request_carry_the_lease_after_the_fence() {
    let get = |outcome| Response {
        opaque: 3,
        opcode: Opcode::GET,
        outcome,
    };
    assert_response_bytes(
        &get(Outcome::Miss(Miss {
            key_index: None,
            fence: 42,
            lease: Lease::from_field(Some(0x99)),
        })),
        Flags::LEASE,
        "
        C8 01 10 00  00 02 00 00  00 00 00 03  00 00 00 10     MISS, body_length 16
        00 00 00 00 00 00 00 2A                                fence 42
        00 00 00 00 00 00 00 99                                lease granted
        ",
    );
    let stale = Hit {
        key_index: None,
        fence: 42,
        lease: Lease::NotGranted,
        cas: 7,
        client_flags: 0,
        tags: Vec::new(),
        value: Bytes::from_static(b"old"),
    };
    let stale_bytes = "
        C8 01 10 00  00 08 00 00  00 00 00 03  00 00 00 21     STALE, body_length 33
        00 00 00 00 00 00 00 2A                                fence 42
        00 00 00 00 00 00 00 00                                lease 0: none granted
        00 00 00 00 00 00 00 07                                cas 7
        00 00 00 00                                            client_flags 0
        00 00                                                  tag_count 0
        6F 6C 64                                               value \"old\"
        ";
    assert_response_bytes(
        &get(Outcome::Stale(stale.clone())),
        Flags::LEASE,
        stale_bytes,
    );
    let mut borrowed = BytesMut::new();
    Response::encode_stale(3, Opcode::GET, &stale.as_ref(), &mut borrowed);
    assert_eq!(&borrowed[..], &hex(stale_bytes)[..]);
    assert_response_bytes(
        &Response {
            opaque: 5,
            opcode: Opcode::GETM,
            outcome: Outcome::HotMiss(Miss {
                key_index: Some(1),
                fence: 42,
                lease: Lease::NotGranted,
            }),
        },
        Flags::LEASE | Flags::ALLOW_STALE,
        "
        C8 01 11 00  00 09 00 00  00 00 00 05  00 00 00 12     GETM, HOT_MISS, body_length 18
        00 01                                                  key_index 1
        00 00 00 00 00 00 00 2A                                fence 42
        00 00 00 00 00 00 00 00                                lease 0
        ",
    );
    // The same hit without LEASE has no lease field: 8 bytes shorter.
    let hit = HitRef {
        lease: Lease::NotRequested,
        ..stale.as_ref()
    };
    let mut plain = BytesMut::new();
    Response::encode_hit(3, Opcode::GET, &hit, &mut plain);
    assert_eq!(plain.len(), hex(stale_bytes).len() - 8);
    assert_eq!(plain[5], Status::HIT.0 as u8);
}

/// §6.11: TAG_STATUS is a counted list of tags; its answer, four fixed
/// fields, the count, and six `u64` per tag.
#[test]
fn tag_status_and_its_answer_are_the_layouts_of_section_6_11() {
    let request = Request::new(
        4,
        Command::TagStatus(TagStatus {
            tags: vec![Bytes::from_static(b"t")],
        }),
    );
    assert_request_bytes(
        &request,
        "
        C7 01 31 00  00 00 00 00  00 00 00 04  00 00 00 05     TAG_STATUS, body_length 5
        00 01                                                  tag_count 1
        00 01 74                                               tag \"t\"
        ",
    );
    let answer = Response {
        opaque: 4,
        opcode: Opcode::TAG_STATUS,
        outcome: Outcome::TagStatus(TagStatusInfo {
            seq: 50,
            now: 1_700_000_000_000,
            forgotten_seq: 1,
            forgotten_at: 1_699_999_000_000,
            statuses: vec![TagState {
                entries: 3,
                hard_seq: 10,
                hard_at: 1_699_999_990_000,
                soft_seq: 40,
                soft_at: 1_699_999_999_000,
                soft_until: 1_700_000_299_000,
            }],
        }),
    };
    assert_response_bytes(
        &answer,
        Flags::NONE,
        "
        C8 01 31 00  00 00 00 00  00 00 00 04  00 00 00 52     OK, body_length 82
        00 00 00 00 00 00 00 32                                seq 50
        00 00 01 8B CF E5 68 00                                now
        00 00 00 00 00 00 00 01                                forgotten_seq 1
        00 00 01 8B CF D6 25 C0                                forgotten_at
        00 01                                                  tag_count 1
        00 00 00 00 00 00 00 03                                entries 3
        00 00 00 00 00 00 00 0A                                hard_seq 10
        00 00 01 8B CF E5 40 F0                                hard_at
        00 00 00 00 00 00 00 28                                soft_seq 40
        00 00 01 8B CF E5 64 18                                soft_at
        00 00 01 8B CF E9 F7 F8                                soft_until: 300 s after soft_at
        ",
    );
}

/// §6.12: AUTH's body is the token and nothing else; its OK has no body;
/// AUTH_FAILED closes the connection, AUTH_REQUIRED does not.
#[test]
fn auth_is_its_token_and_its_failure_is_fatal() {
    let request = Request::new(
        9,
        Command::Auth(Auth {
            token: Bytes::from_static(b"s3cret"),
        }),
    );
    assert_request_bytes(
        &request,
        "C7 01 50 00  00 00 00 00  00 00 00 09  00 00 00 06
         73 33 63 72 65 74",
    );
    let ok = Response {
        opaque: 9,
        opcode: Opcode::AUTH,
        outcome: Outcome::Ok,
    };
    assert_response_bytes(
        &ok,
        Flags::NONE,
        "C8 01 50 00  00 00 00 00  00 00 00 09  00 00 00 00",
    );
    assert!(ErrorCode::AuthFailed.is_fatal());
    assert!(!ErrorCode::AuthRequired.is_fatal());
    assert!(Limits::PRE_AUTH_MAX_FRAME as usize >= MAX_TOKEN_LENGTH);
    assert!(section("### 6.12").contains("greater than **4096**"));
    assert!(section("### 6.12").contains("1..=512 bytes"));
    assert_eq!(MAX_TOKEN_LENGTH, 512);
    assert_eq!(Limits::PRE_AUTH_MAX_FRAME, 4096);

    // The server's codec holds a connection to the smaller limit until
    // told otherwise, from the next frame on.
    let mut codec = ServerCodec::default();
    codec.set_max_frame(Limits::PRE_AUTH_MAX_FRAME);
    let frame = |body_length: u32| {
        let mut frame = BytesMut::new();
        frame.extend_from_slice(&[0xC7, 1, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 3]);
        frame.extend_from_slice(&body_length.to_be_bytes());
        frame
    };
    assert!(matches!(
        codec.decode(&mut frame(4097)),
        Err(FatalError::FrameTooLarge { max: 4096, .. })
    ));
    assert!(matches!(codec.decode(&mut frame(4096)), Ok(None)));
    codec.set_max_frame(codec.limits().max_frame);
    assert!(matches!(codec.decode(&mut frame(4097)), Ok(None)));
}
