//! Admission: a connection counts against `max_connections` from the moment
//! it is accepted until its socket is closed, on whichever worker it ends.

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
