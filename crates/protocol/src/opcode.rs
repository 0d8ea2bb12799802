//! Opcodes (protocol.md §3).
//!
//! An opcode is a newtype over the wire byte rather than an enum, because a
//! response must echo opcodes this crate does not know (the reply to an
//! unknown opcode repeats it).

use std::fmt;

/// A command's opcode byte.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Opcode(pub u8);

impl Opcode {
    /// Version and limits handshake; also picks the connection's shard.
    pub const HELLO: Opcode = Opcode(0x00);
    /// Liveness check.
    pub const PING: Opcode = Opcode(0x01);
    /// Barrier ending a batch of quiet requests.
    pub const NOOP: Opcode = Opcode(0x02);
    /// Read one key.
    pub const GET: Opcode = Opcode(0x10);
    /// Read many keys.
    pub const GETM: Opcode = Opcode(0x11);
    /// Store a value with tags.
    pub const SET: Opcode = Opcode(0x20);
    /// Remove a key.
    pub const DELETE: Opcode = Opcode(0x21);
    /// Reset a key's TTL.
    pub const TOUCH: Opcode = Opcode(0x22);
    /// Invalidate every entry carrying any of the given tags, hard or soft.
    pub const INVALIDATE_TAGS: Opcode = Opcode(0x30);
    /// What the server knows of some tags' invalidations.
    pub const TAG_STATUS: Opcode = Opcode(0x31);
    /// Remove every entry, or make every entry stale.
    pub const FLUSH_ALL: Opcode = Opcode(0x40);
    /// Server counters.
    pub const STATS: Opcode = Opcode(0x41);
    /// Present a token, on a server that requires authentication.
    pub const AUTH: Opcode = Opcode(0x50);

    /// The command's name as protocol.md spells it, or `None` if unknown.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Opcode::HELLO => "HELLO",
            Opcode::PING => "PING",
            Opcode::NOOP => "NOOP",
            Opcode::GET => "GET",
            Opcode::GETM => "GETM",
            Opcode::SET => "SET",
            Opcode::DELETE => "DELETE",
            Opcode::TOUCH => "TOUCH",
            Opcode::INVALIDATE_TAGS => "INVALIDATE_TAGS",
            Opcode::TAG_STATUS => "TAG_STATUS",
            Opcode::FLUSH_ALL => "FLUSH_ALL",
            Opcode::STATS => "STATS",
            Opcode::AUTH => "AUTH",
            _ => return None,
        })
    }
}

impl fmt::Debug for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Opcode({:#04x})", self.0),
        }
    }
}
