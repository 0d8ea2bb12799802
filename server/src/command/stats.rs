//! STATS (protocol.md §6.10): every shard reports its counters, and the
//! connection renders them with the server-wide ones as `name value` lines:
//! server-wide counters, the shards' counters summed, then each shard's own.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use tagcached_protocol::response::Outcome;
use tagcached_protocol::{Opcode, Response};
use tagcached_store::ShardStats;

use super::{Gather, Op, Planner};
use crate::shared::Shared;

/// `tagcached <version>`, reported by HELLO and STATS.
pub const SERVER_VERSION: &str = concat!("tagcached ", env!("CARGO_PKG_VERSION"));

pub(super) fn plan(opaque: u32, planner: &mut impl Planner) {
    for shard in 0..planner.shard_count() {
        planner.queue(shard, Op::stats());
    }
    planner.gather(opaque, Gather::Stats);
}

/// The STATS answer frame, from each shard's counters (by shard index).
pub fn answer(shared: &Shared, opaque: u32, per_shard: &[(u16, ShardStats)]) -> Bytes {
    let response = Response {
        opaque,
        opcode: Opcode::STATS,
        outcome: Outcome::Stats(render(shared, per_shard)),
    };
    let mut frame = BytesMut::with_capacity(response.encoded_len());
    response.encode(&mut frame);
    frame.freeze()
}

fn render(shared: &Shared, per_shard: &[(u16, ShardStats)]) -> Bytes {
    let mut out = String::with_capacity(2048);
    let mut line = |name: &str, value: &dyn std::fmt::Display| {
        let _ = writeln!(out, "{name} {value}");
    };
    let counters = &shared.counters;
    let total: ShardStats = per_shard.iter().map(|(_, stats)| *stats).sum();
    line("pid", &std::process::id());
    line("uptime", &shared.started.elapsed().as_secs());
    line("version", &env!("CARGO_PKG_VERSION"));
    line("threads", &shared.config.threads);
    let server: [(&str, u64); 15] = [
        (
            "curr_connections",
            counters.curr_connections.load(Ordering::Relaxed) as u64,
        ),
        (
            "total_connections",
            counters.total_connections.load(Ordering::Relaxed),
        ),
        (
            "rejected_connections",
            counters.rejected_connections.load(Ordering::Relaxed),
        ),
        ("invalidation_seq", shared.sequence.current()),
        (
            "invalidations",
            counters.invalidations.load(Ordering::Relaxed),
        ),
        (
            "soft_invalidations",
            counters.soft_invalidations.load(Ordering::Relaxed),
        ),
        ("cmd_flush", counters.flushes.load(Ordering::Relaxed)),
        ("lease_time", shared.config.lease_time.as_secs()),
        ("idle_kicks", counters.idle_kicks.load(Ordering::Relaxed)),
        (
            "partial_frame_bytes",
            counters.partial_frame_bytes.load(Ordering::Relaxed) as u64,
        ),
        (
            "partial_frame_refusals",
            counters.partial_frame_refusals.load(Ordering::Relaxed),
        ),
        (
            "frame_timeouts",
            counters.frame_timeouts.load(Ordering::Relaxed),
        ),
        (
            "auth_failures",
            counters.auth_failures.load(Ordering::Relaxed),
        ),
        (
            "auth_refusals",
            counters.auth_refusals.load(Ordering::Relaxed),
        ),
        (
            "auth_timeouts",
            counters.auth_timeouts.load(Ordering::Relaxed),
        ),
    ];
    for (name, value) in server {
        line(name, &value);
    }
    write_shard(&mut line, "", &total);
    for (shard, stats) in per_shard {
        write_shard(&mut line, &format!("shard.{shard}."), stats);
    }
    Bytes::from(out)
}

fn write_shard(
    line: &mut impl FnMut(&str, &dyn std::fmt::Display),
    prefix: &str,
    stats: &ShardStats,
) {
    let fields: [(&str, u64); 22] = [
        ("curr_items", stats.curr_items),
        ("bytes", stats.bytes),
        ("limit_maxbytes", stats.limit_bytes),
        ("get_hits", stats.get_hits),
        ("get_misses", stats.get_misses),
        ("get_invalidated", stats.get_misses_invalidated),
        ("get_expired", stats.get_misses_expired),
        ("get_stale", stats.get_stale),
        ("get_hot_misses", stats.get_hot_misses),
        ("leases_granted", stats.leases_granted),
        ("set_lease_lost", stats.set_lease_lost),
        ("leases_held", stats.leases_held),
        ("cmd_set", stats.sets),
        ("set_fenced", stats.sets_fenced),
        ("cas_misses", stats.cas_mismatches),
        ("delete_hits", stats.deletes),
        ("touch_hits", stats.touches),
        ("evictions", stats.evictions),
        ("expired_reclaimed", stats.expired_reclaimed),
        ("invalidated_reclaimed", stats.invalidated_reclaimed),
        ("tag_invalidations", stats.tag_invalidations),
        ("tags_tracked", stats.tags_tracked),
    ];
    for (name, value) in fields {
        line(&format!("{prefix}{name}"), &value);
    }
}
