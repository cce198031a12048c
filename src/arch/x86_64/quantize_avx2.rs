//! Row-wise quantizers and dequantizers with AVX2, FMA and F16C: eight f32 lanes (the
//! vector of `sls_avx2`, plus min/max and byte codes).

use std::arch::x86_64::*;

use crate::arch::quantize::{QuantSimd, quantize_kernels};
use crate::arch::x86_64::sls_avx2::Avx2;

impl QuantSimd for Avx2 {
    #[inline(always)]
    unsafe fn min(a: __m256, b: __m256) -> __m256 {
        // SAFETY: only called from code compiled with AVX2 (the trait's contract).
        unsafe { _mm256_min_ps(a, b) }
    }

    #[inline(always)]
    unsafe fn max(a: __m256, b: __m256) -> __m256 {
        // SAFETY: as for `min`.
        unsafe { _mm256_max_ps(a, b) }
    }

    #[inline(always)]
    unsafe fn reduce_min(v: __m256) -> f32 {
        // SAFETY: as for `min`.
        unsafe {
            let m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let m = _mm_min_ps(m, _mm_movehl_ps(m, m));
            _mm_cvtss_f32(_mm_min_ss(m, _mm_movehdup_ps(m)))
        }
    }

    #[inline(always)]
    unsafe fn reduce_max(v: __m256) -> f32 {
        // SAFETY: as for `min`.
        unsafe {
            let m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
            _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)))
        }
    }

    #[inline(always)]
    unsafe fn store_codes(p: *mut u8, v: __m256) {
        // SAFETY: as for `min`; the caller provides eight writable bytes at `p`. The
        // conversion rounds to nearest even (the default MXCSR mode Rust requires); lanes
        // in [0, 255] pass both saturating packs unchanged.
        unsafe {
            let q = _mm256_cvtps_epi32(v);
            let words =
                _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256::<1>(q));
            _mm_storel_epi64(p.cast(), _mm_packus_epi16(words, words));
        }
    }

    #[inline(always)]
    unsafe fn load_codes(p: *const u8) -> __m256 {
        // SAFETY: as for `min`; the caller provides eight readable bytes at `p`.
        unsafe { _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(p.cast()))) }
    }
}

quantize_kernels!(Avx2, "avx2,fma,f16c", "AVX2");
