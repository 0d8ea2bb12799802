//! AUTH (protocol.md §6.12): a token checked against the server's, in
//! constant time. A success lets the connection send anything from its next
//! request on; a failure is answered AUTH_FAILED and ends the connection,
//! so each guess costs a connection.
//!
//! Before a connection has authenticated, the connection lets through only
//! the requests [`served_before_auth`] names, and answers every other with
//! [`plan_required`].

use std::sync::atomic::Ordering;

use tagcached_protocol::request::Auth;
use tagcached_protocol::response::Outcome;
use tagcached_protocol::{ErrorCode, Opcode};

use super::{error, Op, Planned, Planner};
use crate::shared::Shared;

pub(super) fn plan(
    opaque: u32,
    auth: &Auth,
    shared: &Shared,
    planner: &mut impl Planner,
) -> Planned {
    let Some(authenticator) = &shared.auth else {
        // Nothing to check: a server without tokens serves everyone.
        planner.queue(
            planner.home(),
            Op::answer(opaque, Opcode::AUTH, Outcome::Ok, false),
        );
        return Planned::Queued;
    };
    if authenticator.accepts(&auth.token) {
        planner.queue(
            planner.home(),
            Op::answer(opaque, Opcode::AUTH, Outcome::Ok, false),
        );
        return Planned::Authenticated;
    }
    shared
        .counters
        .auth_failures
        .fetch_add(1, Ordering::Relaxed);
    let refusal = error(
        ErrorCode::AuthFailed,
        "the token is not one this server accepts",
    );
    planner.queue(
        planner.home(),
        Op::answer(opaque, Opcode::AUTH, refusal, false),
    );
    Planned::Close
}

/// Whether a connection that has not authenticated is served `opcode`:
/// HELLO, to learn that it must authenticate; PING, for health checks;
/// and AUTH itself.
pub fn served_before_auth(opcode: Opcode) -> bool {
    matches!(opcode, Opcode::HELLO | Opcode::PING | Opcode::AUTH)
}

/// Plans the answer to a request a connection sent before authenticating
/// that [`served_before_auth`] does not name: AUTH_REQUIRED, in order; the
/// request is not run and the connection goes on.
pub fn plan_required(opaque: u32, opcode: Opcode, shared: &Shared, planner: &mut impl Planner) {
    shared
        .counters
        .auth_refusals
        .fetch_add(1, Ordering::Relaxed);
    let refusal = error(
        ErrorCode::AuthRequired,
        "this server requires AUTH before any request but HELLO and PING",
    );
    planner.queue(planner.home(), Op::answer(opaque, opcode, refusal, false));
}
