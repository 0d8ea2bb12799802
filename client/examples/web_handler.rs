//! Cache-aside in a web handler: read through the cache, compute from the
//! database on a miss, invalidate by tag when the data changes.
//!
//! A stand-in "database" with a few milliseconds of latency, concurrent
//! "requests" from many tasks, and an update in the middle. The fence that
//! `get_or_set_with` carries from the miss into the SET means that a
//! profile rendered from the old row is never cached after the update's
//! invalidation, whatever the timing.
//!
//! `cargo run -p tagcached-client --example web_handler`; set
//! `TAGCACHED_SERVER=host:port` to use a running server (its keys and tags
//! then carry a prefix unique to the run, so the first wave misses there
//! too, without flushing anyone's entries).

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tagcached_client::Client;

/// The source of truth, with a database's latency.
#[derive(Default)]
struct Database {
    names: Mutex<HashMap<u64, String>>,
    queries: AtomicUsize,
}

impl Database {
    async fn user_name(&self, id: u64) -> Option<String> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.names.lock().unwrap().get(&id).cloned()
    }

    fn rename(&self, id: u64, name: &str) {
        self.names.lock().unwrap().insert(id, name.to_owned());
    }
}

/// The application's error: the cache's errors convert into it.
#[derive(Debug)]
enum AppError {
    NotFound,
    Cache(tagcached_client::Error),
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppError::NotFound => write!(f, "not found"),
            AppError::Cache(error) => write!(f, "cache: {error}"),
        }
    }
}

impl std::error::Error for AppError {}

impl From<tagcached_client::Error> for AppError {
    fn from(error: tagcached_client::Error) -> AppError {
        AppError::Cache(error)
    }
}

struct App {
    cache: Client,
    database: Database,
    /// Where the cache is, and the names this run uses on it.
    servers: common::Servers,
}

impl App {
    /// `GET /users/{id}`: the rendered profile, from the cache when it can.
    async fn show_user(&self, id: u64) -> Result<Bytes, AppError> {
        let key = self.servers.name(format_args!("v1:user:{id}:profile"));
        let tag = self.servers.name(format_args!("user:{id}"));
        self.cache
            .try_get_or_set_with(&key, [&tag], Duration::from_secs(600), || async {
                let name = self
                    .database
                    .user_name(id)
                    .await
                    .ok_or(AppError::NotFound)?;
                Ok::<_, AppError>(format!("{{\"id\":{id},\"name\":\"{name}\"}}"))
            })
            .await
    }

    /// `PUT /users/{id}`: write the source of truth, then invalidate.
    async fn rename_user(&self, id: u64, name: &str) -> Result<(), AppError> {
        self.database.rename(id, name);
        let tag = self.servers.name(format_args!("user:{id}"));
        self.cache.invalidate_tags([tag]).await?;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let servers = common::servers(1);
    let app = Arc::new(App {
        cache: Client::builder().servers(servers.addrs.clone()).build()?,
        database: Database::default(),
        servers,
    });
    for id in 0..10 {
        app.database.rename(id, &format!("user-{id}"));
    }

    // Ten waves of fifty concurrent requests. The first wave's misses each
    // query the database (cache-aside does not coalesce concurrent misses);
    // the later waves are served from the cache.
    for wave in 0..10u64 {
        let requests: Vec<_> = (0..50u64)
            .map(|n| {
                let app = Arc::clone(&app);
                tokio::spawn(async move { app.show_user((wave + n) % 10).await })
            })
            .collect();
        for request in requests {
            request.await.expect("handler task")?;
        }
    }
    println!(
        "500 requests for 10 users: {} database queries",
        app.database.queries.load(Ordering::Relaxed)
    );

    app.rename_user(3, "Ada").await?;
    let profile = app.show_user(3).await?;
    println!("after the rename: {}", String::from_utf8_lossy(&profile));
    assert!(profile.ends_with(b"\"Ada\"}"));

    match app.show_user(99).await {
        Err(AppError::NotFound) => println!("user 99: not found, nothing cached"),
        Err(error) => println!("user 99: {error}"),
        Ok(profile) => println!("user 99: unexpectedly {profile:?}"),
    }
    Ok(())
}
