//! Compositional tables: the properties that make them worth having (a distinct vector per
//! category for complementary partitions, the hashing trick as a plain bag over `i mod m`),
//! prefetching of component rows, and exact errors.

#[path = "common/mod.rs"]
mod common;

use common::Lcg;
use lowp::embedding::plan::{Prefetch, PrefetchHint};
use lowp::{
    Bags, Combine, CompositionalBag, CompositionalTable, Error, Format, Isa, Output, Pooling,
    Scheme, Table, Weights, reference,
};

/// `rows × dim` f32 values in [1, 2) from `seed`: distinct rows, and products or sums of
/// them that collide only by an astronomically unlikely accident.
fn values(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = Lcg(seed);
    (0..rows * dim)
        .map(|_| 1.0 + rng.below(1 << 23) as f32 / (1 << 23) as f32)
        .collect()
}

/// Every virtual row of `table`, through bags of one index each, on `isa`.
fn all_rows(table: &CompositionalTable<'_>, isa: Isa) -> Vec<Vec<u32>> {
    let n = table.virtual_rows();
    let indices: Vec<i64> = (0..n as i64).collect();
    let offsets: Vec<i64> = (0..=n as i64).collect();
    let bags = Bags::from_offsets(&indices[..], &offsets[..]).unwrap();
    let dim = table.dim();
    let mut out = vec![0f32; n * dim];
    lowp::compositional_bag(
        table,
        &bags,
        Pooling::Sum,
        Output::F32(&mut out),
        dim,
        Some(isa),
    )
    .unwrap();
    out.chunks(dim.max(1))
        .map(|row| row.iter().map(|x| x.to_bits()).collect())
        .collect()
}

#[test]
fn complementary_partitions_give_every_category_its_own_vector() {
    let schemes = [
        (Scheme::QuotientRemainder { m: 7 }, 60usize),
        (Scheme::QuotientRemainder { m: 1 }, 9),
        (Scheme::MixedRadix(vec![3, 4, 5]), 60),
        (Scheme::MixedRadix(vec![2, 3, 2, 5]), 53),
        (Scheme::ChineseRemainder(vec![3, 4, 5]), 60),
        (Scheme::ChineseRemainder(vec![7, 9]), 63),
    ];
    for (scheme, n) in schemes {
        // Each component gets exactly the rows the scheme maps to, all distinct.
        let rows: Vec<usize> = match &scheme {
            &Scheme::QuotientRemainder { m } => vec![n.div_ceil(m), m],
            Scheme::MixedRadix(radices) => {
                let lower: usize = radices[1..].iter().product();
                [&[n.div_ceil(lower)], &radices[1..]].concat()
            }
            Scheme::ChineseRemainder(moduli) => moduli.clone(),
            Scheme::Hashing { .. } => unreachable!("hashing collides by design"),
        };
        let k = rows.len();
        for combine in Combine::ALL {
            let data: Vec<Vec<f32>> = (0..k).map(|c| values(rows[c], 8, 17 + c as u64)).collect();
            let tables: Vec<Table<'_>> = (0..k)
                .map(|c| Table::from_f32(rows[c], 8, &data[c]).unwrap())
                .collect();
            let table = CompositionalTable::new(&tables, scheme.clone(), combine, n).unwrap();
            for &isa in Isa::available() {
                let mut vectors = all_rows(&table, isa);
                assert_eq!(vectors.len(), n);
                vectors.sort();
                vectors.dedup();
                assert_eq!(
                    vectors.len(),
                    n,
                    "{scheme:?} {combine:?} on {isa}: a vector repeats"
                );
            }
        }
    }
}

#[test]
fn hashing_is_a_plain_bag_over_i_mod_m() {
    let (m, dim, n) = (37usize, 19usize, 1usize << 40);
    let mut rng = Lcg(5);
    let indices: Vec<i64> = (0..300)
        .map(|_| (rng.next() << 9 | rng.next()) as i64 % n as i64)
        .collect();
    let hashed: Vec<i64> = indices.iter().map(|&i| i % m as i64).collect();
    let offsets: Vec<i64> = (0..=30).map(|b| 10 * b).collect();
    let weights = values(300, 1, 3);
    for format in Format::ALL {
        let floats = values(m, dim, 9);
        let mut bytes = vec![0u8; format.table_bytes(m, dim).unwrap()];
        let plain = if format.is_quantized() {
            lowp::quantize(
                format,
                lowp::QuantInput::F32(&floats),
                m,
                dim,
                &mut bytes,
                None,
            )
            .unwrap();
            Table::new(format, m, dim, &bytes).unwrap()
        } else {
            Table::from_f32(m, dim, &floats).unwrap()
        };
        let half: Vec<half::f16> = floats.iter().map(|&x| half::f16::from_f32(x)).collect();
        let bf: Vec<half::bf16> = floats.iter().map(|&x| half::bf16::from_f32(x)).collect();
        let plain = match format {
            Format::F16 => Table::from_f16(m, dim, &half).unwrap(),
            Format::Bf16 => Table::from_bf16(m, dim, &bf).unwrap(),
            _ => plain,
        };
        // A quantized component is dequantized before pooling: compare with a plain bag
        // over the dequantized table.
        let mut dequantized = vec![0f32; m * dim];
        let plain_f32 = if format.is_quantized() {
            lowp::dequantize(&plain, Output::F32(&mut dequantized), None).unwrap();
            Table::from_f32(m, dim, &dequantized).unwrap()
        } else {
            plain
        };
        let table =
            CompositionalTable::new(&[plain], Scheme::Hashing { m }, Combine::Product, n).unwrap();
        for weighting in [Weights::None, Weights::PerIndex(&weights)] {
            for pooling in [Pooling::Sum, Pooling::Mean] {
                let bags = Bags::from_offsets(&indices[..], &offsets[..])
                    .unwrap()
                    .with_weights(weighting)
                    .unwrap();
                let plain_bags = Bags::from_offsets(&hashed[..], &offsets[..])
                    .unwrap()
                    .with_weights(weighting)
                    .unwrap();
                let mut expected = vec![0f32; 30 * dim];
                lowp::embedding_bag(
                    &plain_f32,
                    &plain_bags,
                    pooling,
                    Output::F32(&mut expected),
                    dim,
                    None,
                )
                .unwrap();
                for &isa in Isa::available() {
                    let mut got = vec![0f32; 30 * dim];
                    lowp::compositional_bag(
                        &table,
                        &bags,
                        pooling,
                        Output::F32(&mut got),
                        dim,
                        Some(isa),
                    )
                    .unwrap();
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got), bits(&expected), "{format} {pooling:?} on {isa}");
                }
            }
        }
    }
}

/// Components of 2 MiB and more are prefetched (smaller ones never are): every distance and
/// hint must leave the results exactly the reference's.
#[test]
fn prefetching_component_rows_keeps_the_bits() {
    let (dim, m) = (64usize, 9000usize);
    let n = m * m;
    let quotient = values(m, dim, 1);
    let mut q8 = vec![0u8; Format::Q8.table_bytes(m, dim).unwrap()];
    let remainder = values(m, dim, 2);
    lowp::quantize(
        Format::Q8,
        lowp::QuantInput::F32(&remainder),
        m,
        dim,
        &mut q8,
        None,
    )
    .unwrap();
    let components = [
        Table::from_f32(m, dim, &quotient).unwrap(),
        Table::new(Format::Q8, m, dim, &q8).unwrap(),
    ];
    let mut rng = Lcg(11);
    let mut indices: Vec<i64> = (0..2000)
        .map(|_| (rng.next() as usize % n) as i64)
        .collect();
    indices[1999] = n as i64 - 1;
    let offsets: Vec<i32> = (0..=20).map(|b| 100 * b).collect();
    let bags = Bags::from_offsets(&indices[..], &offsets[..]).unwrap();
    for combine in Combine::ALL {
        let scheme = Scheme::QuotientRemainder { m };
        let table = CompositionalTable::new(&components, scheme, combine, n).unwrap();
        let out_dim = table.dim();
        let mut expected = vec![0f32; 20 * out_dim];
        reference::compositional_bag(
            &table,
            &bags,
            Pooling::Mean,
            &mut Output::F32(&mut expected),
            out_dim,
        )
        .unwrap();
        for &isa in Isa::available() {
            for distance in [1, 7, 64, 5000] {
                for hint in [
                    PrefetchHint::L1,
                    PrefetchHint::L2,
                    PrefetchHint::L3,
                    PrefetchHint::NonTemporal,
                ] {
                    let plan = CompositionalBag::new(
                        &table,
                        Pooling::Mean,
                        Prefetch { distance, hint },
                        Some(isa),
                    )
                    .unwrap();
                    let mut got = vec![0f32; 20 * out_dim];
                    plan.run(&table, &bags, Output::F32(&mut got), out_dim)
                        .unwrap();
                    assert!(
                        got.iter()
                            .zip(&expected)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{combine:?} on {isa}, distance {distance}, {hint:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn bad_indices_and_mismatched_plans_are_refused_exactly() {
    let rows = vec![1.0f32; 10 * 4];
    let components = [
        Table::from_f32(10, 4, &rows).unwrap(),
        Table::from_f32(10, 4, &rows).unwrap(),
    ];
    let scheme = Scheme::QuotientRemainder { m: 10 };
    let table = CompositionalTable::new(&components, scheme.clone(), Combine::Product, 95).unwrap();
    for bad in [-1i64, 95, 100, i64::MAX, i64::MIN] {
        let indices = [0i64, 94, 3, bad, 5];
        let bags = Bags::from_offsets(&indices, &[0i32, 2, 5]).unwrap();
        for &isa in Isa::available() {
            let mut out = [0f32; 8];
            let err = lowp::compositional_bag(
                &table,
                &bags,
                Pooling::Sum,
                Output::F32(&mut out),
                4,
                Some(isa),
            )
            .unwrap_err();
            assert_eq!(
                err,
                Error::IndexOutOfRange {
                    bag: 1,
                    position: 1,
                    index: bad,
                    rows: 95
                },
                "{isa}"
            );
        }
    }
    let plan = CompositionalBag::new(&table, Pooling::Sum, Prefetch::OFF, None).unwrap();
    let concat = CompositionalTable::new(&components, scheme, Combine::Concat, 95).unwrap();
    let bags = Bags::from_offsets(&[1i64], &[0i32, 1]).unwrap();
    let mut out = [0f32; 8];
    assert_eq!(
        plan.run(&concat, &bags, Output::F32(&mut out), 8)
            .unwrap_err(),
        Error::BadParameter {
            name: "table",
            reason: "a concat table of dimension 8, but the plan is for product of dimension 4"
                .into()
        }
    );
    assert!(matches!(
        plan.run(&table, &bags, Output::F32(&mut out[..3]), 4),
        Err(Error::OutputTooSmall { .. })
    ));
}
