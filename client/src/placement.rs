//! Which server of a cluster owns a key: rendezvous hashing.
//!
//! Every server gets a score for the key, and the highest score owns it.
//! Removing a server moves only the keys it owned (each to its runner-up),
//! and adding one takes only the keys it now outscores, so adding or
//! removing one of N servers moves about 1/N of the keys, the least any
//! placement can move. Rendezvous is chosen over ketama (a ring of virtual
//! nodes) because it needs no ring to build or search, no virtual-node count
//! to tune, and its balance is exact in expectation rather than approximate;
//! its cost, one hash mix per server per key, is a few nanoseconds for the
//! tens of servers a cache cluster has. The runner-up order also gives
//! failover for free: a key whose owner is down goes to the next-best server.
//!
//! A server's identity is its address string as given to the client, so
//! every client configured with the same addresses places keys the same
//! way, in any order of configuration.

use tagcached_protocol::fnv1a64;

/// The placement of keys over a fixed list of servers.
#[derive(Debug, Clone)]
pub(crate) struct Placement {
    /// One seed per server, derived from its name, in configuration order.
    seeds: Vec<u64>,
}

impl Placement {
    /// Placement over servers with these names; the caller guarantees at
    /// least one.
    pub(crate) fn new<S: AsRef<str>>(names: &[S]) -> Placement {
        let seeds = names
            .iter()
            .map(|name| mix(fnv1a64(name.as_ref().as_bytes())))
            .collect();
        Placement { seeds }
    }

    /// The index of the server that owns a key whose [`key_hash`] is
    /// `hash`.
    pub(crate) fn owner(&self, hash: u64) -> usize {
        self.best(hash, |_| true).unwrap_or(0)
    }

    /// The highest-scoring server for which `eligible` holds, if any.
    pub(crate) fn best(&self, hash: u64, eligible: impl Fn(usize) -> bool) -> Option<usize> {
        if self.seeds.len() == 1 {
            return eligible(0).then_some(0);
        }
        self.seeds
            .iter()
            .enumerate()
            .filter(|&(index, _)| eligible(index))
            .max_by_key(|&(_, &seed)| mix(hash ^ seed))
            .map(|(index, _)| index)
    }
}

/// The key hash that both placement and shard routing use: the protocol's
/// FNV-1a (protocol.md §9), so the shard is `hash % shard_count`.
pub(crate) fn key_hash(key: &[u8]) -> u64 {
    fnv1a64(key)
}

/// A 64-bit finaliser (splitmix64's): every input bit affects every output
/// bit, so scores for one key over different seeds are independent, and the
/// weak high-bit mixing of FNV does not bias placement.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(count: usize) -> Vec<String> {
        (0..count).map(|n| format!("10.0.0.{n}:11311")).collect()
    }

    fn owners(placement: &Placement, servers: &[String], keys: usize) -> Vec<String> {
        (0..keys)
            .map(|n| {
                let hash = key_hash(format!("key:{n}").as_bytes());
                servers[placement.owner(hash)].clone()
            })
            .collect()
    }

    #[test]
    fn keys_spread_evenly_over_servers() {
        let servers = names(5);
        let placement = Placement::new(&servers);
        let keys = 50_000;
        let owners = owners(&placement, &servers, keys);
        for server in &servers {
            let share = owners.iter().filter(|owner| *owner == server).count();
            let expected = keys / servers.len();
            assert!(
                share.abs_diff(expected) < expected / 10,
                "{server} owns {share} of {keys}, expected about {expected}"
            );
        }
    }

    #[test]
    fn removing_a_server_moves_only_its_keys() {
        let servers = names(4);
        let before = owners(&Placement::new(&servers), &servers, 10_000);
        let remaining: Vec<String> = servers[..3].to_vec();
        let after = owners(&Placement::new(&remaining), &remaining, 10_000);
        for (old, new) in before.iter().zip(&after) {
            if old != &servers[3] {
                assert_eq!(old, new, "a key moved between servers that stayed");
            }
        }
    }

    #[test]
    fn placement_does_not_depend_on_configuration_order() {
        let servers = names(3);
        let reversed: Vec<String> = servers.iter().rev().cloned().collect();
        assert_eq!(
            owners(&Placement::new(&servers), &servers, 1000),
            owners(&Placement::new(&reversed), &reversed, 1000)
        );
    }

    #[test]
    fn the_runner_up_takes_a_key_whose_owner_is_excluded() {
        let servers = names(3);
        let placement = Placement::new(&servers);
        let hash = key_hash(b"user:42");
        let owner = placement.owner(hash);
        let runner_up = placement
            .best(hash, |index| index != owner)
            .expect("two left");
        assert_ne!(runner_up, owner);
        assert_eq!(placement.best(hash, |_| false), None);
    }
}
