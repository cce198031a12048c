//! Embedding-bag plans: bit equality with the reference on every available level over the
//! kernels' whole configuration space (formats × specialised and odd dimensions × index
//! types × weights × pooling × outputs × prefetch options), and one test per error a plan
//! reports.

mod common;

use common::Lcg;
use half::{bf16, f16};
use lowp::embedding::plan::{
    EmbeddingBag, EmbeddingBagSpec, IndexType, OutputType, Prefetch, PrefetchHint, WeightsKind,
};
use lowp::{Bags, Error, Format, IndexSlice, Isa, Output, Pooling, Table, Weights, reference};

/// Dimensions: every specialised one, its neighbours (general path, partial vectors), and
/// a few that need several column blocks.
const DIMS: [usize; 16] = [
    1, 3, 8, 15, 16, 17, 32, 36, 64, 100, 128, 200, 256, 300, 512, 1027,
];
const ROWS: usize = 23;
/// Bag lengths: empty, one, short, long, empty again.
const LENGTHS: [usize; 6] = [0, 1, 5, 2, 40, 0];

/// This file's value distributions over the shared generator.
trait FloatValues {
    fn value(&mut self) -> f32;
}

impl FloatValues for Lcg {
    /// Mostly ordinary values, sometimes ±0, denormals, huge values (sums overflow to
    /// ±inf) and infinities.
    fn value(&mut self) -> f32 {
        match self.below(40) {
            0 => 0.0,
            1 => -0.0,
            2 => f32::from_bits(1 + self.below(1 << 20) as u32),
            3 => -3.0e38,
            4 => f32::INFINITY,
            5 => 6.0e4,
            6 => 1.0e-7,
            _ => (self.below(2001) as f32 - 1000.0) / 37.0,
        }
    }
}

/// A table of `ROWS` rows of `dim` in `format`, as bytes.
fn table_bytes(format: Format, dim: usize, rng: &mut Lcg) -> Vec<u8> {
    let values: Vec<f32> = (0..ROWS * dim).map(|_| rng.value()).collect();
    match format {
        Format::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Format::F16 => values
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect(),
        Format::Bf16 => values
            .iter()
            .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
            .collect(),
        _ => unreachable!("float formats only"),
    }
}

/// An output buffer of one element type, pre-filled with a sentinel so that writes into
/// the gaps between rows show.
#[derive(Clone, Debug)]
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

    /// The buffer as an `Output`; f32 results are kept as bits so NaNs compare equal.
    fn output(&mut self) -> Output<'_> {
        let len = self.len();
        self.output_to(len)
    }

    /// Its first `len` elements as an `Output`.
    fn output_to(&mut self, len: usize) -> Output<'_> {
        match self {
            Buf::F32(v) => {
                let v = &mut v[..len];
                // SAFETY: u32 and f32 have the same size, alignment and valid bit patterns.
                let f = unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast(), len) };
                Output::F32(f)
            }
            Buf::F16(v) => Output::F16(&mut v[..len]),
            Buf::Bf16(v) => Output::Bf16(&mut v[..len]),
        }
    }

    fn len(&self) -> usize {
        match self {
            Buf::F32(v) => v.len(),
            Buf::F16(v) => v.len(),
            Buf::Bf16(v) => v.len(),
        }
    }

    /// Bit patterns of elements `range`.
    fn bits(&self, range: std::ops::Range<usize>) -> Vec<u32> {
        match self {
            Buf::F32(v) => v[range].to_vec(),
            Buf::F16(v) => v[range].iter().map(|x| x.to_bits().into()).collect(),
            Buf::Bf16(v) => v[range].iter().map(|x| x.to_bits().into()).collect(),
        }
    }
}

struct Case {
    indices32: Vec<i32>,
    indices64: Vec<i64>,
    lengths: Vec<i64>,
    weights: Vec<f32>,
}

impl Case {
    fn new(rng: &mut Lcg) -> Case {
        let n: usize = LENGTHS.iter().sum();
        let indices64: Vec<i64> = (0..n).map(|_| rng.below(ROWS) as i64).collect();
        Case {
            indices32: indices64.iter().map(|&i| i as i32).collect(),
            indices64,
            lengths: LENGTHS.iter().map(|&l| l as i64).collect(),
            weights: (0..n).map(|_| rng.value()).collect(),
        }
    }

    fn bags(&self, index: IndexType, weights: WeightsKind) -> Bags<'_> {
        let indices = match index {
            IndexType::I32 => IndexSlice::I32(&self.indices32),
            IndexType::I64 => IndexSlice::I64(&self.indices64),
        };
        let weights = match weights {
            WeightsKind::None => Weights::None,
            WeightsKind::PerIndex => Weights::PerIndex(&self.weights),
            WeightsKind::Positional => Weights::Positional(&self.weights[..40]),
        };
        Bags::from_lengths(indices, self.lengths.as_slice())
            .and_then(|b| b.with_weights(weights))
            .unwrap()
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
        hint: PrefetchHint::NonTemporal,
    },
];

#[test]
fn plans_match_the_reference_bit_for_bit_on_every_level() {
    let mut rng = Lcg(7);
    let mut variant = 0usize;
    for format in [Format::F32, Format::F16, Format::Bf16] {
        for dim in DIMS {
            let bytes = table_bytes(format, dim, &mut rng);
            let table = Table::new(format, ROWS, dim, &bytes).unwrap();
            let case = Case::new(&mut rng);
            for weights in [
                WeightsKind::None,
                WeightsKind::PerIndex,
                WeightsKind::Positional,
            ] {
                for pooling in [Pooling::Sum, Pooling::Mean] {
                    for output in [OutputType::F32, OutputType::F16, OutputType::Bf16] {
                        // Index type, prefetch and stride rotate rather than multiply out.
                        variant += 1;
                        let index = [IndexType::I32, IndexType::I64][variant % 2];
                        let prefetch = PREFETCHES[variant % 3];
                        let stride = dim + variant % 4;
                        let bags = case.bags(index, weights);
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
                            let spec = EmbeddingBagSpec {
                                index,
                                weights,
                                pooling,
                                output,
                                prefetch,
                                isa: Some(isa),
                                ..EmbeddingBagSpec::new(format, dim)
                            };
                            let plan = EmbeddingBag::new(spec).unwrap();
                            if isa != Isa::Scalar {
                                assert_ne!(plan.isa(), Isa::Scalar, "{format} dim {dim} on {isa}");
                            }
                            let mut got = Buf::new(output, len);
                            plan.run(&table, &bags, got.output(), stride).unwrap();
                            assert!(
                                got.bits(0..len) == expected.bits(0..len),
                                "{isa} {format} dim {dim} {weights:?} {pooling:?} {output:?} \
                                 {index:?} {prefetch:?} stride {stride}:\n got {:08x?}\nwant {:08x?}",
                                got.bits(0..len),
                                expected.bits(0..len)
                            );
                            // The one-shot call dispatches to the same kernels.
                            let mut one_shot = Buf::new(output, len);
                            lowp::embedding_bag(
                                &table,
                                &bags,
                                pooling,
                                one_shot.output(),
                                stride,
                                Some(isa),
                            )
                            .unwrap();
                            assert!(
                                one_shot.bits(0..len) == expected.bits(0..len),
                                "one-shot {isa} {format} dim {dim}"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// Over a table above the 1 MiB under which kernels skip prefetching, every prefetch option
/// (near, far past the end of the batch, each hint) on every level leaves the results the
/// reference's, in the specialised and general paths and every row format.
#[test]
fn prefetching_over_a_large_table_keeps_results_exact() {
    let mut rng = Lcg(5);
    let rows = 9000;
    for format in [Format::F32, Format::F16, Format::Bf16] {
        for dim in [64, 130] {
            let values: Vec<f32> = (0..rows * dim).map(|_| rng.value()).collect();
            let bytes: Vec<u8> = match format {
                Format::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                Format::F16 => values
                    .iter()
                    .flat_map(|&v| f16::from_f32(v).to_le_bytes())
                    .collect(),
                _ => values
                    .iter()
                    .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
                    .collect(),
            };
            assert!(bytes.len() > 1 << 20);
            let table = Table::new(format, rows, dim, &bytes).unwrap();
            let indices: Vec<i64> = (0..300).map(|_| rng.below(rows) as i64).collect();
            let lengths = [0i64, 1, 99, 150, 50];
            let bags = Bags::from_lengths(indices.as_slice(), lengths.as_slice()).unwrap();
            let mut expected = vec![0f32; 5 * dim];
            reference::embedding_bag(
                &table,
                &bags,
                Pooling::Sum,
                &mut Output::F32(&mut expected),
                dim,
            )
            .unwrap();
            let hints = [
                PrefetchHint::L1,
                PrefetchHint::L2,
                PrefetchHint::L3,
                PrefetchHint::NonTemporal,
            ];
            for &isa in Isa::available() {
                for (distance, hint) in [1, 64, 299, 1000].into_iter().zip(hints) {
                    let plan = EmbeddingBag::new(EmbeddingBagSpec {
                        prefetch: Prefetch { distance, hint },
                        isa: Some(isa),
                        ..EmbeddingBagSpec::new(format, dim)
                    })
                    .unwrap();
                    let mut out = vec![0f32; 5 * dim];
                    plan.run(&table, &bags, Output::F32(&mut out), dim).unwrap();
                    assert!(
                        out.iter()
                            .map(|x| x.to_bits())
                            .eq(expected.iter().map(|x| x.to_bits())),
                        "{isa} {format} dim {dim} prefetch {distance} {hint:?}"
                    );
                }
            }
        }
    }
}

/// Rounding corner cases of the f16 and bf16 outputs, row by row through dimension 16:
/// ties, values just above ties, overflow to infinity, denormal results, NaN.
#[test]
fn narrow_outputs_round_like_the_reference() {
    let specials: Vec<f32> = [
        0x3f80_8000u32, // bf16 tie, even below
        0x3f81_8000,    // bf16 tie, odd below
        0x3f80_8001,
        0x7f7f_ffff, // rounds to bf16 infinity
        0x7f7f_7fff,
        0x7fc0_0001, // NaN with a payload only in the low bits
        0xff80_0001, // signalling NaN
        0x0000_8000, // f32 denormal, bf16 tie
        0x3380_0000, // 2^-24: smallest f16 denormal
        0x3300_0000, // 2^-25: f16 tie to zero
        0x3300_0001,
        0x477f_f000, // 65520: f16 tie to infinity
        0x477f_efff,
        0x3f80_1000, // f16 tie
        0x8000_0000,
        0x3f80_3000,
    ]
    .map(f32::from_bits)
    .to_vec();
    let table = Table::from_f32(1, 16, &specials).unwrap();
    let bags = Bags::from_offsets(&[0i32], &[0i32, 1]).unwrap();
    for output in [OutputType::F16, OutputType::Bf16] {
        let mut expected = Buf::new(output, 16);
        reference::embedding_bag(&table, &bags, Pooling::Sum, &mut expected.output(), 16).unwrap();
        for &isa in Isa::available() {
            let spec = EmbeddingBagSpec {
                index: IndexType::I32,
                output,
                isa: Some(isa),
                ..EmbeddingBagSpec::new(Format::F32, 16)
            };
            let mut got = Buf::new(output, 16);
            EmbeddingBag::new(spec)
                .unwrap()
                .run(&table, &bags, got.output(), 16)
                .unwrap();
            assert_eq!(got.bits(0..16), expected.bits(0..16), "{isa} {output:?}");
        }
    }
}

#[test]
fn plans_are_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<EmbeddingBag>();
}

/// A plan over a 4 × 8 f32 table for `i64` indices, unweighted sums, f32 results.
fn small_plan(isa: Option<Isa>) -> EmbeddingBag {
    EmbeddingBag::new(EmbeddingBagSpec {
        isa,
        ..EmbeddingBagSpec::new(Format::F32, 8)
    })
    .unwrap()
}

fn bad_parameter(result: lowp::Result<()>) -> &'static str {
    match result {
        Err(Error::BadParameter { name, .. }) => name,
        other => panic!("expected BadParameter, got {other:?}"),
    }
}

#[test]
fn a_table_of_another_format_or_dimension_is_rejected() {
    let plan = small_plan(None);
    let f16_rows = vec![f16::ZERO; 32];
    let f16_table = Table::from_f16(4, 8, &f16_rows).unwrap();
    let f32_rows = vec![0f32; 36];
    let wide_table = Table::from_f32(4, 9, &f32_rows).unwrap();
    let bags = Bags::from_offsets(&[0i64], &[0i64, 1]).unwrap();
    let mut out = [7f32; 9];
    assert_eq!(
        bad_parameter(plan.run(&f16_table, &bags, Output::F32(&mut out), 8)),
        "table"
    );
    assert_eq!(
        bad_parameter(plan.run(&wide_table, &bags, Output::F32(&mut out), 9)),
        "table"
    );
    assert_eq!(out, [7.0; 9], "nothing is written on a rejected call");
}

#[test]
fn indices_of_another_type_are_rejected() {
    let rows = vec![0f32; 32];
    let table = Table::from_f32(4, 8, &rows).unwrap();
    let bags = Bags::from_offsets(&[0i32], &[0i64, 1]).unwrap();
    let mut out = [0f32; 8];
    assert_eq!(
        bad_parameter(small_plan(None).run(&table, &bags, Output::F32(&mut out), 8)),
        "indices"
    );
}

#[test]
fn weights_of_another_kind_are_rejected() {
    let rows = vec![0f32; 32];
    let table = Table::from_f32(4, 8, &rows).unwrap();
    let bags = Bags::from_offsets(&[0i64], &[0i64, 1]).unwrap();
    let weighted = bags.with_weights(Weights::PerIndex(&[2.0])).unwrap();
    let positional = bags.with_weights(Weights::Positional(&[2.0])).unwrap();
    let mut out = [0f32; 8];
    let plan = small_plan(None);
    assert_eq!(
        bad_parameter(plan.run(&table, &weighted, Output::F32(&mut out), 8)),
        "weights"
    );
    let per_index_plan = EmbeddingBag::new(EmbeddingBagSpec {
        weights: WeightsKind::PerIndex,
        ..EmbeddingBagSpec::new(Format::F32, 8)
    })
    .unwrap();
    assert_eq!(
        bad_parameter(per_index_plan.run(&table, &positional, Output::F32(&mut out), 8)),
        "weights"
    );
    assert_eq!(
        bad_parameter(per_index_plan.run(&table, &bags, Output::F32(&mut out), 8)),
        "weights"
    );
    per_index_plan
        .run(&table, &weighted, Output::F32(&mut out), 8)
        .unwrap();
}

#[test]
fn an_output_of_another_type_is_rejected() {
    let rows = vec![0f32; 32];
    let table = Table::from_f32(4, 8, &rows).unwrap();
    let bags = Bags::from_offsets(&[0i64], &[0i64, 1]).unwrap();
    let mut out = [f16::ZERO; 8];
    assert_eq!(
        bad_parameter(small_plan(None).run(&table, &bags, Output::F16(&mut out), 8)),
        "out"
    );
}

#[test]
fn a_short_output_or_stride_is_rejected() {
    let rows = vec![1f32; 32];
    let table = Table::from_f32(4, 8, &rows).unwrap();
    let bags = Bags::from_offsets(&[0i64, 1], &[0i64, 1, 2]).unwrap();
    let plan = small_plan(None);
    let mut out = [0f32; 20];
    assert_eq!(
        bad_parameter(plan.run(&table, &bags, Output::F32(&mut out), 7)),
        "out_stride"
    );
    // Two rows of 8, 9 apart: 17 elements.
    assert_eq!(
        plan.run(&table, &bags, Output::F32(&mut out[..16]), 9),
        Err(Error::OutputTooSmall {
            what: "embedding bags",
            needed: 17,
            got: 16,
        })
    );
    assert_eq!(out, [0.0; 20]);
    plan.run(&table, &bags, Output::F32(&mut out[..17]), 9)
        .unwrap();
    assert_eq!(out[..8], [1.0; 8]);
    assert_eq!(out[8], 0.0, "the gap between rows is not written");
}

#[test]
fn an_unavailable_level_is_rejected_at_plan_construction() {
    let foreign = if cfg!(target_arch = "aarch64") {
        Isa::Avx2
    } else {
        Isa::Neon
    };
    let err = EmbeddingBag::new(EmbeddingBagSpec {
        isa: Some(foreign),
        ..EmbeddingBagSpec::new(Format::F32, 64)
    })
    .unwrap_err();
    assert!(matches!(err, Error::UnsupportedIsa { isa, .. } if isa == foreign.name()));
}

/// An index out of range names its bag, position and value on every level; the bags before
/// it are complete and nothing past `out` is touched.
#[test]
fn an_index_out_of_range_names_bag_position_and_index() {
    for dim in [8, 16, 21, 64] {
        let rows: Vec<f32> = (0..4 * dim).map(|i| i as f32).collect();
        let table = Table::from_f32(4, dim, &rows).unwrap();
        for (bad, index) in [
            (4i64, 4i64),
            (-1, -1),
            (i64::MAX, i64::MAX),
            (i64::MIN, i64::MIN),
        ] {
            let indices = [1i64, 2, 3, 0, 1, bad, 2];
            let bags = Bags::from_offsets(&indices, &[0i64, 2, 3, 7]).unwrap();
            for &isa in Isa::available() {
                let plan = EmbeddingBag::new(EmbeddingBagSpec {
                    isa: Some(isa),
                    ..EmbeddingBagSpec::new(Format::F32, dim)
                })
                .unwrap();
                let mut out = vec![-5f32; 4 * dim];
                let (rows_out, after) = out.split_at_mut(3 * dim);
                assert_eq!(
                    plan.run(&table, &bags, Output::F32(rows_out), dim),
                    Err(Error::IndexOutOfRange {
                        bag: 2,
                        position: 2,
                        index,
                        rows: 4
                    }),
                    "{isa} dim {dim}"
                );
                assert!(after.iter().all(|&v| v == -5.0));
                let row = |r: usize| &rows[r * dim..(r + 1) * dim];
                let sum01: Vec<f32> = row(1).iter().zip(row(2)).map(|(a, b)| a + b).collect();
                assert_eq!(&out[..dim], sum01.as_slice(), "{isa} bag 0");
                assert_eq!(&out[dim..2 * dim], row(3), "{isa} bag 1");
            }
        }
        // i32 indices: a negative one.
        let bags = Bags::from_lengths(&[3i32, -7], &[1i32, 1]).unwrap();
        let plan = EmbeddingBag::new(EmbeddingBagSpec {
            index: IndexType::I32,
            ..EmbeddingBagSpec::new(Format::F32, dim)
        })
        .unwrap();
        let mut out = vec![0f32; 2 * dim];
        assert_eq!(
            plan.run(&table, &bags, Output::F32(&mut out), dim),
            Err(Error::IndexOutOfRange {
                bag: 1,
                position: 0,
                index: -7,
                rows: 4
            })
        );
    }
}

/// In every row format, output type, weighting and pooling, on every level and in the
/// specialised and general paths: a bad index in bag 3 names bag, position and index; bags
/// 0 to 2 hold exactly the reference's results for those bags alone; and nothing is
/// written in the gaps between rows nor past `out` (sentinels around and after it).
#[test]
fn a_failing_bag_leaves_earlier_bags_complete_and_nothing_outside_out() {
    let mut rng = Lcg(31);
    let lengths = [3i64, 0, 2, 4, 1];
    let mut variant = 0usize;
    for format in [Format::F32, Format::F16, Format::Bf16] {
        for dim in DIMS {
            let bytes = table_bytes(format, dim, &mut rng);
            let table = Table::new(format, ROWS, dim, &bytes).unwrap();
            let mut indices: Vec<i64> = (0..10).map(|_| rng.below(ROWS) as i64).collect();
            let bad = [ROWS as i64, -1, i64::MIN][variant % 3];
            // Bag 3 covers indices 5..9; its third entry is bad.
            indices[7] = bad;
            let weights: Vec<f32> = (0..10).map(|_| rng.value()).collect();
            for (kind, output) in [
                (WeightsKind::None, OutputType::F32),
                (WeightsKind::PerIndex, OutputType::F16),
                (WeightsKind::Positional, OutputType::Bf16),
            ] {
                variant += 1;
                let pooling = [Pooling::Sum, Pooling::Mean][variant % 2];
                let with = |n_bags: usize, n_indices: usize| {
                    let w = match kind {
                        WeightsKind::None => Weights::None,
                        WeightsKind::PerIndex => Weights::PerIndex(&weights[..n_indices]),
                        WeightsKind::Positional => Weights::Positional(&weights[..4]),
                    };
                    Bags::from_lengths(&indices[..n_indices], &lengths[..n_bags])
                        .and_then(|b| b.with_weights(w))
                        .unwrap()
                };
                let stride = dim + 1 + variant % 3;
                let len = 4 * stride + dim;
                // The reference over bags 0..3 alone (5 indices).
                let mut expected = Buf::new(output, len + 8);
                reference::embedding_bag(
                    &table,
                    &with(3, 5),
                    pooling,
                    &mut expected.output(),
                    stride,
                )
                .unwrap();
                for &isa in Isa::available() {
                    let plan = EmbeddingBag::new(EmbeddingBagSpec {
                        weights: kind,
                        pooling,
                        output,
                        isa: Some(isa),
                        ..EmbeddingBagSpec::new(format, dim)
                    })
                    .unwrap();
                    let mut got = Buf::new(output, len + 8);
                    let what = format!("{isa} {format} dim {dim} {kind:?} {pooling:?} {output:?}");
                    assert_eq!(
                        plan.run(&table, &with(5, 10), got.output_to(len), stride),
                        Err(Error::IndexOutOfRange {
                            bag: 3,
                            position: 2,
                            index: bad,
                            rows: ROWS
                        }),
                        "{what}"
                    );
                    assert!(
                        got.bits(0..3 * stride) == expected.bits(0..3 * stride),
                        "{what}: bags before the failing one"
                    );
                    let untouched = Buf::new(output, 1).bits(0..1)[0];
                    for (at, bits) in got.bits(0..len + 8).into_iter().enumerate() {
                        let in_a_row = at % stride < dim && at < len;
                        if !in_a_row {
                            assert_eq!(bits, untouched, "{what}: element {at} written");
                        }
                    }
                }
            }
        }
    }
}

/// A batch split over threads by windows of its offsets gives the whole batch's results.
#[test]
fn windows_of_offsets_split_a_batch() {
    let dim = 32;
    let mut rng = Lcg(99);
    let rows: Vec<f32> = (0..1000 * dim).map(|_| rng.value()).collect();
    let table = Table::from_f32(1000, dim, &rows).unwrap();
    let lengths: Vec<usize> = (0..64).map(|_| rng.below(30)).collect();
    let mut offsets = vec![0i64];
    for l in &lengths {
        offsets.push(offsets.last().unwrap() + *l as i64);
    }
    let indices: Vec<i64> = (0..*offsets.last().unwrap())
        .map(|_| rng.below(1000) as i64)
        .collect();
    let plan = EmbeddingBag::new(EmbeddingBagSpec::new(Format::F32, dim)).unwrap();
    let whole = Bags::from_offsets(&*indices, &*offsets).unwrap();
    let mut expected = vec![0f32; 64 * dim];
    plan.run(&table, &whole, Output::F32(&mut expected), dim)
        .unwrap();
    let mut out = vec![0f32; 64 * dim];
    std::thread::scope(|s| {
        for (t, chunk) in out.chunks_mut(16 * dim).enumerate() {
            let window = &offsets[16 * t..=16 * (t + 1)];
            let (plan, table, indices) = (&plan, &table, &indices);
            s.spawn(move || {
                let bags = Bags::from_offsets(indices.as_slice(), window).unwrap();
                plan.run(table, &bags, Output::F32(chunk), dim).unwrap();
            });
        }
    });
    assert_eq!(
        out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        expected.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
}
