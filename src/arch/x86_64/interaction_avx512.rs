//! DLRM feature interaction with AVX-512: sixteen dot products (columns `j` of the
//! triangle) per vector, the loop of [`crate::arch::interaction`].
//!
//! No AVX-512 BF16 variant: `vdpbf16ps` multiplies pairs of bf16 and adds both products to
//! the accumulator with its own rounding (and flushes denormals), which is not the
//! reference's sequential chain of f32 fused multiply-adds, so it cannot be bit-identical.

use crate::arch::interaction::Transpose;
use crate::arch::x86_64::interaction_avx2::transpose_8x8;
use crate::arch::x86_64::sls_avx512::Avx512;
use crate::embedding::Output;
use crate::error::Result;
use crate::interaction::InteractionProblem;

impl Transpose for Avx512 {
    /// The 16 × 16 block as four 8 × 8 AVX2 transposes (the off-diagonal quarters swap).
    #[inline(always)]
    unsafe fn transpose(src: *const f32, src_stride: usize, dst: *mut f32, dst_stride: usize) {
        for (r, c) in [(0, 0), (0, 8), (8, 0), (8, 8)] {
            // SAFETY: the trait's contract: AVX-512 (hence AVX2) code, both 16 × 16 blocks
            // inside their buffers, so each quarter is too.
            unsafe {
                transpose_8x8(
                    src.add(r * src_stride + c),
                    src_stride,
                    dst.add(c * dst_stride + r),
                    dst_stride,
                );
            }
        }
    }
}

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
