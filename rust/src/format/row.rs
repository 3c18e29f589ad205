//! Rows and the row codecs.
//!
//! Row codec V2 (inside V2 data blocks; prefix-compressed against the previous key):
//!
//! ```text
//! varint32 shared | varint32 unshared | varint32 value_len | key_suffix[unshared]
//! | value[value_len] | u64 BE seq | u8 flags | [i64 BE expire_ts] | [i64 BE create_ts]
//! ```
//!
//! Row codec V0 (inside legacy V1 data blocks; prefix shared with the block's first key):
//!
//! ```text
//! u16 BE prefix_len | u16 BE suffix_len | suffix | u64 BE seq | u8 flags
//! | [i64 BE expire_ts] | [i64 BE create_ts] | (not a tombstone:) u32 BE value_len | value
//! ```
//!
//! Flags: 0x01 tombstone, 0x02 has expire_ts, 0x04 has create_ts, 0x08 merge operand.
//! Tombstone and merge are mutually exclusive; any other bit is an error (a newer codec).
//! Note the timestamp order: expire_ts comes before create_ts.

use std::fmt::Write as _;

use bytes::{Bytes, BytesMut};

use super::cursor::{put_varint32, varint32_len, Cursor};
use crate::error::{CoreError, CoreResult};

pub const FLAG_TOMBSTONE: u8 = 0x01;
pub const FLAG_HAS_EXPIRE_TS: u8 = 0x02;
pub const FLAG_HAS_CREATE_TS: u8 = 0x04;
pub const FLAG_MERGE_OPERAND: u8 = 0x08;
const KNOWN_FLAGS: u8 = 0x0f;

pub const MAX_KEY_LEN: usize = u16::MAX as usize;
pub const MAX_VALUE_LEN: usize = u32::MAX as usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RowKind {
    Value,
    Tombstone,
    Merge,
}

impl RowKind {
    pub fn name(self) -> &'static str {
        match self {
            RowKind::Value => "value",
            RowKind::Tombstone => "tombstone",
            RowKind::Merge => "merge",
        }
    }

    pub fn from_name(name: &str) -> CoreResult<Self> {
        match name {
            "value" => Ok(RowKind::Value),
            "tombstone" => Ok(RowKind::Tombstone),
            "merge" => Ok(RowKind::Merge),
            other => {
                Err(CoreError::invalid(format!("row kind must be 'value', 'tombstone' or 'merge', not {other:?}")))
            }
        }
    }
}

/// One version of one key. `value` is empty for tombstones.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Row {
    pub key: Bytes,
    pub value: Bytes,
    pub seq: u64,
    pub kind: RowKind,
    pub expire_ts: Option<i64>,
    pub create_ts: Option<i64>,
}

impl Row {
    pub fn value(key: impl Into<Bytes>, value: impl Into<Bytes>, seq: u64) -> Self {
        Row { key: key.into(), value: value.into(), seq, kind: RowKind::Value, expire_ts: None, create_ts: None }
    }

    pub fn tombstone(key: impl Into<Bytes>, seq: u64) -> Self {
        Row { key: key.into(), value: Bytes::new(), seq, kind: RowKind::Tombstone, expire_ts: None, create_ts: None }
    }

    /// Bytes of key and value (what a page of rows holds in memory).
    pub fn data_len(&self) -> usize {
        self.key.len() + self.value.len()
    }

    pub fn flags(&self) -> u8 {
        self.as_ref().flags()
    }

    /// Checks what the format can store: a key of 1..=65535 bytes, a value up to u32::MAX
    /// bytes, no value on a tombstone.
    pub fn validate(&self) -> CoreResult<()> {
        self.as_ref().validate()
    }

    /// The row's fields, borrowed (what encoding reads).
    pub fn as_ref(&self) -> RowRef<'_> {
        RowRef {
            key: &self.key,
            value: &self.value,
            seq: self.seq,
            kind: self.kind,
            expire_ts: self.expire_ts,
            create_ts: self.create_ts,
        }
    }

    /// Is this row expired at `now` (Unix ms)? A row expires when `expire_ts <= now`.
    pub fn is_expired(&self, now: i64) -> bool {
        matches!(self.expire_ts, Some(ts) if ts <= now)
    }
}

/// One version of one key, borrowed: what the encoders read, so that rows held elsewhere
/// (the memtable's arena) are encoded without a `Row` of reference-counted slices each.
#[derive(Clone, Copy, Debug)]
pub struct RowRef<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub seq: u64,
    pub kind: RowKind,
    pub expire_ts: Option<i64>,
    pub create_ts: Option<i64>,
}

impl RowRef<'_> {
    pub fn flags(&self) -> u8 {
        let mut flags = match self.kind {
            RowKind::Value => 0,
            RowKind::Tombstone => FLAG_TOMBSTONE,
            RowKind::Merge => FLAG_MERGE_OPERAND,
        };
        if self.expire_ts.is_some() {
            flags |= FLAG_HAS_EXPIRE_TS;
        }
        if self.create_ts.is_some() {
            flags |= FLAG_HAS_CREATE_TS;
        }
        flags
    }

    /// `Row::validate`.
    pub fn validate(&self) -> CoreResult<()> {
        if self.key.is_empty() {
            return Err(CoreError::invalid("key must not be empty"));
        }
        if self.key.len() > MAX_KEY_LEN {
            return Err(CoreError::invalid(format!(
                "key of {} bytes is longer than the limit of {MAX_KEY_LEN} bytes",
                self.key.len()
            )));
        }
        if self.value.len() > MAX_VALUE_LEN {
            return Err(CoreError::invalid(format!(
                "value of {} bytes for key {} is longer than the limit of {MAX_VALUE_LEN} bytes",
                self.value.len(),
                show_key(self.key)
            )));
        }
        if self.kind == RowKind::Tombstone && !self.value.is_empty() {
            return Err(CoreError::invalid(format!("tombstone for key {} must not carry a value", show_key(self.key))));
        }
        Ok(())
    }
}

/// A short printable form of a key for error messages.
pub fn show_key(key: &[u8]) -> String {
    const LIMIT: usize = 64;
    let shown = &key[..key.len().min(LIMIT)];
    let mut out = String::from("b'");
    for &b in shown {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("\\'"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('\'');
    if key.len() > LIMIT {
        let _ = write!(out, "... ({} bytes)", key.len());
    }
    out
}

fn check_flags(flags: u8, offset: usize) -> CoreResult<u8> {
    if flags & !KNOWN_FLAGS != 0 {
        return Err(CoreError::corrupt(
            offset as u64,
            format!("row flags {flags:#04x} have unknown bits (known: {KNOWN_FLAGS:#04x})"),
        ));
    }
    if flags & FLAG_TOMBSTONE != 0 && flags & FLAG_MERGE_OPERAND != 0 {
        return Err(CoreError::corrupt(
            offset as u64,
            format!("row flags {flags:#04x} mark both a tombstone and a merge operand"),
        ));
    }
    Ok(flags)
}

fn kind_of(flags: u8) -> RowKind {
    if flags & FLAG_TOMBSTONE != 0 {
        RowKind::Tombstone
    } else if flags & FLAG_MERGE_OPERAND != 0 {
        RowKind::Merge
    } else {
        RowKind::Value
    }
}

/// Size of a V2 entry for `row` sharing `shared` key bytes with the previous key.
pub fn encoded_len_v2(row: &RowRef<'_>, shared: usize) -> usize {
    let unshared = row.key.len() - shared;
    let mut n = varint32_len(shared as u32)
        + varint32_len(unshared as u32)
        + varint32_len(row.value.len() as u32)
        + unshared
        + row.value.len()
        + 9;
    if row.expire_ts.is_some() {
        n += 8;
    }
    if row.create_ts.is_some() {
        n += 8;
    }
    n
}

/// Appends a V2 entry. The caller has validated the row.
pub fn encode_v2(out: &mut Vec<u8>, row: &RowRef<'_>, shared: usize) {
    let suffix = &row.key[shared..];
    put_varint32(out, shared as u32);
    put_varint32(out, suffix.len() as u32);
    put_varint32(out, row.value.len() as u32);
    out.extend_from_slice(suffix);
    out.extend_from_slice(row.value);
    out.extend_from_slice(&row.seq.to_be_bytes());
    out.push(row.flags());
    if let Some(ts) = row.expire_ts {
        out.extend_from_slice(&ts.to_be_bytes());
    }
    if let Some(ts) = row.create_ts {
        out.extend_from_slice(&ts.to_be_bytes());
    }
}

/// Decodes the V2 entry at `*pos` of `data`. `key` holds the previous key on entry and the
/// decoded key on return; values are zero-copy slices of `data`.
pub fn decode_v2(data: &Bytes, pos: &mut usize, key: &mut Vec<u8>) -> CoreResult<Row> {
    decode_v2_with(data, pos, key, &mut BytesMut::new())
}

/// `decode_v2`, with the rebuilt key copied into `keys` (an arena the caller keeps per block:
/// one allocation per block instead of one per row). A key stored whole (a restart entry)
/// is a slice of `data` instead.
pub fn decode_v2_with(data: &Bytes, pos: &mut usize, key: &mut Vec<u8>, keys: &mut BytesMut) -> CoreResult<Row> {
    let e = decode_v2_entry(data, pos, key)?;
    let key_bytes = if e.shared == 0 {
        data.slice(e.value.start - key.len()..e.value.start)
    } else {
        if keys.capacity() - keys.len() < key.len() {
            keys.reserve(key.len().max(4096));
        }
        keys.extend_from_slice(key);
        keys.split().freeze()
    };
    let (seq, kind, expire_ts, create_ts) = (e.seq, e.kind, e.expire_ts, e.create_ts);
    Ok(Row { key: key_bytes, value: data.slice(e.value), seq, kind, expire_ts, create_ts })
}

/// A decoded V2 entry, borrowing nothing: its key is in the caller's `key` buffer and its
/// value is `value` of the block's bytes.
pub struct EntryV2 {
    pub shared: usize,
    pub value: std::ops::Range<usize>,
    pub seq: u64,
    pub kind: RowKind,
    pub expire_ts: Option<i64>,
    pub create_ts: Option<i64>,
}

/// Decodes the V2 entry at `*pos` without making a `Row` (what columnar scans read): on
/// success `key` holds its key and `*pos` moves past it; on error neither changes, so the
/// same entry fails again when retried.
#[inline]
pub fn decode_v2_entry(data: &[u8], pos: &mut usize, key: &mut Vec<u8>) -> CoreResult<EntryV2> {
    let start = *pos;
    let mut c = Cursor::at(data, start);
    let shared = c.varint32("shared key length")? as usize;
    let unshared = c.varint32("unshared key length")? as usize;
    let value_len = c.varint32("value length")? as usize;
    if shared > key.len() {
        return Err(CoreError::corrupt(
            start as u64,
            format!("row shares {shared} key bytes but the previous key has only {}", key.len()),
        ));
    }
    if shared + unshared == 0 {
        return Err(CoreError::corrupt(start as u64, "row has an empty key"));
    }
    if shared + unshared > MAX_KEY_LEN {
        return Err(CoreError::corrupt(start as u64, format!("row key of {} bytes exceeds 65535", shared + unshared)));
    }
    let suffix = c.take(unshared, "key suffix")?;
    let value_start = c.pos();
    c.take(value_len, "value")?;
    let (seq, kind, expire_ts, create_ts) = seq_and_flags(&mut c)?;
    if kind == RowKind::Tombstone && value_len != 0 {
        return Err(CoreError::corrupt(start as u64, format!("tombstone row carries a {value_len}-byte value")));
    }
    key.truncate(shared);
    key.extend_from_slice(suffix);
    *pos = c.pos();
    Ok(EntryV2 { shared, value: value_start..value_start + value_len, seq, kind, expire_ts, create_ts })
}

/// The part both row versions share after the key: seq, flags, then the timestamps the
/// flags announce.
#[inline]
fn seq_and_flags(c: &mut Cursor<'_>) -> CoreResult<(u64, RowKind, Option<i64>, Option<i64>)> {
    let seq = c.u64("sequence number")?;
    let flags_at = c.pos();
    let flags = check_flags(c.u8("row flags")?, flags_at)?;
    let expire_ts = if flags & FLAG_HAS_EXPIRE_TS != 0 { Some(c.i64("expire_ts")?) } else { None };
    let create_ts = if flags & FLAG_HAS_CREATE_TS != 0 { Some(c.i64("create_ts")?) } else { None };
    Ok((seq, kind_of(flags), expire_ts, create_ts))
}

/// Decodes the V0 entry at `*pos`; `first_key` is the first key of the block (empty while
/// decoding that first entry).
pub fn decode_v0(data: &Bytes, pos: &mut usize, first_key: &[u8]) -> CoreResult<Row> {
    let start = *pos;
    let mut c = Cursor::at(data, start);
    let prefix_len = c.u16("key prefix length")? as usize;
    let suffix_len = c.u16("key suffix length")? as usize;
    if prefix_len > first_key.len() {
        return Err(CoreError::corrupt(
            start as u64,
            format!("row shares {prefix_len} key bytes but the block's first key has only {}", first_key.len()),
        ));
    }
    if prefix_len + suffix_len == 0 {
        return Err(CoreError::corrupt(start as u64, "row has an empty key"));
    }
    let suffix = c.take(suffix_len, "key suffix")?;
    let (seq, kind, expire_ts, create_ts) = seq_and_flags(&mut c)?;
    let value = if kind == RowKind::Tombstone {
        Bytes::new()
    } else {
        let len = c.u32("value length")? as usize;
        let at = c.pos();
        c.take(len, "value")?;
        data.slice(at..at + len)
    };
    let mut full = Vec::with_capacity(prefix_len + suffix_len);
    full.extend_from_slice(&first_key[..prefix_len]);
    full.extend_from_slice(suffix);
    *pos = c.pos();
    Ok(Row {
        key: Bytes::from(full),
        value,
        seq,
        kind,
        // SlateDB drops expire_ts from V0 tombstones on read; a tombstone never expires.
        expire_ts: if kind == RowKind::Tombstone { None } else { expire_ts },
        create_ts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Row {
        Row {
            key: Bytes::from_static(b"clonekey"),
            value: Bytes::from_static(b"x"),
            seq: 10002,
            kind: RowKind::Value,
            expire_ts: None,
            create_ts: Some(0x0000_019a_1e90_8a7f),
        }
    }

    #[test]
    fn v2_matches_golden_vector() {
        // FORMAT.md 3.9: the single row of a 0.17.0 SST.
        let mut out = Vec::new();
        encode_v2(&mut out, &sample().as_ref(), 0);
        let mut expect = vec![0x00, 0x08, 0x01];
        expect.extend_from_slice(b"clonekeyx");
        expect.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x27, 0x12, 0x04]);
        expect.extend_from_slice(&[0, 0, 0x01, 0x9a, 0x1e, 0x90, 0x8a, 0x7f]);
        assert_eq!(out, expect);
        assert_eq!(encoded_len_v2(&sample().as_ref(), 0), out.len());
    }

    #[test]
    fn v2_round_trip_with_prefix() {
        let mut row = sample();
        row.expire_ts = Some(-5);
        row.kind = RowKind::Merge;
        let mut out = Vec::new();
        encode_v2(&mut out, &row.as_ref(), 5);
        let data = Bytes::from(out);
        let mut key = b"clonXXXX".to_vec();
        key.truncate(5);
        key.extend_from_slice(b"zzz");
        let mut key = b"clonekey".to_vec();
        let mut pos = 0;
        let back = decode_v2(&data, &mut pos, &mut key).unwrap();
        assert_eq!(back, row);
        assert_eq!(pos, data.len());
    }

    #[test]
    fn v2_rejects_unknown_flags_and_bad_prefix() {
        let mut out = Vec::new();
        encode_v2(&mut out, &sample().as_ref(), 0);
        let flags_at = out.len() - 9;
        out[flags_at] = 0x14;
        let data = Bytes::from(out.clone());
        let err = decode_v2(&data, &mut 0, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("unknown bits"), "{err}");
        assert_eq!(err.offset(), Some(flags_at as u64));

        out[flags_at] = 0x09;
        let data = Bytes::from(out.clone());
        assert!(decode_v2(&data, &mut 0, &mut Vec::new()).is_err());

        let mut out = Vec::new();
        encode_v2(&mut out, &sample().as_ref(), 3);
        let data = Bytes::from(out);
        assert!(decode_v2(&data, &mut 0, &mut b"cl".to_vec()).is_err());
    }

    #[test]
    fn v0_decodes_value_and_tombstone() {
        let mut buf = Vec::new();
        buf.extend_from_slice(&0u16.to_be_bytes());
        buf.extend_from_slice(&3u16.to_be_bytes());
        buf.extend_from_slice(b"abc");
        buf.extend_from_slice(&7u64.to_be_bytes());
        buf.push(FLAG_HAS_CREATE_TS);
        buf.extend_from_slice(&42i64.to_be_bytes());
        buf.extend_from_slice(&2u32.to_be_bytes());
        buf.extend_from_slice(b"vv");
        let second = buf.len();
        buf.extend_from_slice(&2u16.to_be_bytes());
        buf.extend_from_slice(&1u16.to_be_bytes());
        buf.extend_from_slice(b"d");
        buf.extend_from_slice(&8u64.to_be_bytes());
        buf.push(FLAG_TOMBSTONE);
        let data = Bytes::from(buf);
        let mut pos = 0;
        let a = decode_v0(&data, &mut pos, b"").unwrap();
        assert_eq!(pos, second);
        assert_eq!((&a.key[..], &a.value[..], a.seq, a.create_ts), (&b"abc"[..], &b"vv"[..], 7, Some(42)));
        let b = decode_v0(&data, &mut pos, &a.key).unwrap();
        assert_eq!((&b.key[..], b.kind), (&b"abd"[..], RowKind::Tombstone));
        assert_eq!(pos, data.len());
    }

    #[test]
    fn validate_limits() {
        assert!(Row::value(Bytes::new(), Bytes::new(), 1).validate().is_err());
        assert!(Row::value(vec![1u8; MAX_KEY_LEN], Bytes::new(), 1).validate().is_ok());
        assert!(Row::value(vec![1u8; MAX_KEY_LEN + 1], Bytes::new(), 1).validate().is_err());
        assert_eq!(show_key(b"a\x00'"), "b'a\\x00\\''");
    }
}
