//! SET with STALE_AFTER (protocol.md §6.5, "Stale window"): an entry fresh
//! for N seconds, then stale, with a refresh lease for one reader, until
//! its TTL ends it.

use std::time::{Duration, Instant};

use tagcached_protocol::request::{Command, Set};
use tagcached_protocol::response::Outcome;
use tagcached_protocol::Flags;
use tagcached_tests::{set_cmd, within, Deadline, RawConn, TestServer, CLOCK_SLACK};

/// SETs `key` = `value` with a TTL and a stale window; returns when the
/// SET was sent and when STORED arrived.
async fn set_stale_after(
    conn: &mut RawConn,
    key: &str,
    value: &str,
    ttl: u32,
    stale_after: u32,
) -> (Instant, Instant) {
    let set = Set {
        ttl,
        stale_after: Some(stale_after),
        ..set_cmd(key, value, &[])
    };
    let sent = Instant::now();
    let outcome = conn.run(Command::Set(set)).await;
    assert!(matches!(outcome, Outcome::Stored { .. }), "{outcome:?}");
    (sent, Instant::now())
}

/// What an ALLOW_STALE read of a key saw, in order, collapsing repeats.
#[derive(Debug, Default)]
struct Phases {
    seen: Vec<&'static str>,
}

impl Phases {
    fn note(&mut self, phase: &'static str) {
        if self.seen.last() != Some(&phase) {
            self.seen.push(phase);
        }
    }
}

#[tokio::test]
async fn an_entry_is_fresh_then_stale_then_ends_with_its_ttl() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        let mut other = server.connect().await;
        let stale_after = Duration::from_secs(1);
        let ttl = Duration::from_secs(2);
        let (sent, stored) = set_stale_after(&mut conn, "k", "v", 2, 1).await;
        // A window at or past the TTL: never stale. 0: never stale.
        set_stale_after(&mut conn, "never-stale", "v", 2, 2).await;
        set_stale_after(&mut conn, "zero", "v", 0, 0).await;

        let mut phases = Phases::default();
        // The TTL counts from the SET until a TOUCH while stale resets it.
        let mut ttl_from = (sent, stored, ttl);
        let mut checked_stale = false;
        let deadline = Deadline::new("the entry to expire", ttl + Duration::from_secs(3));
        loop {
            let read_sent = Instant::now();
            let outcome = conn.get_with(Flags::ALLOW_STALE, "k").await;
            let answered = Instant::now();
            match outcome {
                Outcome::Hit(_) => {
                    assert!(
                        read_sent < stored + stale_after + CLOCK_SLACK,
                        "fresh past its stale window"
                    );
                    phases.note("fresh");
                }
                Outcome::Stale(hit) => {
                    assert_eq!(hit.value, "v");
                    assert!(
                        answered + CLOCK_SLACK >= sent + stale_after,
                        "stale too soon"
                    );
                    assert!(
                        read_sent < ttl_from.1 + ttl_from.2 + CLOCK_SLACK,
                        "past its TTL"
                    );
                    phases.note("stale");
                    if !checked_stale {
                        checked_stale = true;
                        let (sent, touched) = stale_reads(&mut conn, &mut other, 1).await;
                        ttl_from = (sent, touched, Duration::from_secs(1));
                    }
                }
                Outcome::Miss(_) => {
                    assert!(
                        answered + CLOCK_SLACK >= ttl_from.0 + ttl_from.2,
                        "gone before its TTL"
                    );
                    phases.note("gone");
                    break;
                }
                other => panic!("{other:?}"),
            }
            // Never stale, whatever the time.
            match conn.get_with(Flags::ALLOW_STALE, "never-stale").await {
                Outcome::Hit(_) | Outcome::Miss(_) => {}
                other => panic!("never-stale: {other:?}"),
            }
            deadline.tick().await;
        }
        // Each answer was checked against the clock above; a first read
        // later than the stale point (a stalled machine) sees no fresh phase.
        assert!(
            phases.seen == ["fresh", "stale", "gone"] || phases.seen == ["stale", "gone"],
            "{:?}",
            phases.seen
        );
        assert!(matches!(
            conn.get_with(Flags::ALLOW_STALE, "zero").await,
            Outcome::Hit(_)
        ));
    })
    .await;
}

/// While `k` is stale: v1 reads miss it, one LEASE reader gets the lease,
/// later ones the stale value without one, and TOUCH (to `ttl` seconds)
/// leaves it stale. Returns when the TOUCH was sent and answered.
async fn stale_reads(conn: &mut RawConn, other: &mut RawConn, ttl: u32) -> (Instant, Instant) {
    conn.get_miss("k").await;
    match conn.get_with(Flags::LEASE, "k").await {
        Outcome::Miss(miss) => assert!(miss.lease.token().is_some(), "the lease"),
        outcome => panic!("the first lease read: {outcome:?}"),
    }
    let both = Flags(Flags::ALLOW_STALE.0 | Flags::LEASE.0);
    match other.get_with(both, "k").await {
        Outcome::Stale(hit) => assert_eq!(hit.lease.token(), None, "held by the first"),
        outcome => panic!("a second lease read: {outcome:?}"),
    }
    // TOUCH resets the TTL but not the stale point.
    let sent = Instant::now();
    assert_eq!(conn.touch("k", ttl).await, Outcome::Ok);
    let touched = (sent, Instant::now());
    assert!(matches!(
        conn.get_with(Flags::ALLOW_STALE, "k").await,
        Outcome::Stale(_)
    ));
    touched
}

/// The lease holder's SET of a key stale by its window makes it fresh
/// again, with a new window.
#[tokio::test]
async fn the_lease_holders_refresh_makes_it_fresh_again() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        set_stale_after(&mut conn, "k", "old", 0, 1).await;
        let deadline = Deadline::new("the entry to turn stale", Duration::from_secs(4));
        let both = Flags(Flags::ALLOW_STALE.0 | Flags::LEASE.0);
        let (lease, fence) = loop {
            match conn.get_with(both, "k").await {
                Outcome::Hit(hit) => assert_eq!(hit.lease.token(), None),
                Outcome::Stale(hit) => break (hit.lease.token().expect("a lease"), hit.fence),
                other => panic!("{other:?}"),
            }
            deadline.tick().await;
        };
        let refresh = Set {
            lease: Some(lease),
            fence: Some(fence),
            stale_after: Some(60),
            ..set_cmd("k", "new", &[])
        };
        let outcome = conn.run(Command::Set(refresh)).await;
        assert!(matches!(outcome, Outcome::Stored { .. }), "{outcome:?}");
        match conn.get_with(both, "k").await {
            Outcome::Hit(hit) => {
                assert_eq!(hit.value, "new");
                assert_eq!(hit.lease.token(), None);
            }
            other => panic!("{other:?}"),
        }
    })
    .await;
}
