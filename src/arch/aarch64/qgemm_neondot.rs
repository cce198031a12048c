//! u8 × i8 GEMM with the NEON dot-product extension (`sdot`, through `asm!`: stable Rust
//! has no `vdotq_s32`).
//!
//! `sdot` multiplies i8 by i8, and `udot` u8 by u8; neither takes u8 × i8 (`usdot` needs
//! i8mm, which a dot-product-only CPU lacks). So A is offset into i8: `a' = a − 128`
//! (`a ^ 0x80` as i8), and `Σ a·b = Σ a'·b + 128 · Σ b`: each accumulator starts at
//! `128 · col_sum[j]`, wrapping like every other term, so the result is the exact
//! wrapping sum on every CPU with the extension.
//!
//! A 64-byte packed line is four q registers of 4 columns × 4 k, one `sdot` each. Register
//! tile: 4 rows × 1 panel = 16 accumulators, 4 line registers and one A register.

use std::arch::aarch64::*;
use std::arch::asm;

use crate::arch::qgemm::{self, Dot, Epi};
use crate::error::Result;
use crate::gemm::{GemmOutput, OutputStage, U8I8Block};

/// The NEON dot-product K step and the NEON epilogue.
pub(crate) struct NeonDot;

impl Dot for NeonDot {
    const MR: usize = 4;
    const NP: usize = 1;
    const NP1: usize = 2;
    const LINE_BYTES: usize = 64;
    /// A[k..k + 4] − 128 as i8, repeated over the 16 bytes.
    type A = int8x16_t;
    type B = [int8x16_t; 4];
    /// Columns 0–3, 4–7, 8–11, 12–15.
    type Acc = [int32x4_t; 4];

    #[inline(always)]
    unsafe fn init(col_sums: *const i32) -> [int32x4_t; 4] {
        // SAFETY: the caller provides the panel's 16 column sums; NEON is enabled in the
        // calling kernel (the trait's contract). The shift is 128 · Σ b, wrapping.
        unsafe { std::array::from_fn(|h| vshlq_n_s32::<7>(vld1q_s32(col_sums.add(4 * h)))) }
    }

    #[inline(always)]
    unsafe fn a(quad: u32) -> int8x16_t {
        // SAFETY: as for `init`.
        unsafe { vreinterpretq_s8_u32(vdupq_n_u32(quad ^ 0x8080_8080)) }
    }

    #[inline(always)]
    unsafe fn b(p: *const i8) -> [int8x16_t; 4] {
        // SAFETY: the caller provides a 64-byte line at `p`.
        unsafe { std::array::from_fn(|h| vld1q_s8(p.add(16 * h))) }
    }

    #[inline(always)]
    unsafe fn dot(mut acc: [int32x4_t; 4], a: int8x16_t, b: [int8x16_t; 4]) -> [int32x4_t; 4] {
        for (sum, line) in acc.iter_mut().zip(b) {
            // SAFETY: `sdot` only reads and writes the named vector registers; the calling
            // kernel runs only where the dot-product extension is present.
            unsafe {
                asm!(
                    "sdot {acc:v}.4s, {b:v}.16b, {a:v}.16b",
                    acc = inout(vreg) *sum,
                    b = in(vreg) line,
                    a = in(vreg) a,
                    options(pure, nomem, nostack, preserves_flags)
                );
            }
        }
        acc
    }

    #[inline(always)]
    unsafe fn store(acc: [int32x4_t; 4], out: *mut i32) {
        // SAFETY: the caller provides 16 writable i32 at `out`.
        unsafe {
            for (h, sum) in acc.into_iter().enumerate() {
                vst1q_s32(out.add(4 * h), sum);
            }
        }
    }
}

impl Epi for NeonDot {
    const LANES: usize = 4;
    type I = int32x4_t;
    type F = float32x4_t;

    #[inline(always)]
    unsafe fn splat_i(x: i32) -> int32x4_t {
        // SAFETY: NEON is enabled in the calling kernel (the trait's contract).
        unsafe { vdupq_n_s32(x) }
    }
    #[inline(always)]
    unsafe fn splat_f(x: f32) -> float32x4_t {
        // SAFETY: as for `splat_i`.
        unsafe { vdupq_n_f32(x) }
    }
    #[inline(always)]
    unsafe fn load_i(p: *const i32) -> int32x4_t {
        // SAFETY: the caller provides 4 readable i32.
        unsafe { vld1q_s32(p) }
    }
    #[inline(always)]
    unsafe fn load_f(p: *const f32) -> float32x4_t {
        // SAFETY: the caller provides 4 readable f32.
        unsafe { vld1q_f32(p) }
    }
    #[inline(always)]
    unsafe fn add_i(a: int32x4_t, b: int32x4_t) -> int32x4_t {
        // SAFETY: as for `splat_i`.
        unsafe { vaddq_s32(a, b) }
    }
    #[inline(always)]
    unsafe fn mul_i(a: int32x4_t, b: int32x4_t) -> int32x4_t {
        // SAFETY: as for `splat_i`. `mul` keeps the low 32 bits: wrapping.
        unsafe { vmulq_s32(a, b) }
    }
    #[inline(always)]
    unsafe fn to_f(a: int32x4_t) -> float32x4_t {
        // SAFETY: as for `splat_i`. `scvtf` rounds by FPCR, nearest-even in Rust code.
        unsafe { vcvtq_f32_s32(a) }
    }
    #[inline(always)]
    unsafe fn add_f(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: as for `splat_i`.
        unsafe { vaddq_f32(a, b) }
    }
    #[inline(always)]
    unsafe fn mul_f(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: as for `splat_i`.
        unsafe { vmulq_f32(a, b) }
    }
    #[inline(always)]
    unsafe fn div_f(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: as for `splat_i`.
        unsafe { vdivq_f32(a, b) }
    }
    #[inline(always)]
    unsafe fn relu_f(y: float32x4_t) -> float32x4_t {
        // SAFETY: as for `splat_i`. Only lanes with y < 0 become +0.0; −0.0 and NaN fail
        // the comparison and pass.
        unsafe {
            let zero = vdupq_n_f32(0.0);
            vbslq_f32(vcltq_f32(y, zero), zero, y)
        }
    }
    #[inline(always)]
    unsafe fn round_clamp(y: float32x4_t, lo: float32x4_t, hi: float32x4_t) -> int32x4_t {
        // SAFETY: as for `splat_i`. NaN lanes take `lo` before the clamp (`fmax` would
        // pass them on); `fcvtns` rounds the clamped value half to even.
        unsafe {
            let y = vbslq_f32(vceqq_f32(y, y), y, lo);
            vcvtnq_s32_f32(vminq_f32(vmaxq_f32(y, lo), hi))
        }
    }
    #[inline(always)]
    unsafe fn store_i32(p: *mut i32, v: int32x4_t) {
        // SAFETY: the caller provides 4 writable i32.
        unsafe { vst1q_s32(p, v) }
    }
    #[inline(always)]
    unsafe fn store_f32(p: *mut f32, v: float32x4_t) {
        // SAFETY: the caller provides 4 writable f32.
        unsafe { vst1q_f32(p, v) }
    }
    #[inline(always)]
    unsafe fn store_i8(p: *mut u8, v: int32x4_t) {
        // SAFETY: the caller provides 4 writable bytes. Narrowing truncates, which keeps
        // codes already clamped to u8 or i8; the four bytes are lane 0 of the u32 view.
        unsafe {
            let half = vmovn_s32(v);
            let bytes = vmovn_s16(vcombine_s16(half, half));
            let word = vget_lane_u32::<0>(vreinterpret_u32_s8(bytes));
            p.cast::<u32>().write_unaligned(word);
        }
    }
}

/// The u8 × i8 GEMM block with NEON and the dot-product extension.
///
/// # Safety
///
/// The CPU supports NEON and the dot-product extension; the arguments passed
/// `U8I8Block::validate` (the registry's `GemmU8I8Fn` contract).
#[target_feature(enable = "neon,dotprod")]
pub(crate) unsafe fn gemm_u8i8(
    block: &U8I8Block<'_>,
    stage: &OutputStage<'_>,
    out: &mut GemmOutput<'_>,
    out_stride: usize,
) -> Result<()> {
    // SAFETY: compiled for NEON with dot product; the arguments are validated (the
    // caller's contract).
    unsafe { qgemm::gemm::<NeonDot, NeonDot>(block, stage, out, out_stride) }
}
