//! GET (protocol.md §6.3): one op on the key's shard. The lookup here also
//! answers each key of a GETM.

use bytes::{Bytes, BytesMut};
use tagcached_protocol::request::Get;
use tagcached_protocol::response::{HitRef, Lease, Miss, Outcome};
use tagcached_protocol::{Flags, Opcode, Response};
use tagcached_store::{
    HitRef as StoredHit, InvalidationSeq, Read, ReadOptions, RequestTags, Shard,
};

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
    get: &Get,
    now_ms: u64,
    room: usize,
    out: &mut BytesMut,
) -> Ran {
    let request_tags = get
        .request_tags
        .as_ref()
        .map(|tags| shard.resolve_request_tags(tags, now_ms));
    let key = Key {
        index: None,
        key: &get.key,
        request_tags,
    };
    lookup(shard, op, Opcode::GET, key, now_ms, room, out)
}

/// What one lookup reads: a GET's key (`index` none) or one key of a GETM,
/// with the request's scoped tags.
pub(super) struct Key<'a> {
    pub(super) index: Option<u16>,
    pub(super) key: &'a [u8],
    pub(super) request_tags: Option<RequestTags>,
}

/// Looks a key up for a GET or one key of a GETM, as the op's flags ask
/// (protocol.md §6.3's table), and appends its answer: a hit or a stale
/// entry encoded straight from the stored bytes, so the copy into `out` is
/// the value's only copy; or a miss (unless quiet and granting no lease)
/// or a hot miss. A hit whose frame is longer than `room` is left
/// untouched ([`Ran::NoRoom`]), lease and all.
pub(super) fn lookup(
    shard: &mut Shard,
    op: &Op,
    opcode: Opcode,
    key: Key<'_>,
    now_ms: u64,
    room: usize,
    out: &mut BytesMut,
) -> Ran {
    let tags = if op.with_tags {
        shard.tag_names(key.key).unwrap_or_default()
    } else {
        Vec::new()
    };
    let options = ReadOptions {
        allow_stale: op.allow_stale,
        lease: op.lease.then_some(InvalidationSeq::new(op.seq)),
        request_tags: key.request_tags,
    };
    // The lease field's length does not depend on whether one is granted.
    let asked = if op.lease {
        Lease::NotGranted
    } else {
        Lease::NotRequested
    };
    let fits = |hit: &StoredHit<'_>| {
        let frame = frame(hit, key.index, op.seq, asked, &tags);
        Response::encoded_hit_len(opcode, &frame) <= room
    };
    let miss = |lease: Option<u64>| Miss {
        key_index: key.index,
        fence: op.seq,
        lease: lease_field(op.lease, lease),
    };
    match shard.read(key.key, now_ms, &options, fits) {
        Read::Hit {
            entry,
            stale,
            lease,
        } => {
            let hit = frame(
                &entry,
                key.index,
                op.seq,
                lease_field(op.lease, lease),
                &tags,
            );
            if stale {
                Response::encode_stale(op.opaque, opcode, &hit, out);
            } else {
                Response::encode_hit(op.opaque, opcode, &hit, out);
            }
            Ran::Done
        }
        Read::Declined => Ran::NoRoom,
        Read::Miss { lease, .. } => {
            encode(op.opaque, opcode, Outcome::Miss(miss(lease)), op.quiet, out);
            Ran::Done
        }
        Read::HotMiss => {
            encode(
                op.opaque,
                opcode,
                Outcome::HotMiss(miss(None)),
                op.quiet,
                out,
            );
            Ran::Done
        }
    }
}

/// The `lease` field of an answer to a read that asked for a lease or not.
fn lease_field(asked: bool, granted: Option<u64>) -> Lease {
    if asked {
        Lease::from_field(Some(granted.unwrap_or(0)))
    } else {
        Lease::NotRequested
    }
}

/// The answer to a hit, borrowing the stored value.
fn frame<'a>(
    hit: &StoredHit<'a>,
    key_index: Option<u16>,
    fence: u64,
    lease: Lease,
    tags: &'a [Bytes],
) -> HitRef<'a> {
    HitRef {
        key_index,
        fence,
        lease,
        cas: hit.cas,
        client_flags: hit.client_flags,
        tags,
        value: hit.value,
    }
}
