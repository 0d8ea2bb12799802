//! Request-scoped tags (protocol.md §8.5): tags a GET or GETM names that are
//! checked against the entries it reads as if they carried them, for that
//! read only.

use tagcached_protocol::request::Command;
use tagcached_protocol::response::Outcome;
use tagcached_protocol::{ErrorCode, Flags, Limits, Request};
use tagcached_tests::{
    assert_error, get_many_scoped_cmd, get_scoped_cmd, keys_on_both_shards, within, RawConn,
    TestServer,
};

async fn scoped(conn: &mut RawConn, flags: Flags, key: &str, tags: &[&str]) -> Outcome {
    conn.run_with(flags, get_scoped_cmd(key, tags)).await
}

#[tokio::test]
async fn a_hard_invalidation_of_a_request_tag_makes_older_entries_misses_to_that_read_only() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        let keys = keys_on_both_shards("scoped-hard");
        for key in &keys {
            conn.store(key, "old", &["own"]).await;
        }
        conn.invalidate(&["_N_T_/blog"]).await;
        for key in &keys {
            conn.store(format!("{key}-after"), "new", &["own"]).await;
        }
        for key in &keys {
            for flags in [Flags::NONE, Flags::ALLOW_STALE] {
                let outcome = scoped(&mut conn, flags, key, &["_N_T_/blog"]).await;
                assert!(matches!(outcome, Outcome::Miss(_)), "{key}: {outcome:?}");
            }
            // Other reads are unaffected, and the entry is still there.
            assert_eq!(conn.get_hit(key).await.value, "old");
            let other = scoped(&mut conn, Flags::NONE, key, &["_N_T_/other", "own"]).await;
            assert!(matches!(other, Outcome::Hit(_)), "{key}: {other:?}");
            // Stored after the invalidation: fresh to the same read.
            let after = format!("{key}-after");
            let outcome = scoped(&mut conn, Flags::NONE, &after, &["_N_T_/blog"]).await;
            assert!(matches!(outcome, Outcome::Hit(_)), "{after}: {outcome:?}");
        }

        // GETM: the tags apply to every key.
        let names: Vec<String> = keys
            .iter()
            .flat_map(|key| [key.clone(), format!("{key}-after")])
            .collect();
        let opaque = conn.next_opaque();
        conn.send(&Request::new(
            opaque,
            get_many_scoped_cmd(&names, &["_N_T_/blog"]),
        ))
        .await;
        for (index, name) in names.iter().enumerate() {
            let response = conn.recv().await;
            match (index % 2, &response.outcome) {
                (0, Outcome::Miss(miss)) => assert_eq!(miss.key_index, Some(index as u16)),
                (1, Outcome::Hit(hit)) => assert_eq!(hit.key_index, Some(index as u16)),
                (_, outcome) => panic!("{name}: {outcome:?}"),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_soft_invalidation_of_a_request_tag_makes_older_entries_stale_to_that_read_only() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        let mut other = server.connect().await;
        let keys = keys_on_both_shards("scoped-soft");
        for key in &keys {
            conn.store(key, "old", &["own"]).await;
        }
        conn.invalidate_soft(&["_N_T_/blog"], 600).await;
        let both = Flags(Flags::ALLOW_STALE.0 | Flags::LEASE.0);
        for key in &keys {
            let tags = ["_N_T_/blog"];
            let outcome = scoped(&mut conn, Flags::NONE, key, &tags).await;
            assert!(matches!(outcome, Outcome::Miss(_)), "{key}: {outcome:?}");
            match scoped(&mut conn, Flags::ALLOW_STALE, key, &tags).await {
                Outcome::Stale(hit) => assert_eq!(hit.value, "old"),
                outcome => panic!("{key}: {outcome:?}"),
            }
            match scoped(&mut conn, both, key, &tags).await {
                Outcome::Stale(hit) => assert!(hit.lease.token().is_some(), "{key}: a lease"),
                outcome => panic!("{key}: {outcome:?}"),
            }
            match scoped(&mut other, both, key, &tags).await {
                Outcome::Stale(hit) => assert_eq!(hit.lease.token(), None, "{key}: held"),
                outcome => panic!("{key}: {outcome:?}"),
            }
            // Fresh to every read without the tag.
            assert_eq!(conn.get_hit(key).await.value, "old");
            match conn.get_with(Flags::ALLOW_STALE, key).await {
                Outcome::Hit(hit) => assert_eq!(hit.value, "old"),
                outcome => panic!("{key}: {outcome:?}"),
            }
        }
    })
    .await;
}

/// A tag the server has never seen reads as invalidated at the floor, the
/// server's start, so it spares every entry stored since; so does a tag
/// entries carry but nobody invalidated, and an empty list.
#[tokio::test]
async fn tags_never_invalidated_leave_the_entry_fresh() {
    within(async {
        let server = TestServer::start();
        let mut conn = server.connect().await;
        for key in keys_on_both_shards("scoped-unknown") {
            conn.store(&key, "v", &["carried"]).await;
            for tags in [&["never-seen"][..], &["carried"], &[]] {
                let outcome = scoped(&mut conn, Flags::NONE, &key, tags).await;
                assert!(
                    matches!(outcome, Outcome::Hit(_)),
                    "{key} {tags:?}: {outcome:?}"
                );
            }
        }
        let status = conn.tag_status(&["never-seen"]).await.statuses[0];
        assert_eq!(status, Default::default(), "reading a tag stores nothing");
    })
    .await;
}

/// §6.3, §7: a request's scoped tags count against `max_tags` as sent,
/// repeats included, and each must be a valid tag; a bad GETM gets one
/// error frame.
#[tokio::test]
async fn too_many_or_invalid_request_tags_are_refused() {
    within(async {
        let limits = Limits {
            max_tags: 4,
            ..Limits::default()
        }
        .with_fitted_max_frame();
        let server = TestServer::with_config(|config| config.limits = limits);
        let mut conn = server.connect().await;
        conn.store("k", "v", &[]).await;
        let four = ["a", "b", "c", "d"];
        assert!(matches!(
            scoped(&mut conn, Flags::NONE, "k", &four).await,
            Outcome::Hit(_)
        ));
        for tags in [&["a", "b", "c", "d", "e"][..], &["a"; 5]] {
            assert_error(
                &scoped(&mut conn, Flags::NONE, "k", tags).await,
                ErrorCode::TooManyTags,
            );
            let getm = get_many_scoped_cmd(&["k", "k"], tags);
            assert_error(&conn.run(getm).await, ErrorCode::TooManyTags);
        }
        for bad in ["has space", "", "bell\u{7}", "tab\t"] {
            assert_error(
                &scoped(&mut conn, Flags::NONE, "k", &["ok", bad]).await,
                ErrorCode::TagInvalid,
            );
            let getm = get_many_scoped_cmd(&["k", "k"], &[bad]);
            assert_error(&conn.run(getm).await, ErrorCode::TagInvalid);
        }
        // One error frame each: the connection is in step.
        conn.ping().await;
        assert_eq!(conn.run(Command::Noop).await, Outcome::Ok);
    })
    .await;
}
