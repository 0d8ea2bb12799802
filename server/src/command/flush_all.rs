//! FLUSH_ALL (protocol.md §6.9): numbered once, applied on every shard,
//! answered once all have applied it, like INVALIDATE_TAGS (see there).

use std::sync::atomic::Ordering;

use tagcached_protocol::response::Outcome;
use tagcached_protocol::{Flags, Opcode};
use tagcached_store::{InvalidationSeq, Shard};

use super::{Op, OpKind, Planner, Ran};
use crate::shared::Shared;

pub(super) fn plan(opaque: u32, flags: Flags, shared: &Shared, planner: &mut impl Planner) {
    shared.counters.flushes.fetch_add(1, Ordering::Relaxed);
    let seq = shared.sequence.advance();
    for shard in 0..planner.shard_count() {
        planner.queue(shard, Op::new(opaque, Flags::NONE, seq, OpKind::FlushAll));
    }
    let answer = Op::answer(
        opaque,
        Opcode::FLUSH_ALL,
        Outcome::Sequence(seq),
        flags.contains(Flags::QUIET),
    );
    planner.queue(planner.home(), answer);
}

pub(super) fn run(shard: &mut Shard, op: &Op, now_ms: u64) -> Ran {
    shard.flush_all(InvalidationSeq::new(op.seq), now_ms);
    Ran::Done
}
