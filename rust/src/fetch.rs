//! The one contract between the engine's read logic and whoever holds the bytes.
//!
//! Native read code never calls the object store. When it needs bytes it does not have, it
//! stops and describes them as `Part`s: an object path plus byte ranges (or, to open an SST,
//! a suffix of the object). The caller fetches every part of one request together, hands the
//! buffers back as `PartReply`s, and the read resumes where it stopped. On the Python side one
//! driver serves every such request (`slatedb_py.fetch`); here `Tables` keeps what every read
//! shares: opened SSTs and the block cache.
//!
//! SSTs of a local folder (obstore's LocalStore) are read by this crate itself, with `pread`
//! on a file opened once: a block miss then costs a system call, not an object-store round
//! trip, and never crosses back into Python. This is the core's only I/O.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::Bytes;

use crate::cache::{BlockCache, BlockSet};
use crate::error::{CoreError, CoreResult};
use crate::format::block::Block;
pub use crate::source::{Part, PartReply};
use crate::sst::{SstFile, TailOpen};

/// Bytes read from the end of an SST to open it: footer, info, index and filter usually fit.
pub const TAIL_BYTES: u64 = 64 * 1024;

/// Bytes of consecutive data blocks a streaming read asks for at once (scans, compactions).
pub const READAHEAD_BYTES: u64 = 1024 * 1024;

/// The answer of a resumable read step.
pub enum Poll<T> {
    Ready(T),
    Need(Vec<Part>),
}

/// One SST a read may need: known by path (and uid in the cache) before it is opened.
pub struct TableSlot {
    pub path: Arc<str>,
    pub uid: u64,
    table: OnceLock<SstFile>,
    local: Option<PathBuf>,
    /// The open local file, while the handle's file budget (`OpenFiles`) keeps it open.
    file: Arc<Mutex<Option<Arc<std::fs::File>>>>,
    files: Arc<OpenFiles>,
}

/// How many local SST files a handle keeps open at once: least recently opened ones are
/// closed past the cap (a later read opens them again), so a database of any number of SSTs
/// stays under the process's descriptor limit.
pub const MAX_OPEN_FILES: usize = 256;

/// A local SST file, open or closed (`None`) by `OpenFiles` past its cap.
type FileHandle = Mutex<Option<Arc<std::fs::File>>>;

#[derive(Default)]
pub struct OpenFiles {
    order: Mutex<std::collections::VecDeque<std::sync::Weak<FileHandle>>>,
}

/// "Too many open files" (errno EMFILE on Linux and macOS).
const EMFILE: i32 = 24;

impl OpenFiles {
    /// Closes the older half of the open files.
    fn shed(&self) -> CoreResult<()> {
        let mut order = lock(&self.order)?;
        let n = order.len().div_ceil(2);
        for w in order.drain(..n) {
            if let Some(old) = w.upgrade() {
                lock(&old)?.take();
            }
        }
        Ok(())
    }

    fn opened(&self, file: &Arc<Mutex<Option<Arc<std::fs::File>>>>) -> CoreResult<()> {
        let mut order = lock(&self.order)?;
        order.push_back(Arc::downgrade(file));
        while order.len() > MAX_OPEN_FILES {
            if let Some(old) = order.pop_front().and_then(|w| w.upgrade()) {
                // Reads holding the file keep their own reference until they finish.
                lock(&old)?.take();
            }
        }
        Ok(())
    }
}

impl TableSlot {
    pub fn get(&self) -> Option<&SstFile> {
        self.table.get()
    }

    pub fn is_local(&self) -> bool {
        self.local.is_some()
    }

    /// Installs an SST opened by someone (the first one wins; they are the same bytes).
    pub fn set(&self, file: SstFile) -> &SstFile {
        self.table.get_or_init(|| file)
    }

    fn local_file(&self) -> CoreResult<Arc<std::fs::File>> {
        let path = self.local.as_ref().ok_or_else(|| CoreError::invalid("not a local table"))?;
        let mut held = lock(&self.file)?;
        if let Some(f) = held.as_ref() {
            return Ok(f.clone());
        }
        let f = match std::fs::File::open(path) {
            Ok(f) => f,
            // Out of descriptors (a lower limit than the cap assumes): close half of the
            // files this handle holds and try once more.
            Err(e) if e.raw_os_error() == Some(EMFILE) => {
                drop(held);
                self.files.shed()?;
                held = lock(&self.file)?;
                std::fs::File::open(path).map_err(|e| self.io_error(&e))?
            }
            Err(e) => return Err(self.io_error(&e)),
        };
        let f = Arc::new(f);
        *held = Some(f.clone());
        drop(held);
        self.files.opened(&self.file)?;
        Ok(f)
    }

    fn io_error(&self, e: &std::io::Error) -> CoreError {
        if e.kind() == std::io::ErrorKind::NotFound {
            CoreError::Missing(self.path.to_string())
        } else if e.kind() == std::io::ErrorKind::IsADirectory {
            // Not a passing failure: the store holds something else where the SST should be.
            CoreError::corrupt(0, "a directory where the SST should be").in_object(Some(&self.path))
        } else {
            CoreError::Io { object: self.path.to_string(), message: e.to_string() }
        }
    }

    /// Reads `[start, end)` of the local file.
    pub fn read_local(&self, start: u64, end: u64) -> CoreResult<Bytes> {
        use std::os::unix::fs::FileExt;
        let f = self.local_file()?;
        let mut buf = vec![0u8; (end - start) as usize];
        f.read_exact_at(&mut buf, start).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                CoreError::corrupt(start, format!("the object ends before byte {end}")).in_object(Some(&self.path))
            } else {
                self.io_error(&e)
            }
        })?;
        Ok(Bytes::from(buf))
    }

    /// Opens the local file natively, reading as much of its tail as the metadata needs.
    fn open_local(&self) -> CoreResult<&SstFile> {
        let f = self.local_file()?;
        let size = f.metadata().map_err(|e| self.io_error(&e))?.len();
        let mut from = size.saturating_sub(TAIL_BYTES);
        loop {
            let tail = self.read_local(from, size)?;
            match SstFile::open_tail(tail, size).map_err(|e| e.in_object(Some(&self.path)))? {
                TailOpen::Opened(file) => return Ok(self.set(file)),
                TailOpen::NeedFrom(offset) if offset < from => from = offset,
                TailOpen::NeedFrom(offset) => {
                    return Err(CoreError::corrupt(offset, format!("{}: metadata start moved forward", self.path)))
                }
            }
        }
    }
}

/// Every SST a database handle has opened, plus the block cache they share.
pub struct Tables {
    slots: Mutex<HashMap<Arc<str>, Arc<TableSlot>>>,
    pub cache: Mutex<BlockCache>,
    local_root: Option<PathBuf>,
    next_uid: AtomicU64,
    files: Arc<OpenFiles>,
}

/// Object paths read natively from a local folder: plain characters only, so the file name
/// is exactly what obstore wrote (it escapes others).
fn plain_path(path: &str) -> bool {
    !path.is_empty()
        && path.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
        && !path.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..")
}

fn lock<T>(m: &Mutex<T>) -> CoreResult<MutexGuard<'_, T>> {
    m.lock().map_err(|_| CoreError::poisoned("native state"))
}

impl Tables {
    /// `local_root`: the folder of a LocalStore, whose SSTs are then read natively.
    pub fn new(cache_bytes: usize, local_root: Option<PathBuf>) -> Self {
        Tables {
            slots: Mutex::new(HashMap::new()),
            cache: Mutex::new(BlockCache::new(cache_bytes)),
            local_root,
            next_uid: AtomicU64::new(1),
            files: Arc::new(OpenFiles::default()),
        }
    }

    pub fn is_local(&self) -> bool {
        self.local_root.is_some()
    }

    /// The slot of `path`, made on first use (nothing is read).
    pub fn slot(&self, path: &str) -> CoreResult<Arc<TableSlot>> {
        let mut slots = lock(&self.slots)?;
        if let Some(s) = slots.get(path) {
            return Ok(s.clone());
        }
        let local = self.local_root.as_ref().filter(|_| plain_path(path)).map(|r| r.join(path));
        let slot = Arc::new(TableSlot {
            path: Arc::from(path),
            uid: self.next_uid.fetch_add(1, Ordering::Relaxed),
            table: OnceLock::new(),
            local,
            file: Arc::new(Mutex::new(None)),
            files: self.files.clone(),
        });
        slots.insert(slot.path.clone(), slot.clone());
        Ok(slot)
    }

    /// Drops `path` and its cached blocks (its SST left the tree).
    pub fn forget(&self, path: &str) -> CoreResult<()> {
        let slot = lock(&self.slots)?.remove(path);
        if let Some(s) = slot {
            lock(&self.cache)?.evict_sst(s.uid);
        }
        Ok(())
    }

    /// Drops every SST but those of `keep` (the SSTs of the tree a handle now reads): their
    /// slots and cached blocks; a slot's open file closes with its last reference. Reads
    /// still running on an older tree keep their own references to what they read.
    pub fn retain(&self, keep: &std::collections::HashSet<String>) -> CoreResult<usize> {
        let dropped: Vec<Arc<TableSlot>> = {
            let mut slots = lock(&self.slots)?;
            let gone: Vec<Arc<str>> = slots.keys().filter(|k| !keep.contains(k.as_ref())).cloned().collect();
            gone.iter().filter_map(|k| slots.remove(k)).collect()
        };
        let mut cache = lock(&self.cache)?;
        for s in &dropped {
            // The file closes with the slot's last reference: a read still on the old tree
            // (an open iterator) keeps reading it, even once the collector unlinked it.
            cache.evict_sst(s.uid);
        }
        Ok(dropped.len())
    }

    pub fn cache(&self) -> CoreResult<MutexGuard<'_, BlockCache>> {
        lock(&self.cache)
    }

    pub fn open_count(&self) -> CoreResult<usize> {
        Ok(lock(&self.slots)?.values().filter(|s| s.get().is_some()).count())
    }
}

/// The state of reads that fetch blocks one lookup at a time (get, get_many, opening SSTs):
/// the blocks fetched for this read (kept whatever the shared cache evicts, so a read ends
/// after at most one fetch per block) and SSTs half-way through opening.
#[derive(Default)]
pub struct Fetcher {
    pub blocks: BlockSet,
    /// SSTs being opened remotely whose metadata did not fit the tail read so far.
    opening: HashMap<u64, Opening>,
    asked: Vec<Ask>,
}

struct Opening {
    /// The object's bytes from `from` to its end, read so far.
    have: Bytes,
    from: u64,
    size: u64,
    /// Where the metadata starts: the next read is `[want, from)`.
    want: u64,
}

enum Ask {
    Open(Arc<TableSlot>),
    Blocks(Arc<TableSlot>, Vec<usize>),
}

/// What a lookup needs before it can go on.
pub enum Need {
    Open(Arc<TableSlot>),
    Block(Arc<TableSlot>, usize),
}

impl Fetcher {
    /// The opened SST of `slot`: at once when opened or local, else `Err(Need::Open)`.
    pub fn table<'a>(&self, slot: &'a Arc<TableSlot>) -> CoreResult<Result<&'a SstFile, Need>> {
        if let Some(t) = slot.get() {
            return Ok(Ok(t));
        }
        if slot.is_local() {
            return slot.open_local().map(Ok);
        }
        Ok(Err(Need::Open(slot.clone())))
    }

    /// Data block `index` of an opened SST from this read's blocks, the cache or the local
    /// file; `None` when it must be fetched.
    pub fn block(
        &mut self,
        tables: &Tables,
        slot: &TableSlot,
        file: &SstFile,
        index: usize,
    ) -> CoreResult<Option<Block>> {
        if file.is_whole() {
            return file.block(index).map(Some).map_err(|e| e.in_object(Some(&slot.path)));
        }
        if let Some(b) = self.blocks.get(slot.uid, index) {
            return Ok(Some(b));
        }
        if let Some(b) = tables.cache()?.get(slot.uid, index) {
            return Ok(Some(b));
        }
        if !slot.is_local() {
            return Ok(None);
        }
        let (s, e) = file.block_range(index);
        let raw = slot.read_local(s, e)?;
        let block = file.block_from_raw(index, &raw).map_err(|e| e.in_object(Some(&slot.path)))?;
        tables.cache()?.insert(slot.uid, index, block.clone(), raw.len());
        Ok(Some(block))
    }

    /// Turns the needs of one step into one request (duplicates merged) and remembers them
    /// for `accept`.
    pub fn request(&mut self, needs: Vec<Need>) -> Vec<Part> {
        let mut parts: Vec<Part> = Vec::new();
        self.asked.clear();
        let mut opens: Vec<u64> = Vec::new();
        let mut by_table: Vec<(Arc<TableSlot>, Vec<usize>)> = Vec::new();
        for need in needs {
            match need {
                Need::Open(slot) => {
                    if opens.contains(&slot.uid) {
                        continue;
                    }
                    opens.push(slot.uid);
                    let part = match self.opening.get(&slot.uid) {
                        None => Part { path: slot.path.clone(), tail: TAIL_BYTES, ranges: Vec::new() },
                        Some(o) => Part { path: slot.path.clone(), tail: 0, ranges: vec![(o.want, o.from)] },
                    };
                    parts.push(part);
                    self.asked.push(Ask::Open(slot));
                }
                Need::Block(slot, index) => match by_table.iter_mut().find(|(s, _)| s.uid == slot.uid) {
                    Some((_, blocks)) => {
                        if !blocks.contains(&index) {
                            blocks.push(index);
                        }
                    }
                    None => by_table.push((slot, vec![index])),
                },
            }
        }
        for (slot, mut blocks) in by_table {
            blocks.sort_unstable();
            let Some(file) = slot.get() else { continue };
            let ranges = blocks.iter().map(|&b| file.block_range(b)).collect();
            parts.push(Part { path: slot.path.clone(), tail: 0, ranges });
            self.asked.push(Ask::Blocks(slot, blocks));
        }
        parts
    }

    /// Takes the replies of the last `request`, in its order.
    pub fn accept(&mut self, tables: &Tables, replies: Vec<PartReply>) -> CoreResult<()> {
        let asked = std::mem::take(&mut self.asked);
        if asked.len() != replies.len() {
            return Err(CoreError::invalid(format!("{} replies to a request of {} parts", replies.len(), asked.len())));
        }
        for (ask, reply) in asked.into_iter().zip(replies) {
            match ask {
                Ask::Open(slot) => self.accept_open(&slot, reply)?,
                Ask::Blocks(slot, blocks) => {
                    let file = slot.get().ok_or_else(|| CoreError::invalid("blocks of an unopened SST"))?;
                    if reply.buffers.len() != blocks.len() {
                        return Err(CoreError::invalid(format!(
                            "{} buffers for {} blocks",
                            reply.buffers.len(),
                            blocks.len()
                        )));
                    }
                    let mut cache = tables.cache()?;
                    for (index, raw) in blocks.into_iter().zip(reply.buffers) {
                        let block = file.block_from_raw(index, &raw).map_err(|e| e.in_object(Some(&slot.path)))?;
                        cache.insert(slot.uid, index, block.clone(), raw.len());
                        self.blocks.insert(slot.uid, index, block, raw.len());
                    }
                }
            }
        }
        Ok(())
    }

    fn accept_open(&mut self, slot: &Arc<TableSlot>, reply: PartReply) -> CoreResult<()> {
        let buf = reply.buffers.into_iter().next().ok_or_else(|| CoreError::invalid("an empty reply"))?;
        let (tail, from, size) = match self.opening.remove(&slot.uid) {
            None => {
                let size = reply.size;
                let from = size.checked_sub(buf.len() as u64).ok_or_else(|| {
                    CoreError::invalid(format!("a tail of {} bytes for an object of {size}", buf.len()))
                })?;
                (buf, from, size)
            }
            Some(o) => {
                if buf.len() as u64 != o.from - o.want {
                    return Err(CoreError::corrupt(o.want, format!("{}: short read of its metadata", slot.path)));
                }
                let mut joined = Vec::with_capacity(buf.len() + o.have.len());
                joined.extend_from_slice(&buf);
                joined.extend_from_slice(&o.have);
                (Bytes::from(joined), o.want, o.size)
            }
        };
        match SstFile::open_tail(tail.clone(), size).map_err(|e| e.in_object(Some(&slot.path)))? {
            TailOpen::Opened(file) => {
                slot.set(file);
            }
            TailOpen::NeedFrom(offset) if offset < from => {
                self.opening.insert(slot.uid, Opening { have: tail, from, size, want: offset });
            }
            TailOpen::NeedFrom(offset) => {
                return Err(CoreError::corrupt(offset, format!("{}: metadata start moved forward", slot.path)))
            }
        }
        Ok(())
    }
}
