//! Embedding bags over row-wise quantized tables (Q8, Q4, Q2): every available level
//! against the reference bit for bit over dimensions that exercise every code-unpacking
//! path (specialised, whole vectors, partial last vectors, last partial bytes, several
//! column blocks), with tables flush against a guard page so a read past the last row's
//! scale and bias faults; hand-computed rows that pin the packing order; index errors.

mod common;

use common::Lcg;
use common::guard::GuardedVec;
use half::{bf16, f16};
use lowp::embedding::plan::{
    EmbeddingBag, EmbeddingBagSpec, IndexType, OutputType, Prefetch, PrefetchHint, WeightsKind,
};
use lowp::registry::{self, Op, Spec};
use lowp::{Bags, Error, Format, IndexSlice, Isa, Output, Pooling, Table, Weights, reference};

const FORMATS: [Format; 3] = [Format::Q8, Format::Q4, Format::Q2];
/// Every specialised dimension, neighbours that leave 1–3 codes in a last byte or a
/// partial vector on every lane count, and dimensions needing several column blocks.
const DIMS: [usize; 24] = [
    0, 1, 2, 3, 5, 7, 9, 15, 16, 17, 30, 31, 32, 33, 63, 64, 65, 100, 128, 129, 255, 256, 257, 1027,
];
const ROWS: usize = 19;
/// Bag lengths: empty, one, short, long, empty again.
const LENGTHS: [usize; 6] = [0, 1, 5, 2, 40, 0];

/// This file's value distributions over the shared generator.
trait QuantValues {
    fn f32_value(&mut self) -> f32;
    fn f16_bits(&mut self) -> u16;
}

impl QuantValues for Lcg {
    /// An f32 scale, bias or weight: mostly ordinary, sometimes ±0, a denormal, huge
    /// (products overflow), infinite or NaN.
    fn f32_value(&mut self) -> f32 {
        match self.below(30) {
            0 => 0.0,
            1 => -0.0,
            2 => f32::from_bits(1 + self.below(1 << 20) as u32),
            3 => -3.0e38,
            4 => f32::INFINITY,
            5 => f32::NAN,
            6 => 1.0e-30,
            _ => (self.below(2001) as f32 - 1000.0) / 37.0,
        }
    }

    /// The bits of an f16 scale or bias, with the same kinds of extremes.
    fn f16_bits(&mut self) -> u16 {
        match self.below(30) {
            0 => 0x0000,
            1 => 0x8000,
            2 => 1 + self.below(0x3ff) as u16,
            3 => 0xfbff, // -65504
            4 => 0x7c00,
            5 => 0x7e01,
            _ => f16::from_f32((self.below(2001) as f32 - 1000.0) / 61.0).to_bits(),
        }
    }
}

/// `ROWS` rows of `dim` in `format`: random code bytes (the unused high bits of a last
/// partial byte too, which a kernel must ignore) and random scale and bias.
fn table_bytes(format: Format, dim: usize, rng: &mut Lcg) -> Vec<u8> {
    let mut bytes = Vec::new();
    for _ in 0..ROWS {
        bytes.extend((0..format.data_bytes(dim).unwrap()).map(|_| rng.next() as u8));
        if format == Format::Q8 {
            bytes.extend(rng.f32_value().to_le_bytes());
            bytes.extend(rng.f32_value().to_le_bytes());
        } else {
            bytes.extend(rng.f16_bits().to_le_bytes());
            bytes.extend(rng.f16_bits().to_le_bytes());
        }
    }
    bytes
}

/// An output buffer of one element type, pre-filled with a sentinel so that writes into
/// the gaps between rows show; f32 results are kept as bits so NaNs compare equal.
enum Buf {
    F32(Vec<u32>),
    F16(Vec<f16>),
    Bf16(Vec<bf16>),
}

impl Buf {
    fn new(kind: OutputType, len: usize) -> Buf {
        match kind {
            OutputType::F32 => Buf::F32(vec![0x7fc0_5a5a; len]),
            OutputType::F16 => Buf::F16(vec![f16::from_bits(0x7e5a); len]),
            OutputType::Bf16 => Buf::Bf16(vec![bf16::from_bits(0x7fda); len]),
        }
    }

    fn output(&mut self) -> Output<'_> {
        match self {
            Buf::F32(v) => {
                // SAFETY: u32 and f32 have the same size, alignment and valid bit patterns.
                let f = unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast(), v.len()) };
                Output::F32(f)
            }
            Buf::F16(v) => Output::F16(v),
            Buf::Bf16(v) => Output::Bf16(v),
        }
    }

    /// Bit patterns, every NaN folded to one pattern (a NaN's payload is not specified).
    fn bits(&self) -> Vec<u32> {
        match self {
            Buf::F32(v) => v
                .iter()
                .map(|&b| {
                    let nan = f32::from_bits(b).is_nan() && b != 0x7fc0_5a5a;
                    if nan { 0x7fc0_0000 } else { b }
                })
                .collect(),
            Buf::F16(v) => v
                .iter()
                .map(|x| {
                    let nan = x.is_nan() && x.to_bits() != 0x7e5a;
                    if nan { 0x7e00 } else { x.to_bits().into() }
                })
                .collect(),
            Buf::Bf16(v) => v
                .iter()
                .map(|x| {
                    let nan = x.is_nan() && x.to_bits() != 0x7fda;
                    if nan { 0x7fc0 } else { x.to_bits().into() }
                })
                .collect(),
        }
    }
}

const PREFETCHES: [Prefetch; 3] = [
    Prefetch::OFF,
    Prefetch {
        distance: 3,
        hint: PrefetchHint::L1,
    },
    Prefetch {
        distance: 1000,
        hint: PrefetchHint::L2,
    },
];

#[test]
fn quantized_bags_match_the_reference_bit_for_bit_on_every_level() {
    let mut rng = Lcg(11);
    let mut variant = 0usize;
    let n: usize = LENGTHS.iter().sum();
    let lengths: Vec<i64> = LENGTHS.iter().map(|&l| l as i64).collect();
    for format in FORMATS {
        for dim in DIMS {
            let table_data = GuardedVec::from_slice(&table_bytes(format, dim, &mut rng));
            let table = Table::new(format, ROWS, dim, &table_data).unwrap();
            // The last row is always used, so its scale and bias touch the guard page.
            let mut indices64: Vec<i64> = (0..n).map(|_| rng.below(ROWS) as i64).collect();
            indices64[n - 1] = ROWS as i64 - 1;
            let indices32: Vec<i32> = indices64.iter().map(|&i| i as i32).collect();
            let weights: Vec<f32> = (0..n).map(|_| rng.f32_value()).collect();
            for weights_kind in [
                WeightsKind::None,
                WeightsKind::PerIndex,
                WeightsKind::Positional,
            ] {
                for pooling in [Pooling::Sum, Pooling::Mean] {
                    for output in [OutputType::F32, OutputType::F16, OutputType::Bf16] {
                        variant += 1;
                        let index = [IndexType::I32, IndexType::I64][variant % 2];
                        let prefetch = PREFETCHES[variant % 3];
                        let stride = dim + variant % 3;
                        let indices = match index {
                            IndexType::I32 => IndexSlice::I32(&indices32),
                            IndexType::I64 => IndexSlice::I64(&indices64),
                        };
                        let bag_weights = match weights_kind {
                            WeightsKind::None => Weights::None,
                            WeightsKind::PerIndex => Weights::PerIndex(&weights),
                            WeightsKind::Positional => Weights::Positional(&weights[..40]),
                        };
                        let bags = Bags::from_lengths(indices, lengths.as_slice())
                            .and_then(|b| b.with_weights(bag_weights))
                            .unwrap();
                        let len = (LENGTHS.len() - 1) * stride + dim + 2;
                        let mut expected = Buf::new(output, len);
                        reference::embedding_bag(
                            &table,
                            &bags,
                            pooling,
                            &mut expected.output(),
                            stride,
                        )
                        .unwrap();
                        for &isa in Isa::available() {
                            let plan = EmbeddingBag::new(EmbeddingBagSpec {
                                index,
                                weights: weights_kind,
                                pooling,
                                output,
                                prefetch,
                                isa: Some(isa),
                                ..EmbeddingBagSpec::new(format, dim)
                            })
                            .unwrap();
                            if isa != Isa::Scalar {
                                assert_ne!(plan.isa(), Isa::Scalar, "{format} dim {dim} on {isa}");
                            }
                            let mut got = Buf::new(output, len);
                            plan.run(&table, &bags, got.output(), stride).unwrap();
                            assert!(
                                got.bits() == expected.bits(),
                                "{isa} {format} dim {dim} {weights_kind:?} {pooling:?} \
                                 {output:?} {index:?} {prefetch:?} stride {stride}:\n \
                                 got {:08x?}\nwant {:08x?}",
                                got.bits(),
                                expected.bits()
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The f32 results of one unweighted bag of `rows` on every level, checked equal to each
/// other and returned.
fn sum_on_every_level(format: Format, dim: usize, bytes: &[u8], rows: &[i64]) -> Vec<f32> {
    let table = Table::new(
        format,
        bytes.len() / format.row_bytes(dim).unwrap(),
        dim,
        bytes,
    )
    .unwrap();
    let offsets = [0i64, rows.len() as i64];
    let bags = Bags::from_offsets(rows, &offsets).unwrap();
    let mut results = Vec::new();
    for &isa in Isa::available() {
        let mut out = vec![f32::NAN; dim];
        lowp::embedding_bag(
            &table,
            &bags,
            Pooling::Sum,
            Output::F32(&mut out),
            dim,
            Some(isa),
        )
        .unwrap();
        results.push((isa, out));
    }
    for (isa, out) in &results {
        assert_eq!(out, &results[0].1, "{format} dim {dim} on {isa}");
    }
    results.swap_remove(0).1
}

#[test]
fn codes_unpack_in_fbgemm_order_at_both_ends() {
    // Q2, dim 37 (nine whole bytes and one code in a tenth): codes 0, 1, 2, 3 repeating,
    // then a last byte whose unused bits are all set; scale 1, bias 0.5.
    let mut q2 = vec![0b11_10_01_00u8; 9];
    q2.push(0b11_11_11_00);
    q2.extend(f16::ONE.to_le_bytes());
    q2.extend(f16::from_f32(0.5).to_le_bytes());
    let want: Vec<f32> = (0..37).map(|e| (e % 4) as f32 + 0.5).collect();
    assert_eq!(sum_on_every_level(Format::Q2, 37, &q2, &[0]), want);

    // Q4, dim 33: element e holds e mod 16 (low nibble first), the last byte's high
    // nibble set; scale 2, bias -1; the row twice: acc = 2q + ((2q − 1) − 1).
    let mut q4: Vec<u8> = (0..16)
        .map(|b| ((((2 * b + 1) % 16) << 4) | ((2 * b) % 16)) as u8)
        .collect();
    q4.push(0xf0);
    q4.extend(f16::from_f32(2.0).to_le_bytes());
    q4.extend(f16::from_f32(-1.0).to_le_bytes());
    let want: Vec<f32> = (0..33).map(|e| 4.0 * (e % 16) as f32 - 2.0).collect();
    assert_eq!(sum_on_every_level(Format::Q4, 33, &q4, &[0, 0]), want);

    // Q8, dim 19: codes 0 and 255 alternating; a zero scale leaves only the bias.
    let mut q8: Vec<u8> = (0..19).map(|e| if e % 2 == 0 { 0 } else { 255 }).collect();
    q8.extend(0.25f32.to_le_bytes());
    q8.extend(1.0f32.to_le_bytes());
    let zero_scale_row = [&q8[..19], &0f32.to_le_bytes(), &(-3f32).to_le_bytes()].concat();
    let bytes = [q8.clone(), zero_scale_row].concat();
    let want: Vec<f32> = (0..19)
        .map(|e| {
            if e % 2 == 0 {
                1.0 - 3.0
            } else {
                63.75 + 1.0 - 3.0
            }
        })
        .collect();
    assert_eq!(sum_on_every_level(Format::Q8, 19, &bytes, &[0, 1]), want);
}

/// A Q8 table of dimension 16 whose row 0 is the constant 1 and row 1 has codes 1, scale
/// `scale` and bias `bias`; the sum of rows 0 and 1 on every level.
fn one_plus_row(scale: f32, bias: f32) -> Vec<f32> {
    let mut rows = vec![0u8; 16];
    rows.extend(0f32.to_le_bytes());
    rows.extend(1f32.to_le_bytes());
    rows.extend([1u8; 16]);
    rows.extend(scale.to_le_bytes());
    rows.extend(bias.to_le_bytes());
    sum_on_every_level(Format::Q8, 16, &rows, &[0, 1])
}

#[test]
fn the_bias_is_added_before_the_fused_multiply_add() {
    // acc = fma(s, q, acc + b) from acc = 1, with ulp(1) = 2^-23.
    // s = b = 2^-24: 1 + b ties to 1 (even), then 1 + s rounds to 1 again; adding the
    // dequantized value s + b = 2^-23 instead would give 1 + 2^-23.
    assert_eq!(one_plus_row(2f32.powi(-24), 2f32.powi(-24)), vec![1.0; 16]);
    // s = 2^-24 + 2^-30, b = 2^-24: 1 + b ties to 1, then 1 + s rounds up to 1 + 2^-23;
    // the fused multiply-add first (1 + 2^-23) and then the bias would tie to 1 + 2^-22.
    let s = 2f32.powi(-24) + 2f32.powi(-30);
    assert_eq!(
        one_plus_row(s, 2f32.powi(-24)),
        vec![1.0 + 2f32.powi(-23); 16]
    );
}

#[test]
fn out_of_range_indices_are_reported_like_the_reference() {
    let mut rng = Lcg(5);
    for format in FORMATS {
        // Dimension 0 too: no columns to sum, but the indices are checked all the same.
        for dim in [0, 7, 64, 100, 128] {
            let bytes = GuardedVec::from_slice(&table_bytes(format, dim, &mut rng));
            let table = Table::new(format, ROWS, dim, &bytes).unwrap();
            for bad in [ROWS as i64, -1, i64::MAX] {
                let indices = [0i64, 3, 4, bad, 1];
                let bags = Bags::from_offsets(&indices, &[0i64, 2, 5]).unwrap();
                let want = Error::IndexOutOfRange {
                    bag: 1,
                    position: 1,
                    index: bad,
                    rows: ROWS,
                };
                for &isa in Isa::available() {
                    let mut out = vec![0f32; 2 * dim];
                    let got = lowp::embedding_bag(
                        &table,
                        &bags,
                        Pooling::Mean,
                        Output::F32(&mut out),
                        dim,
                        Some(isa),
                    );
                    assert_eq!(got, Err(want.clone()), "{format} dim {dim} on {isa}");
                }
            }
        }
    }
}

/// Tables past the kernels' prefetch threshold (1 MiB) take other loops than the small
/// tables above: one per prefetch hint, checking a bag's indices before summing it. The
/// same bits as the reference, unweighted (Q4 / Q2 lookups) and weighted; the same first
/// error, with the bags before the failing one holding the reference's results.
#[test]
fn prefetching_loops_match_the_reference_and_report_bad_indices() {
    let mut rng = Lcg(7);
    // Bit patterns, every NaN folded to one (a NaN's payload is not specified).
    let bits = |v: &[f32]| -> Vec<u32> {
        v.iter()
            .map(|x| if x.is_nan() { 0x7fc0_0000 } else { x.to_bits() })
            .collect()
    };
    let prefetches = [
        Prefetch::default(),
        Prefetch {
            distance: 2,
            hint: PrefetchHint::L1,
        },
        Prefetch {
            distance: 5,
            hint: PrefetchHint::L3,
        },
        Prefetch {
            distance: 1000,
            hint: PrefetchHint::NonTemporal,
        },
    ];
    for format in FORMATS {
        for dim in [7, 64, 128] {
            let rows_bytes = table_bytes(format, dim, &mut rng);
            let copies = (1 << 20) / rows_bytes.len() + 1;
            let bytes = rows_bytes.repeat(copies);
            let rows = ROWS * copies;
            let table = Table::new(format, rows, dim, &bytes).unwrap();
            let good: Vec<i64> = (0..23).map(|_| rng.below(rows) as i64).collect();
            let weights: Vec<f32> = (0..good.len()).map(|_| rng.f32_value()).collect();
            let offsets = [0i64, 9, 9, 23];
            for weighted in [false, true] {
                let mut bags = Bags::from_offsets(good.as_slice(), &offsets).unwrap();
                if weighted {
                    bags = bags.with_weights(Weights::PerIndex(&weights)).unwrap();
                }
                let mut want = vec![0f32; 3 * dim];
                reference::embedding_bag(
                    &table,
                    &bags,
                    Pooling::Sum,
                    &mut Output::F32(&mut want),
                    dim,
                )
                .unwrap();
                for &isa in Isa::available() {
                    for prefetch in prefetches {
                        let plan = EmbeddingBag::new(EmbeddingBagSpec {
                            index: IndexType::I64,
                            weights: if weighted {
                                WeightsKind::PerIndex
                            } else {
                                WeightsKind::None
                            },
                            prefetch,
                            isa: Some(isa),
                            ..EmbeddingBagSpec::new(format, dim)
                        })
                        .unwrap();
                        let mut got = vec![0f32; 3 * dim];
                        plan.run(&table, &bags, Output::F32(&mut got), dim).unwrap();
                        assert!(
                            bits(&got) == bits(&want),
                            "{isa} {format} dim {dim} weighted {weighted} {prefetch:?}"
                        );
                    }
                }
            }
            for bad in [rows as i64, -1] {
                let indices = [0i64, 3, (rows - 1) as i64, 4, bad, 1];
                let bags = Bags::from_offsets(&indices, &[0i64, 3, 6]).unwrap();
                let mut want_first = vec![0f32; dim];
                let first = Bags::from_offsets(&indices[..3], &[0i64, 3]).unwrap();
                reference::embedding_bag(
                    &table,
                    &first,
                    Pooling::Sum,
                    &mut Output::F32(&mut want_first),
                    dim,
                )
                .unwrap();
                let want = Error::IndexOutOfRange {
                    bag: 1,
                    position: 1,
                    index: bad,
                    rows,
                };
                for &isa in Isa::available() {
                    for prefetch in prefetches {
                        let plan = EmbeddingBag::new(EmbeddingBagSpec {
                            index: IndexType::I64,
                            prefetch,
                            isa: Some(isa),
                            ..EmbeddingBagSpec::new(format, dim)
                        })
                        .unwrap();
                        let mut out = vec![0f32; 2 * dim];
                        let got = plan.run(&table, &bags, Output::F32(&mut out), dim);
                        assert_eq!(
                            got,
                            Err(want.clone()),
                            "{isa} {format} dim {dim} {prefetch:?}"
                        );
                        assert!(
                            bits(&out[..dim]) == bits(&want_first),
                            "{isa} {format} dim {dim} {prefetch:?}: the bag before the error"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn every_simd_level_has_specialised_and_general_quantized_kernels() {
    for &isa in Isa::available().iter().filter(|&&l| l != Isa::Scalar) {
        for format in FORMATS {
            let op = Op::EmbeddingBag(format);
            let specs: Vec<Spec> = registry::runnable(op, isa)
                .filter(|e| e.isa != Isa::Scalar)
                .map(|e| e.spec)
                .collect();
            for spec in [16, 32, 64, 128, 256]
                .map(Spec::Dim)
                .into_iter()
                .chain([Spec::Any])
            {
                assert!(specs.contains(&spec), "{op} on {isa}: no {spec:?} kernel");
            }
        }
    }
}
