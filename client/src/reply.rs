//! Response frames to typed results, one function per kind of answer.
//!
//! The codec has already checked each body against its status; here each
//! command accepts only the statuses protocol.md gives it, so a frame that
//! decodes but makes no sense for its request (STORED to a GET) is a
//! [`Error::Protocol`] for that request. The connection stays usable: the
//! frame was matched by opaque and opcode, so framing is intact.

use tagcached_protocol::response::{ErrorReply, HelloInfo};
use tagcached_protocol::{Outcome, Response};

use crate::error::{Error, Result};
use crate::lookup::Lookup;
use crate::set::SetOutcome;

/// The one frame of a single-frame request.
pub(crate) fn single(frames: Vec<Response>) -> Result<Response> {
    let count = frames.len();
    let mut frames = frames.into_iter();
    match (frames.next(), count) {
        (Some(frame), 1) => Ok(frame),
        _ => Err(Error::protocol(format!(
            "expected one response frame, got {count}"
        ))),
    }
}

fn server_error(reply: ErrorReply) -> Error {
    Error::Server {
        code: reply.code,
        message: String::from_utf8_lossy(&reply.message).into_owned(),
    }
}

/// The error for a status the request cannot have: a server error as such,
/// anything else (including outcome codes this client does not know,
/// protocol.md §4) as a protocol violation.
fn unexpected(response: Response) -> Error {
    match response.outcome {
        Outcome::Error(reply) => server_error(reply),
        other => Error::protocol(format!(
            "unexpected status {:?} in response to {:?}",
            other.status(),
            response.opcode
        )),
    }
}

/// PING and NOOP: OK.
pub(crate) fn ok(response: Response) -> Result<()> {
    match response.outcome {
        Outcome::Ok => Ok(()),
        _ => Err(unexpected(response)),
    }
}

/// HELLO: the server's version, shard and limits.
pub(crate) fn hello(response: Response) -> Result<HelloInfo> {
    match response.outcome {
        Outcome::Hello(info) => Ok(info),
        _ => Err(unexpected(response)),
    }
}

/// GET: hit or miss.
pub(crate) fn lookup(response: Response) -> Result<Lookup> {
    match response.outcome {
        Outcome::Hit(hit) => Ok(Lookup::from(hit)),
        Outcome::Miss(miss) => Ok(Lookup::from(miss)),
        _ => Err(unexpected(response)),
    }
}

/// GETM of `key_count` keys: one lookup per key, in request order, placed
/// by each frame's `key_index`.
pub(crate) fn lookups(frames: Vec<Response>, key_count: usize) -> Result<Vec<Lookup>> {
    let mut slots: Vec<Option<Lookup>> = vec![None; key_count];
    for frame in frames {
        let (key_index, lookup) = match frame.outcome {
            Outcome::Hit(hit) => (hit.key_index, Lookup::from(hit)),
            Outcome::Miss(miss) => (miss.key_index, Lookup::from(miss)),
            _ => return Err(unexpected(frame)),
        };
        let slot = key_index
            .map(usize::from)
            .and_then(|index| slots.get_mut(index))
            .ok_or_else(|| {
                Error::protocol(format!(
                    "GETM of {key_count} keys answered for key index {key_index:?}"
                ))
            })?;
        if slot.replace(lookup).is_some() {
            return Err(Error::protocol(format!(
                "GETM answered key index {key_index:?} twice"
            )));
        }
    }
    slots
        .into_iter()
        .enumerate()
        .map(|(index, slot)| {
            slot.ok_or_else(|| Error::protocol(format!("GETM left key index {index} unanswered")))
        })
        .collect()
}

/// SET: one of its five outcomes.
pub(crate) fn set_outcome(response: Response) -> Result<SetOutcome> {
    match response.outcome {
        Outcome::Stored { cas } => Ok(SetOutcome::Stored { cas }),
        Outcome::NotStored => Ok(SetOutcome::NotStored),
        Outcome::Exists => Ok(SetOutcome::Exists),
        Outcome::NotFound => Ok(SetOutcome::NotFound),
        Outcome::Fenced => Ok(SetOutcome::Fenced),
        _ => Err(unexpected(response)),
    }
}

/// DELETE and TOUCH: whether a live entry was there.
pub(crate) fn found(response: Response) -> Result<bool> {
    match response.outcome {
        Outcome::Ok => Ok(true),
        Outcome::NotFound => Ok(false),
        _ => Err(unexpected(response)),
    }
}

/// INVALIDATE_TAGS and FLUSH_ALL: the invalidation sequence assigned.
pub(crate) fn sequence(response: Response) -> Result<u64> {
    match response.outcome {
        Outcome::Sequence(seq) => Ok(seq),
        _ => Err(unexpected(response)),
    }
}

/// STATS: `name value` pairs in the server's order.
pub(crate) fn stats(response: Response) -> Result<Vec<(String, String)>> {
    let text = match response.outcome {
        Outcome::Stats(text) => text,
        _ => return Err(unexpected(response)),
    };
    let text = std::str::from_utf8(&text)
        .map_err(|error| Error::protocol(format!("STATS body is not UTF-8: {error}")))?;
    Ok(text
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (name, value) = line.split_once(' ').unwrap_or((line, ""));
            (name.to_owned(), value.to_owned())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tagcached_protocol::response::{Hit, Miss};
    use tagcached_protocol::{ErrorCode, Opcode, Status};

    use super::*;
    use crate::lookup::Item;

    fn response(opcode: Opcode, outcome: Outcome) -> Response {
        Response {
            opaque: 1,
            opcode,
            outcome,
        }
    }

    fn hit(key_index: Option<u16>, value: &'static str) -> Outcome {
        Outcome::Hit(Hit {
            key_index,
            fence: 10,
            cas: 20,
            client_flags: 3,
            tags: vec![Bytes::from_static(b"t")],
            value: Bytes::from_static(value.as_bytes()),
        })
    }

    fn miss(key_index: Option<u16>) -> Outcome {
        Outcome::Miss(Miss {
            key_index,
            fence: 11,
        })
    }

    #[test]
    fn a_hit_becomes_an_item_with_its_fence_and_a_miss_keeps_its_fence() {
        let item = lookup(response(Opcode::GET, hit(None, "v"))).expect("hit");
        assert_eq!(
            item,
            Lookup::Hit(Item {
                value: Bytes::from_static(b"v"),
                cas: 20,
                client_flags: 3,
                fence: 10,
                tags: vec![Bytes::from_static(b"t")],
            })
        );
        let missed = lookup(response(Opcode::GET, miss(None))).expect("miss");
        assert_eq!(missed, Lookup::Miss { fence: 11 });
        assert_eq!(missed.fence(), 11);
    }

    #[test]
    fn set_statuses_map_to_outcomes() {
        let cases = [
            (Outcome::Stored { cas: 5 }, SetOutcome::Stored { cas: 5 }),
            (Outcome::NotStored, SetOutcome::NotStored),
            (Outcome::Exists, SetOutcome::Exists),
            (Outcome::NotFound, SetOutcome::NotFound),
            (Outcome::Fenced, SetOutcome::Fenced),
        ];
        for (outcome, expected) in cases {
            assert_eq!(
                set_outcome(response(Opcode::SET, outcome)).ok(),
                Some(expected)
            );
        }
    }

    #[test]
    fn delete_and_touch_report_whether_the_key_was_there() {
        assert_eq!(
            found(response(Opcode::DELETE, Outcome::Ok)).ok(),
            Some(true)
        );
        assert_eq!(
            found(response(Opcode::TOUCH, Outcome::NotFound)).ok(),
            Some(false)
        );
    }

    #[test]
    fn an_error_status_is_a_server_error_with_its_message() {
        let reply = response(
            Opcode::SET,
            Outcome::Error(ErrorReply::new(ErrorCode::TagInvalid, "bad tag")),
        );
        match set_outcome(reply) {
            Err(Error::Server { code, message }) => {
                assert_eq!(code, ErrorCode::TagInvalid);
                assert_eq!(message, "bad tag");
            }
            other => panic!("expected a server error, got {other:?}"),
        }
    }

    #[test]
    fn a_status_that_does_not_fit_the_command_is_a_protocol_violation() {
        let stored_for_get = response(Opcode::GET, Outcome::Stored { cas: 1 });
        assert!(matches!(lookup(stored_for_get), Err(Error::Protocol(_))));
        let unknown = response(
            Opcode::SET,
            Outcome::Unknown {
                status: Status(0x0042),
                body: Bytes::new(),
            },
        );
        assert!(matches!(set_outcome(unknown), Err(Error::Protocol(_))));
        assert!(matches!(
            sequence(response(Opcode::FLUSH_ALL, Outcome::Ok)),
            Err(Error::Protocol(_))
        ));
    }

    #[test]
    fn getm_frames_are_placed_by_key_index() {
        let frames = vec![
            response(Opcode::GETM, miss(Some(1))),
            response(Opcode::GETM, hit(Some(0), "zero")),
            response(Opcode::GETM, hit(Some(2), "two")),
        ];
        let found = lookups(frames, 3).expect("complete");
        let values: Vec<Option<&[u8]>> = found
            .iter()
            .map(|lookup| lookup.item().map(|item| &item.value[..]))
            .collect();
        assert_eq!(values, vec![Some(&b"zero"[..]), None, Some(&b"two"[..])]);
    }

    #[test]
    fn getm_with_a_missing_duplicate_or_stray_index_is_a_protocol_violation() {
        let missing = vec![response(Opcode::GETM, miss(Some(0)))];
        assert!(matches!(lookups(missing, 2), Err(Error::Protocol(_))));
        let twice = vec![
            response(Opcode::GETM, miss(Some(0))),
            response(Opcode::GETM, miss(Some(0))),
        ];
        assert!(matches!(lookups(twice, 2), Err(Error::Protocol(_))));
        let stray = vec![response(Opcode::GETM, miss(Some(7)))];
        assert!(matches!(lookups(stray, 1), Err(Error::Protocol(_))));
    }

    #[test]
    fn getm_failing_as_a_whole_is_a_server_error() {
        let frames = vec![response(
            Opcode::GETM,
            Outcome::Error(ErrorReply::new(ErrorCode::TooManyKeys, "too many")),
        )];
        assert!(matches!(
            lookups(frames, 3),
            Err(Error::Server {
                code: ErrorCode::TooManyKeys,
                ..
            })
        ));
    }

    #[test]
    fn stats_lines_split_at_the_first_space() {
        let body =
            Bytes::from_static(b"uptime 12\nversion tagcached 0.1.0\nshard.0.curr_items 3\n");
        let pairs = stats(response(Opcode::STATS, Outcome::Stats(body))).expect("stats");
        assert_eq!(
            pairs,
            vec![
                ("uptime".to_owned(), "12".to_owned()),
                ("version".to_owned(), "tagcached 0.1.0".to_owned()),
                ("shard.0.curr_items".to_owned(), "3".to_owned()),
            ]
        );
    }

    #[test]
    fn single_frame_commands_refuse_a_frame_count_other_than_one() {
        assert!(matches!(single(Vec::new()), Err(Error::Protocol(_))));
        let two = vec![
            response(Opcode::GET, miss(None)),
            response(Opcode::GET, miss(None)),
        ];
        assert!(matches!(single(two), Err(Error::Protocol(_))));
    }
}
