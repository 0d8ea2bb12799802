//! Shared by the examples: the servers to use.

use tagcached::{Config, Server};

/// The servers named by `TAGCACHED_SERVER` (comma-separated `host:port`),
/// or else `count` in-process servers on loopback, started here and kept
/// running as long as the returned handles live.
pub fn servers(count: usize) -> (Vec<String>, Vec<Server>) {
    if let Ok(named) = std::env::var("TAGCACHED_SERVER") {
        let addrs: Vec<String> = named
            .split(',')
            .map(str::trim)
            .filter(|addr| !addr.is_empty())
            .map(str::to_owned)
            .collect();
        if !addrs.is_empty() {
            return (addrs, Vec::new());
        }
    }
    let running: Vec<Server> = (0..count)
        .map(|_| Server::start(Config::local_ephemeral()).expect("start an in-process server"))
        .collect();
    let addrs = running
        .iter()
        .map(|server| server.local_addr().to_string())
        .collect();
    (addrs, running)
}
