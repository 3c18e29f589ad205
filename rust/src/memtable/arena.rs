//! Where a memtable's key and value bytes live: arena chunks, each write's bytes copied in
//! once. Rows name their bytes by segment and offset (`rows::Slot`).
//!
//! The bytes written since the last `freeze` form the open segment: plain memory of the
//! chunk being filled, read by offset and never shared, so a write costs a copy and no
//! reference count. `freeze` turns it into a `Bytes` that rows are sliced from without a
//! copy, and that an encoder may hold after the memtable's lock is released (the WAL rows
//! taken for an upload: `Memtable::take_wal`). Segments are therefore few (one per WAL
//! upload or full chunk), and finding one is an index into a short list.

use bytes::{Bytes, BytesMut};

/// Arena chunks are 32 MiB: glibc always maps allocations this large with mmap (its adaptive
/// threshold stops at 32 MiB), so a flushed memtable's memory goes back to the system at
/// once instead of lingering in the heap; pages are only resident once written.
const CHUNK: usize = 32 << 20;

#[derive(Default)]
pub struct Arena {
    /// Frozen segments, in write order; the open one is number `segs.len()`.
    segs: Vec<Bytes>,
    open: BytesMut,
    written: usize,
}

impl Arena {
    /// Copies `parts` one after the other into the open segment; returns the segment and the
    /// offset of the first byte in it. Offsets stay below 2**32 when each write is under
    /// 2**31 bytes: a chunk holds 32 MiB of writes, or one larger write alone.
    pub fn stash(&mut self, parts: &[&[u8]]) -> (u32, usize) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if self.open.capacity() - self.open.len() < len || self.open.len() > CHUNK {
            self.freeze();
            self.open = BytesMut::with_capacity(CHUNK.max(len));
        }
        // Counted as written: a chunk's pages are resident only once touched.
        self.written += len;
        let off = self.open.len();
        for p in parts {
            self.open.extend_from_slice(p);
        }
        (self.open_seg(), off)
    }

    fn open_seg(&self) -> u32 {
        u32::try_from(self.segs.len()).expect("fewer than 2**32 segments")
    }

    /// Closes the open segment (when it holds bytes): its bytes become shareable.
    pub fn freeze(&mut self) {
        if !self.open.is_empty() {
            self.segs.push(self.open.split().freeze());
        }
    }

    /// The segments from `first` on, the open one frozen first.
    pub fn segs_from(&mut self, first: u32) -> Vec<Bytes> {
        self.freeze();
        self.segs[first as usize..].to_vec()
    }

    /// The bytes of segment `seg`.
    pub fn seg(&self, seg: u32) -> &[u8] {
        self.segs.get(seg as usize).map_or(&self.open, |b| b)
    }

    /// `len` bytes at `off` of segment `seg`: a slice of a frozen segment, or a copy from the
    /// open one (rows read back soon after they are written).
    pub fn bytes(&self, seg: u32, off: usize, len: usize) -> Bytes {
        match self.segs.get(seg as usize) {
            _ if len == 0 => Bytes::new(),
            Some(b) => b.slice(off..off + len),
            None => Bytes::copy_from_slice(&self.open[off..off + len]),
        }
    }

    /// Bytes written, and the segment handles.
    pub fn memory_bytes(&self) -> usize {
        self.written + self.segs.len() * std::mem::size_of::<Bytes>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_read_back_open_or_frozen() {
        let mut a = Arena::default();
        assert_eq!(a.stash(&[b"ab", b"cd"]), (0, 0));
        assert_eq!(a.stash(&[b"ef"]), (0, 4));
        assert_eq!(a.seg(0), b"abcdef");
        assert_eq!(a.bytes(0, 1, 2), Bytes::from_static(b"bc"), "copied from the open segment");
        let segs = a.segs_from(0);
        assert_eq!(segs, vec![Bytes::from_static(b"abcdef")]);
        assert_eq!(a.stash(&[b"gh"]), (1, 0), "a new open segment after a freeze");
        assert_eq!(a.bytes(0, 4, 2), Bytes::from_static(b"ef"));
        assert_eq!(a.seg(1), b"gh");
        a.freeze();
        a.freeze();
        assert_eq!(a.segs_from(1), vec![Bytes::from_static(b"gh")], "an empty open segment is not frozen");
        assert_eq!(a.bytes(1, 0, 0), Bytes::new());
    }

    #[test]
    fn a_write_larger_than_a_chunk_gets_its_own() {
        let mut a = Arena::default();
        a.stash(&[b"x"]);
        let big = vec![7u8; CHUNK + 1];
        assert_eq!(a.stash(&[&big]), (1, 0));
        assert_eq!(a.stash(&[b"y"]), (2, 0), "nothing follows it in its chunk");
        assert_eq!(a.memory_bytes() - 2 * std::mem::size_of::<Bytes>(), CHUNK + 3);
    }
}
