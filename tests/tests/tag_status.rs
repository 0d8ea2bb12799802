//! TAG_STATUS (protocol.md §6.11): for each tag, its latest hard and soft
//! invalidations (sequence and Unix milliseconds) and the entries carrying
//! it, summed over shards.
//!
//! Times are bounded by the test's wall clock: the server numbers an
//! invalidation between the test sending it and receiving the OK.

use std::time::Duration;

use tagcached_protocol::request::Command;
use tagcached_protocol::response::{Outcome, TagState};
use tagcached_protocol::{ErrorCode, Flags, Limits};
use tagcached_tests::{
    assert_error, get_scoped_cmd, keys_on_shard, tag_status_cmd, unix_ms, within, TestServer,
};

/// The server's Unix times are its start time plus its monotonic clock,
/// in whole milliseconds: within a few milliseconds of the test's clock.
const CLOCK_SLACK_MS: u64 = 5;

fn assert_within(what: &str, at: u64, before: u64, after: u64) {
    assert!(
        at + CLOCK_SLACK_MS >= before && at <= after + CLOCK_SLACK_MS,
        "{what} {at} outside [{before}, {after}]"
    );
}

#[tokio::test]
async fn a_tag_never_invalidated_is_all_zeros_but_for_its_entries() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        for key in [keys_on_shard("c", 0, 2, 2), keys_on_shard("c", 1, 2, 1)].concat() {
            conn.store(&key, "v", &["carried"]).await;
        }
        let info = conn.tag_status(&["never", "carried"]).await;
        assert_eq!(info.statuses[0], TagState::default());
        assert_eq!(
            info.statuses[1],
            TagState {
                entries: 3,
                ..TagState::default()
            }
        );
    })
    .await;
}

#[tokio::test]
async fn hard_and_soft_invalidations_report_their_sequence_and_unix_time() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;

        let before = unix_ms();
        let hard = conn.invalidate(&["h", "both"]).await;
        let between = unix_ms();
        let soft = conn.invalidate_soft(&["s", "both"], 2).await;
        let after = unix_ms();

        let asked = unix_ms();
        let info = conn.tag_status(&["h", "s", "both"]).await;
        let answered = unix_ms();
        assert!(info.seq >= soft, "the current sequence");
        assert_within("now", info.now, asked, answered);
        let [h, s, both] = [info.statuses[0], info.statuses[1], info.statuses[2]];

        assert_eq!((h.entries, h.hard_seq, h.soft_seq), (0, hard, 0));
        assert_within("hard_at", h.hard_at, before, between);
        assert_eq!((h.soft_at, h.soft_until), (0, 0));

        assert_eq!(
            (s.entries, s.hard_seq, s.hard_at, s.soft_seq),
            (0, 0, 0, soft)
        );
        assert_within("soft_at", s.soft_at, between, after);
        assert_eq!(s.soft_until, s.soft_at + 2_000, "soft_at + the window");

        assert_eq!((both.hard_seq, both.hard_at), (hard, h.hard_at));
        assert_eq!(
            (both.soft_seq, both.soft_at, both.soft_until),
            (soft, s.soft_at, s.soft_until)
        );
        // One invalidation, one time, whichever shard reports it.
        let again = conn.tag_status(&["both"]).await.statuses[0];
        assert_eq!(again, both);
    })
    .await;
}

/// §8.3, "Windows of one tag": a second soft invalidation while the first
/// window is open reports its own sequence and time, and the end of the
/// first window, which is when the entries stored before it die.
#[tokio::test]
async fn a_second_soft_invalidation_within_the_window_reports_the_earlier_end() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        conn.invalidate_soft(&["t"], 60).await;
        let first = conn.tag_status(&["t"]).await.statuses[0];
        tokio::time::sleep(Duration::from_millis(5)).await;
        let second = conn.invalidate_soft(&["t"], 600).await;
        let status = conn.tag_status(&["t"]).await.statuses[0];
        assert_eq!(status.soft_seq, second);
        assert!(status.soft_at > first.soft_at);
        assert_eq!(status.soft_until, first.soft_until);
    })
    .await;
}

#[tokio::test]
async fn entries_are_counted_over_both_shards() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        let on_0 = keys_on_shard("e", 0, 2, 3);
        let on_1 = keys_on_shard("e", 1, 2, 2);
        for key in on_0.iter().chain(&on_1) {
            conn.store(key, "v", &["t", "t", "u"]).await;
        }
        conn.store("untagged", "v", &[]).await;
        // Read with a request-scoped tag: not stored with the entry.
        conn.run(get_scoped_cmd(&on_0[0], &["scoped"])).await;
        let entries = |info: tagcached_protocol::response::TagStatusInfo| {
            info.statuses
                .iter()
                .map(|status| status.entries)
                .collect::<Vec<_>>()
        };
        let info = conn.tag_status(&["t", "u", "scoped"]).await;
        assert_eq!(entries(info), [5, 5, 0]);
        conn.delete(&on_1[0]).await;
        conn.store(&on_0[0], "v", &["u"]).await;
        let info = conn.tag_status(&["t", "u"]).await;
        assert_eq!(entries(info), [3, 4]);
    })
    .await;
}

#[tokio::test]
async fn repeated_tags_are_answered_again_in_request_order() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        conn.store("k", "v", &["a"]).await;
        let seq = conn.invalidate(&["b"]).await;
        let info = conn.tag_status(&["a", "b", "a", "a"]).await;
        assert_eq!(info.statuses.len(), 4);
        assert_eq!(info.statuses[0].entries, 1);
        assert_eq!(info.statuses[1].hard_seq, seq);
        assert_eq!(info.statuses[2], info.statuses[0]);
        assert_eq!(info.statuses[3], info.statuses[0]);
    })
    .await;
}

/// `forgotten_seq` is at least the server's boot sequence, and
/// `forgotten_at` the server's start; a hard FLUSH_ALL raises them to its
/// own, a soft one leaves them.
#[tokio::test]
async fn forgotten_seq_is_at_least_the_boot_sequence_and_a_flush_raises_it() {
    within(async {
        let started = unix_ms();
        let server = TestServer::start();
        let running = unix_ms();
        let mut conn = server.connect().await;
        let boot = conn.get_miss("k").await.fence;
        let info = conn.tag_status(&["t"]).await;
        assert!(
            info.forgotten_seq >= boot,
            "{} < {boot}",
            info.forgotten_seq
        );
        assert_within("forgotten_at", info.forgotten_at, started, running);
        // The boot sequence is the boot time in Unix ms, shifted (§8.2).
        assert_within("boot sequence >> 20", boot >> 20, started, running);

        let before = unix_ms();
        let flush = conn.flush_all().await;
        let after = unix_ms();
        let info = conn.tag_status(&["t"]).await;
        assert_eq!(info.forgotten_seq, flush);
        assert_within("forgotten_at", info.forgotten_at, before, after);

        // A soft one forgets nothing: it leaves them as they are.
        conn.flush_all_soft(60).await;
        let soft = conn.tag_status(&["t"]).await;
        assert_eq!(
            (soft.forgotten_seq, soft.forgotten_at),
            (info.forgotten_seq, info.forgotten_at)
        );
    })
    .await;
}

#[tokio::test]
async fn bad_tag_lists_are_refused() {
    within(async {
        let limits = Limits {
            max_tags: 3,
            ..Limits::default()
        }
        .with_fitted_max_frame();
        let server = TestServer::with_config(|config| config.limits = limits);
        let mut conn = server.connect().await;
        assert_error(&conn.run(tag_status_cmd(&[])).await, ErrorCode::Malformed);
        assert_error(
            &conn.run(tag_status_cmd(&["a", "a", "a", "a"])).await,
            ErrorCode::TooManyTags,
        );
        assert_error(
            &conn.run(tag_status_cmd(&["ok", "not ok"])).await,
            ErrorCode::TagInvalid,
        );
        assert_error(
            &conn.run_with(Flags::QUIET, tag_status_cmd(&["a"])).await,
            ErrorCode::BadFlags,
        );
        assert_eq!(conn.tag_status(&["a", "b", "c"]).await.statuses.len(), 3);
        assert_eq!(conn.run(Command::Noop).await, Outcome::Ok);
    })
    .await;
}
