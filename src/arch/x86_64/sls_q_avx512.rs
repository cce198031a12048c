//! Embedding bags over Q8 / Q4 / Q2 rows with AVX-512 (F, BW, VL): sixteen f32 lanes.
//!
//! Sixteen codes take 16, 8 or 4 bytes. Q8 zero-extends its bytes; Q4 spreads its two
//! 32-bit words over the lanes with one `vpermd` (lanes 0–7 get the first, 8–15 the
//! second), Q2 broadcasts its one word; each lane then shifts right by its own code's bit
//! offset (`vpsrlvd`) and masks. A partial last vector is a masked byte load (BW), which
//! reads only the bytes holding its codes.
//!
//! Unweighted Q4 and Q2 bags at the specialised dimensions take the lookup path of
//! [`LutSimd`]: sixteen code bytes widened to dword lanes (`vpmovzxbd`), shifted per
//! phase, index a per-row table of `scale · code` with `vpermps` (which reads only an
//! index's low four bits), and two adds per vector remain.

use std::arch::x86_64::*;

use crate::arch::sls_quant::{self, LutSimd, QuantSimd};
use crate::arch::x86_64::sls_avx512::Avx512;
use crate::embedding::plan::Prefetch;
use crate::embedding::{Bags, Output, Pooling};
use crate::error::Result;
use crate::format::Table;

/// Sixteen `BITS`-bit codes held in the low bytes of `x`, as sixteen f32.
#[inline(always)]
unsafe fn widen_codes<const BITS: u32>(x: __m128i) -> __m512 {
    // SAFETY: only called from code compiled with AVX-512 F.
    unsafe {
        let codes = match BITS {
            8 => _mm512_cvtepu8_epi32(x),
            4 => {
                let word_of_lane =
                    _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
                let shifts =
                    _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
                let words = _mm512_permutexvar_epi32(word_of_lane, _mm512_castsi128_si512(x));
                _mm512_and_si512(_mm512_srlv_epi32(words, shifts), _mm512_set1_epi32(0xF))
            }
            _ => {
                let shifts =
                    _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
                let lanes = _mm512_srlv_epi32(_mm512_broadcastd_epi32(x), shifts);
                _mm512_and_si512(lanes, _mm512_set1_epi32(0x3))
            }
        };
        _mm512_cvtepi32_ps(codes)
    }
}

impl QuantSimd for Avx512 {
    /// Four: bags of 100 over a 1 GiB table, dimension 128 (paired with the random-gather
    /// limit in thread CPU time), Q8 0.87-0.88 of the limit with two rows a step, 0.89-0.91
    /// with four; Q4 0.88-0.90, 0.89-0.91. Three (0.87, 0.86), five (0.78, 0.71) and eight
    /// (0.72, 0.73) are slower; AVX2, with half the registers, loses with four (Q4 0.66 ->
    /// 0.61) and keeps two.
    const ROWS_PER_STEP: usize = 4;

    #[inline(always)]
    unsafe fn load_codes<const BITS: u32>(p: *const u8) -> __m512 {
        // SAFETY: only called from code compiled with AVX-512 (the trait's contract); the
        // caller provides the `16 · BITS / 8` bytes read here, unaligned.
        unsafe {
            let x = match BITS {
                8 => _mm_loadu_si128(p.cast()),
                4 => _mm_loadl_epi64(p.cast()),
                _ => _mm_cvtsi32_si128(p.cast::<i32>().read_unaligned()),
            };
            widen_codes::<BITS>(x)
        }
    }

    #[inline(always)]
    unsafe fn load_codes_part<const BITS: u32>(p: *const u8, n: usize) -> __m512 {
        let bytes = (n * BITS as usize).div_ceil(8);
        let mask = ((1u32 << bytes) - 1) as __mmask16;
        // SAFETY: masked-off bytes are neither read nor able to fault; the caller provides
        // the `bytes` bytes holding `n` codes at `p`. BW and VL are part of this level.
        unsafe { widen_codes::<BITS>(_mm_maskz_loadu_epi8(mask, p.cast())) }
    }

    #[inline(always)]
    unsafe fn widen_f16_pair(p: *const u8) -> (f32, f32) {
        // SAFETY: F16C is part of this level; the caller provides four readable bytes.
        unsafe {
            let both = _mm_cvtph_ps(_mm_cvtsi32_si128(p.cast::<i32>().read_unaligned()));
            (_mm_cvtss_f32(both), _mm_cvtss_f32(_mm_movehdup_ps(both)))
        }
    }
}

impl LutSimd for Avx512 {
    #[inline(always)]
    unsafe fn row_table<const BITS: u32>(p: *const u8) -> (__m512, __m512) {
        // SAFETY: only called from code compiled with AVX-512 F (the trait's contract); the
        // caller provides four readable bytes. Converting the broadcast pair gives lanes
        // (scale, bias, scale, bias, …); duplicating the even or odd lanes splats each.
        unsafe {
            let pair = _mm512_cvtph_ps(_mm256_set1_epi32(p.cast::<i32>().read_unaligned()));
            let levels = (1i32 << BITS) - 1;
            let codes = _mm512_cvtepi32_ps(_mm512_and_si512(
                _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                _mm512_set1_epi32(levels),
            ));
            (
                _mm512_mul_ps(_mm512_moveldup_ps(pair), codes),
                _mm512_movehdup_ps(pair),
            )
        }
    }

    #[inline(always)]
    unsafe fn lookup<const BITS: u32>(p: *const u8, table: __m512) -> [__m512; 4] {
        // SAFETY: as for `row_table`; the caller provides sixteen readable bytes. `vpermps`
        // reads only the low four bits of each index lane, so the neighbouring codes above
        // a code need no mask (Q2's table repeats every four lanes for the same reason).
        unsafe {
            let bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128(p.cast()));
            let at = |shifted: __m512i| _mm512_permutexvar_ps(shifted, table);
            if BITS == 4 {
                let first = at(bytes);
                [first, at(_mm512_srli_epi32::<4>(bytes)), first, first]
            } else {
                [
                    at(bytes),
                    at(_mm512_srli_epi32::<2>(bytes)),
                    at(_mm512_srli_epi32::<4>(bytes)),
                    at(_mm512_srli_epi32::<6>(bytes)),
                ]
            }
        }
    }

    #[inline(always)]
    unsafe fn interleave<const UPPER: bool>(x: __m512, y: __m512) -> __m512 {
        // SAFETY: as for `row_table`. Indices 16 and up pick from `y`.
        unsafe {
            let order = if UPPER {
                _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)
            } else {
                _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)
            };
            _mm512_permutex2var_ps(x, order, y)
        }
    }
}

/// AVX-512 embedding bags over quantized rows with `BITS`-bit codes (8: Q8, 4: Q4, 2: Q2);
/// `NV > 0` specialises the dimension to `16 · NV`, `NV == 0` takes any dimension.
///
/// # Safety
///
/// The CPU has AVX-512 F, BW and VL (and the AVX2 level's FMA and F16C). The arguments
/// passed the checks that [`crate::registry::EmbeddingBagFn`] lists, the table is in the
/// format with `BITS`-bit codes, and its dimension is `16 · NV` when `NV > 0`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn embedding_bag<const BITS: u32, const NV: usize>(
    table: &Table<'_>,
    bags: &Bags<'_>,
    pooling: Pooling,
    out: &mut Output<'_>,
    out_stride: usize,
    prefetch: Prefetch,
) -> Result<()> {
    // SAFETY: this function's contract is `sls_quant::embedding_bag`'s, with AVX-512
    // enabled.
    unsafe {
        sls_quant::embedding_bag_lut::<Avx512, BITS, NV>(
            table, bags, pooling, out, out_stride, prefetch,
        )
    }
}

sls_quant::quant_kernel_table!(embedding_bag, lanes = 16, dims = [16, 32, 64, 128, 256]);
