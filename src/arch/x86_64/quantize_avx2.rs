//! Row-wise quantizers and dequantizers with AVX2, FMA and F16C: eight f32 lanes (the
//! vector of `sls_avx2`, plus min/max and byte codes).

use std::arch::x86_64::*;

use crate::arch::quantize::{QuantSimd, quantize_kernels};
use crate::arch::x86_64::sls_avx2::Avx2;

impl QuantSimd for Avx2 {
    const MIN_MAX_KEEP_NAN: bool = false;

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
    unsafe fn all_zero(v: __m256) -> bool {
        // SAFETY: as for `min`. "Not equal or unordered" is true for NaN lanes.
        unsafe { _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_NEQ_UQ>(v, _mm256_setzero_ps())) == 0 }
    }

    #[inline(always)]
    unsafe fn store_codes<const BITS: u32>(p: *mut u8, v: [__m256; 4]) {
        // SAFETY: as for `min`; the caller provides the `4 · BITS` writable bytes at `p`.
        // The conversion rounds to nearest even (the default MXCSR mode Rust requires).
        // The signed then unsigned saturating packs clamp to [0, 255] (negative codes to 0,
        // large ones to 255, then to the largest code); within each 128-bit half they
        // interleave their sources four codes at a time, which `vpermd` undoes. Nibbles and
        // crumbs are joined by `vpmaddubsw` with byte weights (1, 16) or (1, 4), and
        // (1, 16) again on word pairs (`vpmaddwd`), then narrowed.
        unsafe {
            let [a, b, c, d] = [
                _mm256_cvtps_epi32(v[0]),
                _mm256_cvtps_epi32(v[1]),
                _mm256_cvtps_epi32(v[2]),
                _mm256_cvtps_epi32(v[3]),
            ];
            let bytes = _mm256_packus_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
            let bytes =
                _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            match BITS {
                8 => _mm256_storeu_si256(p.cast(), bytes),
                4 => {
                    let codes = _mm256_min_epu8(bytes, _mm256_set1_epi8(15));
                    let pairs = _mm256_maddubs_epi16(codes, _mm256_set1_epi16(0x1001));
                    let packed = _mm_packus_epi16(
                        _mm256_castsi256_si128(pairs),
                        _mm256_extracti128_si256::<1>(pairs),
                    );
                    _mm_storeu_si128(p.cast(), packed);
                }
                _ => {
                    let codes = _mm256_min_epu8(bytes, _mm256_set1_epi8(3));
                    let pairs = _mm256_maddubs_epi16(codes, _mm256_set1_epi16(0x0401));
                    let quads = _mm256_madd_epi16(pairs, _mm256_set1_epi32(0x0010_0001));
                    let words = _mm_packus_epi32(
                        _mm256_castsi256_si128(quads),
                        _mm256_extracti128_si256::<1>(quads),
                    );
                    _mm_storel_epi64(p.cast(), _mm_packus_epi16(words, words));
                }
            }
        }
    }

    #[inline(always)]
    unsafe fn load_codes(p: *const u8) -> __m256 {
        // SAFETY: as for `min`; the caller provides eight readable bytes at `p`.
        unsafe { _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(p.cast()))) }
    }
}

quantize_kernels!(Avx2, "avx2,fma,f16c", "AVX2");
