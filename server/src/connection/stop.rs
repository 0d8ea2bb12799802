//! The worker's stop, as a connection asks about it before every read.
//!
//! A connection reads nothing once the server is stopping (protocol.md §1),
//! so it asks before each read, which at pipeline depth 1 is twice per
//! request (once before the read waits, once when it is woken). Polling a
//! token's own future takes two locks each time: the token's, and its
//! waiter list's, to store the waker again. The waker of a connection's
//! task does not change from one poll to the next, so [`StopSignal`]
//! stores it once, and after that reads only the token's state.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Resolves once its token is cancelled; see the module comment.
pub(super) struct StopSignal {
    token: CancellationToken,
    wait: Pin<Box<WaitForCancellationFutureOwned>>,
    /// The waker `wait` was last polled with, which the token wakes.
    registered: Option<Waker>,
}

impl StopSignal {
    pub(super) fn new(token: CancellationToken) -> StopSignal {
        StopSignal {
            wait: Box::pin(token.clone().cancelled_owned()),
            token,
            registered: None,
        }
    }

    /// Resolves once the token is cancelled. Cancel-safe.
    pub(super) async fn stopped(&mut self) {
        poll_fn(|cx| self.poll_stopped(cx)).await;
    }

    fn poll_stopped(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // The token wakes the waker `wait` holds, which wakes this task
        // too: no need to hand it over again.
        if self
            .registered
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()))
        {
            return if self.token.is_cancelled() {
                Poll::Ready(())
            } else {
                Poll::Pending
            };
        }
        let polled = self.wait.as_mut().poll(cx);
        self.registered = Some(cx.waker().clone());
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
