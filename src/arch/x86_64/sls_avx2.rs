//! Embedding bags over f32 / f16 / bf16 rows with AVX2, FMA and F16C: eight f32 lanes.

use std::arch::x86_64::*;

use crate::arch::sls::{self, ROW_BF16, ROW_F16, ROW_F32, Simd};
use crate::embedding::plan::Prefetch;
use crate::embedding::{Bags, Output, Pooling};
use crate::error::Result;
use crate::format::Table;

/// The AVX2 vector: eight f32.
pub(crate) struct Avx2;

impl Simd for Avx2 {
    const LANES: usize = 8;
    type V = __m256;

    #[inline(always)]
    unsafe fn zero() -> __m256 {
        // SAFETY: only called from code compiled with AVX2 (the trait's contract).
        unsafe { _mm256_setzero_ps() }
    }

    #[inline(always)]
    unsafe fn splat(x: f32) -> __m256 {
        // SAFETY: as for `zero`.
        unsafe { _mm256_set1_ps(x) }
    }

    #[inline(always)]
    unsafe fn add(acc: __m256, x: __m256) -> __m256 {
        // SAFETY: as for `zero`.
        unsafe { _mm256_add_ps(acc, x) }
    }

    #[inline(always)]
    unsafe fn fma(w: __m256, x: __m256, acc: __m256) -> __m256 {
        // SAFETY: as for `zero`; FMA is part of this level.
        unsafe { _mm256_fmadd_ps(w, x, acc) }
    }

    #[inline(always)]
    unsafe fn mul(a: __m256, b: __m256) -> __m256 {
        // SAFETY: as for `zero`.
        unsafe { _mm256_mul_ps(a, b) }
    }

    #[inline(always)]
    unsafe fn load<const FMT: u8>(p: *const u8) -> __m256 {
        // SAFETY: the caller provides eight readable elements at `p`; the loads are
        // unaligned. F16C converts binary16 exactly; a bf16 is the upper half of an f32.
        unsafe {
            match FMT {
                ROW_F32 => _mm256_loadu_ps(p.cast()),
                ROW_F16 => _mm256_cvtph_ps(_mm_loadu_si128(p.cast())),
                _ => {
                    let wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(p.cast()));
                    _mm256_castsi256_ps(_mm256_slli_epi32::<16>(wide))
                }
            }
        }
    }

    #[inline(always)]
    unsafe fn load_pair<const FMT: u8>(p: *const u8) -> (__m256, __m256) {
        // SAFETY: the caller provides sixteen readable elements at `p`; loads are unaligned.
        unsafe {
            if FMT == ROW_BF16 {
                // As on AVX-512: one load, the even elements by a shift, the odd ones by a
                // mask, both already f32.
                let x = _mm256_loadu_si256(p.cast());
                let even = _mm256_slli_epi32::<16>(x);
                let odd = _mm256_and_si256(x, _mm256_set1_epi32(0xFFFF_0000u32 as i32));
                (_mm256_castsi256_ps(even), _mm256_castsi256_ps(odd))
            } else {
                (
                    Self::load::<FMT>(p),
                    Self::load::<FMT>(p.add(8 * sls::elem_bytes(FMT))),
                )
            }
        }
    }

    #[inline(always)]
    unsafe fn unpair<const FMT: u8>(a: __m256, b: __m256) -> (__m256, __m256) {
        if FMT != ROW_BF16 {
            return (a, b);
        }
        // `a` holds elements 0, 2, …, 14 and `b` 1, 3, …, 15. The unpacks interleave within
        // 128-bit halves (0–3 | 8–11 and 4–7 | 12–15); the permutes join the halves.
        // SAFETY: only called from code compiled with AVX2.
        unsafe {
            let low = _mm256_unpacklo_ps(a, b);
            let high = _mm256_unpackhi_ps(a, b);
            (
                _mm256_permute2f128_ps::<0x20>(low, high),
                _mm256_permute2f128_ps::<0x31>(low, high),
            )
        }
    }

    #[inline(always)]
    unsafe fn store<const OUT: u8>(p: *mut u8, v: __m256) {
        // SAFETY: the caller provides eight writable elements at `p`; stores are unaligned.
        unsafe {
            match OUT {
                ROW_F32 => _mm256_storeu_ps(p.cast(), v),
                ROW_F16 => {
                    _mm_storeu_si128(p.cast(), _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v))
                }
                _ => {
                    let bf = bf16_bits(v);
                    let packed = _mm_packus_epi32(
                        _mm256_castsi256_si128(bf),
                        _mm256_extracti128_si256::<1>(bf),
                    );
                    _mm_storeu_si128(p.cast(), packed);
                }
            }
        }
    }
}

/// The bf16 rounding of each lane (nearest, ties to even; NaN quieted, never rounded into
/// an infinity) in the low 16 bits of each 32-bit lane, as `half::bf16::from_f32` does.
#[inline(always)]
unsafe fn bf16_bits(v: __m256) -> __m256i {
    // SAFETY: only called from code compiled with AVX2.
    unsafe {
        let x = _mm256_castps_si256(v);
        let lsb = _mm256_and_si256(_mm256_srli_epi32::<16>(x), _mm256_set1_epi32(1));
        let bias = _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), lsb);
        let rounded = _mm256_srli_epi32::<16>(_mm256_add_epi32(x, bias));
        let quiet = _mm256_or_si256(_mm256_srli_epi32::<16>(x), _mm256_set1_epi32(0x40));
        let magnitude = _mm256_and_si256(x, _mm256_set1_epi32(0x7FFF_FFFF));
        let nan = _mm256_cmpgt_epi32(magnitude, _mm256_set1_epi32(0x7F80_0000));
        _mm256_blendv_epi8(rounded, quiet, nan)
    }
}

/// AVX2 embedding bags: rows of format `FMT` (`sls::ROW_*`); `NV > 0` specialises the
/// dimension to `8 · NV`, `NV == 0` takes any dimension.
///
/// # Safety
///
/// The CPU has AVX2, FMA and F16C. The arguments passed the checks that
/// [`crate::registry::EmbeddingBagFn`] lists, the table's rows are in format `FMT`, and its
/// dimension is `8 · NV` when `NV > 0`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn embedding_bag<const FMT: u8, const NV: usize>(
    table: &Table<'_>,
    bags: &Bags<'_>,
    pooling: Pooling,
    out: &mut Output<'_>,
    out_stride: usize,
    prefetch: Prefetch,
) -> Result<()> {
    // SAFETY: this function's contract is `sls::embedding_bag`'s, with AVX2 enabled here.
    unsafe { sls::embedding_bag::<Avx2, FMT, NV>(table, bags, pooling, out, out_stride, prefetch) }
}

// No dimension 256: its 32 accumulators would not fit AVX2's 16 registers, and the general
// path's four register-resident blocks of 64 ran faster (f32, bags of 20 in L2: 50 against
// 35 GB/s; bags of 100 out of cache: 4.8 against 3.6 GB/s).
sls::kernel_table!(embedding_bag, lanes = 8, dims = [16, 32, 64, 128]);
