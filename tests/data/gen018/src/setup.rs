//! Object stores, settings and the merge operator the fixtures share.

use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::ObjectStore;
use slatedb::config::{CompactionWorkerOptions, CompactorOptions, CompressionCodec, Settings};
use slatedb::{MergeOperator, MergeOperatorError};

pub fn local(root: &FsPath) -> Arc<dyn ObjectStore> {
    std::fs::create_dir_all(root).expect("mkdir");
    Arc::new(LocalFileSystem::new_with_prefix(root).expect("local store"))
}

pub fn codec(name: &str) -> Option<CompressionCodec> {
    match name {
        "none" => None,
        "snappy" => Some(CompressionCodec::Snappy),
        "zlib" => Some(CompressionCodec::Zlib),
        "lz4" => Some(CompressionCodec::Lz4),
        "zstd" => Some(CompressionCodec::Zstd),
        other => panic!("unknown codec {other}"),
    }
}

/// Defaults, except: WAL files are cut only by explicit flushes (a one-hour interval), the
/// collector is off (every object stays for the readers to see), filters start at 100 keys
/// (the fixtures are small), and the compactor runs only when asked.
pub fn settings(codec: Option<CompressionCodec>, compactor: Option<CompactorOptions>) -> Settings {
    Settings {
        flush_interval: Some(Duration::from_secs(3600)),
        min_filter_keys: 100,
        compactor_options: compactor,
        garbage_collector_options: None,
        compression_codec: codec,
        ..Settings::default()
    }
}

/// A compactor that polls fast and splits a compaction into up to four subcompactions.
pub fn compactor() -> CompactorOptions {
    CompactorOptions {
        poll_interval: Duration::from_millis(100),
        scheduler_options: HashMap::from([
            ("min_compaction_sources".to_string(), "4".to_string()),
            ("max_compaction_sources".to_string(), "8".to_string()),
        ]),
        worker: Some(CompactionWorkerOptions {
            compactions_poll_interval: Duration::from_millis(100),
            heartbeat_interval: Duration::from_millis(100),
            max_subcompactions: 4,
            ..CompactionWorkerOptions::default()
        }),
        ..CompactorOptions::default()
    }
}

/// `(existing or b"") + operand`, the operator of the 0.17 `merge` fixture too.
pub struct Concat;

impl MergeOperator for Concat {
    fn merge(&self, _key: &Bytes, existing: Option<Bytes>, operand: Bytes) -> Result<Bytes, MergeOperatorError> {
        let mut v = existing.map(|b| b.to_vec()).unwrap_or_default();
        v.extend_from_slice(&operand);
        Ok(Bytes::from(v))
    }
}

/// Copies a folder tree (regular files only; a local store's half-written temp files, which
/// carry a `#` in their names, are left out).
pub fn copy_tree(from: &FsPath, to: &FsPath) {
    for entry in walk(from) {
        let rel = entry.strip_prefix(from).expect("prefix");
        if rel.to_string_lossy().contains('#') {
            continue;
        }
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&entry, &dest).expect("copy");
    }
}

pub fn walk(root: &FsPath) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A fresh scratch folder under the system temp dir.
pub fn scratch(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    let p = std::env::temp_dir().join(format!("gen018-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&p).expect("mkdir");
    p
}
