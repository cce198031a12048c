//! Machine-limit micro-loops with AVX2, for [`crate::limits`]: the int8 dot-product peak
//! (`vpmaddubsw` + `vpmaddwd`, the pre-VNNI way to multiply u8 by i8) and memory reads
//! through 256-bit loads.

use std::arch::x86_64::*;

/// Independent accumulator chains. Each chain is `vpmaddubsw` → `vpmaddwd` → `vpaddd`,
/// about 11 cycles of latency; with two multiply ports, 12 chains keep both busy.
const CHAINS: usize = 12;

/// u8 × i8 multiply-adds (2 ops each) per loop round: 32 byte pairs per chain.
pub const DOT_OPS_PER_ROUND: u64 = CHAINS as u64 * 32 * 2;

/// Runs `rounds` rounds of [`CHAINS`] independent u8 × i8 dot-product steps, each
/// multiplying 32 bytes of `a` by the 32 bytes of its own accumulator, and returns a value
/// that depends on every step (so none can be optimised away).
///
/// # Safety
///
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn dot_peak(rounds: u64, a: u8) -> i32 {
    let va = _mm256_set1_epi8(a as i8);
    let ones = _mm256_set1_epi16(1);
    // Distinct starting values, so that no two chains are provably equal and merged.
    let mut acc: [__m256i; CHAINS] = std::array::from_fn(|c| _mm256_set1_epi32(c as i32));
    for _ in 0..rounds {
        for c in &mut acc {
            // The accumulator doubles as the i8 operand so that the multiplies depend on
            // the previous round and cannot be hoisted out of the loop.
            let pairs = _mm256_maddubs_epi16(va, *c);
            *c = _mm256_add_epi32(*c, _mm256_madd_epi16(pairs, ones));
        }
    }
    let total = acc
        .iter()
        .fold(_mm256_setzero_si256(), |s, &c| _mm256_add_epi32(s, c));
    let half = _mm_add_epi32(
        _mm256_castsi256_si128(total),
        _mm256_extracti128_si256::<1>(total),
    );
    let pair = _mm_add_epi32(half, _mm_shuffle_epi32::<0b01_00_11_10>(half));
    _mm_cvtsi128_si32(_mm_add_epi32(
        pair,
        _mm_shuffle_epi32::<0b10_11_00_01>(pair),
    ))
}

/// [`crate::limits::fold`] compiled for AVX2 (256-bit loads).
///
/// # Safety
///
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn fold(bytes: &[u8]) -> u64 {
    crate::limits::fold(bytes)
}

/// [`crate::limits::gather_rows`] compiled for AVX2 (256-bit loads).
///
/// # Safety
///
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn gather_rows(
    table: &[u8],
    row_bytes: usize,
    rows: &[u32],
    prefetch: Option<crate::embedding::plan::Prefetch>,
) -> u64 {
    crate::limits::gather_rows(table, row_bytes, rows, prefetch)
}
