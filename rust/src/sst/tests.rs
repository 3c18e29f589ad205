use bytes::Bytes;

use super::builder::separator;
use super::*;
use crate::format::codec::Compression;
use crate::format::row::Row;
use crate::format::tables::SstType;

fn rows(n: u32) -> Vec<Row> {
    (0..n)
        .map(|i| {
            let mut r =
                Row::value(format!("key{i:07}").into_bytes(), format!("value-{i}").into_bytes(), u64::from(i) + 1);
            if i % 5 == 0 {
                r = Row::tombstone(r.key, r.seq);
            }
            r.create_ts = Some(1000 + i64::from(i));
            r
        })
        .collect()
}

proptest::proptest! {
    #[test]
    fn find_block_agrees_with_a_plain_search(
        keys in proptest::collection::btree_set(proptest::collection::vec(proptest::prelude::prop_oneof![proptest::prelude::Just(0u8), proptest::prelude::Just(b'k'), 0u8..4, proptest::prelude::Just(255u8)], 1..14), 1..300),
        probes in proptest::collection::vec(proptest::collection::vec(0u8..=255, 0..14), 1..40),
        block_size in 40usize..300,
    ) {
        let rows: Vec<Row> = keys.iter().map(|k| Row::value(k.clone(), vec![1u8; 3], 1)).collect();
        let file = SstFile::open(Bytes::from(encode_sst(&rows, SstOptions { block_size, ..SstOptions::compacted() }).unwrap())).unwrap();
        for probe in probes.iter().chain(keys.iter()) {
            let plain = file.index().partition_point(|m| m.first_key.as_ref() < probe.as_slice()).saturating_sub(1);
            proptest::prop_assert_eq!(file.find_block(probe), plain);
        }
    }

    /// Many blocks whose index keys share the 8 bytes the search compares as a number
    /// (equal past the bytes all keys share), among others that differ there.
    #[test]
    fn find_block_agrees_with_a_plain_search_across_equal_numbers(
        tails in proptest::collection::btree_set(proptest::collection::vec(0u8..=255, 0..6), 1..400),
        others in proptest::collection::btree_set(proptest::collection::vec(0u8..=255, 1..12), 0..60),
        probes in proptest::collection::vec(proptest::collection::vec(0u8..=255, 0..6), 1..40),
    ) {
        let middle = b"pqrstuvwxyz";
        let long = |t: &Vec<u8>| [b"k".as_slice(), middle, t].concat();
        let keys: std::collections::BTreeSet<Vec<u8>> = tails.iter().map(long).chain(others.iter().cloned()).collect();
        let rows: Vec<Row> = keys.iter().map(|k| Row::value(k.clone(), vec![1u8; 3], 1)).collect();
        let file = SstFile::open(Bytes::from(encode_sst(&rows, SstOptions { block_size: 48, ..SstOptions::compacted() }).unwrap())).unwrap();
        for probe in probes.iter().map(long).chain(keys.iter().cloned()) {
            let plain = file.index().partition_point(|m| m.first_key.as_ref() < probe.as_slice()).saturating_sub(1);
            proptest::prop_assert_eq!(file.find_block(&probe), plain);
        }
    }
}

#[test]
fn separators() {
    assert_eq!(&separator(b"abc", b"abd")[..], b"abd");
    assert_eq!(&separator(b"abc", b"b")[..], b"b");
    assert_eq!(&separator(b"ab", b"abc")[..], b"abc");
    assert_eq!(&separator(b"ab", b"abcd")[..], b"abc");
    assert_eq!(&separator(b"abc", b"abc")[..], b"abc");
    assert_eq!(&separator(b"abzz", b"ac")[..], b"ac");
}

#[test]
fn compacted_round_trip_get_and_filter() {
    for codec in [Compression::None, Compression::Snappy, Compression::Zlib, Compression::Lz4, Compression::Zstd] {
        let input = rows(3000);
        let opts = SstOptions { compression: codec, ..SstOptions::compacted() };
        let file = SstFile::open(Bytes::from(encode_sst(&input, opts).unwrap())).unwrap();
        assert!(file.filter().is_some());
        assert!(file.num_blocks() > 10);
        let mut it = file.iter();
        let mut back = Vec::new();
        while let Some(r) = it.next_row().unwrap() {
            back.push(r);
        }
        assert_eq!(back, input);
        for r in input.iter().step_by(7) {
            assert_eq!(file.get(&r.key).unwrap().as_ref(), Some(r));
        }
        assert_eq!(file.get(b"key").unwrap(), None);
        assert_eq!(file.get(b"zzz").unwrap(), None);
        let stats = file.stats().unwrap();
        assert_eq!(stats.num_deletes, 600);
        assert_eq!(stats.num_rows(), 3000);
    }
}

#[test]
fn versions_straddling_blocks_get_the_newest() {
    let input: Vec<Row> = (0..400u64).rev().map(|s| Row::value(&b"same"[..], vec![b'x'; 30], s + 1)).collect();
    let mut all = vec![Row::value(&b"a"[..], &b"1"[..], 9)];
    all.extend(input);
    all.push(Row::value(&b"z"[..], &b"2"[..], 9));
    let file = SstFile::open(Bytes::from(
        encode_sst(&all, SstOptions { block_size: 256, ..SstOptions::compacted() }).unwrap(),
    ))
    .unwrap();
    assert!(file.num_blocks() > 20);
    assert_eq!(file.get(b"same").unwrap().unwrap().seq, 400);
    assert_eq!(file.get(b"z").unwrap().unwrap().seq, 9);
}

#[test]
fn wal_flavour() {
    let mut input = rows(500);
    input.reverse();
    for (i, r) in input.iter_mut().enumerate() {
        r.seq = i as u64 / 3 + 1;
    }
    let file = SstFile::open(Bytes::from(encode_sst(&input, SstOptions::wal()).unwrap())).unwrap();
    assert_eq!(file.info().sst_type, SstType::Wal);
    assert!(file.filter().is_none() && file.stats().is_none());
    assert_eq!(file.info().first_entry.as_deref(), Some(&1u64.to_be_bytes()[..]));
    let r = &input[17];
    assert_eq!(file.get(&r.key).unwrap().as_ref(), Some(r));
}

#[test]
fn unsorted_input_is_refused() {
    let mut input = rows(10);
    input.swap(3, 4);
    let err = encode_sst(&input, SstOptions::compacted()).unwrap_err();
    assert!(err.to_string().contains("row 4"), "{err}");
}

#[test]
fn every_truncation_and_flip_is_an_error_or_exact() {
    let input = rows(200);
    let data =
        encode_sst(&input, SstOptions { block_size: 512, min_filter_keys: 10, ..SstOptions::compacted() }).unwrap();
    for cut in 0..data.len() {
        assert!(SstFile::open(Bytes::from(data[..cut].to_vec())).is_err());
    }
    for i in (0..data.len()).step_by(3) {
        let mut bad = data.clone();
        bad[i] ^= 0x20;
        let result = SstFile::open(Bytes::from(bad)).and_then(|f| {
            let mut it = f.iter();
            let mut out = Vec::new();
            while let Some(r) = it.next_row()? {
                out.push(r);
            }
            Ok(out)
        });
        if let Ok(out) = result {
            assert_eq!(out, input, "flip at {i} gave a wrong answer");
        }
    }
}

#[test]
fn padded_blocks_fill_whole_units_and_read_back() {
    let mut input = rows(400);
    input[7].value = Bytes::from(vec![b'x'; 3000]); // a row larger than a block
    let opts = SstOptions { block_size: 1024, block_alignment: true, ..SstOptions::compacted() };
    let data = encode_sst(&input, opts).unwrap();
    let file = SstFile::open(Bytes::from(data.clone())).unwrap();
    let mut units = Vec::new();
    for i in 0..file.num_blocks() {
        let (start, end) = file.block_range(i);
        let pad = file.block_padding(i);
        assert_eq!((end - start + pad) % 1024, 0, "block {i}");
        assert!(data[end as usize..(end + pad) as usize].iter().all(|&b| b == 0));
        // A padded block records its length; one that fills its units exactly does not.
        assert_eq!(file.index()[i].encoded_len == 0, pad == 0);
        units.push((end - start + pad) / 1024);
    }
    assert!(units.contains(&3) && units.contains(&1), "{units:?}");
    let mut it = file.iter();
    let mut back = Vec::new();
    while let Some(r) = it.next_row().unwrap() {
        back.push(r);
    }
    assert_eq!(back, input);
    assert!(encode_sst(&input, SstOptions { compression: Compression::Zstd, ..opts_aligned() }).is_err());
    assert!(encode_sst(&input, SstOptions { sst_type: SstType::Wal, ..opts_aligned() }).is_err());
}

fn opts_aligned() -> SstOptions {
    SstOptions { block_alignment: true, ..SstOptions::compacted() }
}

/// `data` with its index replaced by `index` (data blocks and filter kept; index, stats and
/// metadata written anew after them), so an index can be made wrong with valid checksums.
fn with_index(data: &[u8], index: &[crate::format::tables::BlockMeta]) -> Vec<u8> {
    use crate::format::codec::{crc32, write_section};
    use crate::format::tables::{encode_index, SsTableInfo};
    let file = SstFile::open(Bytes::copy_from_slice(data)).unwrap();
    let old = file.info().clone();
    let mut out = data[..old.index_offset as usize].to_vec();
    let index_offset = out.len() as u64;
    let index_len = write_section(&mut out, Compression::None, &encode_index(index)).unwrap();
    let stats_offset = out.len() as u64;
    let stats_len = write_section(&mut out, Compression::None, &file.stats().unwrap().encode()).unwrap();
    let info = SsTableInfo { index_offset, index_len, stats_offset, stats_len, ..old };
    let meta_offset = out.len() as u64;
    let meta = info.encode();
    out.extend_from_slice(&meta);
    out.extend_from_slice(&crc32(&meta).to_be_bytes());
    out.extend_from_slice(&meta_offset.to_be_bytes());
    out.extend_from_slice(&SST_FORMAT_VERSION.to_be_bytes());
    out
}

#[test]
fn an_encoded_length_that_does_not_fit_its_block_is_refused() {
    let data = encode_sst(rows(300), SstOptions { block_size: 512, ..opts_aligned() }).unwrap();
    let file = SstFile::open(Bytes::from(data.clone())).unwrap();
    let index = file.index().to_vec();
    assert_eq!(with_index(&data, &index), data);
    let i = (0..index.len()).find(|&i| index[i].encoded_len > 0).unwrap();
    let slot = file.block_range(i).1 + file.block_padding(i) - index[i].offset;
    for bad in [slot as u32 + 1, 3] {
        let mut broken = index.clone();
        broken[i].encoded_len = bad;
        let err = SstFile::open(Bytes::from(with_index(&data, &broken))).unwrap_err();
        assert!(err.to_string().contains("encoded length"), "{err}");
    }
    // One that fits but is wrong cuts the block short: its checksum fails.
    let mut short = index.clone();
    short[i].encoded_len -= 1;
    let file = SstFile::open(Bytes::from(with_index(&data, &short))).unwrap();
    let err = file.block(i).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
}
