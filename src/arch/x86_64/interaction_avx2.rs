//! DLRM feature interaction with AVX2 + FMA: eight samples per vector, the loop of
//! [`crate::arch::interaction`].

use std::arch::x86_64::*;

use crate::arch::interaction::{MAX_LANES, Transpose};
use crate::arch::x86_64::sls_avx2::Avx2;
use crate::embedding::Output;
use crate::error::Result;
use crate::interaction::InteractionProblem;

impl Transpose for Avx2 {
    /// Two before each tile (of the five that would spread a block's 432 transposes over
    /// its 90 tiles at F = 27, d = 128), the other 252 after the tiles. Zen 3, AVX2, the
    /// same calls alternating in one process, B = 64 / 512 / 2048 at d = 128, 2048 at
    /// d = 64, 2048 at d = 128 with bf16 inputs, two runs: 1.02 / 1.03 / 1.05 / 1.01 /
    /// 1.06 times the speed of five per tile; one per tile 1.01 / 1.06 / 1.03 / 0.98 /
    /// 1.03, three 1.02 / 1.00 / 1.01 / 1.00 / 1.02. The transposes slow the tiles they
    /// run between by more than they gain from running under them.
    const MAX_PER_TILE: usize = 2;

    /// 24 shuffles: pairs of rows interleaved (`unpack`), then pairs of pairs (`shuffle`),
    /// then the 128-bit halves exchanged (`permute2f128`).
    #[inline(always)]
    unsafe fn transpose(r: &mut [__m256; MAX_LANES]) {
        // SAFETY: shuffles only; the trait's contract: the CPU has AVX2.
        unsafe {
            // t[2p] = rows 2p, 2p+1 interleaved at columns 0, 1 | 4, 5; t[2p+1] at 2, 3 | 6, 7.
            // (Loops, not `array::from_fn`: a closure the inliner leaves out of line is
            // compiled without AVX2 and calls every intrinsic.)
            let mut t = [_mm256_setzero_ps(); 8];
            for (i, t_i) in t.iter_mut().enumerate() {
                let (a, b) = (r[i & !1], r[i | 1]);
                *t_i = if i % 2 == 0 {
                    _mm256_unpacklo_ps(a, b)
                } else {
                    _mm256_unpackhi_ps(a, b)
                };
            }
            // s[4h + c] = column c (| c + 4) of rows 4h .. 4h + 3.
            let mut s = [_mm256_setzero_ps(); 8];
            for (i, s_i) in s.iter_mut().enumerate() {
                let (h, c) = (i / 4, i % 4);
                let (a, b) = (t[4 * h + c / 2], t[4 * h + 2 + c / 2]);
                *s_i = if c % 2 == 0 {
                    _mm256_shuffle_ps::<0x44>(a, b)
                } else {
                    _mm256_shuffle_ps::<0xEE>(a, b)
                };
            }
            for c in 0..4 {
                r[c] = _mm256_permute2f128_ps::<0x20>(s[c], s[4 + c]);
                r[c + 4] = _mm256_permute2f128_ps::<0x31>(s[c], s[4 + c]);
            }
        }
    }
}

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
    // SAFETY: this function's contract is `arch::interaction::interaction`'s, with AVX2,
    // over the whole batch. Tiles of 3 × 3 pairs (12 accumulators and 4 operands without
    // the diagonal) fit the 16 vector registers; 4 × 4 spills and measured about 1.3×
    // slower (B = 64 and 2048, F = 27, d = 128).
    unsafe { crate::arch::interaction::interaction::<Avx2, 3>(problem, out, 0..problem.batch) };
    Ok(())
}
