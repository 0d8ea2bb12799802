//! Rate limits for log lines that clients or the host can make repeat:
//! a failing `accept` (out of file descriptors) is retried every 10 ms, and
//! a port scanner or a misconfigured client fleet can send thousands of bad
//! frames a second. Each such line has its own [`LogLimiter`], shared by
//! every worker: at most one line per interval, carrying the number of
//! lines it stood for, so a flood costs a line a second instead of 19 KB.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Lets one occurrence of a log line through per interval, and counts the
/// ones it holds back.
#[derive(Debug)]
pub struct LogLimiter {
    interval_ms: u64,
    /// Milliseconds since [`epoch`] before which nothing more is logged.
    next_ms: AtomicU64,
    /// Occurrences held back since the last one logged.
    suppressed: AtomicU64,
}

impl LogLimiter {
    /// At most one line per `interval` (whole milliseconds); the first
    /// occurrence is always logged.
    pub const fn new(interval: Duration) -> LogLimiter {
        LogLimiter {
            interval_ms: interval.as_millis() as u64,
            next_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Whether to log this occurrence now: `Some(n)` with the number of
    /// occurrences held back since the last line, or `None` to skip it.
    pub fn allow(&self) -> Option<u64> {
        self.allow_at(epoch().elapsed().as_millis() as u64)
    }

    /// [`LogLimiter::allow`] at `now_ms` on a clock starting at 0.
    pub fn allow_at(&self, now_ms: u64) -> Option<u64> {
        let next = self.next_ms.load(Ordering::Relaxed);
        let claimed = now_ms >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now_ms + self.interval_ms.max(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok();
        if claimed {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// The zero of the limiters' clock: the first time any of them is asked.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_counting_the_ones_held_back() {
        let limiter = LogLimiter::new(Duration::from_secs(1));
        assert_eq!(limiter.allow_at(0), Some(0), "the first is logged");
        for ms in 1..1000 {
            assert_eq!(limiter.allow_at(ms), None, "at {ms} ms");
        }
        assert_eq!(limiter.allow_at(1000), Some(999), "then one with the count");
        assert_eq!(limiter.allow_at(1500), None);
        assert_eq!(
            limiter.allow_at(5000),
            Some(1),
            "a quiet spell resets nothing it should not"
        );
        assert_eq!(limiter.allow_at(5001), None);
    }

    #[test]
    fn threads_share_one_limit() {
        static SHARED: LogLimiter = LogLimiter::new(Duration::from_secs(3600));
        let logged: u64 = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    scope
                        .spawn(|| (0..1000).filter(|_| SHARED.allow_at(7).is_some()).count() as u64)
                })
                .collect();
            workers.into_iter().map(|w| w.join().expect("join")).sum()
        });
        assert_eq!(logged, 1);
        assert_eq!(SHARED.allow_at(3_600_007), Some(3999));
    }
}
