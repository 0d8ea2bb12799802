//! Per-command latency, as each worker records it for `/metrics`.
//!
//! What is measured: a connection's round ([`crate::connection`]), from
//! when its requests start to run (the worker runs its own shard's share,
//! the others' are on their way) to when every one of them has run and its
//! answer is ready to write, including the hops to other shards and the
//! wait for their batches. A round that runs the requests a read has just
//! brought starts when that read returned, so it includes decoding and
//! planning them (a few hundred nanoseconds per request). Not included:
//! time in the kernel's buffers, the read itself, and the write of the
//! answers (except in a round whose answers exceed
//! `--connection-memory`, whose later executions wait for writes). Every
//! request of the round is recorded with the round's duration, under its
//! own command: at pipeline depth 1 that is each request's own service
//! time; in a pipeline it is the time the whole round took, which is when
//! the client gets its answers.
//!
//! Why so: a clock read costs 20 to 50 ns on a busy virtual machine, and
//! at pipeline depth 1 a round is a request. So the round's start is the
//! clock read the connection makes anyway: when the read returns, for the
//! idle timeout, which is also the store's time for the round (a later
//! round of a long pipeline reads the clock when it starts). Timing adds
//! one read per round, at its end, which also restarts the idle clock
//! after a write that did not wait, rather than two per request
//! (benches/BENCHMARKS.md measures it).
//!
//! Recording takes no lock and allocates nothing: each worker owns its
//! [`CommandLatency`] (fixed arrays in its [`crate::context::WorkerContext`]),
//! only its own connections write it, and a scrape asks every worker for a
//! copy by message ([`crate::probe`]) and adds them up.

use std::time::Duration;

use tagcached_protocol::Opcode;

/// The commands timed, in the order of their index; `OTHER` is any opcode
/// the protocol does not define (answered `UNKNOWN_COMMAND`).
pub const COMMANDS: [&str; 14] = [
    "HELLO",
    "PING",
    "NOOP",
    "GET",
    "GETM",
    "SET",
    "DELETE",
    "TOUCH",
    "INVALIDATE_TAGS",
    "TAG_STATUS",
    "FLUSH_ALL",
    "STATS",
    "AUTH",
    "OTHER",
];

/// Upper bounds of the histogram's buckets, in nanoseconds: 10 µs to
/// 1 s, roughly three per decade; a last `+Inf` bucket is implied.
pub const BUCKET_BOUNDS_NS: [u64; 16] = [
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
];

/// Buckets per command: the bounded ones and `+Inf`.
const BUCKETS: usize = BUCKET_BOUNDS_NS.len() + 1;

/// The index of `opcode` in [`COMMANDS`].
pub fn command_index(opcode: Opcode) -> usize {
    match opcode {
        Opcode::HELLO => 0,
        Opcode::PING => 1,
        Opcode::NOOP => 2,
        Opcode::GET => 3,
        Opcode::GETM => 4,
        Opcode::SET => 5,
        Opcode::DELETE => 6,
        Opcode::TOUCH => 7,
        Opcode::INVALIDATE_TAGS => 8,
        Opcode::TAG_STATUS => 9,
        Opcode::FLUSH_ALL => 10,
        Opcode::STATS => 11,
        Opcode::AUTH => 12,
        _ => COMMANDS.len() - 1,
    }
}

/// The requests of one round, counted by command, so the round's duration
/// is recorded once per command rather than once per request.
#[derive(Debug, Default, Clone)]
pub struct RoundTally {
    counts: [u32; COMMANDS.len()],
    /// Bit `i` set: `counts[i] > 0`; recording visits only those.
    seen: u16,
}

const _: () = assert!(COMMANDS.len() <= 16, "`seen` has a bit per command");

impl RoundTally {
    /// Counts one request.
    #[inline]
    pub fn add(&mut self, opcode: Opcode) {
        let index = command_index(opcode);
        self.counts[index] += 1;
        self.seen |= 1 << index;
    }

    /// Whether no request was counted.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.seen == 0
    }
}

/// One worker's latency histograms, one per command: plain counters only
/// this worker writes.
#[derive(Debug, Clone)]
pub struct CommandLatency {
    /// Per command, per bucket (not cumulative).
    buckets: [[u64; BUCKETS]; COMMANDS.len()],
    /// Per command, the sum of the durations recorded, in nanoseconds.
    sum_ns: [u64; COMMANDS.len()],
}

impl Default for CommandLatency {
    fn default() -> Self {
        CommandLatency {
            buckets: [[0; BUCKETS]; COMMANDS.len()],
            sum_ns: [0; COMMANDS.len()],
        }
    }
}

impl CommandLatency {
    /// Records every request of `tally` as taking `elapsed`, and empties
    /// the tally.
    pub fn record(&mut self, tally: &mut RoundTally, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BUCKET_BOUNDS_NS
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(BUCKET_BOUNDS_NS.len());
        let mut seen = tally.seen;
        while seen != 0 {
            let index = seen.trailing_zeros() as usize;
            seen &= seen - 1;
            let count = u64::from(std::mem::take(&mut tally.counts[index]));
            self.buckets[index][bucket] += count;
            self.sum_ns[index] = self.sum_ns[index].saturating_add(nanos.saturating_mul(count));
        }
        tally.seen = 0;
    }

    /// Adds another worker's histograms into these.
    pub fn merge(&mut self, other: &CommandLatency) {
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            for (mine, theirs) in mine.iter_mut().zip(theirs) {
                *mine += theirs;
            }
        }
        for (mine, theirs) in self.sum_ns.iter_mut().zip(&other.sum_ns) {
            *mine = mine.saturating_add(*theirs);
        }
    }

    /// `COMMANDS[index]`'s histogram: the count in each bucket of
    /// [`BUCKET_BOUNDS_NS`] then `+Inf` (not cumulative), and the sum in
    /// nanoseconds.
    pub fn command(&self, index: usize) -> (&[u64; BUCKETS], u64) {
        (&self.buckets[index], self.sum_ns[index])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_is_recorded_once_per_request_under_each_command() {
        let mut latency = CommandLatency::default();
        let mut tally = RoundTally::default();
        for opcode in [Opcode::GET, Opcode::GET, Opcode::SET, Opcode(0x7f)] {
            tally.add(opcode);
        }
        latency.record(&mut tally, Duration::from_micros(30));
        assert!(tally.is_empty());
        let (get, get_sum) = latency.command(command_index(Opcode::GET));
        assert_eq!(get[2], 2, "30 µs is in the 50 µs bucket");
        assert_eq!(get_sum, 60_000);
        assert_eq!(latency.command(command_index(Opcode::SET)).0[2], 1);
        assert_eq!(latency.command(COMMANDS.len() - 1).0[2], 1, "OTHER");
        latency.record(&mut tally, Duration::from_secs(5));
        assert_eq!(latency.command(3).0.iter().sum::<u64>(), 2, "empty tally");
    }

    #[test]
    fn slow_rounds_land_in_inf_and_merging_adds_up() {
        let mut one = CommandLatency::default();
        let mut tally = RoundTally::default();
        tally.add(Opcode::FLUSH_ALL);
        one.record(&mut tally, Duration::from_secs(2));
        let mut total = CommandLatency::default();
        total.merge(&one);
        total.merge(&one);
        let (buckets, sum) = total.command(command_index(Opcode::FLUSH_ALL));
        assert_eq!(buckets[BUCKETS - 1], 2);
        assert_eq!(sum, 4_000_000_000);
    }

    #[test]
    fn every_opcode_the_protocol_names_has_its_own_index() {
        let mut named = 0;
        for byte in 0..=u8::MAX {
            let opcode = Opcode(byte);
            let index = command_index(opcode);
            match opcode.name() {
                Some(name) => {
                    assert_eq!(COMMANDS[index], name, "{opcode:?}");
                    named += 1;
                }
                None => assert_eq!(COMMANDS[index], "OTHER", "{opcode:?}"),
            }
        }
        assert_eq!(
            named,
            COMMANDS.len() - 1,
            "every command but OTHER is named"
        );
    }
}
