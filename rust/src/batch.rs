//! A write batch applied to the memtable with one sequence number: a later put or delete of
//! a key replaces the earlier ops on it; merge operands after them fold onto them (with the
//! database's merge operator), as SlateDB folds a batch.

use std::collections::HashMap;

use bytes::Bytes;

use crate::error::CoreResult;
use crate::format::row::{Row, RowKind};
use crate::memtable::Memtable;
use crate::operator::{missing_operator, MergeOperator, Operator};

/// One op of a write batch: a put (`value`, with an optional TTL), a delete (`None`), or
/// with `merge` a merge operand (`value`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchOp {
    pub key: Bytes,
    pub value: Option<Bytes>,
    pub ttl_ms: Option<i64>,
    pub merge: bool,
}

/// Indices of the ops that take effect, ascending: the last op of each key. Keys already
/// strictly ascending (the common bulk load) hold no duplicates and skip the map.
pub fn effective_ops(ops: &[BatchOp]) -> Vec<usize> {
    if ops.windows(2).all(|w| w[0].key < w[1].key) {
        return (0..ops.len()).collect();
    }
    let mut last: HashMap<&[u8], usize> = HashMap::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        last.insert(&op.key[..], i);
    }
    let mut keep: Vec<usize> = last.into_values().collect();
    keep.sort_unstable();
    keep
}

/// The one row a key's ops of a batch come to (they are `ops[i]` for `i` in `idx`, in batch
/// order, at least one merge among them): the operands after the last put or delete, folded
/// onto it (a value row, or a tombstone's nothing) or, with none, onto nothing (an operand
/// row). It expires with its earliest-expiring part.
fn fold_ops(
    op: &dyn MergeOperator,
    ops: &[BatchOp],
    idx: &[usize],
    seq: u64,
    create_ts: i64,
    default_ttl_ms: Option<i64>,
) -> CoreResult<Row> {
    let expire = |o: &BatchOp| o.ttl_ms.or(default_ttl_ms).map(|t| create_ts.saturating_add(t));
    let first = idx.iter().rposition(|&i| !ops[i].merge).map_or(0, |p| p + 1);
    let base = first.checked_sub(1).map(|p| &ops[idx[p]]);
    let operands: Vec<Bytes> = idx[first..].iter().filter_map(|&i| ops[i].value.clone()).collect();
    let key = ops[idx[0]].key.clone();
    let mut expire_ts = idx[first..].iter().filter_map(|&i| expire(&ops[i])).min();
    let (value, kind) = match base {
        None if operands.len() == 1 => (operands[0].clone(), RowKind::Merge),
        None => (op.fold(&key, None, &operands)?, RowKind::Merge),
        Some(b) => {
            if b.value.is_some() {
                expire_ts = [expire_ts, expire(b)].into_iter().flatten().min();
            }
            (op.fold(&key, b.value.as_deref(), &operands)?, RowKind::Value)
        }
    };
    Ok(Row { key, value, seq, kind, expire_ts, create_ts: Some(create_ts) })
}

/// The rows a batch with merge operands comes to, one per key, in key order (`fold_ops`).
fn fold_batch(
    ops: &[BatchOp],
    seq: u64,
    create_ts: i64,
    default_ttl_ms: Option<i64>,
    op: Option<&Operator>,
) -> CoreResult<Vec<Row>> {
    let mut by_key: HashMap<&[u8], Vec<usize>> = HashMap::new();
    for (i, o) in ops.iter().enumerate() {
        by_key.entry(&o.key[..]).or_default().push(i);
    }
    let mut rows = Vec::with_capacity(by_key.len());
    for idx in by_key.values() {
        let last = &ops[idx[idx.len() - 1]];
        if !last.merge {
            let expire = last.ttl_ms.or(default_ttl_ms).map(|t| create_ts.saturating_add(t));
            rows.push(match &last.value {
                Some(v) => Row {
                    expire_ts: expire,
                    create_ts: Some(create_ts),
                    ..Row::value(last.key.clone(), v.clone(), seq)
                },
                None => Row { create_ts: Some(create_ts), ..Row::tombstone(last.key.clone(), seq) },
            });
            continue;
        }
        let op = op.ok_or_else(|| missing_operator(&last.key))?;
        rows.push(fold_ops(&**op, ops, idx, seq, create_ts, default_ttl_ms)?);
    }
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(rows)
}

/// A write batch made ready for the memtable with its one `seq`: the last put or delete per
/// key wins (`effective_ops`), merge operands folded (`fold_ops`, which needs the operator);
/// a put expires `ttl_ms` (or `default_ttl_ms`) after `create_ts`.
///
/// Made without the memtable, so that a caller folds outside its lock: a Python merge
/// operator takes the GIL, and may even read the database (`bindings/memtable.rs`). Whatever
/// can fail fails here, so `Memtable::apply_batch` applies all or nothing.
pub struct PreparedBatch<'a>(Prepared<'a>);

enum Prepared<'a> {
    /// No merge operand: the ops that take effect, inserted from the batch's own bytes.
    Plain { ops: &'a [BatchOp], keep: Vec<usize>, seq: u64, create_ts: i64, default_ttl_ms: Option<i64> },
    /// With merge operands: one row per key (`fold_batch`).
    Folded(Vec<Row>),
}

impl<'a> PreparedBatch<'a> {
    pub fn new(
        ops: &'a [BatchOp],
        seq: u64,
        create_ts: i64,
        default_ttl_ms: Option<i64>,
        op: Option<&Operator>,
    ) -> CoreResult<Self> {
        Ok(PreparedBatch(if ops.iter().any(|o| o.merge) {
            Prepared::Folded(fold_batch(ops, seq, create_ts, default_ttl_ms, op)?)
        } else {
            Prepared::Plain { ops, keep: effective_ops(ops), seq, create_ts, default_ttl_ms }
        }))
    }
}

impl Memtable {
    /// Applies a prepared batch (`PreparedBatch::new`), queued for the WAL.
    pub fn apply_batch(&mut self, batch: &PreparedBatch<'_>) {
        match &batch.0 {
            Prepared::Folded(rows) => {
                for r in rows {
                    self.insert(r, true);
                }
            }
            Prepared::Plain { ops, keep, seq, create_ts, default_ttl_ms } => {
                for &i in keep {
                    let op = &ops[i];
                    match &op.value {
                        None => self.insert_parts(&op.key, &[], *seq, RowKind::Tombstone, None, Some(*create_ts), true),
                        Some(v) => {
                            let expire = op.ttl_ms.or(*default_ttl_ms).map(|t| create_ts.saturating_add(t));
                            self.insert_parts(&op.key, v, *seq, RowKind::Value, expire, Some(*create_ts), true);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &str, ttl_ms: Option<i64>) -> BatchOp {
        BatchOp { key: Bytes::from(key.to_owned()), value: Some(Bytes::from(value.to_owned())), ttl_ms, merge: false }
    }

    fn delete(key: &str) -> BatchOp {
        BatchOp { key: Bytes::from(key.to_owned()), value: None, ttl_ms: None, merge: false }
    }

    #[test]
    fn sorted_keys_keep_every_op() {
        let ops = [put("a", "1", None), put("b", "2", None), delete("c")];
        assert_eq!(effective_ops(&ops), vec![0, 1, 2]);
        assert_eq!(effective_ops(&[]), Vec::<usize>::new());
    }

    #[test]
    fn the_last_op_per_key_wins_in_batch_order() {
        let ops = [put("b", "1", None), put("a", "1", None), delete("b"), put("a", "2", None), put("c", "3", None)];
        assert_eq!(effective_ops(&ops), vec![2, 3, 4]);
        // Equal neighbours are not strictly ascending: deduplicated too.
        assert_eq!(effective_ops(&[put("a", "1", None), put("a", "2", None)]), vec![1]);
    }

    #[test]
    fn apply_batch_writes_the_winners_with_one_seq() {
        let mut m = Memtable::new();
        let ops = [put("k", "old", None), put("j", "v", Some(50)), delete("k"), put("i", "w", None)];
        m.apply_batch(&PreparedBatch::new(&ops, 7, 1000, Some(10), None).unwrap());
        assert_eq!(m.get(b"k", 7).map(|r| r.kind), Some(RowKind::Tombstone));
        let j = m.get(b"j", 7).unwrap();
        assert_eq!((j.seq, j.expire_ts, j.create_ts), (7, Some(1050), Some(1000)));
        assert_eq!(m.get(b"i", 7).unwrap().expire_ts, Some(1010), "the default TTL");
        assert_eq!(m.take_wal().len(), 3, "queued for the WAL, duplicates dropped");
    }
}
