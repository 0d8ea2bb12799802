//! The live progress line: each generator thread sends its stats once a
//! second, and the main thread prints a line once every running thread has
//! sent that second's.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::recorder::{hit_ratio, IntervalStats};

/// What a generator thread tells the main thread.
#[derive(Debug)]
pub enum Progress {
    /// The stats of one second.
    Tick {
        /// The second, from 1.
        tick: u64,
        /// How long the interval really lasted.
        elapsed: Duration,
        /// What happened in it.
        stats: IntervalStats,
    },
    /// The thread has finished measuring.
    Done,
}

#[derive(Debug, Default)]
struct Second {
    threads: usize,
    ops_per_sec: f64,
    stats: IntervalStats,
}

/// Gathers ticks from `threads` threads into whole seconds.
#[derive(Debug)]
pub struct ProgressBoard {
    running: usize,
    seconds: BTreeMap<u64, Second>,
}

/// One second's line, ready to print.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressLine {
    /// The second, from 1.
    pub tick: u64,
    /// Operations per second over all threads.
    pub ops_per_sec: f64,
    /// GET hits over lookups.
    pub hit_ratio: Option<f64>,
    /// 99th percentile latency, microseconds.
    pub p99_us: f64,
    /// Errors in the second.
    pub errors: u64,
}

impl std::fmt::Display for ProgressLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{:>4}s] {:>12.0} ops/s", self.tick, self.ops_per_sec)?;
        match self.hit_ratio {
            Some(ratio) => write!(f, "  hit {:>5.1}%", ratio * 100.0)?,
            None => write!(f, "  hit     -")?,
        }
        write!(f, "  p99 {:>9.1} µs  errors {}", self.p99_us, self.errors)
    }
}

impl ProgressBoard {
    /// A board waiting on `threads` threads.
    pub fn new(threads: usize) -> ProgressBoard {
        ProgressBoard {
            running: threads,
            seconds: BTreeMap::new(),
        }
    }

    /// Takes one message; returns the lines now complete, in order.
    pub fn update(&mut self, message: Progress) -> Vec<ProgressLine> {
        match message {
            Progress::Tick {
                tick,
                elapsed,
                stats,
            } => {
                let second = self.seconds.entry(tick).or_default();
                second.threads += 1;
                second.ops_per_sec += stats.ops as f64 / elapsed.as_secs_f64().max(1e-9);
                second.stats.merge(&stats);
            }
            Progress::Done => self.running = self.running.saturating_sub(1),
        }
        let mut lines = Vec::new();
        while let Some(entry) = self.seconds.first_entry() {
            if entry.get().threads < self.running {
                break;
            }
            let (tick, second) = entry.remove_entry();
            lines.push(ProgressLine {
                tick,
                ops_per_sec: second.ops_per_sec,
                hit_ratio: hit_ratio(second.stats.hits, second.stats.misses),
                p99_us: second.stats.latency.value_at_quantile(0.99) as f64 / 1000.0,
                errors: second.stats.errors,
            });
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(tick: u64, ops: u64, hits: u64) -> Progress {
        let mut stats = IntervalStats {
            ops,
            hits,
            misses: ops - hits,
            ..IntervalStats::default()
        };
        stats.latency.record(2_000).unwrap();
        Progress::Tick {
            tick,
            elapsed: Duration::from_secs(1),
            stats,
        }
    }

    #[test]
    fn a_second_is_printed_once_every_running_thread_reported_it() {
        let mut board = ProgressBoard::new(2);
        assert!(board.update(tick(1, 100, 50)).is_empty());
        assert!(board.update(tick(2, 100, 50)).is_empty());
        let lines = board.update(tick(1, 300, 250));
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].tick, 1);
        assert_eq!(lines[0].ops_per_sec, 400.0);
        assert_eq!(lines[0].hit_ratio, Some(0.75));
        assert!((lines[0].p99_us - 2.0).abs() < 0.01);
        // The other thread finishes: second 2 need not wait for it.
        let lines = board.update(Progress::Done);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].tick, 2);
        assert!(lines[0].to_string().contains("ops/s"));
    }
}
