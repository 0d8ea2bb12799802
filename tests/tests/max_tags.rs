//! `max_tags` counts tags as sent, repeats included (protocol.md §7, §8.1),
//! checked on `tag_count` before any tag is read.

use bytes::Bytes;
use tagcached_protocol::response::Outcome;
use tagcached_protocol::{ErrorCode, Flags, Limits};
use tagcached_tests::{assert_error, get_cmd, invalidate_cmd, within, TestServer};

const MAX_TAGS: u32 = 3;

fn server() -> TestServer {
    TestServer::with_config(|config| {
        config.limits = Limits {
            max_tags: MAX_TAGS,
            ..Limits::default()
        }
        .with_fitted_max_frame();
    })
}

#[tokio::test]
async fn repeated_tags_count_against_max_tags_but_are_stored_once() {
    within(async {
        let server = server();
        let mut conn = server.connect().await;
        assert_eq!(conn.hello(None).await.limits.max_tags, MAX_TAGS);

        // As many as the limit, all the same: stored, as one tag.
        conn.store("k", "v", &["t", "t", "t"]).await;
        match conn.run_with(Flags::WITH_TAGS, get_cmd("k")).await {
            Outcome::Hit(hit) => assert_eq!(hit.tags, vec![Bytes::from_static(b"t")]),
            other => panic!("GET answered {other:?}"),
        }

        // One more repeat is one too many, and nothing is stored.
        let outcome = conn.set("k", "replaced", &["t"; 4], 0, None).await;
        assert_error(&outcome, ErrorCode::TooManyTags);
        // The count is checked before the tags: a bad tag among too many
        // is still TOO_MANY_TAGS.
        let outcome = conn
            .set("k", "replaced", &["t", "t", "t", "bad tag"], 0, None)
            .await;
        assert_error(&outcome, ErrorCode::TooManyTags);
        assert_eq!(conn.value("k").await.as_deref(), Some(&b"v"[..]));

        // The same for INVALIDATE_TAGS: four copies of one tag are refused
        // and invalidate nothing; three are one invalidation.
        assert_error(
            &conn.run(invalidate_cmd(&["t"; 4])).await,
            ErrorCode::TooManyTags,
        );
        assert_eq!(conn.value("k").await.as_deref(), Some(&b"v"[..]));
        conn.invalidate(&["t"; 3]).await;
        conn.get_miss("k").await;
    })
    .await;
}
