//! The memtable's sorted order: one small fixed-size `Slot` per row, in sorted pages; the
//! bytes are in the arena (`arena::Arena`).
//!
//! Why not a `BTreeMap`: an insert there costs a tree descent with a key comparison (a
//! pointer chase into the arena) per step, node allocations, and about 200 bytes of memory
//! per row. Writes mostly arrive in key order (bulk loads, sorted batches, time-ordered
//! keys), so here the sorted order is a list of pages of at most `PAGE` slots each, and an
//! insert first tries the page of the previous insert: a row after the last one is a push
//! onto the last page, and the rows of a sorted batch find their page without a search.
//! Other rows cost a binary search over the pages, one inside the page, and a shift of half
//! a page on average. A slot holds the first 16 bytes of its key, so most comparisons are
//! decided without reading the arena.

use std::cmp::Ordering;

use super::arena::Arena;
use crate::format::row::{Row, RowKind};

/// Slots per page at most. A page is one allocation of `PAGE + 1` slots (an insert may
/// overflow it by one before it splits): about 8 KiB, so shifting half of one is cheap and
/// the pages of a memtable of a million rows fit a list a binary search walks quickly.
/// The first page starts small and grows to that size, so a tiny memtable stays tiny.
const PAGE: usize = 128;

const SLOT: usize = std::mem::size_of::<Slot>();

const KIND_MASK: u8 = 0b11;
const HAS_EXPIRE: u8 = 0b100;
const HAS_CREATE: u8 = 0b1000;

/// Key bytes a slot holds itself.
const PREFIX: usize = 16;

/// The first `PREFIX` bytes of `key`, zero-padded, as a number that orders like them.
fn prefix_of(key: &[u8]) -> u128 {
    let mut b = [0u8; PREFIX];
    let n = key.len().min(PREFIX);
    b[..n].copy_from_slice(&key[..n]);
    u128::from_be_bytes(b)
}

/// One row: the start of its key, where its bytes lie (`seg`, from `off`: the key, then the
/// value right after it) and its fields. `Copy`, without a reference count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    prefix: u128,
    pub seq: u64,
    expire_ts: i64,
    create_ts: i64,
    seg: u32,
    off: u32,
    klen: u32,
    vlen: u32,
    flags: u8,
}

impl Slot {
    /// A row of `key`, stashed at `off` in segment `seg`, its value the `vlen` bytes right
    /// after it.
    pub fn new(
        key: &[u8],
        (seg, off, vlen): (u32, usize, usize),
        seq: u64,
        kind: RowKind,
        expire_ts: Option<i64>,
        create_ts: Option<i64>,
    ) -> Self {
        debug_assert!(u32::try_from(off).is_ok() && u32::try_from(vlen).is_ok() && u32::try_from(key.len()).is_ok());
        let kind_bits = match kind {
            RowKind::Value => 0,
            RowKind::Tombstone => 1,
            RowKind::Merge => 2,
        };
        let flags = kind_bits
            | if expire_ts.is_some() { HAS_EXPIRE } else { 0 }
            | if create_ts.is_some() { HAS_CREATE } else { 0 };
        Slot {
            prefix: prefix_of(key),
            seq,
            expire_ts: expire_ts.unwrap_or(0),
            create_ts: create_ts.unwrap_or(0),
            seg,
            // Within bounds by construction: a segment's offsets stay below 2**32
            // (`Arena::stash`), keys are at most 65535 bytes and values 2**32-1.
            off: off as u32,
            klen: key.len() as u32,
            vlen: vlen as u32,
            flags,
        }
    }

    pub fn kind(&self) -> RowKind {
        match self.flags & KIND_MASK {
            0 => RowKind::Value,
            1 => RowKind::Tombstone,
            _ => RowKind::Merge,
        }
    }

    pub fn expire_ts(&self) -> Option<i64> {
        (self.flags & HAS_EXPIRE != 0).then_some(self.expire_ts)
    }

    pub fn create_ts(&self) -> Option<i64> {
        (self.flags & HAS_CREATE != 0).then_some(self.create_ts)
    }

    /// Key and value bytes.
    pub fn data_len(&self) -> usize {
        self.klen as usize + self.vlen as usize
    }

    pub fn seg(&self) -> u32 {
        self.seg
    }

    pub fn klen(&self) -> usize {
        self.klen as usize
    }

    pub fn vlen(&self) -> usize {
        self.vlen as usize
    }

    pub fn off(&self) -> usize {
        self.off as usize
    }
}

/// Where a row is, or would go: page `page`, index `idx` in it (`idx` may be the page's
/// length, and `page` the number of pages: the end).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    page: usize,
    idx: usize,
}

/// A `(key, seq)` being looked for, its key's prefix computed once.
struct Probe<'a> {
    key: &'a [u8],
    prefix: u128,
    seq: u64,
}

impl<'a> Probe<'a> {
    fn new(key: &'a [u8], seq: u64) -> Self {
        Probe { key, prefix: prefix_of(key), seq }
    }
}

#[derive(Default)]
pub struct Rows {
    pub arena: Arena,
    /// Sorted by (key ascending, seq descending), each page non-empty.
    pages: Vec<Vec<Slot>>,
    /// Slots the pages have room for (what their memory is).
    page_slots: usize,
    /// The last slot of each page, side by side, and its key prefix: the search over pages
    /// reads these (the prefixes, a dense array, first) instead of one page each.
    lasts: Vec<Slot>,
    fences: Vec<u128>,
    len: usize,
    /// The page of the last insert, tried first by the next one.
    hint: usize,
}

impl Rows {
    pub fn key(&self, s: &Slot) -> &[u8] {
        let off = s.off as usize;
        &self.arena.seg(s.seg)[off..off + s.klen as usize]
    }

    /// The row of slot `s` (slices of its segment: `Arena::bytes`).
    pub fn row(&self, s: &Slot) -> Row {
        let (k, v) = (s.off as usize, s.off as usize + s.klen as usize);
        Row {
            key: self.arena.bytes(s.seg, k, s.klen as usize),
            value: self.arena.bytes(s.seg, v, s.vlen as usize),
            seq: s.seq,
            kind: s.kind(),
            expire_ts: s.expire_ts(),
            create_ts: s.create_ts(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The arena, the pages (their whole allocations) and their last slots.
    pub fn memory_bytes(&self) -> usize {
        self.arena.memory_bytes() + (self.page_slots + self.lasts.capacity()) * SLOT + self.fences.capacity() * 16
    }

    /// How the probe compares with the row of slot `s`: by the keys' prefixes, and only when
    /// those are equal and both keys longer, by the rest of the keys; then seq descending.
    fn cmp(&self, p: &Probe<'_>, s: &Slot) -> Ordering {
        let by_key = match p.prefix.cmp(&s.prefix) {
            // Equal zero-padded prefixes with a key of at most PREFIX bytes: that key is a
            // prefix of the other, so the shorter one comes first.
            Ordering::Equal if p.key.len() <= PREFIX || s.klen as usize <= PREFIX => {
                p.key.len().cmp(&(s.klen as usize))
            }
            Ordering::Equal => p.key[PREFIX..].cmp(&self.key(s)[PREFIX..]),
            other => other,
        };
        by_key.then(s.seq.cmp(&p.seq))
    }

    /// Whether the probe's row has the key of slot `s` (mostly decided by the prefixes).
    fn same_key(&self, p: &Probe<'_>, s: &Slot) -> bool {
        p.prefix == s.prefix
            && p.key.len() == s.klen as usize
            && (p.key.len() <= PREFIX || p.key[PREFIX..] == self.key(s)[PREFIX..])
    }

    /// The page a search for the probe finds: the first whose last row is not before it
    /// (`upper`: not at or before it). Pages whose last key has a smaller or larger prefix
    /// are told apart by the dense prefix array alone.
    fn find_page(&self, p: &Probe<'_>, upper: bool) -> usize {
        let lo = self.fences.partition_point(|&f| f < p.prefix);
        let ties = self.fences[lo..].partition_point(|&f| f == p.prefix);
        lo + self.lasts[lo..lo + ties].partition_point(|s| self.before(p, s, upper))
    }

    /// Whether slot `s` comes before the probe (`upper`: or is it).
    fn before(&self, p: &Probe<'_>, s: &Slot, upper: bool) -> bool {
        match self.cmp(p, s) {
            Ordering::Greater => true,
            Ordering::Equal => upper,
            Ordering::Less => false,
        }
    }

    /// The position of the first row not before the probe (`upper`: after it).
    fn seek(&self, p: &Probe<'_>, upper: bool) -> Pos {
        let page = self.find_page(p, upper);
        let idx = self.pages.get(page).map_or(0, |pg| pg.partition_point(|s| self.before(p, s, upper)));
        Pos { page, idx }
    }

    /// The position of the first row at or after `(key, seq)`.
    pub fn lower_bound(&self, key: &[u8], seq: u64) -> Pos {
        self.seek(&Probe::new(key, seq), false)
    }

    /// The position of the first row strictly after `(key, seq)`.
    pub fn upper_bound(&self, key: &[u8], seq: u64) -> Pos {
        self.seek(&Probe::new(key, seq), true)
    }

    /// The rows of `key` with seq <= `seq`, newest first.
    pub fn versions<'a>(&'a self, key: &'a [u8], seq: u64) -> impl Iterator<Item = &'a Slot> + 'a {
        let p = Probe::new(key, seq);
        self.iter_from(self.seek(&p, false)).take_while(move |s| self.same_key(&p, s))
    }

    pub fn end(&self) -> Pos {
        Pos { page: self.pages.len(), idx: 0 }
    }

    /// The slots from `pos` on, in order.
    pub fn iter_from(&self, pos: Pos) -> impl Iterator<Item = &Slot> + '_ {
        let (head, rest): (&[Slot], &[Vec<Slot>]) = match self.pages.get(pos.page) {
            Some(p) => (&p[pos.idx..], &self.pages[pos.page + 1..]),
            None => (&[], &[]),
        };
        head.iter().chain(rest.iter().flatten())
    }

    /// The slots before `pos`, from the nearest back to the first.
    pub fn iter_before(&self, pos: Pos) -> impl Iterator<Item = &Slot> + '_ {
        let (head, rest): (&[Slot], &[Vec<Slot>]) = match self.pages.get(pos.page) {
            Some(p) => (&p[..pos.idx], &self.pages[..pos.page]),
            None => (&[], &self.pages[..]),
        };
        head.iter().rev().chain(rest.iter().rev().flat_map(|p| p.iter().rev()))
    }

    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = &Slot> + '_ {
        self.pages.iter().flatten()
    }

    /// Whether the probe belongs in page `p` (the page a search for it would find).
    fn fits_page(&self, probe: &Probe<'_>, p: usize) -> bool {
        (p == 0 || self.cmp(probe, &self.lasts[p - 1]) == Ordering::Greater)
            && (p + 1 == self.lasts.len() || self.cmp(probe, &self.lasts[p]) != Ordering::Greater)
    }

    /// Where the row of `slot` goes (its bytes already stashed), and whether a row of the
    /// same key and seq is there.
    fn place(&self, slot: &Slot) -> (Pos, bool) {
        let probe = Probe { key: self.key(slot), prefix: slot.prefix, seq: slot.seq };
        let page = if self.fits_page(&probe, self.hint) { self.hint } else { self.find_page(&probe, false) };
        let page = page.min(self.pages.len() - 1);
        let p = &self.pages[page];
        // After the page's last row: the common case of rows arriving in order.
        if self.cmp(&probe, &self.lasts[page]) == Ordering::Greater {
            return (Pos { page, idx: p.len() }, false);
        }
        let idx = p.partition_point(|s| self.cmp(&probe, s) == Ordering::Greater);
        (Pos { page, idx }, self.cmp(&probe, &p[idx]) == Ordering::Equal)
    }

    /// Adds a row whose bytes are stashed; returns the row of the same key and seq it
    /// replaced, if any.
    pub fn insert(&mut self, slot: Slot) -> Option<Slot> {
        if self.pages.is_empty() {
            self.pages.push(Vec::with_capacity(4));
            self.page_slots = 4;
            self.pages[0].push(slot);
            self.set_last(0, slot, true);
            self.len = 1;
            return None;
        }
        let (Pos { page, idx }, same) = self.place(&slot);
        self.hint = page;
        let last_page = page + 1 == self.pages.len();
        let (cap, full) = (self.pages[page].capacity(), self.pages[page].len() == self.pages[page].capacity());
        if full && cap <= PAGE && !same {
            // The first page, still growing: doubled, up to the full size.
            let more = cap.min(PAGE + 1 - cap);
            self.pages[page].reserve_exact(more);
            self.page_slots += self.pages[page].capacity() - cap;
        }
        let p = &mut self.pages[page];
        if same {
            let old = std::mem::replace(&mut p[idx], slot);
            if idx + 1 == p.len() {
                self.set_last(page, slot, false);
            }
            return Some(old);
        }
        self.len += 1;
        if idx == PAGE && last_page {
            // Appending past a full last page: a new page, so rows loaded in order fill
            // their pages instead of leaving each half empty.
            let mut next = Vec::with_capacity(PAGE + 1);
            next.push(slot);
            self.page_slots += PAGE + 1;
            self.pages.push(next);
            self.set_last(page + 1, slot, true);
            self.hint = page + 1;
            return None;
        }
        p.insert(idx, slot);
        if p.len() > PAGE {
            // Split in half or, for a row at either end (rows arriving in order, or in
            // reverse order, between two others), next to it: the full side stays full.
            let at = match idx {
                i if i >= PAGE - 1 => i,
                i if i <= 1 => i + 1,
                _ => PAGE / 2,
            };
            let mut next = Vec::with_capacity(PAGE + 1);
            next.extend_from_slice(&p[at..]);
            p.truncate(at);
            self.page_slots += PAGE + 1;
            let (left, right) = (p[at - 1], next[next.len() - 1]);
            self.pages.insert(page + 1, next);
            self.set_last(page, right, false);
            self.set_last(page, left, true);
            if idx >= at {
                self.hint = page + 1;
            }
        } else if idx + 1 == self.pages[page].len() {
            self.set_last(page, slot, false);
        }
        None
    }

    /// Records `s` as the last slot of page `page`, of a new page there when `new`.
    fn set_last(&mut self, page: usize, s: Slot, new: bool) {
        if new {
            self.lasts.insert(page, s);
            self.fences.insert(page, s.prefix);
        } else {
            self.lasts[page] = s;
            self.fences[page] = s.prefix;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(r: &mut Rows, key: &[u8], seq: u64) -> Option<Slot> {
        let (seg, off) = r.arena.stash(&[key]);
        r.insert(Slot::new(key, (seg, off, 0), seq, RowKind::Value, None, None))
    }

    fn order(r: &Rows) -> Vec<(Vec<u8>, u64)> {
        r.iter().map(|s| (r.key(s).to_vec(), s.seq)).collect()
    }

    #[test]
    fn rows_in_any_order_come_out_sorted_with_full_pages_for_ordered_loads() {
        let mut r = Rows::default();
        for i in 0..1000u32 {
            add(&mut r, format!("k{i:05}").as_bytes(), 1);
        }
        assert_eq!(r.pages.len(), 1000usize.div_ceil(PAGE), "ordered rows fill their pages");
        // Shuffled keys (a fixed permutation), newer versions of some, and a replaced one.
        for i in 0..3000u32 {
            let k = (i * 7919) % 3000;
            add(&mut r, format!("k{k:05}").as_bytes(), 2 + u64::from(i % 3));
        }
        assert_eq!(add(&mut r, b"k00007", 1).map(|s| s.seq), Some(1), "same key and seq: replaced");
        let got = order(&r);
        let mut want = got.clone();
        want.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        want.dedup();
        assert_eq!(got, want);
        assert_eq!(r.len(), got.len());
        assert_eq!(r.len(), 4000);
        assert!(r.pages.iter().all(|p| !p.is_empty() && p.len() <= PAGE));
    }

    proptest::proptest! {
        /// Keys that share long prefixes, differ only in trailing zero bytes, or end at the
        /// prefix length sort exactly as plain byte strings, and every bound agrees with a
        /// search of the sorted list.
        #[test]
        fn order_and_bounds_match_a_sorted_model(
            rows in proptest::collection::vec((proptest::collection::vec(proptest::sample::select(vec![0u8, 1, 0xff]), 1..40), 0u64..4), 1..700),
            probe in (proptest::collection::vec(proptest::sample::select(vec![0u8, 1, 0xff]), 1..40), 0u64..5),
        ) {
            let mut r = Rows::default();
            for (k, seq) in &rows {
                add(&mut r, k, *seq);
            }
            let mut model = rows.clone();
            model.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            model.dedup();
            proptest::prop_assert_eq!(order(&r), model.clone());
            let at = |pos: Pos| r.iter_from(pos).count();
            let (pk, ps) = &probe;
            let lower = model.iter().filter(|(k, s)| (k.as_slice(), std::cmp::Reverse(*s)) >= (pk.as_slice(), std::cmp::Reverse(*ps))).count();
            let upper = model.iter().filter(|(k, s)| (k.as_slice(), std::cmp::Reverse(*s)) > (pk.as_slice(), std::cmp::Reverse(*ps))).count();
            proptest::prop_assert_eq!(at(r.lower_bound(pk, *ps)), lower);
            proptest::prop_assert_eq!(at(r.upper_bound(pk, *ps)), upper);
            proptest::prop_assert_eq!(r.iter_before(r.lower_bound(pk, *ps)).count(), model.len() - lower);
            let versions: Vec<u64> = r.versions(pk, *ps).map(|s| s.seq).collect();
            let want: Vec<u64> = model.iter().filter(|(k, s)| k == pk && s <= ps).map(|(_, s)| *s).collect();
            proptest::prop_assert_eq!(versions, want);
        }
    }

    #[test]
    fn keys_equal_up_to_the_prefix_length_compare_by_the_rest() {
        let mut r = Rows::default();
        let long = |tail: &[u8]| [&[b'k'; PREFIX][..], tail].concat();
        for k in [long(b"b"), long(b""), b"ab\0".to_vec(), long(b"a\0"), b"ab".to_vec(), long(b"a")] {
            add(&mut r, &k, 1);
        }
        let keys: Vec<Vec<u8>> = order(&r).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![b"ab".to_vec(), b"ab\0".to_vec(), long(b""), long(b"a"), long(b"a\0"), long(b"b")]);
    }

    #[test]
    fn rows_in_order_between_others_or_in_reverse_keep_pages_nearly_full() {
        for keys in [
            // Ascending, all before one larger key already there.
            std::iter::once(99_999).chain(0..5000).collect::<Vec<u32>>(),
            (0..5000).rev().collect(),
        ] {
            let mut r = Rows::default();
            for k in &keys {
                add(&mut r, format!("k{k:05}").as_bytes(), 1);
            }
            assert!(r.pages.len() <= keys.len() / (PAGE - PAGE / 8) + 1, "{} pages", r.pages.len());
            assert_eq!(order(&r).len(), keys.len());
        }
    }

    #[test]
    fn bounds_and_walks_both_ways() {
        let mut r = Rows::default();
        for (k, seq) in [(&b"a"[..], 5), (b"a", 3), (b"b", 9), (b"c", 1)] {
            add(&mut r, k, seq);
        }
        let keys = |it: Vec<&Slot>| it.iter().map(|s| (r.key(s).to_vec(), s.seq)).collect::<Vec<_>>();
        let at = r.lower_bound(b"a", 4);
        assert_eq!(keys(r.iter_from(at).collect()), vec![(b"a".to_vec(), 3), (b"b".to_vec(), 9), (b"c".to_vec(), 1)]);
        assert_eq!(keys(r.iter_before(at).collect()), vec![(b"a".to_vec(), 5)]);
        assert_eq!(r.upper_bound(b"b", 9), r.lower_bound(b"c", u64::MAX));
        assert_eq!(r.iter_from(r.end()).count(), 0);
        assert_eq!(r.iter_before(r.end()).count(), 4);
        assert_eq!(r.lower_bound(b"z", 0), r.end());
        assert_eq!(r.iter_from(r.lower_bound(b"z", 0)).count(), 0);
        assert_eq!(Rows::default().iter_before(Rows::default().end()).count(), 0);
    }

    #[test]
    fn a_slot_round_trips_its_fields() {
        let mut r = Rows::default();
        let (seg, off) = r.arena.stash(&[b"key", b"value"]);
        let s = Slot::new(b"key", (seg, off, 5), 7, RowKind::Merge, Some(-4), None);
        r.insert(s);
        let row = r.row(&s);
        assert_eq!((&row.key[..], &row.value[..], row.seq), (&b"key"[..], &b"value"[..], 7));
        assert_eq!((row.kind, row.expire_ts, row.create_ts), (RowKind::Merge, Some(-4), None));
        assert_eq!(std::mem::size_of::<Slot>(), 64);
    }
}
