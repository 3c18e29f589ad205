//! The columnar scan (`Scan::next_columns`, the merge's drains) against a model of visible
//! rows, and against the row scan, on trees of local files (drained straight from blocks) and
//! of fetched objects (stops for input mid-page): versions, tombstones, expiry, snapshots,
//! seeks, and both row and byte bounds.

use super::*;
use crate::fetch::Tables;
use crate::memtable::Memtable;
use crate::read::tests::World;
use crate::read::TableRef;
use crate::sst::{encode_sst, SstOptions};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const NOW: i64 = 1000;

/// One generated version: key number, kind (0-2 value, 3 tombstone, 4 expiring value) and
/// expiry offset from `NOW`.
type Version = (u32, u8, i64);

fn key(i: u32) -> Bytes {
    Bytes::from(format!("c{i:05}").into_bytes())
}

/// Sources as generated, each sorted as a source must be (key, then seq descending).
fn rows_of(sources: &[Vec<Version>], spread: bool) -> Vec<Vec<Row>> {
    let mut seq = 0;
    sources
        .iter()
        .enumerate()
        .map(|(s, versions)| {
            let mut rows: Vec<Row> = versions
                .iter()
                .map(|&(k, kind, exp)| {
                    seq += 1;
                    let k = key(k + if spread { s as u32 * 100 } else { 0 });
                    match kind {
                        3 => Row::tombstone(k, seq),
                        4 => Row { expire_ts: Some(NOW + exp), ..Row::value(k, format!("v{seq}"), seq) },
                        _ => Row::value(k, format!("value-{seq}-{}", "x".repeat(kind as usize * 7)), seq),
                    }
                })
                .collect();
            rows.sort_by(|a, b| a.key.cmp(&b.key).then(b.seq.cmp(&a.seq)));
            rows
        })
        .collect()
}

/// What a scan at `snapshot` sees: per key its newest version at or below the snapshot,
/// unless that is a tombstone or expired.
fn model(sources: &[Vec<Row>], snapshot: u64) -> BTreeMap<Bytes, Bytes> {
    let mut newest: BTreeMap<Bytes, &Row> = BTreeMap::new();
    for r in sources.iter().flatten().filter(|r| r.seq <= snapshot) {
        let e = newest.entry(r.key.clone()).or_insert(r);
        if r.seq > e.seq {
            *e = r;
        }
    }
    newest
        .into_iter()
        .filter(|(_, r)| r.kind == RowKind::Value && !r.is_expired(NOW))
        .map(|(k, r)| (k, r.value.clone()))
        .collect()
}

/// Where a tree's SSTs live: local files (drained from blocks) or fetched objects.
enum Home {
    Local(PathBuf, Arc<Tables>),
    Fetched(World),
}

impl Home {
    fn local() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("slatedb-py-columns-{}-{n}", std::process::id()));
        std::fs::create_dir_all(dir.join("db")).unwrap();
        let tables = Arc::new(Tables::new(0, Some(dir.clone())));
        Home::Local(dir, tables)
    }

    fn tables(&self) -> Arc<Tables> {
        match self {
            Home::Local(_, t) => t.clone(),
            Home::Fetched(w) => w.tables.clone(),
        }
    }

    fn sst(&mut self, name: &str, rows: &[Row], block_size: usize) -> TableRef {
        match self {
            Home::Fetched(w) => w.sst(name, rows, block_size),
            Home::Local(dir, tables) => {
                let data = encode_sst(rows, SstOptions { block_size, ..SstOptions::compacted() }).unwrap();
                std::fs::write(dir.join("db").join(name), data).unwrap();
                TableRef {
                    slot: tables.slot(&format!("db/{name}")).unwrap(),
                    first: rows.first().map(|r| r.key.clone()),
                    last: rows.last().map(|r| r.key.clone()),
                    visible: None,
                }
            }
        }
    }

    fn serve(&self, parts: &[Part]) -> Vec<PartReply> {
        match self {
            Home::Fetched(w) => w.serve(parts),
            Home::Local(..) => panic!("a local scan asked for bytes"),
        }
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        if let Home::Local(dir, _) = self {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Source 0 is a memtable, the last a sorted run of up to three SSTs, the rest L0 SSTs.
fn tree(home: &mut Home, sources: &[Vec<Row>], block_size: usize) -> Tree {
    let mut levels = Vec::new();
    let mut memtables = Vec::new();
    let last = sources.len() - 1;
    for (i, rows) in sources.iter().enumerate() {
        if i == 0 && last > 0 {
            let mut mt = Memtable::new();
            for r in rows {
                mt.insert(r, false);
            }
            memtables.push(Arc::new(Mutex::new(mt)));
        } else if i == last && !rows.is_empty() {
            // A run's SSTs hold disjoint keys: cut between keys, never inside one's versions.
            let mut run = Vec::new();
            let mut from = 0;
            for (j, part) in [rows.len() / 3, 2 * rows.len() / 3, rows.len()].into_iter().enumerate() {
                let mut to = part.max(from);
                while to < rows.len() && to > 0 && rows[to].key == rows[to - 1].key {
                    to += 1;
                }
                if to > from {
                    run.push(home.sst(&format!("run{j}.sst"), &rows[from..to], block_size));
                }
                from = to;
            }
            levels.push((Bytes::new(), Level::Run(run)));
        } else if !rows.is_empty() {
            levels.push((Bytes::new(), Level::Table(home.sst(&format!("l0-{i}.sst"), rows, block_size))));
        }
    }
    Tree { memtables, levels, tables: home.tables(), op: None }
}

/// Every page of a columnar scan, with a seek after the first page when `seek` is set.
fn columns(home: &Home, scan: &mut Scan, rows: usize, bytes: usize, seek: Option<&Bytes>) -> Vec<(Bytes, Bytes)> {
    let mut out = Vec::new();
    let mut replies = None;
    let mut seek = seek;
    loop {
        match scan.next_columns(rows, bytes, replies.take()).unwrap() {
            Poll::Need(parts) => {
                let r = home.serve(&parts);
                replies = Some((parts, r));
            }
            Poll::Ready(page) if page.is_empty() => return out,
            Poll::Ready(page) => {
                assert!(page.len() <= rows, "{} rows in a page of {rows}", page.len());
                assert!(page.len() == 1 || page.data_len() <= bytes, "{} bytes in a page of {bytes}", page.data_len());
                out.extend(page.into_rows().into_iter().map(|r| (r.key, r.value)));
                if let Some(target) = seek.take() {
                    if out.last().is_some_and(|(k, _)| k < target) {
                        scan.seek(target).unwrap();
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn columnar_scans_match_the_model(
        sources in prop::collection::vec(prop::collection::vec((0u32..90, 0u8..5, -3i64..3), 0..110), 1..6),
        spread: bool,
        local: bool,
        snapshot_cut in 0u32..=100,
        page_rows in 1usize..300,
        page_bytes in prop::option::of(20usize..3000),
        lo in prop::option::of(0u32..400),
        seek_at in prop::option::of(0u32..600),
        block_size in prop::sample::select(vec![64usize, 256, 4096]),
    ) {
        let rows = rows_of(&sources, spread);
        let total: u64 = rows.iter().map(|r| r.len() as u64).sum();
        let snapshot = total * u64::from(snapshot_cut) / 100;
        let mut home = if local { Home::local() } else { Home::Fetched(World::new(0)) };
        let tree = tree(&mut home, &rows, block_size);
        let start = lo.map(key);
        let span = Span { start: start.clone(), end: None, reverse: false };
        let mut expect: Vec<(Bytes, Bytes)> = model(&rows, snapshot)
            .into_iter()
            .filter(|(k, _)| start.as_ref().is_none_or(|s| k >= s))
            .collect();
        let bytes = page_bytes.unwrap_or(usize::MAX);
        let mut scan = Scan::new(&tree, span.clone(), snapshot, NOW);
        let target = seek_at.map(key);
        let got = columns(&home, &mut scan, page_rows, bytes, target.as_ref());
        // A seek skipped what lay between the first page and its target.
        if let Some(t) = &target {
            let first_page = got.iter().take_while(|(k, _)| k < t).count();
            let kept: Vec<_> = expect.iter().take(first_page).cloned().collect();
            if kept.len() == first_page && kept.iter().zip(&got).all(|(a, b)| a == b) {
                expect = kept.into_iter().chain(expect.into_iter().skip(first_page).filter(|(k, _)| k >= t)).collect();
            }
        }
        prop_assert_eq!(got, expect);
    }
}

/// Sources alone in their key ranges (a sequential load's L0s and run) go out whole.
#[test]
fn disjoint_sources_drain_whole_blocks() {
    let versions: Vec<Vec<Version>> = (0..4).map(|_| (0..100).map(|k| (k, 0, 0)).collect()).collect();
    let rows = rows_of(&versions, true);
    for local in [true, false] {
        let mut home = if local { Home::local() } else { Home::Fetched(World::new(0)) };
        let tree = tree(&mut home, &rows, 256);
        let mut scan = Scan::new(&tree, Span::default(), u64::MAX, NOW);
        let got = columns(&home, &mut scan, 1000, usize::MAX, None);
        let keys: Vec<Bytes> = got.into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, (0..400).map(key).collect::<Vec<_>>());
    }
}
