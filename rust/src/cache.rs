//! A bytes-bounded cache of decoded data blocks, keyed by (SST uid, block index).
//!
//! Eviction is CLOCK (second chance): a hit only sets a flag, so the read path pays one hash
//! lookup per cached block, not an LRU list update. The engine gives every open SST a
//! process-unique `uid`; reads look here first and report the blocks they miss so the caller
//! can fetch them (one ranged GET each) and insert them.
//!
//! The cache is best effort: a block larger than the whole cache is not kept, and another
//! reader may evict a block between its fetch and the retry. So a read never relies on it:
//! the blocks a read fetched also go into that read's own `BlockSet` (`fetch::Fetcher`),
//! which it consults first, and which lives only as long as the read. Each resumption of a
//! read then has one more block in hand, so a read ends after at most one fetch per block it
//! needs, whatever the cache size and whatever other readers do.

use std::collections::HashMap;

use crate::format::block::Block;

type Key = (u64, u32);

struct Slot {
    key: Key,
    block: Block,
    size: usize,
    referenced: bool,
}

pub struct BlockCache {
    capacity: usize,
    used: usize,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    map: HashMap<Key, usize>,
    hand: usize,
    hits: u64,
    misses: u64,
}

impl BlockCache {
    pub fn new(capacity: usize) -> Self {
        BlockCache {
            capacity,
            used: 0,
            slots: Vec::new(),
            free: Vec::new(),
            map: HashMap::new(),
            hand: 0,
            hits: 0,
            misses: 0,
        }
    }

    pub fn get(&mut self, uid: u64, index: usize) -> Option<Block> {
        if let Some(&i) = self.map.get(&(uid, index as u32)) {
            self.hits += 1;
            let slot = self.slots[i].as_mut()?;
            slot.referenced = true;
            Some(slot.block.clone())
        } else {
            self.misses += 1;
            None
        }
    }

    fn remove_slot(&mut self, i: usize) {
        if let Some(slot) = self.slots[i].take() {
            self.map.remove(&slot.key);
            self.used -= slot.size;
            self.free.push(i);
        }
    }

    /// Evicts one unreferenced block, giving referenced ones a second chance.
    fn evict_one(&mut self) {
        let n = self.slots.len();
        for _ in 0..=(2 * n) {
            if n == 0 {
                return;
            }
            let i = self.hand % n;
            self.hand = (self.hand + 1) % n;
            match &mut self.slots[i] {
                Some(slot) if slot.referenced => slot.referenced = false,
                Some(_) => {
                    self.remove_slot(i);
                    return;
                }
                None => {}
            }
        }
    }

    /// Caches a block of `size` stored bytes; false when it is larger than the whole cache
    /// (then it is not kept).
    pub fn insert(&mut self, uid: u64, index: usize, block: Block, size: usize) -> bool {
        let key = (uid, index as u32);
        if let Some(&i) = self.map.get(&key) {
            self.remove_slot(i);
        }
        if size > self.capacity {
            return false;
        }
        while self.used + size > self.capacity && !self.map.is_empty() {
            self.evict_one();
        }
        let slot = Slot { key, block, size, referenced: false };
        let i = if let Some(i) = self.free.pop() {
            self.slots[i] = Some(slot);
            i
        } else {
            self.slots.push(Some(slot));
            self.slots.len() - 1
        };
        self.map.insert(key, i);
        self.used += size;
        true
    }

    /// Drops every block of one SST (after it is deleted or replaced).
    pub fn evict_sst(&mut self, uid: u64) {
        let doomed: Vec<usize> = self.map.iter().filter(|(k, _)| k.0 == uid).map(|(_, &i)| i).collect();
        for i in doomed {
            self.remove_slot(i);
        }
    }

    pub fn used(&self) -> usize {
        self.used
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn stats(&self) -> (u64, u64, usize) {
        (self.hits, self.misses, self.map.len())
    }
}

/// The blocks one read fetched for itself, keyed like the cache. Never evicts: it lives as
/// long as the read (one `get`, one range of a scan), and holds only what that read needed.
#[derive(Default)]
pub struct BlockSet {
    blocks: HashMap<Key, Block>,
    bytes: usize,
}

impl BlockSet {
    pub fn new() -> Self {
        BlockSet::default()
    }

    pub fn get(&self, uid: u64, index: usize) -> Option<Block> {
        self.blocks.get(&(uid, index as u32)).cloned()
    }

    pub fn insert(&mut self, uid: u64, index: usize, block: Block, size: usize) {
        if self.blocks.insert((uid, index as u32), block).is_none() {
            self.bytes += size;
        }
    }

    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Stored bytes of the blocks held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::block::{BlockBuilder, BlockFormat};
    use crate::format::row::Row;
    use bytes::Bytes;

    fn block() -> Block {
        let mut b = BlockBuilder::new(4096);
        b.add(&Row::value(&b"k"[..], &b"v"[..], 1).as_ref()).unwrap();
        Block::decode(Bytes::from(b.finish()), BlockFormat::V2).unwrap()
    }

    #[test]
    fn keeps_recently_used_blocks_within_capacity() {
        let mut c = BlockCache::new(300);
        for i in 0..3 {
            c.insert(1, i, block(), 100);
        }
        assert!(c.get(1, 0).is_some());
        c.insert(2, 0, block(), 100);
        assert_eq!(c.used(), 300);
        assert!(c.get(1, 0).is_some(), "a referenced block gets a second chance");
        assert!(c.get(2, 0).is_some());
        assert_eq!(c.stats().2, 3);
        c.evict_sst(1);
        assert_eq!(c.used(), 100);
        assert!(!c.insert(3, 0, block(), 1000));
        assert!(c.get(3, 0).is_none(), "a block larger than the cache is not kept");
    }

    #[test]
    fn a_read_keeps_its_own_blocks() {
        let mut cache = BlockCache::new(0);
        let mut mine = BlockSet::new();
        assert!(!cache.insert(7, 2, block(), 100));
        mine.insert(7, 2, block(), 100);
        mine.insert(7, 2, block(), 100);
        assert_eq!((mine.len(), mine.bytes()), (1, 100));
        assert!(mine.get(7, 2).is_some() && mine.get(7, 3).is_none());
        assert!(cache.get(7, 2).is_none());
    }
}
