//! The int8 dot-product peak with AVX-512 VNNI (`vpdpbusd`), for [`crate::limits`].

use std::arch::x86_64::*;

/// Independent accumulator chains: `vpdpbusd` has 5 cycles of latency and up to two issue
/// per cycle, so at least 10 chains are needed to keep it busy.
const CHAINS: usize = 12;

/// u8 × i8 multiply-adds (2 ops each) per loop round: 64 byte pairs per chain.
pub const DOT_OPS_PER_ROUND: u64 = CHAINS as u64 * 64 * 2;

/// Runs `rounds` rounds of [`CHAINS`] independent `vpdpbusd` (64 u8 × i8 products summed
/// into 16 i32 lanes each) and returns a value that depends on every one of them.
///
/// # Safety
///
/// The CPU must support AVX-512 F and AVX-512 VNNI.
#[target_feature(enable = "avx512f,avx512vnni")]
pub unsafe fn dot_peak(rounds: u64, a: u8, b: i8) -> i32 {
    let va = _mm512_set1_epi8(a as i8);
    let vb = _mm512_set1_epi8(b);
    // Distinct starting values, so that no two chains are provably equal and merged.
    let mut acc: [__m512i; CHAINS] = std::array::from_fn(|c| _mm512_set1_epi32(c as i32));
    for _ in 0..rounds {
        for c in &mut acc {
            *c = _mm512_dpbusd_epi32(*c, va, vb);
        }
    }
    let total = acc
        .iter()
        .fold(_mm512_setzero_si512(), |s, &c| _mm512_add_epi32(s, c));
    _mm512_reduce_add_epi32(total)
}
