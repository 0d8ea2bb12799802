//! What a GET or GETM answers, by what it finds under the key and who holds
//! the key's refresh lease, for each combination of ALLOW_STALE and LEASE:
//! every row and column of protocol.md §6.3's table, and the QUIET rules of
//! §5 for reads that ask for leases.

use tagcached_protocol::request::Command;
use tagcached_protocol::response::{Lease, Outcome};
use tagcached_protocol::{Flags, Request};
use tagcached_tests::{get_cmd, get_many_cmd, within, RawConn, TestServer};

/// The stale window of the soft invalidation that makes entries stale here:
/// far longer than any test, so nothing dies while it runs.
const WINDOW: u32 = 600;
/// The tag of every entry made stale.
const STALE_TAG: &str = "made-stale";

/// What a read finds under its key: the rows of §6.3's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Found {
    Fresh,
    StaleLeaseFree,
    StaleLeaseHeld,
    NoneLeaseFree,
    NoneLeaseHeld,
}

const ROWS: [Found; 5] = [
    Found::Fresh,
    Found::StaleLeaseFree,
    Found::StaleLeaseHeld,
    Found::NoneLeaseFree,
    Found::NoneLeaseHeld,
];

/// The columns of §6.3's table.
const COLUMNS: [Flags; 4] = [
    Flags::NONE,
    Flags::ALLOW_STALE,
    Flags::LEASE,
    Flags(Flags::ALLOW_STALE.0 | Flags::LEASE.0),
];

/// An answer of §6.3's table. "With a lease" means a token; the others,
/// when the read asked for a lease, carry 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Hit,
    Stale,
    StaleWithLease,
    Miss,
    MissWithLease,
    HotMiss,
}

impl Expect {
    fn grants(self) -> bool {
        matches!(self, Expect::StaleWithLease | Expect::MissWithLease)
    }
}

/// protocol.md §6.3's table, cell by cell.
fn expected(found: Found, flags: Flags) -> Expect {
    let stale = flags.contains(Flags::ALLOW_STALE);
    let lease = flags.contains(Flags::LEASE);
    match (found, stale, lease) {
        (Found::Fresh, _, _) => Expect::Hit,
        (Found::StaleLeaseFree, false, false) => Expect::Miss,
        (Found::StaleLeaseFree, true, false) => Expect::Stale,
        (Found::StaleLeaseFree, false, true) => Expect::MissWithLease,
        (Found::StaleLeaseFree, true, true) => Expect::StaleWithLease,
        (Found::StaleLeaseHeld, false, false) => Expect::Miss,
        (Found::StaleLeaseHeld, true, false) => Expect::Stale,
        (Found::StaleLeaseHeld, false, true) => Expect::HotMiss,
        (Found::StaleLeaseHeld, true, true) => Expect::Stale,
        (Found::NoneLeaseFree, _, false) => Expect::Miss,
        (Found::NoneLeaseFree, _, true) => Expect::MissWithLease,
        (Found::NoneLeaseHeld, _, false) => Expect::Miss,
        (Found::NoneLeaseHeld, _, true) => Expect::HotMiss,
    }
}

fn value_of(key: &str) -> String {
    format!("value-of-{key}")
}

/// Checks `outcome` against `expect` for a read sent with `flags` of `key`
/// (GETM: at `key_index`), its lease field included.
fn check(outcome: &Outcome, expect: Expect, flags: Flags, key: &str, key_index: Option<u16>) {
    let asked = flags.contains(Flags::LEASE);
    let (status_ok, lease, index) = match (expect, outcome) {
        (Expect::Hit, Outcome::Hit(hit))
        | (Expect::Stale | Expect::StaleWithLease, Outcome::Stale(hit)) => {
            assert_eq!(hit.value, value_of(key), "{key}: the stored value");
            (true, hit.lease, hit.key_index)
        }
        (Expect::Miss | Expect::MissWithLease, Outcome::Miss(miss))
        | (Expect::HotMiss, Outcome::HotMiss(miss)) => (true, miss.lease, miss.key_index),
        _ => (false, Lease::NotRequested, None),
    };
    assert!(
        status_ok,
        "{key} read with flags {flags:?}: expected {expect:?}, got {outcome:?}"
    );
    assert_eq!(index, key_index, "{key}: key_index");
    match (asked, expect.grants(), lease) {
        (false, _, Lease::NotRequested) => {}
        (true, false, Lease::NotGranted) => {}
        (true, true, Lease::Granted(token)) => assert_ne!(token.get(), 0),
        _ => panic!("{key} read with flags {flags:?}: {expect:?} with lease field {lease:?}"),
    }
}

/// Puts `key` in the state `found`, except for the soft invalidation that
/// makes stale rows stale: the caller sends it once every key is stored,
/// then calls [`hold_leases`].
async fn prepare(conn: &mut RawConn, key: &str, found: Found) {
    match found {
        Found::Fresh => {
            conn.store(key, value_of(key), &["kept"]).await;
        }
        Found::StaleLeaseFree | Found::StaleLeaseHeld => {
            conn.store(key, value_of(key), &[STALE_TAG, "kept"]).await;
        }
        Found::NoneLeaseFree | Found::NoneLeaseHeld => {}
    }
}

/// Has `holder` take the lease on every key whose row says it is held.
async fn hold_leases(holder: &mut RawConn, keys: &[(String, Found)]) {
    for (key, found) in keys {
        if matches!(found, Found::StaleLeaseHeld | Found::NoneLeaseHeld) {
            match holder.get_with(Flags::LEASE, key).await {
                Outcome::Miss(miss) => assert!(miss.lease.token().is_some(), "{key}"),
                other => panic!("{key}: the holder got {other:?}"),
            }
        }
    }
}

/// After a read of `key` (in state `found`) answered `expect`: a read that
/// finds a stale entry leaves it in place, a read granted a lease holds it,
/// and a read that did not ask for one left a free lease free.
async fn check_after(other: &mut RawConn, key: &str, found: Found, flags: Flags, expect: Expect) {
    if matches!(found, Found::StaleLeaseFree | Found::StaleLeaseHeld) {
        match other.get_with(Flags::ALLOW_STALE, key).await {
            Outcome::Stale(hit) => assert_eq!(hit.value, value_of(key)),
            outcome => panic!("{key}: the stale entry is gone after a read: {outcome:?}"),
        }
    }
    let lease_read = other.get_with(Flags::LEASE, key).await;
    let free_before = matches!(found, Found::StaleLeaseFree | Found::NoneLeaseFree);
    match (found, expect.grants(), &lease_read) {
        (Found::Fresh, _, Outcome::Hit(_)) => {}
        (_, true, Outcome::HotMiss(_)) => {}
        (_, false, Outcome::HotMiss(_)) if !free_before => {}
        (_, false, Outcome::Miss(miss)) if free_before => {
            assert!(
                miss.lease.token().is_some(),
                "{key}: a free lease is granted"
            );
        }
        _ => panic!(
            "{key} ({found:?}) after a read with {flags:?} answered {expect:?}: \
             a lease read got {lease_read:?}"
        ),
    }
}

#[tokio::test]
async fn get_answers_every_cell_of_the_read_table() {
    within(async {
        let server = TestServer::start();
        let mut writer = server.connect().await;
        let mut holder = server.connect().await;
        let mut reader = server.connect().await;
        let mut cells = Vec::new();
        for (row, found) in ROWS.iter().enumerate() {
            for (column, flags) in COLUMNS.iter().enumerate() {
                let key = format!("get-{row}-{column}");
                prepare(&mut writer, &key, *found).await;
                cells.push((key, *found, *flags));
            }
        }
        writer.invalidate_soft(&[STALE_TAG], WINDOW).await;
        let keys: Vec<(String, Found)> = cells.iter().map(|(k, f, _)| (k.clone(), *f)).collect();
        hold_leases(&mut holder, &keys).await;

        for (key, found, flags) in &cells {
            let expect = expected(*found, *flags);
            let outcome = reader.get_with(*flags, key).await;
            check(&outcome, expect, *flags, key, None);
            check_after(&mut holder, key, *found, *flags, expect).await;
        }
    })
    .await;
}

#[tokio::test]
async fn getm_answers_every_cell_of_the_read_table_key_by_key() {
    within(async {
        let server = TestServer::start();
        let mut writer = server.connect().await;
        let mut holder = server.connect().await;
        let mut reader = server.connect().await;
        let mut columns = Vec::new();
        for (column, flags) in COLUMNS.iter().enumerate() {
            let mut keys = Vec::new();
            for (row, found) in ROWS.iter().enumerate() {
                let key = format!("getm-{row}-{column}");
                prepare(&mut writer, &key, *found).await;
                keys.push((key, *found));
            }
            columns.push((*flags, keys));
        }
        writer.invalidate_soft(&[STALE_TAG], WINDOW).await;
        for (_, keys) in &columns {
            hold_leases(&mut holder, keys).await;
        }

        for (flags, keys) in &columns {
            let names: Vec<&str> = keys.iter().map(|(key, _)| key.as_str()).collect();
            let opaque = reader.next_opaque();
            let request = Request {
                opaque,
                flags: *flags,
                command: get_many_cmd(&names),
            };
            reader.send(&request).await;
            for (index, (key, found)) in keys.iter().enumerate() {
                let response = reader.recv().await;
                assert_eq!(response.opaque, opaque);
                let expect = expected(*found, *flags);
                check(&response.outcome, expect, *flags, key, Some(index as u16));
            }
            reader.ping().await;
            for (key, found) in keys {
                check_after(&mut holder, key, *found, *flags, expected(*found, *flags)).await;
            }
        }
    })
    .await;
}

/// §6.4: a key named twice is read twice, in order; with LEASE the second
/// read finds the lease the first was granted.
#[tokio::test]
async fn getm_reads_a_key_named_twice_twice_and_the_second_finds_the_first_ones_lease() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        conn.store("fresh", value_of("fresh"), &[]).await;
        for key in ["stale-a", "stale-b"] {
            conn.store(key, value_of(key), &[STALE_TAG]).await;
        }
        conn.invalidate_soft(&[STALE_TAG], WINDOW).await;
        let both = Flags(Flags::ALLOW_STALE.0 | Flags::LEASE.0);
        for (key, flags, first, second) in [
            (
                "absent",
                Flags::LEASE,
                Expect::MissWithLease,
                Expect::HotMiss,
            ),
            ("absent-2", both, Expect::MissWithLease, Expect::HotMiss),
            (
                "stale-a",
                Flags::LEASE,
                Expect::MissWithLease,
                Expect::HotMiss,
            ),
            ("stale-b", both, Expect::StaleWithLease, Expect::Stale),
            ("fresh", Flags::LEASE, Expect::Hit, Expect::Hit),
        ] {
            let opaque = conn.next_opaque();
            let command = get_many_cmd(&[key, key]);
            conn.send(&Request {
                opaque,
                flags,
                command,
            })
            .await;
            let answers = [conn.recv().await, conn.recv().await];
            check(&answers[0].outcome, first, flags, key, Some(0));
            check(&answers[1].outcome, second, flags, key, Some(1));
        }
    })
    .await;
}

/// §5: with QUIET, a MISS that grants no lease is left out; a MISS granting
/// a lease, a HOT_MISS, a HIT and a STALE are sent.
#[tokio::test]
async fn quiet_reads_leave_out_only_the_misses_that_grant_no_lease() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        let mut holder = server.connect().await;
        conn.store("fresh", value_of("fresh"), &[]).await;
        conn.store("stale", value_of("stale"), &[STALE_TAG]).await;
        conn.invalidate_soft(&[STALE_TAG], WINDOW).await;
        assert!(matches!(
            holder.get_with(Flags::LEASE, "held").await,
            Outcome::Miss(_)
        ));

        // GETM with LEASE: every miss grants a lease or is hot; all are sent.
        let quiet_lease = Flags(Flags::QUIET.0 | Flags::LEASE.0);
        let keys = ["absent", "fresh", "held", "absent"];
        let batch = [
            Request {
                opaque: 1,
                flags: quiet_lease,
                command: get_many_cmd(&keys),
            },
            Request::new(2, Command::Noop),
        ];
        conn.send_batch(&batch).await;
        for (index, expect) in [
            Expect::MissWithLease,
            Expect::Hit,
            Expect::HotMiss,
            Expect::HotMiss,
        ]
        .into_iter()
        .enumerate()
        {
            let response = conn.recv().await;
            assert_eq!(response.opaque, 1);
            check(
                &response.outcome,
                expect,
                quiet_lease,
                keys[index],
                Some(index as u16),
            );
        }
        assert_eq!(conn.recv().await.outcome, Outcome::Ok, "the NOOP");

        // Without LEASE the misses grant nothing and are left out; a stale
        // entry is a miss unless ALLOW_STALE asks for it.
        let keys = ["absent-2", "fresh", "stale"];
        let quiet_stale = Flags(Flags::QUIET.0 | Flags::ALLOW_STALE.0);
        let batch = [
            Request {
                opaque: 3,
                flags: Flags::QUIET,
                command: get_many_cmd(&keys),
            },
            Request {
                opaque: 4,
                flags: quiet_stale,
                command: get_many_cmd(&keys),
            },
            Request::new(5, Command::Noop),
        ];
        conn.send_batch(&batch).await;
        let response = conn.recv().await;
        assert_eq!(response.opaque, 3);
        check(
            &response.outcome,
            Expect::Hit,
            Flags::QUIET,
            "fresh",
            Some(1),
        );
        for (index, expect) in [(1, Expect::Hit), (2, Expect::Stale)] {
            let response = conn.recv().await;
            assert_eq!(response.opaque, 4);
            check(
                &response.outcome,
                expect,
                quiet_stale,
                keys[index],
                Some(index as u16),
            );
        }
        assert_eq!(conn.recv().await.outcome, Outcome::Ok, "the NOOP");

        // GET alike: a quiet miss granting a lease is sent, one granting
        // none is not.
        let batch = [
            Request {
                opaque: 6,
                flags: Flags::QUIET,
                command: get_cmd("absent-3"),
            },
            Request {
                opaque: 7,
                flags: quiet_lease,
                command: get_cmd("absent-3"),
            },
            Request {
                opaque: 8,
                flags: quiet_lease,
                command: get_cmd("absent-3"),
            },
            Request::new(9, Command::Noop),
        ];
        conn.send_batch(&batch).await;
        let granted = conn.recv().await;
        assert_eq!(granted.opaque, 7);
        check(
            &granted.outcome,
            Expect::MissWithLease,
            quiet_lease,
            "absent-3",
            None,
        );
        let hot = conn.recv().await;
        assert_eq!(hot.opaque, 8);
        check(&hot.outcome, Expect::HotMiss, quiet_lease, "absent-3", None);
        assert_eq!(conn.recv().await.outcome, Outcome::Ok, "the NOOP");
    })
    .await;
}
