//! A bounds-checked reader over a byte slice, and the varint codec.
//!
//! SlateDB's native integers are big-endian; its varints are unsigned LEB128 (7 bits a
//! byte, low group first, at most 5 bytes for a u32). Every read checks the remaining
//! length first and reports the offset of the field that ran off the end.

use crate::error::{CoreError, CoreResult};

pub struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Cursor { data, pos: 0 }
    }

    pub fn at(data: &'a [u8], pos: usize) -> Self {
        Cursor { data, pos }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    #[inline]
    pub fn take(&mut self, n: usize, what: &str) -> CoreResult<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.short(n, what));
        }
        let out = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Kept out of line: every row decode calls `take`, and its error is the rare path.
    #[cold]
    #[inline(never)]
    fn short(&self, n: usize, what: &str) -> CoreError {
        CoreError::corrupt(self.pos as u64, format!("{what} needs {n} bytes but only {} remain", self.remaining()))
    }

    #[inline]
    fn array<const N: usize>(&mut self, what: &str) -> CoreResult<[u8; N]> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    #[inline]
    pub fn u8(&mut self, what: &str) -> CoreResult<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    pub fn u16(&mut self, what: &str) -> CoreResult<u16> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub fn u32(&mut self, what: &str) -> CoreResult<u32> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    #[inline]
    pub fn u64(&mut self, what: &str) -> CoreResult<u64> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    #[inline]
    pub fn i64(&mut self, what: &str) -> CoreResult<i64> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }

    /// An unsigned LEB128 varint that must fit in 32 bits.
    #[inline]
    pub fn varint32(&mut self, what: &str) -> CoreResult<u32> {
        // One byte: every length under 128, which is most of them.
        if let Some(&byte) = self.data.get(self.pos) {
            if byte < 0x80 {
                self.pos += 1;
                return Ok(u32::from(byte));
            }
        }
        self.varint32_long(what)
    }

    fn varint32_long(&mut self, what: &str) -> CoreResult<u32> {
        let start = self.pos;
        let mut value: u32 = 0;
        for i in 0..5 {
            let Some(&byte) = self.data.get(self.pos) else {
                return Err(CoreError::corrupt(start as u64, format!("{what}: varint runs past the end")));
            };
            self.pos += 1;
            let group = u32::from(byte & 0x7f);
            if i == 4 && group > 0x0f {
                return Err(CoreError::corrupt(start as u64, format!("{what}: varint overflows 32 bits")));
            }
            value |= group << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(CoreError::corrupt(start as u64, format!("{what}: varint longer than 5 bytes")))
    }
}

pub fn put_varint32(out: &mut Vec<u8>, mut value: u32) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub fn varint32_len(value: u32) -> usize {
    match value {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x001f_ffff => 3,
        0x0020_0000..=0x0fff_ffff => 4,
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varint_round_trips(v: u32) {
            let mut buf = Vec::new();
            put_varint32(&mut buf, v);
            prop_assert_eq!(buf.len(), varint32_len(v));
            let mut c = Cursor::new(&buf);
            prop_assert_eq!(c.varint32("v").unwrap(), v);
            prop_assert!(c.is_empty());
        }
    }

    #[test]
    fn varint_known_bytes() {
        let mut buf = Vec::new();
        put_varint32(&mut buf, 300);
        assert_eq!(buf, [0xac, 0x02]);
    }

    #[test]
    fn varint_rejects_overflow_and_truncation() {
        assert!(Cursor::new(&[0xff, 0xff, 0xff, 0xff, 0x1f]).varint32("v").is_err());
        assert!(Cursor::new(&[0x80, 0x80]).varint32("v").is_err());
        assert!(Cursor::new(&[0xff, 0xff, 0xff, 0xff, 0x0f]).varint32("v").is_ok());
    }

    #[test]
    fn take_reports_offset() {
        let mut c = Cursor::new(&[1, 2, 3]);
        c.u8("a").unwrap();
        let err = c.u32("b").unwrap_err();
        assert_eq!(err.offset(), Some(1));
    }
}
