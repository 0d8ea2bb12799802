//! When requests are sent, and from when their latency counts.
//!
//! Closed loop: a connection keeps `--pipeline` requests in flight and sends
//! the next as soon as one completes; latency runs from sending.
//!
//! Open loop (`--rate`): request `n` of a connection is *due* at
//! `start + n / rate`, whether or not the server has kept up, and its
//! latency runs from that due time, not from when it was finally sent. A
//! server that stalls for 100 ms thus shows 100 ms of latency on every
//! request due during the stall, instead of one slow request followed by a
//! generator that politely waited: the coordinated omission that closed-loop
//! tools hide.
//!
//! Sending exactly on schedule needs a finer clock than tokio's millisecond
//! timer: at 20,000 requests per second a connection's requests are due
//! every 50 µs, and a timer that wakes up to 1 ms late charges that lateness
//! to the server. With `--spin` an open-loop connection sleeps only until
//! [`TIMER_RESOLUTION`] before its next due time and spins (yielding to the
//! other connections of its thread) for the rest. That costs a core per
//! generator thread, which on a machine shared with the server is taken
//! from the server, so it is not the default. Either way each request's
//! *send lag* (sent minus due) is recorded and reported, so a generator or
//! server that fell behind the schedule shows.

use std::time::{Duration, Instant};

/// How a connection paces its requests.
#[derive(Debug, Clone)]
pub enum Pacing {
    /// As fast as responses come back.
    Closed,
    /// On a fixed schedule.
    Open {
        /// When each request is due.
        schedule: OpenSchedule,
        /// Busy-wait (yielding to the connection's other tasks) for waits
        /// shorter than the timer's resolution, instead of sleeping.
        spin: bool,
    },
}

/// The resolution of tokio's timer: a sleep ends on a millisecond tick, up
/// to this much after the instant asked for.
pub const TIMER_RESOLUTION: Duration = Duration::from_millis(1);

/// The due times of one connection's requests at a fixed rate.
#[derive(Debug, Clone)]
pub struct OpenSchedule {
    start: Instant,
    seconds_per_request: f64,
    taken: u64,
}

impl OpenSchedule {
    /// Requests at `rate` per second, the first due at `start`.
    pub fn new(start: Instant, rate: f64) -> OpenSchedule {
        assert!(rate > 0.0 && rate.is_finite(), "rate must be positive");
        OpenSchedule {
            start,
            seconds_per_request: 1.0 / rate,
            taken: 0,
        }
    }

    /// When request `n` (from 0) is due.
    pub fn due_time(&self, n: u64) -> Instant {
        self.start + Duration::from_secs_f64(n as f64 * self.seconds_per_request)
    }

    /// When the next request not yet taken is due.
    pub fn next_due(&self) -> Instant {
        self.due_time(self.taken)
    }

    /// The due time of the next request if it is due by `now`, marking it
    /// taken.
    pub fn take_due(&mut self, now: Instant) -> Option<Instant> {
        let due = self.next_due();
        (due <= now).then(|| {
            self.taken += 1;
            due
        })
    }

    /// How many requests due before `end` were never taken: the backlog a
    /// server (or generator) too slow for the rate left behind.
    pub fn backlog(&self, end: Instant) -> u64 {
        if end <= self.start {
            return 0;
        }
        let due_before_end =
            ((end - self.start).as_secs_f64() / self.seconds_per_request).ceil() as u64;
        due_before_end.saturating_sub(self.taken)
    }
}

/// A request's latency: from `intended` (its due time in open loop, its
/// send time in closed loop) to `completed`, in nanoseconds.
pub fn latency_ns(intended: Instant, completed: Instant) -> u64 {
    completed
        .saturating_duration_since(intended)
        .as_nanos()
        .min(u128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn requests_fall_due_at_the_rate() {
        let t0 = Instant::now();
        let mut schedule = OpenSchedule::new(t0, 1000.0);
        assert_eq!(schedule.due_time(0), t0);
        assert_eq!(schedule.due_time(5), t0 + 5 * MS);
        assert_eq!(schedule.take_due(t0), Some(t0));
        assert_eq!(schedule.take_due(t0), None, "request 1 is due at 1 ms");
        assert_eq!(schedule.next_due(), t0 + MS);
        let later = t0 + 3 * MS;
        assert_eq!(schedule.take_due(later), Some(t0 + MS));
        assert_eq!(schedule.take_due(later), Some(t0 + 2 * MS));
        assert_eq!(schedule.take_due(later), Some(t0 + 3 * MS));
        assert_eq!(schedule.take_due(later), None);
    }

    #[test]
    fn a_stall_is_charged_to_every_request_due_during_it() {
        // The server stalls from 0 to 100 ms; the generator can only send the
        // requests due meanwhile once it is back, at 100 ms, and they complete
        // at 101 ms. Measured from sending they would all look like 1 ms.
        let t0 = Instant::now();
        let mut schedule = OpenSchedule::new(t0, 1000.0);
        let resumed = t0 + 100 * MS;
        let completed = resumed + MS;
        let mut latencies = Vec::new();
        while let Some(due) = schedule.take_due(resumed) {
            latencies.push(latency_ns(due, completed));
        }
        assert_eq!(latencies.len(), 101);
        assert_eq!(latencies[0], 101_000_000);
        assert_eq!(latencies[50], 51_000_000);
        assert_eq!(latencies[100], 1_000_000);
        assert_eq!(latency_ns(resumed, completed), 1_000_000);
    }

    #[test]
    fn backlog_counts_requests_due_but_never_sent() {
        let t0 = Instant::now();
        let mut schedule = OpenSchedule::new(t0, 100.0);
        assert_eq!(schedule.backlog(t0), 0);
        assert_eq!(schedule.backlog(t0 + Duration::from_millis(1000)), 100);
        for _ in 0..40 {
            schedule.take_due(t0 + Duration::from_secs(1)).unwrap();
        }
        assert_eq!(schedule.backlog(t0 + Duration::from_millis(1000)), 60);
    }

    #[test]
    fn latency_never_goes_negative() {
        let t0 = Instant::now();
        assert_eq!(latency_ns(t0 + MS, t0), 0);
    }
}
