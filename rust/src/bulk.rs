//! A bulk write (`put_many` / `delete_many` from whole arrays) applied to the memtable with
//! one sequence number, as a write batch is (`batch.rs`): a later op on a key replaces an
//! earlier one. The items are read where they lie (numpy or Arrow buffers, `bindings/
//! columns.rs`) and copied once, into the arena: no batch buffer in between.

use std::collections::HashMap;
use std::ops::Range;

use crate::format::row::RowKind;
use crate::memtable::Memtable;

/// Items of a bulk write, read by index; every item was checked before (key sizes).
pub trait Items {
    fn item(&self, i: usize) -> &[u8];
}

/// The ops of `range` that take effect, ascending: the last op of each key. None when all do
/// (keys strictly ascending, the common bulk load: no map is built).
pub fn effective(keys: &dyn Items, range: Range<usize>) -> Option<Vec<usize>> {
    if (range.start + 1..range.end).all(|i| keys.item(i - 1) < keys.item(i)) {
        return None;
    }
    let mut last: HashMap<&[u8], usize> = HashMap::with_capacity(range.len());
    for i in range {
        last.insert(keys.item(i), i);
    }
    let mut keep: Vec<usize> = last.into_values().collect();
    keep.sort_unstable();
    Some(keep)
}

impl Memtable {
    /// Applies ops `range` of a bulk write with one `seq`, queued for the WAL: puts of
    /// `values` expiring at `expire_ts`, or deletes when `values` is None. Cannot fail: the
    /// caller checked every item first, so a bulk write is applied whole or not at all.
    pub fn apply_bulk(
        &mut self,
        keys: &dyn Items,
        values: Option<&dyn Items>,
        range: Range<usize>,
        seq: u64,
        create_ts: i64,
        expire_ts: Option<i64>,
    ) {
        let mut one = |i: usize| {
            let (value, kind, expire) = match values {
                Some(v) => (v.item(i), RowKind::Value, expire_ts),
                None => (&[][..], RowKind::Tombstone, None),
            };
            self.insert_parts(keys.item(i), value, seq, kind, expire, Some(create_ts), true);
        };
        match effective(keys, range.clone()) {
            None => range.for_each(&mut one),
            Some(keep) => keep.into_iter().for_each(&mut one),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Items for Vec<&[u8]> {
        fn item(&self, i: usize) -> &[u8] {
            self[i]
        }
    }

    #[test]
    fn ascending_keys_keep_every_op_and_duplicates_keep_the_last() {
        let sorted: Vec<&[u8]> = vec![b"a", b"b", b"c"];
        assert_eq!(effective(&sorted, 0..3), None);
        assert_eq!(effective(&sorted, 1..1), None);
        let dup: Vec<&[u8]> = vec![b"b", b"a", b"b", b"c", b"a"];
        assert_eq!(effective(&dup, 0..5), Some(vec![2, 3, 4]));
        assert_eq!(effective(&dup, 0..2), Some(vec![0, 1]), "a range is judged on its own");
    }

    #[test]
    fn apply_bulk_writes_the_winners_with_one_seq() {
        let mut m = Memtable::new();
        let keys: Vec<&[u8]> = vec![b"k", b"j", b"k"];
        let values: Vec<&[u8]> = vec![b"old", b"v", b"new"];
        m.apply_bulk(&keys, Some(&values), 0..3, 7, 1000, Some(1500));
        let k = m.get(b"k", 7).expect("written");
        assert_eq!((&k.value[..], k.seq, k.expire_ts, k.create_ts), (&b"new"[..], 7, Some(1500), Some(1000)));
        m.apply_bulk(&keys, None, 1..2, 8, 1001, Some(1));
        let j = m.get(b"j", 8).expect("deleted");
        assert_eq!((j.kind, j.expire_ts), (RowKind::Tombstone, None));
        assert_eq!(m.take_wal().len(), 3, "queued for the WAL, the duplicate dropped");
    }
}
