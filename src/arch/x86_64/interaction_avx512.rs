//! DLRM feature interaction with AVX-512: sixteen samples per vector, the loop of
//! [`crate::arch::interaction`]; a batch's last samples (fewer than sixteen) run at eight
//! lanes, so a small batch wastes at most half a vector's work.
//!
//! No AVX-512 BF16 variant: `vdpbf16ps` multiplies pairs of bf16 and adds both products to
//! the accumulator with its own rounding (and flushes denormals), which is not the
//! reference's sequential chain of f32 fused multiply-adds, so it cannot be bit-identical.

use std::arch::x86_64::*;

use crate::arch::interaction::{MAX_LANES, Transpose};
use crate::arch::sls::Simd;
use crate::arch::x86_64::sls_avx2::Avx2;
use crate::arch::x86_64::sls_avx512::Avx512;
use crate::embedding::Output;
use crate::error::Result;
use crate::interaction::InteractionProblem;

impl Transpose for Avx512 {
    /// 64 shuffles in four rounds, each merging pairs of vectors: elements within 128-bit
    /// lanes (`unpack`, then `shuffle`), then the 128-bit lanes themselves (`shuffle_f32x4`
    /// twice), the fewest two-input shuffles a 16 × 16 transpose takes.
    #[inline(always)]
    unsafe fn transpose(r: &mut [__m512; MAX_LANES]) {
        // SAFETY: shuffles only; the trait's contract: the CPU has AVX-512 F.
        unsafe {
            // t[2p] lane L = r[2p][4L], r[2p+1][4L], r[2p][4L+1], r[2p+1][4L+1];
            // t[2p+1] the same at 4L+2, 4L+3.
            // (Loops, not `array::from_fn`: a closure the inliner leaves out of line is
            // compiled without AVX-512 and calls every intrinsic.)
            let mut t = [_mm512_setzero_ps(); 16];
            for (i, t_i) in t.iter_mut().enumerate() {
                let (a, b) = (r[i & !1], r[i | 1]);
                *t_i = if i % 2 == 0 {
                    _mm512_unpacklo_ps(a, b)
                } else {
                    _mm512_unpackhi_ps(a, b)
                };
            }
            // u[4m + c] lane L = column 4L + c of rows 4m .. 4m + 3.
            let mut u = [_mm512_setzero_ps(); 16];
            for (i, u_i) in u.iter_mut().enumerate() {
                let (m, c) = (i / 4, i % 4);
                let (a, b) = (t[4 * m + c / 2], t[4 * m + 2 + c / 2]);
                *u_i = if c % 2 == 0 {
                    _mm512_shuffle_ps::<0x44>(a, b)
                } else {
                    _mm512_shuffle_ps::<0xEE>(a, b)
                };
            }
            // For each c, a 4 × 4 transpose of 128-bit lanes across u[c], u[4 + c], u[8 + c],
            // u[12 + c] gives columns c, 4 + c, 8 + c, 12 + c.
            for c in 0..4 {
                let v0 = _mm512_shuffle_f32x4::<0x44>(u[c], u[4 + c]);
                let v1 = _mm512_shuffle_f32x4::<0xEE>(u[c], u[4 + c]);
                let v2 = _mm512_shuffle_f32x4::<0x44>(u[8 + c], u[12 + c]);
                let v3 = _mm512_shuffle_f32x4::<0xEE>(u[8 + c], u[12 + c]);
                r[c] = _mm512_shuffle_f32x4::<0x88>(v0, v2);
                r[4 + c] = _mm512_shuffle_f32x4::<0xDD>(v0, v2);
                r[8 + c] = _mm512_shuffle_f32x4::<0x88>(v1, v3);
                r[12 + c] = _mm512_shuffle_f32x4::<0xDD>(v1, v3);
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
    let whole = problem.batch / Avx512::LANES * Avx512::LANES;
    // SAFETY: this function's contract is `arch::interaction::interaction`'s, with AVX-512
    // (hence AVX2); both sample ranges are inside the batch. Tiles of 4 × 4 pairs (at most 26
    // accumulators, with the diagonal, and 5 operands) fit the 32 vector registers.
    unsafe {
        crate::arch::interaction::interaction::<Avx512, 4>(problem, out, 0..whole);
        crate::arch::interaction::interaction::<Avx2, 4>(problem, out, whole..problem.batch);
    }
    Ok(())
}
