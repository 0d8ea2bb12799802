//! Matching response frames to the requests that are waiting for them.
//!
//! The server answers a connection's requests in the order they were sent,
//! each response echoing its request's opaque (protocol.md §5). So the
//! requests in flight form a queue, and every frame belongs to the request
//! at its front, with two exceptions the protocol allows:
//!
//! - a QUIET request that succeeded sends nothing, so a frame for a later
//!   opaque completes every quiet request ahead of it, silently;
//! - GETM sends one frame per key (fewer when QUIET leaves misses out), so
//!   its entry stays at the front until it has them all.
//!
//! A frame's body is read only once its request is known
//! ([`InFlightQueue::decode`]): a GET or GETM sent with LEASE is answered
//! with a `lease` field in every lookup that the same status lacks without
//! it (protocol.md §6.3), so the bytes alone could be misread.
//!
//! Anything else (a frame for a request not at the front, a frame whose
//! opcode differs from its request's) means the stream can no longer be
//! trusted, and the connection is failed rather than risk handing a caller
//! another request's response.
//!
//! A caller that has gone away (timed out, dropped its future) keeps its
//! entry: the entry's frames are matched as usual and then dropped, so the
//! requests behind it still meet their own responses.

use std::collections::VecDeque;

use tagcached_protocol::{
    Command, FatalError, Flags, Opcode, Outcome, Request, Response, ResponseFrame,
};
use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// A request's response frames, or why it failed. Empty for a QUIET request
/// that succeeded silently.
pub(crate) type Frames = Result<Vec<Response>>;

/// One request sent and not yet fully answered.
#[derive(Debug)]
pub(crate) struct InFlight {
    opaque: u32,
    opcode: Opcode,
    /// The flags the request was sent with, which say how to read its
    /// frames.
    flags: Flags,
    quiet: bool,
    /// Frames that complete the request when none is an error: the key
    /// count for GETM, else 1.
    expected_frames: usize,
    frames: Vec<Response>,
    reply: oneshot::Sender<Frames>,
}

impl InFlight {
    /// Tracks `request`, which is about to be written; `reply` gets its
    /// frames.
    pub(crate) fn new(request: &Request, reply: oneshot::Sender<Frames>) -> InFlight {
        let expected_frames = match &request.command {
            Command::GetMany(get_many) => get_many.keys.len().max(1),
            _ => 1,
        };
        let flags = request.wire_flags();
        InFlight {
            opaque: request.opaque,
            opcode: request.command.opcode(),
            flags,
            quiet: flags.contains(Flags::QUIET),
            expected_frames,
            frames: Vec::with_capacity(if flags.contains(Flags::QUIET) {
                0
            } else {
                expected_frames
            }),
            reply,
        }
    }

    fn is_complete(&self) -> bool {
        let Some(last) = self.frames.last() else {
            return false;
        };
        match &last.outcome {
            // A GETM that fails as a whole sends one error frame instead of
            // one frame per key.
            Outcome::Error(_) => true,
            // With QUIET only the keys' answers that are not plain misses
            // are sent, in key order: the last key's is the last frame.
            // Otherwise the next request's frame tells us (see
            // `InFlightQueue::deliver`).
            outcome if self.quiet && self.opcode == Opcode::GETM => {
                key_index(outcome).map(usize::from) == Some(self.expected_frames - 1)
                    || self.frames.len() >= self.expected_frames
            }
            _ => self.frames.len() >= self.expected_frames,
        }
    }

    /// Hands the frames to the caller, if it is still waiting.
    fn complete(self) {
        let _ = self.reply.send(Ok(self.frames));
    }

    /// Fails the request, if its caller is still waiting.
    pub(crate) fn fail(self, error: Error) {
        let _ = self.reply.send(Err(error));
    }
}

/// The key index of a GETM lookup frame.
fn key_index(outcome: &Outcome) -> Option<u16> {
    match outcome {
        Outcome::Hit(hit) | Outcome::Stale(hit) => hit.key_index,
        Outcome::Miss(miss) | Outcome::HotMiss(miss) => miss.key_index,
        _ => None,
    }
}

/// The requests in flight on one connection, oldest first.
#[derive(Debug, Default)]
pub(crate) struct InFlightQueue {
    queue: VecDeque<InFlight>,
}

impl InFlightQueue {
    /// Appends a request; the caller guarantees requests are pushed in the
    /// order they are written to the connection.
    pub(crate) fn push(&mut self, entry: InFlight) {
        self.queue.push_back(entry);
    }

    /// How many requests await frames.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Reads `frame`'s body as the answer to the request it belongs to,
    /// with the flags that request was sent with; quiet requests ahead of
    /// it that it shows answered silently are completed on the way.
    ///
    /// An error means the stream is out of step with the requests, or the
    /// body does not parse as its request's answer: the caller must close
    /// the connection and [`fail_all`](InFlightQueue::fail_all) with it.
    pub(crate) fn decode(&mut self, frame: ResponseFrame) -> Result<Response> {
        let flags = match frame.header.opaque {
            // The server speaking about the connection itself: no request's
            // flags apply, and `deliver` turns it into the failure.
            0 => Flags::NONE,
            opaque => self.front_for(opaque, frame.header.opcode)?.flags,
        };
        frame
            .decode(flags)
            .map_err(|invalid| Error::from(FatalError::MalformedResponse(invalid)))
    }

    /// Routes one decoded frame to its request.
    ///
    /// An error means the stream is out of step with the requests (or the
    /// server failed the whole connection): the caller must close the
    /// connection and [`fail_all`](InFlightQueue::fail_all) with it.
    pub(crate) fn deliver(&mut self, response: Response) -> Result<()> {
        if response.opaque == 0 {
            // Opaques are allocated from 1, so 0 is the server speaking about
            // the connection itself (BUSY, or a header it could not trust).
            return Err(match response.outcome {
                Outcome::Error(reply) => Error::Server {
                    code: reply.code,
                    message: String::from_utf8_lossy(&reply.message).into_owned(),
                },
                other => Error::protocol(format!(
                    "{:?} response with opaque 0, which no request uses",
                    other.status()
                )),
            });
        }
        let front = self.front_for(response.opaque, response.opcode)?;
        front.frames.push(response);
        if front.is_complete() {
            if let Some(done) = self.queue.pop_front() {
                done.complete();
            }
        }
        Ok(())
    }

    /// The request a frame with `opaque` and `opcode` answers, which must
    /// be at the front once the quiet requests ahead of it are completed.
    fn front_for(&mut self, opaque: u32, opcode: Opcode) -> Result<&mut InFlight> {
        loop {
            let Some(front) = self.queue.front() else {
                return Err(Error::protocol(format!(
                    "response with opaque {opaque} ({opcode:?}) while no request is in flight"
                )));
            };
            if front.opaque == opaque {
                if front.opcode != opcode {
                    return Err(Error::protocol(format!(
                        "response to request {opaque} has opcode {opcode:?}, the request {:?}",
                        front.opcode
                    )));
                }
                break;
            }
            if !front.quiet {
                return Err(Error::protocol(format!(
                    "expected a response to request {} ({:?}), got opaque {opaque} ({opcode:?})",
                    front.opaque, front.opcode
                )));
            }
            // A later request answered: this quiet one succeeded silently
            // (or, for a quiet GETM, sent all its answers).
            if let Some(done) = self.queue.pop_front() {
                done.complete();
            }
        }
        self.queue
            .front_mut()
            .ok_or_else(|| Error::protocol("the request in flight vanished"))
    }

    /// Fails every request in flight with `error`.
    pub(crate) fn fail_all(&mut self, error: &Error) {
        for entry in self.queue.drain(..) {
            entry.fail(error.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tagcached_protocol::request::{Get, GetMany, Set, SetMode};
    use tagcached_protocol::response::{ErrorReply, Hit, Lease, Miss};
    use tagcached_protocol::ErrorCode;
    use tokio::sync::oneshot::error::TryRecvError;

    use super::*;

    fn get(opaque: u32) -> Request {
        Request::new(
            opaque,
            Command::Get(Get {
                key: Bytes::from_static(b"k"),
                request_tags: None,
            }),
        )
    }

    fn get_many(opaque: u32, keys: usize, flags: Flags) -> Request {
        Request {
            opaque,
            flags,
            command: Command::GetMany(GetMany {
                keys: vec![Bytes::from_static(b"k"); keys],
                request_tags: None,
            }),
        }
    }

    fn quiet_set(opaque: u32) -> Request {
        Request {
            opaque,
            flags: Flags::QUIET,
            command: Command::Set(Set {
                mode: SetMode::Set,
                client_flags: 0,
                ttl: 0,
                fence: None,
                lease: None,
                stale_after: None,
                key: Bytes::from_static(b"k"),
                tags: Vec::new(),
                value: Bytes::new(),
            }),
        }
    }

    fn track(queue: &mut InFlightQueue, request: &Request) -> oneshot::Receiver<Frames> {
        let (reply, receiver) = oneshot::channel();
        queue.push(InFlight::new(request, reply));
        receiver
    }

    fn miss(opaque: u32, opcode: Opcode, key_index: Option<u16>) -> Response {
        Response {
            opaque,
            opcode,
            outcome: Outcome::Miss(Miss {
                key_index,
                fence: u64::from(opaque),
                lease: Lease::NotRequested,
            }),
        }
    }

    fn hit(opaque: u32, opcode: Opcode, key_index: Option<u16>) -> Response {
        Response {
            opaque,
            opcode,
            outcome: Outcome::Hit(Hit {
                key_index,
                fence: 1,
                lease: Lease::NotRequested,
                cas: 2,
                client_flags: 0,
                tags: Vec::new(),
                value: Bytes::from_static(b"v"),
            }),
        }
    }

    fn error(opaque: u32, opcode: Opcode, code: ErrorCode) -> Response {
        Response {
            opaque,
            opcode,
            outcome: Outcome::Error(ErrorReply::new(code, "nope")),
        }
    }

    fn frames(receiver: &mut oneshot::Receiver<Frames>) -> Vec<Response> {
        receiver.try_recv().expect("completed").expect("not failed")
    }

    #[test]
    fn responses_reach_their_own_requests_in_order() {
        let mut queue = InFlightQueue::default();
        let mut first = track(&mut queue, &get(1));
        let mut second = track(&mut queue, &get(2));
        queue.deliver(miss(1, Opcode::GET, None)).expect("in step");
        assert_eq!(frames(&mut first), vec![miss(1, Opcode::GET, None)]);
        assert!(matches!(second.try_recv(), Err(TryRecvError::Empty)));
        queue.deliver(hit(2, Opcode::GET, None)).expect("in step");
        assert_eq!(frames(&mut second), vec![hit(2, Opcode::GET, None)]);
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn a_later_frame_completes_quiet_requests_ahead_of_it_silently() {
        let mut queue = InFlightQueue::default();
        let mut quiet = track(&mut queue, &quiet_set(1));
        let mut noisy = track(&mut queue, &quiet_set(2));
        let mut barrier = track(&mut queue, &Request::new(3, Command::Noop));
        let not_stored = Response {
            opaque: 2,
            opcode: Opcode::SET,
            outcome: Outcome::NotStored,
        };
        queue.deliver(not_stored.clone()).expect("in step");
        assert_eq!(frames(&mut quiet), Vec::new());
        assert_eq!(frames(&mut noisy), vec![not_stored]);
        let ok = Response {
            opaque: 3,
            opcode: Opcode::NOOP,
            outcome: Outcome::Ok,
        };
        queue.deliver(ok.clone()).expect("in step");
        assert_eq!(frames(&mut barrier), vec![ok]);
    }

    #[test]
    fn getm_waits_for_one_frame_per_key() {
        let mut queue = InFlightQueue::default();
        let mut getm = track(&mut queue, &get_many(5, 3, Flags::NONE));
        queue
            .deliver(hit(5, Opcode::GETM, Some(0)))
            .expect("in step");
        queue
            .deliver(miss(5, Opcode::GETM, Some(1)))
            .expect("in step");
        assert!(matches!(getm.try_recv(), Err(TryRecvError::Empty)));
        queue
            .deliver(hit(5, Opcode::GETM, Some(2)))
            .expect("in step");
        assert_eq!(frames(&mut getm).len(), 3);
    }

    #[test]
    fn getm_failing_as_a_whole_sends_one_error_frame() {
        let mut queue = InFlightQueue::default();
        let mut getm = track(&mut queue, &get_many(5, 3, Flags::NONE));
        let mut next = track(&mut queue, &get(6));
        queue
            .deliver(error(5, Opcode::GETM, ErrorCode::TooManyKeys))
            .expect("in step");
        assert_eq!(frames(&mut getm).len(), 1);
        queue.deliver(miss(6, Opcode::GET, None)).expect("in step");
        assert_eq!(frames(&mut next).len(), 1);
    }

    #[test]
    fn quiet_getm_ends_at_its_last_key_or_at_the_next_request() {
        let mut queue = InFlightQueue::default();
        let mut last_hit = track(&mut queue, &get_many(1, 3, Flags::QUIET));
        let mut misses_last = track(&mut queue, &get_many(2, 3, Flags::QUIET));
        let mut barrier = track(&mut queue, &Request::new(3, Command::Noop));
        queue
            .deliver(hit(1, Opcode::GETM, Some(2)))
            .expect("in step");
        assert_eq!(frames(&mut last_hit).len(), 1);
        queue
            .deliver(hit(2, Opcode::GETM, Some(0)))
            .expect("in step");
        assert!(matches!(misses_last.try_recv(), Err(TryRecvError::Empty)));
        queue
            .deliver(Response {
                opaque: 3,
                opcode: Opcode::NOOP,
                outcome: Outcome::Ok,
            })
            .expect("in step");
        assert_eq!(frames(&mut misses_last).len(), 1);
        assert_eq!(frames(&mut barrier).len(), 1);
    }

    #[test]
    fn a_dropped_caller_does_not_desynchronise_the_requests_behind_it() {
        let mut queue = InFlightQueue::default();
        drop(track(&mut queue, &get(1)));
        let mut second = track(&mut queue, &get(2));
        queue.deliver(hit(1, Opcode::GET, None)).expect("in step");
        queue.deliver(miss(2, Opcode::GET, None)).expect("in step");
        assert_eq!(frames(&mut second), vec![miss(2, Opcode::GET, None)]);
    }

    #[test]
    fn a_skipped_response_is_a_protocol_violation() {
        let mut queue = InFlightQueue::default();
        let _first = track(&mut queue, &get(1));
        let _second = track(&mut queue, &get(2));
        let error = queue
            .deliver(miss(2, Opcode::GET, None))
            .expect_err("out of step");
        assert!(matches!(error, Error::Protocol(_)), "{error}");
    }

    #[test]
    fn a_response_with_the_wrong_opcode_is_a_protocol_violation() {
        let mut queue = InFlightQueue::default();
        let _first = track(&mut queue, &get(1));
        let error = queue
            .deliver(miss(1, Opcode::GETM, Some(0)))
            .expect_err("wrong opcode");
        assert!(matches!(error, Error::Protocol(_)), "{error}");
    }

    #[test]
    fn a_response_with_nothing_in_flight_is_a_protocol_violation() {
        let mut queue = InFlightQueue::default();
        let error = queue
            .deliver(miss(9, Opcode::GET, None))
            .expect_err("unsolicited");
        assert!(matches!(error, Error::Protocol(_)), "{error}");
    }

    #[test]
    fn an_error_with_opaque_zero_fails_the_connection_with_the_servers_code() {
        let mut queue = InFlightQueue::default();
        let _first = track(&mut queue, &get(1));
        let error = queue
            .deliver(error(0, Opcode::HELLO, ErrorCode::Busy))
            .expect_err("connection-level error");
        assert!(
            matches!(
                error,
                Error::Server {
                    code: ErrorCode::Busy,
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn fail_all_hands_the_error_to_every_waiting_request() {
        let mut queue = InFlightQueue::default();
        let mut first = track(&mut queue, &get(1));
        let mut second = track(&mut queue, &quiet_set(2));
        queue.fail_all(&Error::Closed);
        assert!(matches!(first.try_recv(), Ok(Err(Error::Closed))));
        assert!(matches!(second.try_recv(), Ok(Err(Error::Closed))));
        assert_eq!(queue.len(), 0);
    }

    /// The frame `response` is on the wire, as the reader receives it.
    fn on_the_wire(response: &Response) -> ResponseFrame {
        let mut bytes = bytes::BytesMut::new();
        response.encode(&mut bytes);
        let header = tagcached_protocol::Header::peek(&bytes).expect("a whole header");
        let body = bytes.freeze().slice(tagcached_protocol::HEADER_LEN..);
        ResponseFrame { header, body }
    }

    fn leased_get(opaque: u32) -> Request {
        Request {
            opaque,
            flags: Flags::LEASE,
            command: get(opaque).command,
        }
    }

    #[test]
    fn a_lease_hit_is_read_with_its_requests_flags() {
        let mut queue = InFlightQueue::default();
        let _plain = track(&mut queue, &get(1));
        let _leased = track(&mut queue, &leased_get(2));
        let plain = hit(1, Opcode::GET, None);
        assert_eq!(queue.decode(on_the_wire(&plain)).expect("in step"), plain);
        queue.deliver(plain).expect("in step");
        let mut leased = hit(2, Opcode::GET, None);
        if let Outcome::Hit(hit) = &mut leased.outcome {
            hit.lease = Lease::NotGranted;
        }
        // Read without LEASE, the lease field would be taken for the CAS
        // value, and every field after it would shift.
        assert_eq!(queue.decode(on_the_wire(&leased)).expect("in step"), leased);
    }

    #[test]
    fn a_quiet_leased_getm_ends_at_its_last_keys_answer_whatever_it_is() {
        let mut queue = InFlightQueue::default();
        let request = Request {
            flags: Flags::QUIET | Flags::LEASE,
            ..get_many(1, 2, Flags::NONE)
        };
        let mut getm = track(&mut queue, &request);
        let granted = Response {
            opaque: 1,
            opcode: Opcode::GETM,
            outcome: Outcome::Miss(Miss {
                key_index: Some(1),
                fence: 1,
                lease: Lease::from_field(Some(9)),
            }),
        };
        let decoded = queue.decode(on_the_wire(&granted)).expect("in step");
        queue.deliver(decoded).expect("in step");
        assert_eq!(frames(&mut getm), vec![granted]);
    }
}
