//! GET (protocol.md §6.3): one op on the key's shard. The lookup here also
//! answers each key of a GETM.

use bytes::{Bytes, BytesMut};
use tagcached_protocol::request::Get;
use tagcached_protocol::response::{HitRef, Lease, Miss, Outcome};
use tagcached_protocol::{Flags, Opcode, Response};
use tagcached_store::{HitRef as StoredHit, Shard};

use super::{encode, Op, OpKind, Planner, Ran};
use crate::shared::Shared;

pub(super) fn plan(
    opaque: u32,
    flags: Flags,
    get: Get,
    shared: &Shared,
    planner: &mut impl Planner,
) {
    let shard = planner.shard_of(&get.key);
    // The fence is the sequence now, in request order: an invalidation
    // pipelined before this GET has been numbered already.
    let fence = shared.sequence.current();
    planner.queue(shard, Op::new(opaque, flags, fence, OpKind::Get(get)));
}

pub(super) fn run(
    shard: &mut Shard,
    op: &Op,
    key: &[u8],
    now_ms: u64,
    room: usize,
    out: &mut BytesMut,
) -> Ran {
    lookup(shard, op, Opcode::GET, None, key, now_ms, room, out)
}

/// Looks `key` up for a GET (`key_index` none) or one key of a GETM, and
/// appends its answer: a hit encoded straight from the stored bytes, so the
/// copy into `out` is the value's only copy; or a miss, unless quiet. A hit
/// whose frame is longer than `room` is left untouched ([`Ran::NoRoom`]).
#[allow(clippy::too_many_arguments)]
pub(super) fn lookup(
    shard: &mut Shard,
    op: &Op,
    opcode: Opcode,
    key_index: Option<u16>,
    key: &[u8],
    now_ms: u64,
    room: usize,
    out: &mut BytesMut,
) -> Ran {
    let tags = if op.with_tags {
        shard.tag_names(key).unwrap_or_default()
    } else {
        Vec::new()
    };
    let fits = |hit: &StoredHit<'_>| {
        Response::encoded_hit_len(opcode, &frame(hit, key_index, op.seq, &tags)) <= room
    };
    match shard.get_borrowed_if(key, now_ms, fits) {
        Ok(Some(hit)) => {
            let hit = frame(&hit, key_index, op.seq, &tags);
            Response::encode_hit(op.opaque, opcode, &hit, out);
            Ran::Done
        }
        Ok(None) => Ran::NoRoom,
        Err(_) => {
            let miss = Outcome::Miss(Miss {
                key_index,
                fence: op.seq,
                lease: Lease::NotRequested,
            });
            encode(op.opaque, opcode, miss, op.quiet, out);
            Ran::Done
        }
    }
}

/// The answer to a hit, borrowing the stored value.
fn frame<'a>(
    hit: &StoredHit<'a>,
    key_index: Option<u16>,
    fence: u64,
    tags: &'a [Bytes],
) -> HitRef<'a> {
    HitRef {
        key_index,
        fence,
        lease: Lease::NotRequested,
        cas: hit.cas,
        client_flags: hit.client_flags,
        tags,
        value: hit.value,
    }
}
