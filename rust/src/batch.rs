//! A write batch applied to the memtable with one sequence number: a later put or delete of
//! a key replaces the earlier ops on it; merge operands after them fold onto them (with the
//! database's merge operator), as SlateDB folds a batch.

use std::collections::HashMap;

use bytes::Bytes;

use crate::error::CoreResult;
use crate::format::row::{Row, RowKind};
use crate::memtable::{Memtable, Slot};
use crate::operator::{missing_operator, MergeOperator, Operator};

/// What one op of a batch does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Put,
    Delete,
    Merge,
}

/// One op of a batch: its key is `klen` bytes at `off` in the batch's buffer, its value (a
/// put's, or a merge operand) the `vlen` bytes right after.
#[derive(Clone, Copy, Debug)]
struct Op {
    off: usize,
    klen: u32,
    vlen: u32,
    ttl_ms: Option<i64>,
    kind: OpKind,
}

/// A write batch: puts, deletes and merge operands, their bytes in one buffer (filling a
/// batch of thousands of keys costs a copy per key into it, no allocation per key; the
/// memtable takes the buffer with one copy).
#[derive(Clone, Debug, Default)]
pub struct Batch {
    data: Vec<u8>,
    ops: Vec<Op>,
    /// The index of the first merge operand (asked on every write, so kept, not searched).
    first_merge: Option<usize>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an op; the caller has checked the sizes (keys up to 65535 bytes, values up to
    /// 2**32-1).
    pub fn push(&mut self, kind: OpKind, key: &[u8], value: &[u8], ttl_ms: Option<i64>) {
        let off = self.data.len();
        self.data.extend_from_slice(key);
        self.data.extend_from_slice(value);
        let (klen, vlen) = (key.len() as u32, value.len() as u32);
        if kind == OpKind::Merge && self.first_merge.is_none() {
            self.first_merge = Some(self.ops.len());
        }
        self.ops.push(Op { off, klen, vlen, ttl_ms, kind });
    }

    pub fn put(&mut self, key: &[u8], value: &[u8], ttl_ms: Option<i64>) {
        self.push(OpKind::Put, key, value, ttl_ms);
    }

    pub fn merge(&mut self, key: &[u8], operand: &[u8], ttl_ms: Option<i64>) {
        self.push(OpKind::Merge, key, operand, ttl_ms);
    }

    pub fn delete(&mut self, key: &[u8]) {
        self.push(OpKind::Delete, key, &[], None);
    }

    /// Room for `ops` more ops of `bytes` bytes of keys and values in all.
    pub fn reserve(&mut self, ops: usize, bytes: usize) {
        self.ops.reserve(ops);
        self.data.reserve(bytes);
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn clear(&mut self) {
        self.truncate((0, 0));
    }

    /// Where the batch ends now, to go back to with `truncate` (a many-op call that fails
    /// part way adds nothing).
    pub fn mark(&self) -> (usize, usize) {
        (self.ops.len(), self.data.len())
    }

    pub fn truncate(&mut self, (ops, data): (usize, usize)) {
        self.ops.truncate(ops);
        self.data.truncate(data);
        self.first_merge = self.first_merge.filter(|&i| i < ops);
    }

    pub fn key(&self, i: usize) -> &[u8] {
        let o = &self.ops[i];
        &self.data[o.off..o.off + o.klen as usize]
    }

    /// The value of a put, or a merge operand; None for a delete.
    pub fn value(&self, i: usize) -> Option<&[u8]> {
        let o = &self.ops[i];
        let at = o.off + o.klen as usize;
        (o.kind != OpKind::Delete).then(|| &self.data[at..at + o.vlen as usize])
    }

    pub fn kind(&self, i: usize) -> OpKind {
        self.ops[i].kind
    }

    pub fn ttl_ms(&self, i: usize) -> Option<i64> {
        self.ops[i].ttl_ms
    }

    /// The index of the first merge operand, if any.
    pub fn first_merge(&self) -> Option<usize> {
        self.first_merge
    }

    /// Indices of the ops that take effect, ascending: the last op of each key. Keys already
    /// strictly ascending (the common bulk load) hold no duplicates and skip the map.
    pub fn effective_ops(&self) -> Vec<usize> {
        if (1..self.len()).all(|i| self.key(i - 1) < self.key(i)) {
            return (0..self.len()).collect();
        }
        let mut last: HashMap<&[u8], usize> = HashMap::with_capacity(self.len());
        for i in 0..self.len() {
            last.insert(self.key(i), i);
        }
        let mut keep: Vec<usize> = last.into_values().collect();
        keep.sort_unstable();
        keep
    }
}

/// The one row a key's ops of a batch come to (they are ops `idx`, in batch order, at least
/// one merge among them): the operands after the last put or delete, folded onto it (a value
/// row, or a tombstone's nothing) or, with none, onto nothing (an operand row). It expires
/// with its earliest-expiring part.
fn fold_ops(
    op: &dyn MergeOperator,
    batch: &Batch,
    idx: &[usize],
    seq: u64,
    create_ts: i64,
    default_ttl_ms: Option<i64>,
) -> CoreResult<Row> {
    let expire = |i: usize| batch.ttl_ms(i).or(default_ttl_ms).map(|t| create_ts.saturating_add(t));
    let first = idx.iter().rposition(|&i| batch.kind(i) != OpKind::Merge).map_or(0, |p| p + 1);
    let base = first.checked_sub(1).map(|p| idx[p]);
    let operands: Vec<Bytes> =
        idx[first..].iter().filter_map(|&i| batch.value(i).map(Bytes::copy_from_slice)).collect();
    let key = Bytes::copy_from_slice(batch.key(idx[0]));
    let mut expire_ts = idx[first..].iter().filter_map(|&i| expire(i)).min();
    let (value, kind) = match base {
        None if operands.len() == 1 => (operands[0].clone(), RowKind::Merge),
        None => (op.fold(&key, None, &operands)?, RowKind::Merge),
        Some(b) => {
            if batch.kind(b) == OpKind::Put {
                expire_ts = [expire_ts, expire(b)].into_iter().flatten().min();
            }
            (op.fold(&key, batch.value(b), &operands)?, RowKind::Value)
        }
    };
    Ok(Row { key, value, seq, kind, expire_ts, create_ts: Some(create_ts) })
}

/// The rows a batch with merge operands comes to, one per key, in key order (`fold_ops`).
fn fold_batch(
    batch: &Batch,
    seq: u64,
    create_ts: i64,
    default_ttl_ms: Option<i64>,
    op: Option<&Operator>,
) -> CoreResult<Vec<Row>> {
    let mut by_key: HashMap<&[u8], Vec<usize>> = HashMap::new();
    for i in 0..batch.len() {
        by_key.entry(batch.key(i)).or_default().push(i);
    }
    let mut rows = Vec::with_capacity(by_key.len());
    for idx in by_key.values() {
        let last = idx[idx.len() - 1];
        let key = Bytes::copy_from_slice(batch.key(last));
        match batch.kind(last) {
            OpKind::Put => {
                let value = Bytes::copy_from_slice(batch.value(last).unwrap_or_default());
                let expire_ts = batch.ttl_ms(last).or(default_ttl_ms).map(|t| create_ts.saturating_add(t));
                rows.push(Row { expire_ts, create_ts: Some(create_ts), ..Row::value(key, value, seq) });
            }
            OpKind::Delete => rows.push(Row { create_ts: Some(create_ts), ..Row::tombstone(key, seq) }),
            OpKind::Merge => {
                let op = op.ok_or_else(|| missing_operator(&key))?;
                rows.push(fold_ops(&**op, batch, idx, seq, create_ts, default_ttl_ms)?);
            }
        }
    }
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(rows)
}

/// A write batch made ready for the memtable with its one `seq`: the last put or delete per
/// key wins (`Batch::effective_ops`), merge operands folded (`fold_ops`, which needs the
/// operator); a put expires `ttl_ms` (or `default_ttl_ms`) after `create_ts`.
///
/// Made without the memtable, so that a caller folds outside its lock: a Python merge
/// operator takes the GIL, and may even read the database (`bindings/memtable.rs`). Whatever
/// can fail fails here, so `Memtable::apply_batch` applies all or nothing.
pub struct PreparedBatch<'a>(Prepared<'a>);

enum Prepared<'a> {
    /// No merge operand: the ops that take effect, inserted from the batch's own bytes.
    Plain { batch: &'a Batch, keep: Vec<usize>, seq: u64, create_ts: i64, default_ttl_ms: Option<i64> },
    /// With merge operands: one row per key (`fold_batch`).
    Folded(Vec<Row>),
}

impl<'a> PreparedBatch<'a> {
    pub fn new(
        batch: &'a Batch,
        seq: u64,
        create_ts: i64,
        default_ttl_ms: Option<i64>,
        op: Option<&Operator>,
    ) -> CoreResult<Self> {
        Ok(PreparedBatch(if batch.first_merge().is_some() {
            Prepared::Folded(fold_batch(batch, seq, create_ts, default_ttl_ms, op)?)
        } else {
            Prepared::Plain { batch, keep: batch.effective_ops(), seq, create_ts, default_ttl_ms }
        }))
    }
}

impl Memtable {
    /// Applies a prepared batch (`PreparedBatch::new`), queued for the WAL. A plain batch's
    /// buffer is copied into the arena whole, once, when every op takes effect and it fits a
    /// segment's u32 offsets (else each op that takes effect is copied on its own).
    pub fn apply_batch(&mut self, prepared: &PreparedBatch<'_>) {
        let (batch, keep, seq, create_ts, default_ttl_ms) = match &prepared.0 {
            Prepared::Folded(rows) => {
                for r in rows {
                    self.insert(r, true);
                }
                return;
            }
            Prepared::Plain { batch, keep, seq, create_ts, default_ttl_ms } => {
                (batch, keep, *seq, *create_ts, *default_ttl_ms)
            }
        };
        let whole = keep.len() == batch.len() && batch.data.len() <= (u32::MAX / 2) as usize;
        let base = whole.then(|| self.stash(&batch.data));
        for &i in keep {
            let o = &batch.ops[i];
            let (kind, expire) = match o.kind {
                OpKind::Delete => (RowKind::Tombstone, None),
                _ => (RowKind::Value, o.ttl_ms.or(default_ttl_ms).map(|t| create_ts.saturating_add(t))),
            };
            let vlen = if kind == RowKind::Tombstone { 0 } else { o.vlen as usize };
            let (seg, off) = match base {
                Some((seg, off)) => (seg, off + o.off),
                None => self.stash(&batch.data[o.off..o.off + o.klen as usize + vlen]),
            };
            let at = (seg, off, vlen);
            self.add(Slot::new(batch.key(i), at, seq, kind, expire, Some(create_ts)), true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(ops: &[(&str, Option<&str>, Option<i64>)]) -> Batch {
        let mut b = Batch::new();
        for (k, v, ttl) in ops {
            match v {
                Some(v) => b.put(k.as_bytes(), v.as_bytes(), *ttl),
                None => b.delete(k.as_bytes()),
            }
        }
        b
    }

    #[test]
    fn sorted_keys_keep_every_op() {
        let b = batch(&[("a", Some("1"), None), ("b", Some("2"), None), ("c", None, None)]);
        assert_eq!(b.effective_ops(), vec![0, 1, 2]);
        assert_eq!(Batch::new().effective_ops(), Vec::<usize>::new());
        assert_eq!((b.key(1), b.value(1), b.value(2)), (&b"b"[..], Some(&b"2"[..]), None));
    }

    #[test]
    fn the_last_op_per_key_wins_in_batch_order() {
        let b = batch(&[
            ("b", Some("1"), None),
            ("a", Some("1"), None),
            ("b", None, None),
            ("a", Some("2"), None),
            ("c", Some("3"), None),
        ]);
        assert_eq!(b.effective_ops(), vec![2, 3, 4]);
        // Equal neighbours are not strictly ascending: deduplicated too.
        assert_eq!(batch(&[("a", Some("1"), None), ("a", Some("2"), None)]).effective_ops(), vec![1]);
    }

    #[test]
    fn the_first_merge_is_kept_through_truncates() {
        let mut b = batch(&[("a", Some("1"), None)]);
        let mark = b.mark();
        b.merge(b"m", b"+", None);
        b.merge(b"n", b"+", None);
        assert_eq!(b.first_merge(), Some(1));
        b.truncate(mark);
        assert_eq!((b.first_merge(), b.len(), b.key(0)), (None, 1, &b"a"[..]));
        b.merge(b"m", b"+", None);
        b.clear();
        assert_eq!((b.first_merge(), b.len()), (None, 0));
    }

    #[test]
    fn apply_batch_writes_the_winners_with_one_seq() {
        let mut m = Memtable::new();
        let b =
            batch(&[("k", Some("old"), None), ("j", Some("v"), Some(50)), ("k", None, None), ("i", Some("w"), None)]);
        m.apply_batch(&PreparedBatch::new(&b, 7, 1000, Some(10), None).unwrap());
        assert_eq!(m.get(b"k", 7).map(|r| r.kind), Some(RowKind::Tombstone));
        let j = m.get(b"j", 7).unwrap();
        assert_eq!((j.seq, j.expire_ts, j.create_ts, &j.value[..]), (7, Some(1050), Some(1000), &b"v"[..]));
        assert_eq!(m.get(b"i", 7).unwrap().expire_ts, Some(1010), "the default TTL");
        assert_eq!(m.take_wal().len(), 3, "queued for the WAL, duplicates dropped");
    }

    #[test]
    fn a_sorted_batch_is_taken_whole_and_reads_back() {
        let mut m = Memtable::new();
        let b = batch(&[("a", Some("1"), None), ("b", None, None), ("c", Some(""), Some(5))]);
        m.apply_batch(&PreparedBatch::new(&b, 3, 100, None, None).unwrap());
        let rows = m.range(None, None);
        let got: Vec<_> = rows.iter().map(|r| (&r.key[..], &r.value[..], r.kind, r.expire_ts)).collect();
        assert_eq!(
            got,
            vec![
                (&b"a"[..], &b"1"[..], RowKind::Value, None),
                (b"b", b"", RowKind::Tombstone, None),
                (b"c", b"", RowKind::Value, Some(105)),
            ]
        );
        let wal: Vec<Row> = m.take_wal().rows().collect();
        assert_eq!(wal, rows, "the WAL queue holds the same rows, in batch order");
    }
}
