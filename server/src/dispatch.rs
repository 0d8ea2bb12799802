//! Where the protocol meets the store: a decoded command runs on a shard
//! and becomes a protocol outcome. The only file that knows both types.

use bytes::BytesMut;
use tagcached_protocol::request::{Command, Set, SetMode};
use tagcached_protocol::response::{ErrorReply, Hit, HitRef, Miss, Outcome};
use tagcached_protocol::{ErrorCode, Opcode, Response};
use tagcached_store::{self as store, InvalidationSeq, Lookup, Shard};

/// Runs a keyed command (GET, SET, DELETE, TOUCH) on the shard that owns its
/// key. `fence` is the invalidation sequence read when the connection ran
/// the command, in its request order: GET reports it, SET is stamped with
/// it. `now_ms` is the server's clock.
///
/// The caller guarantees the command is keyed and its key belongs to `shard`.
pub fn keyed(
    shard: &mut Shard,
    command: &Command,
    with_tags: bool,
    fence: u64,
    now_ms: u64,
) -> Outcome {
    match command {
        Command::Get(get) => lookup(shard, &get.key, None, with_tags, fence, now_ms),
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
            format!("{:?} is not a keyed command", other.opcode()),
        )),
    }
}

/// GET without tags, answered in place: on a hit, appends the response
/// frame to `dst` straight from the stored bytes (no copy of the value
/// before the one into `dst`) and returns `None`; on a miss, returns the
/// outcome to send.
pub fn get_into(
    shard: &mut Shard,
    key: &[u8],
    fence: u64,
    now_ms: u64,
    opaque: u32,
    dst: &mut BytesMut,
) -> Option<Outcome> {
    match shard.get_borrowed(key, now_ms) {
        Ok(hit) => {
            let hit = HitRef {
                key_index: None,
                fence,
                cas: hit.cas,
                client_flags: hit.client_flags,
                tags: &[],
                value: hit.value,
            };
            Response::encode_hit(opaque, Opcode::GET, &hit, dst);
            None
        }
        Err(_) => Some(Outcome::Miss(Miss {
            key_index: None,
            fence,
        })),
    }
}

/// Looks one key up; `key_index` is set for GETM.
pub fn lookup(
    shard: &mut Shard,
    key: &[u8],
    key_index: Option<u16>,
    with_tags: bool,
    fence: u64,
    now_ms: u64,
) -> Outcome {
    match shard.get(key, now_ms, with_tags) {
        Lookup::Hit(hit) => Outcome::Hit(Hit {
            key_index,
            fence,
            cas: hit.cas,
            client_flags: hit.client_flags,
            tags: hit.tags.unwrap_or_default(),
            value: hit.value,
        }),
        Lookup::Miss(_) => Outcome::Miss(Miss { key_index, fence }),
    }
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
