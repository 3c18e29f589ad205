//! The databases 0.18 writes. Each is built in a scratch folder (`root/<name>/db`, the store
//! rooted at `root`), closed, and then copied into the output as it was left.

use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::ObjectStore;
use serde_json::{json, Value};
use slatedb::admin::Admin;
use slatedb::config::Settings;
use slatedb::config::{CheckpointOptions, CheckpointScope};
use slatedb::{CloneSourceSpec, Db, DbBuilder, SstBlockSize};

use crate::expect::close_wal;
use crate::fault_store::FaultStore;
use crate::setup::{codec, compactor, local, settings, Concat};
use crate::workload::{Model, Rng, Writer};

/// What a fixture function hands back besides the database: its model and how it was made.
pub struct Made {
    pub model: Model,
    pub meta: Value,
    /// Checkpoints whose contents the expected file lists: (id, name, model at that point).
    pub checkpoints: Vec<(uuid::Uuid, String, Model)>,
}

fn snapshot(m: &Model) -> Model {
    Model { keys: m.keys.clone(), ttl_keys: m.ttl_keys.clone(), ops: m.ops.clone() }
}

/// A 0.18 builder for fixture `name`, its ids drawn from `seed`.
fn builder(store: &Arc<dyn ObjectStore>, name: &str, settings: Settings, seed: u64) -> DbBuilder<String> {
    Db::builder(format!("{name}/db"), store.clone()).with_settings(settings).with_seed(seed)
}

async fn open(b: DbBuilder<String>) -> Db {
    b.build().await.expect("open")
}

/// Three phases: L0 #1 (a WAL flush in the middle), L0 #2, then a WAL tail left unflushed.
async fn three_phases(w: &mut Writer<'_>, scale: usize, max_value: usize) {
    w.fresh(scale, max_value).await;
    w.flush_wal().await;
    w.churn(scale / 6, scale / 10, max_value).await;
    w.flush_memtable().await;
    w.fresh(scale / 2, max_value).await;
    w.churn(scale / 4, scale / 8, max_value).await;
    w.flush_memtable().await;
    w.fresh(scale / 4, max_value).await;
    w.flush_wal().await;
    w.churn(scale / 8, scale / 12, max_value).await;
    w.flush_wal().await;
}

pub async fn codec_db(root: &FsPath, name: &str, codec_name: &str) -> Made {
    let store = local(root);
    let db = open(builder(&store, name, settings(codec(codec_name), None), 18)).await;
    let mut model = Model::default();
    let mut w = Writer { db: &db, model: &mut model, rng: Rng::new(18) };
    three_phases(&mut w, 360, 160).await;
    db.close_with_options(close_wal()).await.expect("close");
    Made { model, meta: json!({"codec": codec_name, "sst_block_size": 4096}), checkpoints: vec![] }
}

/// Padded blocks: no compression (0.18 refuses alignment with a codec), `block` bytes per
/// block, some values larger than a block (their block pads past one unit), and a compaction
/// so the sorted run's SSTs are padded too.
pub async fn padded_db(root: &FsPath, name: &str, block: SstBlockSize, block_bytes: usize) -> Made {
    let store = local(root);
    let db = open(
        builder(&store, name, settings(None, Some(compactor())), 19)
            .with_sst_block_size(block)
            .with_sst_block_alignment(true),
    )
    .await;
    let mut model = Model::default();
    let mut w = Writer { db: &db, model: &mut model, rng: Rng::new(19) };
    let rows = 6 * 1024 / (block_bytes / 16).max(16) + 40;
    for round in 0..4 {
        w.fresh(rows, 200).await;
        if round == 0 {
            // Rows larger than a block: each gets a block of its own, padded past one unit.
            for (i, len) in [block_bytes, 2 * block_bytes + 37].into_iter().enumerate() {
                let v: Vec<u8> = b"big-".iter().copied().cycle().take(len).collect();
                w.put(format!("big-{i}").as_bytes(), &v).await;
            }
        }
        w.churn(rows / 5, rows / 10, 200).await;
        w.flush_memtable().await;
    }
    wait_compacted(&store, name).await;
    w.l0_then_tail(40, 20, 200).await;
    db.close_with_options(close_wal()).await.expect("close");
    Made {
        model,
        meta: json!({"codec": "none", "sst_block_size": block_bytes, "block_alignment": true}),
        checkpoints: vec![],
    }
}

/// Waits until the compactor finished a compaction (the state lists one as Completed).
async fn wait_compacted(store: &Arc<dyn object_store::ObjectStore>, name: &str) -> Value {
    let admin = Admin::builder(format!("{name}/db"), store.clone()).build();
    let start = Instant::now();
    loop {
        if let Some(state) = admin.read_compactions(None).await.expect("read compactions") {
            let v = serde_json::to_value(&state).expect("json");
            if v.to_string().contains("\"Completed\"") {
                return v;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{name}: no compaction finished in 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Four L0 SSTs compacted into a sorted run (split into subcompactions), then L0 and a tail.
pub async fn compacted_db(root: &FsPath, name: &str) -> Made {
    let store = local(root);
    let db =
        open(builder(&store, name, settings(Some(slatedb::config::CompressionCodec::Zstd), Some(compactor())), 20))
            .await;
    let mut model = Model::default();
    let mut w = Writer { db: &db, model: &mut model, rng: Rng::new(20) };
    for _ in 0..4 {
        w.fresh(150, 120).await;
        w.churn(30, 15, 120).await;
        w.flush_memtable().await;
    }
    wait_compacted(&store, name).await;
    w.fresh(60, 120).await;
    w.churn(20, 10, 120).await;
    w.l0_then_tail(0, 30, 120).await;
    db.close_with_options(close_wal()).await.expect("close");
    Made { model, meta: json!({"codec": "zstd", "sst_block_size": 4096}), checkpoints: vec![] }
}

/// Merge operands (concatenation) over bases, alone, and after deletes: in L0, compacted into
/// a sorted run, and in the WAL tail.
pub async fn merge_db(root: &FsPath, name: &str) -> Made {
    let store = local(root);
    let db =
        open(builder(&store, name, settings(None, Some(compactor())), 21).with_merge_operator(Arc::new(Concat))).await;
    let mut model = Model::default();
    let mut w = Writer { db: &db, model: &mut model, rng: Rng::new(21) };
    for round in 0..4u8 {
        let bases = w.fresh(40, 40).await;
        for (i, k) in bases.iter().enumerate() {
            for j in 0..(1 + i % 3) {
                w.merge(k, format!("r{round}m{j},").as_bytes()).await;
            }
        }
        for i in 0..20 {
            w.merge(format!("only-merges-{i:03}").as_bytes(), format!("r{round},").as_bytes()).await;
        }
        for k in bases.iter().take(5) {
            w.delete(k).await;
            w.merge(k, b"after-delete,").await;
        }
        w.flush_memtable().await;
    }
    wait_compacted(&store, name).await;
    for i in 0..30 {
        w.merge(format!("only-merges-{i:03}").as_bytes(), b"tail,").await;
    }
    w.flush_wal().await;
    db.close_with_options(close_wal()).await.expect("close");
    Made {
        model,
        meta: json!({"codec": "none", "sst_block_size": 4096, "merge_operator": "concat"}),
        checkpoints: vec![],
    }
}

/// Two checkpoints (one named, never expiring; one with a lifetime) with writes between and
/// after them.
pub async fn checkpoint_db(root: &FsPath, name: &str) -> Made {
    let store = local(root);
    let db = open(builder(&store, name, settings(Some(slatedb::config::CompressionCodec::Lz4), None), 22)).await;
    let mut model = Model::default();
    let mut w = Writer { db: &db, model: &mut model, rng: Rng::new(22) };
    let mut checkpoints = Vec::new();
    w.fresh(200, 100).await;
    w.flush_memtable().await;
    let opts = CheckpointOptions { name: Some("gen018-first".into()), ..CheckpointOptions::default() };
    let first = db.create_checkpoint(CheckpointScope::All, &opts).await.expect("checkpoint");
    checkpoints.push((first.id, "gen018-first".to_string(), snapshot(w.model)));
    w.churn(60, 40, 100).await;
    w.fresh(50, 100).await;
    w.flush_memtable().await;
    let opts = CheckpointOptions {
        name: Some("gen018-second".into()),
        lifetime: Some(Duration::from_secs(10 * 365 * 86_400)),
        ..CheckpointOptions::default()
    };
    let second = db.create_checkpoint(CheckpointScope::All, &opts).await.expect("checkpoint");
    checkpoints.push((second.id, "gen018-second".to_string(), snapshot(w.model)));
    w.churn(30, 20, 100).await;
    w.flush_wal().await;
    db.close_with_options(close_wal()).await.expect("close");
    Made { model, meta: json!({"codec": "lz4", "sst_block_size": 4096}), checkpoints }
}

/// A clone of `parent` at its first checkpoint, written to on its own afterwards.
pub async fn clone_db(root: &FsPath, name: &str, parent: &str, at: uuid::Uuid, parent_model: &Model) -> Made {
    let store = local(root);
    let admin = Admin::builder(format!("{name}/db"), store.clone()).build();
    admin
        .create_clone_builder_from_source(CloneSourceSpec::with_checkpoint(format!("{parent}/db"), at))
        .build()
        .await
        .expect("clone");
    let db = open(builder(&store, name, settings(Some(slatedb::config::CompressionCodec::Lz4), None), 23)).await;
    let mut model = snapshot(parent_model);
    let mut w = Writer { db: &db, model: &mut model, rng: Rng::new(23) };
    w.churn(40, 20, 100).await;
    w.l0_then_tail(40, 20, 100).await;
    db.close_with_options(close_wal()).await.expect("close");
    Made {
        model,
        meta: json!({"codec": "lz4", "sst_block_size": 4096, "clone_of": format!("{parent}/db"), "clone_checkpoint": at.to_string()}),
        checkpoints: vec![],
    }
}

/// A database whose `Admin::delete_db` stopped right after writing its `.deleting` marker: the
/// store refuses the deletes that come next, as if the process died there.
pub async fn deleting_db(root: &FsPath, name: &str) -> Made {
    let store = local(root);
    let db = open(builder(&store, name, settings(None, None), 24)).await;
    let mut model = Model::default();
    let mut w = Writer { db: &db, model: &mut model, rng: Rng::new(24) };
    w.l0_then_tail(60, 10, 60).await;
    db.close_with_options(close_wal()).await.expect("close");
    let faulty = Arc::new(FaultStore::new(store));
    faulty.refuse_deletes();
    let admin = Admin::builder(format!("{name}/db"), faulty.clone() as Arc<dyn object_store::ObjectStore>).build();
    let err = admin.delete_db(true).await.expect_err("the delete must stop at the first delete");
    let marker = root.join(name).join("db").join(".deleting");
    assert!(marker.exists(), "no marker at {}", marker.display());
    Made {
        model,
        meta: json!({"codec": "none", "sst_block_size": 4096, "marker": ".deleting", "delete_error": err.to_string()}),
        checkpoints: vec![],
    }
}

/// A compaction caught half way: its first subcompaction finished (its output uploaded and
/// recorded as Completed), the others hang on their uploads. The folder is copied at that
/// moment, as a crash would leave it; the live database is abandoned.
pub async fn compacting_db(root: &FsPath, out: &FsPath, name: &str) -> Made {
    let faulty = Arc::new(FaultStore::new(local(root)));
    let store = faulty.clone() as Arc<dyn object_store::ObjectStore>;
    let db = open(builder(&store, name, settings(None, Some(compactor())), 25)).await;
    let mut model = Model::default();
    let mut w = Writer { db: &db, model: &mut model, rng: Rng::new(25) };
    for round in 0..4 {
        if round == 3 {
            // This L0 flush, then one compaction output; every later upload hangs.
            faulty.hang_compacted_puts_after(2);
        }
        w.fresh(150, 100).await;
        w.flush_memtable().await;
    }
    w.fresh(20, 100).await;
    w.flush_wal().await;
    let admin = Admin::builder(format!("{name}/db"), store.clone()).build();
    let start = Instant::now();
    let state = loop {
        if let Some(state) = admin.read_compactions(None).await.expect("read compactions") {
            let v = serde_json::to_value(&state).expect("json");
            let s = v.to_string();
            if s.contains("\"Completed\"") && s.contains("\"InProgress\"") {
                break v;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{name}: no partial compaction in 60 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    crate::setup::copy_tree(&root.join(name), &out.join(name));
    // The live database is abandoned with its hung uploads, as the crash left it.
    std::mem::forget(db);
    Made { model, meta: json!({"codec": "none", "sst_block_size": 4096, "state_at_copy": state}), checkpoints: vec![] }
}
