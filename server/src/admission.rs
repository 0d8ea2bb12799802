//! Admission: a connection counts against `max_connections` from the moment
//! it is accepted until its socket is closed, on whichever worker it ends;
//! and the request frame it has partly received counts against
//! `partial_frame_memory`, shared by all connections, until it is whole.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::shared::Shared;

/// Counts one connection from admission until it is dropped, wherever the
/// connection moves.
pub struct ConnectionGuard {
    shared: Arc<Shared>,
}

impl ConnectionGuard {
    /// Admits a connection if the server is under `max_connections`.
    pub fn try_admit(shared: Arc<Shared>) -> Option<ConnectionGuard> {
        let counters = &shared.counters;
        let previous = counters.curr_connections.fetch_add(1, Ordering::AcqRel);
        if previous >= shared.config.max_connections {
            counters.curr_connections.fetch_sub(1, Ordering::AcqRel);
            counters
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            return None;
        }
        counters.total_connections.fetch_add(1, Ordering::Relaxed);
        Some(ConnectionGuard { shared })
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.shared
            .counters
            .curr_connections
            .fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection's share of the bytes of partly received request frames,
/// summed over every connection and bounded by `partial_frame_memory`.
///
/// A frame announced as large costs only what has arrived of it (the
/// decoder reserves nothing ahead), but a thousand connections that each
/// send all but the last byte of the largest frame would still hold 2 GiB;
/// this bound makes the total a setting instead. Released when the frame is
/// whole or the connection ends.
pub struct PartialFrameShare {
    shared: Arc<Shared>,
    held: usize,
}

impl PartialFrameShare {
    /// A share of nothing.
    pub fn new(shared: Arc<Shared>) -> PartialFrameShare {
        PartialFrameShare { shared, held: 0 }
    }

    /// Makes this connection's share `bytes` (0 when no frame is partly
    /// received). Returns false, keeping the share as it was, if that would
    /// take the total past the limit.
    pub fn hold(&mut self, bytes: usize) -> bool {
        // Nearly every read leaves no large frame behind: touch the
        // server-wide counter, a cache line every worker writes, only when
        // the share changes.
        if bytes == self.held {
            return true;
        }
        let total = &self.shared.counters.partial_frame_bytes;
        if bytes < self.held {
            total.fetch_sub(self.held - bytes, Ordering::AcqRel);
            self.held = bytes;
            return true;
        }
        let more = bytes - self.held;
        let before = total.fetch_add(more, Ordering::AcqRel);
        if before + more > self.shared.config.partial_frame_memory {
            total.fetch_sub(more, Ordering::AcqRel);
            self.shared
                .counters
                .partial_frame_refusals
                .fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.held = bytes;
        true
    }
}

impl Drop for PartialFrameShare {
    fn drop(&mut self) {
        self.shared
            .counters
            .partial_frame_bytes
            .fetch_sub(self.held, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::config::Config;
    use crate::sequence::SequenceCounter;

    fn shared(partial_frame_memory: usize) -> Arc<Shared> {
        let config = Config {
            partial_frame_memory,
            ..Config::local_ephemeral()
        };
        Arc::new(Shared::new(
            config,
            SequenceCounter::starting_at(1),
            CancellationToken::new(),
        ))
    }

    fn total(shared: &Shared) -> usize {
        shared.counters.partial_frame_bytes.load(Ordering::Acquire)
    }

    #[test]
    fn shares_add_up_to_the_limit_and_the_one_past_it_is_refused_unchanged() {
        let shared = shared(100);
        let mut first = PartialFrameShare::new(shared.clone());
        let mut second = PartialFrameShare::new(shared.clone());
        assert!(first.hold(60));
        assert!(second.hold(40));
        assert_eq!(total(&shared), 100);
        assert!(!second.hold(41), "one byte past the limit");
        assert_eq!(total(&shared), 100, "a refusal changes nothing");
        assert_eq!(
            shared
                .counters
                .partial_frame_refusals
                .load(Ordering::Relaxed),
            1
        );
        // A frame that completes gives its share back; another may grow.
        assert!(first.hold(0));
        assert!(second.hold(100));
        drop(second);
        assert_eq!(total(&shared), 0, "dropping a share releases it");
    }
}
