//! A [`Round`]: the requests a connection has planned and not yet answered,
//! as one [`Batch`] per shard plus the order their answers go out in.
//!
//! Planning appends to the batches and to `order`; [`Round::execute`] runs
//! them, here and on the other shards (one message per shard); and
//! [`Round::collect`] takes, in request order, every answer that is ready,
//! stopping at the first request whose answer is not. What is left waits
//! for the next execution: requests that did not fit in the connection's
//! memory budget, and the answers behind them.

use std::collections::VecDeque;
use std::time::Instant;

use super::write::Output;
use crate::command::{Batch, Gather, Op, Planner};
use crate::context::WorkerContext;
use crate::replies::Replies;
use crate::router::{Message, ReplyTo, Router};
use crate::shared::Shared;

/// A shard stopped before it could run a batch: a shutdown outlived its
/// grace period. The connection closes.
#[derive(Debug)]
pub(super) struct ShardStopped;

/// A run of consecutive answers from one place, in request order.
#[derive(Debug)]
enum Entry {
    /// The answers of the next `ops` ops of `shard`'s batch.
    Answers { shard: u16, ops: usize },
    /// An answer rendered from what every shard reported (each shard's
    /// report was queued just before, so it is in when this is reached).
    Gathered { opaque: u32, gather: Gather },
}

/// See the module comment.
pub(super) struct Round {
    home: u16,
    router: Router,
    /// One per shard, made on first use; out of its slot while on another
    /// shard.
    batches: Vec<Option<Box<Batch>>>,
    order: VecDeque<Entry>,
    /// Where other shards put batches back; made on the first hop.
    replies: Option<ReplyTo>,
    /// Ops planned since the last execution.
    planned: usize,
}

impl Round {
    pub(super) fn new(home: u16, router: Router) -> Round {
        let shards = usize::from(router.shard_count());
        Round {
            home,
            router,
            batches: (0..shards).map(|_| None).collect(),
            order: VecDeque::new(),
            replies: None,
            planned: 0,
        }
    }

    /// Ops planned since the last [`Round::execute`].
    pub(super) fn planned(&self) -> usize {
        self.planned
    }

    /// Whether any planned op has yet to run.
    pub(super) fn has_pending(&self) -> bool {
        self.batches
            .iter()
            .flatten()
            .any(|batch| batch.pending() > 0)
    }

    /// Whether every planned request has been answered and collected.
    pub(super) fn is_done(&self) -> bool {
        self.order.is_empty()
    }

    /// Runs every batch with ops pending: other shards' by one message each,
    /// this shard's in place meanwhile, at the store's time `now` (the
    /// connection's clock read: see [`crate::latency`]); returns when all
    /// are back.
    ///
    /// `budget` bounds the answer bytes the round may hold. What collected
    /// answers still hold (those waiting behind an unanswered request)
    /// counts against it, and the rest is shared out evenly among the
    /// batches; the batch holding the oldest unanswered request runs that
    /// request whatever its size, so every execution makes progress.
    pub(super) async fn execute(
        &mut self,
        context: &WorkerContext,
        budget: usize,
        now: Instant,
    ) -> Result<(), ShardStopped> {
        self.planned = 0;
        let held: usize = self
            .batches
            .iter()
            .flatten()
            .map(|batch| batch.held())
            .sum();
        let busy = self
            .batches
            .iter()
            .flatten()
            .filter(|batch| batch.pending() > 0)
            .count();
        let room = budget.saturating_sub(held) / busy.max(1);
        let oldest = match self.order.front() {
            Some(Entry::Answers { shard, .. }) => Some(*shard),
            _ => None,
        };
        let mut away = 0;
        for shard in 0..self.router.shard_count() {
            if shard == self.home {
                continue;
            }
            let slot = &mut self.batches[usize::from(shard)];
            let Some(mut batch) = slot.take_if(|batch| batch.pending() > 0) else {
                continue;
            };
            batch.allow(room, oldest == Some(shard));
            let reply = self.reply_to();
            if self
                .router
                .send(shard, Message { batch, reply })
                .await
                .is_err()
            {
                return Err(ShardStopped);
            }
            away += 1;
        }
        if let Some(batch) = self.batches[usize::from(self.home)].as_mut() {
            if batch.pending() > 0 {
                batch.allow(room, oldest == Some(self.home));
                context.run(batch, now);
            }
        }
        // Serve other workers' batches while ours are away: ours may be
        // waiting on a worker that is waiting on us.
        if away > 0 {
            context.serve_inbox_now();
        }
        while away > 0 {
            let Some(replies) = self.replies.as_ref() else {
                return Err(ShardStopped);
            };
            // This ends only with a batch: a shard that stops while
            // holding one drops it, and then only shutdown ends the wait,
            // as it ends the worker.
            let batch = replies.recv().await;
            let shard = usize::from(batch.shard());
            self.batches[shard] = Some(batch);
            away -= 1;
        }
        Ok(())
    }

    /// Moves every answer that is ready, in request order, into `out`,
    /// stopping at the first request not yet answered.
    pub(super) fn collect(&mut self, shared: &Shared, out: &mut Output) {
        while let Some(entry) = self.order.front_mut() {
            match entry {
                Entry::Answers { shard, ops } => {
                    let Some(batch) = self.batches[usize::from(*shard)].as_mut() else {
                        return;
                    };
                    let (taken, bytes) = batch.take_answers(*ops);
                    out.take_from(batch, bytes);
                    *ops -= taken;
                    if *ops > 0 {
                        return;
                    }
                }
                Entry::Gathered { opaque, gather } => {
                    let reports: Vec<_> = self
                        .batches
                        .iter_mut()
                        .flatten()
                        .filter_map(|batch| Some((batch.shard(), batch.take_report()?)))
                        .collect();
                    out.push(gather.answer(shared, *opaque, reports));
                }
            }
            self.order.pop_front();
        }
    }

    /// Gives back memory a large round needed, once it is no longer held.
    pub(super) fn trim(&mut self) {
        for batch in self.batches.iter_mut().flatten() {
            batch.trim();
        }
    }

    fn reply_to(&mut self) -> ReplyTo {
        let shards = self.router.shard_count();
        self.replies
            .get_or_insert_with(|| Replies::new(shards))
            .clone()
    }
}

impl Planner for Round {
    fn home(&self) -> u16 {
        self.home
    }

    fn shard_count(&self) -> u16 {
        self.router.shard_count()
    }

    fn shard_of(&self, key: &[u8]) -> u16 {
        self.router.shard_of(key)
    }

    fn queue(&mut self, shard: u16, op: Op) {
        Batch::push_to(&mut self.batches, shard, op);
        self.planned += 1;
        match self.order.back_mut() {
            Some(Entry::Answers { shard: last, ops }) if *last == shard => *ops += 1,
            _ => self.order.push_back(Entry::Answers { shard, ops: 1 }),
        }
    }

    fn gather(&mut self, opaque: u32, gather: Gather) {
        self.order.push_back(Entry::Gathered { opaque, gather });
    }
}
