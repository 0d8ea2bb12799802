//! A shard's inbox: the batches other workers' connections (and the admin
//! thread) send it, at most [`INBOX_CAPACITY`] at a time. (Generic over
//! what it carries, so that it depends on nothing of the server's.)
//!
//! A fixed ring that any thread pushes to and the shard's worker pops from,
//! with no lock: sending is a push and a wake of the worker's inbox task
//! (which takes its waker, so a burst of sends wakes it once); receiving is
//! a pop. A sender that finds the ring full waits on a notification the
//! worker gives only while someone waits, so the usual pop costs a load.
//! tokio's bounded channel did this with a linked list of blocks and a
//! semaphore whose permit, given back on every receive, took a mutex
//! (benches/BENCHMARKS.md, "Instructions per request").

use std::future::poll_fn;
use std::pin::pin;
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use atomic_waker::AtomicWaker;
use crossbeam_queue::ArrayQueue;
use tokio::sync::Notify;

/// Messages an inbox holds before senders wait. A connection sends at most
/// one message per shard per round, so this bounds the connections whose
/// rounds one shard has queued, not requests.
pub const INBOX_CAPACITY: usize = 1024;

struct Shared<T> {
    ring: ArrayQueue<T>,
    /// The waker of the task that waits for messages.
    receiver: AtomicWaker,
    /// Notified when a message leaves a ring some sender found full, or the
    /// inbox closes.
    room: Notify,
    /// Senders waiting on `room`.
    waiting: AtomicUsize,
    /// The worker has stopped: nothing sent now would be run.
    closed: AtomicBool,
}

/// The sending side, one per shard in every worker's router.
pub struct InboxSender<T>(Arc<Shared<T>>);

impl<T> Clone for InboxSender<T> {
    fn clone(&self) -> Self {
        InboxSender(self.0.clone())
    }
}

/// The receiving side, owned by the shard's worker; dropping it closes
/// the inbox.
pub struct Inbox<T>(Arc<Shared<T>>);

/// An inbox of [`INBOX_CAPACITY`] messages.
pub fn inbox<T>() -> (InboxSender<T>, Inbox<T>) {
    let shared = Arc::new(Shared {
        ring: ArrayQueue::new(INBOX_CAPACITY),
        receiver: AtomicWaker::new(),
        room: Notify::new(),
        waiting: AtomicUsize::new(0),
        closed: AtomicBool::new(false),
    });
    (InboxSender(shared.clone()), Inbox(shared))
}

impl<T> InboxSender<T> {
    /// Sends `message`, waiting while the inbox is full. Gives it back if
    /// the inbox has closed.
    pub async fn send(&self, mut message: T) -> Result<(), T> {
        let shared = &*self.0;
        loop {
            if shared.closed.load(Ordering::Acquire) {
                return Err(message);
            }
            match shared.ring.push(message) {
                Ok(()) => {
                    shared.receiver.wake();
                    return Ok(());
                }
                Err(full) => message = full,
            }
            let mut room = pin!(shared.room.notified());
            room.as_mut().enable();
            shared.waiting.fetch_add(1, Ordering::SeqCst);
            // Either the receiver's pop comes after this fence, and it
            // sees `waiting` and notifies (after `enable`, so this waiter
            // hears it), or it came before, and the ring is seen not full
            // here. The receiver fences between the two likewise.
            fence(Ordering::SeqCst);
            if shared.ring.is_full() && !shared.closed.load(Ordering::Acquire) {
                room.await;
            }
            shared.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl<T> Inbox<T> {
    /// Whether no message waits: cheaper than a failed [`Inbox::try_recv`].
    pub fn is_empty(&self) -> bool {
        self.0.ring.is_empty()
    }

    /// The next message, if one waits.
    pub fn try_recv(&self) -> Option<T> {
        let message = self.0.ring.pop()?;
        self.made_room();
        Some(message)
    }

    /// The next message, or `Pending` with this task woken when one comes.
    fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<T> {
        // Registered before looking, so a message pushed after the look
        // wakes this task.
        self.0.receiver.register(cx.waker());
        match self.try_recv() {
            Some(message) => Poll::Ready(message),
            None => Poll::Pending,
        }
    }

    /// Waits for the next message.
    pub async fn recv(&self) -> T {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn made_room(&self) {
        // See `InboxSender::send`.
        fence(Ordering::SeqCst);
        if self.0.waiting.load(Ordering::Relaxed) > 0 {
            self.0.room.notify_waiters();
        }
    }
}

impl<T> Drop for Inbox<T> {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
        fence(Ordering::SeqCst);
        self.0.room.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn messages_from_other_threads_arrive_in_order_and_wake_the_receiver() {
        let (sender, inbox) = inbox::<u32>();
        let pusher = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                for n in 0..3 {
                    sender.send(n).await.expect("open");
                }
            });
        });
        for n in 0..3 {
            let got = tokio::time::timeout(Duration::from_secs(5), inbox.recv())
                .await
                .expect("woken by the send");
            assert_eq!(got, n);
        }
        assert!(inbox.is_empty());
        pusher.join().expect("pusher");
    }

    #[tokio::test]
    async fn a_sender_finding_it_full_waits_for_room_and_then_sends() {
        let (sender, inbox) = inbox::<usize>();
        for n in 0..INBOX_CAPACITY {
            sender.send(n).await.expect("room");
        }
        let waiting = tokio::spawn({
            let sender = sender.clone();
            async move { sender.send(INBOX_CAPACITY).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "full: the sender waits");
        assert_eq!(inbox.try_recv(), Some(0));
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken by the room made")
            .expect("task")
            .expect("sent");
        let drained: Vec<_> = std::iter::from_fn(|| inbox.try_recv()).collect();
        assert_eq!(drained, (1..=INBOX_CAPACITY).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn closing_gives_messages_back_even_to_a_sender_that_waits() {
        let (sender, inbox) = inbox::<usize>();
        for n in 0..INBOX_CAPACITY {
            sender.send(n).await.expect("room");
        }
        let waiting = tokio::spawn({
            let sender = sender.clone();
            async move { sender.send(7).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(inbox);
        let refused = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken by the close")
            .expect("task");
        assert_eq!(refused, Err(7));
        assert_eq!(sender.send(8).await, Err(8));
    }
}
