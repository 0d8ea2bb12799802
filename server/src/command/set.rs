//! SET (protocol.md §6.5): one op on the key's shard.

use bytes::BytesMut;
use tagcached_protocol::request::{Set, SetMode};
use tagcached_protocol::response::Outcome;
use tagcached_protocol::{ErrorCode, Flags, Opcode};
use tagcached_store::{self as store, InvalidationSeq, Shard};

use super::{encode, error, Op, OpKind, Planner, Ran};
use crate::shared::Shared;

pub(super) fn plan(
    opaque: u32,
    flags: Flags,
    set: Set,
    shared: &Shared,
    planner: &mut impl Planner,
) {
    let shard = planner.shard_of(&set.key);
    // The entry is stamped with the sequence now, in request order, not when
    // its shard gets to it: an INVALIDATE_TAGS pipelined after this SET may
    // be numbered by then, and must still cover the entry.
    //
    // The same read bounds the fence: the shard refuses a fence above it
    // (protocol.md §8.2). Every fence this server handed out was read from
    // the counter by a GET planned before the client had its answer, so
    // before this SET was read; the counter never goes back, and
    // invalidations on other connections, racing this read or not, only
    // raise it. So no fence of this server's is above the stamp, and one
    // above it is another server's. Comparing later, when the shard runs
    // the op, would be as safe but looser: by then the counter may have
    // passed a foreign fence.
    let stamp = shared.sequence.current();
    planner.queue(shard, Op::new(opaque, flags, stamp, OpKind::Set(set)));
}

pub(super) fn run(shard: &mut Shard, op: &Op, set: &Set, now_ms: u64, out: &mut BytesMut) -> Ran {
    let mode = match set.mode {
        SetMode::Set => store::SetMode::Set,
        SetMode::Add => store::SetMode::Add,
        SetMode::Replace => store::SetMode::Replace,
        SetMode::Cas(cas) => store::SetMode::Cas(cas),
    };
    // The store copies the value into the entry's own allocation, so a
    // slice of the receive buffer is passed as is: copying here too would
    // copy twice.
    let args = store::SetArgs {
        key: &set.key,
        value: set.value.clone(),
        client_flags: set.client_flags,
        ttl_secs: set.ttl,
        tags: &set.tags,
        mode,
        fence: set.fence.map(InvalidationSeq::new),
        lease: set.lease,
        stale_after_secs: set.stale_after.unwrap_or(0),
    };
    let outcome = match shard.set(args, InvalidationSeq::new(op.seq), now_ms) {
        store::SetOutcome::Stored { cas } => Outcome::Stored { cas },
        store::SetOutcome::NotStored => Outcome::NotStored,
        store::SetOutcome::Exists => Outcome::Exists,
        store::SetOutcome::NotFound => Outcome::NotFound,
        store::SetOutcome::Fenced => Outcome::Fenced,
        store::SetOutcome::LeaseLost => Outcome::LeaseLost,
        store::SetOutcome::TooLarge => error(
            ErrorCode::ValueTooLarge,
            format!(
                "an entry of {} bytes can never fit in a shard's {} bytes of memory",
                set.value.len() + set.key.len(),
                shard.config().memory_limit
            ),
        ),
    };
    encode(op.opaque, Opcode::SET, outcome, op.quiet, out);
    Ran::Done
}
