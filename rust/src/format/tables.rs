//! The FlatBuffer tables of an SST: `SsTableInfo` (the footer's metadata, also copied into
//! manifests), `SsTableIndex { block_meta: [BlockMeta { offset, first_key, encoded_len }] }` and
//! `SstStats { num_puts, num_deletes, num_merges, raw_key_size, raw_val_size,
//! block_stats: [BlockStats { num_puts, num_deletes, num_merges }] }`. Slot numbers are the
//! schema's field ids (FORMAT.md 2.3, 3.5, 3.7).

use bytes::Bytes;
use flatbuffers::{FlatBufferBuilder, WIPOffset};

use super::codec::Compression;
use super::fb::{vt, Table};
use crate::error::{CoreError, CoreResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SstType {
    Compacted,
    Wal,
}

impl SstType {
    pub fn name(self) -> &'static str {
        match self {
            SstType::Compacted => "compacted",
            SstType::Wal => "wal",
        }
    }

    pub fn from_name(name: &str) -> CoreResult<Self> {
        match name {
            "compacted" => Ok(SstType::Compacted),
            "wal" => Ok(SstType::Wal),
            other => Err(CoreError::invalid(format!("SST kind must be 'compacted' or 'wal', not {other:?}"))),
        }
    }
}

pub const FILTER_FORMAT_LEGACY: u8 = 0;
pub const FILTER_FORMAT_COMPOSITE: u8 = 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsTableInfo {
    pub first_entry: Option<Bytes>,
    pub last_entry: Option<Bytes>,
    pub index_offset: u64,
    pub index_len: u64,
    pub filter_offset: u64,
    pub filter_len: u64,
    pub compression: Compression,
    pub sst_type: SstType,
    pub stats_offset: u64,
    pub stats_len: u64,
    pub filter_format: u8,
}

impl SsTableInfo {
    pub fn decode_table(t: &Table) -> CoreResult<Self> {
        let comp = t.u8(5, 0)?;
        let compression = Compression::from_u8(comp).ok_or_else(|| CoreError::UnsupportedVersion {
            offset: 0,
            what: "compression codec",
            version: u32::from(comp),
            supported: "0 (none), 1 (snappy), 2 (zlib), 3 (lz4), 4 (zstd)",
        })?;
        let sst_type = match t.u8(6, 0)? {
            0 => SstType::Compacted,
            1 => SstType::Wal,
            other => {
                return Err(CoreError::UnsupportedVersion {
                    offset: 0,
                    what: "SST type",
                    version: u32::from(other),
                    supported: "0 (compacted), 1 (wal)",
                })
            }
        };
        let filter_format = t.u8(10, FILTER_FORMAT_LEGACY)?;
        if filter_format > FILTER_FORMAT_COMPOSITE {
            return Err(CoreError::UnsupportedVersion {
                offset: 0,
                what: "filter format",
                version: u32::from(filter_format),
                supported: "0 (legacy), 1 (composite)",
            });
        }
        Ok(SsTableInfo {
            first_entry: t.bytes(0)?.map(Bytes::copy_from_slice),
            last_entry: t.bytes(7)?.map(Bytes::copy_from_slice),
            index_offset: t.u64(1, 0)?,
            index_len: t.u64(2, 0)?,
            filter_offset: t.u64(3, 0)?,
            filter_len: t.u64(4, 0)?,
            compression,
            sst_type,
            stats_offset: t.u64(8, 0)?,
            stats_len: t.u64(9, 0)?,
            filter_format,
        })
    }

    pub fn decode(buf: &[u8]) -> CoreResult<Self> {
        Self::decode_table(&Table::root(buf)?)
    }

    /// Writes the table into `fbb` (so a manifest can embed it) and returns its offset.
    pub fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> WIPOffset<flatbuffers::TableFinishedWIPOffset> {
        let first = self.first_entry.as_ref().map(|b| fbb.create_vector(b));
        let last = self.last_entry.as_ref().map(|b| fbb.create_vector(b));
        // Fields go in the order flatc's generated code adds them (size descending, then
        // field id descending), so our tables come out byte-identical to SlateDB's.
        let start = fbb.start_table();
        fbb.push_slot::<u64>(vt(9), self.stats_len, 0);
        fbb.push_slot::<u64>(vt(8), self.stats_offset, 0);
        fbb.push_slot::<u64>(vt(4), self.filter_len, 0);
        fbb.push_slot::<u64>(vt(3), self.filter_offset, 0);
        fbb.push_slot::<u64>(vt(2), self.index_len, 0);
        fbb.push_slot::<u64>(vt(1), self.index_offset, 0);
        if let Some(l) = last {
            fbb.push_slot_always(vt(7), l);
        }
        if let Some(f) = first {
            fbb.push_slot_always(vt(0), f);
        }
        fbb.push_slot::<u8>(vt(10), self.filter_format, 0);
        fbb.push_slot::<u8>(
            vt(6),
            match self.sst_type {
                SstType::Compacted => 0,
                SstType::Wal => 1,
            },
            0,
        );
        fbb.push_slot::<u8>(vt(5), self.compression.to_u8(), 0);
        fbb.end_table(start)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut fbb = FlatBufferBuilder::new();
        let root = self.build(&mut fbb);
        fbb.finish_minimal(root);
        fbb.finished_data().to_vec()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockMeta {
    pub offset: u64,
    pub first_key: Bytes,
    /// The block's length (CRC included) when zero padding follows it (SlateDB 0.18's
    /// `with_sst_block_alignment`); 0 when it runs to the next block's offset, which is how
    /// every unpadded block records it (and all of 0.17, which has no such field).
    pub encoded_len: u32,
}

pub fn decode_index(buf: &[u8]) -> CoreResult<Vec<BlockMeta>> {
    let root = Table::root(buf)?;
    let metas = root.tables(0)?.ok_or_else(|| root.missing("SsTableIndex.block_meta"))?;
    let mut out = Vec::with_capacity(metas.len());
    for i in 0..metas.len() {
        let m = metas.get(i)?;
        let key = m.bytes(1)?.ok_or_else(|| m.missing("BlockMeta.first_key"))?;
        out.push(BlockMeta { offset: m.u64(0, 0)?, first_key: Bytes::copy_from_slice(key), encoded_len: m.u32(2, 0)? });
    }
    Ok(out)
}

pub fn encode_index(metas: &[BlockMeta]) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::with_capacity(metas.len() * 48 + 64);
    let mut offs = Vec::with_capacity(metas.len());
    for m in metas {
        let key = fbb.create_vector(&m.first_key);
        let start = fbb.start_table();
        // flatc's order (size, then id, descending), as 0.18's `BlockMeta::create` adds them;
        // a zero `encoded_len` is left out, as there.
        fbb.push_slot::<u64>(vt(0), m.offset, 0);
        fbb.push_slot::<u32>(vt(2), m.encoded_len, 0);
        fbb.push_slot_always(vt(1), key);
        offs.push(fbb.end_table(start));
    }
    let vec = fbb.create_vector(&offs);
    let start = fbb.start_table();
    fbb.push_slot_always(vt(0), vec);
    let root = fbb.end_table(start);
    fbb.finish_minimal(root);
    fbb.finished_data().to_vec()
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockStats {
    pub num_puts: u16,
    pub num_deletes: u16,
    pub num_merges: u16,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SstStats {
    pub num_puts: u64,
    pub num_deletes: u64,
    pub num_merges: u64,
    pub raw_key_size: u64,
    pub raw_val_size: u64,
    pub block_stats: Vec<BlockStats>,
}

impl SstStats {
    pub fn num_rows(&self) -> u64 {
        self.num_puts + self.num_deletes + self.num_merges
    }

    pub fn decode(buf: &[u8]) -> CoreResult<Self> {
        let t = Table::root(buf)?;
        let mut block_stats = Vec::new();
        if let Some(v) = t.tables(5)? {
            for i in 0..v.len() {
                let b = v.get(i)?;
                block_stats.push(BlockStats {
                    num_puts: b.u16(0, 0)?,
                    num_deletes: b.u16(1, 0)?,
                    num_merges: b.u16(2, 0)?,
                });
            }
        }
        Ok(SstStats {
            num_puts: t.u64(0, 0)?,
            num_deletes: t.u64(1, 0)?,
            num_merges: t.u64(2, 0)?,
            raw_key_size: t.u64(3, 0)?,
            raw_val_size: t.u64(4, 0)?,
            block_stats,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut fbb = FlatBufferBuilder::with_capacity(self.block_stats.len() * 16 + 96);
        let mut offs = Vec::with_capacity(self.block_stats.len());
        for b in &self.block_stats {
            let start = fbb.start_table();
            fbb.push_slot::<u16>(vt(2), b.num_merges, 0);
            fbb.push_slot::<u16>(vt(1), b.num_deletes, 0);
            fbb.push_slot::<u16>(vt(0), b.num_puts, 0);
            offs.push(fbb.end_table(start));
        }
        let vec = fbb.create_vector(&offs);
        let start = fbb.start_table();
        fbb.push_slot::<u64>(vt(4), self.raw_val_size, 0);
        fbb.push_slot::<u64>(vt(3), self.raw_key_size, 0);
        fbb.push_slot::<u64>(vt(2), self.num_merges, 0);
        fbb.push_slot::<u64>(vt(1), self.num_deletes, 0);
        fbb.push_slot::<u64>(vt(0), self.num_puts, 0);
        fbb.push_slot_always(vt(5), vec);
        let root = fbb.end_table(start);
        fbb.finish_minimal(root);
        fbb.finished_data().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_round_trips() {
        let info = SsTableInfo {
            first_entry: Some(Bytes::from_static(b"a")),
            last_entry: None,
            index_offset: 10,
            index_len: 20,
            filter_offset: 10,
            filter_len: 0,
            compression: Compression::Lz4,
            sst_type: SstType::Wal,
            stats_offset: 0,
            stats_len: 0,
            filter_format: FILTER_FORMAT_COMPOSITE,
        };
        assert_eq!(SsTableInfo::decode(&info.encode()).unwrap(), info);
    }

    #[test]
    fn index_and_stats_round_trip() {
        let metas = vec![
            BlockMeta { offset: 0, first_key: Bytes::new(), encoded_len: 0 },
            BlockMeta { offset: 4090, first_key: Bytes::from_static(b"k7"), encoded_len: 1000 },
        ];
        assert_eq!(decode_index(&encode_index(&metas)).unwrap(), metas);
        let stats = SstStats {
            num_puts: 5,
            num_deletes: 1,
            num_merges: 0,
            raw_key_size: 60,
            raw_val_size: 500,
            block_stats: vec![BlockStats { num_puts: 5, num_deletes: 1, num_merges: 0 }],
        };
        assert_eq!(SstStats::decode(&stats.encode()).unwrap(), stats);
    }
}
