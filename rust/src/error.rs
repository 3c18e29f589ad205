//! The one error type of the native core.
//!
//! Every decoder returns `CoreError` instead of panicking: corrupt, truncated or
//! unknown-version input is an ordinary error that names the file offset where the broken
//! structure starts and what was wrong with it. `bindings/errors.rs` maps each variant to a
//! class of `slatedb_py.errors`.

use std::fmt;

/// Result alias used throughout the core.
pub type CoreResult<T> = Result<T, CoreError>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// Bytes that do not decode: truncated, out of range, impossible values.
    #[error("corrupt data at offset {offset}: {message}")]
    Corrupt { offset: u64, message: String },

    /// A stored CRC-32 that does not match the bytes it covers.
    #[error("checksum mismatch at offset {offset} ({what}): stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        offset: u64,
        what: &'static str,
        stored: u32,
        computed: u32,
    },

    /// A format version this build does not know.
    #[error("unsupported {what} version {version} at offset {offset} (supported: {supported})")]
    UnsupportedVersion {
        offset: u64,
        what: &'static str,
        version: u32,
        supported: &'static str,
    },

    /// A caller passed something the format cannot represent.
    #[error("{0}")]
    Invalid(String),

    /// A streaming source ran out of fetched input: not a failure, the caller feeds more
    /// blocks and resumes (see `merge::MergeIterator::waiting`).
    #[error("more input needed")]
    Pending,
}

impl CoreError {
    pub fn corrupt(offset: u64, message: impl fmt::Display) -> Self {
        CoreError::Corrupt {
            offset,
            message: message.to_string(),
        }
    }

    pub fn invalid(message: impl fmt::Display) -> Self {
        CoreError::Invalid(message.to_string())
    }

    /// Re-anchor an error found inside a sub-structure (a block, a flatbuffer) at the file
    /// offset where that structure starts, and say which structure it was.
    #[must_use]
    pub fn within(self, base: u64, context: &str) -> Self {
        match self {
            CoreError::Corrupt { offset, message } => CoreError::Corrupt {
                offset: base + offset,
                message: format!("{context}: {message}"),
            },
            CoreError::Checksum {
                offset,
                what,
                stored,
                computed,
            } => CoreError::Checksum {
                offset: base + offset,
                what,
                stored,
                computed,
            },
            CoreError::UnsupportedVersion {
                offset,
                what,
                version,
                supported,
            } => CoreError::UnsupportedVersion {
                offset: base + offset,
                what,
                version,
                supported,
            },
            other @ (CoreError::Invalid(_) | CoreError::Pending) => other,
        }
    }

    /// Moves the error's offset by `base` (the file offset where the buffer it was found in
    /// starts).
    #[must_use]
    pub fn shifted(self, base: u64) -> Self {
        match self {
            CoreError::Corrupt { offset, message } => CoreError::Corrupt { offset: offset + base, message },
            CoreError::Checksum { offset, what, stored, computed } => {
                CoreError::Checksum { offset: offset + base, what, stored, computed }
            }
            CoreError::UnsupportedVersion { offset, what, version, supported } => {
                CoreError::UnsupportedVersion { offset: offset + base, what, version, supported }
            }
            other @ (CoreError::Invalid(_) | CoreError::Pending) => other,
        }
    }

    /// The file offset the error points at, when it points at one.
    #[must_use]
    pub fn offset(&self) -> Option<u64> {
        match self {
            CoreError::Corrupt { offset, .. }
            | CoreError::Checksum { offset, .. }
            | CoreError::UnsupportedVersion { offset, .. } => Some(*offset),
            CoreError::Invalid(_) | CoreError::Pending => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_shifts_offset_and_prefixes_context() {
        let e = CoreError::corrupt(5, "bad varint").within(100, "data block 3");
        assert_eq!(e.offset(), Some(105));
        assert_eq!(
            e.to_string(),
            "corrupt data at offset 105: data block 3: bad varint"
        );
    }

    #[test]
    fn invalid_has_no_offset() {
        assert_eq!(CoreError::invalid("empty key").offset(), None);
    }
}
