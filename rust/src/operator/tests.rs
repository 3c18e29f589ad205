//! The folding rules, held against one model on every path that folds: forward and backward
//! scans, point reads through memtables, L0 SSTs and runs whose SSTs split a key's versions,
//! batches, and compaction followed by a read.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::batch::{Batch, PreparedBatch};
use crate::fetch::Poll;
use crate::flush::L0Pieces;
use crate::memtable::Memtable;
use crate::merge::{MergeIterator, MergeMode};
use crate::read::tests::World;
use crate::read::{Found, GetMany, Level, TableRef, Tree};
use crate::scan::{Scan, Span};
use crate::source::{RowSource, VecSource};
use crate::sst::{SstFile, SstOptions};

fn concat() -> Operator {
    Arc::new(Builtin::Concat)
}

/// A key's value at `snapshot` and `now`, folded the slow way.
fn model(rows: &[Row], snapshot: u64, now: i64) -> BTreeMap<Bytes, Bytes> {
    let mut by_key: BTreeMap<Bytes, Vec<&Row>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.seq <= snapshot) {
        by_key.entry(r.key.clone()).or_default().push(r);
    }
    let mut out = BTreeMap::new();
    for (key, mut versions) in by_key {
        versions.sort_by_key(|v| std::cmp::Reverse(v.seq));
        let mut ops: Vec<&[u8]> = Vec::new();
        let mut base: Option<&[u8]> = None;
        for v in versions {
            let expired = v.is_expired(now);
            match v.kind {
                RowKind::Merge if expired => {}
                RowKind::Merge => ops.push(&v.value),
                RowKind::Value if !expired => {
                    base = Some(&v.value);
                    break;
                }
                _ => break,
            }
        }
        if ops.is_empty() && base.is_none() {
            continue;
        }
        let mut value = base.unwrap_or_default().to_vec();
        for o in ops.iter().rev() {
            value.extend_from_slice(o);
        }
        out.insert(key, Bytes::from(value));
    }
    out
}

fn arb_rows() -> impl Strategy<Value = Vec<Row>> {
    prop::collection::vec((0u8..5, 0u8..4, prop::option::of(0i64..30)), 0..60).prop_map(|spec| {
        // Unique seqs (one write each), keys from a small set so versions pile up.
        spec.into_iter()
            .enumerate()
            .map(|(i, (k, kind, exp))| {
                let seq = i as u64 + 1;
                let key = vec![b'a' + k];
                let value = format!("<{seq}>").into_bytes();
                let mut r = Row::value(key, value, seq);
                match kind {
                    0 => r.kind = RowKind::Tombstone,
                    1 => r.expire_ts = exp,
                    _ => {
                        r.kind = RowKind::Merge;
                        r.expire_ts = exp.filter(|_| kind == 3);
                    }
                }
                if r.kind == RowKind::Tombstone {
                    r.value = Bytes::new();
                }
                r
            })
            .collect()
    })
}

fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort_by(|a, b| a.key.cmp(&b.key).then(b.seq.cmp(&a.seq)));
    rows
}

/// A forward merge of the rows (backward walks are checked through `scan`).
fn visible(rows: Vec<Row>, snapshot: u64, now: i64) -> CoreResult<BTreeMap<Bytes, Bytes>> {
    let src: Vec<Box<dyn RowSource>> = vec![Box::new(VecSource::new(sorted(rows), "rows"))];
    let mut m = MergeIterator::new(src, MergeMode::Visible { snapshot_seq: snapshot, now: Some(now) })
        .with_operator(Some(concat()));
    let out = m.next_batch(usize::MAX)?;
    Ok(out.into_iter().map(|r| (r.key, r.value)).collect())
}

/// The rows spread over a tree by age: the newest third in a memtable, the middle third in an
/// L0 SST, the oldest in a run cut every `cut` rows (so a key's versions span its SSTs).
fn tree(w: &mut World, rows: &[Row], cut: usize) -> Tree {
    let n = rows.len() as u64;
    let (hi, lo) = (2 * n / 3, n / 3);
    let mut mt = Memtable::new();
    for r in rows.iter().filter(|r| r.seq > hi) {
        mt.insert(r, false);
    }
    let mut levels = Vec::new();
    let mid = sorted(rows.iter().filter(|r| r.seq > lo && r.seq <= hi).cloned().collect());
    if !mid.is_empty() {
        levels.push((Bytes::new(), Level::Table(w.sst("l0.sst", &mid, 64))));
    }
    let old = sorted(rows.iter().filter(|r| r.seq <= lo).cloned().collect());
    let run: Vec<TableRef> = old.chunks(cut).enumerate().map(|(i, c)| w.sst(&format!("run/{i}.sst"), c, 64)).collect();
    if !run.is_empty() {
        levels.push((Bytes::new(), Level::Run(run)));
    }
    Tree { memtables: vec![Arc::new(Mutex::new(mt))], levels, tables: w.tables.clone(), op: Some(concat()) }
}

fn point_reads(w: &World, tree: &Tree, keys: &[Bytes], snapshot: u64, now: i64) -> Vec<Found> {
    let mut call = GetMany::new(keys.to_vec(), snapshot, now);
    let mut replies = None;
    loop {
        match call.poll(tree, replies.take()).unwrap() {
            Poll::Ready(v) => return v,
            Poll::Need(parts) => replies = Some(w.serve(&parts)),
        }
    }
}

fn scan(w: &World, tree: &Tree, snapshot: u64, now: i64, reverse: bool) -> BTreeMap<Bytes, Bytes> {
    let mut s = Scan::new(tree, Span { start: None, end: None, reverse }, snapshot, now);
    let mut out = BTreeMap::new();
    let mut replies = None;
    loop {
        match s.next_page(3, replies.take()).unwrap() {
            Poll::Ready(rows) if rows.is_empty() => return out,
            Poll::Ready(rows) => out.extend(rows.into_iter().map(|r| (r.key, r.value))),
            Poll::Need(parts) => {
                let r = w.serve(&parts);
                replies = Some((parts, r));
            }
        }
    }
}

proptest! {
    #[test]
    fn every_read_path_folds_as_the_model(rows in arb_rows(), snapshot in 0u64..70, now in 0i64..30, cut in 1usize..5) {
        let expect = model(&rows, snapshot, now);
        prop_assert_eq!(&visible(rows.clone(), snapshot, now).unwrap(), &expect);
        let mut w = World::new(1 << 20);
        let t = tree(&mut w, &rows, cut);
        prop_assert_eq!(&scan(&w, &t, snapshot, now, false), &expect);
        prop_assert_eq!(&scan(&w, &t, snapshot, now, true), &expect);
        let keys: Vec<Bytes> = (0..5u8).map(|k| Bytes::from(vec![b'a' + k])).collect();
        for (k, got) in keys.iter().zip(point_reads(&w, &t, &keys, snapshot, now)) {
            let want = expect.get(k).cloned().map_or(Found::Absent, Found::Value);
            prop_assert_eq!(got, want, "key {:?}", k);
        }
    }

    #[test]
    fn compaction_keeps_every_read_at_or_above_retain(
        rows in arb_rows(),
        retain in 0u64..70,
        above in 0u64..20,
        now in 0i64..30,
        later in 0i64..10,
        bottom: bool,
    ) {
        let src: Vec<Box<dyn RowSource>> = vec![Box::new(VecSource::new(sorted(rows.clone()), "in"))];
        let mut m = MergeIterator::new(src, MergeMode::Compaction { retain_seq: retain, now: Some(now), bottom })
            .with_operator(Some(concat()));
        let out = m.next_batch(usize::MAX).unwrap();
        // Output stays in merge order, one row per (key, seq).
        prop_assert_eq!(sorted(out.clone()), out.clone());
        for (snapshot, at) in [(retain + above, now + later), (u64::MAX, now)] {
            prop_assert_eq!(model(&out, snapshot, at), model(&rows, snapshot, at));
        }
        // An L0 flush folds the same way (`L0Pieces::folded`), from the memtable's flush rows.
        let mut mt = Memtable::new();
        for r in &rows {
            mt.insert(r, false);
        }
        let retain_opt = (retain < 60).then_some(retain);
        let flush_rows = mt.flush_rows(Some(now), retain_opt);
        let l0 = L0Pieces::folded(flush_rows, SstOptions::compacted(), Some(now), retain_opt, concat(), 64);
        let flushed = match l0.whole().unwrap() {
            None => Vec::new(),
            Some(data) => {
                let file = SstFile::open(Bytes::from(data)).unwrap();
                let mut it = file.iter();
                let mut out = Vec::new();
                while let Some(r) = it.next_row().unwrap() {
                    out.push(r);
                }
                out
            }
        };
        let floor = retain_opt.unwrap_or(u64::MAX);
        for (snapshot, at) in [(floor.saturating_add(above), now + later), (u64::MAX, now)] {
            prop_assert_eq!(model(&flushed, snapshot, at), model(&rows, snapshot, at));
        }
    }
}

#[test]
fn batches_fold_merges_onto_earlier_ops_of_the_key() {
    let mut ops = Batch::new();
    for (key, value, merge) in [
        ("a", Some("1"), false),
        ("a", Some("2"), true),
        ("b", Some("x"), true),
        ("b", Some("y"), true),
        ("c", None, false),
        ("c", Some("z"), true),
        ("d", Some("q"), true),
        ("d", Some("Q"), false),
    ] {
        match (value, merge) {
            (Some(v), true) => ops.merge(key.as_bytes(), v.as_bytes(), None),
            (Some(v), false) => ops.put(key.as_bytes(), v.as_bytes(), None),
            (None, _) => ops.delete(key.as_bytes()),
        }
    }
    let mut m = Memtable::new();
    assert!(PreparedBatch::new(&ops, 5, 100, None, None).is_err(), "merges need an operator");
    m.apply_batch(&PreparedBatch::new(&ops, 5, 100, None, Some(&concat())).unwrap());
    let got: Vec<(String, RowKind, String)> = m
        .range(None, None)
        .into_iter()
        .map(|r| (String::from_utf8_lossy(&r.key).into(), r.kind, String::from_utf8_lossy(&r.value).into()))
        .collect();
    let row = |k: &str, kind, v: &str| (k.to_owned(), kind, v.to_owned());
    assert_eq!(
        got,
        vec![
            row("a", RowKind::Value, "12"),
            row("b", RowKind::Merge, "xy"),
            row("c", RowKind::Value, "z"),
            row("d", RowKind::Value, "Q"),
        ]
    );
}

#[test]
fn builtins_fold_natively() {
    let b = |s: &[u8]| Bytes::copy_from_slice(s);
    let n = |v: u64| Bytes::copy_from_slice(&v.to_le_bytes());
    assert_eq!(Builtin::Concat.fold(b"k", Some(b"a"), &[b(b"b"), b(b"c")]).unwrap(), b(b"abc"));
    assert_eq!(Builtin::AddU64.fold(b"k", None, &[n(2), n(3)]).unwrap(), n(5));
    assert_eq!(Builtin::AddU64.fold(b"k", Some(&u64::MAX.to_le_bytes()), &[n(2)]).unwrap(), n(1), "wraps");
    let e = Builtin::AddU64.fold(b"hot", None, &[b(b"abc")]).unwrap_err();
    assert!(e.to_string().contains("hot") && e.to_string().contains("3 bytes"), "{e}");
    assert_eq!(Builtin::Max.fold(b"k", Some(b"b"), &[b(b"a"), b(b"c"), b(b"bb")]).unwrap(), b(b"c"));
    assert_eq!(Builtin::Max.fold(b"k", None, &[b(b"")]).unwrap(), b(b""));
}

#[test]
fn a_missing_operator_names_the_key() {
    let rows = vec![Row { kind: RowKind::Merge, ..Row::value(&b"counter"[..], &b"1"[..], 3) }];
    let mut w = World::new(0);
    let mut t = tree(&mut w, &rows, 2);
    t.op = None;
    let mut call = GetMany::new(vec![Bytes::from_static(b"counter")], 10, 0);
    let e = call.poll(&t, None).err().expect("an operand without an operator is an error");
    assert!(matches!(e, CoreError::Operator { .. }) && e.to_string().contains("counter"), "{e}");
}
