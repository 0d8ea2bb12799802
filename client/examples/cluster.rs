//! One cache over two servers: keys placed by rendezvous hashing,
//! invalidation fanned out to both, and what happens when one goes away.
//!
//! `cargo run -p tagcached-client --example cluster` starts two servers;
//! set `TAGCACHED_SERVER=host1:port,host2:port` to use running ones (its
//! keys and tags then carry a prefix unique to the run, and no server is
//! stopped).

mod common;

use std::time::Duration;

use tagcached_client::{Client, SetOptions};

#[tokio::main]
async fn main() -> tagcached_client::Result<()> {
    let mut servers = common::servers(2);
    let addrs = servers.addrs.clone();
    let cache = Client::builder()
        .servers(addrs.clone())
        .request_timeout(Duration::from_millis(200))
        .connect_timeout(Duration::from_millis(200))
        .failure_threshold(2)
        .build()?;

    let catalog = servers.name("catalog");
    let options = SetOptions::new().tag(&catalog);
    let keys: Vec<String> = (0..1000)
        .map(|n| servers.name(format_args!("product:{n}")))
        .collect();
    let stored = cache
        .set_many(keys.iter().map(|key| (key, "{...}", &options)))
        .await;
    assert!(stored.iter().all(Result::is_ok));
    for addr in &addrs {
        let here = keys
            .iter()
            .filter(|key| cache.server_for(key) == addr)
            .count();
        println!("{addr} holds {here} of {} keys", keys.len());
    }

    let sequences = cache.invalidate_tags([&catalog]).await?;
    println!("invalidated on both servers: sequences {sequences:?}");

    if servers.started_here() {
        // Stop the second in-process server: its keys miss and its writes
        // fail, the first server's keys are unaffected.
        let stopped = servers.started.pop().expect("two servers");
        stopped.shutdown();
        tokio::task::spawn_blocking(move || drop(stopped))
            .await
            .expect("stopped");
        let error = cache
            .invalidate_tags([&catalog])
            .await
            .expect_err("one is gone");
        println!("with one server gone: {error}");
        println!("the client will retry it after a backoff; until then:");
        for status in cache.server_status() {
            println!(
                "  {}: down={} owed_tags={}",
                status.address, status.down, status.owed_tags
            );
        }
        let stored = cache
            .set_many(keys.iter().map(|key| (key, "{...}", &options)))
            .await;
        let refused = stored.iter().filter(|outcome| outcome.is_err()).count();
        println!(
            "set_many of {} keys: {refused} refused (the stopped server's)",
            keys.len()
        );
        let lookups = cache.get_many(&keys).await?;
        println!(
            "get_many of {} keys: {} hits, the stopped server's keys miss",
            keys.len(),
            lookups.iter().filter(|lookup| lookup.is_hit()).count()
        );
    }
    Ok(())
}
