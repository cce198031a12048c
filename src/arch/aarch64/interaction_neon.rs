//! DLRM feature interaction with NEON: four samples per vector, the loop of
//! [`crate::arch::interaction`].

use std::arch::aarch64::*;

use crate::arch::aarch64::sls_neon::Neon;
use crate::arch::interaction::{MAX_LANES, Transpose};
use crate::embedding::Output;
use crate::error::Result;
use crate::interaction::InteractionProblem;

impl Transpose for Neon {
    /// Eight shuffles: pairs of rows interleaved (`trn1`, `trn2`), then their 64-bit halves
    /// exchanged (`zip1`, `zip2` on 64-bit lanes).
    #[inline(always)]
    unsafe fn transpose(r: &mut [float32x4_t; MAX_LANES]) {
        // SAFETY: shuffles only; the trait's contract: the CPU has NEON.
        unsafe {
            // a = r0[0] r1[0] r0[2] r1[2], b = r0[1] r1[1] r0[3] r1[3]; c, e likewise of r2, r3.
            let a = vreinterpretq_f64_f32(vtrn1q_f32(r[0], r[1]));
            let b = vreinterpretq_f64_f32(vtrn2q_f32(r[0], r[1]));
            let c = vreinterpretq_f64_f32(vtrn1q_f32(r[2], r[3]));
            let e = vreinterpretq_f64_f32(vtrn2q_f32(r[2], r[3]));
            r[0] = vreinterpretq_f32_f64(vzip1q_f64(a, c));
            r[1] = vreinterpretq_f32_f64(vzip1q_f64(b, e));
            r[2] = vreinterpretq_f32_f64(vzip2q_f64(a, c));
            r[3] = vreinterpretq_f32_f64(vzip2q_f64(b, e));
        }
    }
}

/// NEON feature interaction.
///
/// # Safety
///
/// The CPU has NEON; `problem` comes from `InteractionProblem::new` with `out`'s length
/// (what [`crate::registry::InteractionFn`] promises).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn interaction(
    problem: &InteractionProblem<'_>,
    out: &mut Output<'_>,
) -> Result<()> {
    // SAFETY: this function's contract is `arch::interaction::interaction`'s, with NEON,
    // over the whole batch. Tiles of 4 × 4 pairs (at most 26 accumulators, with the
    // diagonal, and 5 operands) fit the 32 vector registers.
    unsafe { crate::arch::interaction::interaction::<Neon, 4>(problem, out, 0..problem.batch) };
    Ok(())
}
