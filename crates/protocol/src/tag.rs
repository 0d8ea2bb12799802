//! Tag validation (protocol.md §8.1).

use crate::error::Invalid;
use crate::limits::Limits;

/// Checks one tag: 1..=`max_tag_length` bytes of UTF-8 with no whitespace
/// and no control characters.
pub fn validate_tag(tag: &[u8], limits: &Limits) -> Result<(), Invalid> {
    if tag.is_empty() {
        return Err(Invalid::tag("tag is empty".to_owned()));
    }
    if tag.len() > limits.max_tag_length as usize {
        return Err(Invalid::tag(format!(
            "tag is {} bytes; the limit is {}",
            tag.len(),
            limits.max_tag_length
        )));
    }
    // Most tags are ASCII; check those bytes without decoding.
    if tag.is_ascii() {
        return match tag.iter().find(|b| !b.is_ascii_graphic()) {
            Some(byte) => Err(Invalid::tag(format!(
                "tag contains whitespace or control byte {byte:#04x}"
            ))),
            None => Ok(()),
        };
    }
    let text = std::str::from_utf8(tag).map_err(|_| Invalid::tag("tag is not UTF-8".to_owned()))?;
    match text.chars().find(|c| c.is_whitespace() || c.is_control()) {
        Some(c) => Err(Invalid::tag(format!(
            "tag contains whitespace or control character U+{:04X}",
            u32::from(c)
        ))),
        None => Ok(()),
    }
}

/// Checks a tag count against the limit.
pub fn validate_tag_count(count: usize, limits: &Limits) -> Result<(), Invalid> {
    if count > limits.max_tags as usize {
        return Err(Invalid::too_many_tags(count, limits.max_tags));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::ErrorCode;

    fn check(tag: &str) -> Result<(), ErrorCode> {
        validate_tag(tag.as_bytes(), &Limits::default()).map_err(|e| e.code)
    }

    #[test]
    fn accepts_typical_tags() {
        for tag in ["node:5", "user:3", "posts", "product_list", "ünïcødé", "a"] {
            assert_eq!(check(tag), Ok(()), "{tag}");
        }
    }

    #[test]
    fn rejects_whitespace_controls_and_bad_utf8() {
        for tag in [
            "",
            "has space",
            "tab\t",
            "nl\n",
            "\u{7f}",
            "nbsp\u{a0}x",
            "\u{2003}",
        ] {
            assert_eq!(check(tag), Err(ErrorCode::TagInvalid), "{tag:?}");
        }
        assert!(validate_tag(&[0xff, 0xfe], &Limits::default()).is_err());
        let long = "x".repeat(1025);
        assert_eq!(check(&long), Err(ErrorCode::TagInvalid));
    }
}
