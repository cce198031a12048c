//! The f32 fused-multiply-add peak, for [`crate::limits::f32_fma_peak`]: independent
//! chains of the vector FMA every float kernel uses (the embedding bags' [`Simd`]), one
//! `#[target_feature]` entry per level.

use crate::arch::sls::Simd;

/// Independent accumulator chains: an FMA has 4 cycles of latency and two issue per cycle
/// on current x86 and Arm server cores, so 8 chains fill the pipes; 12 leave slack while
/// fitting the 16 registers of AVX2 (with the two operands).
const CHAINS: usize = 12;

/// f32 FMAs (2 flops each) per round at `lanes` lanes per vector.
pub(crate) const fn flops_per_round(lanes: usize) -> u64 {
    (CHAINS * lanes * 2) as u64
}

/// Runs `rounds` rounds of [`CHAINS`] independent `acc = w · x + acc` and returns a value
/// that depends on every one of them.
///
/// # Safety
///
/// The CPU runs `S`'s instructions.
#[inline(always)]
unsafe fn fma_peak<S: Simd>(rounds: u64, w: f32, x: f32) -> f32 {
    let mut out = [0f32; 16];
    // SAFETY: the caller guarantees the CPU support; `out` holds a whole vector (at most
    // 16 lanes).
    unsafe {
        let (w, x) = (S::splat(w), S::splat(x));
        // Distinct starting values, so that no two chains are provably equal and merged.
        let mut acc: [S::V; CHAINS] = std::array::from_fn(|c| S::splat(c as f32));
        for _ in 0..rounds {
            for a in &mut acc {
                *a = S::fma(w, x, *a);
            }
        }
        let total = acc.iter().fold(S::zero(), |s, &a| S::add(s, a));
        S::store::<{ crate::arch::sls::ROW_F32 }>(out.as_mut_ptr().cast(), total);
    }
    out.iter().sum()
}

/// [`fma_peak`] with AVX2 + FMA (8 lanes).
///
/// # Safety
///
/// The CPU has AVX2, FMA and F16C.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn fma_peak_avx2(rounds: u64, w: f32, x: f32) -> f32 {
    // SAFETY: AVX2 is enabled here and the caller guarantees the CPU has it.
    unsafe { fma_peak::<crate::arch::x86_64::sls_avx2::Avx2>(rounds, w, x) }
}

/// [`fma_peak`] with AVX-512 (16 lanes).
///
/// # Safety
///
/// The CPU has AVX-512 F, BW and VL (and AVX2, FMA, F16C).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn fma_peak_avx512(rounds: u64, w: f32, x: f32) -> f32 {
    // SAFETY: AVX-512 is enabled here and the caller guarantees the CPU has it.
    unsafe { fma_peak::<crate::arch::x86_64::sls_avx512::Avx512>(rounds, w, x) }
}

/// [`fma_peak`] with NEON (4 lanes).
///
/// # Safety
///
/// The CPU has NEON.
#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "neon")]
pub(crate) unsafe fn fma_peak_neon(rounds: u64, w: f32, x: f32) -> f32 {
    // SAFETY: NEON is enabled here and the caller guarantees the CPU has it.
    unsafe { fma_peak::<crate::arch::aarch64::sls_neon::Neon>(rounds, w, x) }
}
