//! An object store that passes everything through to a local folder, except what a fixture
//! needs to stop half way, the way a crash would:
//! - deletes can be refused (a `Admin::delete_db` that stops right after its `.deleting` marker);
//! - uploads of compacted SSTs can hang after a number of them (a compaction whose first
//!   subcompactions finished and whose others never will).

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, Result,
};

#[derive(Debug)]
pub struct FaultStore {
    inner: Arc<dyn ObjectStore>,
    refuse_deletes: AtomicBool,
    /// Compacted-SST uploads still allowed; below zero: no limit.
    compacted_puts_left: AtomicI64,
}

impl FaultStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        FaultStore { inner, refuse_deletes: AtomicBool::new(false), compacted_puts_left: AtomicI64::new(-1) }
    }

    pub fn refuse_deletes(&self) {
        self.refuse_deletes.store(true, Ordering::SeqCst);
    }

    pub fn hang_compacted_puts_after(&self, n: i64) {
        self.compacted_puts_left.store(n, Ordering::SeqCst);
    }

    async fn gate(&self, location: &Path) {
        if !location.as_ref().contains("/compacted/") {
            return;
        }
        loop {
            let left = self.compacted_puts_left.load(Ordering::SeqCst);
            if left < 0 {
                return;
            }
            if left == 0 {
                // Never returns: this upload is what the crash interrupted.
                futures::future::pending::<()>().await;
            }
            let swap = self.compacted_puts_left.compare_exchange(left, left - 1, Ordering::SeqCst, Ordering::SeqCst);
            if swap.is_ok() {
                return;
            }
        }
    }
}

impl fmt::Display for FaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultStore {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        self.gate(location).await;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        self.gate(location).await;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        if self.refuse_deletes.load(Ordering::SeqCst) {
            return stream::once(async {
                Err(object_store::Error::NotSupported { source: "deletes are refused: the delete crashed here".into() })
            })
            .boxed();
        }
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
