//! GETM (protocol.md §6.4): many keys' lookups in one request, one frame
//! per key.

use bytes::Bytes;
use tagcached_protocol::request;
use tagcached_protocol::Response;

use super::get::lookup;
use super::{unexpected, Call, Command};
use crate::error::{Error, Result};
use crate::lookup::Lookup;
use crate::read::ReadOptions;

/// A GETM sent, of `key_count` keys.
#[derive(Debug)]
pub(crate) struct GetMany {
    key_count: usize,
}

impl GetMany {
    /// GETM of `keys` as `options` say. Refuses, before sending, a count
    /// the wire cannot carry; the server's own bound, `max_keys_per_getm`,
    /// is lower and is the server's to enforce.
    pub(crate) fn call(keys: Vec<Bytes>, options: &ReadOptions) -> Result<Call<GetMany>> {
        if keys.is_empty() || keys.len() > usize::from(u16::MAX) {
            return Err(Error::InvalidArgument(format!(
                "{} keys; one GETM takes 1..={}",
                keys.len(),
                u16::MAX
            )));
        }
        let command = GetMany {
            key_count: keys.len(),
        };
        let body = tagcached_protocol::Command::GetMany(request::GetMany {
            keys,
            request_tags: options.request_tag_list(),
        });
        Ok(Call::new(options.flags(), body, command))
    }
}

impl Command for GetMany {
    type Answer = Vec<Lookup>;

    /// One lookup per key, in request order, placed by each frame's
    /// `key_index`.
    fn answer(self, frames: Vec<Response>) -> Result<Vec<Lookup>> {
        let key_count = self.key_count;
        let mut slots: Vec<Option<Lookup>> = vec![None; key_count];
        for frame in frames {
            let (key_index, lookup) =
                lookup(frame.outcome).map_err(|outcome| unexpected(frame.opcode, outcome))?;
            let slot = key_index
                .map(usize::from)
                .and_then(|index| slots.get_mut(index))
                .ok_or_else(|| {
                    Error::protocol(format!(
                        "GETM of {key_count} keys answered for key index {key_index:?}"
                    ))
                })?;
            if slot.replace(lookup).is_some() {
                return Err(Error::protocol(format!(
                    "GETM answered key index {key_index:?} twice"
                )));
            }
        }
        slots
            .into_iter()
            .enumerate()
            .map(|(index, slot)| {
                slot.ok_or_else(|| {
                    Error::protocol(format!("GETM left key index {index} unanswered"))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use tagcached_protocol::response::{ErrorReply, Hit, Lease, Miss};
    use tagcached_protocol::{ErrorCode, Opcode, Outcome};

    use super::*;
    use crate::command::tests::response;

    fn hit(key_index: u16, value: &'static str) -> Response {
        let hit = Hit {
            key_index: Some(key_index),
            fence: 10,
            lease: Lease::NotRequested,
            cas: 20,
            client_flags: 0,
            tags: Vec::new(),
            value: Bytes::from_static(value.as_bytes()),
        };
        response(Opcode::GETM, Outcome::Hit(hit))
    }

    fn miss(key_index: u16) -> Response {
        let miss = Miss {
            key_index: Some(key_index),
            fence: 11,
            lease: Lease::NotRequested,
        };
        response(Opcode::GETM, Outcome::Miss(miss))
    }

    fn of(key_count: usize) -> GetMany {
        GetMany { key_count }
    }

    #[test]
    fn getm_frames_are_placed_by_key_index() {
        let frames = vec![miss(1), hit(0, "zero"), hit(2, "two")];
        let found = of(3).answer(frames).expect("complete");
        let values: Vec<Option<&[u8]>> = found
            .iter()
            .map(|lookup| lookup.item().map(|item| &item.value[..]))
            .collect();
        assert_eq!(values, vec![Some(&b"zero"[..]), None, Some(&b"two"[..])]);
    }

    #[test]
    fn getm_with_a_missing_duplicate_or_stray_index_is_a_protocol_violation() {
        let missing = of(2).answer(vec![miss(0)]);
        assert!(matches!(missing, Err(Error::Protocol(_))));
        let twice = of(2).answer(vec![miss(0), miss(0)]);
        assert!(matches!(twice, Err(Error::Protocol(_))));
        let stray = of(1).answer(vec![miss(7)]);
        assert!(matches!(stray, Err(Error::Protocol(_))));
    }

    #[test]
    fn getm_failing_as_a_whole_is_a_server_error() {
        let frames = vec![response(
            Opcode::GETM,
            Outcome::Error(ErrorReply::new(ErrorCode::TooManyKeys, "too many")),
        )];
        assert!(matches!(
            of(3).answer(frames),
            Err(Error::Server {
                code: ErrorCode::TooManyKeys,
                ..
            })
        ));
    }

    #[test]
    fn a_getm_the_wire_cannot_count_is_refused_before_sending() {
        let refused = |keys: Vec<Bytes>| {
            matches!(
                GetMany::call(keys, &ReadOptions::new()),
                Err(Error::InvalidArgument(_))
            )
        };
        assert!(refused(Vec::new()));
        assert!(refused(vec![
            Bytes::from_static(b"k");
            usize::from(u16::MAX) + 1
        ]));
        assert!(!refused(vec![Bytes::from_static(b"k"); 2]));
    }
}
