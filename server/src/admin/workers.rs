//! How the admin thread reaches the workers: probes for their reports, and
//! batches for a request planned as a data-port connection plans it. The
//! admin thread owns no shard, so every batch, the answer's included,
//! travels to its worker by message and back.

use std::time::Duration;

use bytes::BytesMut;
use tagcached_protocol::{ClientFrameCodec, Request, Response};
use tokio::sync::oneshot;
use tokio::time::{timeout_at, Instant};
use tokio_util::codec::Decoder;

use crate::command::{self, Batch, Gather, Op, Planned, Planner};
use crate::probe::{Probe, ProbeSenders, WorkerReport};
use crate::replies::Replies;
use crate::router::{Message, Router};
use crate::shared::Shared;

/// What each worker answered to a probe within `bound`, by worker;
/// `None` for a worker that did not. Every worker is asked before any
/// answer is awaited, so they answer in parallel under one deadline.
pub async fn probe_all(probes: &ProbeSenders, bound: Duration) -> Vec<Option<WorkerReport>> {
    let deadline = Instant::now() + bound;
    let mut answers = Vec::with_capacity(probes.len());
    for sender in probes {
        let (reply, answer) = oneshot::channel();
        let sent = timeout_at(deadline, sender.send(Probe { reply })).await;
        answers.push(matches!(sent, Ok(Ok(()))).then_some(answer));
    }
    let mut reports = Vec::with_capacity(answers.len());
    for answer in answers {
        let report = match answer {
            Some(answer) => timeout_at(deadline, answer).await.ok().and_then(Result::ok),
            None => None,
        };
        reports.push(report);
    }
    reports
}

/// Why a planned request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum Unanswered {
    /// A worker has stopped (shutdown).
    #[error("the server is stopping")]
    Stopping,
    /// The answer could not be read back (a bug, never seen).
    #[error("the answer could not be read: {0}")]
    Garbled(String),
}

/// Plans `request` exactly as a data-port connection would, runs its ops
/// on their shards, and returns its answer once every shard has run its
/// share. For requests answered by one frame with no gathering (not
/// STATS or TAG_STATUS).
pub async fn run_request(
    request: Request,
    shared: &Shared,
    router: &Router,
) -> Result<Response, Unanswered> {
    let flags = request.flags;
    let mut planner = RemotePlanner::new(router.clone());
    if command::plan(request, shared, &mut planner) != Planned::Queued {
        return Err(Unanswered::Garbled("a HELLO was planned".to_owned()));
    }
    let replies = Replies::new(router.shard_count());
    let mut away = 0;
    for mut batch in planner.batches.into_iter().flatten() {
        let shard = batch.shard();
        // Nothing a request the admin port makes answers is large.
        batch.allow(usize::MAX, true);
        let message = Message {
            batch,
            reply: replies.clone(),
        };
        router
            .send(shard, message)
            .await
            .map_err(|_| Unanswered::Stopping)?;
        away += 1;
    }
    let mut frames = BytesMut::new();
    let mut answers = 0;
    for _ in 0..away {
        let mut batch = replies.recv().await;
        let (ops, bytes) = batch.take_answers(usize::MAX);
        answers += ops;
        batch.copy_answers(bytes, &mut frames);
    }
    let mut codec = ClientFrameCodec::new(u32::MAX);
    let garbled = |error: String| Unanswered::Garbled(error);
    let frame = codec
        .decode(&mut frames)
        .map_err(|error| garbled(error.to_string()))?
        .ok_or_else(|| garbled(format!("no answer frame among {answers} ops")))?;
    frame
        .decode(flags)
        .map_err(|error| garbled(error.to_string()))
}

/// A [`Planner`] for a request with no connection behind it: one batch per
/// shard, all sent away; its answer (queued on the "home" shard, 0) comes
/// back in shard 0's batch.
struct RemotePlanner {
    batches: Vec<Option<Box<Batch>>>,
    router: Router,
}

impl RemotePlanner {
    fn new(router: Router) -> RemotePlanner {
        RemotePlanner {
            batches: (0..router.shard_count()).map(|_| None).collect(),
            router,
        }
    }
}

impl Planner for RemotePlanner {
    fn home(&self) -> u16 {
        0
    }

    fn shard_count(&self) -> u16 {
        self.router.shard_count()
    }

    fn shard_of(&self, key: &[u8]) -> u16 {
        self.router.shard_of(key)
    }

    fn queue(&mut self, shard: u16, op: Op) {
        Batch::push_to(&mut self.batches, shard, op);
    }

    fn gather(&mut self, _opaque: u32, _gather: Gather) {
        // Not used by the requests the admin port makes (see `run_request`).
    }
}
