//! What TAG_STATUS returns (protocol.md §6.11): per tag, its latest hard
//! and soft invalidations and how many entries carry it.
//!
//! Times are the server's wall clock, read from the wire's Unix
//! milliseconds as [`SystemTime`]s (`duration_since(UNIX_EPOCH)` gives the
//! milliseconds back). Sequences are numbers of the server that answered:
//! two servers' sequences say nothing about each other, while their times
//! can be compared, as far as their clocks agree.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tagcached_protocol::response::{TagState as WireTagState, TagStatusInfo};

use crate::error::{Error, Result};

/// One invalidation, as the server numbered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalidation {
    /// Its invalidation sequence, on the server that answered.
    pub seq: u64,
    /// When the server numbered it.
    pub at: SystemTime,
}

/// One soft invalidation: entries stored before it are stale until `until`,
/// and misses after (protocol.md §8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftInvalidation {
    /// Its invalidation sequence, on the server that answered.
    pub seq: u64,
    /// When the server numbered it.
    pub at: SystemTime,
    /// When its window ends.
    pub until: SystemTime,
}

/// What one server knows of one tag.
///
/// `hard` and `soft` both `None` means that no shard of the server
/// remembers an invalidation of the tag: it was never invalidated, or it
/// was and every shard has since forgotten it, which the server cannot
/// tell apart. To fences and request-scoped tags such a tag reads as
/// invalidated at [`TagReport::forgotten`]; take that as its last
/// invalidation for the conservative reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagState {
    /// The tag, as asked.
    pub tag: Bytes,
    /// Entries the server holds that carry the tag, summed over its
    /// shards: exact for what is held, including entries expired or
    /// invalidated that no read or sweep has removed yet, so an upper bound
    /// on the live ones. Request-scoped uses do not count.
    pub entries: u64,
    /// Its latest hard invalidation the server remembers. A soft one whose
    /// window has ended may show here, at the window's end.
    pub hard: Option<Invalidation>,
    /// Its latest soft invalidation the server remembers.
    pub soft: Option<SoftInvalidation>,
}

impl TagState {
    /// When the tag was last invalidated, hard or soft, as far as the
    /// server remembers: what Next.js's `getExpiration` asks of one tag.
    pub fn last_invalidated(&self) -> Option<SystemTime> {
        let hard = self.hard.map(|hard| hard.at);
        let soft = self.soft.map(|soft| soft.at);
        hard.max(soft)
    }
}

/// One server's answer to TAG_STATUS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagReport {
    /// The server's current invalidation sequence.
    pub seq: u64,
    /// The server's clock when it answered.
    pub now: SystemTime,
    /// The newest invalidation any of its shards has forgotten (their
    /// floor, protocol.md §8.2), or its start or latest FLUSH_ALL if later:
    /// a tag no shard remembers reads as invalidated then.
    pub forgotten: Invalidation,
    /// One per tag asked, in the order asked (repeats answered again).
    pub tags: Vec<TagState>,
}

impl TagReport {
    /// The latest invalidation of any of the tags, hard or soft, that the
    /// server remembers. Across servers, the latest of their answers is
    /// the tags' last invalidation: times compare across servers,
    /// sequences do not.
    pub fn last_invalidated(&self) -> Option<SystemTime> {
        self.tags
            .iter()
            .filter_map(TagState::last_invalidated)
            .max()
    }

    /// The report from the wire, each status paired with the tag it
    /// answers.
    pub(crate) fn from_wire(info: TagStatusInfo, tags: Vec<Bytes>) -> Result<TagReport> {
        if info.statuses.len() != tags.len() {
            return Err(Error::protocol(format!(
                "TAG_STATUS of {} tags answered for {}",
                tags.len(),
                info.statuses.len()
            )));
        }
        let states = tags
            .into_iter()
            .zip(info.statuses)
            .map(|(tag, state)| TagState::from_wire(tag, state))
            .collect::<Result<_>>()?;
        Ok(TagReport {
            seq: info.seq,
            now: unix_millis(info.now)?,
            forgotten: Invalidation {
                seq: info.forgotten_seq,
                at: unix_millis(info.forgotten_at)?,
            },
            tags: states,
        })
    }
}

impl TagState {
    /// A tag's status from the wire, where a sequence of 0 means none.
    fn from_wire(tag: Bytes, state: WireTagState) -> Result<TagState> {
        let hard = match state.hard_seq {
            0 => None,
            seq => Some(Invalidation {
                seq,
                at: unix_millis(state.hard_at)?,
            }),
        };
        let soft = match state.soft_seq {
            0 => None,
            seq => Some(SoftInvalidation {
                seq,
                at: unix_millis(state.soft_at)?,
                until: unix_millis(state.soft_until)?,
            }),
        };
        Ok(TagState {
            tag,
            entries: state.entries,
            hard,
            soft,
        })
    }
}

/// Unix milliseconds as a [`SystemTime`]; one this platform cannot hold is
/// the server's error, not a reason to panic.
fn unix_millis(millis: u64) -> Result<SystemTime> {
    UNIX_EPOCH
        .checked_add(Duration::from_millis(millis))
        .ok_or_else(|| Error::protocol(format!("time {millis} ms is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(statuses: Vec<WireTagState>) -> TagStatusInfo {
        TagStatusInfo {
            seq: 50,
            now: 10_000,
            forgotten_seq: 3,
            forgotten_at: 1_000,
            statuses,
        }
    }

    fn at(millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(millis)
    }

    #[test]
    fn zero_sequences_are_no_invalidation_and_times_are_unix_milliseconds() {
        let never = WireTagState {
            entries: 2,
            ..WireTagState::default()
        };
        let both = WireTagState {
            entries: 0,
            hard_seq: 40,
            hard_at: 9_000,
            soft_seq: 45,
            soft_at: 9_500,
            soft_until: 12_000,
        };
        let tags = vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")];
        let report = TagReport::from_wire(info(vec![never, both]), tags).expect("in range");
        assert_eq!(report.now, at(10_000));
        assert_eq!(
            report.forgotten,
            Invalidation {
                seq: 3,
                at: at(1_000)
            }
        );
        let a = &report.tags[0];
        assert_eq!((a.entries, a.hard, a.soft), (2, None, None));
        assert_eq!(a.last_invalidated(), None);
        let b = &report.tags[1];
        assert_eq!(
            b.hard,
            Some(Invalidation {
                seq: 40,
                at: at(9_000)
            })
        );
        assert_eq!(
            b.soft,
            Some(SoftInvalidation {
                seq: 45,
                at: at(9_500),
                until: at(12_000)
            })
        );
        assert_eq!(report.last_invalidated(), Some(at(9_500)));
    }

    #[test]
    fn an_answer_for_another_number_of_tags_is_a_protocol_violation() {
        let tags = vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")];
        let short = TagReport::from_wire(info(vec![WireTagState::default()]), tags);
        assert!(matches!(short, Err(Error::Protocol(_))));
    }
}
