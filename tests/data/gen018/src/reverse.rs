//! The reverse direction: databases that others wrote (SlateDB 0.17.0 under `DATA/golden`,
//! slatedb_py under `DATA/pywritten`), opened by 0.18 as a reader and as a writer.
//!
//! For each: a `DbReader` and a `Db` read every key of its expected.json; the `Db` writes more
//! (puts, overwrites, deletes; part flushed to L0, part left in the WAL) and closes; a reader
//! then reads the whole model back. A fixture whose expected.json asks for it
//! (`run_0_18_compactor`) is then opened with 0.18's compactor, which must finish every
//! compaction it finds or starts (slatedb_py's copy of 0.18's half-done one, or one over a tree
//! of padded and unpadded SSTs). The results, with a digest of the files each check read, go to
//! OUT.json; CI compares the digests with the fixtures it has.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use slatedb::admin::Admin;
use slatedb::Db;

use crate::expect::{close_wal, read_reader, read_writer};
use crate::setup::{compactor, copy_tree, local, scratch, settings, walk, Concat};
use crate::workload::{hex, unhex, Model, Rng, Writer};

/// SHA-256 over `relative path \0 sha256(file) \n` of every file, in path order.
pub fn digest(dir: &Path) -> String {
    let mut all = Sha256::new();
    for p in walk(dir) {
        let rel = p.strip_prefix(dir).expect("prefix").to_string_lossy().replace('\\', "/");
        let file = Sha256::digest(std::fs::read(&p).expect("read"));
        all.update(format!("{rel}\0{}\n", hex(&file)).as_bytes());
    }
    hex(&all.finalize())
}

pub async fn run(data: &Path, out: &Path) {
    let mut results = BTreeMap::new();
    for group in ["golden", "pywritten"] {
        let Ok(entries) = std::fs::read_dir(data.join(group)) else { continue };
        let mut names: Vec<String> =
            entries.map(|e| e.expect("entry").file_name().to_string_lossy().to_string()).collect();
        names.sort();
        for name in names {
            let dir = data.join(group).join(&name);
            if !dir.join("expected.json").exists() {
                continue;
            }
            let r = check(group, &name, &dir).await;
            println!("{group}/{name}: ok={}", r["ok"]);
            results.insert(format!("{group}/{name}"), r);
        }
    }
    let doc = json!({"reader_and_writer": crate::WRITER, "results": results});
    std::fs::write(out, serde_json::to_string_pretty(&doc).expect("json") + "\n").expect("write results");
}

async fn check(group: &str, name: &str, dir: &Path) -> Value {
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).expect("read"))
        .expect("expected.json");
    let merge = !expected["merge_operator"].is_null();
    let expired: Vec<String> = expected["expired_keys"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_default();
    let mut model = Model::default();
    for (k, v) in expected["keys"].as_object().expect("keys") {
        if expired.contains(k) {
            continue;
        }
        model.keys.insert(unhex(k), v.as_str().map(unhex));
    }
    let keys: Vec<Vec<u8>> = model.keys.keys().cloned().collect();
    let root = scratch("reverse");
    copy_tree(&dir.join("db"), &root.join("db"));
    let store = local(&root);

    let by_reader = read_reader(store.clone(), "db", merge, None, &keys).await;
    let reader_mismatch = mismatches(&model, &by_reader);
    let back = read_writer(store.clone(), "db", merge, &keys).await;
    let writer_mismatch = mismatches(&model, &back.keys);
    // The scan holds every live key with its value; past those, only rows whose 1 ms TTL
    // passed (0.18, like 0.17, still returns an expired row until a flush drops it).
    let expired_bytes: Vec<Vec<u8>> = expired.iter().map(|k| unhex(k)).collect();
    let live: Vec<&Vec<u8>> = model.live();
    let scan_extra: Vec<String> =
        back.scan.keys().filter(|k| !model.keys.get(*k).is_some_and(Option::is_some)).map(|k| hex(k)).collect();
    let scan_ok = live.iter().all(|k| back.scan.get(*k) == model.keys[*k].as_ref())
        && scan_extra.iter().all(|k| expired_bytes.contains(&unhex(k)));

    // Write on top as 0.18's writer, then read the whole model back.
    let mut b = Db::builder("db", store.clone()).with_settings(settings(None, None));
    if merge {
        b = b.with_merge_operator(Arc::new(Concat));
    }
    let db = b.build().await.expect("open 0.18 writer");
    let mut w = Writer { db: &db, model: &mut model, rng: Rng::new(180) };
    w.fresh(40, 80).await;
    w.churn(30, 20, 80).await;
    w.l0_then_tail(0, 10, 80).await;
    db.close_with_options(close_wal()).await.expect("close");
    let keys: Vec<Vec<u8>> = model.keys.keys().cloned().collect();
    let after = read_reader(store.clone(), "db", merge, None, &keys).await;
    let after_write_mismatch = mismatches(&model, &after);

    let compactor_run = if expected["run_0_18_compactor"].as_bool() == Some(true) {
        Some(run_compactor(store.clone(), merge, &model, &keys).await)
    } else {
        None
    };
    let _ = std::fs::remove_dir_all(&root);
    let ok = reader_mismatch.is_empty()
        && writer_mismatch.is_empty()
        && scan_ok
        && after_write_mismatch.is_empty()
        && compactor_run.as_ref().is_none_or(|r| r["ok"] == json!(true));
    json!({
        "group": group,
        "name": name,
        "digest": digest(dir),
        "keys_checked": by_reader.len(),
        "reader_mismatch": reader_mismatch,
        "writer_mismatch": writer_mismatch,
        "scan_matches_live_keys": scan_ok,
        "scan_expired_extra": scan_extra.len(),
        "keys_after_write": after.len(),
        "after_write_mismatch": after_write_mismatch,
        "run_0_18_compactor": compactor_run,
        "ok": ok,
    })
}

fn mismatches(model: &Model, got: &BTreeMap<Vec<u8>, Option<Vec<u8>>>) -> Vec<String> {
    model.keys.iter().filter(|(k, v)| got.get(*k) != Some(*v)).map(|(k, _)| hex(k)).collect()
}

/// Opens the database with 0.18's compactor and waits until no compaction is left unfinished:
/// what it found in the compactor state, what it left, and whether the data still reads back.
async fn run_compactor(
    store: Arc<dyn object_store::ObjectStore>,
    merge: bool,
    model: &Model,
    keys: &[Vec<u8>],
) -> Value {
    let admin = Admin::builder("db", store.clone()).build();
    let before = serde_json::to_value(admin.read_compactions(None).await.expect("read")).expect("json");
    let mut b = Db::builder("db", store.clone()).with_settings(settings(None, Some(compactor())));
    if merge {
        b = b.with_merge_operator(Arc::new(Concat));
    }
    let db = b.build().await.expect("open with compactor");
    let start = Instant::now();
    let mut after = Value::Null;
    let mut finished = false;
    while start.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = serde_json::to_value(admin.read_compactions(None).await.expect("read")).expect("json");
        let statuses = statuses(&after);
        if !statuses.is_empty() && statuses.iter().all(|s| s == "Completed" || s == "Failed") {
            finished = true;
            break;
        }
    }
    db.close().await.expect("close");
    let got = read_reader(store, "db", merge, None, keys).await;
    let mismatch = mismatches(model, &got);
    // The output of each range finished before: a resumed compaction commits it as it was.
    let done_before = outputs_of_completed_ranges(&before);
    let committed = after["recent_compactions"]
        .as_object()
        .map_or(Vec::new(), |m| m.values().flat_map(|c| ids(&c["output_ssts"])).collect::<Vec<_>>());
    let reused: Vec<&String> = done_before.iter().filter(|id| committed.contains(id)).collect();
    json!({
        "compactions_before": before,
        "compactions_after": after,
        "finished": finished,
        "statuses_after": statuses(&after),
        "outputs_of_completed_ranges_before": done_before,
        "reused_in_commit": reused,
        "mismatch": mismatch,
        "ok": finished && mismatch.is_empty(),
    })
}

fn statuses(state: &Value) -> Vec<String> {
    state["recent_compactions"]
        .as_object()
        .map_or(Vec::new(), |m| m.values().map(|c| c["status"].as_str().unwrap_or_default().to_string()).collect())
}

fn ids(ssts: &Value) -> Vec<String> {
    ssts.as_array().map_or(Vec::new(), |a| a.iter().filter_map(|s| s["id"].as_str().map(String::from)).collect())
}

fn outputs_of_completed_ranges(state: &Value) -> Vec<String> {
    let Some(m) = state["recent_compactions"].as_object() else { return Vec::new() };
    m.values()
        .flat_map(|c| c["ctx"]["subcompactions"].as_array().cloned().unwrap_or_default())
        .filter(|s| s["status"] == "Completed")
        .flat_map(|s| ids(&s["output_ssts"]))
        .collect()
}
