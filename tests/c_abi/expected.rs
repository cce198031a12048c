//! What the C program must print, computed on the Rust side: its inputs (the same
//! generator and constants) and the reference model's results.

use super::*;

pub const ROWS: usize = 10;
pub const DIM: usize = 13;
pub const NUM_BAGS: usize = 4;
pub const OUT_STRIDE: usize = DIM + 3;
pub const OUT_LEN: usize = NUM_BAGS * OUT_STRIDE;
pub const INDICES: [i64; 9] = [7, 0, 9, 3, 3, 1, 8, 2, 5];
pub const OFFSETS: [i64; NUM_BAGS + 1] = [0, 3, 3, 5, 9];
pub const LENGTHS: [i64; NUM_BAGS] = [3, 0, 2, 4];
pub const GEMM: (usize, usize, usize) = (3, 5, 4);

/// The C program's generator (a 32-bit LCG reseeded per array).
pub struct Rng(u32);

impl Rng {
    fn u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(1664525).wrapping_add(1013904223);
        self.0
    }
    fn f32(&mut self) -> f32 {
        ((self.u32() >> 8) as i32 - (1 << 23)) as f32 / (1 << 20) as f32
    }
    fn f16(&mut self) -> u16 {
        let r = self.u32();
        (((r >> 16) & 0x83ff) | ((10 + r % 10) << 10)) as u16
    }
    fn bf16(&mut self) -> u16 {
        let r = self.u32();
        (((r >> 16) & 0x807f) | ((120 + r % 10) << 7)) as u16
    }
    fn i64(&mut self) -> i64 {
        let hi = u64::from(self.u32());
        ((hi << 32) | u64::from(self.u32())) as i64
    }
}

pub fn seeded<T>(seed: u32, n: usize, f: impl Fn(&mut Rng) -> T) -> Vec<T> {
    let mut rng = Rng(seed);
    (0..n).map(|_| f(&mut rng)).collect()
}

pub fn hex_words(line: &str) -> Vec<u64> {
    let (_, words) = line.split_once(" : ").expect("a results line");
    words
        .split_whitespace()
        .map(|w| u64::from_str_radix(w, 16).expect("hex"))
        .collect()
}

pub fn keys(line: &str) -> Vec<i64> {
    let (head, _) = line.split_once(" : ").expect("a results line");
    head.split_whitespace()
        .skip(1)
        .filter_map(|w| w.parse().ok())
        .collect()
}

pub fn isa_code(isa: Isa) -> i64 {
    [
        "scalar",
        "avx2",
        "avx512",
        "avx512vnni",
        "neon",
        "neondot",
        "amx",
    ]
    .iter()
    .position(|&n| n == isa.name())
    .expect("a level the C ABI names") as i64
}

/// Words of an output buffer after `fill`, which starts from the sentinel 0xa5 bytes.
pub fn output_words(ty: OutputType, len: usize, fill: impl FnOnce(Output<'_>)) -> Vec<u64> {
    match ty {
        OutputType::F32 => {
            let mut out = vec![f32::from_bits(0xa5a5_a5a5); len];
            fill(Output::F32(&mut out));
            out.iter().map(|v| u64::from(v.to_bits())).collect()
        }
        OutputType::F16 => {
            let mut out = vec![f16::from_bits(0xa5a5); len];
            fill(Output::F16(&mut out));
            out.iter().map(|v| u64::from(v.to_bits())).collect()
        }
        OutputType::Bf16 => {
            let mut out = vec![bf16::from_bits(0xa5a5); len];
            fill(Output::Bf16(&mut out));
            out.iter().map(|v| u64::from(v.to_bits())).collect()
        }
    }
}

pub const OUTPUT_TYPES: [OutputType; 3] = [OutputType::F32, OutputType::F16, OutputType::Bf16];

pub fn slice<'a>(ty: i64, wide: &'a [i64], narrow: &'a [i32]) -> IndexSlice<'a> {
    if ty == 0 {
        IndexSlice::I32(narrow)
    } else {
        IndexSlice::I64(wide)
    }
}

/// Checks every results line; returns how many lines of each kind there were.
pub fn check_results(lines: &[&str]) -> BTreeMap<String, usize> {
    let values = seeded(1, ROWS * DIM, Rng::f32);
    let f16s: Vec<f16> = seeded(2, ROWS * DIM, Rng::f16)
        .into_iter()
        .map(f16::from_bits)
        .collect();
    let bf16s = seeded(3, ROWS * DIM, Rng::bf16);
    let weights = seeded(4, INDICES.len(), Rng::f32);
    let mut tables: Vec<Vec<u8>> = Vec::new();
    for format in Format::ALL {
        let bytes = match format {
            Format::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Format::F16 => f16s.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Format::Bf16 => bf16s.iter().flat_map(|v| v.to_le_bytes()).collect(),
            _ => {
                let mut t = vec![0u8; format.table_bytes(ROWS, DIM).unwrap()];
                reference::quantize(format, QuantInput::F32(&values), ROWS, DIM, &mut t).unwrap();
                t
            }
        };
        tables.push(bytes);
    }
    let indices32: Vec<i32> = INDICES.iter().map(|&i| i as i32).collect();
    let offsets32: Vec<i32> = OFFSETS.iter().map(|&i| i as i32).collect();
    let lengths32: Vec<i32> = LENGTHS.iter().map(|&i| i as i32).collect();

    let mut counts = BTreeMap::new();
    for line in lines.iter().filter(|l| l.contains(" : ")) {
        let kind = line.split_whitespace().next().unwrap();
        *counts.entry(kind.to_string()).or_insert(0) += 1;
        let k = keys(line);
        let got = hex_words(line);
        let want: Vec<u64> = match kind {
            "quantize" => {
                let format = Format::ALL[k[0] as usize];
                let input = if line.contains(" f16 ") {
                    QuantInput::F16(&f16s)
                } else {
                    QuantInput::F32(&values)
                };
                let mut t = vec![0u8; format.table_bytes(ROWS, DIM).unwrap()];
                reference::quantize(format, input, ROWS, DIM, &mut t).unwrap();
                t.into_iter().map(u64::from).collect()
            }
            "quantize_rows" => {
                let format = Format::ALL[k[0] as usize];
                let mut t = vec![0u8; format.table_bytes(ROWS, DIM).unwrap()];
                let input = QuantInput::F32(&values);
                if k[1] == 1 {
                    reference::quantize_greedy(format, input, ROWS, DIM, &mut t).unwrap();
                } else {
                    reference::quantize(format, input, ROWS, DIM, &mut t).unwrap();
                }
                t.into_iter().map(u64::from).collect()
            }
            "dequantize" => {
                let format = Format::ALL[k[0] as usize];
                let table = Table::new(format, ROWS, DIM, &tables[k[0] as usize]).unwrap();
                output_words(OUTPUT_TYPES[k[1] as usize], ROWS * DIM, |mut out| {
                    reference::dequantize(&table, &mut out).unwrap()
                })
            }
            "bag" => {
                let format = Format::ALL[k[0] as usize];
                let index = [IndexType::I32, IndexType::I64][k[1] as usize];
                let kind_w = [
                    WeightsKind::None,
                    WeightsKind::PerIndex,
                    WeightsKind::Positional,
                ][k[2] as usize];
                let pooling = [Pooling::Sum, Pooling::Mean][k[3] as usize];
                let output = OUTPUT_TYPES[k[4] as usize];
                let (bounds_type, bounds_kind, isa) = (k[5], k[6], k[7]);
                let indices = slice(k[1], &INDICES, &indices32);
                let bags = match bounds_kind {
                    0 => Bags::from_offsets(indices, slice(bounds_type, &OFFSETS, &offsets32)),
                    1 => Bags::from_offsets_without_last(
                        indices,
                        slice(bounds_type, &OFFSETS[..NUM_BAGS], &offsets32[..NUM_BAGS]),
                    ),
                    _ => Bags::from_lengths(indices, slice(bounds_type, &LENGTHS, &lengths32)),
                }
                .unwrap()
                .with_weights(match kind_w {
                    WeightsKind::None => Weights::None,
                    WeightsKind::PerIndex => Weights::PerIndex(&weights),
                    WeightsKind::Positional => Weights::Positional(&weights[..4]),
                })
                .unwrap();
                let plan = EmbeddingBag::new(EmbeddingBagSpec {
                    index,
                    weights: kind_w,
                    pooling,
                    output,
                    ..EmbeddingBagSpec::new(format, DIM)
                })
                .unwrap();
                assert_eq!(isa, isa_code(plan.isa()), "{line}: the plan's level");
                let table = Table::new(format, ROWS, DIM, &tables[k[0] as usize]).unwrap();
                output_words(output, OUT_LEN, |mut out| {
                    reference::embedding_bag(&table, &bags, pooling, &mut out, OUT_STRIDE).unwrap()
                })
            }
            "gemm_i64" => gemm_i64_expected(&k),
            "interaction" => interaction_expected(&k),
            "gemm_u8i8" | "gemm_u8i8_block" => {
                let packed = lowp::PackedB::new(
                    &[0i8],
                    1,
                    1,
                    lowp::WeightLayout::KByN,
                    lowp::PerColumn::Tensor(0),
                    None,
                )
                .unwrap();
                assert_eq!(k[3], isa_code(packed.isa()), "{line}: the packing's level");
                gemm_u8i8_expected(&k)
            }
            other => panic!("unknown results line kind {other}"),
        };
        assert_eq!(got, want, "{}", line.split(" : ").next().unwrap());
    }
    counts
}

pub fn vectors<'a>(bf: bool, f32s: &'a [f32], bf16s: &'a [bf16]) -> lowp::Vectors<'a> {
    if bf {
        lowp::Vectors::Bf16(bf16s)
    } else {
        lowp::Vectors::F32(f32s)
    }
}

/// What `lowp_interaction` writes in the C program's buffer (3 samples, 4 features,
/// dimension 7, rows padded to 4 and 22 apart), from the reference.
pub fn interaction_expected(k: &[i64]) -> Vec<u64> {
    let (batch, features, dim, stride) = (3, 4, 7, 22);
    let to_bf16 = |bits: Vec<u16>| -> Vec<bf16> { bits.into_iter().map(bf16::from_bits).collect() };
    let dense32 = seeded(8, batch * dim, Rng::f32);
    let dense16 = to_bf16(seeded(9, batch * dim, Rng::bf16));
    let emb_len = batch * (features - 1) * dim;
    let emb32 = seeded(10, emb_len, Rng::f32);
    let emb16 = to_bf16(seeded(11, emb_len, Rng::bf16));
    let (dense_bf16, emb_bf16) = (k[2] == 2, k[3] == 2);
    // Separate blocks are consecutive batch × dim parts of the same data.
    let part = batch * dim;
    let separate: Vec<lowp::Vectors<'_>> = (0..features - 1)
        .map(|f| {
            let r = f * part..(f + 1) * part;
            vectors(emb_bf16, &emb32[r.clone()], &emb16[r])
        })
        .collect();
    let embeddings = if k[1] == 0 {
        lowp::Embeddings::Block(vectors(emb_bf16, &emb32, &emb16))
    } else {
        lowp::Embeddings::Separate(&separate)
    };
    let options = lowp::InteractionOptions {
        diagonal: k[0] == 1,
        pad_to: 4,
        out_stride: Some(stride),
        ..lowp::InteractionOptions::new(batch, features, dim)
    };
    let dense = vectors(dense_bf16, &dense32, &dense16);
    output_words(OUTPUT_TYPES[k[4] as usize], batch * stride, |mut out| {
        reference::interaction(dense, embeddings, &options, &mut out).unwrap()
    })
}

/// Exact small positive scales, as the C program's `rng_scale`.
pub fn scale(rng: &mut Rng, shift: u32) -> f32 {
    (rng.u32() % 1000 + 1) as f32 / (1u32 << shift) as f32
}

/// All of `v` per column, or `v[0]` for the whole tensor.
pub fn scales(per_col: bool, v: &[f32]) -> lowp::PerColumn<'_, f32> {
    if per_col {
        lowp::PerColumn::Column(v)
    } else {
        lowp::PerColumn::Tensor(v[0])
    }
}

/// What `lowp_gemm_u8i8_packed` writes in the C program's buffer, from the reference.
pub fn gemm_u8i8_expected(key: &[i64]) -> Vec<u64> {
    use lowp::{GemmOutput, OutputStage, PerColumn, QuantType, RequantBias};
    let (m, n, k) = (5, 19, 23);
    let (a_stride, out_stride) = (k + 3, n + 2);
    let a = seeded(12, m * a_stride, |r| (r.u32() >> 24) as u8);
    let b = seeded(13, k * n, |r| (r.u32() >> 24) as u8 as i8);
    let mut rng = Rng(14);
    let (mut zps, mut bias_i32, mut mult, mut bias_f32, mut act, mut b_scale) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        zps.push((rng.u32() % 11) as i32 - 5);
        bias_i32.push((rng.u32() % 20001) as i32 - 10000);
        mult.push(scale(&mut rng, 18));
        bias_f32.push(rng.f32() * 64.0);
        act.push(scale(&mut rng, 16));
        b_scale.push(scale(&mut rng, 16));
    }
    let per_col = key[1] == 1;
    let cols = |v| scales(per_col, v);
    let problem = lowp::U8I8Problem {
        m,
        n,
        k,
        a: &a,
        a_stride,
        a_zero_point: 3,
        b: &b,
        b_zero_point: if per_col {
            PerColumn::Column(&zps)
        } else {
            PerColumn::Tensor(-2)
        },
    };
    let requantize = |out, bias, zero_point, relu| OutputStage::Requantize {
        out,
        bias,
        multiplier: cols(&mult),
        zero_point,
        relu,
    };
    let stage = match key[2] {
        0 => OutputStage::RawI32,
        1 => requantize(QuantType::U8, RequantBias::None, 7, true),
        2 => requantize(QuantType::I8, RequantBias::I32(&bias_i32), -3, false),
        3 => requantize(
            QuantType::U8,
            RequantBias::F32 {
                bias: &bias_f32,
                act_times_w_scale: cols(&act),
            },
            128,
            false,
        ),
        _ => OutputStage::Dequantize {
            a_scale: 1.0 / 128.0,
            b_scale: cols(&b_scale),
            bias: Some(&bias_f32),
            relu: true,
        },
    };
    let len = m * out_stride;
    let run = |mut out: GemmOutput<'_>| {
        reference::gemm_u8i8(&problem, &stage, &mut out, out_stride).unwrap()
    };
    // Buffers start as the C program's 0xa5 bytes.
    match key[2] {
        0 => {
            let mut out = vec![0xa5a5_a5a5u32 as i32; len];
            run(GemmOutput::I32(&mut out));
            out.iter().map(|&v| u64::from(v as u32)).collect()
        }
        4 => {
            let mut out = vec![f32::from_bits(0xa5a5_a5a5); len];
            run(GemmOutput::F32(&mut out));
            out.iter().map(|v| u64::from(v.to_bits())).collect()
        }
        2 => {
            let mut out = vec![0xa5u8 as i8; len];
            run(GemmOutput::I8(&mut out));
            out.iter().map(|&v| u64::from(v as u8)).collect()
        }
        _ => {
            let mut out = vec![0xa5u8; len];
            run(GemmOutput::U8(&mut out));
            out.into_iter().map(u64::from).collect()
        }
    }
}

/// What `lowp_gemm_i64` leaves in the C program's 64-element C buffer, from the CBLAS
/// definition directly.
pub fn gemm_i64_expected(k: &[i64]) -> Vec<u64> {
    let (m, n, kk) = GEMM;
    let (row_major, ta, tb, acc) = (k[0] == 101, k[1] == 112, k[2] == 112, k[3] == 1);
    let (lda, ldb, ldc) = (k[4] as usize, k[5] as usize, k[6] as usize);
    let a = seeded(5, 64, Rng::i64);
    let b = seeded(6, 64, Rng::i64);
    let mut c = seeded(7, 64, Rng::i64);
    // Element (r, col) of a matrix stored (possibly transposed) with leading dimension ld.
    let at = |data: &[i64], trans: bool, ld: usize, r: usize, col: usize| {
        let (r, col) = if trans { (col, r) } else { (r, col) };
        if row_major {
            data[r * ld + col]
        } else {
            data[col * ld + r]
        }
    };
    for i in 0..m {
        for j in 0..n {
            let mut sum = 0i64;
            for p in 0..kk {
                sum = sum.wrapping_add(at(&a, ta, lda, i, p).wrapping_mul(at(&b, tb, ldb, p, j)));
            }
            let at_c = if row_major { i * ldc + j } else { j * ldc + i };
            c[at_c] = if acc { c[at_c].wrapping_add(sum) } else { sum };
        }
    }
    c.into_iter().map(|v| v as u64).collect()
}
