//! Shared by the examples: the servers to use, and the names to use on them.
//!
//! An example may run against a server someone else uses
//! (`TAGCACHED_SERVER`), so it never flushes one it did not start, and
//! puts a prefix unique to the run before every key and tag it uses there:
//! it neither reads, overwrites nor invalidates anyone else's entries.

#![allow(dead_code)] // Each example uses its own part of this.

use std::time::{SystemTime, UNIX_EPOCH};

use tagcached::{Config, Server};

/// The servers an example runs against.
pub struct Servers {
    /// Their addresses, `host:port`.
    pub addrs: Vec<String>,
    /// The in-process servers started for this run, serving while held;
    /// empty when `TAGCACHED_SERVER` named the servers.
    pub started: Vec<Server>,
    /// Put before every key and tag: empty on servers started here, unique
    /// to this run on servers named by `TAGCACHED_SERVER`.
    prefix: String,
}

impl Servers {
    /// `name` as this run uses it for a key or a tag.
    pub fn name(&self, name: impl std::fmt::Display) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Whether the servers were started by this run, so that it alone uses
    /// them and may stop or flush them.
    pub fn started_here(&self) -> bool {
        !self.started.is_empty()
    }
}

/// The servers named by `TAGCACHED_SERVER` (comma-separated `host:port`),
/// or else `count` in-process servers on loopback, started here.
pub fn servers(count: usize) -> Servers {
    if let Ok(named) = std::env::var("TAGCACHED_SERVER") {
        let addrs: Vec<String> = named
            .split(',')
            .map(str::trim)
            .filter(|addr| !addr.is_empty())
            .map(str::to_owned)
            .collect();
        if !addrs.is_empty() {
            let since_epoch = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let prefix = format!(
                "example-{}-{}:",
                std::process::id(),
                since_epoch.as_micros()
            );
            println!("using {named}, under the key and tag prefix {prefix}");
            return Servers {
                addrs,
                started: Vec::new(),
                prefix,
            };
        }
    }
    let started: Vec<Server> = (0..count)
        .map(|_| Server::start(Config::local_ephemeral()).expect("start an in-process server"))
        .collect();
    let addrs = started
        .iter()
        .map(|server| server.local_addr().to_string())
        .collect();
    Servers {
        addrs,
        started,
        prefix: String::new(),
    }
}
