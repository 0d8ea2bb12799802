//! protocol.md and this crate agree: the worked example of §10 is the bytes
//! the codecs write and read, and the tables of opcodes (§3), flags (§2.1),
//! status codes (§4), feature bits (§6.1) and default limits (§7) are the
//! crate's constants. The tests read protocol.md itself, so an edit to one
//! side that the other does not follow fails here.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use tagcached_protocol::request::{Command, Set, SetMode};
use tagcached_protocol::response::{Features, Outcome};
use tagcached_protocol::{
    ClientCodec, ErrorCode, Flags, Limits, Opcode, Request, Response, ServerCodec, Status,
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

fn hex(cell: &str) -> u16 {
    u16::from_str_radix(cell.trim_start_matches("0x"), 16).unwrap()
}

/// The bytes of each fenced hex dump in `text`: on each line, the pairs of
/// hex digits before the first run of three spaces (the annotation).
fn hex_dumps(text: &str) -> Vec<Vec<u8>> {
    text.split("```")
        .skip(1)
        .step_by(2)
        .map(|block| {
            block
                .lines()
                .flat_map(|line| line.split("   ").next().unwrap().split_whitespace())
                .map(|pair| u8::from_str_radix(pair, 16).expect("a hex byte"))
                .collect()
        })
        .collect()
}

#[test]
fn the_set_example_of_section_10_is_what_the_codecs_write_and_read() {
    let dumps = hex_dumps(section("## 10."));
    let [set_bytes, stored_bytes] = &dumps[..] else {
        panic!("§10 should hold two hex dumps, found {}", dumps.len());
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
    assert_eq!(table.len(), 11);
    for row in table {
        let opcode = Opcode(hex(row[0]) as u8);
        assert_eq!(opcode.name(), Some(row[1]), "{row:?}");
        let allowed = Flags::allowed_for(opcode);
        assert_eq!(
            allowed.contains(Flags::QUIET),
            row[3].starts_with("yes"),
            "{row:?}"
        );
        let with_tags = opcode == Opcode::GET || opcode == Opcode::GETM;
        assert_eq!(allowed.contains(Flags::WITH_TAGS), with_tags, "{row:?}");
        assert_eq!(allowed.0 & 0xFC, 0, "reserved bits are never allowed");
    }
    let flags = rows(section("### 2.1"), "");
    let mask = |name: &str| {
        flags
            .iter()
            .find(|row| row[2] == name)
            .map(|row| hex(row[1]))
    };
    assert_eq!(mask("QUIET"), Some(u16::from(Flags::QUIET.0)));
    assert_eq!(mask("WITH_TAGS"), Some(u16::from(Flags::WITH_TAGS.0)));
    // Every byte of the reserved ranges is unknown to the crate.
    for range in [0x12..=0x1F, 0x23..=0x2F, 0x31..=0x3F, 0x50..=0x5F] {
        assert!(range.into_iter().all(|byte| Opcode(byte).name().is_none()));
    }
}

#[test]
fn status_codes_are_those_of_section_4() {
    let table = rows(section("## 4."), "`0x");
    assert_eq!(table.len(), 8 + 16);
    for row in table {
        let status = Status(hex(row[0]));
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
