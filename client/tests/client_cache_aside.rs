//! Cache-aside through a [`Client`]: the fence from the miss goes into the
//! SET, a FENCED answer returns the value uncached, and an unavailable
//! cache costs a computation, not an error. Typed values with the `serde`
//! feature.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tagcached_client::{Client, Error, ErrorCode};

use support::{bounded, start_server, stop_server};

const TTL: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miss_is_computed_and_cached_and_a_hit_is_not_recomputed() {
    bounded(async {
        let server = start_server();
        let cache = Client::new(server.local_addr().to_string());
        let computed = AtomicUsize::new(0);
        for _ in 0..3 {
            let value = cache
                .get_or_set_with("page:home", ["page"], TTL, || async {
                    computed.fetch_add(1, Ordering::SeqCst);
                    "rendered"
                })
                .await
                .expect("value");
            assert_eq!(value, Bytes::from_static(b"rendered"));
        }
        assert_eq!(computed.load(Ordering::SeqCst), 1);
        let item = cache
            .get_with_tags("page:home")
            .await
            .expect("get")
            .into_item();
        assert_eq!(
            item.expect("cached").tags,
            vec![Bytes::from_static(b"page")]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_during_the_computation_returns_the_value_uncached() {
    bounded(async {
        let server = start_server();
        let cache = Client::new(server.local_addr().to_string());
        let value = cache
            .get_or_set_with("user:1:profile", ["user:1"], TTL, || async {
                // The source changes, and is invalidated, while we compute
                // from what we read before.
                cache.invalidate_tags(["user:1"]).await.expect("invalidate");
                "stale"
            })
            .await
            .expect("value");
        assert_eq!(value, Bytes::from_static(b"stale"));
        assert!(
            cache.get("user:1:profile").await.expect("get").is_none(),
            "FENCED, not cached"
        );
        let stats = cache.stats().await.remove(0).1.expect("stats");
        assert!(stats
            .iter()
            .any(|(name, value)| name == "set_fenced" && value == "1"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_computation_is_returned_and_nothing_is_stored() {
    bounded(async {
        #[derive(Debug)]
        enum AppError {
            Database,
            Cache(Error),
        }
        impl From<Error> for AppError {
            fn from(error: Error) -> AppError {
                AppError::Cache(error)
            }
        }
        let server = start_server();
        let cache = Client::new(server.local_addr().to_string());
        let result = cache
            .try_get_or_set_with("k", ["t"], TTL, || async {
                Err::<Bytes, _>(AppError::Database)
            })
            .await;
        assert!(matches!(result, Err(AppError::Database)));
        assert!(cache.get("k").await.expect("get").is_none());
        // A cache error that would recur is the caller's to see.
        let result = cache
            .try_get_or_set_with("k", ["bad tag"], TTL, || async { Ok::<_, AppError>("v") })
            .await;
        match result {
            Err(AppError::Cache(error)) => {
                assert_eq!(error.server_code(), Some(ErrorCode::TagInvalid))
            }
            other => panic!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_cache_costs_a_computation_not_an_error() {
    bounded(async {
        let server = start_server();
        let addr = server.local_addr().to_string();
        stop_server(server).await;
        let cache = Client::builder()
            .server(addr)
            .connect_timeout(Duration::from_millis(200))
            .build()
            .expect("client");
        let value = cache
            .get_or_set_with("k", ["t"], TTL, || async { "computed" })
            .await
            .expect("value despite the cache");
        assert_eq!(value, Bytes::from_static(b"computed"));
    })
    .await;
}

#[cfg(feature = "serde")]
mod typed {
    use tagcached_client::SetOptions;

    use super::*;

    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Profile {
        name: String,
        karma: u32,
        roles: Vec<String>,
    }

    fn ada() -> Profile {
        Profile {
            name: "Ada".into(),
            karma: 7,
            roles: vec!["admin".into()],
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn typed_values_round_trip() {
        bounded(async {
            let server = start_server();
            let cache = Client::new(server.local_addr().to_string());
            let options = SetOptions::new().tag("user:1");
            assert!(cache
                .set_as("user:1", &ada(), &options)
                .await
                .expect("set")
                .is_stored());
            assert_eq!(
                cache.get_as::<Profile>("user:1").await.expect("get"),
                Some(ada())
            );
            assert_eq!(cache.get_as::<Profile>("user:2").await.expect("get"), None);
            cache
                .set("not-a-profile", "\u{ff}", &options)
                .await
                .expect("set");
            let error = cache
                .get_as::<Profile>("not-a-profile")
                .await
                .expect_err("codec");
            assert!(matches!(error, Error::Codec(_)), "{error}");
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn typed_cache_aside_recomputes_a_value_of_another_shape() {
        bounded(async {
            let server = start_server();
            let cache = Client::new(server.local_addr().to_string());
            // An older deploy cached something else under the key.
            cache
                .set("user:1", "\u{ff}", &SetOptions::new())
                .await
                .expect("set");
            let computed = AtomicUsize::new(0);
            for _ in 0..2 {
                let profile: Profile = cache
                    .get_or_set_as("user:1", ["user:1"], TTL, || async {
                        computed.fetch_add(1, Ordering::SeqCst);
                        ada()
                    })
                    .await
                    .expect("profile");
                assert_eq!(profile, ada());
            }
            assert_eq!(
                computed.load(Ordering::SeqCst),
                1,
                "overwritten once, then a hit"
            );
        })
        .await;
    }
}
