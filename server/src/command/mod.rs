//! The commands: the one module where the protocol's types meet the store.
//! Nothing outside it names both; the connection above it sees requests and
//! frames, the worker below it sees a [`Shard`].
//!
//! A request takes two steps, and each command's file holds both:
//!
//! 1. **Plan**, on the thread that read the request: decide which shards it
//!    touches and queue one [`Op`] for each through the connection's
//!    [`Planner`], reading the invalidation sequence now, in request order.
//!    GET, SET, DELETE and TOUCH are one op on their key's shard; GETM is
//!    one op per key; INVALIDATE_TAGS and FLUSH_ALL are one op per shard
//!    and then the answer, which the connection releases only once every
//!    shard has run its op; STATS is one op per shard, gathered by the
//!    connection into one answer. PING, NOOP, HELLO, AUTH and refusals are
//!    answers queued on the connection's own shard, so they keep their
//!    place in the order.
//! 2. **Run**, on the thread that owns the shard: execute the op and encode
//!    its answer frame, straight from the stored bytes for a hit, into the
//!    [`Batch`] that carried it there.
//!
//! A read may be told there is no room for its answer (the connection's
//! memory budget): it then leaves the shard as it found it and runs again
//! in a later round, after the connection's socket has drained.

pub mod auth;
mod batch;
mod delete;
mod flush_all;
mod get;
mod get_many;
mod hello;
mod invalidate_tags;
mod ping;
mod set;
pub mod stats;
mod tag_status;
mod touch;

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tagcached_protocol::request::{Command, Delete, Get, Set, Touch};
use tagcached_protocol::response::{ErrorReply, Outcome};
use tagcached_protocol::{
    ErrorCode, FatalError, Flags, Header, Opcode, Request, RequestError, Response,
};
use tagcached_store::{Shard, ShardStats, TagStatus};

pub use batch::Batch;
use get_many::ResolvedTags;
pub use hello::plan_answer as plan_hello_answer;

use crate::shared::Shared;

/// What a connection offers the commands it plans: where keys live, and a
/// queue per shard whose answers go out in the order they were queued.
pub trait Planner {
    /// The shard whose thread serves this connection.
    fn home(&self) -> u16;

    /// The number of shards.
    fn shard_count(&self) -> u16;

    /// The shard that owns `key`.
    fn shard_of(&self, key: &[u8]) -> u16;

    /// Queues `op` to run on `shard`. Its answer goes out after the answer
    /// of everything queued before it, on any shard.
    fn queue(&mut self, shard: u16, op: Op);

    /// Queues the answer for `opaque` that `gather` renders from what each
    /// shard's op reported, once all of them, queued just before, have run.
    fn gather(&mut self, opaque: u32, gather: Gather);
}

/// A request answered from what every shard reports.
#[derive(Debug)]
pub enum Gather {
    /// STATS.
    Stats,
    /// TAG_STATUS.
    TagStatus,
}

impl Gather {
    /// The answer frame, from what each shard reported (by shard index).
    pub fn answer(&self, shared: &Shared, opaque: u32, reports: Vec<(u16, Report)>) -> Bytes {
        match self {
            Gather::Stats => {
                let per_shard: Vec<(u16, ShardStats)> = reports
                    .into_iter()
                    .filter_map(|(shard, report)| match report {
                        Report::Stats(stats) => Some((shard, stats)),
                        Report::Tags(_) => None,
                    })
                    .collect();
                stats::answer(shared, opaque, &per_shard)
            }
            Gather::TagStatus => {
                let per_shard: Vec<TagReport> = reports
                    .into_iter()
                    .filter_map(|(_, report)| match report {
                        Report::Tags(tags) => Some(tags),
                        Report::Stats(_) => None,
                    })
                    .collect();
                tag_status::answer(shared, opaque, per_shard)
            }
        }
    }
}

/// What one shard reports to a gathering request.
#[derive(Debug)]
pub enum Report {
    /// Its counters, for STATS.
    Stats(ShardStats),
    /// What it knows of some tags, for TAG_STATUS.
    Tags(TagReport),
}

/// One shard's answer to TAG_STATUS.
#[derive(Debug)]
pub struct TagReport {
    /// The shard's floor, and when it was raised there (store clock).
    floor: (u64, u64),
    /// One per requested tag, in request order.
    statuses: Vec<TagStatus>,
}

/// How planning a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Planned {
    /// Its ops are queued; go on with the next request.
    Queued,
    /// HELLO asked for another shard: once every earlier answer is written,
    /// move the connection there, and let that shard answer the HELLO.
    Migrate {
        /// The wanted shard.
        shard: u16,
        /// The HELLO's opaque.
        opaque: u32,
    },
    /// AUTH succeeded (its OK is queued): serve everything from the next
    /// request on.
    Authenticated,
    /// AUTH failed (its AUTH_FAILED is queued): once every earlier answer
    /// and that one are written, close the connection, reading nothing
    /// more.
    Close,
}

/// One request's work on one shard, as planned.
#[derive(Debug)]
pub struct Op {
    opaque: u32,
    quiet: bool,
    with_tags: bool,
    /// GET and GETM: ALLOW_STALE.
    allow_stale: bool,
    /// GET and GETM: LEASE.
    lease: bool,
    /// The invalidation sequence read when the request was planned, in
    /// request order: a read's fence, a write's stamp, an invalidation's
    /// number.
    seq: u64,
    kind: OpKind,
}

/// An op's size bounds what a connection's planned ops hold: at most
/// `MAX_ROUND_OPS` (1024) of them plus one GETM's keys, 336 KiB.
const _: () = assert!(std::mem::size_of::<Op>() <= 168);

#[derive(Debug)]
enum OpKind {
    /// An answer that needs no shard: PING, NOOP, HELLO, refusals, and the
    /// answer to an invalidation that the shards have applied.
    Answer {
        opcode: Opcode,
        outcome: Outcome,
    },
    Get(Get),
    /// One key of a GETM, with its position in the request and the
    /// request-scoped tags every key is read with.
    GetManyKey {
        index: u16,
        key: Bytes,
        request_tags: Option<Arc<[Bytes]>>,
    },
    Set(Set),
    Delete(Delete),
    Touch(Touch),
    InvalidateTags(Arc<invalidate_tags::Invalidation>),
    FlushAll(flush_all::Flush),
    Stats,
    TagStatus(Arc<[Bytes]>),
}

impl Op {
    fn new(opaque: u32, flags: Flags, seq: u64, kind: OpKind) -> Op {
        Op {
            opaque,
            quiet: flags.contains(Flags::QUIET),
            with_tags: flags.contains(Flags::WITH_TAGS),
            allow_stale: flags.contains(Flags::ALLOW_STALE),
            lease: flags.contains(Flags::LEASE),
            seq,
            kind,
        }
    }

    /// An answer to send in order, needing no shard; nothing if `quiet` and
    /// the outcome is a quiet success.
    fn answer(opaque: u32, opcode: Opcode, outcome: Outcome, quiet: bool) -> Op {
        let flags = if quiet { Flags::QUIET } else { Flags::NONE };
        Op::new(opaque, flags, 0, OpKind::Answer { opcode, outcome })
    }

    /// The key the op looks up, if it runs on one key.
    fn key(&self) -> Option<&[u8]> {
        match &self.kind {
            OpKind::Get(get) => Some(&get.key),
            OpKind::GetManyKey { key, .. } => Some(key),
            OpKind::Set(set) => Some(&set.key),
            OpKind::Delete(delete) => Some(&delete.key),
            OpKind::Touch(touch) => Some(&touch.key),
            _ => None,
        }
    }

    /// Reports the shard's counters for a STATS (see [`Planner::gather`]).
    fn stats() -> Op {
        Op::new(0, Flags::NONE, 0, OpKind::Stats)
    }
}

/// Plans a decoded request (see the module comment).
// Inlined where the request is decoded, so the request is not copied to
// get here: a call cost about 80 instructions per request
// (benches/instructions.sh).
#[inline(always)]
pub fn plan(request: Request, shared: &Shared, planner: &mut impl Planner) -> Planned {
    let Request {
        opaque,
        flags,
        command,
    } = request;
    match command {
        Command::Hello(hello) => return hello::plan(opaque, hello, shared, planner),
        Command::Ping => ping::plan(opaque, Opcode::PING, planner),
        Command::Noop => ping::plan(opaque, Opcode::NOOP, planner),
        Command::Get(get) => get::plan(opaque, flags, get, shared, planner),
        Command::GetMany(get_many) => get_many::plan(opaque, flags, get_many, shared, planner),
        Command::Set(set) => set::plan(opaque, flags, set, shared, planner),
        Command::Delete(delete) => delete::plan(opaque, flags, delete, planner),
        Command::Touch(touch) => touch::plan(opaque, flags, touch, planner),
        Command::InvalidateTags(invalidate) => {
            invalidate_tags::plan(opaque, flags, invalidate, shared, planner);
        }
        Command::FlushAll(flush) => flush_all::plan(opaque, flags, flush, shared, planner),
        Command::Stats => stats::plan(opaque, planner),
        Command::TagStatus(request) => tag_status::plan(opaque, request, planner),
        Command::Auth(request) => return auth::plan(opaque, &request, shared, planner),
    }
    Planned::Queued
}

/// Plans the answer to a request whose frame was sound but whose body was
/// not: its error, in order; the connection goes on.
pub fn plan_refusal(bad: RequestError, planner: &mut impl Planner) {
    let outcome = Outcome::Error(bad.error.into());
    planner.queue(
        planner.home(),
        Op::answer(bad.opaque, bad.opcode, outcome, false),
    );
}

/// Plans the last answer of a connection whose stream can no longer be
/// framed (protocol.md §2): the error, if the header allows one.
pub fn plan_fatal(fatal: &FatalError, planner: &mut impl Planner) {
    if let Some((code, opaque, opcode)) = fatal.response_parts() {
        let outcome = error(code, fatal.to_string());
        planner.queue(planner.home(), Op::answer(opaque, opcode, outcome, false));
    }
}

/// Plans the last answer of a connection refused because the frame it is
/// receiving would take the server past `partial_frame_memory`: `BUSY`,
/// echoing the frame's header (protocol.md §4).
pub fn plan_overload(header: &Header, limit: usize, planner: &mut impl Planner) {
    let message =
        format!("the server holds its limit of {limit} bytes of partly received request frames");
    let outcome = error(ErrorCode::Busy, message);
    planner.queue(
        planner.home(),
        Op::answer(header.opaque, header.opcode, outcome, false),
    );
}

/// What running an op did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ran {
    /// Done; its answer, if any, is in the output.
    Done,
    /// A hit whose answer is larger than the room left: nothing was done,
    /// and the op must run again later.
    NoRoom,
}

/// Runs `op` on `shard`, appending its answer frame to `out` (nothing for a
/// quiet success). A hit whose frame is longer than `room` is not taken
/// (see [`Ran::NoRoom`]); every other answer is small and always fits.
///
/// `resolved` carries a GETM's request-scoped tags, resolved on this shard,
/// from one of its keys to the next within one run of a batch.
fn run(
    shard: &mut Shard,
    op: &Op,
    now_ms: u64,
    room: usize,
    out: &mut BytesMut,
    reports: &mut VecDeque<Report>,
    resolved: &mut ResolvedTags,
) -> Ran {
    match &op.kind {
        OpKind::Answer { opcode, outcome } => {
            encode(op.opaque, *opcode, outcome.clone(), op.quiet, out);
            Ran::Done
        }
        OpKind::Get(get) => get::run(shard, op, get, now_ms, room, out),
        OpKind::GetManyKey {
            index,
            key,
            request_tags,
        } => {
            let request_tags = request_tags
                .as_ref()
                .map(|tags| resolved.resolve(shard, tags, now_ms));
            get_many::run(shard, op, *index, key, request_tags, now_ms, room, out)
        }
        OpKind::Set(set) => set::run(shard, op, set, now_ms, out),
        OpKind::Delete(delete) => delete::run(shard, op, delete, now_ms, out),
        OpKind::Touch(touch) => touch::run(shard, op, touch, now_ms, out),
        OpKind::InvalidateTags(invalidation) => invalidate_tags::run(shard, op, invalidation),
        OpKind::FlushAll(flush) => flush_all::run(shard, op, *flush),
        OpKind::Stats => {
            reports.push_back(Report::Stats(shard.stats()));
            Ran::Done
        }
        OpKind::TagStatus(tags) => {
            reports.push_back(Report::Tags(tag_status::run(shard, tags)));
            Ran::Done
        }
    }
}

/// Appends the frame answering a request with `outcome`, unless `quiet`
/// leaves it unsent (protocol.md §5).
fn encode(opaque: u32, opcode: Opcode, outcome: Outcome, quiet: bool, out: &mut BytesMut) {
    if quiet && outcome.is_quiet_success(opcode) {
        return;
    }
    let response = Response {
        opaque,
        opcode,
        outcome,
    };
    out.reserve(response.encoded_len());
    response.encode(out);
}

fn error(code: ErrorCode, message: impl Into<Bytes>) -> Outcome {
    Outcome::Error(ErrorReply::new(code, message))
}
