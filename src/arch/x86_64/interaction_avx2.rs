//! DLRM feature interaction with AVX2 + FMA: eight dot products (columns `j` of the
//! triangle) per vector, the loop of [`crate::arch::interaction`].

use crate::arch::x86_64::sls_avx2::Avx2;
use crate::embedding::Output;
use crate::error::Result;
use crate::interaction::InteractionProblem;

/// AVX2 feature interaction.
///
/// # Safety
///
/// The CPU has AVX2, FMA and F16C; `problem` comes from `InteractionProblem::new` with
/// `out`'s length (what [`crate::registry::InteractionFn`] promises).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn interaction(
    problem: &InteractionProblem<'_>,
    out: &mut Output<'_>,
) -> Result<()> {
    // SAFETY: this function's contract is `arch::interaction::interaction`'s, with AVX2.
    unsafe { crate::arch::interaction::interaction::<Avx2>(problem, out) }
}
