//! TAG_STATUS (protocol.md §6.11): what the server knows of some tags'
//! invalidations, and how many entries carry them.

use bytes::Bytes;
use tagcached_protocol::request;
use tagcached_protocol::{Flags, Outcome, Response};

use super::{answer_one, tag_list, Call, Command};
use crate::error::Result;
use crate::tag_status::TagReport;

/// A TAG_STATUS sent, holding the tags asked, which its answer is paired
/// with.
#[derive(Debug)]
pub(crate) struct TagStatus {
    tags: Vec<Bytes>,
}

impl TagStatus {
    /// TAG_STATUS of `tags`; refused as [`tag_list`] says.
    pub(crate) fn call<T: AsRef<[u8]>>(
        tags: impl IntoIterator<Item = T>,
    ) -> Result<Call<TagStatus>> {
        let tags = tag_list(tags)?;
        let body =
            tagcached_protocol::Command::TagStatus(request::TagStatus { tags: tags.clone() });
        Ok(Call::new(Flags::NONE, body, TagStatus { tags }))
    }
}

impl Command for TagStatus {
    type Answer = TagReport;

    fn answer(self, frames: Vec<Response>) -> Result<TagReport> {
        let info = answer_one(frames, |outcome| match outcome {
            Outcome::TagStatus(info) => Ok(info),
            other => Err(other),
        })?;
        TagReport::from_wire(info, self.tags)
    }
}

#[cfg(test)]
mod tests {
    use tagcached_protocol::response::{TagState, TagStatusInfo};
    use tagcached_protocol::Opcode;

    use super::*;
    use crate::command::tests::response;

    #[test]
    fn each_status_is_paired_with_the_tag_it_answers() {
        let call = TagStatus::call(["a", "b"]).expect("two tags");
        let info = TagStatusInfo {
            seq: 9,
            now: 1,
            forgotten_seq: 1,
            forgotten_at: 1,
            statuses: vec![
                TagState {
                    entries: 3,
                    ..TagState::default()
                },
                TagState::default(),
            ],
        };
        let frames = vec![response(Opcode::TAG_STATUS, Outcome::TagStatus(info))];
        let report = call.command.answer(frames).expect("answer");
        let tags: Vec<(&[u8], u64)> = report
            .tags
            .iter()
            .map(|state| (&state.tag[..], state.entries))
            .collect();
        assert_eq!(tags, vec![(&b"a"[..], 3), (&b"b"[..], 0)]);
    }
}
