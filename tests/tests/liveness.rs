//! Live entries (protocol.md §6): an entry that expired or was invalidated
//! is absent to every command, whether or not its memory was reclaimed
//! yet. The sweep is kept out of the way, so each command meets the dead
//! entry itself.

use std::time::Duration;

use tagcached_protocol::request::{Command, Set, SetMode};
use tagcached_protocol::response::Outcome;
use tagcached_tests::{keys_on_shard, set_cmd, within, Deadline, RawConn, TestServer};

fn no_sweep(config: &mut tagcached::Config) {
    config.sweep_interval = Duration::from_secs(3600);
}

/// SET `key` in `mode`, no tags, no TTL.
async fn set_in_mode(conn: &mut RawConn, key: &str, mode: SetMode) -> Outcome {
    let set = Set {
        mode,
        ..set_cmd(key, "new", &[])
    };
    conn.run(Command::Set(set)).await
}

/// Runs every command on its own dead entry: `keys` holds one per command,
/// each stored with the CAS value in `cas` and dead by now.
async fn every_command_sees_absence(conn: &mut RawConn, keys: &[String], cas: &[u64]) {
    let [add, replace, cas_key, delete, touch, get] = keys else {
        panic!("one key per command");
    };
    assert!(matches!(
        set_in_mode(conn, add, SetMode::Add).await,
        Outcome::Stored { .. }
    ));
    assert_eq!(conn.value(add).await.as_deref(), Some(&b"new"[..]));
    assert_eq!(
        set_in_mode(conn, replace, SetMode::Replace).await,
        Outcome::NotStored
    );
    // Its own CAS value: NOT_FOUND, not EXISTS and not STORED.
    assert_eq!(
        set_in_mode(conn, cas_key, SetMode::Cas(cas[2])).await,
        Outcome::NotFound
    );
    assert_eq!(conn.delete(delete).await, Outcome::NotFound);
    assert_eq!(conn.touch(touch, 100).await, Outcome::NotFound);
    conn.get_miss(get).await;
    for key in [replace, cas_key, delete, touch] {
        conn.get_miss(key).await;
    }
}

#[tokio::test]
async fn an_invalidated_entry_is_absent_to_every_command() {
    within(async {
        let server = TestServer::with_config(no_sweep);
        let mut conn = server.connect_to_shard(0).await;
        // Keys of this connection's shard and of the other one.
        for shard in [0, 1] {
            let keys = keys_on_shard(&format!("inv{shard}"), shard, 2, 6);
            let mut cas = Vec::new();
            for key in &keys {
                cas.push(conn.store(key, "old", &["doomed"]).await);
            }
            conn.invalidate(&["doomed"]).await;
            every_command_sees_absence(&mut conn, &keys, &cas).await;
        }
        let stats = conn.stats().await;
        assert_eq!(stats.num("invalidated_reclaimed"), 2 * 6, "met, not swept");
    })
    .await;
}

#[tokio::test]
async fn an_expired_entry_is_absent_to_every_command() {
    within(async {
        let server = TestServer::with_config(no_sweep);
        let mut conn = server.connect_to_shard(0).await;
        let mut keys = Vec::new();
        let mut cas = Vec::new();
        for shard in [0, 1] {
            let shard_keys = keys_on_shard(&format!("exp{shard}"), shard, 2, 6);
            let mut shard_cas = Vec::new();
            for key in &shard_keys {
                match conn.set(key, "old", &[], 1, None).await {
                    Outcome::Stored { cas } => shard_cas.push(cas),
                    other => panic!("SET answered {other:?}"),
                }
            }
            keys.push(shard_keys);
            cas.push(shard_cas);
        }
        // A one-second TTL, on real time: wait for a control entry stored
        // last to expire, so every other one has too.
        let control = "control";
        assert!(matches!(
            conn.set(control, "v", &[], 1, None).await,
            Outcome::Stored { .. }
        ));
        let deadline = Deadline::new("the control entry to expire", Duration::from_secs(3));
        while conn.value(control).await.is_some() {
            deadline.tick().await;
        }
        for (keys, cas) in keys.iter().zip(&cas) {
            every_command_sees_absence(&mut conn, keys, cas).await;
        }
        let stats = conn.stats().await;
        assert_eq!(stats.num("expired_reclaimed"), 2 * 6 + 1, "met, not swept");
    })
    .await;
}
