//! A [`Batch`]: one shard's share of a connection's round, and the unit a
//! hop between threads carries.
//!
//! A connection keeps one batch per shard it has sent work to. Each round
//! it fills the batches with that round's ops, sends every batch whose
//! shard is another thread's in one message, runs its own shard's batch in
//! place, and gets the others back with their answers. The batch owns all
//! the memory involved (the op list, the answer buffer, the answer lengths)
//! and goes back and forth with it, so after the first rounds a hop
//! allocates nothing however many requests it carries. It travels boxed,
//! made once per connection and shard: a move on the way is a pointer's,
//! not the batch's 150 bytes (ten of them per hop, each a `memcpy`).

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};
use tagcached_store::Shard;

use super::{run, Op, Ran, Report, ResolvedTags};

/// Answer bytes a batch keeps allocated between rounds (a round of 16 small
/// answers needs about 2.5 KiB); a buffer that grew past this for large
/// answers is given back once empty, so an idle connection holds little.
const KEEP_BYTES: usize = 8 * 1024;
/// Ops whose entries are asked for together before they run (see
/// [`Shard::prefetch`]): a pipeline of 16 in one go, and a GETM's keys in
/// windows whose lines fit in the nearest cache.
const PREFETCH_WINDOW: usize = 16;
/// Ops a batch keeps room for between rounds (a GETM can queue 1024, 168
/// bytes each).
const KEEP_OPS: usize = 64;

/// One shard's ops for one connection, in request order, and the answers of
/// those that have run (see the module comment).
#[derive(Debug)]
pub struct Batch {
    shard: u16,
    /// Ops in request order: the first `taken` have run and had their
    /// answers taken, those up to `ran` have run and wait for theirs to be,
    /// the rest have yet to run. They are dropped together once all are
    /// taken (by [`Batch::take_answers`]), on the connection's thread, so
    /// the request bytes they hold (slices of the connection's read buffer)
    /// are released where they were allocated, not on the shard's thread;
    /// and together, because dropping each run of taken ops from the front
    /// shifted the rest, 168 bytes an op, each time answers interleave
    /// with another shard's (half the requests, when they hop).
    ops: Vec<Op>,
    taken: usize,
    ran: usize,
    /// Answer frames of the ops that have run, not yet taken, in order.
    out: BytesMut,
    /// The length of each answer of the ops that ran (0 for a quiet one),
    /// by op: those from `taken` on are not yet taken.
    lens: Vec<u32>,
    /// What gathering ops (STATS, TAG_STATUS) reported, in order.
    reports: VecDeque<Report>,
    /// Bytes of new answers this trip may add.
    room: usize,
    /// Run the first op even if its answer exceeds `room`: it is the
    /// connection's oldest unanswered request, so without it nothing could
    /// ever be written and no room freed.
    first_regardless: bool,
}

impl Batch {
    /// An empty batch for `shard`.
    pub fn new(shard: u16) -> Batch {
        Batch {
            shard,
            ops: Vec::new(),
            taken: 0,
            ran: 0,
            out: BytesMut::new(),
            lens: Vec::new(),
            reports: VecDeque::new(),
            room: 0,
            first_regardless: false,
        }
    }

    /// The shard this batch runs on.
    pub fn shard(&self) -> u16 {
        self.shard
    }

    /// Adds an op after those already queued.
    pub fn push(&mut self, op: Op) {
        self.ops.push(op);
    }

    /// Adds `op` to `shard`'s batch among `batches` (one slot per shard),
    /// making the batch on first use: how a [`super::Planner`] queues.
    pub fn push_to(batches: &mut [Option<Box<Batch>>], shard: u16, op: Op) {
        batches[usize::from(shard)]
            .get_or_insert_with(|| Box::new(Batch::new(shard)))
            .push(op);
    }

    /// Ops queued and not yet run.
    pub fn pending(&self) -> usize {
        self.ops.len() - self.ran
    }

    /// Bytes of answers run and not yet taken.
    pub fn held(&self) -> usize {
        self.out.len()
    }

    /// Sets how many bytes of answers the next run may add, and whether its
    /// first op runs regardless (see [`Batch::run_on`]).
    pub fn allow(&mut self, room: usize, first_regardless: bool) {
        self.room = room;
        self.first_regardless = first_regardless;
    }

    /// Runs the queued ops in order on `shard`, the shard this batch was
    /// made for, until one is a hit whose answer would take the bytes added
    /// this run past the room allowed; that op and those after it stay
    /// queued for a later run. With `first_regardless`, the first op runs
    /// whatever its size, so the connection always makes progress: a run
    /// adds at most `room` bytes, or one answer if that is larger.
    ///
    /// The entries of the next ops, up to 16 at a time, are asked for
    /// before the first of them runs, so that their cache misses overlap
    /// ([`Shard::prefetch`]).
    pub fn run_on(&mut self, shard: &mut Shard, now_ms: u64) {
        let start = self.out.len();
        let first = self.ran;
        let mut resolved = ResolvedTags::default();
        let mut prefetched = self.ran;
        for (index, op) in self.ops.iter().enumerate().skip(self.ran) {
            // A lone op has no miss to overlap with.
            if index == prefetched && self.ops.len() - index > 1 {
                prefetched = (index + PREFETCH_WINDOW).min(self.ops.len());
                shard.prefetch(self.ops[index..prefetched].iter().filter_map(Op::key));
            }
            let added = self.out.len() - start;
            let room = if self.ran == first && self.first_regardless {
                usize::MAX
            } else {
                self.room.saturating_sub(added)
            };
            let before = self.out.len();
            let out = &mut self.out;
            if run(
                shard,
                op,
                now_ms,
                room,
                out,
                &mut self.reports,
                &mut resolved,
            ) == Ran::NoRoom
            {
                break;
            }
            // One answer is at most a frame of `u32::MAX` bytes.
            self.lens.push((self.out.len() - before) as u32);
            self.ran += 1;
        }
    }

    /// Marks the answers of up to `ops` ops from the front as taken, in
    /// order, dropping every op once all are taken: how many ops that
    /// covers, and the length of their frames, which are the first answer
    /// bytes still held (none if they were all quiet). The caller then
    /// takes the bytes with [`Batch::copy_answers`] or
    /// [`Batch::split_answers`].
    pub fn take_answers(&mut self, ops: usize) -> (usize, usize) {
        let count = ops.min(self.ran - self.taken);
        let lens = &self.lens[self.taken..self.taken + count];
        let bytes: usize = lens.iter().map(|&len| len as usize).sum();
        self.taken += count;
        if self.taken == self.ops.len() {
            self.ops.clear();
            self.lens.clear();
            self.taken = 0;
            self.ran = 0;
        }
        (count, bytes)
    }

    /// Appends the first `bytes` bytes of answers to `dst` and drops them.
    pub fn copy_answers(&mut self, bytes: usize, dst: &mut BytesMut) {
        // Every answer held, into an empty buffer (a lone request's, most
        // often): trade buffers rather than copy.
        if dst.is_empty() && bytes == self.out.len() {
            std::mem::swap(dst, &mut self.out);
            return;
        }
        dst.extend_from_slice(&self.out[..bytes]);
        self.out.advance(bytes);
    }

    /// The first `bytes` bytes of answers, without copying them.
    pub fn split_answers(&mut self, bytes: usize) -> Bytes {
        self.out.split_to(bytes).freeze()
    }

    /// What the oldest gathering op not yet gathered reported.
    pub fn take_report(&mut self) -> Option<Report> {
        self.reports.pop_front()
    }

    /// Gives back memory that one large round needed, once nothing is held.
    pub fn trim(&mut self) {
        if self.out.is_empty() && self.out.capacity() > KEEP_BYTES {
            self.out = BytesMut::new();
        }
        if self.ops.is_empty() && self.ops.capacity() > KEEP_OPS {
            self.ops = Vec::new();
        }
        if self.lens.is_empty() && self.lens.capacity() > KEEP_OPS {
            self.lens = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tagcached_protocol::request::{Get, Set, SetMode};
    use tagcached_protocol::{Flags, Opcode};
    use tagcached_store::{InvalidationSeq, Shard, ShardConfig};

    use super::*;
    use crate::command::OpKind;

    const VALUE_LEN: usize = 1000;
    /// A GET hit's frame: header, fence, cas, flags, tag count, value.
    const HIT_LEN: usize = 16 + 8 + 8 + 4 + 2 + VALUE_LEN;

    fn shard_with(keys: &[&str]) -> Shard {
        let mut shard = Shard::new(ShardConfig::default(), InvalidationSeq::new(1));
        for key in keys {
            let args =
                tagcached_store::SetArgs::new(key.as_bytes(), Bytes::from(vec![7; VALUE_LEN]));
            let _ = shard.set(args, InvalidationSeq::new(1), 0);
        }
        shard
    }

    fn get(key: &str, flags: Flags) -> Op {
        let get = Get {
            key: Bytes::copy_from_slice(key.as_bytes()),
            request_tags: None,
        };
        Op::new(1, flags, 1, OpKind::Get(get))
    }

    fn set(key: &str) -> Op {
        let set = Set {
            mode: SetMode::Set,
            client_flags: 0,
            ttl: 0,
            fence: None,
            lease: None,
            stale_after: None,
            key: Bytes::copy_from_slice(key.as_bytes()),
            tags: Vec::new(),
            value: Bytes::from_static(b"v"),
        };
        Op::new(2, Flags::NONE, 1, OpKind::Set(set))
    }

    #[test]
    fn a_run_stops_at_the_first_hit_past_its_room_and_resumes_later() {
        let mut shard = shard_with(&["a", "b", "c"]);
        let mut batch = Batch::new(0);
        for key in ["a", "b", "c"] {
            batch.push(get(key, Flags::NONE));
        }
        batch.allow(HIT_LEN + HIT_LEN / 2, false);
        batch.run_on(&mut shard, 0);
        assert_eq!((batch.pending(), batch.held()), (2, HIT_LEN));
        // Nothing about the ops still queued was counted.
        assert_eq!(shard.stats().get_hits, 1);
        assert_eq!(batch.take_answers(3), (1, HIT_LEN));
        assert_eq!(batch.split_answers(HIT_LEN).len(), HIT_LEN);

        batch.allow(2 * HIT_LEN, false);
        batch.run_on(&mut shard, 0);
        assert_eq!((batch.pending(), batch.held()), (0, 2 * HIT_LEN));
        assert_eq!(shard.stats().get_hits, 3);
    }

    #[test]
    fn ops_taken_a_few_at_a_time_are_dropped_together_once_all_are_taken() {
        let mut shard = shard_with(&["a", "b", "c"]);
        let mut batch = Batch::new(0);
        let key = Bytes::from(b"a".to_vec());
        let first = Get {
            key: key.clone(),
            request_tags: None,
        };
        batch.push(Op::new(1, Flags::NONE, 1, OpKind::Get(first)));
        batch.push(get("b", Flags::NONE));
        batch.allow(usize::MAX, false);
        batch.run_on(&mut shard, 0);
        // Answers taken one op at a time, as when they interleave with
        // another shard's.
        assert_eq!(batch.take_answers(1), (1, HIT_LEN));
        batch.split_answers(HIT_LEN);
        assert!(!key.is_unique(), "kept until the batch is all taken");
        batch.push(get("c", Flags::NONE));
        batch.run_on(&mut shard, 0);
        assert_eq!((batch.pending(), batch.held()), (0, 2 * HIT_LEN));
        assert_eq!(batch.take_answers(1), (1, HIT_LEN));
        assert_eq!(batch.take_answers(5), (1, HIT_LEN));
        assert!(key.is_unique(), "dropped once all are taken");
        batch.split_answers(2 * HIT_LEN);
        batch.push(get("a", Flags::NONE));
        assert_eq!(batch.pending(), 1);
        batch.run_on(&mut shard, 0);
        assert_eq!(batch.take_answers(1), (1, HIT_LEN));
    }

    #[test]
    fn the_oldest_request_runs_however_little_room_there_is() {
        let mut shard = shard_with(&["a", "b"]);
        let mut batch = Batch::new(0);
        batch.push(get("a", Flags::NONE));
        batch.push(get("b", Flags::NONE));
        batch.allow(0, true);
        batch.run_on(&mut shard, 0);
        assert_eq!((batch.pending(), batch.held()), (1, HIT_LEN));
        batch.allow(0, false);
        batch.run_on(&mut shard, 0);
        assert_eq!(
            batch.pending(),
            1,
            "without the exception, no room is no room"
        );
    }

    #[test]
    fn misses_and_writes_need_no_room_and_quiet_answers_are_empty() {
        let mut shard = shard_with(&[]);
        let mut batch = Batch::new(0);
        batch.push(get("absent", Flags::QUIET));
        batch.push(set("k"));
        batch.push(get("absent", Flags::NONE));
        batch.allow(0, false);
        batch.run_on(&mut shard, 0);
        assert_eq!(batch.pending(), 0);
        assert_eq!(
            batch.take_answers(1),
            (1, 0),
            "a quiet miss answers nothing"
        );
        // STORED with its CAS, then a MISS with its fence.
        let (taken, bytes) = batch.take_answers(2);
        assert_eq!((taken, bytes), (2, (16 + 8) + (16 + 8)));
        let mut frames = BytesMut::new();
        batch.copy_answers(bytes, &mut frames);
        assert_eq!(batch.held(), 0);
        assert_eq!(frames[2], Opcode::SET.0);
        assert_eq!(frames[24 + 2], Opcode::GET.0);
    }

    #[test]
    fn answers_are_taken_in_order_whether_buffers_are_traded_or_copied() {
        let mut shard = shard_with(&[]);
        let mut batch = Batch::new(0);
        for key in ["a", "b", "c"] {
            batch.push(set(key));
        }
        batch.allow(0, false);
        batch.run_on(&mut shard, 0);
        let stored = 16 + 8;
        // Some of the answers: copied, into a buffer already holding some.
        let mut out = BytesMut::from(&b"earlier"[..]);
        let (_, bytes) = batch.take_answers(1);
        batch.copy_answers(bytes, &mut out);
        assert_eq!((out.len(), batch.held()), (7 + stored, 2 * stored));
        // All the rest, into an empty buffer: traded.
        let mut rest = BytesMut::new();
        let (_, bytes) = batch.take_answers(2);
        batch.copy_answers(bytes, &mut rest);
        assert_eq!((rest.len(), batch.held()), (2 * stored, 0));
        let cas = |frame: &[u8]| u64::from_be_bytes(frame[16..24].try_into().unwrap());
        assert!(cas(&out[7..]) < cas(&rest) && cas(&rest) < cas(&rest[stored..]));
    }

    #[test]
    fn trimming_gives_back_a_large_buffer_once_it_is_empty() {
        let mut shard = shard_with(&["a"]);
        let mut batch = Batch::new(0);
        for _ in 0..100 {
            batch.push(get("a", Flags::NONE));
        }
        batch.allow(usize::MAX, false);
        batch.run_on(&mut shard, 0);
        batch.trim();
        assert!(
            batch.out.capacity() >= 100 * HIT_LEN,
            "held answers are kept"
        );
        let (_, bytes) = batch.take_answers(100);
        let _ = batch.split_answers(bytes);
        batch.trim();
        assert!(batch.out.capacity() <= KEEP_BYTES);
    }
}
