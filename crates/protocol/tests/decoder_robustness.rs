//! The decoders against hostile and broken input: arbitrary bytes, arbitrary
//! bodies behind sound headers, oversized length claims, and one table row
//! per error status a malformed request must get (protocol.md §2, §4, §6).
//!
//! The arbitrary-input properties run the fuzz targets' own bodies
//! (`fuzz/src/lib.rs`), so the invariants the fuzzer asserts are also
//! checked, and compiled, on every `cargo test`.

#[path = "../fuzz/src/lib.rs"]
mod fuzz_bodies;

use std::collections::HashSet;

use bytes::BytesMut;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use tokio_util::codec::Decoder;

use tagcached_protocol::request::Command;
use tagcached_protocol::response::{ErrorReply, Outcome};
use tagcached_protocol::tag::validate_tag;
use tagcached_protocol::{
    ClientCodec, ClientFrameCodec, ErrorCode, FatalError, Flags, Header, Limits, Opcode, Request,
    ServerCodec, Status, PROTOCOL_VERSION, REQUEST_MAGIC, RESPONSE_MAGIC,
};

const KNOWN_OPCODES: [Opcode; 12] = [
    Opcode::HELLO,
    Opcode::PING,
    Opcode::NOOP,
    Opcode::GET,
    Opcode::GETM,
    Opcode::SET,
    Opcode::DELETE,
    Opcode::TOUCH,
    Opcode::INVALIDATE_TAGS,
    Opcode::TAG_STATUS,
    Opcode::FLUSH_ALL,
    Opcode::STATS,
];

fn frame(magic: u8, opcode: Opcode, flags: u8, status: u16, opaque: u32, body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(16 + body.len());
    Header {
        magic,
        version: PROTOCOL_VERSION,
        opcode,
        flags,
        status,
        opaque,
        body_length: body.len() as u32,
    }
    .write(&mut bytes);
    bytes.extend_from_slice(body);
    bytes
}

fn request_frame(opcode: Opcode, flags: u8, opaque: u32, body: &[u8]) -> Vec<u8> {
    frame(REQUEST_MAGIC, opcode, flags, 0, opaque, body)
}

/// A body written field by field, as protocol.md §6 lays them out.
#[derive(Default, Clone)]
struct Body(Vec<u8>);

impl Body {
    fn u8(mut self, value: u8) -> Body {
        self.0.push(value);
        self
    }
    fn u16(mut self, value: u16) -> Body {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }
    fn u32(mut self, value: u32) -> Body {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }
    fn u64(mut self, value: u64) -> Body {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }
    fn string(self, bytes: &[u8]) -> Body {
        self.u16(bytes.len() as u16).raw(bytes)
    }
    fn strings(self, items: &[&[u8]]) -> Body {
        items.iter().fold(self, |body, item| body.string(item))
    }
    fn raw(mut self, bytes: &[u8]) -> Body {
        self.0.extend_from_slice(bytes);
        self
    }
    fn truncated(mut self, len: usize) -> Body {
        self.0.truncate(len);
        self
    }
}

/// SET's fixed fields (§6.5) with client_flags, cas and fence 0.
fn set_fixed(mode: u8, tag_count: u16, ttl: u32) -> Body {
    Body::default()
        .u8(mode)
        .u8(0)
        .u16(tag_count)
        .u32(0)
        .u32(ttl)
        .u64(0)
        .u64(0)
}

/// SET's fixed fields with LEASE (lease 1) and STALE_AFTER.
fn lease_set_fixed(tag_count: u16, ttl: u32, stale_after: u32) -> Body {
    set_fixed(0, tag_count, ttl).u64(1).u32(stale_after)
}

fn set(key: &[u8], tags: &[&[u8]], value: &[u8]) -> Body {
    set_fixed(0, tags.len() as u16, 0)
        .string(key)
        .strings(tags)
        .raw(value)
}

fn set_with_tag(tag: &[u8]) -> Body {
    set(b"k", &[tag], b"v")
}

fn counted(items: &[&[u8]]) -> Body {
    Body::default().u16(items.len() as u16).strings(items)
}

// ---- table: each malformed request gets its status, and the next frame
// ---- in the buffer still decodes ----

struct Case {
    name: &'static str,
    opcode: Opcode,
    flags: u8,
    body: Body,
    expect: ErrorCode,
}

fn case(name: &'static str, opcode: Opcode, flags: u8, body: Body, expect: ErrorCode) -> Case {
    Case {
        name,
        opcode,
        flags,
        body,
        expect,
    }
}

// One row per line: rustfmt would spread each over seven.
#[rustfmt::skip]
fn error_cases() -> Vec<Case> {
    use ErrorCode::*;
    let limits = Limits::default();
    let long_key = vec![b'k'; limits.max_key_length as usize + 1];
    let long_tag = vec![b't'; limits.max_tag_length as usize + 1];
    let big_value = vec![0; limits.max_value_length as usize + 1];
    let too_many = limits.max_tags as u16 + 1;
    let bad_ttl = limits.max_ttl + 1;
    let none = Body::default;
    let quiet = Flags::QUIET.0;
    let with_tags = Flags::WITH_TAGS.0;
    let allow_stale = Flags::ALLOW_STALE.0;
    let lease = Flags::LEASE.0;
    let request_tags = Flags::REQUEST_TAGS.0;
    let stale_after = Flags::STALE_AFTER.0;
    let lease_stale = lease | stale_after;
    let soft = Flags::SOFT.0;
    let too_many_keys = limits.max_keys_per_getm as u16 + 1;
    vec![
        // MALFORMED: short bodies, overruns, leftovers.
        case("PING with a body", Opcode::PING, 0, none().u8(0), Malformed),
        case("NOOP with a body", Opcode::NOOP, 0, none().u8(0), Malformed),
        case("STATS with a body", Opcode::STATS, 0, none().u32(1), Malformed),
        case("FLUSH_ALL with a body", Opcode::FLUSH_ALL, 0, none().u8(1), Malformed),
        case("HELLO without its fields", Opcode::HELLO, 0, none(), Malformed),
        case("HELLO cut in want_shard", Opcode::HELLO, 0, none().u8(1).u8(0), Malformed),
        case("TOUCH cut in its ttl", Opcode::TOUCH, 0, none().u16(0).u8(0), Malformed),
        case("empty SET", Opcode::SET, 0, none(), Malformed),
        case("SET cut in its fence", Opcode::SET, 0, set(b"k", &[], b"").truncated(27), Malformed),
        case("SET with mode 4", Opcode::SET, 0, set_fixed(4, 0, 0).string(b"k"), Malformed),
        case("SET without its key", Opcode::SET, 0, set_fixed(0, 0, 0), Malformed),
        case("SET key overruns", Opcode::SET, 0, set_fixed(0, 0, 0).u16(9).raw(b"abc"), Malformed),
        case("SET short of its tags", Opcode::SET, 0, set_fixed(0, 2, 0).string(b"k").string(b"t"), Malformed),
        case("SET tag overruns", Opcode::SET, 0, set_fixed(0, 1, 0).string(b"k").u16(5).raw(b"ab"), Malformed),
        case("empty GETM", Opcode::GETM, 0, none(), Malformed),
        case("GETM with leftover bytes", Opcode::GETM, 0, counted(&[b"k"]).u8(0), Malformed),
        case("GETM short of its keys", Opcode::GETM, 0, none().u16(2).string(b"k"), Malformed),
        case("GETM key overruns", Opcode::GETM, 0, none().u16(1).u16(3).raw(b"k"), Malformed),
        case("INVALIDATE_TAGS with no tags", Opcode::INVALIDATE_TAGS, 0, none().u16(0), Malformed),
        case("INVALIDATE_TAGS with leftover bytes", Opcode::INVALIDATE_TAGS, 0, counted(&[b"t"]).u8(b'x'), Malformed),
        case("INVALIDATE_TAGS short of its tags", Opcode::INVALIDATE_TAGS, 0, none().u16(3).string(b"t"), Malformed),
        case("soft INVALIDATE_TAGS cut in its expire", Opcode::INVALIDATE_TAGS, soft, none().u16(1), Malformed),
        case("soft INVALIDATE_TAGS without tag_count", Opcode::INVALIDATE_TAGS, soft, none().u32(5), Malformed),
        case("soft INVALIDATE_TAGS with no tags", Opcode::INVALIDATE_TAGS, soft, none().u32(5).u16(0), Malformed),
        case("hard INVALIDATE_TAGS read as soft", Opcode::INVALIDATE_TAGS, soft, counted(&[b"t"]), Malformed),
        case("soft FLUSH_ALL without its expire", Opcode::FLUSH_ALL, soft, none(), Malformed),
        case("soft FLUSH_ALL with leftover bytes", Opcode::FLUSH_ALL, soft, none().u32(5).u8(0), Malformed),
        case("lease SET cut in its lease", Opcode::SET, lease, set_fixed(0, 0, 0).u32(1), Malformed),
        case("SET cut in its stale_after", Opcode::SET, stale_after, set_fixed(0, 0, 0).u16(1), Malformed),
        case("GET cut in its request tag_count", Opcode::GET, request_tags, none().u8(0), Malformed),
        case("GET short of its request tags", Opcode::GET, request_tags, none().u16(2).string(b"t"), Malformed),
        case("GET request tag overruns", Opcode::GET, request_tags, none().u16(1).u16(9).raw(b"t"), Malformed),
        case("GETM without key_count after its request tags", Opcode::GETM, request_tags, counted(&[b"t"]), Malformed),
        case("GETM with leftover bytes after request tags", Opcode::GETM, request_tags, counted(&[b"t"]).u16(1).string(b"k").u8(0), Malformed),
        case("TAG_STATUS with no tags", Opcode::TAG_STATUS, 0, none().u16(0), Malformed),
        case("TAG_STATUS with leftover bytes", Opcode::TAG_STATUS, 0, counted(&[b"t"]).u8(b'x'), Malformed),
        case("TAG_STATUS short of its tags", Opcode::TAG_STATUS, 0, none().u16(2).string(b"t"), Malformed),
        case("empty TAG_STATUS", Opcode::TAG_STATUS, 0, none(), Malformed),
        // KEY_INVALID: empty, or one byte over max_key_length.
        case("GET empty key", Opcode::GET, 0, none(), KeyInvalid),
        case("GET key too long", Opcode::GET, 0, none().raw(&long_key), KeyInvalid),
        case("DELETE empty key", Opcode::DELETE, 0, none(), KeyInvalid),
        case("DELETE key too long", Opcode::DELETE, 0, none().raw(&long_key), KeyInvalid),
        case("TOUCH empty key", Opcode::TOUCH, 0, none().u32(10), KeyInvalid),
        case("TOUCH key too long", Opcode::TOUCH, 0, none().u32(10).raw(&long_key), KeyInvalid),
        case("SET empty key", Opcode::SET, 0, set(b"", &[], b"v"), KeyInvalid),
        case("SET key too long", Opcode::SET, 0, set(&long_key, &[], b"v"), KeyInvalid),
        case("GETM one empty key", Opcode::GETM, 0, counted(&[b"a", b""]), KeyInvalid),
        case("GETM one key too long", Opcode::GETM, 0, counted(&[&long_key]), KeyInvalid),
        case("GET with request tags and an empty key", Opcode::GET, request_tags, counted(&[b"t"]), KeyInvalid),
        case("GET with request tags and a key too long", Opcode::GET, request_tags, none().u16(0).raw(&long_key), KeyInvalid),
        case("GETM with request tags and an empty key", Opcode::GETM, request_tags, counted(&[b"t"]).u16(1).string(b""), KeyInvalid),
        case("lease SET empty key", Opcode::SET, lease_stale, lease_set_fixed(0, 0, 0).string(b""), KeyInvalid),
        // VALUE_TOO_LARGE.
        case("SET value one byte too long", Opcode::SET, 0, set(b"k", &[], &big_value), ValueTooLarge),
        // TAG_INVALID (§8.1).
        case("empty tag", Opcode::SET, 0, set_with_tag(b""), TagInvalid),
        case("tag with a space", Opcode::SET, 0, set_with_tag(b"a b"), TagInvalid),
        case("tag with a tab", Opcode::SET, 0, set_with_tag(b"a\tb"), TagInvalid),
        case("tag with DEL", Opcode::SET, 0, set_with_tag(b"a\x7f"), TagInvalid),
        case("tag with NUL", Opcode::SET, 0, set_with_tag(b"\0"), TagInvalid),
        case("tag with no-break space", Opcode::SET, 0, set_with_tag("a\u{a0}b".as_bytes()), TagInvalid),
        case("tag with em space", Opcode::SET, 0, set_with_tag("\u{2003}".as_bytes()), TagInvalid),
        case("tag with C1 control NEL", Opcode::SET, 0, set_with_tag("é\u{85}".as_bytes()), TagInvalid),
        case("tag with a line separator", Opcode::SET, 0, set_with_tag("x\u{2028}".as_bytes()), TagInvalid),
        case("tag not UTF-8", Opcode::SET, 0, set_with_tag(&[b'a', 0xFF]), TagInvalid),
        case("tag with an overlong encoding", Opcode::SET, 0, set_with_tag(&[0xC0, 0xAF]), TagInvalid),
        case("tag cut inside a character", Opcode::SET, 0, set_with_tag(&"é".as_bytes()[..1]), TagInvalid),
        case("tag too long", Opcode::SET, 0, set_with_tag(&long_tag), TagInvalid),
        case("INVALIDATE_TAGS tag with a newline", Opcode::INVALIDATE_TAGS, 0, counted(&[b"ok", b"line\n"]), TagInvalid),
        case("soft INVALIDATE_TAGS empty tag", Opcode::INVALIDATE_TAGS, soft, none().u32(5).u16(1).string(b""), TagInvalid),
        case("GET request tag with a space", Opcode::GET, request_tags, counted(&[b"a b"]).raw(b"k"), TagInvalid),
        case("GETM request tag too long", Opcode::GETM, request_tags, counted(&[&long_tag]).u16(1).string(b"k"), TagInvalid),
        case("TAG_STATUS tag not UTF-8", Opcode::TAG_STATUS, 0, counted(&[b"ok", &[0xFF]]), TagInvalid),
        // TOO_MANY_TAGS.
        case("SET with max_tags + 1 tags", Opcode::SET, 0, set_fixed(0, too_many, 0).string(b"k"), TooManyTags),
        case("INVALIDATE_TAGS with max_tags + 1 tags", Opcode::INVALIDATE_TAGS, 0, none().u16(too_many), TooManyTags),
        case("soft INVALIDATE_TAGS with max_tags + 1 tags", Opcode::INVALIDATE_TAGS, soft, none().u32(5).u16(too_many), TooManyTags),
        case("GET with max_tags + 1 request tags", Opcode::GET, request_tags, none().u16(too_many).raw(b"k"), TooManyTags),
        case("GETM with max_tags + 1 request tags", Opcode::GETM, request_tags, none().u16(too_many), TooManyTags),
        case("TAG_STATUS with max_tags + 1 tags", Opcode::TAG_STATUS, 0, none().u16(too_many), TooManyTags),
        // BAD_TTL.
        case("SET ttl over max_ttl", Opcode::SET, 0, set_fixed(0, 0, bad_ttl).string(b"k"), BadTtl),
        case("TOUCH ttl over max_ttl", Opcode::TOUCH, 0, none().u32(bad_ttl).raw(b"k"), BadTtl),
        case("TOUCH ttl u32::MAX", Opcode::TOUCH, 0, none().u32(u32::MAX).raw(b"k"), BadTtl),
        case("SET stale_after over max_ttl", Opcode::SET, stale_after, set_fixed(0, 0, 0).u32(bad_ttl).string(b"k"), BadTtl),
        case("lease SET stale_after u32::MAX", Opcode::SET, lease_stale, lease_set_fixed(0, 0, u32::MAX).string(b"k"), BadTtl),
        case("soft INVALIDATE_TAGS expire over max_ttl", Opcode::INVALIDATE_TAGS, soft, none().u32(bad_ttl).u16(1).string(b"t"), BadTtl),
        case("soft FLUSH_ALL expire over max_ttl", Opcode::FLUSH_ALL, soft | quiet, none().u32(bad_ttl), BadTtl),
        // TOO_MANY_KEYS.
        case("GETM with no keys", Opcode::GETM, 0, none().u16(0), TooManyKeys),
        case("GETM with max + 1 keys", Opcode::GETM, 0, none().u16(too_many_keys), TooManyKeys),
        case("GETM with request tags and no keys", Opcode::GETM, request_tags, counted(&[b"t"]).u16(0), TooManyKeys),
        // BAD_FLAGS (§2.1, §5).
        case("WITH_TAGS on SET", Opcode::SET, with_tags, set(b"k", &[], b"v"), BadFlags),
        case("QUIET on PING", Opcode::PING, quiet, none(), BadFlags),
        case("QUIET on NOOP", Opcode::NOOP, quiet, none(), BadFlags),
        case("QUIET on STATS", Opcode::STATS, quiet, none(), BadFlags),
        case("QUIET on HELLO", Opcode::HELLO, quiet, none().u8(1).u16(0xFFFF), BadFlags),
        case("WITH_TAGS on DELETE", Opcode::DELETE, with_tags, none().raw(b"k"), BadFlags),
        case("WITH_TAGS on TOUCH", Opcode::TOUCH, with_tags, none().u32(0).raw(b"k"), BadFlags),
        case("WITH_TAGS on INVALIDATE_TAGS", Opcode::INVALIDATE_TAGS, with_tags, counted(&[b"t"]), BadFlags),
        case("WITH_TAGS on FLUSH_ALL", Opcode::FLUSH_ALL, with_tags, none(), BadFlags),
        case("reserved bit 7 on GET", Opcode::GET, 0x80, none().raw(b"k"), BadFlags),
        case("reserved bit 7 on GETM", Opcode::GETM, 0x80, counted(&[b"k"]), BadFlags),
        case("ALLOW_STALE on SET", Opcode::SET, allow_stale, set(b"k", &[], b"v"), BadFlags),
        case("REQUEST_TAGS on SET", Opcode::SET, request_tags, set(b"k", &[], b"v"), BadFlags),
        case("SOFT on GET", Opcode::GET, soft, none().raw(b"k"), BadFlags),
        case("STALE_AFTER on GETM", Opcode::GETM, stale_after, counted(&[b"k"]), BadFlags),
        case("LEASE on DELETE", Opcode::DELETE, lease, none().raw(b"k"), BadFlags),
        case("SOFT on TOUCH", Opcode::TOUCH, soft, none().u32(0).raw(b"k"), BadFlags),
        case("LEASE on INVALIDATE_TAGS", Opcode::INVALIDATE_TAGS, lease, counted(&[b"t"]), BadFlags),
        case("ALLOW_STALE on FLUSH_ALL", Opcode::FLUSH_ALL, allow_stale, none(), BadFlags),
        case("QUIET on TAG_STATUS", Opcode::TAG_STATUS, quiet, counted(&[b"t"]), BadFlags),
        case("SOFT on TAG_STATUS", Opcode::TAG_STATUS, soft, counted(&[b"t"]), BadFlags),
        // UNKNOWN_OPCODE: the reserved ranges of §3 and beyond.
        case("opcode 0x03", Opcode(0x03), 0, none(), UnknownOpcode),
        case("opcode 0x12 (lease GET)", Opcode(0x12), 0, none().raw(b"k"), UnknownOpcode),
        case("opcode 0x1F", Opcode(0x1F), 0, none(), UnknownOpcode),
        case("opcode 0x23 (lease SET)", Opcode(0x23), 0, none(), UnknownOpcode),
        case("opcode 0x32 (pending invalidation)", Opcode(0x32), 0, none(), UnknownOpcode),
        case("opcode 0x3F", Opcode(0x3F), 0, none(), UnknownOpcode),
        case("opcode 0x42", Opcode(0x42), 0, none(), UnknownOpcode),
        case("opcode 0x51 (authentication)", Opcode(0x51), 0, none(), UnknownOpcode),
        case("AUTH with no token", Opcode::AUTH, 0, none(), Malformed),
        case("AUTH with a token too long", Opcode::AUTH, 0, none().raw(&[b'x'; 513]), Malformed),
        case("QUIET on AUTH", Opcode::AUTH, quiet, none().raw(b"token"), BadFlags),
        case("opcode 0xFF", Opcode(0xFF), 0, none(), UnknownOpcode),
        // Precedence (§6): opcode, flags, fixed fields, field values in order.
        case("unknown opcode outranks bad flags", Opcode(0x12), 0xFF, none(), UnknownOpcode),
        // Regression: the body was checked first, so a flag that a later
        // version gives a new body layout was answered MALFORMED.
        case("bad flags outrank a bad body", Opcode::PING, quiet, none().u8(0), BadFlags),
        case("bad flags outrank a bad key", Opcode::GET, 0x80, none(), BadFlags),
        // A flag that a body could be read with is still refused first.
        case("bad flags outrank a soft body", Opcode::TAG_STATUS, soft, none().u32(1).u16(0), BadFlags),
        // Regression: SET checked its TTL before reading the other fixed fields.
        case("short SET outranks its ttl", Opcode::SET, 0, set_fixed(0, 0, bad_ttl).truncated(16), Malformed),
        case("SET mode outranks its ttl", Opcode::SET, 0, set_fixed(9, 0, bad_ttl).string(b"k"), Malformed),
        case("SET tag count outranks its ttl", Opcode::SET, 0, set_fixed(0, too_many, bad_ttl).string(b"k"), TooManyTags),
        case("SET ttl outranks its key", Opcode::SET, 0, set_fixed(0, 0, bad_ttl).string(b""), BadTtl),
        case("SET key outranks its tags", Opcode::SET, 0, set_fixed(0, 1, 0).string(b"").string(b" "), KeyInvalid),
        case("SET tags outrank its value", Opcode::SET, 0, set(b"k", &[b" "], &big_value), TagInvalid),
        // Issue 9: the optional fixed fields are fixed fields (§6).
        case("SET cut in its lease outranks its tag count", Opcode::SET, lease_stale, set_fixed(0, too_many, 0).u32(0), Malformed),
        case("SET cut in its stale_after outranks its mode", Opcode::SET, lease_stale, set_fixed(9, 0, 0).u64(1).u16(0), Malformed),
        case("SET ttl outranks its stale_after", Opcode::SET, stale_after, set_fixed(0, 0, bad_ttl).u32(0).string(b""), BadTtl),
        case("SET stale_after outranks its key", Opcode::SET, lease_stale, lease_set_fixed(0, 0, bad_ttl).string(b""), BadTtl),
        case("SET tag count outranks its stale_after", Opcode::SET, stale_after, set_fixed(0, too_many, 0).u32(bad_ttl), TooManyTags),
        case("soft expire outranks a tag count of 0", Opcode::INVALIDATE_TAGS, soft, none().u32(bad_ttl).u16(0), BadTtl),
        case("soft expire outranks too many tags", Opcode::INVALIDATE_TAGS, soft, none().u32(bad_ttl).u16(too_many), BadTtl),
        case("soft INVALIDATE_TAGS cut in tag_count outranks its expire", Opcode::INVALIDATE_TAGS, soft, none().u32(bad_ttl).u8(1), Malformed),
        case("soft FLUSH_ALL expire outranks leftover bytes", Opcode::FLUSH_ALL, soft, none().u32(bad_ttl).u8(0), BadTtl),
        case("request tag count outranks the key", Opcode::GET, request_tags, none().u16(too_many), TooManyTags),
        case("request tags outrank the key", Opcode::GET, request_tags, counted(&[b" "]), TagInvalid),
        case("GETM request tags outrank its key_count", Opcode::GETM, request_tags, counted(&[b" "]).u16(0), TagInvalid),
        case("GETM request tag count outranks its keys", Opcode::GETM, request_tags, none().u16(too_many).u16(too_many_keys), TooManyTags),
    ]
}

#[test]
fn each_malformed_request_gets_its_status_and_the_next_frame_still_decodes() {
    let ping = request_frame(Opcode::PING, 0, 0xC0FFEE, &[]);
    let mut codes = HashSet::new();
    for (index, case) in error_cases().into_iter().enumerate() {
        let opaque = index as u32 + 1;
        let mut buf =
            BytesMut::from(&request_frame(case.opcode, case.flags, opaque, &case.body.0)[..]);
        buf.extend_from_slice(&ping);
        let mut codec = ServerCodec::default();
        let error = match codec.decode(&mut buf) {
            Ok(Some(Err(error))) => error,
            other => panic!("{}: expected {:?}, got {other:?}", case.name, case.expect),
        };
        assert_eq!(
            error.error.code, case.expect,
            "{}: {}",
            case.name, error.error.message
        );
        assert!(!error.error.code.is_fatal(), "{}", case.name);
        assert_eq!(
            (error.opaque, error.opcode),
            (opaque, case.opcode),
            "{}",
            case.name
        );
        assert!(!error.error.message.is_empty(), "{}", case.name);
        assert_eq!(ErrorReply::from(error.error).code, case.expect);
        assert_eq!(buf.len(), ping.len(), "{}: not consumed whole", case.name);
        let next = codec.decode(&mut buf).unwrap().unwrap().unwrap();
        assert_eq!(next, Request::new(0xC0FFEE, Command::Ping), "{}", case.name);
        assert!(buf.is_empty());
        codes.insert(case.expect);
    }
    assert_eq!(
        codes.len(),
        9,
        "every request-level status has a row: {codes:?}"
    );
}

// ---- framing errors ----

#[test]
fn a_length_over_max_frame_is_fatal_before_the_buffer_grows() {
    let limits = Limits::default();
    for declared in [limits.max_frame + 1, u32::MAX] {
        let mut header = request_frame(Opcode::SET, 0, 9, &[]);
        header[12..16].copy_from_slice(&declared.to_be_bytes());
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(&header);
        buf.extend_from_slice(b"the first bytes of a body");
        let len = buf.len();
        match ServerCodec::new(limits).decode(&mut buf) {
            Err(
                ref fatal @ FatalError::FrameTooLarge {
                    opaque: 9,
                    opcode: Opcode::SET,
                    length,
                    max,
                },
            ) => {
                assert_eq!((length, max), (declared, limits.max_frame));
                assert_eq!(
                    fatal.response_parts(),
                    Some((ErrorCode::FrameTooLarge, 9, Opcode::SET))
                );
            }
            other => panic!("declared {declared}: {other:?}"),
        }
        assert_eq!(buf.len(), len);
        assert!(buf.capacity() <= 64, "reserved {} bytes", buf.capacity());

        let mut response = frame(RESPONSE_MAGIC, Opcode::GET, 0, 1, 9, &[]);
        response[12..16].copy_from_slice(&declared.to_be_bytes());
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(&response);
        let result = ClientCodec::new(limits.max_frame).decode(&mut buf);
        assert!(
            matches!(result, Err(FatalError::FrameTooLarge { .. })),
            "{result:?}"
        );
        assert!(buf.capacity() <= 64, "reserved {} bytes", buf.capacity());
    }
}

#[test]
fn a_length_of_exactly_max_frame_waits_for_its_body() {
    let limits = Limits {
        max_frame: 100,
        ..Limits::default()
    };
    let mut header = request_frame(Opcode::GET, 0, 1, &[]);
    header[12..16].copy_from_slice(&100u32.to_be_bytes());
    let mut buf = BytesMut::from(&header[..]);
    let mut codec = ServerCodec::new(limits);
    assert!(codec.decode(&mut buf).unwrap().is_none());
    buf.extend_from_slice(&[b'k'; 99]);
    assert!(codec.decode(&mut buf).unwrap().is_none());
    buf.extend_from_slice(b"k");
    let request = codec.decode(&mut buf).unwrap().unwrap().unwrap();
    assert_eq!(request.command.routing_key(), Some(&[b'k'; 100][..]));
}

/// A peer announcing the largest frame and sending a few bytes of it makes
/// the decoder hold those bytes, not room for the whole frame (issue 8: a
/// server reserved 2 MiB per such connection).
#[test]
fn a_frame_announced_but_not_sent_reserves_nothing_for_its_body() {
    let limits = Limits::default();
    let mut header = request_frame(Opcode::SET, 0, 1, &[]);
    header[12..16].copy_from_slice(&limits.max_frame.to_be_bytes());
    let mut buf = BytesMut::with_capacity(64);
    buf.extend_from_slice(&header);
    buf.extend_from_slice(b"a few bytes");
    assert!(ServerCodec::new(limits).decode(&mut buf).unwrap().is_none());
    assert!(buf.capacity() <= 64, "reserved {} bytes", buf.capacity());

    let mut response = frame(RESPONSE_MAGIC, Opcode::GET, 0, 1, 9, &[]);
    response[12..16].copy_from_slice(&limits.max_frame.to_be_bytes());
    let mut buf = BytesMut::with_capacity(64);
    buf.extend_from_slice(&response);
    assert!(ClientCodec::new(limits.max_frame)
        .decode(&mut buf)
        .unwrap()
        .is_none());
    assert!(buf.capacity() <= 64, "reserved {} bytes", buf.capacity());
}

#[test]
fn wrong_magic_and_version_are_fatal() {
    let cases: [(Vec<u8>, ErrorCode, u32); 3] = [
        (
            frame(RESPONSE_MAGIC, Opcode::PING, 0, 0, 5, &[]),
            ErrorCode::BadMagic,
            0,
        ),
        (
            b"GET /index.html HTTP/1.1\r\n".to_vec(),
            ErrorCode::BadMagic,
            0,
        ),
        (
            {
                let mut bytes = request_frame(Opcode::PING, 0, 5, &[]);
                bytes[1] = 2;
                bytes
            },
            ErrorCode::BadVersion,
            5,
        ),
    ];
    for (bytes, code, opaque) in cases {
        let mut buf = BytesMut::from(&bytes[..]);
        let fatal = ServerCodec::default().decode(&mut buf).unwrap_err();
        let (found, echoed, _) = fatal.response_parts().unwrap();
        assert_eq!((found, echoed), (code, opaque), "{fatal}");
        assert!(found.is_fatal());
        assert_eq!(buf.len(), bytes.len());
    }
    // A request frame is not a response.
    let mut buf = BytesMut::from(&request_frame(Opcode::PING, 0, 1, &[])[..]);
    let result = ClientCodec::default().decode(&mut buf);
    assert!(matches!(
        result,
        Err(FatalError::BadMagic {
            found: REQUEST_MAGIC
        })
    ));
}

/// Regression (issue 8, item 9): a memcached client's `mg foo v\r\n` is
/// shorter than a header, and used to wait for the rest of a header that
/// never came; a wrong first byte is fatal at once.
#[test]
fn a_wrong_magic_is_fatal_from_the_first_byte() {
    for bytes in [&b"mg foo v\r\n"[..], b"g", b"\x80"] {
        let mut buf = BytesMut::from(bytes);
        let fatal = ServerCodec::default().decode(&mut buf).unwrap_err();
        assert!(
            matches!(fatal, FatalError::BadMagic { found } if found == bytes[0]),
            "{fatal}"
        );
        assert_eq!(buf.len(), bytes.len(), "nothing consumed");
    }
    let mut buf = BytesMut::from(&[REQUEST_MAGIC][..]);
    assert!(ServerCodec::default().decode(&mut buf).unwrap().is_none());
    let mut buf = BytesMut::from(&[REQUEST_MAGIC][..]);
    assert!(matches!(
        ClientCodec::default().decode(&mut buf),
        Err(FatalError::BadMagic {
            found: REQUEST_MAGIC
        })
    ));
}

#[test]
fn a_response_body_that_does_not_fit_its_status_is_malformed() {
    let response =
        |opcode, status: Status, body: &[u8]| frame(RESPONSE_MAGIC, opcode, 0, status.0, 1, body);
    let cases = [
        response(Opcode::SET, Status::STORED, &[0; 7]),
        response(Opcode::PING, Status::OK, b"x"),
        response(Opcode::GETM, Status::MISS, &[0; 8]),
        response(Opcode::GET, Status::MISS, &[0; 10]),
        response(Opcode::FLUSH_ALL, Status::OK, &[]),
        response(Opcode::HELLO, Status::OK, &[1; 20]),
        response(Opcode::SET, Status::LEASE_LOST, &[0]),
        response(Opcode::GET, Status::HOT_MISS, &[0; 7]),
        response(Opcode::GETM, Status::STALE, &[0; 21]),
        response(Opcode::TAG_STATUS, Status::OK, &[0; 33]),
        // tag_count 1 and a status one byte short.
        response(
            Opcode::TAG_STATUS,
            Status::OK,
            &Body::default().raw(&[0; 32]).u16(1).raw(&[0; 47]).0,
        ),
        response(
            Opcode::GET,
            Status::HIT,
            &Body::default()
                .u64(1)
                .u64(2)
                .u32(3)
                .u16(1)
                .u16(4)
                .raw(b"ab")
                .0,
        ),
    ];
    for bytes in cases {
        let mut buf = BytesMut::from(&bytes[..]);
        let result = ClientCodec::default().decode(&mut buf);
        assert!(
            matches!(result, Err(FatalError::MalformedResponse(ref invalid)) if invalid.code == ErrorCode::Malformed),
            "{bytes:02x?}: {result:?}"
        );
    }
}

/// A lookup answering a request with LEASE has 8 more bytes after `fence`:
/// a MISS sent with them is too long to read without LEASE, and one sent
/// without them too short to read with it. A HIT ends in its value, so both
/// readings of it succeed and differ: only the request tells which is
/// right, and a client must say which request a frame answers.
#[test]
fn a_lookup_is_read_by_the_flags_of_its_request() {
    let miss_with_lease = frame(RESPONSE_MAGIC, Opcode::GET, 0, Status::MISS.0, 1, &[0; 16]);
    let plain_miss = frame(
        RESPONSE_MAGIC,
        Opcode::GETM,
        0,
        Status::HOT_MISS.0,
        1,
        &[0; 10],
    );
    for (bytes, flags) in [(&miss_with_lease, Flags::NONE), (&plain_miss, Flags::LEASE)] {
        let mut buf = BytesMut::from(&bytes[..]);
        let frame = ClientFrameCodec::default()
            .decode(&mut buf)
            .unwrap()
            .unwrap();
        let invalid = frame.decode(flags).unwrap_err();
        assert_eq!(
            invalid.code,
            ErrorCode::Malformed,
            "{bytes:02x?} with {flags:?}"
        );
    }
    let mut buf = BytesMut::from(&miss_with_lease[..]);
    assert!(matches!(
        ClientCodec::default().decode(&mut buf),
        Err(FatalError::MalformedResponse(_))
    ));
    // A hit of 30 bytes is a lease hit with an empty value, or a plain hit
    // whose value is 8 bytes long.
    let hit = frame(RESPONSE_MAGIC, Opcode::GET, 0, Status::HIT.0, 1, &[0; 30]);
    for (flags, value_len) in [(Flags::LEASE, 0), (Flags::NONE, 8)] {
        let mut buf = BytesMut::from(&hit[..]);
        let frame = ClientFrameCodec::default()
            .decode(&mut buf)
            .unwrap()
            .unwrap();
        match frame.decode(flags).unwrap().outcome {
            Outcome::Hit(hit) => assert_eq!(hit.value.len(), value_len, "{flags:?}"),
            other => panic!("{other:?}"),
        }
    }
}

// ---- arbitrary input ----

/// A byte more likely than chance to be interesting to a validator.
fn spicy_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        24 => b'a'..=b'z',
        1 => select(vec![b' ', b'\t', b'\n', 0, 0x7F, 0x80, 0xC2, 0xA0, 0xC3, 0xA9, 0xE2, 0xFF]),
        1 => any::<u8>(),
    ]
}

fn spicy_string() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![4 => vec(spicy_byte(), 1..=6), 1 => vec(spicy_byte(), 0..=20)]
        .prop_map(|bytes| Body::default().string(&bytes).0)
}

/// A u16 count and that many strings, the count now and then off by one.
fn counted_strings(max: usize) -> impl Strategy<Value = (u16, Vec<u8>)> {
    (
        vec(spicy_string(), 0..=max),
        prop_oneof![8 => Just(0), 1 => Just(-1), 1 => Just(1)],
    )
        .prop_map(|(items, skew)| ((items.len() as i32 + skew).max(0) as u16, items.concat()))
}

fn interesting_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => Just(0),
        4 => select(vec![1, 999, 1000, 1001, 3000, u32::MAX]),
        1 => any::<u32>(),
    ]
}

/// `value` in front of `body` when `flag` is among `flags`: the optional
/// fixed fields of issue 9.
fn optional(flags: u8, flag: Flags, value: Body) -> Vec<u8> {
    if flags & flag.0 != 0 {
        value.0
    } else {
        Vec::new()
    }
}

/// A body shaped like `opcode`'s layout with `flags`, with small counts and
/// lengths that straddle the small limits of
/// `fuzz_bodies::configure_server`, so that most bodies parse and each
/// limit is met from both sides.
fn shaped_body(opcode: Opcode, flags: u8) -> BoxedStrategy<Vec<u8>> {
    let rest = vec(spicy_byte(), 0..=20);
    let request_tags = counted_strings(4).prop_map(move |(count, tags)| {
        optional(
            flags,
            Flags::REQUEST_TAGS,
            Body::default().u16(count).raw(&tags),
        )
    });
    let soft_expire = interesting_u32()
        .prop_map(move |expire| optional(flags, Flags::SOFT, Body::default().u32(expire)));
    match opcode {
        Opcode::HELLO => (any::<u8>(), any::<u16>(), rest)
            .prop_map(|(version, shard, name)| Body::default().u8(version).u16(shard).raw(&name).0)
            .boxed(),
        Opcode::GET => (request_tags, rest)
            .prop_map(|(tags, key)| [tags, key].concat())
            .boxed(),
        Opcode::DELETE => rest.boxed(),
        Opcode::TOUCH => (interesting_u32(), rest)
            .prop_map(|(ttl, key)| Body::default().u32(ttl).raw(&key).0)
            .boxed(),
        Opcode::GETM => (request_tags, counted_strings(5))
            .prop_map(|(tags, (count, keys))| {
                [tags, Body::default().u16(count).raw(&keys).0].concat()
            })
            .boxed(),
        Opcode::INVALIDATE_TAGS => (soft_expire, counted_strings(5))
            .prop_map(|(expire, (count, tags))| {
                [expire, Body::default().u16(count).raw(&tags).0].concat()
            })
            .boxed(),
        Opcode::TAG_STATUS => counted_strings(5)
            .prop_map(|(count, tags)| Body::default().u16(count).raw(&tags).0)
            .boxed(),
        Opcode::FLUSH_ALL => soft_expire.boxed(),
        Opcode::SET => (
            (
                prop_oneof![8 => 0..=3u8, 1 => any::<u8>()],
                interesting_u32(),
                interesting_u32(),
            ),
            (any::<u64>(), any::<u64>(), any::<u64>(), interesting_u32()),
            spicy_string(),
            counted_strings(4),
            vec(any::<u8>(), 0..=40),
        )
            .prop_map(
                move |(
                    (mode, client_flags, ttl),
                    (cas, fence, lease, stale_after),
                    key,
                    (count, tags),
                    value,
                )| {
                    let fixed = Body::default()
                        .u8(mode)
                        .u8(0)
                        .u16(count)
                        .u32(client_flags)
                        .u32(ttl)
                        .u64(cas)
                        .u64(fence);
                    [
                        fixed.0,
                        optional(flags, Flags::LEASE, Body::default().u64(lease)),
                        optional(flags, Flags::STALE_AFTER, Body::default().u32(stale_after)),
                        key,
                        tags,
                        value,
                    ]
                    .concat()
                },
            )
            .boxed(),
        _ => vec(any::<u8>(), 0..=2).boxed(),
    }
}

/// Mostly flags the opcode allows (any subset), sometimes any byte.
fn flags_for(opcode: Opcode) -> impl Strategy<Value = u8> {
    let allowed = Flags::allowed_for(opcode).0;
    prop_oneof![
        4 => Just(0),
        8 => any::<u8>().prop_map(move |bits| bits & allowed),
        1 => any::<u8>(),
    ]
}

/// A request frame of any opcode, known or not, with any flags, and a body
/// that is usually shaped for the opcode and its flags, and sometimes cut
/// or padded.
fn request_frame_strategy() -> impl Strategy<Value = Vec<u8>> {
    let opcode =
        prop_oneof![4 => select(KNOWN_OPCODES.to_vec()), 1 => any::<u8>().prop_map(Opcode)];
    (opcode, any::<u32>())
        .prop_flat_map(|(opcode, opaque)| (Just((opcode, opaque)), flags_for(opcode)))
        .prop_flat_map(|((opcode, opaque), flags)| {
            let body = prop_oneof![
                4 => shaped_body(opcode, flags),
                1 => (shaped_body(opcode, flags), any::<prop::sample::Index>())
                    .prop_map(|(body, cut)| body[..cut.index(body.len() + 1)].to_vec()),
                1 => vec(any::<u8>(), 0..=64),
            ];
            (Just((opcode, flags, opaque)), body)
        })
        .prop_map(|((opcode, flags, opaque), body)| request_frame(opcode, flags, opaque, &body))
}

/// A TAG_STATUS answer's body, its `tag_count` now and then off by one.
fn tag_status_body() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<[u64; 4]>(),
        vec(any::<[u64; 6]>(), 0..=3),
        prop_oneof![8 => Just(0), 1 => Just(-1), 1 => Just(1)],
    )
        .prop_map(|(fixed, states, skew)| {
            let count = (states.len() as i32 + skew).max(0) as u16;
            let body = fixed
                .iter()
                .fold(Body::default(), |body, &field| body.u64(field));
            states
                .iter()
                .flatten()
                .fold(body.u16(count), |body, &field| body.u64(field))
                .0
        })
}

fn response_frame_strategy() -> impl Strategy<Value = Vec<u8>> {
    let opcode =
        prop_oneof![4 => select(KNOWN_OPCODES.to_vec()), 1 => any::<u8>().prop_map(Opcode)];
    let status = prop_oneof![4 => 0..=0x0Bu16, 1 => 0x0100..=0x0111u16, 1 => any::<u16>()];
    let random = (opcode, status, vec(any::<u8>(), 0..=120));
    let tag_status = (Just(Opcode::TAG_STATUS), Just(0), tag_status_body());
    (prop_oneof![4 => random, 1 => tag_status], any::<u32>()).prop_map(
        |((opcode, status, body), opaque)| frame(RESPONSE_MAGIC, opcode, 0, status, opaque, &body),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_break_the_request_decoder(data in vec(any::<u8>(), 0..=512)) {
        fuzz_bodies::decode_request_stream(&data);
    }

    #[test]
    fn arbitrary_bytes_never_break_the_response_decoder(data in vec(any::<u8>(), 0..=512)) {
        fuzz_bodies::decode_response_stream(&data);
    }

    /// Sound headers with every opcode in front of shaped, cut and random
    /// bodies, under small limits: decoded requests keep every limit.
    #[test]
    fn arbitrary_bodies_never_yield_a_request_outside_the_limits(
        config in any::<[u8; 4]>(),
        frames in vec(request_frame_strategy(), 1..=6),
    ) {
        let mut data = config.to_vec();
        frames.iter().for_each(|frame| data.extend_from_slice(frame));
        fuzz_bodies::decode_request_stream(&data);
    }

    #[test]
    fn arbitrary_response_bodies_decode_or_fail_cleanly(
        config in any::<[u8; 3]>(),
        frames in vec(response_frame_strategy(), 1..=6),
    ) {
        let mut data = config.to_vec();
        frames.iter().for_each(|frame| data.extend_from_slice(frame));
        fuzz_bodies::decode_response_stream(&data);
    }

    /// The crate's tag validator agrees with §8.1 as written.
    #[test]
    fn tag_validation_matches_section_8_1(
        tag in prop_oneof![
            vec(spicy_byte(), 0..=12),
            "[a-zé\\s\\p{Cc}\\p{Cf}\u{10000}-\u{10FFFF}]{0,9}".prop_map(String::into_bytes),
            ".{0,9}".prop_map(String::into_bytes),
        ],
        max_tag_length in 1..=12u32,
    ) {
        let limits = Limits { max_tag_length, ..Limits::default() };
        let verdict = validate_tag(&tag, &limits);
        prop_assert_eq!(verdict.is_ok(), fuzz_bodies::tag_is_valid(&tag, &limits));
        if let Err(invalid) = verdict {
            prop_assert_eq!(invalid.code, ErrorCode::TagInvalid);
        }
    }
}

/// Hand-picked seeds for the fuzz bodies: each limit at and past its edge.
#[test]
fn fuzz_bodies_hold_on_seeds_at_the_limits() {
    // keys: max_key_length 4, max_keys_per_getm 2; values: max 8, max_ttl
    // 1000; tags: max_tag_length 3, max_tags 2; one-byte chunks.
    let config = [0x13, 0x48, 0x22, 0x00];
    let frames = [
        request_frame(Opcode::GET, 0, 1, b"abcd"),
        request_frame(Opcode::GET, 0, 2, b"abcde"),
        request_frame(Opcode::GETM, 3, 3, &counted(&[b"a", b"bcd"]).0),
        request_frame(Opcode::GETM, 0, 4, &counted(&[b"a", b"b", b"c"]).0),
        request_frame(
            Opcode::SET,
            1,
            5,
            &set(b"k", &[b"abc", "é".as_bytes()], b"12345678").0,
        ),
        request_frame(Opcode::SET, 0, 6, &set(b"k", &[b"abcd"], b"").0),
        request_frame(Opcode::SET, 0, 7, &set(b"k", &[b"a", b"b", b"c"], b"").0),
        request_frame(Opcode::SET, 0, 8, &set(b"k", &[], b"123456789").0),
        request_frame(Opcode::TOUCH, 1, 9, &Body::default().u32(1000).raw(b"k").0),
        request_frame(Opcode::TOUCH, 0, 10, &Body::default().u32(1001).raw(b"k").0),
        request_frame(Opcode::INVALIDATE_TAGS, 1, 11, &counted(&[b"x", b"y"]).0),
        request_frame(
            Opcode::HELLO,
            0,
            12,
            &Body::default().u8(1).u16(3).raw(b"me").0,
        ),
        request_frame(Opcode(0x12), 0, 13, b""),
        request_frame(Opcode::NOOP, 0, 14, b""),
        // Issue 9: each new field at and past its limit.
        request_frame(
            Opcode::GET,
            Flags::REQUEST_TAGS.0 | Flags::LEASE.0,
            15,
            &counted(&[b"abc", b"x"]).raw(b"abcd").0,
        ),
        request_frame(
            Opcode::GET,
            Flags::REQUEST_TAGS.0,
            16,
            &counted(&[b"a", b"b", b"c"]).raw(b"k").0,
        ),
        request_frame(
            Opcode::GETM,
            Flags::REQUEST_TAGS.0,
            17,
            &counted(&[]).u16(1).string(b"k").0,
        ),
        request_frame(
            Opcode::SET,
            (Flags::LEASE | Flags::STALE_AFTER).0,
            18,
            &lease_set_fixed(0, 1000, 1000).string(b"k").0,
        ),
        request_frame(
            Opcode::SET,
            Flags::STALE_AFTER.0,
            19,
            &set_fixed(0, 0, 0).u32(1001).string(b"k").0,
        ),
        request_frame(
            Opcode::INVALIDATE_TAGS,
            Flags::SOFT.0,
            20,
            &Body::default().u32(1000).u16(1).string(b"t").0,
        ),
        request_frame(
            Opcode::INVALIDATE_TAGS,
            Flags::SOFT.0,
            21,
            &Body::default().u32(1001).u16(1).string(b"t").0,
        ),
        request_frame(
            Opcode::FLUSH_ALL,
            (Flags::SOFT | Flags::QUIET).0,
            22,
            &Body::default().u32(0).0,
        ),
        request_frame(Opcode::TAG_STATUS, 0, 23, &counted(&[b"abc", b"t"]).0),
        request_frame(Opcode::TAG_STATUS, 0, 24, &counted(&[b"abcd"]).0),
        // A SET in a mode other than CAS ignores its `cas` field.
        request_frame(
            Opcode::SET,
            0,
            25,
            &set_fixed(1, 0, 0)
                .truncated(12)
                .u64(1)
                .u64(0)
                .string(b"k")
                .0,
        ),
    ];
    let mut data = config.to_vec();
    frames
        .iter()
        .for_each(|frame| data.extend_from_slice(frame));
    fuzz_bodies::decode_request_stream(&data);

    let limits = fuzz_bodies::configure_server(&data).0;
    assert_eq!(
        (
            limits.max_key_length,
            limits.max_keys_per_getm,
            limits.max_value_length
        ),
        (4, 2, 8)
    );
    assert_eq!(
        (limits.max_ttl, limits.max_tag_length, limits.max_tags),
        (1000, 3, 2)
    );

    let mut responses = vec![0x00, 0x40, 0x05];
    for (status, body) in [
        (
            Status::HIT.0,
            Body::default()
                .u64(1)
                .u64(2)
                .u32(3)
                .u16(1)
                .string(b"t")
                .raw(b"v")
                .0,
        ),
        (Status::MISS.0, Body::default().u64(1).0),
        (Status::HOT_MISS.0, Body::default().u64(1).u64(2).0),
        (
            Status::STALE.0,
            Body::default()
                .u64(1)
                .u64(0)
                .u64(2)
                .u32(3)
                .u16(0)
                .raw(b"v")
                .0,
        ),
        (0x0123, b"from the future".to_vec()),
        (0x0042, b"a new outcome".to_vec()),
    ] {
        responses.extend(frame(RESPONSE_MAGIC, Opcode::GET, 0, status, 1, &body));
    }
    fuzz_bodies::decode_response_stream(&responses);
}
