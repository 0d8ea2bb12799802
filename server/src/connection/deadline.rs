//! When a connection waiting for input is given up on: it sent nothing for
//! `idle_timeout`, or a frame it started has not arrived whole within
//! `frame_timeout` of its first byte (protocol.md §1), or it has not
//! authenticated by its auth deadline (§6.12).
//!
//! Without these, sockets that a client forgot, or that an attacker opens
//! and trickles bytes into, hold `max_connections` slots and read buffers
//! forever. One timer per connection, reset lazily: input moves the idle
//! deadline later without touching the timer, which is re-armed when it
//! fires early; only a deadline that moves earlier (a frame starts) resets
//! it at once. And the timer is polled only when it may have fired, a
//! deadline moved earlier, or the task's waker changed: a connection asks
//! before every read, and otherwise the timer already holds the waker it
//! needs. So a busy connection costs a clock read per read, not a timer
//! operation.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// Why a connection was given up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expired {
    /// Nothing arrived for `idle_timeout`.
    Idle,
    /// A frame started and did not finish within `frame_timeout`.
    Frame,
    /// The connection did not authenticate by its deadline.
    Auth,
}

/// See the module comment.
pub(super) struct Deadlines {
    idle: Option<Duration>,
    frame: Option<Duration>,
    /// When input last arrived or answers last went out (or the connection
    /// began): the start of the idle clock.
    last_input: Instant,
    /// When the first byte of the frame now partly in the buffer arrived.
    frame_started: Option<Instant>,
    timer: Pin<Box<Sleep>>,
    /// When `timer` fires, if armed and not yet fired.
    armed_for: Option<Instant>,
    /// The waker `timer` was last polled with while armed; `None` once a
    /// deadline may have moved earlier than it is armed for.
    polled_with: Option<Waker>,
    /// When the connection is closed unless it authenticates first.
    auth: Option<Instant>,
}

impl Deadlines {
    pub(super) fn new(
        idle: Option<Duration>,
        frame: Option<Duration>,
        auth: Option<Instant>,
    ) -> Deadlines {
        let now = Instant::now();
        Deadlines {
            idle,
            frame,
            last_input: now,
            frame_started: None,
            timer: Box::pin(tokio::time::sleep_until(now)),
            armed_for: None,
            polled_with: None,
            auth,
        }
    }

    /// The connection authenticated: its auth deadline no longer applies.
    pub(super) fn authenticated(&mut self) {
        self.auth = None;
    }

    /// Input arrived at `now`: just now, by the connection's clock read.
    pub(super) fn received(&mut self, now: Instant) {
        self.last_input = now;
    }

    /// Answers went out at `now`, after the server had stopped reading to
    /// write them: both clocks start again, since the time spent writing to
    /// a slow reader was the server's, not spent waiting for input.
    pub(super) fn answered(&mut self, now: Instant) {
        self.last_input = now;
        if self.frame_started.is_some() {
            self.frame_started = Some(now);
        }
    }

    /// What the read buffer holds once every complete frame in it has been
    /// taken: part of a frame (`partial`), and whether a frame was taken
    /// since the last call (so the part belongs to a new frame, which
    /// started with the latest input).
    pub(super) fn buffered(&mut self, partial: bool, took_frames: bool) {
        let started = self.frame_started;
        self.frame_started = match (partial, started) {
            (false, _) => None,
            (true, Some(started)) if !took_frames => Some(started),
            (true, _) => Some(self.last_input),
        };
        if started.is_none() && self.frame_started.is_some() {
            // A frame began: its deadline may come before the idle one.
            self.polled_with = None;
        }
    }

    /// When the connection is given up on if no more input comes, and why.
    fn due(&self) -> Option<(Instant, Expired)> {
        let input = match (self.frame_started, self.frame) {
            (Some(started), Some(frame)) => Some((started + frame, Expired::Frame)),
            _ => self
                .idle
                .map(|idle| (self.last_input + idle, Expired::Idle)),
        };
        match (self.auth, input) {
            (Some(auth), Some((due, _))) if auth <= due => Some((auth, Expired::Auth)),
            (Some(auth), None) => Some((auth, Expired::Auth)),
            (_, input) => input,
        }
    }

    /// Resolves once the connection is due to be given up on; never, if no
    /// timeout applies. Cancel-safe: dropping it keeps the timer armed.
    pub(super) async fn expired(&mut self) -> Expired {
        poll_fn(|cx| self.poll_expired(cx)).await
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<Expired> {
        // Input only moves deadlines later, which the armed timer learns
        // when it fires early; until it fires, it wakes this task, and
        // nothing is due before it.
        if self
            .polled_with
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()))
            && !self.timer.is_elapsed()
        {
            return Poll::Pending;
        }
        self.polled_with = None;
        loop {
            let Some((due, why)) = self.due() else {
                return Poll::Pending;
            };
            if self.armed_for.map_or(true, |armed| armed > due) {
                self.timer.as_mut().reset(due);
                self.armed_for = Some(due);
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                self.polled_with = Some(cx.waker().clone());
                return Poll::Pending;
            }
            // Fired; armed early if input moved the deadline since.
            self.armed_for = None;
            if Instant::now() >= due {
                return Poll::Ready(why);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(300);
    const FRAME: Duration = Duration::from_secs(5);

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_expires_after_the_idle_timeout_counted_from_its_last_input() {
        let mut deadlines = Deadlines::new(Some(IDLE), Some(FRAME), None);
        tokio::time::advance(Duration::from_secs(200)).await;
        deadlines.received(Instant::now());
        deadlines.buffered(false, true);
        let started = Instant::now();
        assert_eq!(deadlines.expired().await, Expired::Idle);
        assert_eq!(started.elapsed(), IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_started_frame_has_the_frame_timeout_from_its_first_byte() {
        let mut deadlines = Deadlines::new(Some(IDLE), Some(FRAME), None);
        deadlines.received(Instant::now());
        deadlines.buffered(true, false);
        tokio::time::advance(Duration::from_secs(3)).await;
        // More of the same frame arrives: its clock keeps running.
        deadlines.received(Instant::now());
        deadlines.buffered(true, false);
        let started = Instant::now();
        assert_eq!(deadlines.expired().await, Expired::Frame);
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_frame_after_a_finished_one_gets_its_own_time() {
        let mut deadlines = Deadlines::new(Some(IDLE), Some(FRAME), None);
        deadlines.received(Instant::now());
        deadlines.buffered(true, false);
        tokio::time::advance(Duration::from_secs(4)).await;
        // The first frame completes and a second one starts in this input.
        deadlines.received(Instant::now());
        deadlines.buffered(true, true);
        let started = Instant::now();
        assert_eq!(deadlines.expired().await, Expired::Frame);
        assert_eq!(started.elapsed(), FRAME);
    }

    #[tokio::test(start_paused = true)]
    async fn an_armed_timer_follows_input_that_came_while_it_was_waiting() {
        let mut deadlines = Deadlines::new(Some(IDLE), Some(FRAME), None);
        // Arm the timer, then give up waiting, as a read that wins does.
        let waited = tokio::time::timeout(Duration::from_secs(100), deadlines.expired()).await;
        assert!(waited.is_err());
        deadlines.received(Instant::now());
        let started = Instant::now();
        assert_eq!(deadlines.expired().await, Expired::Idle);
        assert_eq!(started.elapsed(), IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_frame_that_starts_once_the_timer_is_armed_brings_it_forward() {
        let mut deadlines = Deadlines::new(Some(IDLE), Some(FRAME), None);
        // Armed for the idle deadline and left, as a read that wins leaves it;
        // asked again by the same task, which the timer would wake.
        let waited = tokio::time::timeout(Duration::from_secs(1), deadlines.expired()).await;
        assert!(waited.is_err());
        deadlines.received(Instant::now());
        deadlines.buffered(true, false);
        let started = Instant::now();
        assert_eq!(deadlines.expired().await, Expired::Frame);
        assert_eq!(started.elapsed(), FRAME);
    }

    #[tokio::test(start_paused = true)]
    async fn time_spent_writing_answers_does_not_count_against_a_started_frame() {
        let mut deadlines = Deadlines::new(Some(IDLE), Some(FRAME), None);
        deadlines.received(Instant::now());
        deadlines.buffered(true, true);
        // The server writes to a slow reader for longer than the timeout.
        tokio::time::advance(FRAME * 3).await;
        deadlines.answered(Instant::now());
        let started = Instant::now();
        assert_eq!(deadlines.expired().await, Expired::Frame);
        assert_eq!(started.elapsed(), FRAME);
    }

    #[tokio::test(start_paused = true)]
    async fn the_auth_deadline_holds_whatever_arrives_until_authenticated() {
        let auth = Duration::from_secs(10);
        let mut deadlines = Deadlines::new(Some(IDLE), Some(FRAME), Some(Instant::now() + auth));
        tokio::time::advance(Duration::from_secs(6)).await;
        // Input (a PING, say) does not move it.
        deadlines.received(Instant::now());
        deadlines.buffered(false, true);
        let started = Instant::now();
        assert_eq!(deadlines.expired().await, Expired::Auth);
        assert_eq!(started.elapsed(), Duration::from_secs(4));

        let mut deadlines = Deadlines::new(Some(IDLE), None, Some(Instant::now() + auth));
        deadlines.authenticated();
        let started = Instant::now();
        assert_eq!(deadlines.expired().await, Expired::Idle);
        assert_eq!(started.elapsed(), IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_timeouts_nothing_expires() {
        let mut deadlines = Deadlines::new(None, None, None);
        deadlines.buffered(true, false);
        let waited = tokio::time::timeout(Duration::from_secs(1 << 20), deadlines.expired()).await;
        assert!(waited.is_err());
    }
}
