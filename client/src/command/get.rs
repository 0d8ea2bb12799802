//! GET (protocol.md §6.3): one key's lookup, a hit or a miss, each with the
//! fence.

use bytes::Bytes;
use tagcached_protocol::request;
use tagcached_protocol::{Flags, Outcome, Response};

use super::{answer_one, Call, Command};
use crate::error::Result;
use crate::lookup::Lookup;

/// A GET sent.
#[derive(Debug)]
pub(crate) struct Get;

impl Get {
    /// GET of `key`; `with_tags` asks for a hit's tags.
    pub(crate) fn call(key: Bytes, with_tags: bool) -> Call<Get> {
        let flags = if with_tags {
            Flags::WITH_TAGS
        } else {
            Flags::NONE
        };
        Call::new(
            flags,
            tagcached_protocol::Command::Get(request::Get {
                key,
                request_tags: None,
            }),
            Get,
        )
    }
}

impl Command for Get {
    type Answer = Lookup;

    fn answer(self, frames: Vec<Response>) -> Result<Lookup> {
        answer_one(frames, |outcome| lookup(outcome).map(|(_, lookup)| lookup))
    }
}

/// A hit or a miss as a [`Lookup`], with the key index a GETM frame
/// carries (`None` in a GET's).
pub(super) fn lookup(outcome: Outcome) -> Result<(Option<u16>, Lookup), Outcome> {
    match outcome {
        Outcome::Hit(hit) => Ok((hit.key_index, Lookup::from(hit))),
        Outcome::Miss(miss) => Ok((miss.key_index, Lookup::from(miss))),
        other => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use tagcached_protocol::response::{Hit, Lease, Miss};
    use tagcached_protocol::Opcode;

    use super::*;
    use crate::command::tests::response;
    use crate::error::Error;
    use crate::lookup::Item;

    #[test]
    fn a_hit_becomes_an_item_with_its_fence_and_a_miss_keeps_its_fence() {
        let hit = Outcome::Hit(Hit {
            key_index: None,
            fence: 10,
            lease: Lease::NotRequested,
            cas: 20,
            client_flags: 3,
            tags: vec![Bytes::from_static(b"t")],
            value: Bytes::from_static(b"v"),
        });
        let item = Get.answer(vec![response(Opcode::GET, hit)]).expect("hit");
        assert_eq!(
            item,
            Lookup::Hit(Item {
                value: Bytes::from_static(b"v"),
                cas: 20,
                client_flags: 3,
                fence: 10,
                tags: vec![Bytes::from_static(b"t")],
            })
        );
        let miss = Outcome::Miss(Miss {
            key_index: None,
            fence: 11,
            lease: Lease::NotRequested,
        });
        let missed = Get.answer(vec![response(Opcode::GET, miss)]).expect("miss");
        assert_eq!(missed, Lookup::Miss { fence: 11 });
        assert_eq!(missed.fence(), 11);
    }

    #[test]
    fn a_status_that_does_not_fit_a_get_is_a_protocol_violation() {
        let stored_for_get = response(Opcode::GET, Outcome::Stored { cas: 1 });
        assert!(matches!(
            Get.answer(vec![stored_for_get]),
            Err(Error::Protocol(_))
        ));
    }

    #[test]
    fn with_tags_is_the_flag() {
        let key = Bytes::from_static(b"k");
        assert_eq!(Get::call(key.clone(), false).request.flags, Flags::NONE);
        assert_eq!(Get::call(key, true).request.flags, Flags::WITH_TAGS);
    }
}
