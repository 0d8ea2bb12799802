//! Status codes (protocol.md §4).

use std::fmt;

/// A response's status field: an outcome below `0x0100`, an error from it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status(pub u16);

impl Status {
    /// Done.
    pub const OK: Status = Status(0x0000);
    /// GET/GETM found a live, valid entry.
    pub const HIT: Status = Status(0x0001);
    /// GET/GETM found nothing usable.
    pub const MISS: Status = Status(0x0002);
    /// SET stored the value.
    pub const STORED: Status = Status(0x0003);
    /// SET ADD found an entry, or SET REPLACE found none.
    pub const NOT_STORED: Status = Status(0x0004);
    /// SET CAS: the CAS value differs.
    pub const EXISTS: Status = Status(0x0005);
    /// No live entry under the key.
    pub const NOT_FOUND: Status = Status(0x0006);
    /// SET refused: a tag was invalidated after the fence (or the lease's
    /// grant).
    pub const FENCED: Status = Status(0x0007);
    /// GET/GETM with ALLOW_STALE found a stale entry; the body is a hit's.
    pub const STALE: Status = Status(0x0008);
    /// GET/GETM with LEASE: no fresh entry, and another reader holds the
    /// key's refresh lease.
    pub const HOT_MISS: Status = Status(0x0009);
    /// SET with LEASE: the token is not the key's current lease.
    pub const LEASE_LOST: Status = Status(0x000A);

    /// Whether this status is an error (`0x0100` and up).
    pub fn is_error(self) -> bool {
        self.0 >= 0x0100
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            Status::OK => "OK",
            Status::HIT => "HIT",
            Status::MISS => "MISS",
            Status::STORED => "STORED",
            Status::NOT_STORED => "NOT_STORED",
            Status::EXISTS => "EXISTS",
            Status::NOT_FOUND => "NOT_FOUND",
            Status::FENCED => "FENCED",
            Status::STALE => "STALE",
            Status::HOT_MISS => "HOT_MISS",
            Status::LEASE_LOST => "LEASE_LOST",
            other => {
                return match ErrorCode::from_status(other) {
                    Some(ErrorCode::Other(code)) => write!(f, "Status({code:#06x})"),
                    Some(code) => f.write_str(code.name()),
                    None => write!(f, "Status({:#06x})", other.0),
                }
            }
        };
        f.write_str(name)
    }
}

macro_rules! error_codes {
    ($($(#[$doc:meta])* $name:ident = $code:literal, $wire:literal, $fatal:literal;)*) => {
        /// The error statuses, one per kind of failure (protocol.md §4).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($(#[$doc])* $name,)*
            /// An error code this crate does not know, from a newer server.
            Other(u16),
        }

        impl ErrorCode {
            /// The wire value.
            pub fn code(self) -> u16 {
                match self {
                    $(ErrorCode::$name => $code,)*
                    ErrorCode::Other(code) => code,
                }
            }

            /// The code for a status; `None` for outcomes below `0x0100`.
            pub fn from_status(status: Status) -> Option<ErrorCode> {
                match status.0 {
                    0..=0x00FF => None,
                    $($code => Some(ErrorCode::$name),)*
                    other => Some(ErrorCode::Other(other)),
                }
            }

            /// The name protocol.md gives the code.
            pub fn name(self) -> &'static str {
                match self {
                    $(ErrorCode::$name => $wire,)*
                    ErrorCode::Other(_) => "UNKNOWN_ERROR",
                }
            }

            /// Whether the server closes the connection after this error.
            pub fn is_fatal(self) -> bool {
                match self {
                    $(ErrorCode::$name => $fatal,)*
                    ErrorCode::Other(_) => false,
                }
            }
        }
    };
}

error_codes! {
    /// The first byte was not the request magic.
    BadMagic = 0x0100, "BAD_MAGIC", true;
    /// Unsupported protocol version.
    BadVersion = 0x0101, "BAD_VERSION", true;
    /// `body_length` exceeds the server's frame limit.
    FrameTooLarge = 0x0102, "FRAME_TOO_LARGE", true;
    /// The opcode is not implemented.
    UnknownOpcode = 0x0103, "UNKNOWN_OPCODE", false;
    /// An unknown flag, or one that does not apply to the opcode.
    BadFlags = 0x0104, "BAD_FLAGS", false;
    /// The body does not match the opcode's layout.
    Malformed = 0x0105, "MALFORMED", false;
    /// Key empty or too long.
    KeyInvalid = 0x0106, "KEY_INVALID", false;
    /// Value longer than the limit, or than a shard's memory.
    ValueTooLarge = 0x0107, "VALUE_TOO_LARGE", false;
    /// A tag is empty, too long, not UTF-8, or has whitespace or controls.
    TagInvalid = 0x0108, "TAG_INVALID", false;
    /// More tags than allowed in one request.
    TooManyTags = 0x0109, "TOO_MANY_TAGS", false;
    /// A TTL, stale window or soft invalidation window above the maximum.
    BadTtl = 0x010A, "BAD_TTL", false;
    /// GETM with no keys or too many.
    TooManyKeys = 0x010B, "TOO_MANY_KEYS", false;
    /// No room could be made for the value.
    OutOfMemory = 0x010C, "OUT_OF_MEMORY", false;
    /// The server is at its connection limit; it closes after this.
    Busy = 0x010D, "BUSY", true;
    /// Unexpected server-side failure.
    Internal = 0x010E, "INTERNAL", false;
    /// The server is stopping and did not run the request.
    ShuttingDown = 0x010F, "SHUTTING_DOWN", false;
    /// AUTH presented a token the server does not accept; it closes the
    /// connection after this.
    AuthFailed = 0x0110, "AUTH_FAILED", true;
    /// The server requires authentication and the connection has not
    /// authenticated: the request was not run.
    AuthRequired = 0x0111, "AUTH_REQUIRED", false;
}

impl ErrorCode {
    /// The status carrying this code.
    pub fn status(self) -> Status {
        Status(self.code())
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Other(code) => write!(f, "error {code:#06x}"),
            known => f.write_str(known.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_round_trip_through_status() {
        for code in 0x0100..=0x0120u16 {
            let error = ErrorCode::from_status(Status(code)).expect("error range");
            assert_eq!(error.code(), code);
        }
        assert_eq!(ErrorCode::from_status(Status::FENCED), None);
        assert_eq!(
            ErrorCode::from_status(Status(0x0105)),
            Some(ErrorCode::Malformed)
        );
    }

    #[test]
    fn debug_names_known_statuses_and_shows_unknown_ones_in_hex() {
        assert_eq!(format!("{:?}", Status::FENCED), "FENCED");
        assert_eq!(format!("{:?}", Status::LEASE_LOST), "LEASE_LOST");
        assert_eq!(format!("{:?}", Status(0x0105)), "MALFORMED");
        // Once printed "None" and "Some(Other(1024))".
        assert_eq!(format!("{:?}", Status(0x0050)), "Status(0x0050)");
        assert_eq!(format!("{:?}", Status(0x0400)), "Status(0x0400)");
    }
}
