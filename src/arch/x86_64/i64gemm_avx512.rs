//! Wrapping i64 GEMM with AVX-512 DQ: `vpmullq` returns the low 64 bits of eight 64 × 64-bit
//! products at once, which is exactly the wrapping product.

use std::arch::x86_64::*;

use crate::arch::i64gemm::{self, I64Madd};
use crate::error::Result;
use crate::gemm::{MatMut, MatRef};

/// Eight i64 lanes; a tile is 4 rows × 32 columns (16 accumulators), and every depth step
/// issues 16 `vpmullq`, the instruction that bounds the loop, against 4 loads of B and 4
/// broadcasts of A. (4 × 16 measured 5–7% slower at 1024³; 6 × 32 and 8 × 24 no faster.)
pub(crate) struct Avx512;

impl I64Madd for Avx512 {
    const LANES: usize = 8;
    const A_PARTS: usize = 1;
    type Acc = __m512i;
    type A = __m512i;
    type B = __m512i;

    #[inline(always)]
    unsafe fn zero() -> __m512i {
        // SAFETY: only called from code compiled with AVX-512 (the trait's contract).
        unsafe { _mm512_setzero_si512() }
    }

    #[inline(always)]
    unsafe fn load_a(p: *const i64) -> __m512i {
        // SAFETY: as for `zero`; the caller provides one readable i64 at `p`.
        unsafe { _mm512_set1_epi64(p.read_unaligned()) }
    }

    #[inline(always)]
    unsafe fn load_b(p: *const i64) -> __m512i {
        // SAFETY: as for `zero`; the caller provides eight readable i64 at `p`.
        unsafe { _mm512_loadu_si512(p.cast()) }
    }

    #[inline(always)]
    unsafe fn madd(acc: __m512i, a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: as for `zero`; `vpmullq` is AVX-512 DQ, part of this level.
        unsafe { _mm512_add_epi64(acc, _mm512_mullo_epi64(a, b)) }
    }

    #[inline(always)]
    unsafe fn store(p: *mut i64, acc: __m512i) {
        // SAFETY: as for `zero`; the caller provides eight writable i64 at `p`.
        unsafe { _mm512_storeu_si512(p.cast(), acc) }
    }
}

/// The wrapping i64 GEMM (`crate::registry::GemmI64Fn`) with AVX-512 F and DQ.
///
/// # Safety
///
/// The CPU supports AVX-512 F and DQ; the views passed `crate::gemm::validate_i64` for
/// `m`, `n`, `k`.
#[target_feature(enable = "avx512f,avx512dq")]
pub(crate) unsafe fn gemm_i64(
    m: usize,
    n: usize,
    k: usize,
    a: &MatRef<'_>,
    b: &MatRef<'_>,
    c: &mut MatMut<'_>,
    accumulate: bool,
) -> Result<()> {
    // SAFETY: this function's contract; 4 · 8 columns ≤ 32.
    unsafe { i64gemm::gemm::<Avx512, 4>(m, n, k, a, b, c, accumulate) };
    Ok(())
}
