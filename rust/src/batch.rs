//! A write batch applied to the memtable with one sequence number: a later op on a key
//! replaces an earlier one of the same batch.

use std::collections::HashMap;

use bytes::Bytes;

use crate::format::row::RowKind;
use crate::memtable::Memtable;

/// One op of a write batch: a put (`value`, with an optional TTL) or a delete (`None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchOp {
    pub key: Bytes,
    pub value: Option<Bytes>,
    pub ttl_ms: Option<i64>,
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

impl Memtable {
    /// Applies a batch with one `seq`, queued for the WAL: the last op per key wins
    /// (`effective_ops`); a put expires `ttl_ms` (or `default_ttl_ms`) after `create_ts`.
    pub fn apply_batch(&mut self, ops: &[BatchOp], seq: u64, create_ts: i64, default_ttl_ms: Option<i64>) {
        for i in effective_ops(ops) {
            let op = &ops[i];
            match &op.value {
                None => self.insert_parts(&op.key, &[], seq, RowKind::Tombstone, None, Some(create_ts), true),
                Some(v) => {
                    let expire = op.ttl_ms.or(default_ttl_ms).map(|t| create_ts.saturating_add(t));
                    self.insert_parts(&op.key, v, seq, RowKind::Value, expire, Some(create_ts), true);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &str, ttl_ms: Option<i64>) -> BatchOp {
        BatchOp { key: Bytes::from(key.to_owned()), value: Some(Bytes::from(value.to_owned())), ttl_ms }
    }

    fn delete(key: &str) -> BatchOp {
        BatchOp { key: Bytes::from(key.to_owned()), value: None, ttl_ms: None }
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
        m.apply_batch(&ops, 7, 1000, Some(10));
        assert_eq!(m.get(b"k", 7).map(|r| r.kind), Some(RowKind::Tombstone));
        let j = m.get(b"j", 7).unwrap();
        assert_eq!((j.seq, j.expire_ts, j.create_ts), (7, Some(1050), Some(1000)));
        assert_eq!(m.get(b"i", 7).unwrap().expire_ts, Some(1010), "the default TTL");
        assert_eq!(m.take_wal().len(), 3, "queued for the WAL, duplicates dropped");
    }
}
