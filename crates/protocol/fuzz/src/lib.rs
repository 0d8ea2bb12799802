//! The bodies of the fuzz targets, kept in a library so that
//! tagcached-protocol's test suite runs them on stable as well
//! (`tests/decoder_robustness.rs` includes this file).
//!
//! Each target does more than look for panics: it checks that whatever a
//! decoder returns keeps the promises the server relies on. A decoded request
//! is within the limits, its flags and its command's fields agree (a flag
//! that shapes the body is carried by the command, never by
//! `Request::flags`), it re-encodes to the bytes it was read from (but for
//! those a receiver ignores) and decodes again to itself; an error names the frame it came from and the
//! right kind of status; a fatal error is one of the framing errors and the
//! buffer never grew past what the frame limit allows. A response is read
//! both as the answer to a request without LEASE and to one with it, and
//! either reading that succeeds re-encodes to its bytes.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use tagcached_protocol::request::{Command, MAX_TOKEN_LENGTH};
use tagcached_protocol::response::{Lease, Outcome};
use tagcached_protocol::{
    ClientCodec, ClientFrameCodec, ErrorCode, FatalError, Flags, Header, Limits, Opcode, Request,
    RequestError, Response, ResponseFrame, ServerCodec, HEADER_LEN, PROTOCOL_VERSION,
    REQUEST_MAGIC, RESPONSE_MAGIC,
};

/// The statuses a request decoder may answer a sound frame with.
const REQUEST_ERRORS: [ErrorCode; 9] = [
    ErrorCode::UnknownOpcode,
    ErrorCode::BadFlags,
    ErrorCode::Malformed,
    ErrorCode::KeyInvalid,
    ErrorCode::ValueTooLarge,
    ErrorCode::TagInvalid,
    ErrorCode::TooManyTags,
    ErrorCode::BadTtl,
    ErrorCode::TooManyKeys,
];

/// Target `decode_request`: the first four bytes choose small limits and a
/// chunk size (see [`configure_server`]); the rest is fed to a
/// [`ServerCodec`] chunk by chunk, decoding after each until it asks for
/// more, and stopping at the first fatal error.
pub fn decode_request_stream(data: &[u8]) {
    let (limits, chunk, stream) = configure_server(data);
    let mut codec = ServerCodec::new(limits);
    let mut buf = BytesMut::new();
    let capacity_bound = capacity_bound(limits.max_frame, stream.len());
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            let header = Header::peek(&buf);
            let whole = whole_frame(&buf);
            let before = buf.len();
            let result = codec.decode(&mut buf);
            assert!(
                buf.capacity() <= capacity_bound,
                "buffer grew to {} bytes; max_frame is {}",
                buf.capacity(),
                limits.max_frame
            );
            let consumed = before - buf.len();
            match result {
                Ok(None) => {
                    assert_eq!(consumed, 0, "Ok(None) consumed input");
                    break;
                }
                Ok(Some(item)) => {
                    let header = header.expect("a decoded frame had a whole header");
                    assert_eq!(consumed, HEADER_LEN + header.body_length as usize);
                    let frame = whole.expect("a decoded frame was whole");
                    match item {
                        Ok(request) => check_request(&request, &header, &frame, &limits),
                        Err(error) => check_request_error(&error, &header),
                    }
                }
                Err(fatal) => {
                    assert_eq!(consumed, 0, "a fatal error consumed input");
                    check_fatal(
                        &fatal,
                        &buf,
                        header.as_ref(),
                        REQUEST_MAGIC,
                        limits.max_frame,
                    );
                    return;
                }
            }
        }
    }
}

/// Target `decode_response`: the first two bytes are the client's
/// `max_frame`, the third chooses a chunk size; the rest is fed to a
/// [`ClientFrameCodec`] as in [`decode_request_stream`], and each frame's
/// body is decoded twice: as the answer to a request without LEASE and to
/// one with it. A body neither reading accepts is `MALFORMED`, and the
/// stream goes on. The [`ClientCodec`], fed the same stream, must agree
/// with the reading without LEASE.
pub fn decode_response_stream(data: &[u8]) {
    let (max_frame, chunk, stream) = match data.split_first_chunk() {
        Some((&[high, low, shape], stream)) => (
            u32::from(u16::from_be_bytes([high, low])),
            1 + usize::from(shape & 0x3F),
            stream,
        ),
        None => (Limits::default().max_frame, data.len().max(1), data),
    };
    let mut frames = ClientFrameCodec::new(max_frame);
    let mut responses = ClientCodec::new(max_frame);
    let mut buf = BytesMut::new();
    let mut shadow = BytesMut::new();
    let capacity_bound = capacity_bound(max_frame, stream.len());
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        shadow.extend_from_slice(piece);
        loop {
            let header = Header::peek(&buf);
            let whole = whole_frame(&buf);
            let before = buf.len();
            let result = frames.decode(&mut buf);
            assert!(buf.capacity() <= capacity_bound);
            let consumed = before - buf.len();
            let plain = responses.decode(&mut shadow);
            assert_eq!(shadow.len(), buf.len(), "the codecs consumed alike");
            match result {
                Ok(None) => {
                    assert_eq!(consumed, 0, "Ok(None) consumed input");
                    assert!(matches!(plain, Ok(None)));
                    break;
                }
                Ok(Some(frame)) => {
                    let header = header.expect("a decoded frame had a whole header");
                    assert_eq!(frame.header, header);
                    assert_eq!(consumed, HEADER_LEN + header.body_length as usize);
                    let bytes = whole.expect("a decoded frame was whole");
                    let without = check_response_frame(&frame, &bytes, Flags::NONE);
                    check_response_frame(&frame, &bytes, Flags::LEASE);
                    match (plain, without) {
                        (Ok(Some(plain)), Some(without)) => assert_eq!(plain, without),
                        (Err(FatalError::MalformedResponse(_)), None) => {
                            // The ClientCodec's stream ends at a malformed
                            // body; follow the frames alone from here.
                            shadow = buf.clone();
                            responses = ClientCodec::new(max_frame);
                        }
                        (plain, without) => panic!("ClientCodec {plain:?}, frames {without:?}"),
                    }
                }
                Err(fatal) => {
                    assert_eq!(consumed, 0, "a fatal error consumed input");
                    assert!(plain.is_err());
                    check_fatal(&fatal, &buf, header.as_ref(), RESPONSE_MAGIC, max_frame);
                    return;
                }
            }
        }
    }
}

/// Small limits chosen by the input's first four bytes, so that short
/// inputs reach every limit, a chunk size, and the rest of the input.
/// Inputs shorter than that use the default limits and one chunk.
pub fn configure_server(data: &[u8]) -> (Limits, usize, &[u8]) {
    let Some((&[keys, values, tags, shape], stream)) = data.split_first_chunk() else {
        return (Limits::default(), data.len().max(1), data);
    };
    let limits = Limits {
        max_key_length: 1 + u32::from(keys & 0x0F),
        max_keys_per_getm: 1 + u32::from(keys >> 4),
        max_value_length: u32::from(values & 0x3F),
        max_ttl: u32::from(values >> 6) * 1000,
        max_tag_length: 1 + u32::from(tags & 0x0F),
        max_tags: u32::from(tags >> 4),
        max_frame: 0,
    }
    .with_fitted_max_frame();
    // Now and then a frame limit below what the other limits allow, so
    // that FRAME_TOO_LARGE meets frames the body checks would accept.
    let limits = if shape & 0xC0 == 0xC0 {
        Limits {
            max_frame: limits.max_frame / 2,
            ..limits
        }
    } else {
        limits
    };
    (limits, 1 + usize::from(shape & 0x3F), stream)
}

/// Whether `tag` is a tag by protocol.md §8.1, written from the spec and
/// not from the crate's validator, so the two check each other.
pub fn tag_is_valid(tag: &[u8], limits: &Limits) -> bool {
    !tag.is_empty()
        && tag.len() <= limits.max_tag_length as usize
        && std::str::from_utf8(tag)
            .is_ok_and(|text| !text.chars().any(|c| c.is_whitespace() || c.is_control()))
}

/// Asserts that a decoded request keeps every limit and flag rule.
pub fn assert_request_within_limits(request: &Request, limits: &Limits) {
    let assert_key = |key: &[u8]| {
        assert!(
            !key.is_empty() && key.len() <= limits.max_key_length as usize,
            "key of {} bytes decoded; max_key_length is {}",
            key.len(),
            limits.max_key_length
        );
    };
    let assert_tags = |tags: &[bytes::Bytes]| {
        assert!(
            tags.len() <= limits.max_tags as usize,
            "{} tags decoded",
            tags.len()
        );
        for tag in tags {
            assert!(tag_is_valid(tag, limits), "invalid tag {tag:?} decoded");
        }
    };
    let assert_seconds = |seconds: Option<u32>| {
        assert!(
            !matches!(seconds, Some(seconds) if seconds > limits.max_ttl),
            "{seconds:?} seconds decoded; max_ttl is {}",
            limits.max_ttl
        );
    };
    match &request.command {
        Command::Get(get) => {
            assert_key(&get.key);
            get.request_tags.as_deref().map(assert_tags);
        }
        Command::Delete(delete) => assert_key(&delete.key),
        Command::Touch(touch) => {
            assert_key(&touch.key);
            assert!(touch.ttl <= limits.max_ttl);
        }
        Command::GetMany(get_many) => {
            assert!(!get_many.keys.is_empty());
            assert!(get_many.keys.len() <= limits.max_keys_per_getm as usize);
            get_many.keys.iter().for_each(|key| assert_key(key));
            get_many.request_tags.as_deref().map(assert_tags);
        }
        Command::Set(set) => {
            assert_key(&set.key);
            assert_tags(&set.tags);
            assert!(set.value.len() <= limits.max_value_length as usize);
            assert!(set.ttl <= limits.max_ttl);
            assert_seconds(set.stale_after);
            assert_ne!(set.fence, Some(0), "fence 0 means no fence");
        }
        Command::InvalidateTags(invalidate) => {
            assert!(!invalidate.tags.is_empty());
            assert_tags(&invalidate.tags);
            assert_seconds(invalidate.soft_expire);
        }
        Command::TagStatus(tag_status) => {
            assert!(!tag_status.tags.is_empty());
            assert_tags(&tag_status.tags);
        }
        Command::FlushAll(flush_all) => assert_seconds(flush_all.soft_expire),
        Command::Hello(hello) => assert_ne!(hello.want_shard, Some(0xFFFF)),
        Command::Auth(auth) => {
            assert!((1..=MAX_TOKEN_LENGTH).contains(&auth.token.len()));
        }
        Command::Ping | Command::Noop | Command::Stats => {}
    }
    let opcode = request.command.opcode();
    let allowed = Flags::allowed_for(opcode);
    assert_eq!(
        request.wire_flags().0 & !allowed.0,
        0,
        "disallowed flags decoded"
    );
    let body_flags = Flags::body_flags_for(opcode);
    assert_eq!(
        request.flags.0 & body_flags.0,
        0,
        "a body flag held in Request::flags"
    );
    assert_eq!(request.command.body_flags().0 & !body_flags.0, 0);
}

/// A copy of the frame at the front of `buf`, if it is whole: taken before
/// decoding, which hands out the body alone.
fn whole_frame(buf: &[u8]) -> Option<Bytes> {
    let header = Header::peek(buf)?;
    let len = HEADER_LEN.checked_add(header.body_length as usize)?;
    buf.get(..len).map(Bytes::copy_from_slice)
}

/// `frame` with the bytes a receiver ignores set to 0, as an encoder
/// writes them: in the header, a request's status and the reserved field,
/// a response's flags and the reserved field; in a SET body, the reserved
/// byte and, in a mode other than CAS, the `cas` field (§6.5); the reserved
/// bytes of a HELLO answer (§6.1).
fn normalized(frame: &[u8]) -> Vec<u8> {
    const SET_CAS_MODE: u8 = 3;
    let mut bytes = frame.to_vec();
    let header = Header::peek(frame).expect("a whole frame");
    let mut ignored = vec![6, 7];
    match header.magic {
        REQUEST_MAGIC => {
            ignored.extend([4, 5]);
            if header.opcode == Opcode::SET {
                ignored.push(HEADER_LEN + 1);
                if frame.get(HEADER_LEN) != Some(&SET_CAS_MODE) {
                    ignored.extend(HEADER_LEN + 12..HEADER_LEN + 20);
                }
            }
        }
        _ => {
            ignored.push(3);
            if header.opcode == Opcode::HELLO && header.status == 0 {
                ignored.extend([HEADER_LEN + 1, HEADER_LEN + 7]);
            }
        }
    }
    for at in ignored {
        if let Some(byte) = bytes.get_mut(at) {
            *byte = 0;
        }
    }
    bytes
}

fn check_request(request: &Request, header: &Header, frame: &Bytes, limits: &Limits) {
    assert_request_within_limits(request, limits);
    assert_eq!(request.opaque, header.opaque);
    assert_eq!(request.wire_flags().0, header.flags);
    assert_eq!(request.command.opcode(), header.opcode);
    assert_eq!(request.encoded_len(), frame.len());
    let mut again = BytesMut::new();
    ClientCodec::default()
        .encode(request, &mut again)
        .expect("encoding a request cannot fail");
    assert_eq!(&again[..], normalized(frame), "re-encoded {request:?}");
    let decoded = ServerCodec::new(*limits)
        .decode(&mut again)
        .expect("re-encoded request framed")
        .expect("re-encoded request complete")
        .expect("re-encoded request valid");
    assert_eq!(&decoded, request);
    assert!(again.is_empty());
}

fn check_request_error(error: &RequestError, header: &Header) {
    let code = error.error.code;
    assert!(REQUEST_ERRORS.contains(&code), "request error {code:?}");
    assert_eq!(error.opaque, header.opaque);
    assert_eq!(error.opcode, header.opcode);
    // protocol.md §6: opcode, then flags, then body.
    if header.opcode.name().is_none() {
        assert_eq!(code, ErrorCode::UnknownOpcode);
    } else if header.flags & !Flags::allowed_for(header.opcode).0 != 0 {
        assert_eq!(code, ErrorCode::BadFlags);
    } else {
        assert!(!matches!(
            code,
            ErrorCode::UnknownOpcode | ErrorCode::BadFlags
        ));
    }
}

/// Decodes `frame` (whose bytes are `bytes`) as the answer to a request
/// sent with `request_flags`, and checks what comes out: `None` if the body
/// does not parse that way, which must be `MALFORMED`.
fn check_response_frame(
    frame: &ResponseFrame,
    bytes: &Bytes,
    request_flags: Flags,
) -> Option<Response> {
    let header = frame.header;
    let response = match frame.clone().decode(request_flags) {
        Ok(response) => response,
        Err(invalid) => {
            assert_eq!(invalid.code, ErrorCode::Malformed);
            return None;
        }
    };
    assert_eq!(response.opaque, header.opaque);
    assert_eq!(response.opcode, header.opcode);
    assert_eq!(response.outcome.status().0, header.status);
    assert_eq!(response.encoded_len(), bytes.len());
    let lease_requested =
        matches!(header.opcode, Opcode::GET | Opcode::GETM) && request_flags.contains(Flags::LEASE);
    let lookup = match &response.outcome {
        Outcome::Hit(hit) | Outcome::Stale(hit) => Some((hit.key_index, hit.lease)),
        Outcome::Miss(miss) | Outcome::HotMiss(miss) => Some((miss.key_index, miss.lease)),
        _ => None,
    };
    if let Some((key_index, lease)) = lookup {
        assert_eq!(key_index.is_some(), header.opcode == Opcode::GETM);
        assert_eq!(lease != Lease::NotRequested, lease_requested);
    }
    let mut again = BytesMut::new();
    ServerCodec::default()
        .encode(&response, &mut again)
        .expect("encoding a response cannot fail");
    assert_eq!(&again[..], normalized(bytes), "re-encoded {response:?}");
    let decoded = ClientFrameCodec::new(u32::MAX)
        .decode(&mut again)
        .expect("re-encoded response framed")
        .expect("re-encoded response complete")
        .decode(request_flags)
        .expect("re-encoded response decodes");
    assert_eq!(decoded, response);
    assert!(again.is_empty());
    Some(response)
}

/// `unread` is the decoder's buffer, `header` its header if whole: a wrong
/// magic is refused from the first byte, every other framing error needs
/// the whole header.
fn check_fatal(
    fatal: &FatalError,
    unread: &[u8],
    header: Option<&Header>,
    magic: u8,
    max_frame: u32,
) {
    if let FatalError::BadMagic { found } = *fatal {
        assert_eq!(unread.first(), Some(&found));
        assert_ne!(found, magic);
        return;
    }
    let header = header.expect("a fatal error other than a bad magic needs a whole header");
    match *fatal {
        FatalError::BadVersion {
            opaque,
            opcode,
            version,
        } => {
            assert_eq!(header.magic, magic);
            assert_eq!(version, header.version);
            assert_ne!(version, PROTOCOL_VERSION);
            assert_eq!((opaque, opcode), (header.opaque, header.opcode));
        }
        FatalError::FrameTooLarge {
            opaque,
            opcode,
            length,
            max,
        } => {
            assert_eq!((header.magic, header.version), (magic, PROTOCOL_VERSION));
            assert_eq!((opaque, opcode), (header.opaque, header.opcode));
            assert_eq!((length, max), (header.body_length, max_frame));
            assert!(length > max);
        }
        ref other => panic!("unexpected fatal error {other:?}"),
    }
    let (code, _, _) = fatal.response_parts().expect("framing errors are answered");
    assert!(code.is_fatal());
}

/// The most a decoder's buffer may hold: doubling growth over the largest
/// frame plus everything fed. A decoder that reserved a declared length
/// before checking it against `max_frame` would exceed this.
fn capacity_bound(max_frame: u32, input: usize) -> usize {
    2 * (HEADER_LEN + max_frame as usize + input) + 64
}
