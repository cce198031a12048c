//! Embedding bags over Q8 / Q4 / Q2 rows with AVX2, FMA and F16C: eight f32 lanes.
//!
//! Eight codes take 8, 4 or 2 bytes. Q8 zero-extends its bytes. Q4 takes codes sixteen at
//! a time: eight bytes zero-extended to the lanes, then their low and high nibbles, the
//! even and odd elements (lanes permuted, put back after the bag). Q2, and a Q4 vector
//! left over, broadcast the 16-bit (or 32-bit) word holding the eight codes to every lane
//! and shift each lane right by its own code's bit offset (`vpsrlvd`), then mask.
//!
//! Sixteen registers hold eight accumulators with room for the rest, so rows of
//! dimension 128 and 256 go in passes of eight vectors ([`QuantSimd::MAX_ACC`]). Bags of
//! 100 over a 1 GiB table on Zen 3 (AMD EPYC, paired ratio to the random-gather limit at
//! the row's size): Q8 dimension 128 from 0.77 to about 1.0, Q4 128 from 0.54 to about
//! 0.85; Q4 64 from 0.73 to about 1.05 (noisy: another job loaded the machine).

use std::arch::x86_64::*;

use crate::arch::sls_quant::{self, QuantSimd};
use crate::arch::x86_64::sls_avx2::Avx2;
use crate::embedding::plan::Prefetch;
use crate::embedding::{Bags, Output, Pooling};
use crate::error::Result;
use crate::format::Table;

impl QuantSimd for Avx2 {
    /// Eight accumulators, the scale, the bias and the codes being converted fit the 16
    /// vector registers; at dimension 128 (sixteen accumulators) the compiler spilled most
    /// of them to the stack on every row.
    const MAX_ACC: usize = 8;

    #[inline(always)]
    unsafe fn load_codes<const BITS: u32>(p: *const u8) -> __m256 {
        // SAFETY: only called from code compiled with AVX2 (the trait's contract); the
        // caller provides the `8 · BITS / 8` bytes read here, unaligned.
        unsafe {
            let codes = match BITS {
                8 => _mm256_cvtepu8_epi32(_mm_loadl_epi64(p.cast())),
                4 => {
                    let word = p.cast::<i32>().read_unaligned();
                    let shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
                    let lanes = _mm256_srlv_epi32(_mm256_set1_epi32(word), shifts);
                    _mm256_and_si256(lanes, _mm256_set1_epi32(0xF))
                }
                _ => {
                    let word = i32::from(p.cast::<u16>().read_unaligned());
                    let shifts = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
                    let lanes = _mm256_srlv_epi32(_mm256_set1_epi32(word), shifts);
                    _mm256_and_si256(lanes, _mm256_set1_epi32(0x3))
                }
            };
            _mm256_cvtepi32_ps(codes)
        }
    }

    /// Q4: the eight bytes zero-extended to the lanes, their low nibbles (the even
    /// elements) and their high nibbles (the odd ones): three instructions for sixteen
    /// codes where two [`QuantSimd::load_codes`] take six, and no variable shift, which
    /// Zen 3 runs on one port only. Other widths: two `load_codes`.
    #[inline(always)]
    unsafe fn load_code_pair<const BITS: u32>(p: *const u8) -> (__m256, __m256) {
        // SAFETY: only called from code compiled with AVX2 (the trait's contract); the
        // caller provides the `2 · 8 · BITS / 8` bytes read here, unaligned.
        unsafe {
            if BITS == 4 {
                let bytes = _mm256_cvtepu8_epi32(_mm_loadl_epi64(p.cast()));
                let even = _mm256_and_si256(bytes, _mm256_set1_epi32(0xF));
                let odd = _mm256_srli_epi32::<4>(bytes);
                (_mm256_cvtepi32_ps(even), _mm256_cvtepi32_ps(odd))
            } else {
                let second = p.add(sls_quant::code_bytes::<BITS>(8));
                (
                    Self::load_codes::<BITS>(p),
                    Self::load_codes::<BITS>(second),
                )
            }
        }
    }

    /// Q4: the even and odd elements of [`Avx2::load_code_pair`] interleaved back.
    #[inline(always)]
    unsafe fn unpair_codes<const BITS: u32>(even: __m256, odd: __m256) -> (__m256, __m256) {
        // SAFETY: shuffles only; the CPU has AVX2 (the trait's contract).
        unsafe {
            if BITS == 4 {
                // Elements 0, 1, 2, 3 | 8, 9, 10, 11 and 4, 5, 6, 7 | 12, 13, 14, 15.
                let (low, high) = (_mm256_unpacklo_ps(even, odd), _mm256_unpackhi_ps(even, odd));
                (
                    _mm256_permute2f128_ps::<0x20>(low, high),
                    _mm256_permute2f128_ps::<0x31>(low, high),
                )
            } else {
                (even, odd)
            }
        }
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

/// AVX2 embedding bags over quantized rows with `BITS`-bit codes (8: Q8, 4: Q4, 2: Q2);
/// `NV > 0` specialises the dimension to `8 · NV`, `NV == 0` takes any dimension.
///
/// # Safety
///
/// The CPU has AVX2, FMA and F16C. The arguments passed the checks that
/// [`crate::registry::EmbeddingBagFn`] lists, the table is in the format with `BITS`-bit
/// codes, and its dimension is `8 · NV` when `NV > 0`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn embedding_bag<const BITS: u32, const NV: usize>(
    table: &Table<'_>,
    bags: &Bags<'_>,
    pooling: Pooling,
    out: &mut Output<'_>,
    out_stride: usize,
    prefetch: Prefetch,
) -> Result<()> {
    // SAFETY: this function's contract is `sls_quant::embedding_bag`'s, with AVX2 enabled.
    unsafe {
        sls_quant::embedding_bag::<Avx2, BITS, NV>(table, bags, pooling, out, out_stride, prefetch)
    }
}

sls_quant::quant_kernel_table!(embedding_bag, lanes = 8, dims = [16, 32, 64, 128, 256]);
