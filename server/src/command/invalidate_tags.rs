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
use tagcached_store::{InvalidationSeq, Shard, SoftWindow};

use super::{Op, OpKind, Planner, Ran};
use crate::shared::Shared;

/// An invalidation as every shard applies it: its tags, when it was
/// numbered (store clock), and, if soft, when its window ends. The time is
/// taken once, here, so every shard records the same one and the window
/// ends at the same instant everywhere.
#[derive(Debug)]
pub(super) struct Invalidation {
    tags: Vec<Bytes>,
    at_ms: u64,
    soft_until_ms: Option<u64>,
}

pub(super) fn plan(
    opaque: u32,
    flags: Flags,
    invalidate: InvalidateTags,
    shared: &Shared,
    planner: &mut impl Planner,
) {
    let counters = &shared.counters;
    counters.invalidations.fetch_add(1, Ordering::Relaxed);
    // A soft invalidation with a window of 0 is a hard one (protocol.md
    // §6.8).
    let soft_expire = invalidate.soft_expire.filter(|&secs| secs > 0);
    if soft_expire.is_some() {
        counters.soft_invalidations.fetch_add(1, Ordering::Relaxed);
        counters
            .soft_tag_invalidations
            .fetch_add(1, Ordering::Relaxed);
    }
    let seq = shared.sequence.advance();
    let at_ms = shared.now_ms();
    let invalidation = Arc::new(Invalidation {
        tags: invalidate.tags,
        at_ms,
        soft_until_ms: soft_expire.map(|secs| at_ms + u64::from(secs) * 1000),
    });
    for shard in 0..planner.shard_count() {
        let kind = OpKind::InvalidateTags(invalidation.clone());
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

pub(super) fn run(shard: &mut Shard, op: &Op, invalidation: &Invalidation) -> Ran {
    let tags = &invalidation.tags;
    match invalidation.soft_until_ms {
        None => shard.invalidate(tags, InvalidationSeq::new(op.seq), invalidation.at_ms),
        Some(until_ms) => {
            let window = SoftWindow {
                seq: op.seq,
                at_ms: invalidation.at_ms,
                until_ms,
            };
            shard.invalidate_soft(tags, window);
        }
    }
    Ran::Done
}
