use super::*;
use crate::fetch::Tables;
use crate::memtable::Memtable;
use crate::read::tests::{rows, World};
use crate::read::{KeyRange, TableRef};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

fn drain(w: &World, scan: &mut Scan, page: usize) -> (Vec<Row>, usize) {
    let mut out = Vec::new();
    let mut replies = None;
    let mut requests = 0;
    loop {
        match scan.next_page(page, replies.take()).unwrap() {
            Poll::Ready(rows) if rows.is_empty() => return (out, requests),
            Poll::Ready(rows) => out.extend(rows),
            Poll::Need(parts) => {
                requests += 1;
                let r = w.serve(&parts);
                replies = Some((parts, r));
            }
        }
    }
}

/// A tree: a memtable, two L0 SSTs and a run of four, overlapping versions of 0..400.
fn tree(w: &mut World) -> (Tree, BTreeMap<Bytes, Row>) {
    let mut mt = Memtable::new();
    for r in rows(100..120, 9) {
        mt.insert(&r, false);
    }
    mt.insert(&Row::tombstone(&b"k000150"[..], 9), false);
    let l0a = w.sst("l0a.sst", &rows(110..200, 7), 256);
    let l0b = w.sst("l0b.sst", &rows(0..50, 5), 256);
    let run: Vec<TableRef> =
        (0..4).map(|i| w.sst(&format!("r{i}.sst"), &rows(i * 100..i * 100 + 100, 1), 256)).collect();
    let mut model = BTreeMap::new();
    for r in rows(0..400, 1).into_iter().chain(rows(0..50, 5)).chain(rows(110..200, 7)).chain(rows(100..120, 9)) {
        model.insert(r.key.clone(), r);
    }
    model.remove(&Bytes::from_static(b"k000150"));
    let tree = Tree {
        memtables: vec![Arc::new(Mutex::new(mt))],
        levels: vec![
            (Bytes::new(), Level::Table(l0a)),
            (Bytes::new(), Level::Table(l0b)),
            (Bytes::new(), Level::Run(run)),
        ],
        tables: w.tables.clone(),
        op: None,
    };
    (tree, model)
}

fn key(i: u32) -> Bytes {
    Bytes::from(format!("k{i:06}").into_bytes())
}

proptest! {
    #[test]
    fn scans_match_the_model(lo in 0u32..420, len in 0u32..450, reverse: bool, page in 1usize..70, seek_at in prop::option::of(0u32..450)) {
        let mut w = World::new(4096);
        let (tree, model) = tree(&mut w);
        let (start, end) = (key(lo), key(lo + len));
        let span = Span { start: Some(start.clone()), end: Some(end.clone()), reverse };
        let mut scan = Scan::new(&tree, span, 100, 0);
        let mut expect: Vec<&Row> = model.range(start.clone()..end.clone().max(start.clone())).map(|(_, r)| r).collect();
        if reverse {
            expect.reverse();
        }
        let mut got = Vec::new();
        if let (Some(s), false) = (seek_at, reverse) {
            let target = key(s);
            let ok = scan.seek(&target);
            prop_assert_eq!(ok.is_ok(), target >= start && target < end);
            if ok.is_ok() {
                expect.retain(|r| r.key >= target);
            }
        }
        let (rows, _) = drain(&w, &mut scan, page);
        got.extend(rows);
        let got: Vec<&Row> = got.iter().collect();
        prop_assert_eq!(got, expect);
    }
}

#[test]
fn a_scan_reads_blocks_ahead_and_opens_run_ssts_lazily() {
    let mut w = World::new(0);
    let wide = |r: std::ops::Range<u32>| -> Vec<Row> {
        rows(r, 1)
            .into_iter()
            .map(|mut x| {
                x.value = Bytes::from(vec![b'v'; 100]);
                x
            })
            .collect()
    };
    // 2000 rows of ~110 bytes: larger than the tail an open reads.
    let run: Vec<TableRef> =
        (0..8).map(|i| w.sst(&format!("r{i}.sst"), &wide(i * 2000..i * 2000 + 2000), 4096)).collect();
    let tree =
        Tree { memtables: vec![], levels: vec![(Bytes::new(), Level::Run(run))], tables: w.tables.clone(), op: None };
    let mut scan = Scan::new(&tree, Span { start: Some(key(4100)), end: Some(key(4200)), reverse: false }, 9, 0);
    let (got, requests) = drain(&w, &mut scan, 1000);
    assert_eq!(got.len(), 100);
    assert_eq!(requests, 2, "one open and one ranged read");
    assert_eq!(w.tables.open_count().unwrap(), 1);
    // A full scan: per SST one open and about one request per MiB.
    let mut scan = Scan::new(&tree, Span::default(), 9, 0);
    let (got, requests) = drain(&w, &mut scan, 4096);
    assert_eq!(got.len(), 16_000);
    let bytes: usize = w.objects.values().map(bytes::Bytes::len).sum();
    assert!(requests <= 8 + 8 + bytes / (1 << 20) + 1, "{requests} requests for {bytes} bytes");
}

#[test]
fn projections_clamp_scans() {
    let mut w = World::new(0);
    let mut t = w.sst("p.sst", &rows(0..100, 1), 256);
    t.visible = Some(KeyRange { start: Bound::Excluded(key(10)), end: Bound::Included(key(20)) });
    let tree =
        Tree { memtables: vec![], levels: vec![(Bytes::new(), Level::Table(t))], tables: w.tables.clone(), op: None };
    for reverse in [false, true] {
        let mut scan = Scan::new(&tree, Span { reverse, ..Span::default() }, 9, 0);
        let (got, _) = drain(&w, &mut scan, 7);
        let mut keys: Vec<Bytes> = got.into_iter().map(|r| r.key).collect();
        if reverse {
            keys.reverse();
        }
        assert_eq!(keys, (11..=20).map(key).collect::<Vec<_>>());
    }
}

#[test]
fn local_tables_are_read_natively() {
    let dir = std::env::temp_dir().join(format!("slatedb-py-scan-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("db")).unwrap();
    let data = crate::sst::encode_sst(
        rows(0..3000, 1),
        crate::sst::SstOptions { block_size: 512, ..crate::sst::SstOptions::compacted() },
    )
    .unwrap();
    std::fs::write(dir.join("db/a.sst"), &data).unwrap();
    let tables = Arc::new(Tables::new(1 << 20, Some(dir.clone())));
    let t =
        TableRef { slot: tables.slot("db/a.sst").unwrap(), first: Some(key(0)), last: Some(key(2999)), visible: None };
    let tree =
        Tree { memtables: vec![], levels: vec![(Bytes::new(), Level::Table(t))], tables: tables.clone(), op: None };
    let mut scan = Scan::new(&tree, Span { reverse: true, ..Span::default() }, 9, 0);
    let Poll::Ready(page) = scan.next_page(5000, None).unwrap() else { panic!("a local scan never asks for bytes") };
    assert_eq!(page.len(), 3000);
    assert_eq!(page[0].key, key(2999));
    let mut get = crate::read::GetMany::new(vec![key(1234), key(5000)], 9, 0);
    let Poll::Ready(found) = get.poll(&tree, None).unwrap() else { panic!("a local get never asks for bytes") };
    assert_eq!(found[0], crate::read::Found::Value(Bytes::from_static(b"v1234-1")));
    assert_eq!(found[1], crate::read::Found::Absent);
    std::fs::remove_dir_all(&dir).unwrap();
    // A file that vanished (collected) is a missing object, named.
    let mut get = crate::read::GetMany::new(vec![key(7)], 9, 0);
    let tables2 = Arc::new(Tables::new(0, Some(dir.clone())));
    let t2 = TableRef { slot: tables2.slot("db/a.sst").unwrap(), first: None, last: None, visible: None };
    let tree2 = Tree { memtables: vec![], levels: vec![(Bytes::new(), Level::Table(t2))], tables: tables2, op: None };
    assert!(matches!(get.poll(&tree2, None), Err(CoreError::Missing(p)) if p == "db/a.sst"));
}
