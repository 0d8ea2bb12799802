//! Counters and latency histograms, per operation kind.
//!
//! Each generator thread owns one [`Recorder`], shared by its connections
//! without locks (they all run on the thread's single-threaded runtime);
//! threads merge only at the end, and once a second send an
//! [`IntervalStats`] for the progress line.

use hdrhistogram::Histogram;

use crate::driver::Reply;
use crate::workload::OpKind;

/// Latencies are recorded in nanoseconds up to this; longer ones saturate.
const MAX_LATENCY_NS: u64 = 3_600 * 1_000_000_000;

/// A histogram for nanosecond latencies, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("constant bounds are valid")
}

/// What happened to one kind of operation.
#[derive(Debug, Clone)]
pub struct KindStats {
    /// Operations completed, errors included.
    pub ops: u64,
    /// GET hits.
    pub hits: u64,
    /// GET misses.
    pub misses: u64,
    /// Error responses, and unexpected outcomes (a SET not stored).
    pub errors: u64,
    /// Latency of every completed operation, in nanoseconds.
    pub latency: Histogram<u64>,
}

impl KindStats {
    fn new() -> KindStats {
        KindStats {
            ops: 0,
            hits: 0,
            misses: 0,
            errors: 0,
            latency: new_histogram(),
        }
    }

    fn record(&mut self, reply: Reply, latency_ns: u64) {
        self.ops += 1;
        match reply {
            Reply::Hit => self.hits += 1,
            Reply::Miss => self.misses += 1,
            Reply::Done => {}
            Reply::Failed => self.errors += 1,
        }
        self.latency.saturating_record(latency_ns);
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &KindStats) {
        self.ops += other.ops;
        self.hits += other.hits;
        self.misses += other.misses;
        self.errors += other.errors;
        self.latency
            .add(&other.latency)
            .expect("histograms share their bounds");
    }
}

/// Every kind's stats, for one thread or, merged, for the run.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Indexed by [`OpKind::index`].
    pub kinds: [KindStats; 4],
    /// How late requests were sent after they were due, nanoseconds (open
    /// loop; 0 in closed loop, where a request is due when it is sent).
    pub send_lag: Histogram<u64>,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            kinds: std::array::from_fn(|_| KindStats::new()),
            send_lag: new_histogram(),
        }
    }
}

impl Stats {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Stats) {
        for (mine, theirs) in self.kinds.iter_mut().zip(&other.kinds) {
            mine.merge(theirs);
        }
        self.send_lag
            .add(&other.send_lag)
            .expect("histograms share their bounds");
    }

    /// All kinds together.
    pub fn total(&self) -> KindStats {
        let mut total = KindStats::new();
        for kind in &self.kinds {
            total.merge(kind);
        }
        total
    }

    /// One kind's stats.
    pub fn kind(&self, kind: OpKind) -> &KindStats {
        &self.kinds[kind.index()]
    }
}

/// The stats since the last progress line.
#[derive(Debug, Clone)]
pub struct IntervalStats {
    /// Operations completed.
    pub ops: u64,
    /// GET hits.
    pub hits: u64,
    /// GET misses.
    pub misses: u64,
    /// Errors.
    pub errors: u64,
    /// Latency of every kind together.
    pub latency: Histogram<u64>,
}

impl Default for IntervalStats {
    fn default() -> IntervalStats {
        IntervalStats {
            ops: 0,
            hits: 0,
            misses: 0,
            errors: 0,
            latency: new_histogram(),
        }
    }
}

impl IntervalStats {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &IntervalStats) {
        self.ops += other.ops;
        self.hits += other.hits;
        self.misses += other.misses;
        self.errors += other.errors;
        self.latency
            .add(&other.latency)
            .expect("histograms share their bounds");
    }
}

/// A thread's stats for the whole run and for the current interval.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Since measuring began.
    pub run: Stats,
    /// Since the last [`Recorder::take_interval`].
    pub interval: IntervalStats,
}

impl Recorder {
    /// Records one completed operation, with its latency and how late it
    /// was sent.
    pub fn record(&mut self, kind: OpKind, reply: Reply, latency_ns: u64, send_lag_ns: u64) {
        self.run.kinds[kind.index()].record(reply, latency_ns);
        self.run.send_lag.saturating_record(send_lag_ns);
        let interval = &mut self.interval;
        interval.ops += 1;
        match reply {
            Reply::Hit => interval.hits += 1,
            Reply::Miss => interval.misses += 1,
            Reply::Done => {}
            Reply::Failed => interval.errors += 1,
        }
        interval.latency.saturating_record(latency_ns);
    }

    /// The interval's stats, starting a new interval.
    pub fn take_interval(&mut self) -> IntervalStats {
        let taken = self.interval.clone();
        self.interval.ops = 0;
        self.interval.hits = 0;
        self.interval.misses = 0;
        self.interval.errors = 0;
        self.interval.latency.reset();
        taken
    }
}

/// Hits over lookups, if there were lookups.
pub fn hit_ratio(hits: u64, misses: u64) -> Option<f64> {
    let lookups = hits + misses;
    (lookups > 0).then(|| hits as f64 / lookups as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_merge_and_total() {
        let mut a = Recorder::default();
        a.record(OpKind::Get, Reply::Hit, 1_000, 0);
        a.record(OpKind::Get, Reply::Miss, 3_000, 0);
        a.record(OpKind::Set, Reply::Failed, 2_000, 0);
        let mut b = Recorder::default();
        b.record(OpKind::Get, Reply::Hit, 5_000, 700);
        let interval = a.take_interval();
        assert_eq!((interval.ops, interval.hits, interval.errors), (3, 1, 1));
        assert_eq!(a.interval.ops, 0);
        let mut run = a.run.clone();
        run.merge(&b.run);
        let get = run.kind(OpKind::Get);
        assert_eq!((get.ops, get.hits, get.misses), (3, 2, 1));
        let total = run.total();
        assert_eq!((total.ops, total.errors), (4, 1));
        assert_eq!(total.latency.len(), 4);
        assert_eq!(run.send_lag.len(), 4);
        assert!(run.send_lag.max() >= 700);
        assert_eq!(hit_ratio(2, 1), Some(2.0 / 3.0));
        assert_eq!(hit_ratio(0, 0), None);
    }
}
