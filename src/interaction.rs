//! DLRM feature interaction: for every sample, the pairwise dot products of the dense vector
//! and the pooled embeddings, written straight into the top MLP's input row.
//!
//! For sample `b` the `F` vectors are `v[0] = dense[b]` and `v[f] = embedding f − 1 of b`
//! (`1 ≤ f < F`), each of `d` elements. Its output row is `[v[0] (d values), the triangle,
//! zeros up to a multiple of `pad_to`]`, where the triangle lists `Z[i][j] = v[i] · v[j]`
//! in the order of DLRM's reference code: rows `i` from 0 to `F − 1`, and within row `i`
//! the columns `j` from 0 to `i − 1` (to `i` with the diagonal). Only the triangle is
//! computed, in one pass, with no `F × F` product and no gather.
//!
//! ```
//! use lowp::{Embeddings, InteractionOptions, Output, Vectors};
//!
//! // One sample, d = 2, F = 3: x = (1, 2), embeddings (3, 4) and (5, 6).
//! let dense = [1.0f32, 2.0];
//! let emb = [3.0f32, 4.0, 5.0, 6.0];
//! let options = InteractionOptions::new(1, 3, 2);
//! let mut out = [0f32; 5];
//! lowp::interaction(
//!     Vectors::F32(&dense),
//!     Embeddings::Block(Vectors::F32(&emb)),
//!     &options,
//!     Output::F32(&mut out),
//! )?;
//! // [x, Z10, Z20, Z21]
//! assert_eq!(out, [1.0, 2.0, 11.0, 17.0, 39.0]);
//! # Ok::<(), lowp::Error>(())
//! ```

use crate::embedding::Output;
use crate::error::{Error, Result, checked_add, checked_mul, strided_len};
use crate::isa::Isa;
use crate::registry::{self, Op};

/// A batch of vectors, row after row, in f32 or bf16 (widened exactly to f32).
#[derive(Clone, Copy, Debug)]
pub enum Vectors<'a> {
    /// f32 elements.
    F32(&'a [f32]),
    /// bf16 elements.
    Bf16(&'a [half::bf16]),
}

impl Vectors<'_> {
    /// Elements in the buffer.
    pub fn len(&self) -> usize {
        match self {
            Vectors::F32(s) => s.len(),
            Vectors::Bf16(s) => s.len(),
        }
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where the buffer starts, and the bytes of one element.
    #[inline]
    pub(crate) fn bytes(&self) -> (*const u8, usize) {
        match self {
            Vectors::F32(s) => (s.as_ptr().cast(), 4),
            Vectors::Bf16(s) => (s.as_ptr().cast(), 2),
        }
    }

    /// Writes `dst.len()` elements starting at element `start`, widened exactly to f32,
    /// into `dst`. Panics if they are out of range (callers have validated them).
    #[inline]
    pub(crate) fn widen_into(&self, start: usize, dst: &mut [f32]) {
        match self {
            Vectors::F32(s) => dst.copy_from_slice(&s[start..start + dst.len()]),
            Vectors::Bf16(s) => {
                let src = &s[start..start + dst.len()];
                for (o, &v) in dst.iter_mut().zip(src) {
                    *o = v.to_f32();
                }
            }
        }
    }
}

/// The `F − 1` pooled embeddings of a batch.
#[derive(Clone, Copy, Debug)]
pub enum Embeddings<'a> {
    /// One `B × (F − 1) × d` block: sample `b`'s embedding `e` starts at element
    /// `(b · (F − 1) + e) · d`.
    Block(Vectors<'a>),
    /// `F − 1` separate `B × d` blocks (for example the outputs of `F − 1` embedding-bag
    /// calls), read in place: embedding `e` of sample `b` starts at element `b · d` of
    /// block `e`.
    Separate(&'a [Vectors<'a>]),
}

/// Shape and layout of one interaction call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InteractionOptions {
    /// Samples in the batch (B).
    pub batch: usize,
    /// Vectors per sample (F): the dense vector and the `F − 1` embeddings; at least 1.
    pub features: usize,
    /// Elements per vector (d).
    pub dim: usize,
    /// Include the self-interactions `Z[i][i]`.
    pub diagonal: bool,
    /// Each output row is padded with zeros to a multiple of this many elements (1: no
    /// padding); at least 1.
    pub pad_to: usize,
    /// Elements from one output row to the next; `None`: the padded row width.
    pub out_stride: Option<usize>,
    /// Instruction-set level to run (an error if this CPU lacks it); `None`: [`Isa::best`].
    pub isa: Option<Isa>,
}

impl InteractionOptions {
    /// `batch` samples of `features` vectors of `dim` elements: no diagonal, no padding,
    /// rows packed, automatic level.
    pub fn new(batch: usize, features: usize, dim: usize) -> InteractionOptions {
        InteractionOptions {
            batch,
            features,
            dim,
            diagonal: false,
            pad_to: 1,
            out_stride: None,
            isa: None,
        }
    }
}

/// Dot products per sample: `F (F − 1) / 2`, or `F (F + 1) / 2` with the diagonal.
pub fn pair_count(features: usize, diagonal: bool) -> Result<usize> {
    let other = if diagonal {
        checked_add(features, 1, "interaction pairs")?
    } else {
        features.saturating_sub(1)
    };
    // One of the two factors is even, so halve that one first: no intermediate overflow.
    if features.is_multiple_of(2) {
        checked_mul(features / 2, other, "interaction pairs")
    } else {
        checked_mul(features, other / 2, "interaction pairs")
    }
}

/// A validated interaction call: what the reference and every kernel receive. Only
/// [`InteractionProblem::new`] makes one, so holding one proves the checks passed.
#[derive(Clone, Copy, Debug)]
pub struct InteractionProblem<'a> {
    /// The dense vectors, `B × d`.
    pub(crate) dense: Vectors<'a>,
    /// The embeddings.
    pub(crate) embeddings: Embeddings<'a>,
    /// Samples (B).
    pub(crate) batch: usize,
    /// Vectors per sample (F ≥ 1).
    pub(crate) features: usize,
    /// Elements per vector (d).
    pub(crate) dim: usize,
    /// Whether the triangle includes the diagonal.
    pub(crate) diagonal: bool,
    /// Dot products per sample.
    pub(crate) pairs: usize,
    /// `d + pairs` rounded up to a multiple of `pad_to`: the elements written per row.
    pub(crate) row_len: usize,
    /// Elements from one output row to the next (≥ `row_len` when `batch > 1`).
    pub(crate) out_stride: usize,
}

impl<'a> InteractionProblem<'a> {
    /// Checks every size of the call against `options` and the output's length.
    ///
    /// # Errors
    ///
    /// [`Error::BadParameter`] for `features == 0` (`"features"`), `pad_to == 0`
    /// (`"pad_to"`), an output stride below the row width with more than one sample
    /// (`"out_stride"`), or a number of separate embedding blocks other than `F − 1`
    /// (`"embeddings"`); [`Error::InputTooSmall`] for a dense buffer (`"dense"`), the
    /// embedding block (`"embeddings"`) or a separate embedding block (`"embedding block"`)
    /// shorter than its shape needs; [`Error::OutputTooSmall`] (`"interaction"`);
    /// [`Error::SizeOverflow`] when a size does not fit in `usize` (among them the
    /// kernels' scratch: two panels of 16 samples' vectors and 16 lanes of every pair).
    pub fn new(
        dense: Vectors<'a>,
        embeddings: Embeddings<'a>,
        options: &InteractionOptions,
        out_len: usize,
    ) -> Result<InteractionProblem<'a>> {
        let &InteractionOptions {
            batch,
            features,
            dim,
            diagonal,
            pad_to,
            out_stride,
            isa: _,
        } = options;
        if features == 0 {
            return Err(Error::bad_parameter(
                "features",
                "a sample has at least the dense vector (F ≥ 1)",
            ));
        }
        if pad_to == 0 {
            return Err(Error::bad_parameter(
                "pad_to",
                "rows are padded to a multiple of at least 1",
            ));
        }
        let pairs = pair_count(features, diagonal)?;
        let width = checked_add(dim, pairs, "interaction row width")?;
        let row_len = checked_mul(width.div_ceil(pad_to), pad_to, "interaction row width")?;
        // The kernels' scratch (vectors and pairs per lane); with an empty batch
        // nothing else bounds it.
        crate::arch::interaction::scratch_len(features, dim, pairs).ok_or(Error::SizeOverflow {
            what: "interaction scratch size",
        })?;
        let out_stride = out_stride.unwrap_or(row_len);
        if batch > 1 && out_stride < row_len {
            return Err(Error::bad_parameter(
                "out_stride",
                format!("{out_stride} is less than the padded row width {row_len}"),
            ));
        }
        let per_block = checked_mul(batch, dim, "dense size (batch × dim)")?;
        if dense.len() < per_block {
            return Err(Error::InputTooSmall {
                what: "dense",
                needed: per_block,
                got: dense.len(),
            });
        }
        match embeddings {
            Embeddings::Block(block) => {
                let needed = checked_mul(
                    per_block,
                    features - 1,
                    "embedding block size (batch × (F − 1) × dim)",
                )?;
                if block.len() < needed {
                    return Err(Error::InputTooSmall {
                        what: "embeddings",
                        needed,
                        got: block.len(),
                    });
                }
            }
            Embeddings::Separate(blocks) => {
                if blocks.len() != features - 1 {
                    return Err(Error::bad_parameter(
                        "embeddings",
                        format!(
                            "{} separate blocks given, F − 1 = {} needed",
                            blocks.len(),
                            features - 1
                        ),
                    ));
                }
                if let Some(short) = blocks.iter().find(|b| b.len() < per_block) {
                    return Err(Error::InputTooSmall {
                        what: "embedding block",
                        needed: per_block,
                        got: short.len(),
                    });
                }
            }
        }
        let needed = strided_len(batch, row_len, out_stride, "interaction output size")?;
        if out_len < needed {
            return Err(Error::OutputTooSmall {
                what: "interaction",
                needed,
                got: out_len,
            });
        }
        Ok(InteractionProblem {
            dense,
            embeddings,
            batch,
            features,
            dim,
            diagonal,
            pairs,
            row_len,
            out_stride,
        })
    }

    /// The element where vector `f` of sample `b` starts, and the buffer holding it.
    #[inline]
    pub(crate) fn vector(&self, b: usize, f: usize) -> (Vectors<'a>, usize) {
        let d = self.dim;
        match (f, self.embeddings) {
            (0, _) => (self.dense, b * d),
            (f, Embeddings::Block(block)) => (block, (b * (self.features - 1) + f - 1) * d),
            (f, Embeddings::Separate(blocks)) => (blocks[f - 1], b * d),
        }
    }

    /// Elements from vector `f` of one sample to vector `f` of the next, in its buffer.
    #[inline]
    pub(crate) fn sample_stride(&self, f: usize) -> usize {
        match (f, self.embeddings) {
            (f, Embeddings::Block(_)) if f > 0 => (self.features - 1) * self.dim,
            _ => self.dim,
        }
    }

    /// Dot products per sample.
    pub fn pairs(&self) -> usize {
        self.pairs
    }

    /// Elements written per output row: `d + pairs`, padded.
    pub fn row_len(&self) -> usize {
        self.row_len
    }

    /// Writes the `F` vectors of sample `b`, widened to f32, into `dst` (`F · d`
    /// elements, vector after vector).
    #[inline]
    pub(crate) fn widen_sample(&self, b: usize, dst: &mut [f32]) {
        let d = self.dim;
        if d == 0 {
            return;
        }
        for (f, row) in dst.chunks_exact_mut(d).enumerate() {
            let (src, start) = self.vector(b, f);
            src.widen_into(start, row);
        }
    }

    /// Where row `i` of the triangle starts within the triangle: the entries of rows
    /// `0..i`, `i (i − 1) / 2` (plus `i` with the diagonal).
    #[inline]
    pub(crate) fn triangle_row_start(&self, i: usize) -> usize {
        i * i.saturating_sub(1) / 2 + if self.diagonal { i } else { 0 }
    }

    /// Entries in row `i` of the triangle.
    #[inline]
    pub(crate) fn triangle_row_len(&self, i: usize) -> usize {
        i + usize::from(self.diagonal)
    }
}

/// DLRM's feature interaction over a batch, straight into the top MLP's input rows: row
/// `b` of `out` (at element `b · out_stride`) becomes `[dense[b], the triangle of dot
/// products, zeros to a multiple of pad_to]`; elements between rows are not touched. Each
/// dot product is accumulated over `d` in order with fused multiply-adds from +0.0, exactly
/// as [`crate::reference::interaction`]; the f16 / bf16 outputs round to nearest even.
///
/// # Errors
///
/// Those of [`InteractionProblem::new`], and [`Error::UnsupportedIsa`] for an explicit
/// level this CPU lacks (or an unusable `LOWP_ISA`).
pub fn interaction(
    dense: Vectors<'_>,
    embeddings: Embeddings<'_>,
    options: &InteractionOptions,
    mut out: Output<'_>,
) -> Result<()> {
    let problem = InteractionProblem::new(dense, embeddings, options, out.len())?;
    let level = Isa::choose(options.isa)?;
    let entry = registry::select(Op::Interaction, problem.dim, level);
    let registry::Kernel::Interaction(kernel) = entry.kernel else {
        unreachable!("the registry lists an interaction entry with another kernel type")
    };
    registry::record(entry);
    // SAFETY: `problem` comes from `InteractionProblem::new`, which checked every input
    // and the output's length against the shape; `entry` runs at `level`, which
    // `Isa::choose` found available, and `select` only returns entries that run under it.
    unsafe { kernel(&problem, &mut out) }
}
