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
    /// Most tags in one SET, INVALIDATE_TAGS or TAG_STATUS, and most
    /// request-scoped tags in one GET or GETM.
    pub max_tags: u32,
    /// Most keys in one GETM.
    pub max_keys_per_getm: u32,
    /// Longest TTL, stale window (`stale_after`) and soft invalidation
    /// window (`expire`), in seconds.
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
    /// The largest body a server that requires authentication accepts on a
    /// connection that has not authenticated yet (protocol.md §6.12), 4 KiB,
    /// whatever `max_frame` is: room for an AUTH with the longest token and
    /// for a HELLO with a client name, and no more, so a client without a
    /// token cannot make the server hold large frames (Redis's answer to
    /// CVE-2021-32675). Not reported by HELLO.
    pub const PRE_AUTH_MAX_FRAME: u32 = 4096;

    /// Limits for a given maximum value length, the rest at their defaults;
    /// `max_frame` grows with the value so a maximal SET always fits.
    pub fn with_max_value_length(max_value_length: u32) -> Limits {
        Limits {
            max_value_length,
            ..Limits::default()
        }
        .with_fitted_max_frame()
    }

    /// The body length of the largest request the other limits allow
    /// (protocol.md §7), saturating at `u32::MAX`: the larger of a SET with
    /// LEASE and STALE_AFTER, a longest key, `max_tags` longest tags and a
    /// longest value, and a GETM with REQUEST_TAGS of `max_tags` longest
    /// tags and `max_keys_per_getm` longest keys. Every GET or GETM hit
    /// within the limits, with a lease or without, is shorter than that
    /// SET, so a client whose `max_frame` is the server's can read every
    /// hit.
    pub fn largest_request_body(&self) -> u32 {
        // mode, reserved, tag_count, client_flags, ttl, cas, fence, lease,
        // stale_after, and the key's length prefix.
        const SET_FIXED: u64 = 1 + 1 + 2 + 4 + 4 + 8 + 8 + 8 + 4 + 2;
        // tag_count and key_count.
        const GET_MANY_FIXED: u64 = 2 + 2;
        let key = u64::from(self.max_key_length);
        let tags = u64::from(self.max_tags) * (2 + u64::from(self.max_tag_length));
        let set = SET_FIXED + key + tags + u64::from(self.max_value_length);
        let get_many = GET_MANY_FIXED + tags + u64::from(self.max_keys_per_getm) * (2 + key);
        u32::try_from(set.max(get_many)).unwrap_or(u32::MAX)
    }

    /// These limits with `max_frame` set to [`Limits::largest_request_body`].
    /// Call it after changing any other limit, or a request those limits
    /// allow can be refused as `FRAME_TOO_LARGE`.
    pub fn with_fitted_max_frame(self) -> Limits {
        Limits {
            max_frame: self.largest_request_body(),
            ..self
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
            max_frame: 0,
        }
        .with_fitted_max_frame()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pre_auth_frame_limit_holds_an_auth_with_the_longest_token() {
        let longest = crate::request::MAX_TOKEN_LENGTH as u32;
        assert!(Limits::PRE_AUTH_MAX_FRAME >= longest);
        assert_eq!(Limits::PRE_AUTH_MAX_FRAME, 4096);
    }

    #[test]
    fn default_max_frame_is_the_largest_set_of_protocol_md() {
        // protocol.md §7: 42 + 250 + 1024 × (2 + 1024) + 1,048,576.
        assert_eq!(Limits::default().max_frame, 2_099_492);
    }

    /// Regression: `max_frame` was `max_value_length + 1 MiB`, 2,328 bytes
    /// short of a SET with a longest key and 1024 tags of 1024 bytes.
    #[test]
    fn max_frame_fits_a_set_at_every_limit() {
        // One key per GETM, so that the SET is the larger request.
        let limits = Limits {
            max_value_length: 256 * 1024,
            max_keys_per_getm: 1,
            ..Limits::default()
        }
        .with_fitted_max_frame();
        let tags = 1024 * (2 + 1024);
        assert_eq!(limits.max_frame, 42 + 250 + tags + 256 * 1024);
        let custom = Limits {
            max_tags: 65_535,
            ..Limits::default()
        }
        .with_fitted_max_frame();
        assert_eq!(
            custom.max_frame,
            42 + 250 + 65_535 * 1026 + Limits::DEFAULT_MAX_VALUE_LENGTH
        );
    }

    #[test]
    fn max_frame_fits_a_full_getm_and_saturates() {
        let limits = Limits {
            max_tags: 0,
            max_value_length: 0,
            ..Limits::default()
        }
        .with_fitted_max_frame();
        assert_eq!(limits.max_frame, 4 + 1024 * (2 + 250));
        // A GETM with REQUEST_TAGS outgrows a SET once values are small.
        let small_values = Limits::with_max_value_length(0);
        assert_eq!(
            small_values.max_frame,
            4 + 1024 * (2 + 1024) + 1024 * (2 + 250)
        );
        let huge = Limits {
            max_value_length: u32::MAX,
            ..Limits::default()
        };
        assert_eq!(huge.largest_request_body(), u32::MAX);
    }
}
