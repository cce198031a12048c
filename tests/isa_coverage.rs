//! Each available level really runs its own kernels: for every registry entry at a level
//! this CPU has, a call with that explicit level must report (through
//! `registry::last_run`) that exactly this entry ran. A dispatch that silently falls back
//! to a lower level, or to the general kernel where a specialized one exists, fails here.
//!
//! The entries come from the registry, so a kernel added there is covered here as is.

use lowp::registry::{self, Entry, Op, Spec};
use lowp::{
    Bags, Error, GemmOutput, Isa, MatMut, MatRef, Output, OutputStage, PerColumn, Pooling,
    QuantInput, Table, U8I8Problem,
};

/// Every level lowp defines, available here or not.
const EVERY_LEVEL: [Isa; 7] = [
    Isa::Scalar,
    Isa::Avx2,
    Isa::Avx512,
    Isa::Avx512Vnni,
    Isa::Amx,
    Isa::Neon,
    Isa::NeonDot,
];

/// Calls the dispatched `op` with the explicit `level` on a small valid problem whose
/// dimension (embedding dimension, or GEMM column count: what `Spec::Dim` refers to) is
/// `dim`.
fn run(op: Op, dim: usize, level: Isa) -> lowp::Result<()> {
    const ROWS: usize = 3;
    let level = Some(level);
    match op {
        Op::EmbeddingBag(format) => {
            let bytes = vec![0u8; format.table_bytes(ROWS, dim)?];
            let table = Table::new(format, ROWS, dim, &bytes)?;
            let bags = Bags::from_offsets(&[0i32, 2, 1, 2], &[0i32, 2, 2, 4])?;
            let mut out = vec![0f32; 3 * dim];
            lowp::embedding_bag(
                &table,
                &bags,
                Pooling::Sum,
                Output::F32(&mut out),
                dim,
                level,
            )
        }
        Op::Quantize(format) => {
            let input: Vec<f32> = (0..ROWS * dim).map(|i| i as f32 * 0.25 - 1.0).collect();
            let mut out = vec![0u8; format.table_bytes(ROWS, dim)?];
            lowp::quantize(format, QuantInput::F32(&input), ROWS, dim, &mut out, level)
        }
        Op::Dequantize(format) => {
            let bytes = vec![0u8; format.table_bytes(ROWS, dim)?];
            let table = Table::new(format, ROWS, dim, &bytes)?;
            let mut out = vec![0f32; ROWS * dim];
            lowp::dequantize(&table, Output::F32(&mut out), level)
        }
        Op::GemmU8I8 => {
            let (m, k) = (2, 5);
            let a: Vec<u8> = (0..m * k).map(|i| i as u8).collect();
            let b = vec![-3i8; k * dim];
            let problem = U8I8Problem {
                m,
                n: dim,
                k,
                a: &a,
                a_stride: k,
                a_zero_point: 1,
                b: &b,
                b_zero_point: PerColumn::Tensor(0),
            };
            let mut out = vec![0i32; m * dim];
            lowp::gemm_u8i8(
                &problem,
                &OutputStage::RawI32,
                GemmOutput::I32(&mut out),
                dim,
                level,
            )
        }
        Op::GemmI64 => {
            let (m, k) = (2, 5);
            let a: Vec<i64> = (0..m * k).map(|i| i as i64).collect();
            let b = vec![-3i64; k * dim];
            let mut c = vec![0i64; m * dim];
            let view = |data, row_stride| MatRef {
                data,
                row_stride,
                col_stride: 1,
            };
            let c = MatMut {
                data: &mut c,
                row_stride: dim,
                col_stride: 1,
            };
            lowp::gemm_i64(m, dim, k, view(&a, k), view(&b, dim), c, false, level)
        }
        Op::Interaction => {
            let (batch, features) = (2, 4);
            let dense: Vec<f32> = (0..batch * dim).map(|i| i as f32 * 0.5).collect();
            let emb = vec![-1.5f32; batch * (features - 1) * dim];
            let mut options = lowp::InteractionOptions::new(batch, features, dim);
            options.isa = level;
            let mut out = vec![0f32; batch * (dim + 6)];
            lowp::interaction(
                lowp::Vectors::F32(&dense),
                lowp::Embeddings::Block(lowp::Vectors::F32(&emb)),
                &options,
                Output::F32(&mut out),
            )
        }
        Op::OutlierEmbeddingBag(format) => {
            use lowp::embedding::plan::{EmbeddingBagSpec, IndexType};
            use lowp::outlier::{OutlierEmbeddingBag, OutlierTable, Residuals};
            let bytes = vec![0u8; format.table_bytes(ROWS, dim)?];
            let dense = Table::new(format, ROWS, dim, &bytes)?;
            let residuals = [half::f16::ONE; 2];
            let table = OutlierTable::from_parts(
                dense,
                &[0, 1, 1, 2],
                &[0, 0],
                Residuals::F16(&residuals),
            )?;
            let bags = Bags::from_offsets(&[0i32, 2, 1, 2], &[0i32, 2, 2, 4])?;
            let mut out = vec![0f32; 3 * dim];
            OutlierEmbeddingBag::new(EmbeddingBagSpec {
                index: IndexType::I32,
                isa: level,
                ..EmbeddingBagSpec::new(format, dim)
            })?
            .run(&table, &bags, Output::F32(&mut out), dim)
        }
        Op::CompositionalBag(combine) => {
            // Concatenation of dimensions dim − 1 and 1, so the virtual row has dim elements.
            let dims = match combine {
                lowp::Combine::Concat => [dim - 1, 1],
                _ => [dim, dim],
            };
            let (quotient, remainder) = (vec![0.5f32; 2 * dims[0]], vec![2.0f32; 3 * dims[1]]);
            let components = [
                Table::from_f32(2, dims[0], &quotient)?,
                Table::from_f32(3, dims[1], &remainder)?,
            ];
            let scheme = lowp::Scheme::QuotientRemainder { m: 3 };
            let table = lowp::CompositionalTable::new(&components, scheme, combine, 6)?;
            let bags = Bags::from_offsets(&[0i32, 5, 3, 4], &[0i32, 2, 2, 4])?;
            let mut out = vec![0f32; 3 * dim];
            lowp::compositional_bag(
                &table,
                &bags,
                Pooling::Sum,
                Output::F32(&mut out),
                dim,
                level,
            )
        }
        other => panic!("isa_coverage.rs does not know how to call {other}; add it to `run`"),
    }
}

/// A dimension `entry` handles and, when it is a general kernel, that no specialized
/// sibling at the same level takes (dispatch would rightly prefer the sibling).
fn dim_for(entry: &Entry, siblings: &[&Entry]) -> usize {
    match entry.spec {
        Spec::Dim(d) => d,
        Spec::Any => (5..)
            .find(|&d| !siblings.iter().any(|s| s.spec == Spec::Dim(d)))
            .expect("some dimension is not specialized"),
    }
}

#[test]
fn every_available_level_runs_its_own_kernels() {
    let mut checked = Vec::new();
    for &level in Isa::available() {
        for op in Op::all() {
            let at_level: Vec<&Entry> = registry::entries()
                .iter()
                .filter(|e| e.op == op && e.isa == level)
                .collect();
            for entry in &at_level {
                let dim = dim_for(entry, &at_level);
                if let Err(e) = run(op, dim, level) {
                    panic!("{op} at {level}, dim {dim}: {e}");
                }
                assert_eq!(
                    registry::last_run(),
                    Some((op, level, entry.spec)),
                    "{op} called with Some({level}) at dim {dim} did not run the {level} {:?} kernel",
                    entry.spec
                );
                checked.push(format!("{op}@{level}/{:?}", entry.spec));
            }
        }
    }
    // Scalar is always available and backs every operation, so at least those ran.
    assert!(checked.len() >= Op::all().len(), "only checked {checked:?}");
    println!(
        "{} kernels ran at their own level: {}",
        checked.len(),
        checked.join(" ")
    );
}

#[test]
fn unavailable_levels_are_refused_without_running_anything() {
    let missing: Vec<Isa> = EVERY_LEVEL
        .into_iter()
        .filter(|l| !l.is_available())
        .collect();
    // The other architecture's levels are never available.
    assert!(!missing.is_empty());
    for level in missing {
        for op in Op::all() {
            run(op, 8, Isa::Scalar).expect("the Scalar call succeeds");
            let before = registry::last_run();
            let result = run(op, 8, level);
            assert!(
                matches!(&result, Err(Error::UnsupportedIsa { isa, .. }) if *isa == level.name()),
                "{op} with Some({level}) returned {result:?}, not UnsupportedIsa"
            );
            assert_eq!(registry::last_run(), before, "{op} at {level} ran a kernel");
        }
    }
}
