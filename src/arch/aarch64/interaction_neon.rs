//! DLRM feature interaction with NEON: four dot products (columns `j` of the triangle)
//! per vector, the loop of [`crate::arch::interaction`].

use crate::arch::aarch64::sls_neon::Neon;
use crate::arch::interaction::Transpose;
use crate::embedding::Output;
use crate::error::Result;
use crate::interaction::InteractionProblem;

/// 4 × 4 blocks are small: the element-wise default transpose is enough.
impl Transpose for Neon {}

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
    // SAFETY: this function's contract is `arch::interaction::interaction`'s, with NEON.
    unsafe { crate::arch::interaction::interaction::<Neon>(problem, out) }
}
