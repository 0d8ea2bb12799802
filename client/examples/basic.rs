//! The basics: set with tags, get, batch calls, invalidate by tag.
//!
//! `cargo run -p tagcached-client --example basic` starts its own server;
//! set `TAGCACHED_SERVER=host:port` to use a running one (its keys and tags
//! then carry a prefix unique to the run).

mod common;

use std::time::Duration;

use tagcached_client::{Client, SetOptions};

#[tokio::main]
async fn main() -> tagcached_client::Result<()> {
    let servers = common::servers(1);
    let cache = Client::builder()
        .servers(servers.addrs.clone())
        .request_timeout(Duration::from_millis(500))
        .build()?;

    let name_key = servers.name("user:42:name");
    let email_key = servers.name("user:42:email");
    let options = SetOptions::new()
        .ttl(Duration::from_secs(300))
        .tag(servers.name("user:42"));
    cache.set(&name_key, "Ada", &options).await?;
    cache.set(&email_key, "ada@example.com", &options).await?;
    let name = cache.get(&name_key).await?.expect("just stored");
    println!("user:42:name = {}", String::from_utf8_lossy(&name.value));

    // Many keys: one GETM per server thread, sent together.
    let products = (0..5).map(|n| {
        let key = servers.name(format_args!("product:{n}"));
        (key, format!("Product #{n}"), &options)
    });
    let stored = cache.set_many(products).await;
    println!(
        "set_many: {} stored",
        stored.iter().filter(|o| o.is_ok()).count()
    );
    let lookups = cache
        .get_many([&name_key, &email_key, &servers.name("nobody")])
        .await?;
    let hits: Vec<bool> = lookups.iter().map(|lookup| lookup.is_hit()).collect();
    println!("get_many hits: {hits:?}");

    // Every entry tagged user:42 is a miss from now on.
    cache.invalidate_tags([servers.name("user:42")]).await?;
    println!(
        "after invalidating user:42: user:42:name is {:?}",
        cache.get(&name_key).await?.map(|item| item.value)
    );
    Ok(())
}
