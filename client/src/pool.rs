//! One server's connections, opened lazily, shared by every request.
//!
//! A [`Node`] is one server of a [`Client`](crate::Client). Its connections
//! are arranged in *lanes*: on a server that offers shard-aware connections
//! (protocol.md §9) one lane per shard, each connection of a lane asking
//! HELLO for that shard, so a keyed request goes to the thread that owns its
//! key and pays no hop between the server's threads; otherwise a single
//! lane. Each lane holds `pool_size` [`Connection`]s, used round-robin; each
//! connection is multiplexed (any number of requests pipelined on it), so
//! the pool bounds sockets, not concurrency.
//!
//! The lanes are unknown until the first connection's HELLO says how many
//! shards the server has; that connection (*discovery*) asks for any shard
//! and is kept in the lane of the shard it got. A slot is filled on first
//! use and refilled when its connection is found closed; one task connects
//! per slot while the others wait for it, so a burst of requests opens one
//! connection, not hundreds.
//!
//! Failures are reported to the node's [`Health`]. When it marks the server
//! down, the lanes are dropped (rediscovered on recovery, in case the server
//! came back with another shard count); requests fail at once until a
//! background probe, spawned by the first request after the backoff,
//! reconnects, delivers any owed invalidations and marks it up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use bytes::Bytes;
use tagcached_protocol::response::Features;
use tagcached_protocol::ErrorCode;

use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::health::{Health, HealthPolicy, Owed, Permit};
use crate::options::ConnectOptions;

/// How a node opens and arranges its connections.
#[derive(Debug, Clone)]
pub(crate) struct PoolSettings {
    /// Name, timeouts and queue depth for every connection; no shard.
    pub(crate) connect: ConnectOptions,
    /// Connections per lane; at least 1.
    pub(crate) pool_size: usize,
    /// Whether to open one lane per shard when the server allows it.
    pub(crate) shard_aware: bool,
}

/// One server: its address, health and connections.
#[derive(Debug)]
pub(crate) struct Node {
    address: String,
    health: Health,
    settings: Arc<PoolSettings>,
    /// `None` until discovery, and again after the server is marked down.
    lanes: RwLock<Option<Arc<Lanes>>>,
    /// Held while discovering, so one task discovers.
    discovery: tokio::sync::Mutex<()>,
    /// Round-robin over a lane's slots, and over lanes for keyless requests.
    turn: AtomicUsize,
}

/// The connection slots of one server, `per_lane` per lane.
#[derive(Debug)]
pub(crate) struct Lanes {
    /// Whether each lane is one shard's.
    shard_aware: bool,
    /// The server's shard count, as HELLO said.
    shard_count: u16,
    per_lane: usize,
    slots: Vec<Arc<Slot>>,
}

#[derive(Debug)]
struct Slot {
    /// The shard its connection asks for, if shard-aware.
    shard: Option<u16>,
    connection: Mutex<Option<Connection>>,
    /// Held while connecting, so one task connects per slot.
    connecting: tokio::sync::Mutex<()>,
}

impl Slot {
    fn live(&self) -> Option<Connection> {
        let current = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        current
            .as_ref()
            .filter(|connection| !connection.is_closed())
            .cloned()
    }

    fn store(&self, connection: Connection) {
        *self.connection.lock().unwrap_or_else(|p| p.into_inner()) = Some(connection);
    }

    /// Stores `connection` if the slot has none that is open.
    fn fill(&self, connection: &Connection) -> bool {
        let mut current = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        if current.as_ref().is_some_and(|open| !open.is_closed()) {
            return false;
        }
        *current = Some(connection.clone());
        true
    }
}

impl Lanes {
    fn new(shard_aware: bool, shard_count: u16, per_lane: usize) -> Lanes {
        let lanes = if shard_aware { shard_count.max(1) } else { 1 };
        let slots = (0..lanes)
            .flat_map(|lane| {
                (0..per_lane).map(move |_| {
                    Arc::new(Slot {
                        shard: shard_aware.then_some(lane),
                        connection: Mutex::new(None),
                        connecting: tokio::sync::Mutex::new(()),
                    })
                })
            })
            .collect();
        Lanes {
            shard_aware,
            shard_count,
            per_lane,
            slots,
        }
    }

    /// How many lanes there are.
    pub(crate) fn count(&self) -> usize {
        self.slots.len() / self.per_lane
    }

    /// The lane of a key whose hash is `hash`: its shard's, if shard-aware.
    pub(crate) fn lane_for(&self, hash: u64) -> usize {
        if self.shard_aware {
            // protocol.md §9: shard = fnv1a64(key) mod shard_count.
            (hash % u64::from(self.shard_count.max(1))) as usize
        } else {
            0
        }
    }

    fn slot(&self, lane: usize, turn: usize) -> &Arc<Slot> {
        &self.slots[lane * self.per_lane + turn % self.per_lane]
    }

    fn suits(&self, shard_aware: bool, shard_count: u16) -> bool {
        self.shard_aware == shard_aware && (!shard_aware || self.shard_count == shard_count)
    }
}

impl Node {
    pub(crate) fn new(address: String, settings: Arc<PoolSettings>, policy: HealthPolicy) -> Node {
        Node {
            address,
            health: Health::new(policy),
            settings,
            lanes: RwLock::new(None),
            discovery: tokio::sync::Mutex::new(()),
            turn: AtomicUsize::new(0),
        }
    }

    /// The server's address, as given to the client.
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    pub(crate) fn health(&self) -> &Health {
        &self.health
    }

    pub(crate) fn is_down(&self) -> bool {
        self.health.is_down()
    }

    pub(crate) fn down_error(&self) -> Error {
        Error::ServerDown {
            server: self.address.clone(),
        }
    }

    fn current_lanes(&self) -> Option<Arc<Lanes>> {
        self.lanes.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn next_turn(&self) -> usize {
        self.turn.fetch_add(1, Ordering::Relaxed)
    }

    /// The server's lanes, discovering them with a first connection if
    /// need be. Fails at once with [`Error::ServerDown`] while it is down.
    pub(crate) async fn lanes(self: &Arc<Self>) -> Result<Arc<Lanes>> {
        if self.is_down() {
            self.poke();
            return Err(self.down_error());
        }
        if let Some(lanes) = self.current_lanes() {
            return Ok(lanes);
        }
        self.discover().await
    }

    /// A connection for a key whose hash is `hash`, or for a keyless
    /// request (`None`).
    pub(crate) async fn connection(self: &Arc<Self>, hash: Option<u64>) -> Result<Connection> {
        let lanes = self.lanes().await?;
        let lane = match hash {
            Some(hash) => lanes.lane_for(hash),
            None => self.next_turn() % lanes.count(),
        };
        self.lane_connection(&lanes, lane).await
    }

    /// A connection of `lane`, opening one if its slot is empty or closed.
    pub(crate) async fn lane_connection(
        self: &Arc<Self>,
        lanes: &Arc<Lanes>,
        lane: usize,
    ) -> Result<Connection> {
        let slot = lanes.slot(lane, self.next_turn());
        if let Some(connection) = slot.live() {
            return Ok(connection);
        }
        let _connecting = slot.connecting.lock().await;
        if let Some(connection) = slot.live() {
            return Ok(connection);
        }
        if self.is_down() {
            self.poke();
            return Err(self.down_error());
        }
        self.permit()?;
        let mut options = self.settings.connect.clone();
        if let Some(shard) = slot.shard {
            options = options.shard(shard);
        }
        let started = Instant::now();
        match options.connect_to_address(&self.address).await {
            Ok(connection) => {
                self.health.connected();
                let info = connection.hello_info();
                if lanes.shard_aware && info.shard_count != lanes.shard_count {
                    // The server restarted with another thread count: this
                    // connection serves, the lanes are rebuilt next time.
                    self.forget_lanes(lanes);
                } else {
                    slot.store(connection.clone());
                }
                Ok(connection)
            }
            Err(error) => {
                if slot.shard.is_some() && error.server_code() == Some(ErrorCode::Malformed) {
                    // want_shard beyond the server's shards: it has fewer now.
                    self.forget_lanes(lanes);
                }
                self.connect_failed(started, &error);
                Err(error)
            }
        }
    }

    /// Fails unless a connection may be opened now.
    fn permit(&self) -> Result<()> {
        match self.health.permit(Instant::now()) {
            Permit::Connect => Ok(()),
            Permit::Wait(error) => Err(error),
            Permit::Down => Err(self.down_error()),
        }
    }

    async fn discover(self: &Arc<Self>) -> Result<Arc<Lanes>> {
        let _discovering = self.discovery.lock().await;
        if let Some(lanes) = self.current_lanes() {
            return Ok(lanes);
        }
        if self.is_down() {
            self.poke();
            return Err(self.down_error());
        }
        self.permit()?;
        let started = Instant::now();
        match self
            .settings
            .connect
            .connect_to_address(&self.address)
            .await
        {
            Ok(connection) => {
                self.health.connected();
                Ok(self.adopt(connection))
            }
            Err(error) => {
                self.connect_failed(started, &error);
                Err(error)
            }
        }
    }

    /// Files a connection opened for any shard under the lane of the shard
    /// it got, (re)building the lanes if they are unknown or no longer fit
    /// the server.
    fn adopt(&self, connection: Connection) -> Arc<Lanes> {
        let info = connection.hello_info();
        let shard_aware = self.settings.shard_aware
            && info.features.contains(Features::SHARD_AWARE)
            && info.shard_count > 0;
        let mut current = self.lanes.write().unwrap_or_else(|p| p.into_inner());
        let lanes = match &*current {
            Some(lanes) if lanes.suits(shard_aware, info.shard_count) => Arc::clone(lanes),
            _ => {
                let lanes = Arc::new(Lanes::new(
                    shard_aware,
                    info.shard_count,
                    self.settings.pool_size.max(1),
                ));
                *current = Some(Arc::clone(&lanes));
                lanes
            }
        };
        let lane = if shard_aware {
            usize::from(info.shard)
        } else {
            0
        };
        for turn in 0..lanes.per_lane {
            if lanes.slot(lane, turn).fill(&connection) {
                break;
            }
        }
        lanes
    }

    /// Drops `stale` if it is still the node's lanes.
    fn forget_lanes(&self, stale: &Arc<Lanes>) {
        let mut current = self.lanes.write().unwrap_or_else(|p| p.into_inner());
        if current
            .as_ref()
            .is_some_and(|lanes| Arc::ptr_eq(lanes, stale))
        {
            *current = None;
        }
    }

    /// Drops every connection; requests in flight on them finish or fail
    /// on their own.
    fn drop_connections(&self) {
        *self.lanes.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn connect_failed(&self, started: Instant, error: &Error) {
        if error.is_unavailable() && self.health.connect_failed(started, Instant::now(), error) {
            self.drop_connections();
        }
    }

    /// Reports how a request that started at `started` ended.
    pub(crate) fn record<T>(&self, started: Instant, result: &Result<T>) {
        match result {
            Ok(_) => self.health.record_success(),
            Err(error) if error.is_unavailable() && !matches!(error, Error::ServerDown { .. }) => {
                if self.health.record_failure(started, Instant::now(), error) {
                    self.drop_connections();
                }
            }
            Err(_) => {}
        }
    }

    /// An invalidation of `tags` (empty: a FLUSH_ALL) may have missed the
    /// server: owe it, and keep the server down until it is delivered.
    pub(crate) fn owe(&self, tags: &[Bytes], error: &Error) {
        if self.health.owe(tags, Instant::now(), error) {
            self.drop_connections();
        }
    }

    /// Marks the server down now; it is probed after the backoff.
    pub(crate) fn mark_down(&self) {
        if self.health.force_down(Instant::now()) {
            self.drop_connections();
        }
    }

    /// If the server is down and due for a retry, starts the probe that
    /// brings it back. Must run inside a tokio runtime.
    pub(crate) fn poke(self: &Arc<Self>) {
        if self.health.claim_probe(Instant::now()) {
            tokio::spawn(Arc::clone(self).probe());
        }
    }

    /// Reconnects, delivers what the server is owed, and marks it up; or
    /// reports the failure, which doubles the backoff.
    async fn probe(self: Arc<Self>) {
        let attempt = async {
            let connection = self
                .settings
                .connect
                .connect_to_address(&self.address)
                .await?;
            while let Some(owed) = self.health.recover_or_take_owed() {
                if let Err(error) = deliver(&connection, &owed).await {
                    self.health.restore_owed(owed);
                    return Err(error);
                }
            }
            Ok(connection)
        };
        match attempt.await {
            Ok(connection) => {
                self.adopt(connection);
            }
            Err(error) => self.health.probe_failed(Instant::now(), &error),
        }
    }
}

/// Sends a recovering server what it is owed.
async fn deliver(connection: &Connection, owed: &Owed) -> Result<()> {
    if owed.flush {
        connection.flush_all().await?;
        return Ok(());
    }
    let per_request = usize::try_from(connection.hello_info().limits.max_tags)
        .unwrap_or(usize::MAX)
        .clamp(1, usize::from(u16::MAX));
    for chunk in owed.tags.chunks(per_request) {
        match connection.invalidate_tags(chunk).await {
            Ok(_) => {}
            Err(error) if error.is_unavailable() => return Err(error),
            // The server refuses some tag of the chunk (TAG_INVALID, say):
            // it can hold no entry under a tag it refuses, so that tag needs
            // nothing; the others still do.
            Err(_) => {
                for tag in chunk {
                    match connection.invalidate_tags([tag]).await {
                        Err(error) if error.is_unavailable() => return Err(error),
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(())
}
