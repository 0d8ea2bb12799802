//! INVALIDATE_TAGS (protocol.md §6.8): numbered once, applied on every
//! shard, answered once all have applied it.
//!
//! The sequence is taken while planning, so requests pipelined after it are
//! planned (a GET's fence, a SET's stamp) with it already counted. Each
//! shard gets the invalidation as an op in the connection's queue for that
//! shard, ahead of anything the connection sends there later, and the
//! answer is queued after all of them: the connection writes it only once
//! every shard has run its op, which is the moment the guarantee of
//! protocol.md §8.2 begins.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use tagcached_protocol::request::InvalidateTags;
use tagcached_protocol::response::Outcome;
use tagcached_protocol::{Flags, Opcode};
use tagcached_store::{InvalidationSeq, Shard};

use super::{Op, OpKind, Planner, Ran};
use crate::shared::Shared;

pub(super) fn plan(
    opaque: u32,
    flags: Flags,
    invalidate: InvalidateTags,
    shared: &Shared,
    planner: &mut impl Planner,
) {
    shared
        .counters
        .invalidations
        .fetch_add(1, Ordering::Relaxed);
    let seq = shared.sequence.advance();
    let tags: Arc<[Bytes]> = invalidate.tags.into();
    for shard in 0..planner.shard_count() {
        let kind = OpKind::InvalidateTags(tags.clone());
        planner.queue(shard, Op::new(opaque, Flags::NONE, seq, kind));
    }
    let answer = Op::answer(
        opaque,
        Opcode::INVALIDATE_TAGS,
        Outcome::Sequence(seq),
        flags.contains(Flags::QUIET),
    );
    planner.queue(planner.home(), answer);
}

pub(super) fn run(shard: &mut Shard, op: &Op, tags: &[Bytes], now_ms: u64) -> Ran {
    shard.invalidate(tags, InvalidationSeq::new(op.seq), now_ms);
    Ran::Done
}
