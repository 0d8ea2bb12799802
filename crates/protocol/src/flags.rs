//! Request flags (protocol.md §2.1).
//!
//! Flags come in two kinds. Those that change a request's *body* (REQUEST_TAGS
//! on GET and GETM; LEASE and STALE_AFTER on SET; SOFT on INVALIDATE_TAGS
//! and FLUSH_ALL) are carried by the command's fields, so that a frame whose
//! flags and body disagree cannot be built: encoding derives them from the
//! command, decoding hands them to the command's decoder
//! ([`Flags::body_flags_for`]). The others change only the response or what
//! the server does (QUIET, WITH_TAGS, ALLOW_STALE, and LEASE on GET and
//! GETM), and are held in [`Request::flags`](crate::Request::flags).

use crate::opcode::Opcode;

/// The request flag byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Flags(pub u8);

impl Flags {
    /// No flags.
    pub const NONE: Flags = Flags(0);
    /// Send no response when the request succeeds.
    pub const QUIET: Flags = Flags(0x01);
    /// GET and GETM: return each hit's tags.
    pub const WITH_TAGS: Flags = Flags(0x02);
    /// GET and GETM: answer a stale entry with its value, status STALE.
    pub const ALLOW_STALE: Flags = Flags(0x04);
    /// GET and GETM: ask for a refresh lease (each response carries a
    /// `lease` field); SET: the body carries a lease token.
    pub const LEASE: Flags = Flags(0x08);
    /// GET and GETM: the body carries request-scoped tags.
    pub const REQUEST_TAGS: Flags = Flags(0x10);
    /// SET: the body carries the entry's stale window.
    pub const STALE_AFTER: Flags = Flags(0x20);
    /// INVALIDATE_TAGS and FLUSH_ALL: invalidate softly; the body carries
    /// the window.
    pub const SOFT: Flags = Flags(0x40);

    /// Whether every bit of `other` is set in `self`.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// `self` with the bits of `other` cleared.
    pub fn without(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }

    /// The flags allowed on `opcode`; any other bit is `BAD_FLAGS`.
    pub fn allowed_for(opcode: Opcode) -> Flags {
        match opcode {
            Opcode::GET | Opcode::GETM => {
                Self::QUIET | Self::WITH_TAGS | Self::ALLOW_STALE | Self::LEASE | Self::REQUEST_TAGS
            }
            Opcode::SET => Self::QUIET | Self::LEASE | Self::STALE_AFTER,
            Opcode::DELETE | Opcode::TOUCH => Self::QUIET,
            Opcode::INVALIDATE_TAGS | Opcode::FLUSH_ALL => Self::QUIET | Self::SOFT,
            _ => Self::NONE,
        }
    }

    /// The flags that change `opcode`'s request body: a subset of
    /// [`Flags::allowed_for`]. They are derived from the command's fields
    /// when a request is encoded, and never held in
    /// [`Request::flags`](crate::Request::flags).
    pub fn body_flags_for(opcode: Opcode) -> Flags {
        match opcode {
            Opcode::GET | Opcode::GETM => Self::REQUEST_TAGS,
            Opcode::SET => Self::LEASE | Self::STALE_AFTER,
            Opcode::INVALIDATE_TAGS | Opcode::FLUSH_ALL => Self::SOFT,
            _ => Self::NONE,
        }
    }

    /// `flag` if `on`, else no flag.
    pub(crate) fn when(on: bool, flag: Flags) -> Flags {
        if on {
            flag
        } else {
            Flags::NONE
        }
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;

    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_flags_are_allowed_flags_and_bit_7_is_never_allowed() {
        for opcode in (0..=u8::MAX).map(Opcode) {
            let allowed = Flags::allowed_for(opcode);
            assert!(
                allowed.contains(Flags::body_flags_for(opcode)),
                "{opcode:?}"
            );
            assert!(!allowed.contains(Flags(0x80)), "{opcode:?}");
        }
    }

    #[test]
    fn lease_shapes_the_body_of_a_set_only() {
        assert!(Flags::body_flags_for(Opcode::SET).contains(Flags::LEASE));
        assert!(!Flags::body_flags_for(Opcode::GET).contains(Flags::LEASE));
        assert!(Flags::allowed_for(Opcode::GET).contains(Flags::LEASE));
        assert_eq!(Flags(0xFF).without(Flags::QUIET | Flags::SOFT), Flags(0xBE));
    }
}
