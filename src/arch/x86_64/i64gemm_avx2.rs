//! Wrapping i64 GEMM with AVX2, which has no 64-bit vector multiply: the product's low 64
//! bits are built from 32 × 32 → 64-bit `vpmuludq` partial products,
//!
//! `a · b mod 2^64 = lo(a)·lo(b) + ((hi(a)·lo(b) + lo(a)·hi(b)) << 32)`,
//!
//! (the `hi · hi` term is shifted out). The shift is linear mod 2^64, so the cross terms are
//! summed unshifted in their own accumulator and shifted once per tile, when stored: a
//! multiply-add is three `vpmuludq` and three `vpaddq`, nothing else.

use std::arch::x86_64::*;

use crate::arch::i64gemm::{self, I64Madd};
use crate::error::Result;
use crate::gemm::{MatMut, MatRef};

/// Four i64 lanes; a tile is 4 rows × 4 columns: 8 accumulators (low products and cross
/// terms), the B vector and its upper halves, and A's two broadcasts fit the 16 registers.
pub(crate) struct Avx2;

impl I64Madd for Avx2 {
    const LANES: usize = 4;
    /// The value and its upper half, so that neither needs a shift in the inner loop.
    const A_PARTS: usize = 2;
    /// (Σ lo·lo, Σ cross terms).
    type Acc = (__m256i, __m256i);
    /// (a, hi(a)) broadcast.
    type A = (__m256i, __m256i);
    /// (b, hi(b)).
    type B = (__m256i, __m256i);

    #[inline(always)]
    unsafe fn zero() -> (__m256i, __m256i) {
        // SAFETY: only called from code compiled with AVX2 (the trait's contract).
        unsafe { (_mm256_setzero_si256(), _mm256_setzero_si256()) }
    }

    #[inline(always)]
    unsafe fn load_a(p: *const i64) -> (__m256i, __m256i) {
        // SAFETY: as for `zero`; the caller provides two readable i64 at `p`.
        unsafe {
            (
                _mm256_set1_epi64x(p.read_unaligned()),
                _mm256_set1_epi64x(p.add(1).read_unaligned()),
            )
        }
    }

    #[inline(always)]
    unsafe fn load_b(p: *const i64) -> (__m256i, __m256i) {
        // SAFETY: as for `zero`; the caller provides four readable i64 at `p`.
        unsafe {
            let b = _mm256_loadu_si256(p.cast());
            (b, _mm256_srli_epi64::<32>(b))
        }
    }

    #[inline(always)]
    unsafe fn madd(
        (lo, cross): (__m256i, __m256i),
        (a, a_hi): (__m256i, __m256i),
        (b, b_hi): (__m256i, __m256i),
    ) -> (__m256i, __m256i) {
        // SAFETY: as for `zero`. `vpmuludq` reads only the low 32 bits of each lane, so `a`
        // and `b` stand for their low halves.
        unsafe {
            let lo = _mm256_add_epi64(lo, _mm256_mul_epu32(a, b));
            let cross = _mm256_add_epi64(cross, _mm256_mul_epu32(a_hi, b));
            (lo, _mm256_add_epi64(cross, _mm256_mul_epu32(a, b_hi)))
        }
    }

    #[inline(always)]
    unsafe fn store(p: *mut i64, (lo, cross): (__m256i, __m256i)) {
        // SAFETY: as for `zero`; the caller provides four writable i64 at `p`.
        unsafe {
            let sum = _mm256_add_epi64(lo, _mm256_slli_epi64::<32>(cross));
            _mm256_storeu_si256(p.cast(), sum);
        }
    }
}

/// The wrapping i64 GEMM (`crate::registry::GemmI64Fn`) with AVX2.
///
/// # Safety
///
/// The CPU supports AVX2; the views passed `crate::gemm::validate_i64` for `m`, `n`, `k`.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn gemm_i64(
    m: usize,
    n: usize,
    k: usize,
    a: &MatRef<'_>,
    b: &MatRef<'_>,
    c: &mut MatMut<'_>,
    accumulate: bool,
) -> Result<()> {
    // SAFETY: this function's contract; 1 · 4 columns ≤ 32.
    unsafe { i64gemm::gemm::<Avx2, 1>(m, n, k, a, b, c, accumulate) };
    Ok(())
}
