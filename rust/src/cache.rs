//! A bytes-bounded LRU cache of decoded data blocks, keyed by (SST uid, block index).
//!
//! The engine gives every open SST a process-unique `uid`; reads look here first and report
//! the blocks they miss so the caller can fetch them (one ranged GET each) and insert them.

use std::collections::{BTreeMap, HashMap};

use crate::format::block::Block;

type Key = (u64, u32);

pub struct BlockCache {
    capacity: usize,
    used: usize,
    tick: u64,
    map: HashMap<Key, (Block, usize, u64)>,
    order: BTreeMap<u64, Key>,
    hits: u64,
    misses: u64,
}

impl BlockCache {
    pub fn new(capacity: usize) -> Self {
        BlockCache {
            capacity,
            used: 0,
            tick: 0,
            map: HashMap::new(),
            order: BTreeMap::new(),
            hits: 0,
            misses: 0,
        }
    }

    pub fn get(&mut self, uid: u64, index: usize) -> Option<Block> {
        let key = (uid, index as u32);
        self.tick += 1;
        let tick = self.tick;
        match self.map.get_mut(&key) {
            Some((block, _, last)) => {
                self.order.remove(last);
                *last = tick;
                self.order.insert(tick, key);
                self.hits += 1;
                Some(block.clone())
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    pub fn insert(&mut self, uid: u64, index: usize, block: Block, size: usize) {
        let key = (uid, index as u32);
        self.tick += 1;
        if let Some((_, old_size, last)) = self.map.remove(&key) {
            self.order.remove(&last);
            self.used -= old_size;
        }
        if size > self.capacity {
            return;
        }
        self.map.insert(key, (block, size, self.tick));
        self.order.insert(self.tick, key);
        self.used += size;
        while self.used > self.capacity {
            let Some((_, victim)) = self.order.pop_first() else { break };
            if let Some((_, s, _)) = self.map.remove(&victim) {
                self.used -= s;
            }
        }
    }

    /// Drops every block of one SST (after it is deleted or replaced).
    pub fn evict_sst(&mut self, uid: u64) {
        let keys: Vec<Key> = self.map.keys().filter(|k| k.0 == uid).copied().collect();
        for k in keys {
            if let Some((_, s, t)) = self.map.remove(&k) {
                self.order.remove(&t);
                self.used -= s;
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::block::{BlockBuilder, BlockFormat};
    use crate::format::row::Row;
    use bytes::Bytes;

    fn block() -> Block {
        let mut b = BlockBuilder::new(4096);
        b.add(&Row::value(&b"k"[..], &b"v"[..], 1)).unwrap();
        Block::decode(Bytes::from(b.finish()), BlockFormat::V2).unwrap()
    }

    #[test]
    fn evicts_least_recently_used_within_capacity() {
        let mut c = BlockCache::new(300);
        for i in 0..3 {
            c.insert(1, i, block(), 100);
        }
        assert!(c.get(1, 0).is_some());
        c.insert(2, 0, block(), 100);
        assert!(c.get(1, 1).is_none(), "block 1 was the least recently used");
        assert!(c.get(1, 0).is_some() && c.get(1, 2).is_some() && c.get(2, 0).is_some());
        assert_eq!(c.used(), 300);
        c.evict_sst(1);
        assert_eq!(c.used(), 100);
    }
}
