//! INVALIDATE_TAGS (protocol.md §6.8): every entry carrying any of the
//! tags, on every shard, is a miss from the answer on; or, soft, stale for
//! a window and a miss after it.

use std::time::Duration;

use bytes::Bytes;
use tagcached_protocol::request;
use tagcached_protocol::{Flags, Response};

use super::{answer_one, bytes, sequence, Call, Command};
use crate::error::{Error, Result};
use crate::set::whole_seconds;

/// An INVALIDATE_TAGS sent; answered with the invalidation sequence
/// assigned.
#[derive(Debug)]
pub(crate) struct InvalidateTags;

impl InvalidateTags {
    /// INVALIDATE_TAGS of `tags`, hard, or soft with the window
    /// `soft_expire` (rounded up to whole seconds; zero acts as hard);
    /// refused as [`tag_list`] says.
    pub(crate) fn call<T: AsRef<[u8]>>(
        tags: impl IntoIterator<Item = T>,
        soft_expire: Option<Duration>,
    ) -> Result<Call<InvalidateTags>> {
        let body = tagcached_protocol::Command::InvalidateTags(request::InvalidateTags {
            tags: tag_list(tags)?,
            soft_expire: soft_expire.map(whole_seconds),
        });
        Ok(Call::new(Flags::NONE, body, InvalidateTags))
    }
}

impl Command for InvalidateTags {
    type Answer = u64;

    fn answer(self, frames: Vec<Response>) -> Result<u64> {
        answer_one(frames, sequence)
    }
}

/// The tags of an invalidation or a TAG_STATUS, refused before any server
/// sees them if there are none or more than the wire can count. A client
/// fanning out to several servers checks once, so that none gets what
/// another refuses.
pub(crate) fn tag_list<T: AsRef<[u8]>>(tags: impl IntoIterator<Item = T>) -> Result<Vec<Bytes>> {
    let tags: Vec<Bytes> = tags.into_iter().map(bytes).collect();
    if tags.is_empty() || tags.len() > usize::from(u16::MAX) {
        return Err(Error::InvalidArgument(format!(
            "{} tags; INVALIDATE_TAGS and TAG_STATUS take 1..={}",
            tags.len(),
            u16::MAX
        )));
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use tagcached_protocol::{Opcode, Outcome};

    use super::*;
    use crate::command::tests::response;

    #[test]
    fn invalidating_no_tags_is_refused_before_sending() {
        let none: [&str; 0] = [];
        assert!(matches!(
            InvalidateTags::call(none, None),
            Err(Error::InvalidArgument(_))
        ));
        let call = InvalidateTags::call(["a", "b"], None).expect("two tags");
        assert!(matches!(
            call.request.command,
            tagcached_protocol::Command::InvalidateTags(request::InvalidateTags { tags, .. })
                if tags.len() == 2
        ));
    }

    #[test]
    fn a_soft_window_is_sent_in_whole_seconds_with_the_soft_flag() {
        let call = InvalidateTags::call(["a"], Some(Duration::from_millis(1))).expect("a tag");
        assert_eq!(call.request.wire_flags(), Flags::SOFT);
        assert!(matches!(
            call.request.command,
            tagcached_protocol::Command::InvalidateTags(request::InvalidateTags {
                soft_expire: Some(1),
                ..
            })
        ));
    }

    #[test]
    fn the_answer_is_the_sequence_assigned() {
        let frames = vec![response(Opcode::INVALIDATE_TAGS, Outcome::Sequence(9))];
        assert_eq!(InvalidateTags.answer(frames).ok(), Some(9));
    }
}
