//! Fixture generator for SlateDB 0.18 (see tests/data/README.md, "golden018").
//!
//! `gen018 write OUT`      writes the 0.18 databases and their expected.json into OUT
//! `gen018 reverse DATA OUT.json`
//!                         opens the databases under DATA/golden (0.17.0) and DATA/pywritten
//!                         (slatedb_py) with 0.18 as reader and as writer, and records what it found

mod expect;
mod fault_store;
mod fixtures;
mod reverse;
mod setup;
mod workload;

use std::path::Path;

use serde_json::{json, Map, Value};
use slatedb::SstBlockSize;

use crate::expect::{admin_view, read_reader, read_writer};
use crate::fixtures::Made;
use crate::setup::{copy_tree, local, scratch, walk};
use crate::workload::hex;

pub const WRITER: &str = "slatedb 0.18.0 (crates.io)";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("write") if args.len() == 3 => write_all(Path::new(&args[2])).await,
        Some("reverse") if args.len() == 4 => reverse::run(Path::new(&args[2]), Path::new(&args[3])).await,
        _ => {
            eprintln!("usage: gen018 write OUT | gen018 reverse DATA OUT.json");
            std::process::exit(2);
        }
    }
    // Abandoned databases (the half-done compaction) still hold tasks: leave without them.
    std::process::exit(0);
}

async fn write_all(out: &Path) {
    let root = scratch("write");
    if out.exists() {
        std::fs::remove_dir_all(out).expect("clear output");
    }
    std::fs::create_dir_all(out).expect("mkdir");
    let mut done: Vec<(String, Made, bool)> = Vec::new();
    for c in ["none", "snappy", "zlib", "lz4", "zstd"] {
        let name = format!("codec_{c}");
        let made = fixtures::codec_db(&root, &name, c).await;
        done.push((name, made, false));
    }
    done.push((
        "padded_1k".into(),
        fixtures::padded_db(&root, "padded_1k", SstBlockSize::Block1Kib, 1024).await,
        false,
    ));
    done.push((
        "padded_4k".into(),
        fixtures::padded_db(&root, "padded_4k", SstBlockSize::Block4Kib, 4096).await,
        false,
    ));
    done.push(("compacted".into(), fixtures::compacted_db(&root, "compacted").await, false));
    done.push(("merge".into(), fixtures::merge_db(&root, "merge").await, true));
    let cp = fixtures::checkpoint_db(&root, "checkpoint").await;
    let (first, _, first_model) = &cp.checkpoints[0];
    let clone = fixtures::clone_db(&root, "clone", "checkpoint", *first, first_model).await;
    done.push(("checkpoint".into(), cp, false));
    done.push(("clone".into(), clone, false));
    done.push(("deleting".into(), fixtures::deleting_db(&root, "deleting").await, false));
    for (name, _, _) in &done {
        copy_tree(&root.join(name), &out.join(name));
    }
    // Last: it abandons a live database (copied into `out` by the fixture itself).
    done.push(("compacting".into(), fixtures::compacting_db(&root, out, "compacting").await, false));
    for (name, made, merge) in &done {
        let expected = expected_for(out, name, made, *merge).await;
        let text = serde_json::to_string_pretty(&expected).expect("json") + "\n";
        std::fs::write(out.join(name).join("expected.json"), text).expect("write expected");
        println!("{name}: {} keys", made.model.keys.len());
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// Reads a fixture back with 0.18 from a throw-away copy of the whole output (a clone needs
/// its parent beside it) and records it next to the model the workload kept.
async fn expected_for(out: &Path, name: &str, made: &Made, merge: bool) -> Value {
    let copy = scratch("read");
    copy_tree(out, &copy);
    let store = local(&copy);
    let path = format!("{name}/db");
    let admin = admin_view(store.clone(), &path).await;
    let keys: Vec<Vec<u8>> = made.model.keys.keys().cloned().collect();
    let mut checkpoints = Vec::new();
    for (id, cp_name, cp_model) in &made.checkpoints {
        let ks: Vec<Vec<u8>> = cp_model.keys.keys().cloned().collect();
        let got = read_reader(store.clone(), &path, merge, Some(*id), &ks).await;
        let mismatch: Vec<String> =
            got.iter().filter(|(k, v)| cp_model.keys.get(*k) != Some(*v)).map(|(k, _)| hex(k)).collect();
        let keys_json: Map<String, Value> =
            got.iter().map(|(k, v)| (hex(k), v.as_ref().map_or(Value::Null, |v| json!(hex(v))))).collect();
        checkpoints.push(json!({"id": id.to_string(), "name": cp_name, "keys": keys_json, "model_mismatch": mismatch}));
    }
    let by_reader = read_reader(store.clone(), &path, merge, None, &keys).await;
    let back = read_writer(store.clone(), &path, merge, &keys).await;
    let model_mismatch: Vec<String> =
        back.keys.iter().filter(|(k, v)| made.model.keys.get(*k) != Some(*v)).map(|(k, _)| hex(k)).collect();
    let reader_mismatch: Vec<String> =
        by_reader.iter().filter(|(k, v)| back.keys.get(*k) != Some(*v)).map(|(k, _)| hex(k)).collect();
    let objects: Map<String, Value> = walk(&out.join(name).join("db"))
        .iter()
        .map(|p| {
            let rel = p.strip_prefix(out.join(name).join("db")).expect("prefix").to_string_lossy().to_string();
            (rel, json!(std::fs::metadata(p).expect("stat").len()))
        })
        .collect();
    let _ = std::fs::remove_dir_all(&copy);
    let mut v = json!({
        "writer": WRITER,
        "name": name,
        "keys": back.keys_json(),
        "live_keys": back.scan.len(),
        "ttl_keys": made.model.ttl_keys.keys().map(|k| hex(k)).collect::<Vec<_>>(),
        "ttl_rows": back.ttl_rows,
        "model_mismatch": model_mismatch,
        "reader_mismatch": reader_mismatch,
        "get_scan_mismatch": back.get_scan_mismatch(),
        "checkpoints": checkpoints,
        "op_counts": made.model.ops,
        "admin": admin,
        "objects": objects,
    });
    if let (Value::Object(dst), Value::Object(src)) = (&mut v, &made.meta) {
        for (k, x) in src {
            dst.insert(k.clone(), x.clone());
        }
        dst.entry("merge_operator").or_insert(Value::Null);
        dst.entry("block_alignment").or_insert(json!(false));
    }
    v
}
