//! Embedding bags over Q8 / Q4 / Q2 rows with AVX2, FMA and F16C: eight f32 lanes.
//!
//! Eight codes take 8, 4 or 2 bytes. Q8 zero-extends its bytes. Q4 and Q2 take eight bytes
//! at a time, zero-extended to the lanes, and split each byte by constant shifts and masks
//! into its two nibbles (sixteen Q4 codes) or four crumbs (thirty-two Q2 codes), lanes
//! permuted and put back after the bag. A vector left over (and a partial one) broadcasts
//! the 16-bit (or 32-bit) word holding its eight codes to every lane and shifts each lane
//! right by its own code's bit offset (`vpsrlvd`), then masks. Q2 by crumbs against
//! `vpsrlvd` for every vector, Zen 3, paired in one process: in-L1 table 1.43× the rows per
//! second at dimension 64, 1.33× at 128, 1.13× at 100 (the general kernel); bags of 100
//! over a 1 GiB table, dimension 64, 1.6–1.9×.
//!
//! Sixteen registers hold eight accumulators with room for the rest, so rows of
//! dimension 128 and 256 go in passes of eight vectors ([`QuantSimd::MAX_ACC`]). Bags of
//! 100 over a 1 GiB table on Zen 3 (AMD EPYC, paired ratio to the random-gather limit at
//! the row's size): Q8 dimension 128 from 0.77 to about 1.0, Q4 128 from 0.54 to about
//! 0.85; Q4 64 from 0.73 to about 1.05 (noisy: another job loaded the machine).

use std::arch::x86_64::*;

use crate::arch::sls_quant::{self, MAX_GROUP, QuantSimd};
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

    /// Q4 pairs and Q2 quads (the default pairs for Q8).
    #[inline(always)]
    fn code_group<const BITS: u32>() -> usize {
        match BITS {
            2 => 4,
            _ => 2,
        }
    }

    /// Eight bytes zero-extended to the lanes, then each byte's codes by shifts and masks
    /// by a constant: Q4's low nibbles (the even elements) and high nibbles (the odd
    /// ones), Q2's four crumbs (elements `4l + c` in lane `l` of vector `c`). Three
    /// instructions for sixteen Q4 codes, seven for thirty-two Q2 codes, where
    /// [`QuantSimd::load_codes`] takes three for eight, one of them a variable shift,
    /// which Zen 3 runs on one port only. Q8: two `load_codes`.
    #[inline(always)]
    unsafe fn load_code_group<const BITS: u32>(p: *const u8) -> [__m256; MAX_GROUP] {
        // SAFETY: only called from code compiled with AVX2 (the trait's contract); the
        // caller provides the `G · 8 · BITS / 8` bytes read here, unaligned.
        unsafe {
            let mut group = [_mm256_setzero_ps(); MAX_GROUP];
            match BITS {
                4 | 2 => {
                    let bytes = _mm256_cvtepu8_epi32(_mm_loadl_epi64(p.cast()));
                    let mask = _mm256_set1_epi32((1 << BITS) - 1);
                    // The highest codes need no mask: the shift leaves nothing above them.
                    group[0] = _mm256_cvtepi32_ps(_mm256_and_si256(bytes, mask));
                    if BITS == 4 {
                        group[1] = _mm256_cvtepi32_ps(_mm256_srli_epi32::<4>(bytes));
                    } else {
                        let (c1, c2) =
                            (_mm256_srli_epi32::<2>(bytes), _mm256_srli_epi32::<4>(bytes));
                        group[1] = _mm256_cvtepi32_ps(_mm256_and_si256(c1, mask));
                        group[2] = _mm256_cvtepi32_ps(_mm256_and_si256(c2, mask));
                        group[3] = _mm256_cvtepi32_ps(_mm256_srli_epi32::<6>(bytes));
                    }
                }
                _ => {
                    group[0] = Self::load_codes::<BITS>(p);
                    group[1] = Self::load_codes::<BITS>(p.add(sls_quant::code_bytes::<BITS>(8)));
                }
            }
            group
        }
    }

    /// The lanes of [`Avx2::load_code_group`] back in element order.
    #[inline(always)]
    unsafe fn ungroup_codes<const BITS: u32>(g: [__m256; MAX_GROUP]) -> [__m256; MAX_GROUP] {
        // SAFETY: shuffles only; the CPU has AVX2 (the trait's contract).
        unsafe {
            match BITS {
                4 => {
                    // Elements 0, 1, 2, 3 | 8, 9, 10, 11 and 4, 5, 6, 7 | 12, 13, 14, 15.
                    let (low, high) = (
                        _mm256_unpacklo_ps(g[0], g[1]),
                        _mm256_unpackhi_ps(g[0], g[1]),
                    );
                    [
                        _mm256_permute2f128_ps::<0x20>(low, high),
                        _mm256_permute2f128_ps::<0x31>(low, high),
                        g[2],
                        g[3],
                    ]
                }
                2 => {
                    // Lane `l` of the four vectors is elements `4l .. 4l + 4`: a 4 × 8
                    // transpose. `u[r]` holds lanes `r` and `r + 4`, each as four elements.
                    let t = [
                        _mm256_unpacklo_ps(g[0], g[1]),
                        _mm256_unpackhi_ps(g[0], g[1]),
                        _mm256_unpacklo_ps(g[2], g[3]),
                        _mm256_unpackhi_ps(g[2], g[3]),
                    ];
                    let (pd, ps) = (_mm256_castps_pd, _mm256_castpd_ps);
                    let u = [
                        ps(_mm256_unpacklo_pd(pd(t[0]), pd(t[2]))),
                        ps(_mm256_unpackhi_pd(pd(t[0]), pd(t[2]))),
                        ps(_mm256_unpacklo_pd(pd(t[1]), pd(t[3]))),
                        ps(_mm256_unpackhi_pd(pd(t[1]), pd(t[3]))),
                    ];
                    [
                        _mm256_permute2f128_ps::<0x20>(u[0], u[1]),
                        _mm256_permute2f128_ps::<0x20>(u[2], u[3]),
                        _mm256_permute2f128_ps::<0x31>(u[0], u[1]),
                        _mm256_permute2f128_ps::<0x31>(u[2], u[3]),
                    ]
                }
                _ => g,
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
