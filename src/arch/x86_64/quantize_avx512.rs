//! Row-wise quantizers and dequantizers with AVX-512 (F, BW, VL): sixteen f32 lanes (the
//! vector of `sls_avx512`, plus min/max and byte codes).

use std::arch::x86_64::*;

use crate::arch::quantize::{QuantSimd, quantize_kernels};
use crate::arch::x86_64::sls_avx512::Avx512;

impl QuantSimd for Avx512 {
    const MIN_MAX_KEEP_NAN: bool = false;

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
    unsafe fn all_zero(v: __m512) -> bool {
        // SAFETY: as for `min`. "Not equal or unordered" is true for NaN lanes.
        unsafe { _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(v, _mm512_setzero_ps()) == 0 }
    }

    #[inline(always)]
    unsafe fn store_codes<const BITS: u32>(p: *mut u8, v: [__m512; 4]) {
        // SAFETY: as for `min`; the caller provides the `8 · BITS` writable bytes at `p`.
        // As the AVX2 level's (`quantize_avx2`), on four 128-bit lanes: the packs leave
        // groups of four codes in the order (lane, source), `vpermd` restores (source,
        // lane); narrowing stores (`vpmovwb`, `vpmovdb`) write the nibbles and crumbs.
        unsafe {
            let [a, b, c, d] = [
                _mm512_cvtps_epi32(v[0]),
                _mm512_cvtps_epi32(v[1]),
                _mm512_cvtps_epi32(v[2]),
                _mm512_cvtps_epi32(v[3]),
            ];
            let bytes = _mm512_packus_epi16(_mm512_packs_epi32(a, b), _mm512_packs_epi32(c, d));
            let order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
            let bytes = _mm512_permutexvar_epi32(order, bytes);
            match BITS {
                8 => _mm512_storeu_si512(p.cast(), bytes),
                4 => {
                    let codes = _mm512_min_epu8(bytes, _mm512_set1_epi8(15));
                    let pairs = _mm512_maddubs_epi16(codes, _mm512_set1_epi16(0x1001));
                    _mm256_storeu_si256(p.cast(), _mm512_cvtepi16_epi8(pairs));
                }
                _ => {
                    let codes = _mm512_min_epu8(bytes, _mm512_set1_epi8(3));
                    let pairs = _mm512_maddubs_epi16(codes, _mm512_set1_epi16(0x0401));
                    let quads = _mm512_madd_epi16(pairs, _mm512_set1_epi32(0x0010_0001));
                    _mm_storeu_si128(p.cast(), _mm512_cvtepi32_epi8(quads));
                }
            }
        }
    }

    #[inline(always)]
    unsafe fn load_codes(p: *const u8) -> __m512 {
        // SAFETY: as for `min`; the caller provides sixteen readable bytes at `p`.
        unsafe { _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(p.cast()))) }
    }
}

quantize_kernels!(Avx512, "avx512f,avx512bw,avx512vl,avx2,fma,f16c", "AVX-512");
