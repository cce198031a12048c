//! The int8 dot-product peak with the NEON dot-product extension (`sdot`), for
//! [`crate::limits`]. Stable Rust has no `vdotq_s32` intrinsic, so the instruction is
//! written with `asm!`.

use std::arch::aarch64::*;
use std::arch::asm;

/// Independent accumulator chains: enough to cover `sdot`'s latency (3–4 cycles) on cores
/// that issue up to four per cycle.
const CHAINS: usize = 16;

/// i8 × i8 multiply-adds (2 ops each) per loop round: 16 byte pairs per chain.
pub const DOT_OPS_PER_ROUND: u64 = CHAINS as u64 * 16 * 2;

/// Runs `rounds` rounds of [`CHAINS`] independent `sdot` (16 i8 × i8 products summed into
/// 4 i32 lanes each) and returns a value that depends on every one of them.
///
/// # Safety
///
/// The CPU must support NEON and the dot-product extension.
#[target_feature(enable = "neon,dotprod")]
pub unsafe fn dot_peak(rounds: u64, a: i8, b: i8) -> i32 {
    let va = vdupq_n_s8(a);
    let vb = vdupq_n_s8(b);
    // Distinct starting values, so that no two chains are provably equal and merged.
    let mut acc: [int32x4_t; CHAINS] = std::array::from_fn(|c| vdupq_n_s32(c as i32));
    for _ in 0..rounds {
        for c in &mut acc {
            // SAFETY: `sdot` only reads and writes the named vector registers; the caller
            // guarantees the dot-product extension.
            unsafe {
                asm!(
                    "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
                    acc = inout(vreg) *c,
                    a = in(vreg) va,
                    b = in(vreg) vb,
                    options(nomem, nostack, preserves_flags)
                );
            }
        }
    }
    vaddvq_s32(acc.iter().fold(vdupq_n_s32(0), |s, &c| vaddq_s32(s, c)))
}
