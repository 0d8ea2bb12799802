//! Key placement is the function protocol.md §10 specifies, so that clients
//! in every language agree on where each key lives. The fixture
//! `fixtures/placement.txt` lists the server of `key:0` .. `key:9999` over
//! three servers; this test recomputes it through the public API, and the
//! Node client's test (`node/test/placement.test.ts`) reads the same file.
//!
//! The fixture was generated once from this implementation, by running
//! this test with `TAGCACHED_WRITE_PLACEMENT_FIXTURE=1`. Regenerating it is
//! a change of the protocol: every deployed client would move keys.

use std::path::PathBuf;

use tagcached_client::Client;

const SERVERS: [&str; 3] = ["10.0.0.1:11311", "10.0.0.2:11311", "10.0.0.3:11311"];
const KEYS: usize = 10_000;

fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/placement.txt")
}

/// The fixture's text as this client places the keys.
fn placement_text() -> String {
    let client = Client::builder()
        .servers(SERVERS)
        .build()
        .expect("three distinct servers");
    let mut lines = vec![
        "# Key placement (protocol.md §10): the server of each key over these servers.".to_owned(),
        "# Generated once from the Rust client; the Rust and Node tests compare with it."
            .to_owned(),
        format!("# servers: {}", SERVERS.join(" ")),
    ];
    for n in 0..KEYS {
        let key = format!("key:{n}");
        let owner = client.server_for(&key);
        lines.push(format!("{key} {owner}"));
    }
    lines.push(String::new());
    lines.join("\n")
}

#[test]
fn the_rust_client_places_ten_thousand_keys_as_the_shared_fixture_says() {
    let computed = placement_text();
    let path = fixture_path();
    if std::env::var_os("TAGCACHED_WRITE_PLACEMENT_FIXTURE").is_some() {
        std::fs::write(&path, &computed).expect("write the fixture");
        return;
    }
    let fixture = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    let fixture_lines: Vec<&str> = fixture.lines().collect();
    let computed_lines: Vec<&str> = computed.lines().collect();
    assert_eq!(
        fixture_lines.len(),
        computed_lines.len(),
        "the fixture has {} lines, placement gives {}",
        fixture_lines.len(),
        computed_lines.len()
    );
    for (fixture_line, computed_line) in fixture_lines.iter().zip(&computed_lines) {
        assert_eq!(
            fixture_line, computed_line,
            "the Rust client places a key elsewhere than the fixture"
        );
    }
}

/// Every server gets a fair share: the fixture exercises all three, so a
/// client that agrees with it on every key agrees on each server's score.
#[test]
fn the_fixture_spreads_keys_over_all_three_servers() {
    let fixture = std::fs::read_to_string(fixture_path()).expect("read the fixture");
    for server in SERVERS {
        let share = fixture
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter(|line| line.split_once(' ').map(|(_, owner)| owner) == Some(server))
            .count();
        assert!(
            share.abs_diff(KEYS / 3) < KEYS / 30,
            "{server} owns {share} of {KEYS} keys"
        );
    }
}
