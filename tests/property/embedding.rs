//! Embedding bags: every format, index and offset width, bag description, weighting,
//! pooling and output type; out-of-range indices must give the same error everywhere.

use std::ops::Range;

use half::{bf16, f16};
use lowp::registry::Op;
use lowp::{Bags, Error, Format, IndexSlice, Pooling, Table, Weights, reference};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::TestCaseError;

use crate::common::guard::GuardedVec;
use crate::compare::{FloatOut, Path, agree, strided_len};
use crate::config;
use crate::strategies::{HOT_DIMS, OutType, dim, f32_value, guarded, out_type, pad, table};

/// Indices, offsets or lengths in their own guarded buffer, in either width.
#[derive(Clone, Debug)]
pub(crate) enum Ints {
    I32(GuardedVec<i32>),
    I64(GuardedVec<i64>),
}

impl Ints {
    /// `values` (which fit in i32 unless `wide`) as i64 or i32.
    pub(crate) fn new(values: &[i64], wide: bool) -> Ints {
        if wide {
            Ints::I64(GuardedVec::from_slice(values))
        } else {
            let narrow: Vec<i32> = values.iter().map(|&v| v.try_into().unwrap()).collect();
            Ints::I32(GuardedVec::from_slice(&narrow))
        }
    }

    pub(crate) fn slice(&self) -> IndexSlice<'_> {
        match self {
            Ints::I32(v) => IndexSlice::I32(v),
            Ints::I64(v) => IndexSlice::I64(v),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Bounds {
    Offsets,
    OffsetsWithoutLast,
    Lengths,
}

/// How a batch is cut into bags: `lens[b]` entries in bag `b`, the bags back to back
/// after `lead` indices that no bag covers and before `trail` more (offsets may describe a
/// window of a larger batch).
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub(crate) lens: Vec<usize>,
    pub(crate) bounds: Bounds,
    lead: usize,
    trail: usize,
}

impl Layout {
    pub(crate) fn window(&self) -> Range<usize> {
        self.lead..self.lead + self.lens.iter().sum::<usize>()
    }

    pub(crate) fn num_indices(&self) -> usize {
        self.window().end + self.trail
    }

    pub(crate) fn max_len(&self) -> usize {
        self.lens.iter().copied().max().unwrap_or(0)
    }

    /// The offsets or lengths describing the bags.
    pub(crate) fn bound_values(&self) -> Vec<i64> {
        let starts = self.lens.iter().scan(self.lead, |start, &len| {
            let this = *start;
            *start += len;
            Some(this as i64)
        });
        match self.bounds {
            Bounds::Offsets => starts.chain([self.window().end as i64]).collect(),
            Bounds::OffsetsWithoutLast => starts.collect(),
            Bounds::Lengths => self.lens.iter().map(|&l| l as i64).collect(),
        }
    }

    /// The error an operation must report for `indices` over a table of `rows`: the
    /// first out-of-range index, in bag order.
    pub(crate) fn first_bad_index(&self, indices: &[i64], rows: usize) -> Option<Error> {
        let mut start = self.lead;
        for (bag, &len) in self.lens.iter().enumerate() {
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
}

pub(crate) fn layout() -> impl Strategy<Value = Layout> {
    let lens = vec(prop_oneof![1 => Just(0usize), 3 => 1..=8usize], 0..=6);
    let bounds = select(vec![
        Bounds::Offsets,
        Bounds::OffsetsWithoutLast,
        Bounds::Lengths,
    ]);
    (lens, bounds, 0..=3usize, 0..=3usize).prop_map(|(lens, bounds, lead, trail)| {
        // Lengths always start at the first index and cover them all; offsets without a
        // last entry end at the last index.
        let (lead, trail) = match bounds {
            Bounds::Offsets => (lead, trail),
            Bounds::OffsetsWithoutLast => (lead, 0),
            Bounds::Lengths => (0, 0),
        };
        Layout {
            lens,
            bounds,
            lead,
            trail,
        }
    })
}

/// Indices for `layout` over `rows` rows: inside the bags valid rows, sometimes one
/// out-of-range value (negative, `rows`, or one that only looks valid when truncated to
/// 32 bits); outside the bags arbitrary values, which no kernel may look at.
pub(crate) fn indices(
    layout: &Layout,
    rows: usize,
    wide: bool,
) -> impl Strategy<Value = Vec<i64>> + use<> {
    let len = layout.num_indices();
    let window = layout.window();
    let (garbage, mut bad) = if wide {
        (any::<i64>().boxed(), vec![i64::MIN, i64::MAX, 1 << 32])
    } else {
        (any::<i32>().prop_map(i64::from).boxed(), vec![])
    };
    bad.extend([-1, rows as i64, i32::MIN.into(), i32::MAX.into()]);
    let one_bad = prop::option::weighted(0.15, (any::<Index>(), select(bad)));
    (vec(0..rows as i64, len), vec(garbage, len), one_bad).prop_map(
        move |(mut values, garbage, one_bad)| {
            for i in (0..window.start).chain(window.end..values.len()) {
                values[i] = garbage[i];
            }
            if let Some((at, bad)) = one_bad.filter(|_| !window.is_empty()) {
                values[window.start + at.index(window.len())] = bad;
            }
            values
        },
    )
}

#[derive(Clone, Debug)]
pub(crate) enum WeightsCase {
    None,
    PerIndex(GuardedVec<f32>),
    Positional(GuardedVec<f32>),
}

impl WeightsCase {
    pub(crate) fn view(&self) -> Weights<'_> {
        match self {
            WeightsCase::None => Weights::None,
            WeightsCase::PerIndex(w) => Weights::PerIndex(w),
            WeightsCase::Positional(w) => Weights::Positional(w),
        }
    }
}

pub(crate) fn weights(num_indices: usize, max_len: usize) -> impl Strategy<Value = WeightsCase> {
    prop_oneof![
        Just(WeightsCase::None),
        guarded(f32_value(), num_indices).prop_map(WeightsCase::PerIndex),
        (0..=2usize)
            .prop_flat_map(move |extra| guarded(f32_value(), max_len + extra))
            .prop_map(WeightsCase::Positional),
    ]
}

#[derive(Clone, Debug)]
struct EmbeddingCase {
    format: Format,
    rows: usize,
    dim: usize,
    table: GuardedVec<u8>,
    num_bags: usize,
    bounds: Bounds,
    bound_values: Ints,
    indices: Ints,
    weights: WeightsCase,
    pooling: Pooling,
    out: OutType,
    out_stride: usize,
    /// What every path must return.
    expected: lowp::Result<()>,
}

impl EmbeddingCase {
    fn bags(&self) -> Bags<'_> {
        let (indices, bounds) = (self.indices.slice(), self.bound_values.slice());
        match self.bounds {
            Bounds::Offsets => Bags::from_offsets(indices, bounds),
            Bounds::OffsetsWithoutLast => Bags::from_offsets_without_last(indices, bounds),
            Bounds::Lengths => Bags::from_lengths(indices, bounds),
        }
        .and_then(|bags| bags.with_weights(self.weights.view()))
        .expect("generated bags are valid")
    }
}

fn embedding_case() -> impl Strategy<Value = EmbeddingCase> {
    let dim = dim(1100, &HOT_DIMS, |op| matches!(op, Op::EmbeddingBag(_)));
    let shape = (
        select(Format::ALL.to_vec()),
        dim,
        1..=12usize,
        layout(),
        any::<bool>(),
        any::<bool>(),
    );
    shape.prop_flat_map(|(format, dim, rows, layout, wide_indices, wide_bounds)| {
        let values = (
            table(format, rows, dim),
            indices(&layout, rows, wide_indices),
            weights(layout.num_indices(), layout.max_len()),
            select(vec![Pooling::Sum, Pooling::Mean]),
            out_type(),
            pad(),
        );
        values.prop_map(
            move |(table, indices, weights, pooling, out, pad)| EmbeddingCase {
                format,
                rows,
                dim,
                table,
                num_bags: layout.lens.len(),
                bounds: layout.bounds,
                bound_values: Ints::new(&layout.bound_values(), wide_bounds),
                expected: layout.first_bad_index(&indices, rows).map_or(Ok(()), Err),
                indices: Ints::new(&indices, wide_indices),
                weights,
                pooling,
                out,
                out_stride: dim + pad,
            },
        )
    })
}

fn check_embedding<T: FloatOut>(case: &EmbeddingCase) -> Result<(), TestCaseError> {
    let table = Table::new(case.format, case.rows, case.dim, &case.table).unwrap();
    let bags = case.bags();
    let (dim, stride) = (case.dim, case.out_stride);
    let out = GuardedVec::filled(strided_len(case.num_bags, dim, stride), T::SENTINEL);
    let result = agree(
        &out,
        |i| i % stride < dim,
        |path, out| match path {
            Path::Reference => {
                reference::embedding_bag(&table, &bags, case.pooling, &mut T::output(out), stride)
            }
            Path::Level(isa) => lowp::embedding_bag(
                &table,
                &bags,
                case.pooling,
                T::output(out),
                stride,
                Some(isa),
            ),
        },
    )?;
    prop_assert_eq!(result, case.expected.clone());
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn embedding_bag_matches_reference(case in embedding_case()) {
        match case.out {
            OutType::F32 => check_embedding::<f32>(&case)?,
            OutType::F16 => check_embedding::<f16>(&case)?,
            OutType::Bf16 => check_embedding::<bf16>(&case)?,
        }
    }
}
