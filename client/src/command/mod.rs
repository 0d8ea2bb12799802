//! Every command of the protocol, written once: the request it sends and
//! how its response frames become its answer.
//!
//! A command's file builds its [`Call`], the request with the flags the
//! caller asked for, and implements [`Command`] for what reading the answer
//! needs once the request has gone (for GETM, how many keys it named; for
//! the others, nothing). The surfaces only carry calls:
//! [`Connection`](crate::Connection) runs one and returns its answer, a
//! [`Pipeline`](crate::Pipeline) queues many and reports each as a
//! [`Reply`](crate::Reply), a [`Client`](crate::Client) picks the
//! connection. So a new command is a file here and a one-line method on
//! each surface.
//!
//! The codec has already checked each body against its status; here each
//! command accepts only the statuses protocol.md gives it, so a frame that
//! decodes but makes no sense for its request (STORED to a GET) is an
//! [`Error::Protocol`] for that request. The connection stays usable: the
//! frame was matched by opaque and opcode, so framing is intact.

mod auth;
mod delete;
mod flush_all;
mod get;
mod get_many;
mod hello;
mod invalidate_tags;
mod ping;
mod set;
mod stats;
mod tag_status;
mod touch;

use bytes::Bytes;
use tagcached_protocol::response::ErrorReply;
use tagcached_protocol::{Flags, Opcode, Outcome, Request, Response};

use crate::error::{Error, Result};

pub(crate) use auth::Auth;
pub(crate) use delete::Delete;
pub(crate) use flush_all::FlushAll;
pub(crate) use get::Get;
pub(crate) use get_many::GetMany;
pub(crate) use hello::Hello;
pub(crate) use invalidate_tags::{tag_list, InvalidateTags};
pub(crate) use ping::{Noop, Ping};
pub(crate) use set::Set;
pub(crate) use stats::Stats;
pub(crate) use tag_status::TagStatus;
pub(crate) use touch::Touch;

/// A command sent, holding what reading its answer needs.
pub(crate) trait Command {
    /// What the caller gets back.
    type Answer;

    /// The answer carried by the frames of the command's request. A quiet
    /// request that succeeded has none; the caller that asked for QUIET
    /// knows what that means, so it is not asked here.
    fn answer(self, frames: Vec<Response>) -> Result<Self::Answer>;
}

/// A command ready to go: its request, and what will read the answer.
#[derive(Debug)]
pub(crate) struct Call<C> {
    /// The request; its opaque is the writer's to give.
    pub(crate) request: Request,
    /// Reads the request's frames.
    pub(crate) command: C,
}

impl<C> Call<C> {
    fn new(flags: Flags, body: tagcached_protocol::Command, command: C) -> Call<C> {
        Call {
            request: Request {
                opaque: 0,
                flags,
                command: body,
            },
            command,
        }
    }

    /// The same call with the QUIET flag: the server answers only a failure
    /// (protocol.md §5).
    pub(crate) fn quiet(mut self) -> Call<C> {
        self.request.flags = self.request.flags | Flags::QUIET;
        self
    }
}

/// `value`'s bytes, copied for a request that outlives the caller's borrow.
pub(crate) fn bytes(value: impl AsRef<[u8]>) -> Bytes {
    Bytes::copy_from_slice(value.as_ref())
}

/// The answer of a single-frame command. `read` takes the outcomes the
/// command can have and hands any other back, which is then an error.
fn answer_one<T>(
    frames: Vec<Response>,
    read: impl FnOnce(Outcome) -> Result<T, Outcome>,
) -> Result<T> {
    let count = frames.len();
    let mut frames = frames.into_iter();
    let response = match (frames.next(), count) {
        (Some(response), 1) => response,
        _ => {
            return Err(Error::protocol(format!(
                "expected one response frame, got {count}"
            )))
        }
    };
    read(response.outcome).map_err(|outcome| unexpected(response.opcode, outcome))
}

/// The error for a status the request cannot have: a server error as such,
/// anything else (including outcome codes this client does not know,
/// protocol.md §4) as a protocol violation.
fn unexpected(opcode: Opcode, outcome: Outcome) -> Error {
    match outcome {
        Outcome::Error(ErrorReply { code, message }) => Error::Server {
            code,
            message: String::from_utf8_lossy(&message).into_owned(),
        },
        other => Error::protocol(format!(
            "unexpected status {:?} in response to {opcode:?}",
            other.status()
        )),
    }
}

/// The answer of DELETE and TOUCH: whether a live entry was there.
fn found(outcome: Outcome) -> Result<bool, Outcome> {
    match outcome {
        Outcome::Ok => Ok(true),
        Outcome::NotFound => Ok(false),
        other => Err(other),
    }
}

/// The answer of INVALIDATE_TAGS and FLUSH_ALL: the invalidation sequence
/// assigned.
fn sequence(outcome: Outcome) -> Result<u64, Outcome> {
    match outcome {
        Outcome::Sequence(seq) => Ok(seq),
        other => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use tagcached_protocol::{ErrorCode, Status};

    use super::*;

    pub(super) fn response(opcode: Opcode, outcome: Outcome) -> Response {
        Response {
            opaque: 1,
            opcode,
            outcome,
        }
    }

    #[test]
    fn single_frame_commands_refuse_a_frame_count_other_than_one() {
        let read = |frames| answer_one(frames, found);
        assert!(matches!(read(Vec::new()), Err(Error::Protocol(_))));
        let two = vec![
            response(Opcode::DELETE, Outcome::Ok),
            response(Opcode::DELETE, Outcome::Ok),
        ];
        assert!(matches!(read(two), Err(Error::Protocol(_))));
    }

    #[test]
    fn an_error_status_is_a_server_error_with_its_message() {
        let reply = response(
            Opcode::TOUCH,
            Outcome::Error(ErrorReply::new(ErrorCode::KeyInvalid, "bad key")),
        );
        match answer_one(vec![reply], found) {
            Err(Error::Server { code, message }) => {
                assert_eq!(code, ErrorCode::KeyInvalid);
                assert_eq!(message, "bad key");
            }
            other => panic!("expected a server error, got {other:?}"),
        }
    }

    #[test]
    fn delete_and_touch_report_whether_the_key_was_there() {
        let answer = |opcode, outcome| answer_one(vec![response(opcode, outcome)], found).ok();
        assert_eq!(answer(Opcode::DELETE, Outcome::Ok), Some(true));
        assert_eq!(answer(Opcode::TOUCH, Outcome::NotFound), Some(false));
    }

    #[test]
    fn a_status_that_does_not_fit_the_command_is_a_protocol_violation() {
        let ok_for_flush = response(Opcode::FLUSH_ALL, Outcome::Ok);
        assert!(matches!(
            answer_one(vec![ok_for_flush], sequence),
            Err(Error::Protocol(_))
        ));
        let unknown = response(
            Opcode::DELETE,
            Outcome::Unknown {
                status: Status(0x0042),
                body: Bytes::new(),
            },
        );
        assert!(matches!(
            answer_one(vec![unknown], found),
            Err(Error::Protocol(_))
        ));
    }
}
