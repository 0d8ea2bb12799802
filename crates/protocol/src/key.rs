//! Key validation (protocol.md §6): 1..=`max_key_length` bytes, any values.

use crate::error::Invalid;
use crate::limits::Limits;

/// Checks a key against the limits.
pub fn validate_key(key: &[u8], limits: &Limits) -> Result<(), Invalid> {
    if key.is_empty() {
        return Err(Invalid::key("key is empty"));
    }
    if key.len() > limits.max_key_length as usize {
        return Err(Invalid::key(format!(
            "key is {} bytes; the limit is {}",
            key.len(),
            limits.max_key_length
        )));
    }
    Ok(())
}
