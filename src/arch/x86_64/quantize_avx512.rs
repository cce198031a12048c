//! Row-wise quantizers and dequantizers with AVX-512 (F, BW, VL): sixteen f32 lanes (the
//! vector of `sls_avx512`, plus min/max and byte codes).

use std::arch::x86_64::*;

use crate::arch::quantize::{CHUNK, QuantSimd, quantize_kernels};
use crate::arch::x86_64::quantize_avx2::pack16_sse;
use crate::arch::x86_64::sls_avx512::Avx512;

impl QuantSimd for Avx512 {
    #[inline(always)]
    unsafe fn min(a: __m512, b: __m512) -> __m512 {
        // SAFETY: only called from code compiled with AVX-512 (the trait's contract).
        unsafe { _mm512_min_ps(a, b) }
    }

    #[inline(always)]
    unsafe fn max(a: __m512, b: __m512) -> __m512 {
        // SAFETY: as for `min`.
        unsafe { _mm512_max_ps(a, b) }
    }

    #[inline(always)]
    unsafe fn reduce_min(v: __m512) -> f32 {
        // SAFETY: as for `min`.
        unsafe { _mm512_reduce_min_ps(v) }
    }

    #[inline(always)]
    unsafe fn reduce_max(v: __m512) -> f32 {
        // SAFETY: as for `min`.
        unsafe { _mm512_reduce_max_ps(v) }
    }

    #[inline(always)]
    unsafe fn store_codes(p: *mut u8, v: __m512) {
        // SAFETY: as for `min`; the caller provides sixteen writable bytes at `p`. The
        // conversion rounds to nearest even (the default MXCSR mode Rust requires); lanes
        // in [0, 255] pass the unsigned saturating narrowing unchanged.
        unsafe { _mm_storeu_si128(p.cast(), _mm512_cvtusepi32_epi8(_mm512_cvtps_epi32(v))) }
    }

    #[inline(always)]
    unsafe fn load_codes(p: *const u8) -> __m512 {
        // SAFETY: as for `min`; the caller provides sixteen readable bytes at `p`.
        unsafe { _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(p.cast()))) }
    }

    #[inline(always)]
    unsafe fn pack16<const BITS: u32>(codes: &[u8; CHUNK]) -> u64 {
        // SAFETY: as for `min`; AVX-512 includes SSSE3 and SSE4.1.
        unsafe { pack16_sse::<BITS>(codes) }
    }
}

quantize_kernels!(Avx512, "avx512f,avx512bw,avx512vl,avx2,fma,f16c", "AVX-512");
