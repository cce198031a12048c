//! Wrapping i64 GEMM with NEON, which has no 64-bit vector multiply: the product's low 64
//! bits are built from 32-bit halves,
//!
//! `a · b mod 2^64 = lo(a)·lo(b) + ((hi(a)·lo(b) + lo(a)·hi(b)) << 32)`.
//!
//! `umlal` / `umlal2` accumulate the full 64-bit `lo · lo` products; the cross terms matter
//! only mod 2^32 (they are shifted up by 32), so `mla` sums them in 32-bit lanes, four
//! columns per instruction, and they are widened and shifted once per tile, when stored.
//! `ld2` splits four packed i64 into their low and high halves as it loads them.

use std::arch::aarch64::*;

use crate::arch::i64gemm::{self, I64Madd};
use crate::error::Result;
use crate::gemm::{MatMut, MatRef};

/// Four output columns per accumulator; a tile is 4 rows × 8 columns: 24 accumulator
/// registers, 4 for B's halves, of the 32.
pub(crate) struct Neon;

impl I64Madd for Neon {
    const LANES: usize = 4;
    const A_PARTS: usize = 1;
    /// (Σ lo·lo of columns 0–1, of columns 2–3, Σ cross terms mod 2^32 of columns 0–3).
    type Acc = (uint64x2_t, uint64x2_t, uint32x4_t);
    /// (lo(a), hi(a)).
    type A = (u32, u32);
    /// Low and high halves of four i64.
    type B = uint32x4x2_t;

    #[inline(always)]
    unsafe fn zero() -> Self::Acc {
        // SAFETY: only called from code compiled with NEON (the trait's contract).
        unsafe { (vdupq_n_u64(0), vdupq_n_u64(0), vdupq_n_u32(0)) }
    }

    #[inline(always)]
    unsafe fn load_a(p: *const i64) -> (u32, u32) {
        // SAFETY: the caller provides one readable i64 at `p`.
        let x = unsafe { p.read_unaligned() } as u64;
        (x as u32, (x >> 32) as u32)
    }

    #[inline(always)]
    unsafe fn load_b(p: *const i64) -> uint32x4x2_t {
        // SAFETY: as for `zero`; the caller provides four readable i64 (eight u32, low half
        // first as aarch64 Linux is little-endian) at `p`.
        unsafe { vld2q_u32(p.cast()) }
    }

    #[inline(always)]
    unsafe fn madd(
        (lo01, lo23, cross): Self::Acc,
        (a_lo, a_hi): (u32, u32),
        b: uint32x4x2_t,
    ) -> Self::Acc {
        let (b_lo, b_hi) = (b.0, b.1);
        // SAFETY: as for `zero`.
        unsafe {
            (
                vmlal_n_u32(lo01, vget_low_u32(b_lo), a_lo),
                vmlal_high_n_u32(lo23, b_lo, a_lo),
                vmlaq_n_u32(vmlaq_n_u32(cross, b_lo, a_hi), b_hi, a_lo),
            )
        }
    }

    #[inline(always)]
    unsafe fn store(p: *mut i64, (lo01, lo23, cross): Self::Acc) {
        // SAFETY: as for `zero`; the caller provides four writable i64 at `p`.
        unsafe {
            let r01 = vaddq_u64(lo01, vshll_n_u32::<32>(vget_low_u32(cross)));
            let r23 = vaddq_u64(lo23, vshll_high_n_u32::<32>(cross));
            vst1q_u64(p.cast(), r01);
            vst1q_u64(p.add(2).cast(), r23);
        }
    }
}

/// The wrapping i64 GEMM (`crate::registry::GemmI64Fn`) with NEON.
///
/// # Safety
///
/// The CPU supports NEON; the views passed `crate::gemm::validate_i64` for `m`, `n`, `k`.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn gemm_i64(
    m: usize,
    n: usize,
    k: usize,
    a: &MatRef<'_>,
    b: &MatRef<'_>,
    c: &mut MatMut<'_>,
    accumulate: bool,
) -> Result<()> {
    // SAFETY: this function's contract; 2 · 4 columns ≤ 32.
    unsafe { i64gemm::gemm::<Neon, 2>(m, n, k, a, b, c, accumulate) };
    Ok(())
}
