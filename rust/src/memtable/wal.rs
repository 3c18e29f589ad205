//! The memtable's WAL side: the rows taken for an upload (`WalRows`), encoded outside the
//! memtable's lock, and reading a WAL object back for a replay.

use bytes::Bytes;

use super::rows::Slot;
use crate::error::{CoreError, CoreResult};
use crate::format::row::{Row, RowRef};
use crate::sst::{SstBuilder, SstFile, SstOptions};

/// Rows taken from a memtable's WAL queue (`Memtable::take_wal`), in write order: their
/// slots (in chunks), and the segments holding their bytes (the memtable's from index
/// `base` on).
pub struct WalRows {
    segs: Vec<Bytes>,
    base: u32,
    slots: Vec<Vec<Slot>>,
}

impl WalRows {
    pub(super) fn new(segs: Vec<Bytes>, base: u32, slots: Vec<Vec<Slot>>) -> Self {
        WalRows { segs, base, slots }
    }

    pub fn len(&self) -> usize {
        self.slots.iter().map(Vec::len).sum()
    }

    /// The key and value bytes of the rows.
    pub fn data_len(&self) -> usize {
        self.slots.iter().flatten().map(|s| s.klen() + s.vlen()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(Vec::is_empty)
    }

    /// The seqs of the first and the last row.
    pub fn seq_span(&self) -> Option<(u64, u64)> {
        Some((self.slots.first()?.first()?.seq, self.slots.last()?.last()?.seq))
    }

    /// The rows, borrowed from their segments.
    fn refs(&self) -> impl Iterator<Item = RowRef<'_>> + '_ {
        self.slots.iter().flatten().map(|s| {
            let seg = &self.segs[(s.seg() - self.base) as usize];
            let (k, v) = (s.off(), s.off() + s.klen());
            RowRef {
                key: &seg[k..v],
                value: &seg[v..v + s.vlen()],
                seq: s.seq,
                kind: s.kind(),
                expire_ts: s.expire_ts(),
                create_ts: s.create_ts(),
            }
        })
    }

    pub fn rows(&self) -> impl Iterator<Item = Row> + '_ {
        self.refs().map(|r| Row {
            key: Bytes::copy_from_slice(r.key),
            value: Bytes::copy_from_slice(r.value),
            seq: r.seq,
            kind: r.kind,
            expire_ts: r.expire_ts,
            create_ts: r.create_ts,
        })
    }

    /// The rows as one WAL SST (encoded from their segments, no `Row` each).
    pub fn encode(&self, opts: SstOptions) -> CoreResult<Vec<u8>> {
        let mut b = SstBuilder::new(opts)?;
        for (i, row) in self.refs().enumerate() {
            b.add_ref(row).map_err(|e| match e {
                CoreError::Invalid(m) => CoreError::Invalid(format!("row {i}: {m}")),
                other => other,
            })?;
        }
        b.finish()
    }
}

/// The rows of one WAL object with seq > `after_seq`, and whether the replay ends here. A
/// fence (0 bytes, or an old-style empty SST of at most a footer) holds none.
///
/// With `upto_ms` (a replay up to a point in time, `slatedb_py.time_travel`): the rows come
/// up to the first one written after it (`create_ts > upto_ms`), which ends the replay
/// (`true`: later rows, here or in later objects, are later writes); a row without a
/// `create_ts` is taken as written at `upto_ms`, and gets it as its create time.
pub fn wal_rows_after(data: Bytes, after_seq: u64, upto_ms: Option<i64>) -> CoreResult<(Vec<Row>, bool)> {
    if data.len() <= 10 {
        return Ok((Vec::new(), false));
    }
    let file = SstFile::open(data)?;
    let mut it = file.iter();
    let mut out = Vec::new();
    while let Some(mut r) = it.next_row()? {
        if r.seq <= after_seq {
            continue;
        }
        if let Some(upto) = upto_ms {
            match r.create_ts {
                Some(t) if t > upto => return Ok((out, true)),
                Some(_) => {}
                None => r.create_ts = Some(upto),
            }
        }
        out.push(r);
    }
    Ok((out, false))
}
