//! GETM (protocol.md §6.4): one op per key, on the key's shard. Each key's
//! frame goes out in key order whichever thread encoded it, and a GETM
//! larger than the connection's memory budget is answered in slices, a
//! round at a time, as its socket drains.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tagcached_protocol::request::GetMany;
use tagcached_protocol::{Flags, Opcode};
use tagcached_store::{RequestTags, Shard};

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
    let request_tags: Option<Arc<[Bytes]>> = get_many.request_tags.map(Into::into);
    for (index, key) in get_many.keys.into_iter().enumerate() {
        let shard = planner.shard_of(&key);
        // The decoder allows at most `u16::MAX` keys.
        let index = index as u16;
        let kind = OpKind::GetManyKey {
            index,
            key,
            request_tags: request_tags.clone(),
        };
        planner.queue(shard, Op::new(opaque, flags, fence, kind));
    }
}

/// A GETM's request-scoped tags resolved on a shard, reused by the GETM's
/// next keys there within one run of a batch: resolving is O(tags), and a
/// GETM of `max_keys_per_getm` keys with `max_tags` request tags would
/// otherwise cost a million lookups. Valid for the whole run: the run has
/// one `now_ms`, and no invalidation is applied on the shard in between
/// (a read that makes the shard forget a tag only raises its floor past
/// invalidations this GETM was not ordered after; see the store's `tags`
/// module).
#[derive(Default)]
pub(super) struct ResolvedTags(Option<(Arc<[Bytes]>, RequestTags)>);

impl ResolvedTags {
    pub(super) fn resolve(
        &mut self,
        shard: &Shard,
        tags: &Arc<[Bytes]>,
        now_ms: u64,
    ) -> RequestTags {
        match &self.0 {
            Some((resolved, request_tags)) if Arc::ptr_eq(resolved, tags) => *request_tags,
            _ => {
                let request_tags = shard.resolve_request_tags(tags, now_ms);
                self.0 = Some((tags.clone(), request_tags));
                request_tags
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn run(
    shard: &mut Shard,
    op: &Op,
    index: u16,
    key: &Bytes,
    request_tags: Option<RequestTags>,
    now_ms: u64,
    room: usize,
    out: &mut BytesMut,
) -> Ran {
    let key = get::Key {
        index: Some(index),
        key,
        request_tags,
    };
    get::lookup(shard, op, Opcode::GETM, key, now_ms, room, out)
}
