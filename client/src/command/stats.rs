//! STATS (protocol.md §6.10): the server's counters.

use tagcached_protocol::{Flags, Outcome, Response};

use super::{answer_one, Call, Command};
use crate::error::{Error, Result};

/// A STATS sent; answered with `(name, value)` pairs in the server's order.
#[derive(Debug)]
pub(crate) struct Stats;

impl Stats {
    pub(crate) fn call() -> Call<Stats> {
        Call::new(Flags::NONE, tagcached_protocol::Command::Stats, Stats)
    }
}

impl Command for Stats {
    type Answer = Vec<(String, String)>;

    fn answer(self, frames: Vec<Response>) -> Result<Vec<(String, String)>> {
        let text = answer_one(frames, |outcome| match outcome {
            Outcome::Stats(text) => Ok(text),
            other => Err(other),
        })?;
        let text = std::str::from_utf8(&text)
            .map_err(|error| Error::protocol(format!("STATS body is not UTF-8: {error}")))?;
        Ok(text
            .lines()
            .filter(|line| !line.is_empty())
            .map(|line| {
                let (name, value) = line.split_once(' ').unwrap_or((line, ""));
                (name.to_owned(), value.to_owned())
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tagcached_protocol::Opcode;

    use super::*;
    use crate::command::tests::response;

    #[test]
    fn stats_lines_split_at_the_first_space() {
        let body =
            Bytes::from_static(b"uptime 12\nversion tagcached 0.1.0\nshard.0.curr_items 3\n");
        let frames = vec![response(Opcode::STATS, Outcome::Stats(body))];
        assert_eq!(
            Stats.answer(frames).expect("stats"),
            vec![
                ("uptime".to_owned(), "12".to_owned()),
                ("version".to_owned(), "tagcached 0.1.0".to_owned()),
                ("shard.0.curr_items".to_owned(), "3".to_owned()),
            ]
        );
    }
}
