//! GETM (protocol.md §6.4): one op per key, on the key's shard. Each key's
//! frame goes out in key order whichever thread encoded it, and a GETM
//! larger than the connection's memory budget is answered in slices, a
//! round at a time, as its socket drains.

use bytes::{Bytes, BytesMut};
use tagcached_protocol::request::GetMany;
use tagcached_protocol::{Flags, Opcode};
use tagcached_store::Shard;

use super::{get, Op, OpKind, Planner, Ran};
use crate::shared::Shared;

pub(super) fn plan(
    opaque: u32,
    flags: Flags,
    get_many: GetMany,
    shared: &Shared,
    planner: &mut impl Planner,
) {
    // One fence for the whole request, read in request order.
    let fence = shared.sequence.current();
    for (index, key) in get_many.keys.into_iter().enumerate() {
        let shard = planner.shard_of(&key);
        // The decoder allows at most `u16::MAX` keys.
        let index = index as u16;
        let kind = OpKind::GetManyKey { index, key };
        planner.queue(shard, Op::new(opaque, flags, fence, kind));
    }
}

pub(super) fn run(
    shard: &mut Shard,
    op: &Op,
    index: u16,
    key: &Bytes,
    now_ms: u64,
    room: usize,
    out: &mut BytesMut,
) -> Ran {
    get::lookup(shard, op, Opcode::GETM, Some(index), key, now_ms, room, out)
}
