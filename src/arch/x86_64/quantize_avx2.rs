//! Row-wise quantizers and dequantizers with AVX2, FMA and F16C: eight f32 lanes (the
//! vector of `sls_avx2`, plus min/max and byte codes).

use std::arch::x86_64::*;

use crate::arch::quantize::{CHUNK, QuantSimd, quantize_kernels};
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

    #[inline(always)]
    unsafe fn pack16<const BITS: u32>(codes: &[u8; CHUNK]) -> u64 {
        // SAFETY: as for `min`; AVX2 includes SSSE3 and SSE4.1.
        unsafe { pack16_sse::<BITS>(codes) }
    }
}

/// [`QuantSimd::pack16`] with SSSE3/SSE4.1 byte arithmetic, for the x86 levels.
///
/// # Safety
///
/// Only called from code compiled with SSE4.1 (every x86 level lowp has).
#[inline(always)]
pub(crate) unsafe fn pack16_sse<const BITS: u32>(codes: &[u8; CHUNK]) -> u64 {
    // SAFETY: the caller's CPU has SSE4.1; `codes` is sixteen readable bytes.
    // `vpmaddubsw` multiplies the unsigned codes by signed byte weights and adds neighbours into i16 lanes:
    // weights (1, 16) give `c0 | c1 << 4` (at most 255), weights (1, 4) give `c0 | c1 << 2`,
    // which `vpmaddwd` with (1, 16) joins into `c0 | c1 << 2 | c2 << 4 | c3 << 6`. The
    // unsigned saturating packs then keep each value's low byte, in element order.
    unsafe {
        let c = _mm_loadu_si128(codes.as_ptr().cast());
        if BITS == 4 {
            let pairs = _mm_maddubs_epi16(c, _mm_set1_epi16(0x1001));
            _mm_cvtsi128_si64(_mm_packus_epi16(pairs, pairs)) as u64
        } else {
            let pairs = _mm_maddubs_epi16(c, _mm_set1_epi16(0x0401));
            let quads = _mm_madd_epi16(pairs, _mm_set1_epi32(0x0010_0001));
            let words = _mm_packus_epi32(quads, quads);
            u64::from(_mm_cvtsi128_si32(_mm_packus_epi16(words, words)) as u32)
        }
    }
}

quantize_kernels!(Avx2, "avx2,fma,f16c", "AVX2");
