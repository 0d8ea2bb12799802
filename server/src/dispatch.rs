//! Where the protocol meets the store: a decoded command runs on a shard
//! and becomes a protocol outcome. The only file that knows both types.

use bytes::{Bytes, BytesMut};
use tagcached_protocol::request::{Command, Set, SetMode};
use tagcached_protocol::response::{ErrorReply, HitRef, Miss, Outcome};
use tagcached_protocol::{ErrorCode, Opcode, Response};
use tagcached_store::{self as store, InvalidationSeq, Shard};

/// Runs a keyed write (SET, DELETE, TOUCH) on the shard that owns its key.
/// `fence` is the invalidation sequence read when the connection ran the
/// command, in its request order: a SET is stamped with it. `now_ms` is the
/// server's clock. GET goes through [`answer_keyed`], which encodes hits in
/// place.
fn keyed_write(shard: &mut Shard, command: &Command, fence: u64, now_ms: u64) -> Outcome {
    match command {
        Command::Set(set) => store_value(shard, set, fence, now_ms),
        Command::Delete(delete) => {
            if shard.delete(&delete.key, now_ms) {
                Outcome::Ok
            } else {
                Outcome::NotFound
            }
        }
        Command::Touch(touch) => {
            if shard.touch(&touch.key, touch.ttl, now_ms) {
                Outcome::Ok
            } else {
                Outcome::NotFound
            }
        }
        other => Outcome::Error(ErrorReply::new(
            ErrorCode::Internal,
            format!("{:?} is not a keyed write", other.opcode()),
        )),
    }
}

/// A keyed command to answer, with what its answer depends on.
pub struct Keyed<'a> {
    /// GET, SET, DELETE or TOUCH; its key belongs to the shard.
    pub command: &'a Command,
    /// Echoed in the response.
    pub opaque: u32,
    /// Leave a success unanswered (protocol.md §5).
    pub quiet: bool,
    /// GET: return the entry's tags.
    pub with_tags: bool,
    /// The invalidation sequence read in request order: a GET's fence, a
    /// SET's stamp.
    pub seq: u64,
    /// The server's clock.
    pub now_ms: u64,
}

/// Runs a keyed command and appends its response frame to `dst` (nothing
/// for a quiet success). A GET hit is encoded straight from the stored
/// bytes: the copy into `dst` is the only copy of the value.
pub fn answer_keyed(shard: &mut Shard, request: &Keyed<'_>, dst: &mut BytesMut) {
    let opcode = request.command.opcode();
    let outcome = match request.command {
        Command::Get(get) => {
            let lookup = ManyLookup {
                opaque: request.opaque,
                quiet: request.quiet,
                with_tags: request.with_tags,
                seq: request.seq,
                now_ms: request.now_ms,
            };
            return lookup_into(shard, &lookup, Opcode::GET, None, &get.key, dst);
        }
        command => keyed_write(shard, command, request.seq, request.now_ms),
    };
    encode(request.opaque, opcode, outcome, request.quiet, dst);
}

/// How to answer the keys of one GETM.
#[derive(Debug, Clone, Copy)]
pub struct ManyLookup {
    /// The GETM's opaque.
    pub opaque: u32,
    /// Leave misses unanswered.
    pub quiet: bool,
    /// Return each hit's tags.
    pub with_tags: bool,
    /// The fence to report: the sequence read in request order.
    pub seq: u64,
    /// The server's clock.
    pub now_ms: u64,
}

/// Looks up one GETM key and returns its response frame, split off
/// `scratch` (empty for a quiet miss), so frames encoded by different
/// shards can be put back in key order without copying.
pub fn answer_lookup(
    shard: &mut Shard,
    lookup: &ManyLookup,
    key_index: u16,
    key: &[u8],
    scratch: &mut BytesMut,
) -> Bytes {
    lookup_into(shard, lookup, Opcode::GETM, Some(key_index), key, scratch);
    scratch.split().freeze()
}

fn lookup_into(
    shard: &mut Shard,
    lookup: &ManyLookup,
    opcode: Opcode,
    key_index: Option<u16>,
    key: &[u8],
    dst: &mut BytesMut,
) {
    let tags = if lookup.with_tags {
        shard.tag_names(key).unwrap_or_default()
    } else {
        Vec::new()
    };
    match shard.get_borrowed(key, lookup.now_ms) {
        Ok(hit) => {
            let hit = HitRef {
                key_index,
                fence: lookup.seq,
                cas: hit.cas,
                client_flags: hit.client_flags,
                tags: &tags,
                value: hit.value,
            };
            Response::encode_hit(lookup.opaque, opcode, &hit, dst);
        }
        Err(_) => {
            let miss = Outcome::Miss(Miss {
                key_index,
                fence: lookup.seq,
            });
            encode(lookup.opaque, opcode, miss, lookup.quiet, dst);
        }
    }
}

/// Appends the response frame for `outcome`, unless it is a quiet success.
pub fn encode(opaque: u32, opcode: Opcode, outcome: Outcome, quiet: bool, dst: &mut BytesMut) {
    if quiet && outcome.is_quiet_success(opcode) {
        return;
    }
    let response = Response {
        opaque,
        opcode,
        outcome,
    };
    dst.reserve(response.encoded_len());
    response.encode(dst);
}

fn store_value(shard: &mut Shard, set: &Set, current_seq: u64, now_ms: u64) -> Outcome {
    let mode = match set.mode {
        SetMode::Set => store::SetMode::Set,
        SetMode::Add => store::SetMode::Add,
        SetMode::Replace => store::SetMode::Replace,
        SetMode::Cas(cas) => store::SetMode::Cas(cas),
    };
    // The store copies the value into the entry's own allocation, so a
    // slice of the receive buffer is passed as is: copying here too would
    // copy twice.
    let args = store::SetArgs {
        key: &set.key,
        value: set.value.clone(),
        client_flags: set.client_flags,
        ttl_secs: set.ttl,
        tags: &set.tags,
        mode,
        fence: set.fence.map(InvalidationSeq::new),
    };
    match shard.set(args, InvalidationSeq::new(current_seq), now_ms) {
        store::SetOutcome::Stored { cas } => Outcome::Stored { cas },
        store::SetOutcome::NotStored => Outcome::NotStored,
        store::SetOutcome::Exists => Outcome::Exists,
        store::SetOutcome::NotFound => Outcome::NotFound,
        store::SetOutcome::Fenced => Outcome::Fenced,
        store::SetOutcome::TooLarge => Outcome::Error(ErrorReply::new(
            ErrorCode::ValueTooLarge,
            format!(
                "an entry of {} bytes can never fit in a shard's {} bytes of memory",
                set.value.len() + set.key.len(),
                shard.config().memory_limit
            ),
        )),
    }
}
