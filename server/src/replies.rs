//! Where a shard puts a batch back when it has run it: the sending
//! connection's (or admin request's) [`Replies`].
//!
//! A connection has at most one batch out per shard (see
//! [`crate::router`]), so a slot per shard holds every reply it can get,
//! and no reply ever waits for room. Putting one back is a swap of a
//! pointer and a wake of the waiting task; taking it, a swap. A channel
//! did the same with a linked list of blocks, a semaphore and their
//! bookkeeping: about 340 more instructions per hop (benches/BENCHMARKS.md,
//! "Instructions per request").

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use atomic_waker::AtomicWaker;
use crossbeam_utils::atomic::AtomicCell;

use crate::command::Batch;

/// One slot per shard, and the waker of the task that waits on them.
pub struct Replies {
    slots: Box<[AtomicCell<Option<Box<Batch>>>]>,
    waker: AtomicWaker,
}

// A slot is a pointer, which every platform tagcached builds for swaps
// atomically: no slot falls back to AtomicCell's lock.
const _: () = assert!(AtomicCell::<Option<Box<Batch>>>::is_lock_free());

impl Replies {
    /// Empty slots for `shards` shards.
    pub fn new(shards: u16) -> Arc<Replies> {
        Arc::new(Replies {
            slots: (0..shards).map(|_| AtomicCell::new(None)).collect(),
            waker: AtomicWaker::new(),
        })
    }

    /// Puts back a batch that has run, on the thread of its shard, and
    /// wakes the task waiting for it.
    pub fn send(&self, batch: Box<Batch>) {
        let slot = &self.slots[usize::from(batch.shard())];
        let previous = slot.swap(Some(batch));
        debug_assert!(previous.is_none(), "one batch out per shard");
        self.waker.wake();
    }

    /// The next batch put back, whichever shard it ran on. Cancel-safe: a
    /// batch is taken from its slot only when it is returned.
    pub async fn recv(&self) -> Box<Batch> {
        poll_fn(|cx| {
            // Registered before looking, so a batch put back after the
            // look wakes this task.
            self.waker.register(cx.waker());
            match self.slots.iter().find_map(AtomicCell::take) {
                Some(batch) => Poll::Ready(batch),
                None => Poll::Pending,
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn batches_come_back_from_other_threads_and_wake_the_waiter() {
        let replies = Replies::new(3);
        let senders: Vec<_> = [2, 1]
            .into_iter()
            .map(|shard| {
                let replies = replies.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    replies.send(Box::new(Batch::new(shard)));
                })
            })
            .collect();
        let mut shards = Vec::new();
        for _ in 0..2 {
            let batch = tokio::time::timeout(Duration::from_secs(5), replies.recv())
                .await
                .expect("woken by the reply");
            shards.push(batch.shard());
        }
        shards.sort_unstable();
        assert_eq!(shards, [1, 2]);
        for sender in senders {
            sender.join().expect("sender");
        }
    }

    #[tokio::test]
    async fn a_batch_already_back_is_taken_at_once_and_only_once() {
        let replies = Replies::new(2);
        replies.send(Box::new(Batch::new(0)));
        assert_eq!(replies.recv().await.shard(), 0);
        let again = tokio::time::timeout(Duration::from_millis(20), replies.recv()).await;
        assert!(again.is_err(), "nothing more came back");
    }
}
