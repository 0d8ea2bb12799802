//! TAG_STATUS (protocol.md §6.11): every shard reports what it knows of the
//! tags, and the connection combines the reports, as for STATS.
//!
//! An invalidation reaches every shard with the same sequence and time, but
//! shards forget tags on their own: a tag's sequences are the newest any
//! shard remembers, its entries the sum over shards, and the floor the
//! highest. Times leave the store's clock here, converted to Unix
//! milliseconds by the wall clock at start.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tagcached_protocol::request::TagStatus;
use tagcached_protocol::response::{Outcome, TagState, TagStatusInfo};
use tagcached_protocol::{Opcode, Response};
use tagcached_store::Shard;

use super::{Gather, Op, OpKind, Planner, TagReport};
use crate::shared::Shared;

pub(super) fn plan(opaque: u32, request: TagStatus, planner: &mut impl Planner) {
    let tags: Arc<[Bytes]> = request.tags.into();
    for shard in 0..planner.shard_count() {
        let kind = OpKind::TagStatus(tags.clone());
        planner.queue(shard, Op::new(opaque, Default::default(), 0, kind));
    }
    planner.gather(opaque, Gather::TagStatus);
}

pub(super) fn run(shard: &Shard, tags: &[Bytes]) -> TagReport {
    TagReport {
        floor: (shard.floor().get(), shard.floor_at_ms()),
        statuses: tags.iter().map(|tag| shard.tag_status(tag)).collect(),
    }
}

/// The TAG_STATUS answer frame, from every shard's report. Its `seq` is
/// read now, after every shard reported, so it is at least every sequence
/// reported.
pub(super) fn answer(shared: &Shared, opaque: u32, reports: Vec<TagReport>) -> Bytes {
    let unix = |store_ms: u64, seq: u64| {
        if seq == 0 {
            0
        } else {
            shared.unix_ms(store_ms)
        }
    };
    let (forgotten_seq, forgotten_at_ms) = reports
        .iter()
        .map(|report| report.floor)
        .max()
        .unwrap_or_default();
    let tag_count = reports.first().map_or(0, |report| report.statuses.len());
    let statuses = (0..tag_count)
        .map(|index| {
            let mut state = TagState::default();
            for status in reports
                .iter()
                .filter_map(|report| report.statuses.get(index))
            {
                state.entries += status.entries;
                if status.hard_seq > state.hard_seq {
                    state.hard_seq = status.hard_seq;
                    state.hard_at = unix(status.hard_at_ms, status.hard_seq);
                }
                if let Some(soft) = status.soft.filter(|soft| soft.seq > state.soft_seq) {
                    state.soft_seq = soft.seq;
                    state.soft_at = shared.unix_ms(soft.at_ms);
                    state.soft_until = shared.unix_ms(soft.until_ms);
                }
            }
            state
        })
        .collect();
    let info = TagStatusInfo {
        seq: shared.sequence.current(),
        now: shared.unix_ms(shared.now_ms()),
        forgotten_seq,
        forgotten_at: shared.unix_ms(forgotten_at_ms),
        statuses,
    };
    let response = Response {
        opaque,
        opcode: Opcode::TAG_STATUS,
        outcome: Outcome::TagStatus(info),
    };
    let mut frame = BytesMut::with_capacity(response.encoded_len());
    response.encode(&mut frame);
    frame.freeze()
}
