//! Compositional bags: every scheme and operation, each component in any format (mixed,
//! odd and concatenated dimensions), every index width, bag description, weighting,
//! pooling and output type, with edge indices (0, N − 1, the scheme's divisors and their
//! neighbours) and out-of-range ones; every level must return the reference's bits and
//! errors.

use half::{bf16, f16};
use lowp::registry::Op;
use lowp::{Bags, Combine, CompositionalTable, Format, Pooling, Scheme, Table, reference};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::TestCaseError;

use crate::common::guard::GuardedVec;
use crate::compare::{FloatOut, Path, agree, strided_len};
use crate::config;
use crate::embedding::{Bounds, Ints, WeightsCase, indices, layout, weights};
use crate::strategies::{HOT_DIMS, OutType, dim, out_type, pad, table};

/// Rows each component needs for `n` virtual rows, and the index values at the edges of
/// the scheme's digits (divisors, moduli, and their neighbours).
fn needs(scheme: &Scheme, n: usize) -> (Vec<usize>, Vec<usize>) {
    let (rows, divisors) = match scheme {
        &Scheme::QuotientRemainder { m } => (vec![n.div_ceil(m), m], vec![m]),
        &Scheme::Hashing { m } => (vec![m], vec![m]),
        Scheme::ChineseRemainder(moduli) => (moduli.clone(), moduli.clone()),
        Scheme::MixedRadix(radices) => {
            let lower: usize = radices[1..].iter().product();
            let mut rows = radices.clone();
            rows[0] = n.div_ceil(lower);
            let suffixes = (1..radices.len()).map(|j| radices[j..].iter().product());
            (rows, suffixes.collect())
        }
    };
    let mut edges = vec![0, n - 1, n / 2];
    for d in divisors {
        for k in [1, 2, 3] {
            edges.extend([(k * d).saturating_sub(1), k * d, k * d + 1]);
        }
    }
    edges.retain(|&e| e < n);
    (rows, edges)
}

/// A scheme and a number of virtual rows (at least 1) it can tell apart.
fn scheme() -> impl Strategy<Value = (Scheme, usize)> {
    let coprime = vec![
        vec![5],
        vec![2, 3],
        vec![4, 9],
        vec![3, 4, 5],
        vec![7, 2, 3],
        vec![2, 3, 5, 7],
        vec![1, 6],
    ];
    prop_oneof![
        (1..=6usize, 1..=40usize).prop_map(|(m, n)| (Scheme::QuotientRemainder { m }, n)),
        vec(1..=4usize, 1..=4)
            .prop_flat_map(|r| {
                let p: usize = r.iter().product();
                (Just(r), 1..=p)
            })
            .prop_map(|(r, n)| (Scheme::MixedRadix(r), n)),
        select(coprime)
            .prop_flat_map(|m| {
                let p: usize = m.iter().product();
                (Just(m), 1..=p)
            })
            .prop_map(|(m, n)| (Scheme::ChineseRemainder(m), n)),
        (1..=6usize, prop_oneof![1..=40usize, Just(1usize << 40)])
            .prop_map(|(m, n)| (Scheme::Hashing { m }, n)),
    ]
}

#[derive(Clone, Debug)]
struct CompositionalCase {
    scheme: Scheme,
    combine: Combine,
    virtual_rows: usize,
    /// Format, rows, dimension and bytes of each component.
    components: Vec<(Format, usize, usize, GuardedVec<u8>)>,
    num_bags: usize,
    bounds: Bounds,
    bound_values: Ints,
    indices: Ints,
    weights: WeightsCase,
    pooling: Pooling,
    out: OutType,
    out_dim: usize,
    out_stride: usize,
    expected: lowp::Result<()>,
}

/// One component: a format, its rows (the needed ones, sometimes a few more) and bytes.
fn component(
    rows: usize,
    dim: usize,
) -> impl Strategy<Value = (Format, usize, usize, GuardedVec<u8>)> {
    (select(Format::ALL.to_vec()), rows..=rows + 2).prop_flat_map(move |(format, rows)| {
        table(format, rows, dim).prop_map(move |bytes| (format, rows, dim, bytes))
    })
}

fn compositional_case() -> impl Strategy<Value = CompositionalCase> {
    let shared_dim = dim(300, &HOT_DIMS, |op| matches!(op, Op::CompositionalBag(_)));
    let own_dim = prop_oneof![3 => 0..=40usize, 1 => select(HOT_DIMS.to_vec())];
    let shape = (
        scheme(),
        select(Combine::ALL.to_vec()),
        shared_dim,
        vec(own_dim, 4),
        layout(),
        any::<bool>(),
        any::<bool>(),
    );
    shape.prop_flat_map(
        |((scheme, n), combine, shared_dim, own_dims, layout, wide, wide_bounds)| {
            // Indices of more than 31 bits only fit the wide type.
            let wide = wide || n > i32::MAX as usize;
            let (rows, edges) = needs(&scheme, n);
            let dims = match combine {
                Combine::Concat => own_dims[..rows.len()].to_vec(),
                _ => vec![shared_dim; rows.len()],
            };
            let out_dim = match combine {
                Combine::Concat => dims.iter().sum(),
                _ => shared_dim,
            };
            let components: Vec<_> = rows
                .iter()
                .zip(&dims)
                .map(|(&r, &d)| component(r, d))
                .collect();
            let values = (
                components,
                indices(&layout, n, wide),
                vec((any::<Index>(), any::<Index>()), 0..=3),
                weights(layout.num_indices(), layout.max_len()),
                select(vec![Pooling::Sum, Pooling::Mean]),
                out_type(),
                pad(),
            );
            values.prop_map(
                move |(components, mut idx, picks, weights, pooling, out, pad)| {
                    let window = layout.window();
                    if !window.is_empty() {
                        for (at, edge) in picks {
                            idx[window.start + at.index(window.len())] = *edge.get(&edges) as i64;
                        }
                    }
                    CompositionalCase {
                        scheme: scheme.clone(),
                        combine,
                        virtual_rows: n,
                        components,
                        num_bags: layout.lens.len(),
                        bounds: layout.bounds,
                        bound_values: Ints::new(&layout.bound_values(), wide_bounds),
                        expected: layout.first_bad_index(&idx, n).map_or(Ok(()), Err),
                        indices: Ints::new(&idx, wide),
                        weights,
                        pooling,
                        out,
                        out_dim,
                        out_stride: out_dim + pad,
                    }
                },
            )
        },
    )
}

impl CompositionalCase {
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

fn check<T: FloatOut>(case: &CompositionalCase) -> Result<(), TestCaseError> {
    let tables: Vec<Table<'_>> = case
        .components
        .iter()
        .map(|(format, rows, dim, bytes)| Table::new(*format, *rows, *dim, bytes).unwrap())
        .collect();
    let table = CompositionalTable::new(
        &tables,
        case.scheme.clone(),
        case.combine,
        case.virtual_rows,
    )
    .expect("generated components fit their scheme");
    prop_assert_eq!(table.dim(), case.out_dim);
    let bags = case.bags();
    let (dim, stride) = (case.out_dim, case.out_stride);
    let out = GuardedVec::filled(strided_len(case.num_bags, dim, stride), T::SENTINEL);
    let result = agree(
        &out,
        |i| i % stride < dim,
        |path, out| match path {
            Path::Reference => reference::compositional_bag(
                &table,
                &bags,
                case.pooling,
                &mut T::output(out),
                stride,
            ),
            Path::Level(isa) => lowp::compositional_bag(
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
    #![proptest_config(config(384))]

    #[test]
    fn compositional_bag_matches_reference(case in compositional_case()) {
        match case.out {
            OutType::F32 => check::<f32>(&case)?,
            OutType::F16 => check::<f16>(&case)?,
            OutType::Bf16 => check::<bf16>(&case)?,
        }
    }
}
