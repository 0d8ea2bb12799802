//! What each connection asks: the operation mix, the keys, value sizes and
//! tags, drawn from one seeded stream per connection.

use std::sync::Arc;

use crate::dataset::{Dataset, ShardGroups};
use crate::rng::Rng;
use crate::zipf::{Distribution, Sampler};

/// The kinds of operation the bench measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Read a key.
    Get,
    /// Store a key (with tags, for tagcached).
    Set,
    /// Remove a key.
    Delete,
    /// Invalidate one tag (tagcached only).
    Invalidate,
}

impl OpKind {
    /// The kind's index in per-kind arrays: get, set, delete, invalidate.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One operation, by ids into the [`Dataset`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    /// What to do.
    pub kind: OpKind,
    /// The key id (Get, Set, Delete).
    pub key: u32,
    /// The value length (Set).
    pub value_len: u32,
    /// Where this op's tag ids start in [`Batch::tags`] (Set, Invalidate).
    pub tags_start: u32,
    /// How many tag ids it has.
    pub tags_len: u32,
}

/// Operations to encode together, reused from batch to batch so that
/// generating them allocates nothing once the vectors have grown.
#[derive(Debug, Default)]
pub struct Batch {
    /// The operations, in sending order.
    pub ops: Vec<Op>,
    /// The tag ids of every op, each op owning a slice.
    pub tags: Vec<u32>,
}

impl Batch {
    /// Empties the batch, keeping its capacity.
    pub fn clear(&mut self) {
        self.ops.clear();
        self.tags.clear();
    }

    /// The tag ids of `op`.
    pub fn tags_of(&self, op: &Op) -> &[u32] {
        &self.tags[op.tags_start as usize..(op.tags_start + op.tags_len) as usize]
    }
}

/// The share of each kind, as cumulative thresholds over `[0, 1)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpMix {
    get_below: f64,
    set_below: f64,
    delete_below: f64,
}

impl OpMix {
    /// A mix from non-negative weights with a positive sum.
    pub fn new(get: f64, set: f64, delete: f64) -> OpMix {
        let total = get + set + delete;
        assert!(total > 0.0, "a mix needs some weight");
        OpMix {
            get_below: get / total,
            set_below: (get + set) / total,
            // Rounding must never leave a gap that yields Invalidate.
            delete_below: if delete > 0.0 {
                1.0
            } else {
                (get + set) / total
            },
        }
    }

    /// Only invalidations: the invalidator's mix.
    pub fn invalidate_only() -> OpMix {
        OpMix {
            get_below: 0.0,
            set_below: 0.0,
            delete_below: 0.0,
        }
    }

    /// The shares of get, set and delete, each in `[0, 1]`.
    #[cfg(test)]
    pub fn shares(&self) -> [f64; 3] {
        [
            self.get_below,
            self.set_below - self.get_below,
            self.delete_below - self.set_below,
        ]
    }

    fn pick(&self, unit: f64) -> OpKind {
        if unit < self.get_below {
            OpKind::Get
        } else if unit < self.set_below {
            OpKind::Set
        } else if unit < self.delete_below {
            OpKind::Delete
        } else {
            OpKind::Invalidate
        }
    }
}

/// Value lengths, uniform in `min..=max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueSize {
    /// Shortest value.
    pub min: u32,
    /// Longest value.
    pub max: u32,
}

impl ValueSize {
    fn pick(&self, rng: &mut Rng) -> u32 {
        if self.min == self.max {
            self.min
        } else {
            self.min + rng.below(u64::from(self.max - self.min) + 1) as u32
        }
    }
}

/// Which keys a connection may pick.
#[derive(Debug, Clone)]
pub enum KeyChoice {
    /// Any key: rank `r` is key id `r`.
    Any,
    /// Only the keys of one shard group (a shard-aware connection): rank `r`
    /// is the group's `r`th key, so the hottest keys of the group are its
    /// lowest ids, as they are in the whole space.
    Group {
        /// Every group's keys.
        groups: Arc<ShardGroups>,
        /// This connection's group.
        group: usize,
    },
}

impl KeyChoice {
    fn len(&self, data: &Dataset) -> u64 {
        match self {
            KeyChoice::Any => u64::from(data.key_count()),
            KeyChoice::Group { groups, group } => groups.groups[*group].len() as u64,
        }
    }

    fn id(&self, rank: u64) -> u32 {
        match self {
            KeyChoice::Any => rank as u32,
            KeyChoice::Group { groups, group } => groups.groups[*group][rank as usize],
        }
    }
}

/// Everything that shapes the operations, shared by all connections.
#[derive(Debug, Clone)]
pub struct WorkloadSpec {
    /// Share of each kind.
    pub mix: OpMix,
    /// How keys and tags are drawn.
    pub distribution: Distribution,
    /// Value lengths.
    pub value_size: ValueSize,
    /// Tags attached to each SET.
    pub tags_per_item: u32,
    /// Tags per invalidation.
    pub tags_per_invalidation: u32,
}

/// A source of operations for one connection.
pub trait OpSource {
    /// Appends the next operation to `batch`, or returns `None` when the
    /// source is exhausted.
    fn next_op(&mut self, batch: &mut Batch) -> Option<OpKind>;
}

/// Draws a connection's measured operations.
#[derive(Debug)]
pub struct Generator {
    rng: Rng,
    spec: WorkloadSpec,
    keys: KeyChoice,
    key_sampler: Sampler,
    tag_sampler: Sampler,
    remaining: Option<u64>,
}

impl Generator {
    /// A generator over `keys` that stops after `quota` operations, if given.
    ///
    /// The caller guarantees `keys` is not empty.
    pub fn new(
        spec: WorkloadSpec,
        keys: KeyChoice,
        data: &Dataset,
        rng: Rng,
        quota: Option<u64>,
    ) -> Generator {
        let key_sampler = Sampler::new(spec.distribution, keys.len(data));
        let tag_sampler = Sampler::new(spec.distribution, u64::from(data.tag_count()));
        Generator {
            rng,
            spec,
            keys,
            key_sampler,
            tag_sampler,
            remaining: quota,
        }
    }

    fn push(&mut self, kind: OpKind, key: u32, batch: &mut Batch) {
        let tags_start = batch.tags.len() as u32;
        let (value_len, tags_len) = match kind {
            OpKind::Set => (
                self.spec.value_size.pick(&mut self.rng),
                self.spec.tags_per_item,
            ),
            OpKind::Invalidate => (0, self.spec.tags_per_invalidation),
            OpKind::Get | OpKind::Delete => (0, 0),
        };
        for _ in 0..tags_len {
            batch
                .tags
                .push(self.tag_sampler.sample(&mut self.rng) as u32);
        }
        batch.ops.push(Op {
            kind,
            key,
            value_len,
            tags_start,
            tags_len,
        });
    }
}

impl OpSource for Generator {
    fn next_op(&mut self, batch: &mut Batch) -> Option<OpKind> {
        if let Some(remaining) = &mut self.remaining {
            *remaining = remaining.checked_sub(1)?;
        }
        let kind = self.spec.mix.pick(self.rng.unit());
        let key = match kind {
            OpKind::Invalidate => 0,
            _ => self.keys.id(self.key_sampler.sample(&mut self.rng)),
        };
        self.push(kind, key, batch);
        Some(kind)
    }
}

/// Stores every key of a list once: the prefill before measuring.
#[derive(Debug)]
pub struct Prefill {
    generator: Generator,
    keys: Vec<u32>,
    next: usize,
}

impl Prefill {
    /// Stores `keys` with values and tags drawn by `generator`.
    pub fn new(generator: Generator, keys: Vec<u32>) -> Prefill {
        Prefill {
            generator,
            keys,
            next: 0,
        }
    }
}

impl OpSource for Prefill {
    fn next_op(&mut self, batch: &mut Batch) -> Option<OpKind> {
        let key = *self.keys.get(self.next)?;
        self.next += 1;
        self.generator.push(OpKind::Set, key, batch);
        Some(OpKind::Set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(mix: OpMix) -> WorkloadSpec {
        WorkloadSpec {
            mix,
            distribution: Distribution::Uniform,
            value_size: ValueSize { min: 10, max: 20 },
            tags_per_item: 3,
            tags_per_invalidation: 1,
        }
    }

    #[test]
    fn mix_follows_the_weights() {
        let data = Dataset::new(100, 4, 10, 20, None);
        let mut generator = Generator::new(
            spec(OpMix::new(8.0, 2.0, 0.0)),
            KeyChoice::Any,
            &data,
            Rng::new(3),
            Some(10_000),
        );
        let mut batch = Batch::default();
        let mut counts = [0usize; 4];
        while let Some(kind) = generator.next_op(&mut batch) {
            counts[kind.index()] += 1;
        }
        assert_eq!(counts.iter().sum::<usize>(), 10_000);
        assert!((7_700..8_300).contains(&counts[0]), "{counts:?}");
        assert_eq!(counts[2] + counts[3], 0);
        for op in &batch.ops {
            assert!(op.key < 100);
            if op.kind == OpKind::Set {
                assert!((10..=20).contains(&op.value_len));
                assert_eq!(batch.tags_of(op).len(), 3);
                assert!(batch.tags_of(op).iter().all(|&tag| tag < 10));
            }
        }
    }

    #[test]
    fn group_keys_stay_in_their_group() {
        let data = Dataset::new(1000, 4, 1, 1, Some((3, 3)));
        let groups = data.groups().unwrap().clone();
        let choice = KeyChoice::Group {
            groups: groups.clone(),
            group: 2,
        };
        let mut generator = Generator::new(
            spec(OpMix::new(1.0, 0.0, 0.0)),
            choice,
            &data,
            Rng::new(5),
            Some(1000),
        );
        let mut batch = Batch::default();
        while generator.next_op(&mut batch).is_some() {}
        assert!(batch
            .ops
            .iter()
            .all(|op| groups.groups[2].contains(&op.key)));
    }

    #[test]
    fn prefill_sets_each_key_once() {
        let data = Dataset::new(10, 4, 1, 20, None);
        let generator = Generator::new(
            spec(OpMix::new(1.0, 0.0, 0.0)),
            KeyChoice::Any,
            &data,
            Rng::new(1),
            None,
        );
        let mut prefill = Prefill::new(generator, vec![4, 2, 9]);
        let mut batch = Batch::default();
        while prefill.next_op(&mut batch).is_some() {}
        let keys: Vec<u32> = batch.ops.iter().map(|op| op.key).collect();
        assert_eq!(keys, [4, 2, 9]);
        assert!(batch.ops.iter().all(|op| op.kind == OpKind::Set));
    }
}
