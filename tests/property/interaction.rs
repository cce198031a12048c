//! DLRM feature interaction: f32 and bf16 inputs (mixed too), both embedding layouts,
//! diagonal on and off, padding, row gaps, every output type; F from 1 to 64, d from 0 to
//! 512 (odd ones and the DLRM sizes too); batches of 0 to 40 samples.

use half::{bf16, f16};
use lowp::{Embeddings, InteractionOptions, Vectors, reference};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;

use crate::common::guard::GuardedVec;
use crate::compare::{FloatOut, Path, agree, strided_len};
use crate::config;
use crate::strategies::{OutType, float_bits, out_type, pad, size};

/// One input buffer in its own guarded allocation.
#[derive(Clone, Debug)]
enum Vecs {
    F32(GuardedVec<f32>),
    Bf16(GuardedVec<bf16>),
}

impl Vecs {
    fn view(&self) -> Vectors<'_> {
        match self {
            Vecs::F32(v) => Vectors::F32(v),
            Vecs::Bf16(v) => Vectors::Bf16(v),
        }
    }
}

/// `len` extreme-biased values (±0, denormals, ±inf, NaN, huge and tiny), f32 or bf16.
fn vecs(len: usize, bf16_input: bool) -> BoxedStrategy<Vecs> {
    if bf16_input {
        vec(float_bits(8, 7), len)
            .prop_map(|b| {
                let v: Vec<bf16> = b.into_iter().map(|b| bf16::from_bits(b as u16)).collect();
                Vecs::Bf16(GuardedVec::from_slice(&v))
            })
            .boxed()
    } else {
        vec(float_bits(8, 23), len)
            .prop_map(|b| {
                let v: Vec<f32> = b.into_iter().map(f32::from_bits).collect();
                Vecs::F32(GuardedVec::from_slice(&v))
            })
            .boxed()
    }
}

#[derive(Clone, Debug)]
enum Emb {
    Block(Vecs),
    Separate(Vec<Vecs>),
}

#[derive(Clone, Debug)]
struct Case {
    batch: usize,
    features: usize,
    dim: usize,
    diagonal: bool,
    pad_to: usize,
    gap: usize,
    out: OutType,
    dense: Vecs,
    emb: Emb,
}

impl Case {
    /// Elements written per output row.
    fn row_len(&self) -> usize {
        let pairs = self.features * (self.features - 1 + 2 * usize::from(self.diagonal)) / 2;
        (self.dim + pairs).div_ceil(self.pad_to) * self.pad_to
    }
}

fn case() -> impl Strategy<Value = Case> {
    let features = prop_oneof![1 => Just(1usize), 1 => Just(27usize), 4 => 1..=64usize];
    let dim = prop_oneof![3 => size(512), 1 => select(vec![64usize, 128, 16, 8, 4])];
    let pad_to = prop_oneof![2 => Just(1usize), 1 => select(vec![8usize, 16]), 1 => 1..=17usize];
    // Kernels put up to 16 samples across a vector: small batches, and some that fill
    // whole vectors and leave a tail (with fewer elements, to keep cases quick).
    let batch = prop_oneof![3 => 0..=4usize, 1 => 5..=40usize];
    (
        batch,
        features,
        dim,
        any::<bool>(),
        pad_to,
        pad(),
        out_type(),
        any::<(bool, bool, bool)>(),
    )
        .prop_flat_map(
            |(batch, features, dim, diagonal, pad_to, gap, out, (bf_dense, bf_emb, separate))| {
                let (features, dim) = if batch > 4 {
                    (features.min(40), dim % 97)
                } else {
                    (features, dim)
                };
                let emb = if separate {
                    vec(vecs(batch * dim, bf_emb), features - 1)
                        .prop_map(Emb::Separate)
                        .boxed()
                } else {
                    vecs(batch * (features - 1) * dim, bf_emb)
                        .prop_map(Emb::Block)
                        .boxed()
                };
                (vecs(batch * dim, bf_dense), emb).prop_map(move |(dense, emb)| Case {
                    batch,
                    features,
                    dim,
                    diagonal,
                    pad_to,
                    gap,
                    out,
                    dense,
                    emb,
                })
            },
        )
}

fn check<T: FloatOut>(case: &Case) -> Result<(), TestCaseError> {
    let row_len = case.row_len();
    let stride = row_len + case.gap;
    let options = InteractionOptions {
        diagonal: case.diagonal,
        pad_to: case.pad_to,
        out_stride: Some(stride),
        ..InteractionOptions::new(case.batch, case.features, case.dim)
    };
    let separate: Vec<Vectors<'_>>;
    let emb = match &case.emb {
        Emb::Block(v) => Embeddings::Block(v.view()),
        Emb::Separate(blocks) => {
            separate = blocks.iter().map(Vecs::view).collect();
            Embeddings::Separate(&separate)
        }
    };
    let dense = case.dense.view();
    let out = GuardedVec::filled(strided_len(case.batch, row_len, stride), T::SENTINEL);
    let result = agree(
        &out,
        |i| i % stride < row_len,
        |path, out| match path {
            Path::Reference => reference::interaction(dense, emb, &options, &mut T::output(out)),
            Path::Level(isa) => lowp::interaction(
                dense,
                emb,
                &InteractionOptions {
                    isa: Some(isa),
                    ..options
                },
                T::output(out),
            ),
        },
    )?;
    prop_assert_eq!(result, Ok(()));
    Ok(())
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn interaction_matches_reference(case in case()) {
        match case.out {
            OutType::F32 => check::<f32>(&case)?,
            OutType::F16 => check::<f16>(&case)?,
            OutType::Bf16 => check::<bf16>(&case)?,
        }
    }
}
