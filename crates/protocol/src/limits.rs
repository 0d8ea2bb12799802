//! Limits on what a request may contain (protocol.md §7).

/// Bounds the codec enforces before a request reaches a shard.
///
/// The server sets them from its configuration and reports them in HELLO;
/// the defaults are those of protocol.md §7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest key, in bytes.
    pub max_key_length: u32,
    /// Longest value, in bytes.
    pub max_value_length: u32,
    /// Longest tag, in bytes.
    pub max_tag_length: u32,
    /// Most tags in one SET or INVALIDATE_TAGS.
    pub max_tags: u32,
    /// Most keys in one GETM.
    pub max_keys_per_getm: u32,
    /// Longest TTL, in seconds.
    pub max_ttl: u32,
    /// Largest frame body, in bytes.
    pub max_frame: u32,
}

impl Limits {
    /// memcached's key bound, so keys carry over unchanged.
    pub const DEFAULT_MAX_KEY_LENGTH: u32 = 250;
    /// 1 MiB, memcached's default item size.
    pub const DEFAULT_MAX_VALUE_LENGTH: u32 = 1 << 20;
    /// Long enough for URLs and composite ids.
    pub const DEFAULT_MAX_TAG_LENGTH: u32 = 1024;
    /// A page can depend on a thousand things.
    pub const DEFAULT_MAX_TAGS: u32 = 1024;
    /// Keys per GETM.
    pub const DEFAULT_MAX_KEYS_PER_GETM: u32 = 1024;
    /// Ten years.
    pub const DEFAULT_MAX_TTL: u32 = 10 * 365 * 24 * 60 * 60;
    /// Room beside the value for a key, the fixed fields and a full tag set.
    pub const FRAME_HEADROOM: u32 = 1 << 20;

    /// Limits for a given maximum value length, the rest at their defaults;
    /// `max_frame` grows with the value so a maximal SET always fits.
    pub fn with_max_value_length(max_value_length: u32) -> Limits {
        Limits {
            max_value_length,
            max_frame: max_value_length.saturating_add(Self::FRAME_HEADROOM),
            ..Limits::default()
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_key_length: Self::DEFAULT_MAX_KEY_LENGTH,
            max_value_length: Self::DEFAULT_MAX_VALUE_LENGTH,
            max_tag_length: Self::DEFAULT_MAX_TAG_LENGTH,
            max_tags: Self::DEFAULT_MAX_TAGS,
            max_keys_per_getm: Self::DEFAULT_MAX_KEYS_PER_GETM,
            max_ttl: Self::DEFAULT_MAX_TTL,
            max_frame: Self::DEFAULT_MAX_VALUE_LENGTH + Self::FRAME_HEADROOM,
        }
    }
}
