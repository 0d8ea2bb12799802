//! SET (protocol.md §6.5): store a value as [`SetOptions`] say.

use bytes::Bytes;
use tagcached_protocol::request;
use tagcached_protocol::{Flags, Outcome, Response};

use super::{answer_one, Call, Command};
use crate::error::{Error, Result};
use crate::lookup::LeaseToken;
use crate::set::{whole_seconds, SetOptions, SetOutcome};

/// A SET sent.
#[derive(Debug)]
pub(crate) struct Set;

impl Set {
    /// SET of `value` under `key` as `options` say. Refuses, before
    /// sending, more tags than the wire can count.
    pub(crate) fn call(key: Bytes, value: Bytes, options: &SetOptions) -> Result<Call<Set>> {
        if options.tags.len() > usize::from(u16::MAX) {
            return Err(Error::InvalidArgument(format!(
                "{} tags; a SET carries at most {}",
                options.tags.len(),
                u16::MAX
            )));
        }
        let body = tagcached_protocol::Command::Set(request::Set {
            mode: options.mode,
            client_flags: options.client_flags,
            ttl: whole_seconds(options.ttl),
            fence: options.fence,
            lease: options.lease.map(LeaseToken::get),
            stale_after: options.stale_after.map(whole_seconds),
            key,
            tags: options.tags.clone(),
            value,
        });
        Ok(Call::new(Flags::NONE, body, Set))
    }
}

impl Command for Set {
    type Answer = SetOutcome;

    fn answer(self, frames: Vec<Response>) -> Result<SetOutcome> {
        answer_one(frames, |outcome| match outcome {
            Outcome::Stored { cas } => Ok(SetOutcome::Stored { cas }),
            Outcome::NotStored => Ok(SetOutcome::NotStored),
            Outcome::Exists => Ok(SetOutcome::Exists),
            Outcome::NotFound => Ok(SetOutcome::NotFound),
            Outcome::Fenced => Ok(SetOutcome::Fenced),
            Outcome::LeaseLost => Ok(SetOutcome::LeaseLost),
            other => Err(other),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tagcached_protocol::request::SetMode;
    use tagcached_protocol::Opcode;

    use super::*;
    use crate::command::tests::response;

    /// The SET body `options` give for key `k`.
    fn body(options: &SetOptions, value: &'static [u8]) -> Result<request::Set> {
        let call = Set::call(Bytes::from_static(b"k"), Bytes::from_static(value), options)?;
        match call.request.command {
            tagcached_protocol::Command::Set(set) => Ok(set),
            other => panic!("a SET call sends {other:?}"),
        }
    }

    #[test]
    fn options_become_the_set_body() {
        let options = SetOptions::new()
            .ttl(Duration::from_secs(30))
            .tags(["a", "b"])
            .client_flags(7)
            .mode(SetMode::Cas(99))
            .fence(1234)
            .lease(LeaseToken::new(5).expect("not 0"))
            .stale_after(Duration::from_millis(1500));
        assert_eq!(
            body(&options, b"v").expect("encodable"),
            request::Set {
                mode: SetMode::Cas(99),
                client_flags: 7,
                ttl: 30,
                fence: Some(1234),
                lease: Some(5),
                stale_after: Some(2),
                key: Bytes::from_static(b"k"),
                tags: vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")],
                value: Bytes::from_static(b"v"),
            }
        );
    }

    #[test]
    fn default_options_store_forever_without_fence() {
        let set = body(&SetOptions::default(), b"").expect("encodable");
        assert_eq!(set.mode, SetMode::Set);
        assert_eq!((set.ttl, set.fence, set.client_flags), (0, None, 0));
        assert_eq!((set.lease, set.stale_after), (None, None));
        assert!(set.tags.is_empty());
    }

    #[test]
    fn more_tags_than_the_wire_can_count_are_refused_before_sending() {
        let options = SetOptions::new().tags((0..=u32::from(u16::MAX)).map(|n| n.to_string()));
        let error = body(&options, b"").expect_err("too many tags");
        assert!(matches!(error, Error::InvalidArgument(_)), "{error}");
    }

    #[test]
    fn set_statuses_map_to_outcomes() {
        let cases = [
            (Outcome::Stored { cas: 5 }, SetOutcome::Stored { cas: 5 }),
            (Outcome::NotStored, SetOutcome::NotStored),
            (Outcome::Exists, SetOutcome::Exists),
            (Outcome::NotFound, SetOutcome::NotFound),
            (Outcome::Fenced, SetOutcome::Fenced),
            (Outcome::LeaseLost, SetOutcome::LeaseLost),
        ];
        for (outcome, expected) in cases {
            let frames = vec![response(Opcode::SET, outcome)];
            assert_eq!(Set.answer(frames).ok(), Some(expected));
        }
    }
}
