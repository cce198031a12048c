//! The 64-bit multiply-add peak with AVX-512 DQ (`vpmullq` + `vpaddq`), for
//! [`crate::limits`]: the yardstick of the i64 GEMM.

use std::arch::x86_64::*;

/// Independent accumulator chains. A step is `vpmullq` (about 15 cycles of latency, one
/// issue every 1.5 cycles) then `vpaddq`, so at least 11 chains are needed to keep the
/// multiplier busy; 16 leave room and fit the 32 registers.
const CHAINS: usize = 16;

/// 64-bit multiply-adds (2 ops each) per loop round: 8 lanes per chain.
pub const I64_MADD_OPS_PER_ROUND: u64 = CHAINS as u64 * 8 * 2;

/// Runs `rounds` rounds of [`CHAINS`] multiply-adds `acc[c] + a · acc[c + 1]` (all from the
/// previous round, so every round depends on the one before and the products cannot be
/// hoisted or factored) and returns a value that depends on every one of them.
///
/// # Safety
///
/// The CPU must support AVX-512 F and DQ.
#[target_feature(enable = "avx512f,avx512dq")]
pub unsafe fn i64_madd_peak(rounds: u64, a: i64) -> i64 {
    let va = _mm512_set1_epi64(a);
    // Distinct starting values, so that no two chains are provably equal and merged.
    let mut acc: [__m512i; CHAINS] = std::array::from_fn(|c| _mm512_set1_epi64(c as i64 + 1));
    for _ in 0..rounds {
        let prev = acc;
        for (c, x) in acc.iter_mut().enumerate() {
            *x = _mm512_add_epi64(prev[c], _mm512_mullo_epi64(va, prev[(c + 1) % CHAINS]));
        }
    }
    let total = acc
        .iter()
        .fold(_mm512_setzero_si512(), |s, &c| _mm512_add_epi64(s, c));
    _mm512_reduce_add_epi64(total)
}
