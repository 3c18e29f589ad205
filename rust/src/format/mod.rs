//! Byte formats of SlateDB 0.17 (see `FORMAT.md` section 3 and the module docs).

pub mod block;
pub mod codec;
pub mod cursor;
pub mod fb;
pub mod row;
pub mod tables;
