//! TOUCH (protocol.md §6.7): one op on the key's shard.

use bytes::BytesMut;
use tagcached_protocol::request::Touch;
use tagcached_protocol::response::Outcome;
use tagcached_protocol::{Flags, Opcode};
use tagcached_store::Shard;

use super::{encode, Op, OpKind, Planner, Ran};

pub(super) fn plan(opaque: u32, flags: Flags, touch: Touch, planner: &mut impl Planner) {
    let shard = planner.shard_of(&touch.key);
    planner.queue(shard, Op::new(opaque, flags, 0, OpKind::Touch(touch)));
}

pub(super) fn run(
    shard: &mut Shard,
    op: &Op,
    touch: &Touch,
    now_ms: u64,
    out: &mut BytesMut,
) -> Ran {
    let outcome = if shard.touch(&touch.key, touch.ttl, now_ms) {
        Outcome::Ok
    } else {
        Outcome::NotFound
    };
    encode(op.opaque, Opcode::TOUCH, outcome, op.quiet, out);
    Ran::Done
}
