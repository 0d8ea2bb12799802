//! Batch calls on a [`Client`]: many keys, grouped by server and lane, each
//! group sent as one submission (a GETM, or a pipeline), all groups at once.

use std::borrow::Borrow;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::join_all;

use crate::client::{run_on_lane, Client};
use crate::command::{bytes, Delete, Set};
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::lookup::Lookup;
use crate::pipeline::execute;
use crate::placement::key_hash;
use crate::pool::Node;
use crate::read::ReadOptions;
use crate::set::{SetOptions, SetOutcome};

/// One group's answer: the positions (in the caller's order) of its items,
/// and what the group's request returned.
type GroupAnswer<T> = (Vec<usize>, Result<T>);

/// The positions (in the caller's order) of the keys one lane receives.
struct LaneGroup {
    lane: usize,
    positions: Vec<usize>,
}

impl Client {
    /// One lookup per key, in the order given: one GETM per server lane
    /// (split at the server's `max_keys_per_getm`), all sent at once. Keys
    /// of a server marked down miss ([`Lookup::unavailable`]). Fails as a
    /// whole if any server fails.
    pub async fn get_many<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Lookup>> {
        self.get_many_with(keys, &ReadOptions::new()).await
    }

    /// As [`get_many`](Client::get_many), with each hit's tags.
    pub async fn get_many_with_tags<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Lookup>> {
        self.get_many_with(keys, &ReadOptions::new().with_tags())
            .await
    }

    /// As [`get_many`](Client::get_many), each key read as `options` say
    /// (see [`Client::get_with`]); each lease granted belongs to the server
    /// of its key.
    pub async fn get_many_with<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
        options: &ReadOptions,
    ) -> Result<Vec<Lookup>> {
        let keys: Vec<Bytes> = keys.into_iter().map(bytes).collect();
        let answers = self
            .by_lane(&keys, |connection, positions| {
                let keys: Vec<&Bytes> = positions.iter().map(|&at| &keys[at]).collect();
                async move { connection.get_many_with(keys, options).await }
            })
            .await;
        let mut lookups = vec![Lookup::unavailable(); keys.len()];
        for (positions, answer) in answers {
            match answer {
                Ok(found) => {
                    for (at, lookup) in positions.into_iter().zip(found) {
                        lookups[at] = lookup;
                    }
                }
                // Already `unavailable`.
                Err(Error::ServerDown { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(lookups)
    }

    /// Stores each `(key, value, options)`, pipelined: one submission per
    /// server lane, all sent at once. Returns one result per item, in the
    /// order given, so one refused value does not hide the others' outcomes;
    /// items of a server that fails or is marked down get its error.
    ///
    /// `options` may be owned or borrowed, so one [`SetOptions`] can serve
    /// every item:
    ///
    /// ```no_run
    /// # async fn example(cache: tagcached_client::Client) {
    /// use tagcached_client::SetOptions;
    ///
    /// let options = SetOptions::new().tag("catalog");
    /// let items = (0..100).map(|n| (format!("product:{n}"), format!("#{n}"), &options));
    /// let outcomes = cache.set_many(items).await;
    /// assert!(outcomes.iter().all(|outcome| matches!(outcome, Ok(o) if o.is_stored())));
    /// # }
    /// ```
    pub async fn set_many<K, V, O>(
        &self,
        items: impl IntoIterator<Item = (K, V, O)>,
    ) -> Vec<Result<SetOutcome>>
    where
        K: AsRef<[u8]>,
        V: Into<Bytes>,
        O: Borrow<SetOptions>,
    {
        let items: Vec<(Bytes, Bytes, O)> = items
            .into_iter()
            .map(|(key, value, options)| (bytes(key), value.into(), options))
            .collect();
        let keys: Vec<Bytes> = items.iter().map(|(key, _, _)| key.clone()).collect();
        let answers = self
            .by_lane(&keys, |connection, positions| {
                let calls = positions
                    .iter()
                    .map(|&at| {
                        let (key, value, options) = &items[at];
                        Set::call(key.clone(), value.clone(), options.borrow())
                    })
                    .collect();
                async move { execute(&connection, calls).await }
            })
            .await;
        spread(keys.len(), answers)
    }

    /// Removes each key, pipelined like [`set_many`](Client::set_many);
    /// one result per key, in order: whether a live entry was there.
    pub async fn delete_many<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Vec<Result<bool>> {
        let keys: Vec<Bytes> = keys.into_iter().map(bytes).collect();
        let answers = self
            .by_lane(&keys, |connection, positions| {
                let calls = positions
                    .iter()
                    .map(|&at| Ok(Delete::call(keys[at].clone())))
                    .collect();
                async move { execute(&connection, calls).await }
            })
            .await;
        spread(keys.len(), answers)
    }

    /// Groups `keys` by server and lane and runs `operation` once per
    /// group, every group at once; returns each group's positions and
    /// answer. A server that is down or cannot be reached answers every
    /// group of its keys with its error.
    async fn by_lane<T, F, Fut>(&self, keys: &[Bytes], operation: F) -> Vec<GroupAnswer<T>>
    where
        F: Fn(Connection, Vec<usize>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let hashes: Vec<u64> = keys.iter().map(|key| key_hash(key)).collect();
        let mut by_node: Vec<Vec<usize>> = vec![Vec::new(); self.nodes().len()];
        for (at, &hash) in hashes.iter().enumerate() {
            by_node[self.route(hash)].push(at);
        }
        let operation = &operation;
        let hashes = &hashes;
        let per_node = by_node
            .into_iter()
            .zip(self.nodes())
            .filter(|(positions, _)| !positions.is_empty())
            .map(|(positions, node)| async move {
                node_groups(node, positions, hashes, operation).await
            });
        join_all(per_node).await.into_iter().flatten().collect()
    }
}

/// One node's share of a batch: its keys grouped by lane, each group run on
/// a connection of its lane, all at once.
async fn node_groups<T, F, Fut>(
    node: &Arc<Node>,
    positions: Vec<usize>,
    hashes: &[u64],
    operation: &F,
) -> Vec<GroupAnswer<T>>
where
    F: Fn(Connection, Vec<usize>) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let lanes = match node.lanes().await {
        Ok(lanes) => lanes,
        Err(error) => return vec![(positions, Err(error))],
    };
    let mut groups: Vec<LaneGroup> = Vec::new();
    for at in positions {
        let lane = lanes.lane_for(hashes[at]);
        match groups.iter_mut().find(|group| group.lane == lane) {
            Some(group) => group.positions.push(at),
            None => groups.push(LaneGroup {
                lane,
                positions: vec![at],
            }),
        }
    }
    let lanes = &lanes;
    join_all(groups.into_iter().map(|group| async move {
        let answer = run_on_lane(node, lanes, group.lane, |connection| {
            operation(connection, group.positions.clone())
        })
        .await;
        (group.positions, answer)
    }))
    .await
}

/// Spreads pipelined answers back to one result per item, in the caller's
/// order: a failed group's error goes to each of its items.
fn spread<T>(count: usize, answers: Vec<GroupAnswer<Vec<Result<T>>>>) -> Vec<Result<T>> {
    let mut results: Vec<Option<Result<T>>> = (0..count).map(|_| None).collect();
    for (positions, answer) in answers {
        match answer {
            Ok(replies) => {
                for (at, answer) in positions.into_iter().zip(replies) {
                    results[at] = Some(answer);
                }
            }
            Err(error) => {
                for at in positions {
                    results[at] = Some(Err(error.clone()));
                }
            }
        }
    }
    results
        .into_iter()
        .map(|result| {
            result.unwrap_or_else(|| Err(Error::protocol("a batch item was not answered")))
        })
        .collect()
}
