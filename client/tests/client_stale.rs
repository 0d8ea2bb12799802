//! Stale-while-revalidate through the client, against a real server: soft
//! invalidation, stale reads, refresh leases and the SETs they refuse,
//! request-scoped tags, TAG_STATUS, and cache-aside serving the stale copy
//! while one caller refreshes it (protocol.md §6.11, §8.3 to §8.5).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::future::join_all;
use tagcached::Server;
use tagcached_client::{
    Client, Connection, Error, FetchOptions, FetchOutcome, Lookup, ReadOptions, Reply, SetOptions,
    SetOutcome,
};

use support::{bounded, eventually, start_server};

const READERS: usize = 100;

/// How far the server's wall clock may be from this process's.
const CLOCKS_AGREE: Duration = Duration::from_secs(1);

fn value(lookup: &Lookup) -> Option<&[u8]> {
    lookup.item().map(|item| &item.value[..])
}

/// Two servers, and a client of both.
fn two_servers() -> ([Server; 2], Client) {
    let servers = [start_server(), start_server()];
    let cache = Client::builder()
        .servers(servers.iter().map(|server| server.local_addr().to_string()))
        .build()
        .expect("client");
    (servers, cache)
}

/// Reads `key` with stale data allowed until it misses, checking it is
/// stale until then; fails after `limit`.
async fn stale_until_it_misses(cache: &Client, key: &str, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let read = cache
            .get_with(key, &ReadOptions::new().allow_stale())
            .await
            .expect("read");
        if matches!(read, Lookup::Miss { .. }) {
            return;
        }
        assert!(read.is_stale(), "{key} is stale until it misses: {read:?}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "{key} was still stale after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Issue 9: after a soft invalidation, a crowd of readers all get the stale
/// copy and exactly one of them is granted the lease to refresh it; once
/// its SET lands everyone reads the fresh value; once the window has
/// passed, what was not refreshed misses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_soft_invalidation_readers_get_the_stale_copy_and_one_the_lease() {
    bounded(async {
        let server = start_server();
        let cache = Client::new(server.local_addr().to_string());
        let tagged = SetOptions::new().tag("posts");
        for key in ["page", "untouched"] {
            assert!(cache
                .set(key, "v1", &tagged)
                .await
                .expect("set")
                .is_stored());
        }
        let window = Duration::from_secs(3);
        cache
            .soft_invalidate_tags(["posts"], window)
            .await
            .expect("soft invalidation");

        let stale_and_leased = ReadOptions::new().allow_stale().lease();
        let reads = join_all((0..READERS).map(|_| cache.get_with("page", &stale_and_leased))).await;
        let reads: Vec<Lookup> = reads.into_iter().map(|read| read.expect("read")).collect();
        assert!(
            reads
                .iter()
                .all(|read| read.is_stale() && value(read) == Some(b"v1")),
            "every reader gets the stale copy: {reads:?}"
        );
        let holders: Vec<&Lookup> = reads.iter().filter(|read| read.lease().is_some()).collect();
        assert_eq!(holders.len(), 1, "exactly one reader may refresh");
        // A plain read sees the soft invalidation as a hard one.
        assert!(cache.get("page").await.expect("get").is_none());

        let mut refresh = SetOptions::new().tag("posts").fence(holders[0].fence());
        refresh.lease = holders[0].lease();
        let stored = cache.set("page", "v2", &refresh).await.expect("set");
        assert!(stored.is_stored(), "{stored:?}");
        let reads = join_all((0..READERS).map(|_| cache.get_with("page", &stale_and_leased))).await;
        for read in reads {
            let read = read.expect("read");
            assert!(read.is_hit() && value(&read) == Some(b"v2"), "{read:?}");
        }

        stale_until_it_misses(&cache, "untouched", window * 3).await;
        let refreshed = cache.get("page").await.expect("get").expect("still fresh");
        assert_eq!(refreshed.value, Bytes::from_static(b"v2"));
    })
    .await;
}

/// Issue 9: cache-aside with `serve_stale`: of a hundred concurrent
/// fetches after a soft invalidation, ninety-nine are served the stale copy
/// at once while the hundredth, the lease holder, recomputes; the value is
/// computed once, and every fetch afterwards is a hit on the fresh value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_aside_serves_the_stale_copy_while_exactly_one_caller_recomputes() {
    bounded(async {
        let server = start_server();
        let cache = Client::new(server.local_addr().to_string());
        let options = FetchOptions::new().tag("posts").serve_stale(true);
        let old = cache
            .fetch("page", &options, |_| async { Ok::<_, Error>("v1") })
            .await
            .expect("first fetch");
        assert_eq!(old.outcome, FetchOutcome::Computed);
        cache
            .soft_invalidate_tags(["posts"], Duration::from_secs(60))
            .await
            .expect("soft invalidation");

        let computations = AtomicUsize::new(0);
        let served_stale = AtomicUsize::new(0);
        let fetches = join_all((0..READERS).map(|_| async {
            let fetched = cache
                .fetch("page", &options, |_| async {
                    computations.fetch_add(1, Ordering::SeqCst);
                    // Every other caller is served the stale copy while
                    // this one computes.
                    eventually(Duration::from_secs(10), "the others served", || {
                        served_stale.load(Ordering::SeqCst) == READERS - 1
                    })
                    .await;
                    Ok::<_, Error>("v2")
                })
                .await
                .expect("fetch");
            if fetched.outcome == FetchOutcome::Stale {
                served_stale.fetch_add(1, Ordering::SeqCst);
            }
            fetched
        }))
        .await;

        assert_eq!(computations.load(Ordering::SeqCst), 1);
        let refreshed: Vec<_> = fetches
            .iter()
            .filter(|fetched| fetched.outcome == FetchOutcome::Computed)
            .collect();
        assert_eq!(refreshed.len(), 1, "{fetches:?}");
        assert_eq!(refreshed[0].value, Bytes::from_static(b"v2"));
        assert!(fetches
            .iter()
            .filter(|fetched| fetched.outcome == FetchOutcome::Stale)
            .all(|fetched| fetched.value == Bytes::from_static(b"v1")));
        let after = join_all((0..READERS).map(|_| {
            cache.fetch("page", &options, |_| async {
                Err::<Bytes, _>(Error::InvalidArgument("no computation expected".into()))
            })
        }))
        .await;
        for fetched in after {
            let fetched = fetched.expect("a hit");
            assert_eq!(
                (fetched.outcome, fetched.value),
                (FetchOutcome::Hit, Bytes::from_static(b"v2"))
            );
        }
    })
    .await;
}

/// Issue 9: a lease SET after a hard invalidation of one of its tags is
/// refused (FENCED), and after a DELETE of the key (LEASE_LOST); through
/// the commands and through cache-aside, which returns the value uncached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_set_is_refused_after_a_hard_invalidation_or_a_delete() {
    bounded(async {
        let server = start_server();
        let cache = Client::new(server.local_addr().to_string());
        let leased = ReadOptions::new().lease();

        let read = cache.get_with("k", &leased).await.expect("read");
        let lease = read.lease().expect("the first reader is granted the lease");
        cache.invalidate_tags(["t"]).await.expect("invalidate");
        let refused = cache
            .set("k", "v", &SetOptions::new().tag("t").lease(lease))
            .await
            .expect("set");
        assert_eq!(refused, SetOutcome::Fenced, "fenced at the grant");

        let read = cache.get_with("k", &leased).await.expect("read");
        let lease = read.lease().expect("the refused SET ended the lease");
        assert!(cache.delete("k").await.is_ok());
        let refused = cache
            .set("k", "v", &SetOptions::new().tag("t").lease(lease))
            .await
            .expect("set");
        assert_eq!(refused, SetOutcome::LeaseLost);

        let options = FetchOptions::new().tag("t");
        let fenced = cache
            .fetch("k", &options, |_| async {
                cache.invalidate_tags(["t"]).await?;
                Ok::<_, Error>("computed before the invalidation")
            })
            .await
            .expect("fetch");
        assert_eq!(fenced.outcome, FetchOutcome::Refused(SetOutcome::Fenced));
        let lost = cache
            .fetch("k", &options, |_| async {
                cache.delete("k").await?;
                Ok::<_, Error>("v")
            })
            .await
            .expect("fetch");
        assert_eq!(lost.outcome, FetchOutcome::Refused(SetOutcome::LeaseLost));
        assert!(
            cache.get("k").await.expect("get").is_none(),
            "nothing cached"
        );
    })
    .await;
}

/// Issue 9: tags declared while computing are stored with the value, and
/// fenced like the others: an invalidation of a tag declared late, between
/// the read and the SET, refuses the SET.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_declared_while_computing_are_stored_and_fenced() {
    bounded(async {
        let server = start_server();
        let cache = Client::new(server.local_addr().to_string());
        let options = FetchOptions::new().tag("page").ttl(Duration::from_secs(60));
        let fetched = cache
            .fetch("page:/posts/1", &options, |cx| async move {
                cx.tags(["post:1", "user:7"]);
                cx.stale_after(Duration::from_secs(30));
                Ok::<_, Error>("<p>post</p>")
            })
            .await
            .expect("fetch");
        assert_eq!(fetched.outcome, FetchOutcome::Computed);
        let item = cache
            .get_with_tags("page:/posts/1")
            .await
            .expect("get")
            .into_item()
            .expect("cached");
        assert_eq!(item.tags, vec!["page", "post:1", "user:7"]);
        cache.invalidate_tags(["user:7"]).await.expect("invalidate");
        assert!(cache.get("page:/posts/1").await.expect("get").is_none());

        let cache = &cache;
        let fenced = cache
            .fetch("page:/posts/1", &options, |cx| async move {
                cx.tag("user:8");
                cache.invalidate_tags(["user:8"]).await?;
                Ok::<_, Error>("<p>post</p>")
            })
            .await
            .expect("fetch");
        assert_eq!(fenced.outcome, FetchOutcome::Refused(SetOutcome::Fenced));
    })
    .await;
}

/// Issue 9: a crowd missing one key through `get_or_set_with` computes it
/// once; the others wait for that value. A computation that fails gives
/// its lease up, so the next caller computes at once rather than waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_compute_once_and_a_failed_computation_gives_up_its_lease() {
    bounded(async {
        let server = start_server();
        let cache = Client::new(server.local_addr().to_string());
        let ttl = Duration::from_secs(60);
        let failed = cache
            .try_get_or_set_with("k", ["t"], ttl, || async {
                Err::<Bytes, _>(Error::InvalidArgument("the database is down".into()))
            })
            .await;
        assert!(failed.is_err());
        let computations = AtomicUsize::new(0);
        let started = std::time::Instant::now();
        let values = join_all((0..READERS).map(|_| {
            cache.get_or_set_with("k", ["t"], ttl, || async {
                computations.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                "v"
            })
        }))
        .await;
        assert!(values
            .iter()
            .all(|value| value.as_deref().ok() == Some(&b"v"[..])));
        assert_eq!(computations.load(Ordering::SeqCst), 1);
        assert!(
            started.elapsed() < FetchOptions::DEFAULT_MAX_WAIT,
            "nobody waited for the failed computation's lease to lapse"
        );
    })
    .await;
}

/// Issue 9: request-scoped tags are checked against an entry as if it
/// carried them, without changing it: hard-invalidated after it was
/// stored, a miss; softly, stale; never invalidated, as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_scoped_tags_make_an_entry_miss_or_stale_for_that_read_only() {
    bounded(async {
        let server = start_server();
        let cache = Client::new(server.local_addr().to_string());
        let own = SetOptions::new().tag("post:1");
        assert!(cache
            .set("before", "b", &own)
            .await
            .expect("set")
            .is_stored());
        cache.invalidate_tags(["_N_T_/blog"]).await.expect("hard");
        assert!(cache
            .set("after", "a", &own)
            .await
            .expect("set")
            .is_stored());
        cache
            .soft_invalidate_tags(["_N_T_/news"], Duration::from_secs(60))
            .await
            .expect("soft");

        let blog = ReadOptions::new().request_tags(["_N_T_/blog"]);
        let read = |key, options| {
            let cache = &cache;
            async move { cache.get_with(key, &options).await.expect("read") }
        };
        assert!(matches!(
            read("before", blog.clone()).await,
            Lookup::Miss { .. }
        ));
        assert!(read("after", blog.clone()).await.is_hit());
        assert!(
            cache.get("before").await.expect("get").is_some(),
            "the entry itself is unchanged"
        );
        let news = ReadOptions::new().request_tags(["_N_T_/news"]);
        assert!(matches!(
            read("before", news.clone()).await,
            Lookup::Miss { .. }
        ));
        assert!(read("before", news.clone().allow_stale()).await.is_stale());
        let never = ReadOptions::new().request_tags(["_N_T_/never-invalidated"]);
        assert!(read("before", never).await.is_hit());
        let both = cache
            .get_many_with(["before", "after"], &blog)
            .await
            .expect("getm");
        assert!(matches!(both[0], Lookup::Miss { .. }) && both[1].is_hit());
    })
    .await;
}

/// Issue 9: TAG_STATUS through the client: each server's report, with the
/// sequences its invalidations returned, times that are the server's wall
/// clock, the soft window's end, and entry counts; a tag never invalidated
/// reads as all none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_status_reports_each_servers_invalidations_and_entries() {
    bounded(async {
        let (_servers, cache) = two_servers();
        let tagged = SetOptions::new().tag("posts");
        for n in 0..10 {
            let key = format!("post:{n}");
            assert!(cache
                .set(&key, "v", &tagged)
                .await
                .expect("set")
                .is_stored());
        }
        let before = SystemTime::now();
        let hard = cache.invalidate_tags(["users"]).await.expect("hard");
        let soft = cache
            .soft_invalidate_tags(["posts"], Duration::from_secs(90))
            .await
            .expect("soft");
        let after = SystemTime::now();

        let reports = cache
            .tag_status(["posts", "users", "never"])
            .await
            .expect("tag status");
        assert_eq!(reports.len(), 2, "one report per server");
        let mut entries = 0;
        for (at, report) in reports.iter().enumerate() {
            let [posts, users, never] = &report.tags[..] else {
                panic!("three tags: {report:?}");
            };
            assert_eq!(&posts.tag[..], b"posts");
            entries += posts.entries;
            let soft_invalidation = posts.soft.expect("posts softly invalidated");
            assert_eq!(soft_invalidation.seq, soft[at], "the sequence it returned");
            // The server reads its wall clock once at start and counts on
            // from there: a few milliseconds from ours.
            assert!(before <= soft_invalidation.at + CLOCKS_AGREE);
            assert!(soft_invalidation.at <= after + CLOCKS_AGREE);
            assert_eq!(
                soft_invalidation
                    .until
                    .duration_since(soft_invalidation.at)
                    .ok(),
                Some(Duration::from_secs(90))
            );
            assert_eq!(users.hard.map(|hard| hard.seq), Some(hard[at]));
            assert!(users.soft.is_none() && users.entries == 0);
            assert_eq!((never.entries, never.hard, never.soft), (0, None, None));
            assert!(report.seq >= soft[at] && report.forgotten.seq <= report.seq);
        }
        assert_eq!(entries, 10, "every entry is on one server or the other");
        let latest = reports
            .iter()
            .filter_map(|report| report.last_invalidated())
            .max();
        assert!(latest.is_some_and(|latest| before <= latest + CLOCKS_AGREE));
    })
    .await;
}

/// Issue 9: a soft flush goes to every server and leaves every entry there
/// stale rather than gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soft_flush_on_every_server_leaves_every_entry_stale() {
    bounded(async {
        let (_servers, cache) = two_servers();
        let keys: Vec<String> = (0..10).map(|n| format!("key:{n}")).collect();
        for key in &keys {
            assert!(cache
                .set(key, "v", &SetOptions::new())
                .await
                .expect("set")
                .is_stored());
        }
        let sequences = cache
            .soft_flush_all(Duration::from_secs(60))
            .await
            .expect("soft flush");
        assert_eq!(sequences.len(), 2);
        let plain = cache.get_many(&keys).await.expect("getm");
        assert!(plain.iter().all(|read| matches!(read, Lookup::Miss { .. })));
        let stale = cache
            .get_many_with(&keys, &ReadOptions::new().allow_stale())
            .await
            .expect("getm");
        assert!(stale.iter().all(Lookup::is_stale), "{stale:?}");
    })
    .await;
}

/// Issue 9: responses are read with their own request's flags: a pipeline
/// mixing reads with and without LEASE, a GETM with LEASE and a TAG_STATUS
/// gets each answer right (a lease field read where there is none, or
/// missed where there is one, would shift every field after it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_mixing_lease_and_plain_reads_reads_every_answer_right() {
    bounded(async {
        let server = start_server();
        let connection = Connection::connect(server.local_addr())
            .await
            .expect("connect");
        let options = SetOptions::new().tag("t");
        connection.set("hit", "value", &options).await.expect("set");
        let leased = ReadOptions::new().lease().with_tags();
        let mut pipeline = connection.pipeline();
        pipeline
            .get_with("hit", &leased)
            .get("hit")
            .get_with("missing", &leased)
            .get_many_with(["hit", "missing", "other"], &leased)
            .get_with_tags("hit")
            .tag_status(["t"]);
        let replies: Vec<Reply> = pipeline
            .execute()
            .await
            .expect("pipeline")
            .into_iter()
            .map(|reply| reply.expect("answered"))
            .collect();
        let hit = |reply: &Reply| match reply {
            Reply::Lookup(Lookup::Hit(item)) => item.value == "value",
            _ => false,
        };
        assert!(
            hit(&replies[0]) && hit(&replies[1]) && hit(&replies[4]),
            "{replies:?}"
        );
        let Reply::Lookup(missing) = &replies[2] else {
            panic!("{replies:?}");
        };
        assert!(missing.lease().is_some(), "{missing:?}");
        let Reply::Lookups(many) = &replies[3] else {
            panic!("{replies:?}");
        };
        assert!(many[0].is_hit() && many[0].item().is_some_and(|item| item.tags == ["t"]));
        assert_eq!(
            many[1],
            Lookup::HotMiss {
                fence: many[1].fence()
            }
        );
        assert!(many[2].lease().is_some(), "{many:?}");
        let Reply::TagStatus(report) = &replies[5] else {
            panic!("{replies:?}");
        };
        assert_eq!(report.tags[0].entries, 1);
    })
    .await;
}
