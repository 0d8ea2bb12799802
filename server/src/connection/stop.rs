//! The worker's stop, as a connection asks about it before every read.
//!
//! A connection reads nothing once the server is stopping (protocol.md §1),
//! so it asks before each read, which at pipeline depth 1 is twice per
//! request (once before the read waits, once when it is woken). Polling a
//! token's own future takes two locks each time: the token's, and its
//! waiter list's, to store the waker again; even `is_cancelled` takes the
//! first. [`StopSignal`] hands the token a waker of its own once, which
//! marks an atomic flag before it wakes the task; after that, while the
//! task's waker is unchanged, asking is one load of that flag.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Resolves once its token is cancelled; see the module comment.
pub(super) struct StopSignal {
    wait: Pin<Box<WaitForCancellationFutureOwned>>,
    /// The waker `wait` was last polled with, which the token wakes.
    registered: Option<Arc<Wakened>>,
}

/// The waker the token holds: the task's, behind a flag.
struct Wakened {
    /// Set before `task` is woken, so a poll that follows the wake sees it.
    woken: AtomicBool,
    task: Waker,
}

impl Wake for Wakened {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake_by_ref();
    }
}

impl StopSignal {
    pub(super) fn new(token: CancellationToken) -> StopSignal {
        StopSignal {
            wait: Box::pin(token.cancelled_owned()),
            registered: None,
        }
    }

    /// Resolves once the token is cancelled. Cancel-safe.
    pub(super) async fn stopped(&mut self) {
        poll_fn(|cx| self.poll_stopped(cx)).await;
    }

    fn poll_stopped(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // Until the token wakes the waker it holds, it is not cancelled
        // (it wakes every waiter when it is); and while the task's waker
        // is the one wrapped there, the token would wake this task.
        if let Some(registered) = &self.registered {
            if !registered.woken.load(Ordering::Acquire) && registered.task.will_wake(cx.waker()) {
                return Poll::Pending;
            }
        }
        // First poll, a new waker, or woken: ask the token itself, which
        // also hands it a fresh flag (a wake without a cancel, if the
        // token ever made one, then costs a second look, not a stop).
        let wakened = Arc::new(Wakened {
            woken: AtomicBool::new(false),
            task: cx.waker().clone(),
        });
        let waker = Waker::from(wakened.clone());
        let polled = self.wait.as_mut().poll(&mut Context::from_waker(&waker));
        // Only a pending wait holds the waker (a cancelled token's never
        // wakes it), so only then may later polls trust its flag.
        self.registered = polled.is_pending().then_some(wakened);
        polled
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn resolves_when_the_token_is_cancelled_after_it_first_waited() {
        let token = CancellationToken::new();
        let mut signal = StopSignal::new(token.clone());
        // Polled twice with the same waker before the cancel: the second
        // poll takes the short way.
        for _ in 0..2 {
            let waited = tokio::time::timeout(Duration::from_millis(10), signal.stopped()).await;
            assert!(waited.is_err(), "not cancelled yet");
        }
        let canceller = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            token.cancel();
        });
        tokio::time::timeout(Duration::from_secs(5), signal.stopped())
            .await
            .expect("woken by the cancel");
        canceller.await.expect("canceller");
    }

    #[tokio::test]
    async fn a_cancelled_token_resolves_at_once() {
        let token = CancellationToken::new();
        token.cancel();
        let mut signal = StopSignal::new(token);
        signal.stopped().await;
        signal.stopped().await;
    }
}
