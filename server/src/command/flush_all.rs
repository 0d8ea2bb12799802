//! FLUSH_ALL (protocol.md §6.9): numbered once, applied on every shard,
//! answered once all have applied it, like INVALIDATE_TAGS (see there).

use std::sync::atomic::Ordering;

use tagcached_protocol::request::FlushAll;
use tagcached_protocol::response::Outcome;
use tagcached_protocol::{Flags, Opcode};
use tagcached_store::{InvalidationSeq, Shard, SoftWindow};

use super::{Op, OpKind, Planner, Ran};
use crate::shared::Shared;

/// A flush as every shard applies it: when it was numbered (store clock),
/// and, if soft, when its window ends.
#[derive(Debug, Clone, Copy)]
pub(super) struct Flush {
    at_ms: u64,
    soft_until_ms: Option<u64>,
}

pub(super) fn plan(
    opaque: u32,
    flags: Flags,
    request: FlushAll,
    shared: &Shared,
    planner: &mut impl Planner,
) {
    shared.counters.flushes.fetch_add(1, Ordering::Relaxed);
    // A soft flush with a window of 0 is a hard one (protocol.md §6.9).
    let soft_expire = request.soft_expire.filter(|&secs| secs > 0);
    if soft_expire.is_some() {
        let counters = &shared.counters;
        counters.soft_invalidations.fetch_add(1, Ordering::Relaxed);
        counters.soft_flushes.fetch_add(1, Ordering::Relaxed);
    }
    let seq = shared.sequence.advance();
    let at_ms = shared.now_ms();
    let flush = Flush {
        at_ms,
        soft_until_ms: soft_expire.map(|secs| at_ms + u64::from(secs) * 1000),
    };
    for shard in 0..planner.shard_count() {
        planner.queue(
            shard,
            Op::new(opaque, Flags::NONE, seq, OpKind::FlushAll(flush)),
        );
    }
    let answer = Op::answer(
        opaque,
        Opcode::FLUSH_ALL,
        Outcome::Sequence(seq),
        flags.contains(Flags::QUIET),
    );
    planner.queue(planner.home(), answer);
}

pub(super) fn run(shard: &mut Shard, op: &Op, flush: Flush) -> Ran {
    match flush.soft_until_ms {
        None => shard.flush_all(InvalidationSeq::new(op.seq), flush.at_ms),
        Some(until_ms) => shard.flush_all_soft(SoftWindow {
            seq: op.seq,
            at_ms: flush.at_ms,
            until_ms,
        }),
    }
    Ran::Done
}
