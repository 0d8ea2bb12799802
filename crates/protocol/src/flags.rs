//! Request flags (protocol.md §2.1).

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

    /// Whether every bit of `other` is set in `self`.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The flags allowed on `opcode`; any other bit is `BAD_FLAGS`.
    pub fn allowed_for(opcode: Opcode) -> Flags {
        match opcode {
            Opcode::GET | Opcode::GETM => Flags(Self::QUIET.0 | Self::WITH_TAGS.0),
            Opcode::SET
            | Opcode::DELETE
            | Opcode::TOUCH
            | Opcode::INVALIDATE_TAGS
            | Opcode::FLUSH_ALL => Self::QUIET,
            _ => Self::NONE,
        }
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;

    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}
