//! A bounds-checked FlatBuffers reader.
//!
//! SlateDB's metadata (SST info, index, stats; later manifests) are FlatBuffers finished
//! without a file identifier. Reading goes through this module instead of generated code so
//! that a corrupt buffer is an error naming the offset, never a panic or `unsafe` access:
//! every offset is checked against the buffer before it is followed. Writing uses the
//! `flatbuffers` crate's builder; any valid layout interoperates.
//!
//! Layout reminder: a table starts with an i32 LE soffset back to its vtable
//! (`vtable = table - soffset`); the vtable is `u16 vtable_len | u16 table_len | u16 field
//! offsets...`; a field offset of 0 (or a slot past the vtable) means "absent, use the
//! default". References (tables, vectors, strings) are u32 LE offsets relative to where they
//! are stored, always pointing forward.

use crate::error::{CoreError, CoreResult};

fn read_array<const N: usize>(buf: &[u8], at: usize, what: &str) -> CoreResult<[u8; N]> {
    let end = at.checked_add(N).filter(|&e| e <= buf.len());
    match end {
        Some(end) => {
            let mut out = [0u8; N];
            out.copy_from_slice(&buf[at..end]);
            Ok(out)
        }
        None => Err(CoreError::corrupt(
            at as u64,
            format!("flatbuffer {what} runs past the end of the {}-byte buffer", buf.len()),
        )),
    }
}

fn read_u32(buf: &[u8], at: usize, what: &str) -> CoreResult<u32> {
    Ok(u32::from_le_bytes(read_array(buf, at, what)?))
}

fn read_u16(buf: &[u8], at: usize, what: &str) -> CoreResult<u16> {
    Ok(u16::from_le_bytes(read_array(buf, at, what)?))
}

fn follow(buf: &[u8], at: usize, what: &str) -> CoreResult<usize> {
    let rel = read_u32(buf, at, what)? as usize;
    let target = at + rel;
    if rel == 0 || target >= buf.len() {
        return Err(CoreError::corrupt(at as u64, format!("flatbuffer {what} offset {rel} points outside the buffer")));
    }
    Ok(target)
}

#[allow(clippy::struct_field_names, reason = "`table_len` is the vtable field's name in the FlatBuffers spec")]
#[derive(Clone, Copy)]
pub struct Table<'a> {
    buf: &'a [u8],
    pos: usize,
    vtable: usize,
    vtable_len: usize,
    table_len: usize,
}

impl<'a> Table<'a> {
    /// The root table of a finished buffer.
    pub fn root(buf: &'a [u8]) -> CoreResult<Table<'a>> {
        let pos = follow(buf, 0, "root")?;
        Table::at(buf, pos)
    }

    fn at(buf: &'a [u8], pos: usize) -> CoreResult<Table<'a>> {
        let soffset = i32::from_le_bytes(read_array(buf, pos, "table header")?);
        let vtable = pos as i64 - i64::from(soffset);
        if vtable < 0 || vtable as usize + 4 > buf.len() {
            return Err(CoreError::corrupt(
                pos as u64,
                format!("flatbuffer table vtable offset {soffset} points outside the buffer"),
            ));
        }
        let vtable = vtable as usize;
        let vtable_len = usize::from(read_u16(buf, vtable, "vtable length")?);
        let table_len = usize::from(read_u16(buf, vtable + 2, "table length")?);
        if vtable_len < 4 || vtable_len % 2 != 0 || vtable + vtable_len > buf.len() {
            return Err(CoreError::corrupt(vtable as u64, format!("flatbuffer vtable length {vtable_len} is invalid")));
        }
        if table_len < 4 || pos + table_len > buf.len() {
            return Err(CoreError::corrupt(pos as u64, format!("flatbuffer table length {table_len} is invalid")));
        }
        Ok(Table { buf, pos, vtable, vtable_len, table_len })
    }

    /// Absolute position of field `slot` of `size` bytes, or None when absent.
    fn field(&self, slot: usize, size: usize) -> CoreResult<Option<usize>> {
        let entry = 4 + 2 * slot;
        if entry + 2 > self.vtable_len {
            return Ok(None);
        }
        let off = usize::from(read_u16(self.buf, self.vtable + entry, "vtable entry")?);
        if off == 0 {
            return Ok(None);
        }
        if off + size > self.table_len {
            return Err(CoreError::corrupt(
                self.pos as u64,
                format!("flatbuffer field {slot} at table offset {off} overruns the table"),
            ));
        }
        Ok(Some(self.pos + off))
    }

    fn scalar<const N: usize>(&self, slot: usize) -> CoreResult<Option<[u8; N]>> {
        match self.field(slot, N)? {
            Some(at) => Ok(Some(read_array(self.buf, at, "scalar field")?)),
            None => Ok(None),
        }
    }

    pub fn u64(&self, slot: usize, default: u64) -> CoreResult<u64> {
        Ok(self.scalar::<8>(slot)?.map_or(default, u64::from_le_bytes))
    }

    pub fn i64(&self, slot: usize, default: i64) -> CoreResult<i64> {
        Ok(self.scalar::<8>(slot)?.map_or(default, i64::from_le_bytes))
    }

    pub fn u32(&self, slot: usize, default: u32) -> CoreResult<u32> {
        Ok(self.scalar::<4>(slot)?.map_or(default, u32::from_le_bytes))
    }

    pub fn u16(&self, slot: usize, default: u16) -> CoreResult<u16> {
        Ok(self.scalar::<2>(slot)?.map_or(default, u16::from_le_bytes))
    }

    /// An optional u16 (`format_version: ushort = null` style fields).
    pub fn opt_u16(&self, slot: usize) -> CoreResult<Option<u16>> {
        Ok(self.scalar::<2>(slot)?.map(u16::from_le_bytes))
    }

    pub fn u8(&self, slot: usize, default: u8) -> CoreResult<u8> {
        Ok(self.scalar::<1>(slot)?.map_or(default, |b| b[0]))
    }

    pub fn bool(&self, slot: usize, default: bool) -> CoreResult<bool> {
        Ok(self.scalar::<1>(slot)?.map_or(default, |b| b[0] != 0))
    }

    fn reference(&self, slot: usize) -> CoreResult<Option<usize>> {
        match self.field(slot, 4)? {
            Some(at) => follow(self.buf, at, "reference").map(Some),
            None => Ok(None),
        }
    }

    /// A `[ubyte]` vector.
    pub fn bytes(&self, slot: usize) -> CoreResult<Option<&'a [u8]>> {
        let Some(at) = self.reference(slot)? else {
            return Ok(None);
        };
        let len = read_u32(self.buf, at, "vector length")? as usize;
        let start = at + 4;
        if start + len > self.buf.len() {
            return Err(CoreError::corrupt(
                at as u64,
                format!("flatbuffer byte vector of {len} bytes runs past the end"),
            ));
        }
        Ok(Some(&self.buf[start..start + len]))
    }

    pub fn string(&self, slot: usize) -> CoreResult<Option<&'a str>> {
        match self.bytes(slot)? {
            Some(b) => std::str::from_utf8(b).map(Some).map_err(|_| {
                CoreError::corrupt(self.pos as u64, format!("flatbuffer string field {slot} is not UTF-8"))
            }),
            None => Ok(None),
        }
    }

    pub fn table(&self, slot: usize) -> CoreResult<Option<Table<'a>>> {
        match self.reference(slot)? {
            Some(at) => Table::at(self.buf, at).map(Some),
            None => Ok(None),
        }
    }

    /// A vector of tables.
    pub fn tables(&self, slot: usize) -> CoreResult<Option<TableVec<'a>>> {
        let Some(at) = self.reference(slot)? else {
            return Ok(None);
        };
        let len = read_u32(self.buf, at, "vector length")? as usize;
        if len.checked_mul(4).and_then(|n| n.checked_add(at + 4)).is_none_or(|e| e > self.buf.len()) {
            return Err(CoreError::corrupt(at as u64, format!("flatbuffer vector of {len} tables runs past the end")));
        }
        Ok(Some(TableVec { buf: self.buf, start: at + 4, len }))
    }

    /// A vector of scalars of `N` bytes each, returned as raw little-endian chunks.
    pub fn scalars<const N: usize>(&self, slot: usize) -> CoreResult<Option<Vec<[u8; N]>>> {
        let Some(at) = self.reference(slot)? else {
            return Ok(None);
        };
        let len = read_u32(self.buf, at, "vector length")? as usize;
        let start = at + 4;
        if len.checked_mul(N).and_then(|n| n.checked_add(start)).is_none_or(|e| e > self.buf.len()) {
            return Err(CoreError::corrupt(at as u64, "flatbuffer scalar vector runs past the end"));
        }
        Ok(Some(
            (0..len)
                .map(|i| {
                    let mut out = [0u8; N];
                    out.copy_from_slice(&self.buf[start + i * N..start + (i + 1) * N]);
                    out
                })
                .collect(),
        ))
    }

    /// Error helper: a required field was absent.
    pub fn missing(&self, what: &str) -> CoreError {
        CoreError::corrupt(self.pos as u64, format!("required flatbuffer field {what} is missing"))
    }
}

#[derive(Clone, Copy)]
pub struct TableVec<'a> {
    buf: &'a [u8],
    start: usize,
    len: usize,
}

impl<'a> TableVec<'a> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, i: usize) -> CoreResult<Table<'a>> {
        let at = follow(self.buf, self.start + 4 * i, "vector element")?;
        Table::at(self.buf, at)
    }
}

/// Vtable slot id -> the `VOffsetT` the builder wants.
pub const fn vt(slot: u16) -> flatbuffers::VOffsetT {
    4 + 2 * slot
}

#[cfg(test)]
mod tests {
    use super::*;
    use flatbuffers::FlatBufferBuilder;

    #[test]
    fn reads_what_the_builder_writes() {
        let mut fbb = FlatBufferBuilder::new();
        let bytes = fbb.create_vector(&[1u8, 2, 3]);
        let name = fbb.create_string("hi");
        let start = fbb.start_table();
        fbb.push_slot::<u64>(vt(0), 77, 0);
        fbb.push_slot_always(vt(2), bytes);
        fbb.push_slot_always(vt(3), name);
        fbb.push_slot::<u8>(vt(5), 0, 0);
        let t = fbb.end_table(start);
        fbb.finish_minimal(t);
        let buf = fbb.finished_data();
        let table = Table::root(buf).unwrap();
        assert_eq!(table.u64(0, 0).unwrap(), 77);
        assert_eq!(table.u64(1, 9).unwrap(), 9);
        assert_eq!(table.bytes(2).unwrap(), Some(&[1u8, 2, 3][..]));
        assert_eq!(table.string(3).unwrap(), Some("hi"));
        assert_eq!(table.u8(5, 4).unwrap(), 4);
        assert!(table.table(7).unwrap().is_none());
        // Every truncation and every single-byte change is an Ok or an Err, never a panic.
        for cut in 0..buf.len() {
            let _ = Table::root(&buf[..cut]).and_then(|t| t.bytes(2));
        }
        for i in 0..buf.len() {
            for x in [1u8, 0x80, 0xff] {
                let mut bad = buf.to_vec();
                bad[i] ^= x;
                if let Ok(t) = Table::root(&bad) {
                    let _ = (t.u64(0, 0), t.bytes(2), t.string(3), t.table(7));
                }
            }
        }
    }
}
