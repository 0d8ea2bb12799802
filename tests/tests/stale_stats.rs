//! The STATS counters of stale reads, leases and soft invalidations
//! (protocol.md §6.10), and HELLO's feature bits for them (§6.1).

use tagcached_protocol::request::{Command, Set};
use tagcached_protocol::response::Outcome;
use tagcached_protocol::{Flags, Request};
use tagcached_tests::{get_many_cmd, set_cmd, within, Stats, TestServer};

/// The counters this file follows.
const COUNTERS: [&str; 12] = [
    "get_hits",
    "get_misses",
    "get_stale",
    "get_hot_misses",
    "leases_granted",
    "set_lease_lost",
    "set_fenced",
    "leases_held",
    "invalidations",
    "soft_invalidations",
    "cmd_flush",
    "lease_time",
];

/// Checks that each counter moved by exactly `moves` (the others by 0)
/// from `before` to `after`.
fn assert_moved(before: &Stats, after: &Stats, step: &str, moves: &[(&str, i64)]) {
    for name in COUNTERS {
        let expected = moves
            .iter()
            .find(|(moved, _)| *moved == name)
            .map_or(0, |(_, by)| *by);
        let by = after.num(name) as i64 - before.num(name) as i64;
        assert_eq!(by, expected, "{step}: `{name}` moved by {by}");
    }
}

#[tokio::test]
async fn hello_reports_stale_while_revalidate_as_bit_2_and_leases_as_bit_3() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        let features = conn.hello(None).await.features.0;
        assert_eq!(features & (1 << 2), 1 << 2);
        assert_eq!(features & (1 << 3), 1 << 3);
        assert_eq!(features, 0b1111, "bits 0 to 3, and no other");
    })
    .await;
}

#[tokio::test]
async fn stale_reads_leases_and_soft_invalidations_move_their_counters() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        let mut other = server.connect().await;
        let both = Flags(Flags::ALLOW_STALE.0 | Flags::LEASE.0);
        conn.store("k", "v", &["t"]).await;
        let mut before = conn.stats().await;
        assert_eq!(before.num("lease_time"), 10, "the default");

        // One step: what it does, and how each counter must move.
        macro_rules! step {
            ($name:expr, $action:expr, $moves:expr) => {{
                $action;
                let after = conn.stats().await;
                assert_moved(&before, &after, $name, $moves);
                before = after;
            }};
        }

        step!(
            "soft INVALIDATE_TAGS",
            conn.invalidate_soft(&["t"], 600).await,
            &[("invalidations", 1), ("soft_invalidations", 1)]
        );
        step!(
            "soft FLUSH_ALL",
            conn.flush_all_soft(600).await,
            &[("cmd_flush", 1), ("soft_invalidations", 1)]
        );
        step!(
            "soft INVALIDATE_TAGS with expire 0",
            conn.invalidate_soft(&["unrelated"], 0).await,
            &[("invalidations", 1)]
        );
        step!(
            "STALE",
            assert!(matches!(
                conn.get_with(Flags::ALLOW_STALE, "k").await,
                Outcome::Stale(_)
            )),
            &[("get_hits", 1), ("get_stale", 1)]
        );
        step!(
            "a stale entry read without ALLOW_STALE",
            conn.get_miss("k").await,
            &[("get_misses", 1)]
        );
        let (token, fence) = match conn.get_with(Flags::LEASE, "k").await {
            Outcome::Miss(miss) => (miss.lease.token().expect("a lease"), miss.fence),
            other => panic!("{other:?}"),
        };
        let after = conn.stats().await;
        assert_moved(
            &before,
            &after,
            "MISS with a lease",
            &[("get_misses", 1), ("leases_granted", 1), ("leases_held", 1)],
        );
        before = after;
        step!(
            "HOT_MISS",
            assert!(matches!(
                other.get_with(Flags::LEASE, "k").await,
                Outcome::HotMiss(_)
            )),
            &[("get_misses", 1), ("get_hot_misses", 1)]
        );
        step!(
            "STALE with lease 0",
            assert!(matches!(other.get_with(both, "k").await, Outcome::Stale(_))),
            &[("get_hits", 1), ("get_stale", 1)]
        );
        step!(
            "GETM of an absent key named twice, with LEASE",
            {
                let opaque = other.next_opaque();
                other
                    .send(&Request {
                        opaque,
                        flags: Flags::LEASE,
                        command: get_many_cmd(&["absent", "absent"]),
                    })
                    .await;
                assert!(matches!(other.recv().await.outcome, Outcome::Miss(_)));
                assert!(matches!(other.recv().await.outcome, Outcome::HotMiss(_)));
            },
            &[
                ("get_misses", 2),
                ("get_hot_misses", 1),
                ("leases_granted", 1),
                ("leases_held", 1),
            ]
        );
        step!(
            "LEASE_LOST",
            {
                let set = Set {
                    lease: Some(token ^ 1),
                    fence: Some(fence),
                    ..set_cmd("k", "v", &["t"])
                };
                assert_eq!(conn.run(Command::Set(set)).await, Outcome::LeaseLost);
            },
            &[("set_lease_lost", 1)]
        );
        step!(
            "hard INVALIDATE_TAGS",
            conn.invalidate(&["t"]).await,
            &[("invalidations", 1)]
        );
        step!(
            "a lease SET answered FENCED",
            {
                let set = Set {
                    lease: Some(token),
                    fence: Some(fence),
                    ..set_cmd("k", "v", &["t"])
                };
                assert_eq!(conn.run(Command::Set(set)).await, Outcome::Fenced);
            },
            &[("set_fenced", 1), ("leases_held", -1)]
        );
        assert_eq!(before.num("leases_held"), 1, "the GETM's lease on `absent`");
    })
    .await;
}
