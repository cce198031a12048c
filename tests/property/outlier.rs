//! Embedding bags over outlier tables: every dense format, residual type, index width,
//! weighting, pooling, output type and prefetch distance, on every level, against the
//! reference; and a table whose sparse part is empty gives the plain format's bits.

use half::{bf16, f16};
use lowp::embedding::plan::{
    EmbeddingBagSpec, IndexType, OutputType, Prefetch, PrefetchHint, WeightsKind,
};
use lowp::outlier::{OutlierEmbeddingBag, OutlierTable, Residuals};
use lowp::registry::Op;
use lowp::{Bags, Error, Format, IndexSlice, Pooling, Table, Weights, reference};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::TestCaseError;

use crate::common::guard::GuardedVec;
use crate::compare::{FloatOut, Path, agree, strided_len};
use crate::config;
use crate::strategies::{
    HOT_DIMS, OutType, dim, f32_value, float_bits, guarded, out_type, pad, quantized_format, table,
};

#[derive(Clone, Debug)]
enum ResidualCase {
    F16(GuardedVec<f16>),
    F32(GuardedVec<f32>),
}

#[derive(Clone, Debug)]
enum IndexCase {
    I32(GuardedVec<i32>),
    I64(GuardedVec<i64>),
}

#[derive(Clone, Debug)]
enum WeightsCase {
    None,
    PerIndex(GuardedVec<f32>),
    Positional(GuardedVec<f32>),
}

#[derive(Clone, Debug)]
struct OutlierCase {
    format: Format,
    rows: usize,
    dim: usize,
    dense: GuardedVec<u8>,
    offsets: GuardedVec<u32>,
    columns: GuardedVec<u16>,
    residuals: ResidualCase,
    /// `B + 1` offsets of the bags into `indices`, which may have entries before and
    /// after the bags (garbage no kernel may use but prefetch).
    bag_offsets: GuardedVec<i64>,
    indices: IndexCase,
    weights: WeightsCase,
    pooling: Pooling,
    out: OutType,
    out_stride: usize,
    prefetch: Prefetch,
    expected: lowp::Result<()>,
}

impl OutlierCase {
    fn table(&self) -> OutlierTable<'_> {
        let dense = Table::new(self.format, self.rows, self.dim, &self.dense).unwrap();
        let residuals = match &self.residuals {
            ResidualCase::F16(r) => Residuals::F16(r),
            ResidualCase::F32(r) => Residuals::F32(r),
        };
        OutlierTable::from_parts(dense, &self.offsets, &self.columns, residuals)
            .expect("generated sparse parts are valid")
    }

    fn bags(&self) -> Bags<'_> {
        let indices = match &self.indices {
            IndexCase::I32(v) => IndexSlice::I32(v),
            IndexCase::I64(v) => IndexSlice::I64(v),
        };
        let weights = match &self.weights {
            WeightsCase::None => Weights::None,
            WeightsCase::PerIndex(w) => Weights::PerIndex(w),
            WeightsCase::Positional(w) => Weights::Positional(w),
        };
        Bags::from_offsets(indices, &self.bag_offsets[..])
            .and_then(|b| b.with_weights(weights))
            .expect("generated bags are valid")
    }

    fn spec(&self) -> EmbeddingBagSpec {
        EmbeddingBagSpec {
            index: match self.indices {
                IndexCase::I32(_) => IndexType::I32,
                IndexCase::I64(_) => IndexType::I64,
            },
            weights: match self.weights {
                WeightsCase::None => WeightsKind::None,
                WeightsCase::PerIndex(_) => WeightsKind::PerIndex,
                WeightsCase::Positional(_) => WeightsKind::Positional,
            },
            pooling: self.pooling,
            output: match self.out {
                OutType::F32 => OutputType::F32,
                OutType::F16 => OutputType::F16,
                OutType::Bf16 => OutputType::Bf16,
            },
            prefetch: self.prefetch,
            ..EmbeddingBagSpec::new(self.format, self.dim)
        }
    }
}

/// Per row, up to 6 distinct columns in increasing order.
fn sparse_columns(rows: usize, dim: usize) -> impl Strategy<Value = Vec<Vec<u16>>> {
    let row = if dim == 0 {
        Just(Vec::new()).boxed()
    } else {
        vec(0..dim as u16, 0..=6)
            .prop_map(|mut c| {
                c.sort_unstable();
                c.dedup();
                c
            })
            .boxed()
    };
    vec(row, rows)
}

fn outlier_case() -> impl Strategy<Value = OutlierCase> {
    let dim = dim(600, &HOT_DIMS, |op| {
        matches!(op, Op::OutlierEmbeddingBag(_))
    });
    let lens = vec(prop_oneof![1 => Just(0usize), 3 => 1..=8usize], 0..=5);
    let shape = (
        quantized_format(),
        dim,
        1..=10usize,
        lens,
        0..=3usize,
        0..=3usize,
    );
    shape.prop_flat_map(|(format, dim, rows, lens, lead, trail)| {
        let total: usize = lens.iter().sum();
        let num_indices = lead + total + trail;
        let max_len = lens.iter().copied().max().unwrap_or(0);
        let bad = prop::option::weighted(
            0.15,
            (
                any::<Index>(),
                select(vec![-1i64, rows as i64, i32::MAX.into(), i32::MIN.into()]),
            ),
        );
        let weights = prop_oneof![
            Just(WeightsCase::None),
            guarded(f32_value(), num_indices).prop_map(WeightsCase::PerIndex),
            (0..=2usize)
                .prop_flat_map(move |extra| guarded(f32_value(), max_len + extra))
                .prop_map(WeightsCase::Positional),
        ];
        let prefetch = select(vec![0usize, 1, 2, 64]).prop_map(|distance| Prefetch {
            distance,
            hint: PrefetchHint::L2,
        });
        (
            (
                table(format, rows, dim),
                sparse_columns(rows, dim),
                any::<bool>(),
                vec(float_bits(8, 23), 6 * rows),
                vec(float_bits(5, 10), 6 * rows),
            ),
            (
                vec(0..rows as i64, num_indices),
                vec(any::<i32>(), num_indices),
                bad,
                any::<bool>(),
            ),
            (
                weights,
                select(vec![Pooling::Sum, Pooling::Mean]),
                out_type(),
                pad(),
                prefetch,
            ),
        )
            .prop_map(
                move |(
                    (dense, columns, f32_residuals, residual_bits, half_bits),
                    (mut indices, garbage, bad, wide),
                    (weights, pooling, out, pad, prefetch),
                )| {
                    let window = lead..lead + total;
                    for i in (0..lead).chain(window.end..num_indices) {
                        indices[i] = garbage[i].into();
                    }
                    if let Some((at, value)) = bad.filter(|_| !window.is_empty()) {
                        indices[window.start + at.index(window.len())] = value;
                    }
                    let expected = first_bad(&indices, lead, &lens, rows).map_or(Ok(()), Err);
                    let mut offsets = vec![0u32];
                    for c in &columns {
                        offsets.push(offsets.last().unwrap() + c.len() as u32);
                    }
                    let flat: Vec<u16> = columns.concat();
                    let residuals = if f32_residuals {
                        let r: Vec<f32> = residual_bits[..flat.len()]
                            .iter()
                            .map(|&b| f32::from_bits(b))
                            .collect();
                        ResidualCase::F32(GuardedVec::from_slice(&r))
                    } else {
                        let r: Vec<f16> = half_bits[..flat.len()]
                            .iter()
                            .map(|&b| f16::from_bits(b as u16))
                            .collect();
                        ResidualCase::F16(GuardedVec::from_slice(&r))
                    };
                    let bag_offsets: Vec<i64> = std::iter::once(lead)
                        .chain(lens.iter().scan(lead, |s, &l| {
                            *s += l;
                            Some(*s)
                        }))
                        .map(|o| o as i64)
                        .collect();
                    let indices = if wide {
                        IndexCase::I64(GuardedVec::from_slice(&indices))
                    } else {
                        let narrow: Vec<i32> = indices.iter().map(|&i| i as i32).collect();
                        IndexCase::I32(GuardedVec::from_slice(&narrow))
                    };
                    OutlierCase {
                        format,
                        rows,
                        dim,
                        dense,
                        offsets: GuardedVec::from_slice(&offsets),
                        columns: GuardedVec::from_slice(&flat),
                        residuals,
                        bag_offsets: GuardedVec::from_slice(&bag_offsets),
                        indices,
                        weights,
                        pooling,
                        out,
                        out_stride: dim + pad,
                        prefetch,
                        expected,
                    }
                },
            )
    })
}

/// The first out-of-range index of the bags, in bag order, as an error.
fn first_bad(indices: &[i64], lead: usize, lens: &[usize], rows: usize) -> Option<Error> {
    let mut start = lead;
    for (bag, &len) in lens.iter().enumerate() {
        let entries = &indices[start..start + len];
        if let Some(position) = entries.iter().position(|&i| !(0..rows as i64).contains(&i)) {
            return Some(Error::IndexOutOfRange {
                bag,
                position,
                index: entries[position],
                rows,
            });
        }
        start += len;
    }
    None
}

fn check_outlier<T: FloatOut>(case: &OutlierCase) -> Result<(), TestCaseError> {
    let table = case.table();
    let bags = case.bags();
    let (dim, stride) = (case.dim, case.out_stride);
    let out = GuardedVec::filled(strided_len(bags.len(), dim, stride), T::SENTINEL);
    let result = agree(
        &out,
        |i| i % stride < dim,
        |path, out| match path {
            Path::Reference => reference::embedding_bag_outlier(
                &table,
                &bags,
                case.pooling,
                &mut T::output(out),
                stride,
            ),
            Path::Level(isa) => OutlierEmbeddingBag::new(EmbeddingBagSpec {
                isa: Some(isa),
                ..case.spec()
            })?
            .run(&table, &bags, T::output(out), stride),
        },
    )?;
    prop_assert_eq!(result, case.expected.clone());

    // Without outliers, every level gives the plain bag of the dense part.
    let empty_offsets = GuardedVec::filled(case.rows + 1, 0u32);
    let no_outliers =
        OutlierTable::from_parts(table.dense(), &empty_offsets, &[], Residuals::F16(&[])).unwrap();
    let mut plain = out.clone();
    let plain_result = reference::embedding_bag(
        &table.dense(),
        &bags,
        case.pooling,
        &mut T::output(&mut plain),
        stride,
    );
    let no_outliers_result = agree(
        &out,
        |i| i % stride < dim,
        |path, got| {
            let result = match path {
                Path::Reference => reference::embedding_bag_outlier(
                    &no_outliers,
                    &bags,
                    case.pooling,
                    &mut T::output(got),
                    stride,
                ),
                Path::Level(isa) => OutlierEmbeddingBag::new(EmbeddingBagSpec {
                    isa: Some(isa),
                    ..case.spec()
                })?
                .run(&no_outliers, &bags, T::output(got), stride),
            };
            if result.is_ok() {
                let differs = (0..got.len()).find(|&i| got[i].bits() != plain[i].bits());
                assert!(
                    differs.is_none(),
                    "{path:?}: element {differs:?} differs from the plain {} bag",
                    case.format
                );
            }
            result
        },
    )?;
    prop_assert_eq!(no_outliers_result, case.expected.clone());
    prop_assert_eq!(plain_result, case.expected.clone());
    Ok(())
}

proptest! {
    #![proptest_config(config(384))]

    #[test]
    fn outlier_bag_matches_reference(case in outlier_case()) {
        match case.out {
            OutType::F32 => check_outlier::<f32>(&case)?,
            OutType::F16 => check_outlier::<f16>(&case)?,
            OutType::Bf16 => check_outlier::<bf16>(&case)?,
        }
    }
}
