//! What 0.18 reads back from a database: every key asked for, the live set of a full scan,
//! and the expiry of rows that carry one. Opening a database changes it (a manifest, a WAL
//! fence), so callers hand in a throw-away copy.

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::ObjectStore;
use serde_json::{json, Map, Value};
use slatedb::admin::Admin;
use slatedb::config::{CloseOptions, FlushType};
use slatedb::{Db, DbReader, DbReaderMode};

use crate::setup::{settings, Concat};
use crate::workload::hex;

pub struct ReadBack {
    pub keys: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    pub scan: BTreeMap<Vec<u8>, Vec<u8>>,
    pub ttl_rows: Map<String, Value>,
}

impl ReadBack {
    pub fn keys_json(&self) -> Value {
        Value::Object(
            self.keys.iter().map(|(k, v)| (hex(k), v.as_ref().map_or(Value::Null, |v| json!(hex(v))))).collect(),
        )
    }

    /// Keys where `get` and the scan disagree (empty when 0.18 is consistent with itself).
    pub fn get_scan_mismatch(&self) -> Vec<String> {
        self.keys
            .iter()
            .filter(|(k, v)| self.scan.get(*k) != v.as_ref())
            .map(|(k, _)| hex(k))
            .chain(self.scan.keys().filter(|k| !self.keys.contains_key(*k)).map(|k| hex(k)))
            .collect()
    }
}

/// Opens `path` as a writer (no compactor) and reads `keys` and a full scan.
pub async fn read_writer(store: Arc<dyn ObjectStore>, path: &str, merge: bool, keys: &[Vec<u8>]) -> ReadBack {
    let mut b = Db::builder(path, store).with_settings(settings(None, None));
    if merge {
        b = b.with_merge_operator(Arc::new(Concat));
    }
    let db = b.build().await.expect("open 0.18 writer");
    let mut out = ReadBack { keys: BTreeMap::new(), scan: BTreeMap::new(), ttl_rows: Map::new() };
    for k in keys {
        let kv = db.get_key_value(k).await.expect("get");
        if let Some(kv) = &kv {
            if let Some(exp) = kv.expire_ts {
                out.ttl_rows.insert(hex(k), json!({"seq": kv.seq, "create_ts": kv.create_ts, "expire_ts": exp}));
            }
        }
        out.keys.insert(k.clone(), kv.map(|kv| kv.value.to_vec()));
    }
    let mut it = db.scan(..).await.expect("scan");
    while let Some(kv) = it.next().await.expect("scan next") {
        out.scan.insert(kv.key.to_vec(), kv.value.to_vec());
    }
    // Nothing was written: close without flushing anything.
    db.close_with_options(CloseOptions::default().with_flush_type(None)).await.expect("close");
    out
}

/// Reads `keys` with a `DbReader`, at the newest state or pinned to a checkpoint.
pub async fn read_reader(
    store: Arc<dyn ObjectStore>,
    path: &str,
    merge: bool,
    checkpoint: Option<uuid::Uuid>,
    keys: &[Vec<u8>],
) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
    let mode = checkpoint.map_or(DbReaderMode::FollowLatest, DbReaderMode::Checkpoint);
    let mut b = DbReader::builder(path, store).with_reader_mode(mode);
    if merge {
        b = b.with_merge_operator(Arc::new(Concat));
    }
    let reader = b.build().await.expect("open 0.18 reader");
    let mut out = BTreeMap::new();
    for k in keys {
        out.insert(k.clone(), reader.get(k).await.expect("reader get").map(|v| v.to_vec()));
    }
    reader.close().await.expect("close reader");
    out
}

/// The newest manifest and compactor state as 0.18's admin decodes them, and the checkpoints.
pub async fn admin_view(store: Arc<dyn ObjectStore>, path: &str) -> Value {
    let admin = Admin::builder(path, store).build();
    let manifest = admin.read_manifest(None).await.expect("read manifest");
    let compactions = admin.read_compactions(None).await.expect("read compactions");
    let checkpoints = admin.list_checkpoints(None).await.expect("list checkpoints");
    json!({
        "manifest": serde_json::to_value(&manifest).expect("manifest json"),
        "compactions": serde_json::to_value(&compactions).expect("compactions json"),
        "checkpoints": checkpoints.iter().map(|c| json!({
            "id": c.id.to_string(),
            "manifest_id": c.manifest_id,
            "name": c.name,
            "expires": c.expire_time.is_some(),
        })).collect::<Vec<_>>(),
    })
}

/// A close that leaves the WAL tail out of L0, as the 0.17 fixtures do.
pub fn close_wal() -> CloseOptions {
    CloseOptions::default().with_flush_type(Some(FlushType::Wal))
}
