//! Whether a server is usable: failure counting, marking down, backoff, and
//! the invalidations a server still owes.
//!
//! **Counting.** A failure is a connect that failed, or a request that
//! failed because the server could not be used ([`Error::is_unavailable`]:
//! the connection broke, the request timed out). Failures that overlap count
//! once: a failure counts only if its request *started after* the last
//! counted failure, so the two hundred requests in flight on a connection
//! that breaks are one failure, not two hundred, while a server that keeps
//! timing out adds one failure per timeout period. Any success resets the
//! count.
//!
//! **Down.** At `failure_threshold` consecutive failures the server is
//! marked down: the pool drops its connections, requests fail at once
//! (reads miss), and no connection is tried before a backoff passes. Then
//! one background probe reconnects; success marks it up, failure doubles the
//! backoff, up to its maximum. A failed connect below the threshold also
//! holds off the next attempt for the current backoff, so a server that
//! refuses connections is not hammered by every waiting request.
//!
//! **Owed invalidations.** An INVALIDATE_TAGS that fails on a server because
//! it was unavailable may not have reached it, and a server that comes back
//! would then serve entries the application believes invalidated. So such a
//! server is marked down at once (whatever the count), and the tags are
//! owed to it: the probe that brings it back delivers them before anything
//! else may use it. The list is bounded; past [`MAX_OWED_TAGS`] it becomes a
//! FLUSH_ALL, which covers every tag.
//!
//! Every method that depends on time takes `now`, so tests drive the clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::error::Error;

/// Tags owed to one server beyond which the debt becomes a FLUSH_ALL.
pub(crate) const MAX_OWED_TAGS: usize = 4096;

/// When to mark a server down and how long to wait before retrying it.
#[derive(Debug, Clone)]
pub(crate) struct HealthPolicy {
    /// Consecutive failures that mark a server down; at least 1.
    pub(crate) failure_threshold: u32,
    /// The first wait before retrying.
    pub(crate) backoff_min: Duration,
    /// The longest wait before retrying.
    pub(crate) backoff_max: Duration,
    /// Whether a server marked down owes a FLUSH_ALL when it comes back
    /// (with failover, its keys were written elsewhere meanwhile).
    pub(crate) flush_on_recovery: bool,
}

/// What a recovering server must be sent before it is used again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Owed {
    /// Tags whose invalidation it may have missed.
    pub(crate) tags: Vec<Bytes>,
    /// Whether it must be flushed instead (which covers every tag).
    pub(crate) flush: bool,
}

impl Owed {
    pub(crate) fn is_empty(&self) -> bool {
        !self.flush && self.tags.is_empty()
    }

    /// Owes the invalidation of `tags`; none means a FLUSH_ALL.
    fn add_invalidation(&mut self, tags: &[Bytes]) {
        if tags.is_empty() {
            self.tags = Vec::new();
            self.flush = true;
        } else {
            self.add_tags(tags);
        }
    }

    fn add_tags(&mut self, tags: &[Bytes]) {
        if self.flush {
            return;
        }
        for tag in tags {
            if self.tags.contains(tag) {
                continue;
            }
            if self.tags.len() == MAX_OWED_TAGS {
                self.tags = Vec::new();
                self.flush = true;
                return;
            }
            self.tags.push(tag.clone());
        }
    }
}

/// May a connection be opened now?
#[derive(Debug)]
pub(crate) enum Permit {
    /// Yes.
    Connect,
    /// Not yet: a recent connect failed with this error.
    Wait(Error),
    /// The server is down.
    Down,
}

/// The health of one server. Cheap to consult on the request path: a
/// success on a server with nothing wrong costs one atomic load.
#[derive(Debug)]
pub(crate) struct Health {
    /// Set while anything is off (failures counted, down, debts), so a
    /// success on a healthy server need not lock.
    troubled: AtomicBool,
    /// Mirror of `State::down`, for the request path.
    down: AtomicBool,
    state: Mutex<State>,
    policy: HealthPolicy,
}

#[derive(Debug)]
struct State {
    failures: u32,
    /// When the last counted failure was recorded.
    last_counted: Option<Instant>,
    down: bool,
    /// No connection may be opened before this.
    retry_at: Option<Instant>,
    /// The wait to apply at the next failed attempt.
    backoff: Duration,
    /// A probe has been claimed and has not finished.
    probing: bool,
    last_error: Option<Error>,
    owed: Owed,
}

/// A point-in-time view of a server's health.
#[derive(Debug, Clone)]
pub(crate) struct HealthSnapshot {
    pub(crate) down: bool,
    pub(crate) failures: u32,
    pub(crate) owed: Owed,
    pub(crate) last_error: Option<Error>,
}

impl Health {
    pub(crate) fn new(policy: HealthPolicy) -> Health {
        Health {
            troubled: AtomicBool::new(false),
            down: AtomicBool::new(false),
            state: Mutex::new(State {
                failures: 0,
                last_counted: None,
                down: false,
                retry_at: None,
                backoff: policy.backoff_min,
                probing: false,
                last_error: None,
                owed: Owed::default(),
            }),
            policy,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent across a panic in another holder
        // (every method leaves it whole), so a poisoned lock is usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the server is marked down.
    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    fn publish(&self, state: &State) {
        self.down.store(state.down, Ordering::Release);
        let troubled = state.down || state.failures > 0 || !state.owed.is_empty();
        self.troubled.store(troubled, Ordering::Release);
    }

    fn mark_down(&self, state: &mut State, now: Instant) {
        state.down = true;
        state.probing = false;
        state.retry_at = Some(now + state.backoff);
        state.backoff = self.next_backoff(state.backoff);
        if self.policy.flush_on_recovery {
            state.owed.flush = true;
            state.owed.tags = Vec::new();
        }
    }

    fn next_backoff(&self, backoff: Duration) -> Duration {
        backoff.saturating_mul(2).min(self.policy.backoff_max)
    }

    /// A request succeeded. Ignored while down: only a probe brings a
    /// server back, since requests still finishing on old connections say
    /// nothing about whether it owes invalidations.
    pub(crate) fn record_success(&self) {
        if !self.troubled.load(Ordering::Acquire) {
            return;
        }
        let mut state = self.lock();
        if !state.down {
            state.failures = 0;
            state.last_counted = None;
            self.publish(&state);
        }
    }

    /// A request that started at `started` failed with `error`, which the
    /// caller guarantees [`is_unavailable`](Error::is_unavailable). Returns
    /// whether this marked the server down (the caller then drops its
    /// connections).
    pub(crate) fn record_failure(&self, started: Instant, now: Instant, error: &Error) -> bool {
        let mut state = self.lock();
        let marked = self.count_failure(&mut state, started, now, error);
        self.publish(&state);
        marked
    }

    fn count_failure(
        &self,
        state: &mut State,
        started: Instant,
        now: Instant,
        error: &Error,
    ) -> bool {
        if state.down {
            return false;
        }
        state.last_error = Some(error.clone());
        if state.last_counted.is_some_and(|counted| started <= counted) {
            return false;
        }
        state.failures += 1;
        state.last_counted = Some(now);
        if state.failures >= self.policy.failure_threshold.max(1) {
            self.mark_down(state, now);
            return true;
        }
        false
    }

    /// Whether a connection may be opened now.
    pub(crate) fn permit(&self, now: Instant) -> Permit {
        if !self.troubled.load(Ordering::Acquire) {
            return Permit::Connect;
        }
        let state = self.lock();
        if state.down {
            return Permit::Down;
        }
        match (state.retry_at, &state.last_error) {
            (Some(retry_at), Some(error)) if now < retry_at => Permit::Wait(error.clone()),
            _ => Permit::Connect,
        }
    }

    /// A connect that started at `started` failed. Holds off the next
    /// attempt for the backoff; returns whether the server is now down.
    pub(crate) fn connect_failed(&self, started: Instant, now: Instant, error: &Error) -> bool {
        let mut state = self.lock();
        let marked = self.count_failure(&mut state, started, now, error);
        if !marked && !state.down {
            state.retry_at = Some(now + state.backoff);
            state.backoff = self.next_backoff(state.backoff);
        }
        self.publish(&state);
        marked
    }

    /// A connection opened: the server answers. Ignored while down (see
    /// [`record_success`](Health::record_success)).
    pub(crate) fn connected(&self) {
        if !self.troubled.load(Ordering::Acquire) {
            return;
        }
        let mut state = self.lock();
        if !state.down {
            state.failures = 0;
            state.last_counted = None;
            state.retry_at = None;
            state.backoff = self.policy.backoff_min;
            state.last_error = None;
            self.publish(&state);
        }
    }

    /// Claims the probe of a down server if its backoff has passed and no
    /// probe runs; the caller then runs it and reports with
    /// [`probe_failed`](Health::probe_failed) or
    /// [`recover_or_take_owed`](Health::recover_or_take_owed).
    pub(crate) fn claim_probe(&self, now: Instant) -> bool {
        if !self.is_down() {
            return false;
        }
        let mut state = self.lock();
        let due = state.retry_at.map_or(true, |retry_at| now >= retry_at);
        if state.down && due && !state.probing {
            state.probing = true;
            return true;
        }
        false
    }

    /// The claimed probe failed: wait longer before the next.
    pub(crate) fn probe_failed(&self, now: Instant, error: &Error) {
        let mut state = self.lock();
        state.probing = false;
        state.retry_at = Some(now + state.backoff);
        state.backoff = self.next_backoff(state.backoff);
        state.last_error = Some(error.clone());
        self.publish(&state);
    }

    /// The claimed probe reached the server. If it owes nothing, marks it
    /// up and returns `None`; otherwise returns the debt, now the probe's to
    /// deliver before asking again. Owing and recovering are decided under
    /// one lock, so an invalidation that fails while the probe runs is
    /// either delivered by it or keeps the server down.
    pub(crate) fn recover_or_take_owed(&self) -> Option<Owed> {
        let mut state = self.lock();
        if !state.owed.is_empty() {
            return Some(std::mem::take(&mut state.owed));
        }
        state.down = false;
        state.probing = false;
        state.failures = 0;
        state.last_counted = None;
        state.retry_at = None;
        state.backoff = self.policy.backoff_min;
        state.last_error = None;
        self.publish(&state);
        None
    }

    /// The probe could not deliver `owed`: keep it owed.
    pub(crate) fn restore_owed(&self, owed: Owed) {
        let mut state = self.lock();
        if owed.flush {
            state.owed.flush = true;
            state.owed.tags = Vec::new();
        } else {
            state.owed.add_tags(&owed.tags);
        }
        self.publish(&state);
    }

    /// If the server is down, records the invalidation of `tags` as owed
    /// (`tags` empty: a FLUSH_ALL) and returns `true`: the invalidation must
    /// not be sent. Otherwise returns `false`.
    pub(crate) fn owe_if_down(&self, tags: &[Bytes]) -> bool {
        if !self.is_down() {
            return false;
        }
        let mut state = self.lock();
        if !state.down {
            return false;
        }
        state.owed.add_invalidation(tags);
        self.publish(&state);
        true
    }

    /// An invalidation of `tags` may have missed the server: owe it and
    /// mark the server down (if it was not). `tags` empty means a missed
    /// FLUSH_ALL. Returns whether this marked it down.
    pub(crate) fn owe(&self, tags: &[Bytes], now: Instant, error: &Error) -> bool {
        let mut state = self.lock();
        state.owed.add_invalidation(tags);
        state.last_error = Some(error.clone());
        let marked = !state.down;
        if marked {
            self.mark_down(&mut state, now);
        }
        self.publish(&state);
        marked
    }

    /// Marks the server down now, as if it had failed; it is probed after
    /// the backoff as usual. Returns whether it was up.
    pub(crate) fn force_down(&self, now: Instant) -> bool {
        let mut state = self.lock();
        let marked = !state.down;
        if marked {
            self.mark_down(&mut state, now);
        }
        self.publish(&state);
        marked
    }

    pub(crate) fn snapshot(&self) -> HealthSnapshot {
        let state = self.lock();
        HealthSnapshot {
            down: state.down,
            failures: state.failures,
            owed: state.owed.clone(),
            last_error: state.last_error.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn health(threshold: u32) -> Health {
        Health::new(HealthPolicy {
            failure_threshold: threshold,
            backoff_min: 10 * MS,
            backoff_max: 40 * MS,
            flush_on_recovery: false,
        })
    }

    fn tags(names: &[&'static str]) -> Vec<Bytes> {
        names
            .iter()
            .map(|name| Bytes::from_static(name.as_bytes()))
            .collect()
    }

    #[test]
    fn failures_that_overlap_count_once() {
        let health = health(2);
        let t0 = Instant::now();
        // Many requests started before the first failure was counted.
        assert!(!health.record_failure(t0, t0 + MS, &Error::Closed));
        for _ in 0..100 {
            assert!(!health.record_failure(t0, t0 + 2 * MS, &Error::Closed));
        }
        assert!(!health.is_down());
        // A request that started after it is a new failure.
        assert!(health.record_failure(t0 + 3 * MS, t0 + 4 * MS, &Error::Closed));
        assert!(health.is_down());
    }

    #[test]
    fn a_success_resets_the_count() {
        let health = health(2);
        let t0 = Instant::now();
        assert!(!health.record_failure(t0, t0 + MS, &Error::Closed));
        health.record_success();
        assert!(!health.record_failure(t0 + 2 * MS, t0 + 3 * MS, &Error::Closed));
        assert!(!health.is_down());
        assert_eq!(health.snapshot().failures, 1);
    }

    #[test]
    fn a_failed_connect_holds_off_the_next_for_a_growing_backoff() {
        let health = health(10);
        let t0 = Instant::now();
        assert!(!health.connect_failed(t0, t0, &Error::Closed));
        assert!(matches!(
            health.permit(t0 + 5 * MS),
            Permit::Wait(Error::Closed)
        ));
        assert!(matches!(health.permit(t0 + 10 * MS), Permit::Connect));
        assert!(!health.connect_failed(t0 + 10 * MS, t0 + 10 * MS, &Error::Closed));
        // The second wait is twice the first.
        assert!(matches!(health.permit(t0 + 29 * MS), Permit::Wait(_)));
        assert!(matches!(health.permit(t0 + 30 * MS), Permit::Connect));
        health.connected();
        assert!(!health.connect_failed(t0 + 31 * MS, t0 + 31 * MS, &Error::Closed));
        assert!(matches!(health.permit(t0 + 41 * MS), Permit::Connect));
    }

    #[test]
    fn a_down_server_is_probed_once_per_backoff_and_recovers() {
        let health = health(1);
        let t0 = Instant::now();
        assert!(health.record_failure(t0, t0, &Error::Closed));
        assert!(matches!(health.permit(t0), Permit::Down));
        assert!(!health.claim_probe(t0 + 5 * MS), "before the backoff");
        assert!(health.claim_probe(t0 + 10 * MS));
        assert!(!health.claim_probe(t0 + 10 * MS), "one probe at a time");
        health.probe_failed(t0 + 11 * MS, &Error::Closed);
        assert!(!health.claim_probe(t0 + 30 * MS), "the backoff doubled");
        assert!(health.claim_probe(t0 + 31 * MS));
        assert_eq!(health.recover_or_take_owed(), None);
        assert!(!health.is_down());
        assert!(matches!(health.permit(t0 + 31 * MS), Permit::Connect));
    }

    #[test]
    fn successes_on_old_connections_do_not_bring_a_down_server_back() {
        let health = health(1);
        let t0 = Instant::now();
        health.record_failure(t0, t0, &Error::Closed);
        health.record_success();
        health.connected();
        assert!(health.is_down());
    }

    #[test]
    fn a_missed_invalidation_marks_down_and_is_delivered_before_recovery() {
        let health = health(5);
        let t0 = Instant::now();
        assert!(health.owe(&tags(&["a"]), t0, &Error::Closed));
        assert!(health.is_down());
        assert!(health.owe_if_down(&tags(&["b"])));
        assert!(health.claim_probe(t0 + 10 * MS));
        let owed = health.recover_or_take_owed().expect("owes a and b");
        assert_eq!(owed.tags, tags(&["a", "b"]));
        assert!(health.is_down(), "still down until the debt is paid");
        // Another invalidation fails while the probe delivers the first.
        assert!(health.owe_if_down(&tags(&["c"])));
        assert_eq!(
            health.recover_or_take_owed().map(|owed| owed.tags),
            Some(tags(&["c"]))
        );
        assert_eq!(health.recover_or_take_owed(), None);
        assert!(!health.is_down());
        assert!(!health.owe_if_down(&tags(&["d"])));
    }

    /// A FLUSH_ALL sent while the server was down was dropped: the empty
    /// tag list that stands for it was owed as no tags at all.
    #[test]
    fn a_flush_sent_to_a_server_marked_down_is_owed() {
        let health = health(5);
        let t0 = Instant::now();
        assert!(health.owe(&tags(&["a"]), t0, &Error::Closed));
        assert!(health.owe_if_down(&[]));
        let owed = health.snapshot().owed;
        assert!(owed.flush && owed.tags.is_empty(), "{owed:?}");
    }

    #[test]
    fn too_many_owed_tags_become_a_flush() {
        let health = health(5);
        let t0 = Instant::now();
        let many: Vec<Bytes> = (0..MAX_OWED_TAGS)
            .map(|n| Bytes::from(n.to_string()))
            .collect();
        health.owe(&many, t0, &Error::Closed);
        assert!(!health.snapshot().owed.flush);
        health.owe_if_down(&many[..1]);
        assert!(!health.snapshot().owed.flush, "a repeat costs nothing");
        health.owe_if_down(&tags(&["one-more"]));
        let owed = health.snapshot().owed;
        assert!(owed.flush && owed.tags.is_empty());
    }

    #[test]
    fn an_undelivered_debt_stays_owed() {
        let health = health(5);
        let t0 = Instant::now();
        health.owe(&tags(&["a"]), t0, &Error::Closed);
        assert!(health.claim_probe(t0 + 10 * MS));
        let owed = health.recover_or_take_owed().expect("owes a");
        health.restore_owed(owed);
        health.probe_failed(t0 + 11 * MS, &Error::Closed);
        assert_eq!(health.snapshot().owed.tags, tags(&["a"]));
        assert!(health.is_down());
    }
}
