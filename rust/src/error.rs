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
    Checksum { offset: u64, what: &'static str, stored: u32, computed: u32 },

    /// A format version this build does not know.
    #[error("unsupported {what} version {version} at offset {offset} (supported: {supported})")]
    UnsupportedVersion { offset: u64, what: &'static str, version: u32, supported: &'static str },

    /// A caller passed something the format cannot represent.
    #[error("{0}")]
    Invalid(String),

    /// A streaming source ran out of fetched input: not a failure, the caller feeds more
    /// blocks and resumes (see `merge::MergeIterator::waiting`).
    #[error("more input needed")]
    Pending,

    /// A data error (`Corrupt`, `Checksum`, `UnsupportedVersion`) found in a named object,
    /// for code that handles several objects at once (a compaction's inputs), where the
    /// binding cannot tell from the call which object broke. Built by `in_object`.
    #[error("{object}: {error}")]
    InObject { object: String, error: Box<CoreError> },

    /// An object a read needs is not in the store (a local SST file read natively). The
    /// engine moves the read to a newer tree, as for a missing object fetched by Python.
    #[error("object {0} is missing from the store")]
    Missing(String),

    /// The operating system failed a native read of a local object.
    #[error("reading {object}: {message}")]
    Io { object: String, message: String },
}

impl CoreError {
    pub fn corrupt(offset: u64, message: impl fmt::Display) -> Self {
        CoreError::Corrupt { offset, message: message.to_string() }
    }

    pub fn invalid(message: impl fmt::Display) -> Self {
        CoreError::Invalid(message.to_string())
    }

    /// Names the object a data error was found in (no-op without a name, for non-data
    /// errors, and for an error that already names one): `Pending` must stay `Pending`.
    #[must_use]
    pub fn in_object(self, object: Option<&str>) -> Self {
        match (self, object) {
            (
                e @ (CoreError::Corrupt { .. } | CoreError::Checksum { .. } | CoreError::UnsupportedVersion { .. }),
                Some(o),
            ) => CoreError::InObject { object: o.to_owned(), error: Box::new(e) },
            (other, _) => other,
        }
    }

    /// The object the error names (see `in_object`), and the error itself.
    pub fn split_object(self) -> (Option<String>, CoreError) {
        match self {
            CoreError::InObject { object, error } => (Some(object), *error),
            other => (None, other),
        }
    }

    /// Re-anchor an error found inside a sub-structure (a block, a flatbuffer) at the file
    /// offset where that structure starts, and say which structure it was.
    #[must_use]
    pub fn within(self, base: u64, context: &str) -> Self {
        match self {
            CoreError::Corrupt { offset, message } => {
                CoreError::Corrupt { offset: base + offset, message: format!("{context}: {message}") }
            }
            CoreError::Checksum { offset, what, stored, computed } => {
                CoreError::Checksum { offset: base + offset, what, stored, computed }
            }
            CoreError::UnsupportedVersion { offset, what, version, supported } => {
                CoreError::UnsupportedVersion { offset: base + offset, what, version, supported }
            }
            CoreError::InObject { object, error } => {
                CoreError::InObject { object, error: Box::new(error.within(base, context)) }
            }
            other @ (CoreError::Invalid(_) | CoreError::Pending | CoreError::Missing(_) | CoreError::Io { .. }) => {
                other
            }
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
            CoreError::InObject { object, error } => {
                CoreError::InObject { object, error: Box::new(error.shifted(base)) }
            }
            other @ (CoreError::Invalid(_) | CoreError::Pending | CoreError::Missing(_) | CoreError::Io { .. }) => {
                other
            }
        }
    }

    /// The file offset the error points at, when it points at one.
    #[must_use]
    pub fn offset(&self) -> Option<u64> {
        match self {
            CoreError::Corrupt { offset, .. }
            | CoreError::Checksum { offset, .. }
            | CoreError::UnsupportedVersion { offset, .. } => Some(*offset),
            CoreError::InObject { error, .. } => error.offset(),
            CoreError::Invalid(_) | CoreError::Pending | CoreError::Missing(_) | CoreError::Io { .. } => None,
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
        assert_eq!(e.to_string(), "corrupt data at offset 105: data block 3: bad varint");
    }

    #[test]
    fn in_object_names_data_errors_only() {
        let e = CoreError::corrupt(5, "bad varint").in_object(Some("compacted/01X.sst")).within(100, "data block 3");
        assert_eq!(e.offset(), Some(105));
        assert_eq!(e.to_string(), "compacted/01X.sst: corrupt data at offset 105: data block 3: bad varint");
        assert_eq!(e.clone().in_object(Some("other.sst")), e, "the first name sticks");
        let (object, inner) = e.split_object();
        assert_eq!(object.as_deref(), Some("compacted/01X.sst"));
        assert_eq!(inner.offset(), Some(105));
        assert_eq!(CoreError::Pending.in_object(Some("x.sst")), CoreError::Pending);
        assert_eq!(CoreError::invalid("no").in_object(Some("x.sst")), CoreError::invalid("no"));
        assert_eq!(CoreError::corrupt(1, "y").in_object(None), CoreError::corrupt(1, "y"));
    }

    #[test]
    fn invalid_has_no_offset() {
        assert_eq!(CoreError::invalid("empty key").offset(), None);
    }
}
