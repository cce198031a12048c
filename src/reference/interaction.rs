//! The reference DLRM feature interaction.

use crate::embedding::Output;
use crate::error::Result;
use crate::interaction::{Embeddings, InteractionOptions, InteractionProblem, Vectors};

/// DLRM's feature interaction over a batch: the specification every interaction kernel
/// reproduces bit for bit. See [`crate::interaction()`] for the layout of inputs and
/// output; `options.isa` is ignored.
///
/// # Arithmetic
///
/// The `F` vectors of a sample are widened exactly to f32 (bf16 is the upper half of an
/// f32). Each dot product `Z[i][j]` has its own f32 accumulator that starts at +0.0 and
/// takes `acc = v[i][k].mul_add(v[j][k], acc)` (one rounding) for `k = 0, 1, …, d − 1` in
/// order. The output row is `[v[0], Z[1][0], Z[2][0], Z[2][1], Z[3][0], …, zeros]` (with
/// the diagonal `[v[0], Z[0][0], Z[1][0], Z[1][1], …]`), stored as f32, or rounded to
/// nearest even for f16 / bf16 with NaN kept NaN. A dense bf16 element written to a bf16
/// output is therefore unchanged.
///
/// # Errors
///
/// Those of [`InteractionProblem::new`], checked before anything is written.
pub fn interaction(
    dense: Vectors<'_>,
    embeddings: Embeddings<'_>,
    options: &InteractionOptions,
    out: &mut Output<'_>,
) -> Result<()> {
    let problem = InteractionProblem::new(dense, embeddings, options, out.len())?;
    interaction_checked(&problem, out)
}

/// [`interaction`] on an already validated problem: the registry's Scalar entry.
pub(crate) fn interaction_checked(
    problem: &InteractionProblem<'_>,
    out: &mut Output<'_>,
) -> Result<()> {
    if problem.batch == 0 {
        // Nothing to write, and no input bounds the scratch of one sample.
        return Ok(());
    }
    let (f_count, d) = (problem.features, problem.dim);
    let mut vectors = vec![0f32; f_count * d];
    let mut row = vec![0f32; problem.row_len];
    for b in 0..problem.batch {
        problem.widen_sample(b, &mut vectors);
        let v = |f: usize| &vectors[f * d..(f + 1) * d];
        row[..d].copy_from_slice(v(0));
        let triangle = &mut row[d..d + problem.pairs];
        for i in 0..f_count {
            let start = problem.triangle_row_start(i);
            for j in 0..problem.triangle_row_len(i) {
                let mut acc = 0.0f32;
                for (&a, &c) in v(i).iter().zip(v(j)) {
                    acc = a.mul_add(c, acc);
                }
                triangle[start + j] = acc;
            }
        }
        // `row` past the triangle is the padding: zeros, never written.
        out.store(b * problem.out_stride, &row);
    }
    Ok(())
}
