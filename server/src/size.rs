//! Sizes as people write them (`512MiB`, `1.5GiB`, `100MB`) and as the log
//! shows them ([`Size`]).

use std::fmt;

/// Parses sizes like `512MiB`, `1.5GiB`, `100MB`, `64k` or `1048576`.
///
/// Binary (`KiB`, `MiB`, `GiB`, `TiB`) and decimal (`KB`, `MB`, `GB`, `TB`)
/// suffixes are both accepted, case-insensitively; a bare `K`, `M`, `G` or
/// `T` is binary, as in memcached's `-m`. The number may have a fraction
/// (`1.5GiB`, `0.5MiB`); a size that is not a whole number of bytes is
/// rounded down.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let not_a_size = || format!("`{text}` is not a size such as 512MiB, 1.5GiB or 1048576");
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return Err(not_a_size());
    }
    let multiplier: u128 = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => return Err(format!("unknown size unit `{other}` in `{text}`")),
    };
    let too_large = || format!("`{text}` is too large");
    // Past 18 digits either part would overflow the arithmetic below; no
    // size needs them.
    if whole.len() > 18 {
        return Err(too_large());
    }
    let fraction = &fraction[..fraction.len().min(18)];
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| not_a_size())?
    };
    let scale = 10u128.pow(fraction.len() as u32);
    let fraction: u128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| not_a_size())?
    };
    let bytes = whole * multiplier + fraction * multiplier / scale;
    usize::try_from(bytes).map_err(|_| too_large())
}

/// A byte count shown the way [`parse_size`] reads it: in the largest
/// binary unit it reaches, with at most two decimals (`64MiB`, `1.5GiB`,
/// `1000B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub usize);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u64); 4] = [
            ("TiB", 1 << 40),
            ("GiB", 1 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
        ];
        let bytes = self.0 as u64;
        let Some(&(unit, scale)) = UNITS.iter().find(|(_, scale)| bytes >= *scale) else {
            return write!(f, "{bytes}B");
        };
        // Hundredths of the unit, rounded to nearest; trailing zeros dropped.
        let hundredths = (u128::from(bytes) * 100 + u128::from(scale) / 2) / u128::from(scale);
        let (whole, cents) = (hundredths / 100, hundredths % 100);
        match (cents, cents % 10) {
            (0, _) => write!(f, "{whole}{unit}"),
            (_, 0) => write!(f, "{whole}.{}{unit}", cents / 10),
            _ => write!(f, "{whole}.{cents:02}{unit}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_with_units() {
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("2gib"), Ok(2 << 30));
        assert_eq!(parse_size("100MB"), Ok(100_000_000));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size(" 1 TiB "), Ok(1 << 40));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("MiB").is_err());
    }

    #[test]
    fn parses_decimal_sizes_rounding_down_to_whole_bytes() {
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("0.5MiB"), Ok(512 << 10));
        assert_eq!(parse_size(".25KiB"), Ok(256));
        assert_eq!(parse_size("2.MiB"), Ok(2 << 20));
        assert_eq!(parse_size("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse_size("0.3KiB"), Ok(307), "307.2 bytes");
        assert_eq!(parse_size("1.5"), Ok(1));
        assert_eq!(
            parse_size("1.0000000000000000000000001KiB"),
            Ok(1024),
            "digits past the 18th are ignored"
        );
        assert!(parse_size(".").is_err());
        assert!(parse_size("1.2.3MiB").is_err());
        assert!(parse_size("-1MiB").is_err());
        assert!(parse_size("1,5GiB").is_err());
    }

    #[test]
    fn shows_sizes_in_the_largest_unit_with_at_most_two_decimals() {
        let show = |bytes: usize| Size(bytes).to_string();
        assert_eq!(show(0), "0B");
        assert_eq!(show(1000), "1000B");
        assert_eq!(show(1024), "1KiB");
        assert_eq!(show(64 << 20), "64MiB");
        assert_eq!(show(3 << 29), "1.5GiB");
        assert_eq!(show(9 << 28), "2.25GiB");
        assert_eq!(show(1 << 40), "1TiB");
        assert_eq!(show(100_000_000), "95.37MiB");
        assert_eq!(show((1 << 30) - 1), "1024MiB", "rounded to nearest");
    }

    #[test]
    fn what_is_shown_reads_back() {
        for bytes in [1024, 64 << 20, 3 << 29, 9 << 28, 1 << 40] {
            assert_eq!(parse_size(&Size(bytes).to_string()), Ok(bytes));
        }
    }
}
