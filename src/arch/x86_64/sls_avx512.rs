//! Embedding bags over f32 / f16 / bf16 rows with AVX-512 (F, BW, VL): sixteen f32 lanes,
//! masked loads and stores for the tail of a dimension that is not a multiple of 16.

use std::arch::x86_64::*;

use crate::arch::sls::{self, ROW_BF16, ROW_F16, ROW_F32, Simd};
use crate::embedding::plan::Prefetch;
use crate::embedding::{Bags, Output, Pooling};
use crate::error::Result;
use crate::format::Table;

/// The AVX-512 vector: sixteen f32.
pub(crate) struct Avx512;

/// The mask of the first `n` of 16 lanes.
#[inline(always)]
fn first(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

impl Simd for Avx512 {
    const LANES: usize = 16;
    type V = __m512;

    #[inline(always)]
    unsafe fn zero() -> __m512 {
        // SAFETY: only called from code compiled with AVX-512 (the trait's contract).
        unsafe { _mm512_setzero_ps() }
    }

    #[inline(always)]
    unsafe fn splat(x: f32) -> __m512 {
        // SAFETY: as for `zero`.
        unsafe { _mm512_set1_ps(x) }
    }

    #[inline(always)]
    unsafe fn add(acc: __m512, x: __m512) -> __m512 {
        // SAFETY: as for `zero`.
        unsafe { _mm512_add_ps(acc, x) }
    }

    #[inline(always)]
    unsafe fn fma(w: __m512, x: __m512, acc: __m512) -> __m512 {
        // SAFETY: as for `zero`.
        unsafe { _mm512_fmadd_ps(w, x, acc) }
    }

    #[inline(always)]
    unsafe fn mul(a: __m512, b: __m512) -> __m512 {
        // SAFETY: as for `zero`.
        unsafe { _mm512_mul_ps(a, b) }
    }

    #[inline(always)]
    unsafe fn load<const FMT: u8>(p: *const u8) -> __m512 {
        // SAFETY: the caller provides sixteen readable elements at `p`; loads are unaligned.
        unsafe {
            match FMT {
                ROW_F32 => _mm512_loadu_ps(p.cast()),
                ROW_F16 => _mm512_cvtph_ps(_mm256_loadu_si256(p.cast())),
                _ => widen_bf16(_mm256_loadu_si256(p.cast())),
            }
        }
    }

    #[inline(always)]
    unsafe fn load_pair<const FMT: u8>(p: *const u8) -> (__m512, __m512) {
        // SAFETY: the caller provides 32 readable elements at `p`; loads are unaligned.
        unsafe {
            if FMT == ROW_BF16 {
                // A bf16 is the upper half of an f32: from 32 of them in one load, shifting
                // each 32-bit lane left by 16 gives the even elements and clearing its low
                // half the odd ones, both already f32 (two uops instead of four).
                let x = _mm512_loadu_si512(p.cast());
                let even = _mm512_slli_epi32::<16>(x);
                let odd = _mm512_and_si512(x, _mm512_set1_epi32(0xFFFF_0000u32 as i32));
                (_mm512_castsi512_ps(even), _mm512_castsi512_ps(odd))
            } else {
                (
                    Self::load::<FMT>(p),
                    Self::load::<FMT>(p.add(16 * sls::elem_bytes(FMT))),
                )
            }
        }
    }

    #[inline(always)]
    unsafe fn unpair<const FMT: u8>(a: __m512, b: __m512) -> (__m512, __m512) {
        if FMT != ROW_BF16 {
            return (a, b);
        }
        // `a` holds elements 0, 2, …, 30 and `b` 1, 3, …, 31: interleave them back.
        // SAFETY: only called from code compiled with AVX-512.
        unsafe {
            let low = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
            let high =
                _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
            (
                _mm512_permutex2var_ps(a, low, b),
                _mm512_permutex2var_ps(a, high, b),
            )
        }
    }

    #[inline(always)]
    unsafe fn load_part<const FMT: u8>(p: *const u8, n: usize) -> __m512 {
        let m = first(n);
        // SAFETY: masked-off lanes are neither read nor able to fault; the caller provides
        // `n` readable elements at `p`.
        unsafe {
            match FMT {
                ROW_F32 => _mm512_maskz_loadu_ps(m, p.cast()),
                ROW_F16 => _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p.cast())),
                _ => widen_bf16(_mm256_maskz_loadu_epi16(m, p.cast())),
            }
        }
    }

    #[inline(always)]
    unsafe fn store<const OUT: u8>(p: *mut u8, v: __m512) {
        // SAFETY: the caller provides sixteen writable elements at `p`; stores are unaligned.
        unsafe {
            match OUT {
                ROW_F32 => _mm512_storeu_ps(p.cast(), v),
                ROW_F16 => _mm256_storeu_si256(p.cast(), to_f16(v)),
                _ => _mm256_storeu_si256(p.cast(), to_bf16(v)),
            }
        }
    }

    #[inline(always)]
    unsafe fn store_part<const OUT: u8>(p: *mut u8, v: __m512, n: usize) {
        let m = first(n);
        // SAFETY: masked-off lanes are not written; the caller provides `n` writable
        // elements at `p`.
        unsafe {
            match OUT {
                ROW_F32 => _mm512_mask_storeu_ps(p.cast(), m, v),
                ROW_F16 => _mm256_mask_storeu_epi16(p.cast(), m, to_f16(v)),
                _ => _mm256_mask_storeu_epi16(p.cast(), m, to_bf16(v)),
            }
        }
    }
}

/// Sixteen bf16 widened exactly to f32 (a bf16 is the upper half of an f32).
#[inline(always)]
unsafe fn widen_bf16(h: __m256i) -> __m512 {
    // SAFETY: only called from code compiled with AVX-512.
    unsafe { _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h))) }
}

/// Sixteen f32 rounded to binary16, nearest even (not the MXCSR mode).
#[inline(always)]
unsafe fn to_f16(v: __m512) -> __m256i {
    // SAFETY: only called from code compiled with AVX-512.
    unsafe { _mm512_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v) }
}

/// Sixteen f32 rounded to bf16 with integer operations, as `half::bf16::from_f32` does:
/// nearest, ties to even; a NaN is quieted, never rounded into an infinity.
#[inline(always)]
unsafe fn to_bf16(v: __m512) -> __m256i {
    // SAFETY: only called from code compiled with AVX-512.
    unsafe {
        let x = _mm512_castps_si512(v);
        let lsb = _mm512_and_si512(_mm512_srli_epi32::<16>(x), _mm512_set1_epi32(1));
        let bias = _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), lsb);
        let rounded = _mm512_srli_epi32::<16>(_mm512_add_epi32(x, bias));
        let quiet = _mm512_or_si512(_mm512_srli_epi32::<16>(x), _mm512_set1_epi32(0x40));
        let magnitude = _mm512_and_si512(x, _mm512_set1_epi32(0x7FFF_FFFF));
        let nan = _mm512_cmpgt_epi32_mask(magnitude, _mm512_set1_epi32(0x7F80_0000));
        _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, rounded, quiet))
    }
}

/// AVX-512 embedding bags: rows of format `FMT` (`sls::ROW_*`); `NV > 0` specialises the
/// dimension to `16 · NV`, `NV == 0` takes any dimension (masked tail).
///
/// # Safety
///
/// The CPU has AVX-512 F, BW and VL (and the AVX2 level's FMA and F16C). The arguments
/// passed the checks that [`crate::registry::EmbeddingBagFn`] lists, the table's rows are
/// in format `FMT`, and its dimension is `16 · NV` when `NV > 0`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn embedding_bag<const FMT: u8, const NV: usize>(
    table: &Table<'_>,
    bags: &Bags<'_>,
    pooling: Pooling,
    out: &mut Output<'_>,
    out_stride: usize,
    prefetch: Prefetch,
) -> Result<()> {
    // SAFETY: this function's contract is `sls::embedding_bag`'s, with AVX-512 enabled.
    unsafe {
        sls::embedding_bag::<Avx512, FMT, NV>(table, bags, pooling, out, out_stride, prefetch)
    }
}

sls::kernel_table!(
    embedding_bag,
    lanes = 16,
    dims = [16, 32, 64, 128, 256, 512]
);
