//! Feature-interaction benchmark inputs, shared by `benches/interaction.rs` and the
//! report: DLRM's shapes (F = 27 vectors per sample: the dense vector and 26 pooled
//! embeddings, as in the Criteo model), f32 or bf16 inputs in one block or in F − 1
//! separate buffers, f32 output. Each
//! case holds the reference model's result for its own inputs, and can run the unfused
//! way (the full F × F product per sample, then gather and concatenate) for comparison.

#![allow(dead_code)] // the bench and the report each use their own subset

use half::bf16;
use lowp::interaction::InteractionProblem;
use lowp::registry::{Entry, Kernel};
use lowp::{Embeddings, InteractionOptions, Output, Vectors, reference};
use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};

/// Vectors per sample.
pub const FEATURES: usize = 27;
/// Batch sizes.
pub const BATCHES: [usize; 4] = [1, 64, 512, 2048];
/// Vector dimensions.
pub const DIMS: [usize; 2] = [64, 128];

/// How the embeddings reach the kernel.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Layout {
    /// One `B × (F − 1) × d` block.
    Block,
    /// `F − 1` buffers of `B × d`, as `F − 1` embedding-bag calls leave them.
    Separate,
}

impl Layout {
    /// `block` or `separate`.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Block => "block",
            Layout::Separate => "separate",
        }
    }
}

/// The inputs, in one of the two input types: the embeddings as one block, and split
/// into one buffer per embedding for [`Layout::Separate`] (empty otherwise).
enum Inputs {
    F32 {
        dense: Vec<f32>,
        emb: Vec<f32>,
        tables: Vec<Vec<f32>>,
    },
    Bf16 {
        dense: Vec<bf16>,
        emb: Vec<bf16>,
        tables: Vec<Vec<bf16>>,
    },
}

/// Embedding `e` of every sample of the block `emb`, for each `e`.
fn split<T: Copy>(emb: &[T], dim: usize) -> Vec<Vec<T>> {
    let samples: Vec<&[T]> = emb.chunks_exact((FEATURES - 1) * dim).collect();
    (0..FEATURES - 1)
        .map(|e| {
            samples
                .iter()
                .flat_map(|s| &s[e * dim..(e + 1) * dim])
                .copied()
                .collect()
        })
        .collect()
}

/// One batch of `batch` samples of [`FEATURES`] vectors of `dim` elements.
pub struct InteractionCase {
    /// Samples.
    pub batch: usize,
    /// Elements per vector.
    pub dim: usize,
    /// How the embeddings are passed.
    pub layout: Layout,
    inputs: Inputs,
    options: InteractionOptions,
    expected: Vec<f32>,
}

impl InteractionCase {
    /// Random values in [−1, 1) (as bf16 when `bf16_input`) in one block, and the
    /// reference's result.
    pub fn new(batch: usize, dim: usize, bf16_input: bool) -> Self {
        Self::with_layout(batch, dim, bf16_input, Layout::Block)
    }

    /// As [`InteractionCase::new`], the embeddings passed as `layout` says.
    pub fn with_layout(batch: usize, dim: usize, bf16_input: bool, layout: Layout) -> Self {
        let mut rng = TestRng::from_seed(RngAlgorithm::XorShift, &[11; 16]);
        let mut values =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect() };
        let (dense, emb) = (values(batch * dim), values(batch * (FEATURES - 1) * dim));
        let separate = layout == Layout::Separate;
        let inputs = if bf16_input {
            let to = |v: Vec<f32>| v.into_iter().map(bf16::from_f32).collect::<Vec<_>>();
            let emb = to(emb);
            Inputs::Bf16 {
                dense: to(dense),
                tables: if separate { split(&emb, dim) } else { vec![] },
                emb,
            }
        } else {
            Inputs::F32 {
                dense,
                tables: if separate { split(&emb, dim) } else { vec![] },
                emb,
            }
        };
        let mut case = InteractionCase {
            batch,
            dim,
            layout,
            inputs,
            options: InteractionOptions::new(batch, FEATURES, dim),
            expected: Vec::new(),
        };
        let mut out = vec![0f32; case.out_len()];
        case.with_embeddings(|embeddings| {
            reference::interaction(
                case.dense(),
                embeddings,
                &case.options,
                &mut Output::F32(&mut out),
            )
        })
        .expect("valid benchmark inputs");
        case.expected = out;
        case
    }

    /// `f32` or `bf16`.
    pub fn format(&self) -> &'static str {
        match self.inputs {
            Inputs::F32 { .. } => "f32",
            Inputs::Bf16 { .. } => "bf16",
        }
    }

    fn dense(&self) -> Vectors<'_> {
        match &self.inputs {
            Inputs::F32 { dense, .. } => Vectors::F32(dense),
            Inputs::Bf16 { dense, .. } => Vectors::Bf16(dense),
        }
    }

    /// Calls `f` with the embeddings as the case's layout passes them. (A closure: the
    /// separate layout's `F − 1` views are built per call, in an array on the stack, so
    /// the timed calls allocate nothing.)
    fn with_embeddings<R>(&self, f: impl FnOnce(Embeddings<'_>) -> R) -> R {
        match (&self.inputs, self.layout) {
            (Inputs::F32 { emb, .. }, Layout::Block) => f(Embeddings::Block(Vectors::F32(emb))),
            (Inputs::Bf16 { emb, .. }, Layout::Block) => f(Embeddings::Block(Vectors::Bf16(emb))),
            (Inputs::F32 { tables, .. }, Layout::Separate) => {
                let views: [Vectors<'_>; FEATURES - 1] =
                    std::array::from_fn(|e| Vectors::F32(&tables[e]));
                f(Embeddings::Separate(&views))
            }
            (Inputs::Bf16 { tables, .. }, Layout::Separate) => {
                let views: [Vectors<'_>; FEATURES - 1] =
                    std::array::from_fn(|e| Vectors::Bf16(&tables[e]));
                f(Embeddings::Separate(&views))
            }
        }
    }

    /// Dot products per sample: the triangle without the diagonal.
    pub fn pairs(&self) -> usize {
        FEATURES * (FEATURES - 1) / 2
    }

    /// Output elements: `batch` rows of `dim + pairs`.
    pub fn out_len(&self) -> usize {
        self.batch * (self.dim + self.pairs())
    }

    /// Flops of the triangle's work: `2 · d` per dot product.
    pub fn flops(&self) -> usize {
        self.batch * self.pairs() * 2 * self.dim
    }

    /// Runs `entry`'s kernel on the batch.
    pub fn run(&self, entry: &Entry, out: &mut [f32]) {
        let Kernel::Interaction(kernel) = entry.kernel else {
            panic!("{} is not an interaction kernel", entry.op);
        };
        let len = out.len();
        self.with_embeddings(|embeddings| {
            let problem = InteractionProblem::new(self.dense(), embeddings, &self.options, len)
                .expect("valid benchmark inputs");
            // SAFETY: `problem` comes from `InteractionProblem::new` with `out`'s length, as
            // `InteractionFn` requires, and the caller only passes entries of available
            // levels.
            unsafe { kernel(&problem, &mut Output::F32(out)) }
        })
        .expect("valid benchmark inputs");
    }

    /// Whether `out` holds exactly the reference's bits.
    pub fn is_exact(&self, out: &[f32]) -> bool {
        out.iter()
            .zip(&self.expected)
            .all(|(a, b)| a.to_bits() == b.to_bits())
    }

    /// The unfused way, f32 inputs only: per sample, concatenate the vectors, compute the
    /// whole F × F Gram matrix with a plain loop nest (the inner loop over `j` runs across
    /// a transposed copy, so the compiler vectorizes it), then gather the triangle after
    /// `x`. Not bit-identical to the reference (separate multiply and add).
    pub fn unfused(&self, scratch: &mut Unfused, out: &mut [f32]) {
        let Inputs::F32 { dense, emb, .. } = &self.inputs else {
            panic!("the unfused way takes f32 inputs");
        };
        let (f, d) = (FEATURES, self.dim);
        let Unfused {
            concat,
            transposed,
            gram,
        } = scratch;
        concat.resize(f * d, 0.0);
        transposed.resize(d * f, 0.0);
        gram.resize(f * f, 0.0);
        let row_len = d + self.pairs();
        for (b, row) in out.chunks_exact_mut(row_len).enumerate() {
            concat[..d].copy_from_slice(&dense[b * d..(b + 1) * d]);
            concat[d..].copy_from_slice(&emb[b * (f - 1) * d..(b + 1) * (f - 1) * d]);
            for (i, v) in concat.chunks_exact(d).enumerate() {
                for (k, &x) in v.iter().enumerate() {
                    transposed[k * f + i] = x;
                }
            }
            gram.fill(0.0);
            for (i, zi) in gram.chunks_exact_mut(f).enumerate() {
                for (k, tk) in transposed.chunks_exact(f).enumerate() {
                    let x = concat[i * d + k];
                    for (z, &t) in zi.iter_mut().zip(tk) {
                        *z += x * t;
                    }
                }
            }
            row[..d].copy_from_slice(&concat[..d]);
            let mut at = d;
            for i in 1..f {
                row[at..at + i].copy_from_slice(&gram[i * f..i * f + i]);
                at += i;
            }
        }
    }
}

/// Scratch buffers of [`InteractionCase::unfused`].
#[derive(Default)]
pub struct Unfused {
    concat: Vec<f32>,
    transposed: Vec<f32>,
    gram: Vec<f32>,
}
