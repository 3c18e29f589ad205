//! Every decoder against hostile input: random bytes and single-byte changes of valid SSTs
//! (all codecs, both flavours, and blocks padded to the block size as SlateDB 0.18's
//! `with_sst_block_alignment` writes them, rows larger than a block included). The contract: an error or the exact original rows, never a
//! panic and never a different answer. Counts are printed; set FUZZ_INPUTS to run more.

use _native::format::codec::Compression;
use _native::format::row::Row;
use _native::format::tables::SstType;
use _native::sst::{encode_sst, SstFile, SstOptions};
use bytes::Bytes;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn rows(rng: &mut XorShift, n: usize) -> Vec<Row> {
    let mut keys: Vec<Vec<u8>> = (0..n).map(|_| format!("key{:06}", rng.below(1_000_000)).into_bytes()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .enumerate()
        .map(|(i, k)| {
            let mut r = Row::value(k, vec![b'a' + (i % 26) as u8; rng.below(40)], 1000 - i as u64);
            if i % 9 == 0 {
                r = Row::tombstone(r.key, r.seq);
            } else if i % 7 == 0 {
                r.expire_ts = Some(i as i64);
            }
            r.create_ts = Some(17);
            r
        })
        .collect()
}

/// Decode everything reachable: rows, point lookups, filter probes.
fn decode_all(data: Vec<u8>, probes: &[Row]) -> Result<(Vec<Row>, Vec<Option<Row>>), String> {
    let file = SstFile::open(Bytes::from(data)).map_err(|e| e.to_string())?;
    let mut it = file.iter();
    let mut out = Vec::new();
    while let Some(r) = it.next_row().map_err(|e| e.to_string())? {
        out.push(r);
    }
    let mut got = Vec::new();
    for p in probes {
        got.push(file.get(&p.key).map_err(|e| e.to_string())?);
    }
    Ok((out, got))
}

#[test]
fn hostile_inputs_give_errors_or_exact_answers() {
    let budget: usize = std::env::var("FUZZ_INPUTS").ok().and_then(|v| v.parse().ok()).unwrap_or(120_000);
    let mut rng = XorShift(0x5eed_cafe_f00d_beef);
    let codecs = [Compression::None, Compression::Snappy, Compression::Zlib, Compression::Lz4, Compression::Zstd];
    let mut corpus = Vec::new();
    for (ci, codec) in codecs.iter().enumerate() {
        for kind in [SstType::Compacted, SstType::Wal] {
            let mut input = rows(&mut rng, 40 + 30 * ci);
            if kind == SstType::Wal {
                for (i, r) in input.iter_mut().enumerate() {
                    r.seq = i as u64 + 1;
                }
            }
            let opts = SstOptions {
                sst_type: kind,
                compression: *codec,
                block_size: 256,
                min_filter_keys: 8,
                bloom_bits_per_key: 10,
                block_alignment: false,
            };
            let data = encode_sst(&input, opts).expect("encode");
            let expect = decode_all(data.clone(), &input).expect("valid SST decodes");
            assert_eq!(expect.0, input);
            corpus.push((data, input, expect.1));
        }
    }
    // Padded blocks: uncompressed compacted SSTs only (as in 0.18), some rows over a block.
    for block_size in [64, 256] {
        let mut input = rows(&mut rng, 60);
        for r in input.iter_mut().step_by(11) {
            if !r.value.is_empty() {
                r.value = Bytes::from(vec![b'p'; 300 + rng.below(300)]);
            }
        }
        let opts = SstOptions {
            sst_type: SstType::Compacted,
            compression: Compression::None,
            block_size,
            min_filter_keys: 8,
            bloom_bits_per_key: 10,
            block_alignment: true,
        };
        let data = encode_sst(&input, opts).expect("encode padded");
        let file = SstFile::open(Bytes::from(data.clone())).expect("padded SST opens");
        assert!((0..file.num_blocks()).any(|i| file.block_padding(i) > 0), "no block was padded");
        let expect = decode_all(data.clone(), &input).expect("valid padded SST decodes");
        assert_eq!(expect.0, input);
        corpus.push((data, input, expect.1));
    }
    let (mut errors, mut exact, mut inputs) = (0usize, 0usize, 0usize);
    while inputs < budget {
        let (data, input, expect_gets) = &corpus[rng.below(corpus.len())];
        let mutated = match rng.below(4) {
            0 => {
                let len = rng.below(600);
                (0..len).map(|_| rng.next() as u8).collect()
            }
            1 => {
                let mut d = data.clone();
                let at = rng.below(d.len());
                d.truncate(at);
                d
            }
            _ => {
                let mut d = data.clone();
                let at = rng.below(d.len());
                d[at] ^= (1 + rng.below(255)) as u8;
                d
            }
        };
        inputs += 1;
        match decode_all(mutated, input) {
            Err(_) => errors += 1,
            Ok((rows, gets)) => {
                assert_eq!(&rows, input, "a mutated SST decoded to different rows");
                assert_eq!(&gets, expect_gets, "a mutated SST answered a lookup differently");
                exact += 1;
            }
        }
    }
    println!("fuzzed {inputs} inputs: {errors} errors, {exact} exact decodes, 0 crashes, 0 wrong answers");
    assert_eq!(errors + exact, inputs);
}
