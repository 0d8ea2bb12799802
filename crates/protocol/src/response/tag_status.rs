//! The answer to TAG_STATUS (protocol.md §6.11).

use bytes::BufMut;

use crate::error::Invalid;
use crate::wire::BodyReader;

/// What the server knows of the tags a TAG_STATUS named (status OK).
///
/// Times are Unix milliseconds on the server's wall clock. The fields are
/// those of the wire, 0 meaning "none" as protocol.md says, so that every
/// body decodes to a value that encodes back to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagStatusInfo {
    /// The current invalidation sequence.
    pub seq: u64,
    /// The server's clock when it answered.
    pub now: u64,
    /// The newest invalidation any shard has forgotten (the shards' floor,
    /// §8.2): a tag no shard remembers reads as invalidated at this
    /// sequence.
    pub forgotten_seq: u64,
    /// When the invalidation at `forgotten_seq` ran (or the server started,
    /// or the latest FLUSH_ALL ran).
    pub forgotten_at: u64,
    /// One per requested tag, in request order. At most `u16::MAX` (the
    /// request's `tag_count`).
    pub statuses: Vec<TagState>,
}

/// One tag's entry count and latest invalidations. All zeros: no shard
/// remembers an invalidation of the tag (never invalidated, or forgotten).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TagState {
    /// Entries held that carry the tag, summed over shards: exact for what
    /// is held, an upper bound on the live ones.
    pub entries: u64,
    /// The latest hard invalidation remembered; 0 if none.
    pub hard_seq: u64,
    /// When it ran; 0 if none.
    pub hard_at: u64,
    /// The latest soft invalidation remembered; 0 if none.
    pub soft_seq: u64,
    /// When it ran; 0 if none.
    pub soft_at: u64,
    /// When its window ends: entries stored before `soft_seq` are stale
    /// until then and dead after; 0 if none.
    pub soft_until: u64,
}

/// seq, now, forgotten_seq, forgotten_at, tag_count.
const FIXED_LEN: usize = 4 * 8 + 2;
/// entries, hard_seq, hard_at, soft_seq, soft_at, soft_until.
const STATE_LEN: usize = 6 * 8;

impl TagState {
    /// The fields' names, in layout order.
    const FIELDS: [&'static str; 6] = [
        "entries",
        "hard_seq",
        "hard_at",
        "soft_seq",
        "soft_at",
        "soft_until",
    ];

    /// The fields' values, in layout order.
    fn fields(&self) -> [u64; 6] {
        [
            self.entries,
            self.hard_seq,
            self.hard_at,
            self.soft_seq,
            self.soft_at,
            self.soft_until,
        ]
    }

    fn fields_mut(&mut self) -> [&mut u64; 6] {
        [
            &mut self.entries,
            &mut self.hard_seq,
            &mut self.hard_at,
            &mut self.soft_seq,
            &mut self.soft_at,
            &mut self.soft_until,
        ]
    }

    fn decode(reader: &mut BodyReader) -> Result<TagState, Invalid> {
        let mut state = TagState::default();
        for (field, name) in state.fields_mut().into_iter().zip(Self::FIELDS) {
            *field = reader.u64(name)?;
        }
        Ok(state)
    }
}

impl TagStatusInfo {
    pub(crate) fn body_len(&self) -> usize {
        FIXED_LEN + STATE_LEN * self.statuses.len()
    }

    pub(crate) fn encode_body(&self, dst: &mut impl BufMut) {
        debug_assert!(self.statuses.len() <= usize::from(u16::MAX));
        dst.put_u64(self.seq);
        dst.put_u64(self.now);
        dst.put_u64(self.forgotten_seq);
        dst.put_u64(self.forgotten_at);
        dst.put_u16(self.statuses.len() as u16);
        for state in &self.statuses {
            state.fields().iter().for_each(|&field| dst.put_u64(field));
        }
    }

    pub(crate) fn decode(reader: &mut BodyReader) -> Result<TagStatusInfo, Invalid> {
        // Fields are read in the order they are written here.
        Ok(TagStatusInfo {
            seq: reader.u64("seq")?,
            now: reader.u64("now")?,
            forgotten_seq: reader.u64("forgotten_seq")?,
            forgotten_at: reader.u64("forgotten_at")?,
            statuses: {
                let count = reader.u16("tag_count")?;
                (0..count)
                    .map(|_| TagState::decode(reader))
                    .collect::<Result<_, _>>()?
            },
        })
    }
}
