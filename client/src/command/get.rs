//! GET (protocol.md §6.3): one key's lookup: a hit, a stale hit, a miss or
//! a hot miss, each with the fence, and the lease when one was granted.

use bytes::Bytes;
use tagcached_protocol::request;
use tagcached_protocol::{Outcome, Response};

use super::{answer_one, Call, Command};
use crate::error::Result;
use crate::lookup::{Item, LeaseToken, Lookup};
use crate::read::ReadOptions;

/// A GET sent.
#[derive(Debug)]
pub(crate) struct Get;

impl Get {
    /// GET of `key` as `options` say.
    pub(crate) fn call(key: Bytes, options: &ReadOptions) -> Call<Get> {
        Call::new(
            options.flags(),
            tagcached_protocol::Command::Get(request::Get {
                key,
                request_tags: options.request_tag_list(),
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

/// A lookup status as a [`Lookup`], with the key index a GETM frame
/// carries (`None` in a GET's).
pub(super) fn lookup(outcome: Outcome) -> Result<(Option<u16>, Lookup), Outcome> {
    match outcome {
        Outcome::Hit(hit) => Ok((hit.key_index, Lookup::from(hit))),
        Outcome::Stale(hit) => {
            let lease = hit.lease.token().and_then(LeaseToken::new);
            let key_index = hit.key_index;
            let item = Item::from_hit(hit);
            Ok((key_index, Lookup::Stale { item, lease }))
        }
        Outcome::Miss(miss) => Ok((miss.key_index, Lookup::from(miss))),
        Outcome::HotMiss(miss) => Ok((miss.key_index, Lookup::HotMiss { fence: miss.fence })),
        other => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use tagcached_protocol::response::{Hit, Lease, Miss};
    use tagcached_protocol::{Flags, Opcode};

    use super::*;
    use crate::command::tests::response;
    use crate::error::Error;

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
        assert_eq!(
            missed,
            Lookup::Miss {
                fence: 11,
                lease: None
            }
        );
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
    fn read_options_become_the_flags_and_the_request_tags() {
        let key = Bytes::from_static(b"k");
        let plain = Get::call(key.clone(), &ReadOptions::new()).request;
        assert_eq!(plain.wire_flags(), Flags::NONE);
        let options = ReadOptions::new().lease().request_tags(["t"]);
        let leased = Get::call(key, &options).request;
        assert_eq!(leased.wire_flags(), Flags::LEASE | Flags::REQUEST_TAGS);
    }

    #[test]
    fn stale_and_hot_misses_keep_their_fence_and_a_granted_lease() {
        let granted = Lease::from_field(Some(7));
        let stale = Outcome::Stale(Hit {
            key_index: None,
            fence: 10,
            lease: granted,
            cas: 20,
            client_flags: 0,
            tags: Vec::new(),
            value: Bytes::from_static(b"old"),
        });
        let found = Get
            .answer(vec![response(Opcode::GET, stale)])
            .expect("stale");
        assert!(found.is_stale() && !found.is_hit());
        assert_eq!(found.lease(), LeaseToken::new(7));
        assert_eq!(found.item().map(|item| &item.value[..]), Some(&b"old"[..]));
        let miss = |lease| Miss {
            key_index: None,
            fence: 11,
            lease,
        };
        let leased = Get
            .answer(vec![response(Opcode::GET, Outcome::Miss(miss(granted)))])
            .expect("miss");
        assert_eq!(leased.lease(), LeaseToken::new(7));
        let hot = Outcome::HotMiss(miss(Lease::NotGranted));
        let hot = Get
            .answer(vec![response(Opcode::GET, hot)])
            .expect("hot miss");
        assert_eq!(hot, Lookup::HotMiss { fence: 11 });
        assert_eq!((hot.fence(), hot.lease(), hot.item()), (11, None, None));
    }
}
