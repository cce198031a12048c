//! DLRM feature interaction with AVX-512: sixteen dot products (columns `j` of the
//! triangle) per vector, the loop of [`crate::arch::interaction`].
//!
//! No AVX-512 BF16 variant: `vdpbf16ps` multiplies pairs of bf16 and adds both products to
//! the accumulator with its own rounding (and flushes denormals), which is not the
//! reference's sequential chain of f32 fused multiply-adds, so it cannot be bit-identical.

use crate::arch::x86_64::sls_avx512::Avx512;
use crate::embedding::Output;
use crate::error::Result;
use crate::interaction::InteractionProblem;

/// AVX-512 feature interaction.
///
/// # Safety
///
/// The CPU has AVX-512 F, BW and VL (and the AVX2 level's FMA and F16C); `problem` comes
/// from `InteractionProblem::new` with `out`'s length (what
/// [`crate::registry::InteractionFn`] promises).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn interaction(
    problem: &InteractionProblem<'_>,
    out: &mut Output<'_>,
) -> Result<()> {
    // SAFETY: this function's contract is `arch::interaction::interaction`'s, with AVX-512.
    unsafe { crate::arch::interaction::interaction::<Avx512>(problem, out) }
}
