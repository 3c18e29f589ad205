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

    /// A merge operand could not be folded: no operator is configured, the operator failed
    /// (`cause` keeps its exception, for the binding to chain), or a built-in operator met
    /// bytes it cannot take.
    #[error("merge of key {key}: {message}")]
    Operator { key: String, message: String, cause: crate::operator::Cause },

    /// A bug: native state poisoned by an earlier panic, or an invariant that broke.
    #[error("{0}")]
    Internal(String),
}

/// The class of `slatedb_py.errors` a `CoreError` is raised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    InvalidArgument,
    Internal,
    Data,
    UnsupportedFormat,
    MissingObject,
    Unavailable,
    MergeOperator,
}

/// What the bindings raise for a `CoreError`: the class, its message, and its `object` and
/// `offset` attributes. `located` says whether the class takes them (the `DataError`
/// family); `MissingObjectError` carries `object` only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReport {
    pub class: ErrorClass,
    pub message: String,
    pub located: bool,
    pub object: Option<String>,
    pub offset: Option<u64>,
}

impl ErrorReport {
    fn plain(class: ErrorClass, message: String) -> Self {
        ErrorReport { class, message, located: false, object: None, offset: None }
    }
}

impl CoreError {
    pub fn corrupt(offset: u64, message: impl fmt::Display) -> Self {
        CoreError::Corrupt { offset, message: message.to_string() }
    }

    pub fn invalid(message: impl fmt::Display) -> Self {
        CoreError::Invalid(message.to_string())
    }

    /// A merge of `key` that failed for `message`.
    pub fn operator(key: &[u8], message: impl fmt::Display) -> Self {
        CoreError::Operator {
            key: crate::format::row::show_key(key),
            message: message.to_string(),
            cause: crate::operator::Cause::default(),
        }
    }

    /// A lock whose holder panicked: `what` names the state behind it.
    pub fn poisoned(what: &str) -> Self {
        CoreError::Internal(format!("{what} poisoned by an earlier panic"))
    }

    /// The Python exception this error is raised as; `object` names the object (file) being
    /// decoded, when the caller knows it. An error that names its own object
    /// (`CoreError::InObject`) keeps that name.
    pub fn report(self, object: Option<&str>) -> ErrorReport {
        let (own, err) = self.split_object();
        let object = own.as_deref().or(object).map(str::to_owned);
        let prefix = object.as_deref().map(|o| format!("{o}: ")).unwrap_or_default();
        let located = |class, offset| ErrorReport {
            class,
            message: format!("{prefix}{err}"),
            located: true,
            object: object.clone(),
            offset,
        };
        match &err {
            CoreError::Invalid(m) => ErrorReport::plain(ErrorClass::InvalidArgument, m.clone()),
            CoreError::Pending => ErrorReport::plain(
                ErrorClass::Internal,
                "a streaming merge stopped for input outside a compaction job".into(),
            ),
            CoreError::Internal(m) => ErrorReport::plain(ErrorClass::Internal, m.clone()),
            CoreError::UnsupportedVersion { offset, .. } => located(ErrorClass::UnsupportedFormat, Some(*offset)),
            CoreError::Corrupt { offset, .. } | CoreError::Checksum { offset, .. } => {
                located(ErrorClass::Data, Some(*offset))
            }
            CoreError::Missing(o) => ErrorReport {
                class: ErrorClass::MissingObject,
                message: err.to_string(),
                located: true,
                object: Some(o.clone()),
                offset: None,
            },
            CoreError::Io { .. } => ErrorReport::plain(ErrorClass::Unavailable, err.to_string()),
            CoreError::Operator { .. } => ErrorReport::plain(ErrorClass::MergeOperator, err.to_string()),
            // `split_object` unwrapped it; a nested one would be a bug, still a data error.
            CoreError::InObject { .. } => located(ErrorClass::Data, None),
        }
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
        self.rebased(base, Some(context))
    }

    /// Moves the error's offset by `base` (the file offset where the buffer it was found in
    /// starts).
    #[must_use]
    pub fn shifted(self, base: u64) -> Self {
        self.rebased(base, None)
    }

    fn rebased(self, base: u64, context: Option<&str>) -> Self {
        match self {
            CoreError::Corrupt { offset, message } => {
                let message = match context {
                    Some(context) => format!("{context}: {message}"),
                    None => message,
                };
                CoreError::Corrupt { offset: base + offset, message }
            }
            CoreError::Checksum { offset, what, stored, computed } => {
                CoreError::Checksum { offset: base + offset, what, stored, computed }
            }
            CoreError::UnsupportedVersion { offset, what, version, supported } => {
                CoreError::UnsupportedVersion { offset: base + offset, what, version, supported }
            }
            CoreError::InObject { object, error } => {
                CoreError::InObject { object, error: Box::new(error.rebased(base, context)) }
            }
            other @ (CoreError::Invalid(_)
            | CoreError::Pending
            | CoreError::Internal(_)
            | CoreError::Missing(_)
            | CoreError::Io { .. }
            | CoreError::Operator { .. }) => other,
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
            CoreError::Invalid(_)
            | CoreError::Pending
            | CoreError::Internal(_)
            | CoreError::Missing(_)
            | CoreError::Io { .. }
            | CoreError::Operator { .. } => None,
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
    fn report_maps_each_variant_to_its_class() {
        let r = CoreError::corrupt(7, "bad").report(Some("a.sst"));
        assert_eq!(r.class, ErrorClass::Data);
        assert_eq!((r.object.as_deref(), r.offset, r.located), (Some("a.sst"), Some(7), true));
        assert_eq!(r.message, "a.sst: corrupt data at offset 7: bad");
        let r = CoreError::Checksum { offset: 3, what: "block", stored: 1, computed: 2 }.report(None);
        assert_eq!((r.class, r.object, r.offset), (ErrorClass::Data, None, Some(3)));
        let r = CoreError::UnsupportedVersion { offset: 9, what: "sst", version: 9, supported: "1" }.report(None);
        assert_eq!((r.class, r.offset), (ErrorClass::UnsupportedFormat, Some(9)));
        let r = CoreError::corrupt(1, "x").in_object(Some("own.sst")).report(Some("caller.sst"));
        assert_eq!((r.class, r.object.as_deref(), r.offset), (ErrorClass::Data, Some("own.sst"), Some(1)));
        assert!(r.message.starts_with("own.sst: "));
        let r = CoreError::Missing("b.sst".into()).report(Some("other"));
        assert_eq!((r.class, r.object.as_deref(), r.offset), (ErrorClass::MissingObject, Some("b.sst"), None));
        let r = CoreError::Io { object: "c".into(), message: "EIO".into() }.report(None);
        assert_eq!((r.class, r.located), (ErrorClass::Unavailable, false));
        let r = CoreError::invalid("empty key").report(Some("x"));
        assert_eq!((r.class, r.message.as_str(), r.located), (ErrorClass::InvalidArgument, "empty key", false));
        assert_eq!(CoreError::Pending.report(None).class, ErrorClass::Internal);
        let r = CoreError::poisoned("memtable").report(None);
        assert_eq!((r.class, r.message.as_str()), (ErrorClass::Internal, "memtable poisoned by an earlier panic"));
    }

    #[test]
    fn invalid_has_no_offset() {
        assert_eq!(CoreError::invalid("empty key").offset(), None);
    }
}
