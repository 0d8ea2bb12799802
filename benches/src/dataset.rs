//! The bytes a run sends: keys, tags and values, rendered once up front so
//! that no operation formats or allocates them.
//!
//! Key `i` is `k` followed by `i` in decimal, zero-padded to `--key-size`
//! bytes; tag `i` is `t` followed by `i`, zero-padded to the width of the
//! largest tag. Both are valid memcached keys and tagcached tags. Values are
//! prefixes of one buffer of the largest value size.
//!
//! Each thread takes its own copy ([`Dataset::for_thread`]): handing out
//! `Bytes` slices bumps a reference count, and a count shared by every
//! thread would be one cache line bouncing between cores on every request.

use std::sync::Arc;

use bytes::Bytes;
use tagcached_protocol::shard_for_key;

/// Rendered keys, tags and values, and the keys of each shard group.
#[derive(Debug, Clone)]
pub struct Dataset {
    keys: Bytes,
    key_size: usize,
    key_count: u32,
    tags: Bytes,
    tag_size: usize,
    tag_count: u32,
    values: Bytes,
    groups: Option<Arc<ShardGroups>>,
}

/// The key ids that fall to each group of shards (protocol.md §9), in
/// ascending order, for shard-aware runs.
#[derive(Debug)]
pub struct ShardGroups {
    /// `groups[g]`: the ids of keys whose shard is `g` modulo the group count.
    pub groups: Vec<Vec<u32>>,
}

impl Dataset {
    /// Renders `key_count` keys of `key_size` bytes, `tag_count` tags and a
    /// value buffer of `max_value` bytes. With `shard_groups = Some((shards,
    /// groups))` also sorts the keys into `groups` groups by
    /// `shard_for_key(key, shards) % groups`.
    ///
    /// The caller guarantees `key_size` holds `k` and the digits of
    /// `key_count - 1` (the configuration checks it).
    pub fn new(
        key_count: u32,
        key_size: usize,
        tag_count: u32,
        max_value: usize,
        shard_groups: Option<(u16, u16)>,
    ) -> Dataset {
        let keys = render(key_count, key_size, b'k');
        let tag_size = 1 + digits(u64::from(tag_count.saturating_sub(1)));
        let tags = render(tag_count, tag_size, b't');
        let values: Vec<u8> = (0..max_value).map(|i| b'a' + (i % 26) as u8).collect();
        let groups = shard_groups.map(|(shards, group_count)| {
            let mut groups = vec![Vec::new(); usize::from(group_count)];
            for id in 0..key_count {
                let key = &keys[id as usize * key_size..(id as usize + 1) * key_size];
                let group = shard_for_key(key, shards) % group_count;
                groups[usize::from(group)].push(id);
            }
            Arc::new(ShardGroups { groups })
        });
        Dataset {
            keys: Bytes::from(keys),
            key_size,
            key_count,
            tags: Bytes::from(tags),
            tag_size,
            tag_count,
            values: Bytes::from(values),
            groups,
        }
    }

    /// A deep copy whose reference counts are this thread's alone.
    pub fn for_thread(&self) -> Dataset {
        Dataset {
            keys: Bytes::copy_from_slice(&self.keys),
            tags: Bytes::copy_from_slice(&self.tags),
            values: Bytes::copy_from_slice(&self.values),
            groups: self.groups.clone(),
            ..*self
        }
    }

    /// How many keys there are.
    pub fn key_count(&self) -> u32 {
        self.key_count
    }

    /// How many tags there are.
    pub fn tag_count(&self) -> u32 {
        self.tag_count
    }

    /// Key `id`'s bytes.
    pub fn key(&self, id: u32) -> &[u8] {
        let start = id as usize * self.key_size;
        &self.keys[start..start + self.key_size]
    }

    /// Key `id` as shared bytes, for the typed tagcached requests.
    pub fn key_bytes(&self, id: u32) -> Bytes {
        let start = id as usize * self.key_size;
        self.keys.slice(start..start + self.key_size)
    }

    /// Tag `id` as shared bytes.
    pub fn tag_bytes(&self, id: u32) -> Bytes {
        let start = id as usize * self.tag_size;
        self.tags.slice(start..start + self.tag_size)
    }

    /// A value of `len` bytes.
    pub fn value(&self, len: u32) -> &[u8] {
        &self.values[..len as usize]
    }

    /// A value of `len` bytes as shared bytes.
    pub fn value_bytes(&self, len: u32) -> Bytes {
        self.values.slice(..len as usize)
    }

    /// The shard groups, in a shard-aware run.
    pub fn groups(&self) -> Option<&Arc<ShardGroups>> {
        self.groups.as_ref()
    }
}

/// The number of decimal digits of `n`.
pub fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |log| log as usize + 1)
}

/// `count` fixed-width names: `prefix` then the zero-padded index.
fn render(count: u32, width: usize, prefix: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(count as usize * width);
    for id in 0..count {
        out.push(prefix);
        let number = id.to_string();
        out.resize(out.len() + width - 1 - number.len(), b'0');
        out.extend_from_slice(number.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_tags_are_fixed_width_and_distinct() {
        let data = Dataset::new(1000, 8, 12, 100, None);
        assert_eq!(data.key(0), b"k0000000");
        assert_eq!(data.key(999), b"k0000999");
        assert_eq!(&data.key_bytes(42)[..], b"k0000042");
        assert_eq!(&data.tag_bytes(0)[..], b"t00");
        assert_eq!(&data.tag_bytes(11)[..], b"t11");
        assert_eq!(data.value(5), b"abcde");
        assert_eq!(digits(0), 1);
        assert_eq!(digits(9), 1);
        assert_eq!(digits(10), 2);
    }

    #[test]
    fn shard_groups_partition_the_keys_by_shard() {
        let data = Dataset::new(500, 6, 1, 1, Some((4, 4)));
        let groups = &data.groups().unwrap().groups;
        assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), 500);
        for (group, ids) in groups.iter().enumerate() {
            assert!(!ids.is_empty());
            for &id in ids {
                assert_eq!(usize::from(shard_for_key(data.key(id), 4)), group);
            }
        }
    }
}
