//! The merge operator: how merge operands fold into a value, and the rules every path that
//! meets them (point reads, scans both ways, L0 flushes, compactions) shares.
//!
//! A key's versions, newest first, fold down to the first base: a value, or a tombstone (no
//! base value, older versions hidden). Operands apply oldest first onto the base:
//! `existing = op(key, existing, operand)`. An operand expired at the read's time is skipped;
//! the rest still fold. An expired value is a tombstone, as everywhere else. A key with
//! operands but no base anywhere folds onto `None`.
//!
//! The operator must be associative (as SlateDB requires): compaction folds runs of
//! operands ahead of time, and reads fold what is left on top.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{CoreError, CoreResult};
use crate::format::row::{Row, RowKind};

pub trait MergeOperator: Send + Sync {
    /// Folds `operands` (oldest first, at least one) onto `existing`.
    fn fold(&self, key: &[u8], existing: Option<&[u8]>, operands: &[Bytes]) -> CoreResult<Bytes>;
}

pub type Operator = Arc<dyn MergeOperator>;

/// The built-in operators, which fold without calling back into Python.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    /// Appends operands to the existing value.
    Concat,
    /// Adds 8-byte little-endian unsigned integers, wrapping on overflow.
    AddU64,
    /// Keeps the bytewise greatest of the existing value and the operands (for fixed-width
    /// big-endian integers, the numeric maximum).
    Max,
}

fn le_u64(key: &[u8], data: &[u8], what: &str) -> CoreResult<u64> {
    let raw: [u8; 8] = data.try_into().map_err(|_| {
        CoreError::operator(
            key,
            format!("AddU64 needs 8-byte little-endian integers, but the {what} is {} bytes", data.len()),
        )
    })?;
    Ok(u64::from_le_bytes(raw))
}

impl MergeOperator for Builtin {
    fn fold(&self, key: &[u8], existing: Option<&[u8]>, operands: &[Bytes]) -> CoreResult<Bytes> {
        match self {
            Builtin::Concat => {
                let total = existing.map_or(0, <[u8]>::len) + operands.iter().map(Bytes::len).sum::<usize>();
                let mut out = Vec::with_capacity(total);
                out.extend_from_slice(existing.unwrap_or_default());
                for o in operands {
                    out.extend_from_slice(o);
                }
                Ok(Bytes::from(out))
            }
            Builtin::AddU64 => {
                let mut sum = existing.map(|e| le_u64(key, e, "existing value")).transpose()?.unwrap_or(0);
                for o in operands {
                    sum = sum.wrapping_add(le_u64(key, o, "operand")?);
                }
                Ok(Bytes::copy_from_slice(&sum.to_le_bytes()))
            }
            Builtin::Max => {
                let best = operands.iter().map(AsRef::as_ref).fold(existing, |acc, o| match acc {
                    Some(a) if a >= o => Some(a),
                    _ => Some(o),
                });
                Ok(Bytes::copy_from_slice(best.unwrap_or_default()))
            }
        }
    }
}

/// Why an operator failed, kept whole so the binding can chain it (a Python exception).
/// Errors compare equal whatever their causes.
#[derive(Clone, Default)]
pub struct Cause(pub Option<Arc<dyn Any + Send + Sync>>);

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "Cause(..)" } else { "Cause(None)" })
    }
}

impl PartialEq for Cause {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Cause {}

/// The error a read meets on a merge operand when no operator is configured.
pub fn missing_operator(key: &[u8]) -> CoreError {
    CoreError::operator(
        key,
        "it holds merge operands, and reading them needs a merge operator (DbOptions(merge_operator=...), \
         ReaderOptions(merge_operator=...), or the compactor's)",
    )
}

/// What one version means to a fold, at time `now`.
pub enum Version {
    /// A live merge operand.
    Operand,
    /// An expired merge operand: skipped.
    Skip,
    /// A base: the value, or None for a tombstone or an expired value.
    Base(Option<Bytes>),
}

pub fn version(row: &Row, now: Option<i64>) -> Version {
    let expired = now.is_some_and(|t| row.is_expired(t));
    match row.kind {
        RowKind::Merge if expired => Version::Skip,
        RowKind::Merge => Version::Operand,
        RowKind::Value if !expired => Version::Base(Some(row.value.clone())),
        _ => Version::Base(None),
    }
}

/// What ends a fold: the key's versions ran out with no base (`End`), or a base (its value,
/// None for a tombstone or an expired value).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Below {
    #[default]
    End,
    Base(Option<Bytes>),
}

impl Below {
    pub fn value(self) -> Option<Bytes> {
        match self {
            Below::End => None,
            Below::Base(v) => v,
        }
    }
}

/// Operands of one key gathered newest first, folded onto a base when one is met (or onto
/// None at the end of the key).
#[derive(Clone, Default)]
pub struct Pending {
    /// Newest first.
    pub operands: Vec<Bytes>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.operands.is_empty()
    }

    /// The key's value: `base` with the operands applied (oldest first), or `base` itself
    /// when there are none. Leaves the list empty.
    pub fn finish(&mut self, op: &dyn MergeOperator, key: &[u8], base: Option<Bytes>) -> CoreResult<Option<Bytes>> {
        if self.operands.is_empty() {
            return Ok(base);
        }
        self.operands.reverse();
        let out = op.fold(key, base.as_deref(), &self.operands);
        self.operands.clear();
        out.map(Some)
    }
}

#[cfg(test)]
mod tests;
