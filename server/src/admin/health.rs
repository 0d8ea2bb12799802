//! `GET /healthz` (the process is alive) and `GET /readyz` (every worker
//! answers, and the server is not stopping).

use hyper::StatusCode;
use serde::Serialize;

use super::reply::{self, Reply};
use super::workers::probe_all;
use super::{AdminState, PROBE_BOUND};

#[derive(Serialize)]
struct Alive {
    status: &'static str,
}

/// 200 whenever the admin thread can answer at all.
pub fn healthz() -> Reply {
    reply::json(StatusCode::OK, &Alive { status: "alive" })
}

#[derive(Serialize)]
struct Readiness {
    ready: bool,
    stopping: bool,
    /// Workers that did not answer within the bound, by index.
    unresponsive_workers: Vec<u16>,
    workers: usize,
}

/// 200 if every worker answered a probe within [`PROBE_BOUND`] and the
/// server is not shutting down; 503 otherwise, saying which.
pub async fn readyz(state: &AdminState) -> Reply {
    let reports = probe_all(&state.probes, PROBE_BOUND).await;
    let unresponsive_workers: Vec<u16> = reports
        .iter()
        .enumerate()
        .filter(|(_, report)| report.is_none())
        .map(|(index, _)| index as u16)
        .collect();
    let stopping = state.shared.shutdown.is_cancelled();
    let ready = !stopping && unresponsive_workers.is_empty();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        ready,
        stopping,
        unresponsive_workers,
        workers: reports.len(),
    };
    reply::json(status, &body)
}
