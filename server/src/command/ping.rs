//! PING and NOOP (protocol.md §6.2): an OK in order, from no shard. That
//! it is in order is the point of NOOP: its answer follows every answer to
//! the requests before it.

use tagcached_protocol::response::Outcome;
use tagcached_protocol::Opcode;

use super::{Op, Planner};

pub(super) fn plan(opaque: u32, opcode: Opcode, planner: &mut impl Planner) {
    planner.queue(
        planner.home(),
        Op::answer(opaque, opcode, Outcome::Ok, false),
    );
}
