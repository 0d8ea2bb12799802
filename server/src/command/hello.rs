//! HELLO (protocol.md §6.1): the server's limits, features and shard
//! layout, answered by the shard that will serve the connection: when the
//! client asks for another shard, the connection moves there first (see
//! the router) and the new shard answers.

use bytes::Bytes;
use tagcached_protocol::request::Hello;
use tagcached_protocol::response::{Features, HelloInfo, Outcome};
use tagcached_protocol::{ErrorCode, Opcode};

use super::{error, stats, Op, Planned, Planner};
use crate::shared::Shared;

pub(super) fn plan(
    opaque: u32,
    hello: Hello,
    shared: &Shared,
    planner: &mut impl Planner,
) -> Planned {
    match hello.want_shard {
        Some(shard) if shard >= planner.shard_count() => {
            let message = format!(
                "want_shard {shard} but the server has {} shards",
                planner.shard_count()
            );
            let refusal = error(ErrorCode::Malformed, message);
            planner.queue(
                planner.home(),
                Op::answer(opaque, Opcode::HELLO, refusal, false),
            );
        }
        Some(shard) if shard != planner.home() => return Planned::Migrate { shard, opaque },
        _ => plan_answer(opaque, shared, planner),
    }
    Planned::Queued
}

/// Queues the HELLO answer of the connection's home shard: after a plain
/// HELLO, or as the first thing a connection does on the shard it moved to.
pub fn plan_answer(opaque: u32, shared: &Shared, planner: &mut impl Planner) {
    let outcome = Outcome::Hello(HelloInfo {
        version: tagcached_protocol::PROTOCOL_VERSION,
        shard_count: planner.shard_count(),
        shard: planner.home(),
        hash: HelloInfo::HASH_FNV1A_64,
        features: Features::FENCED_SET
            | Features::SHARD_AWARE
            | Features::STALE_WHILE_REVALIDATE
            | Features::LEASES
            | if shared.auth.is_some() {
                Features::AUTH
            } else {
                Features::default()
            },
        limits: shared.config.limits,
        server_version: Bytes::from_static(stats::SERVER_VERSION.as_bytes()),
    });
    planner.queue(
        planner.home(),
        Op::answer(opaque, Opcode::HELLO, outcome, false),
    );
}
