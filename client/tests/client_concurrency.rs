//! A [`Client`] under concurrency, against a real server: many tasks on one
//! client, shard-aware routing, batch calls.

mod support;

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use tagcached_client::{shard_for_key, Client, Lookup, SetOptions};

use support::{bounded, start_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_tasks_share_one_client_and_each_reads_its_own_values() {
    bounded(async {
        let server = start_server();
        let client = Client::new(server.local_addr().to_string());
        let options = Arc::new(SetOptions::new().tag("concurrency"));
        let tasks: Vec<_> = (0..400)
            .map(|task| {
                let client = client.clone();
                let options = Arc::clone(&options);
                tokio::spawn(async move {
                    for round in 0..25 {
                        let key = format!("task:{task}:key:{}", round % 5);
                        let value = format!("{key}:round:{round}");
                        let outcome = client.set(&key, value.clone(), &options).await;
                        assert!(outcome.expect("set").is_stored());
                        let item = client.get(&key).await.expect("get").expect("hit");
                        assert_eq!(
                            item.value,
                            Bytes::from(value),
                            "task {task} read another value"
                        );
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task finished");
        }
        // Multiplexed: the 400 tasks shared a connection per shard.
        let stats = client.stats().await.remove(0).1.expect("stats");
        let connections: usize = stat(&stats, "curr_connections");
        assert_eq!(connections, 2, "one connection per shard, pool_size 1");
    })
    .await;
}

fn stat<T: std::str::FromStr>(stats: &[(String, String)], name: &str) -> T {
    let value = &stats
        .iter()
        .find(|(key, _)| key == name)
        .unwrap_or_else(|| panic!("no {name} in stats"))
        .1;
    value.parse().ok().expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_key_goes_to_the_connection_of_the_shard_that_owns_it() {
    bounded(async {
        let server = start_server();
        let client = Client::new(server.local_addr().to_string());
        for n in 0..64 {
            let key = format!("user:{n}");
            let connection = client.connection_for(&key).await.expect("connection");
            let info = connection.hello_info();
            assert_eq!(info.shard_count, 2);
            assert_eq!(
                info.shard,
                shard_for_key(key.as_bytes(), info.shard_count),
                "{key} sent to the wrong shard"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_shard_awareness_a_pool_of_n_opens_at_most_n_connections() {
    bounded(async {
        let server = start_server();
        let client = Client::builder()
            .server(server.local_addr().to_string())
            .shard_aware(false)
            .pool_size(3)
            .build()
            .expect("client");
        let tasks: Vec<_> = (0..100)
            .map(|n| {
                let client = client.clone();
                tokio::spawn(async move { client.get(format!("k{n}")).await.expect("get") })
            })
            .collect();
        for task in tasks {
            assert!(task.await.expect("task").is_none());
        }
        let stats = client.stats().await.remove(0).1.expect("stats");
        let connections: usize = stat(&stats, "curr_connections");
        assert!((1..=3).contains(&connections), "{connections} connections");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_answer_every_key_in_the_order_given() {
    bounded(async {
        let server = start_server();
        let client = Client::new(server.local_addr().to_string());
        // More keys than one GETM may carry (max_keys_per_getm is 1024).
        let keys: Vec<String> = (0..3000).map(|n| format!("batch:{n}")).collect();
        let options = SetOptions::new().tag("batch");
        let stored = client
            .set_many(
                keys.iter()
                    .step_by(2)
                    .map(|key| (key, format!("value of {key}"), &options)),
            )
            .await;
        assert_eq!(stored.len(), 1500);
        assert!(stored
            .iter()
            .all(|outcome| matches!(outcome, Ok(o) if o.is_stored())));

        let lookups = client.get_many(&keys).await.expect("get_many");
        assert_eq!(lookups.len(), keys.len());
        for (n, (key, lookup)) in keys.iter().zip(&lookups).enumerate() {
            match lookup {
                Lookup::Hit(item) if n % 2 == 0 => {
                    assert_eq!(item.value, Bytes::from(format!("value of {key}")));
                }
                Lookup::Miss { .. } if n % 2 == 1 => {}
                other => panic!("{key}: unexpected {other:?}"),
            }
        }

        let deleted = client.delete_many(&keys[..10]).await;
        let found: Vec<bool> = deleted.into_iter().map(|d| d.expect("delete")).collect();
        assert_eq!(found, (0..10).map(|n| n % 2 == 0).collect::<Vec<_>>());
        assert!(client.get(&keys[0]).await.expect("get").is_none());
        assert!(client.get(&keys[12]).await.expect("get").is_some());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_item_in_a_batch_does_not_hide_the_others() {
    bounded(async {
        let server = start_server();
        let client = Client::new(server.local_addr().to_string());
        let good = SetOptions::new().tag("fine");
        let bad = SetOptions::new().tag("has space");
        let outcomes = client
            .set_many([("a", "1", &good), ("b", "2", &bad), ("c", "3", &good)])
            .await;
        assert!(outcomes[0].as_ref().expect("stored").is_stored());
        let error = outcomes[1].as_ref().expect_err("refused");
        assert_eq!(
            error.server_code(),
            Some(tagcached_client::ErrorCode::TagInvalid)
        );
        assert!(outcomes[2].as_ref().expect("stored").is_stored());
        // The refusal did not count against the server.
        assert!(!client.server_status()[0].down);
        assert_eq!(client.server_status()[0].consecutive_failures, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidation_reaches_entries_on_every_shard() {
    bounded(async {
        let server = start_server();
        let client = Client::new(server.local_addr().to_string());
        let options = SetOptions::new().tag("group");
        let keys: Vec<String> = (0..32).map(|n| format!("member:{n}")).collect();
        let shards: HashSet<u16> = keys
            .iter()
            .map(|key| shard_for_key(key.as_bytes(), 2))
            .collect();
        assert_eq!(shards.len(), 2, "the keys cover both shards");
        for key in &keys {
            client.set(key, "v", &options).await.expect("set");
        }
        let sequences = client.invalidate_tags(["group"]).await.expect("invalidate");
        assert_eq!(sequences.len(), 1);
        let lookups = client.get_many(&keys).await.expect("get_many");
        assert!(lookups.iter().all(|lookup| !lookup.is_hit()));
    })
    .await;
}

#[test]
fn the_client_and_its_futures_can_move_between_threads() {
    fn send<T: Send + 'static>(_: T) {}
    fn shared<T: Send + Sync + Clone>(_: &T) {}
    let client = Client::new("127.0.0.1:1");
    shared(&client);
    let options = SetOptions::new();
    let c = client.clone();
    send(async move { c.get("k").await });
    let c = client.clone();
    send(async move { c.get_many(["a", "b"]).await });
    let (c, o) = (client.clone(), options.clone());
    send(async move { c.set_many([("k", "v", &o)]).await });
    let c = client.clone();
    send(async move { c.delete_many(["k"]).await });
    let c = client.clone();
    send(async move { c.invalidate_tags(["t"]).await });
    let c = client.clone();
    send(async move {
        c.get_or_set_with("k", ["t"], std::time::Duration::ZERO, || async { "v" })
            .await
    });
}
