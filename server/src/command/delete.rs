//! DELETE (protocol.md §6.6): one op on the key's shard.

use bytes::BytesMut;
use tagcached_protocol::request::Delete;
use tagcached_protocol::response::Outcome;
use tagcached_protocol::{Flags, Opcode};
use tagcached_store::Shard;

use super::{encode, Op, OpKind, Planner, Ran};

pub(super) fn plan(opaque: u32, flags: Flags, delete: Delete, planner: &mut impl Planner) {
    let shard = planner.shard_of(&delete.key);
    planner.queue(shard, Op::new(opaque, flags, 0, OpKind::Delete(delete)));
}

pub(super) fn run(
    shard: &mut Shard,
    op: &Op,
    delete: &Delete,
    now_ms: u64,
    out: &mut BytesMut,
) -> Ran {
    let outcome = if shard.delete(&delete.key, now_ms) {
        Outcome::Ok
    } else {
        Outcome::NotFound
    };
    encode(op.opaque, Opcode::DELETE, outcome, op.quiet, out);
    Ran::Done
}
