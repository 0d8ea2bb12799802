//! Invalidated tags that no entry carries give way to entries: a flood of
//! invalidations of never-used tags does not empty the cache (issue 8,
//! item 6).

use tagcached_protocol::request::Command;
use tagcached_protocol::response::Outcome;
use tagcached_protocol::{Flags, Request};
use tagcached_tests::{invalidate_cmd, request, set_cmd, within, RawConn, TestServer};

const MIB: usize = 1 << 20;
/// About what a 64 MiB cache holds of 1 KiB values.
const SETS: usize = 60_000;
const VALUE: usize = 1024;
const INVALIDATIONS_PER_SET: usize = 2;
const TAG_LEN: usize = 1000;
/// SETs per pipelined round trip.
const BATCH: usize = 250;

/// Sends `requests` pipelined, all quiet, and waits for the NOOP that ends
/// them.
async fn send_quietly(conn: &mut RawConn, mut requests: Vec<Request>) {
    requests.push(Request::new(u32::MAX, Command::Noop));
    conn.send_batch(&requests).await;
    let response = conn.recv().await;
    assert_eq!(
        (response.opaque, response.outcome),
        (u32::MAX, Outcome::Ok),
        "every quiet SET and INVALIDATE_TAGS succeeded"
    );
}

/// An INVALIDATE_TAGS of the `n`th never-used 1,000-byte tag, quiet.
fn invalidate_junk(n: usize) -> Request {
    let tag = format!("{n:0>TAG_LEN$}");
    request(u32::MAX - 1, Flags::QUIET, invalidate_cmd(&[&tag]))
}

/// Into a fresh 64 MiB server: `invalidations_first` invalidations of
/// distinct tags no entry carries, then `SETS` 1 KiB values, each followed by
/// `invalidations_per_set` more such invalidations, all quiet and pipelined.
/// Returns the entries the server then holds.
async fn entries_kept(invalidations_first: usize, invalidations_per_set: usize) -> u64 {
    let server = TestServer::with_config(|config| config.memory = 64 * MIB);
    let mut conn = server.connect().await;
    let mut junk = 0usize;
    while junk < invalidations_first {
        let end = (junk + BATCH * 2).min(invalidations_first);
        send_quietly(&mut conn, (junk..end).map(invalidate_junk).collect()).await;
        junk = end;
    }
    let value = vec![b'v'; VALUE];
    for start in (0..SETS).step_by(BATCH) {
        let mut requests = Vec::with_capacity(BATCH * (1 + invalidations_per_set) + 1);
        for i in start..(start + BATCH).min(SETS) {
            let set = set_cmd(format!("page-{i}"), &value, &[]);
            requests.push(request(i as u32, Flags::QUIET, Command::Set(set)));
            for _ in 0..invalidations_per_set {
                requests.push(invalidate_junk(junk));
                junk += 1;
            }
        }
        send_quietly(&mut conn, requests).await;
    }
    let stats = conn.stats().await;
    assert_eq!(stats.num("cmd_set"), SETS as u64);
    assert!(stats.num("bytes") <= stats.num("limit_maxbytes"));
    stats.num("curr_items")
}

/// Regression: 120,000 invalidations of never-used 1,000-byte tags left a
/// 64 MiB cache holding 18 one-KiB entries instead of about 60,000: the
/// tags counted against the budget and a SET evicted live entries before
/// it dropped them. Before the fix this test measured, of 59,928 entries
/// that fit, 2 kept after the invalidations and 12,012 with them
/// interleaved.
#[tokio::test]
async fn invalidating_never_used_tags_does_not_empty_the_cache() {
    within(async {
        let fit = entries_kept(0, 0).await;
        let invalidations = SETS * INVALIDATIONS_PER_SET;
        let after = entries_kept(invalidations, 0).await;
        let interleaved = entries_kept(0, INVALIDATIONS_PER_SET).await;
        eprintln!(
            "of {fit} entries that fit: {after} kept after {invalidations} invalidations, \
             {interleaved} with them interleaved"
        );
        for kept in [after, interleaved] {
            assert!(
                kept * 10 >= fit * 9,
                "kept {kept} of the {fit} entries that fit without the invalidations"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn invalidated_tags_no_entry_carries_hold_at_most_a_sixteenth_of_memory() {
    within(async {
        let memory = 64 * MIB;
        let server = TestServer::with_config(|config| config.memory = memory);
        let mut conn = server.connect().await;
        // 10 MB of tag names, past the 4 MiB share.
        const INVALIDATIONS: usize = 10_000;
        for start in (0..INVALIDATIONS).step_by(BATCH) {
            let end = (start + BATCH).min(INVALIDATIONS);
            send_quietly(&mut conn, (start..end).map(invalidate_junk).collect()).await;
        }
        let stats = conn.stats().await;
        assert!(
            stats.num("bytes") <= (memory / 16) as u64,
            "{} bytes of tags",
            stats.num("bytes")
        );
        let tracked = stats.num("tags_tracked");
        assert!(
            (1_000..INVALIDATIONS as u64).contains(&tracked),
            "the most recent are kept for fenced SETs, within the share: {tracked}"
        );
    })
    .await;
}
