//! Embedding bags over f32 / f16 / bf16 rows with NEON (Advanced SIMD): four f32 lanes.
//!
//! The binary16 conversions (`fcvtl`, `fcvtn`) are in the base aarch64 instruction set but
//! their intrinsics need Rust's unstable `f16` type, so they are written with `asm!`.

use std::arch::aarch64::*;
use std::arch::asm;

use crate::arch::sls::{self, ROW_F16, ROW_F32, Simd};
use crate::embedding::plan::Prefetch;
use crate::embedding::{Bags, Output, Pooling};
use crate::error::Result;
use crate::format::Table;

/// The NEON vector: four f32.
pub(crate) struct Neon;

impl Simd for Neon {
    const LANES: usize = 4;
    type V = float32x4_t;

    #[inline(always)]
    unsafe fn zero() -> float32x4_t {
        // SAFETY: only called from code compiled with NEON (the trait's contract).
        unsafe { vdupq_n_f32(0.0) }
    }

    #[inline(always)]
    unsafe fn splat(x: f32) -> float32x4_t {
        // SAFETY: as for `zero`.
        unsafe { vdupq_n_f32(x) }
    }

    #[inline(always)]
    unsafe fn add(acc: float32x4_t, x: float32x4_t) -> float32x4_t {
        // SAFETY: as for `zero`.
        unsafe { vaddq_f32(acc, x) }
    }

    #[inline(always)]
    unsafe fn fma(w: float32x4_t, x: float32x4_t, acc: float32x4_t) -> float32x4_t {
        // SAFETY: as for `zero`; `vfmaq_f32(a, b, c)` is `a + b · c` with one rounding.
        unsafe { vfmaq_f32(acc, w, x) }
    }

    #[inline(always)]
    unsafe fn mul(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: as for `zero`.
        unsafe { vmulq_f32(a, b) }
    }

    #[inline(always)]
    unsafe fn load<const FMT: u8>(p: *const u8) -> float32x4_t {
        // SAFETY: the caller provides four readable elements at `p`; NEON loads of f32 and
        // u16 elements need no alignment on aarch64 Linux. `fcvtl` widens binary16 exactly
        // and touches no memory; a bf16 is the upper half of an f32.
        unsafe {
            match FMT {
                ROW_F32 => vld1q_f32(p.cast()),
                ROW_F16 => {
                    let h = vld1_u16(p.cast());
                    let f: float32x4_t;
                    asm!(
                        "fcvtl {f:v}.4s, {h:v}.4h",
                        f = lateout(vreg) f,
                        h = in(vreg) h,
                        options(pure, nomem, nostack, preserves_flags)
                    );
                    f
                }
                _ => vreinterpretq_f32_u32(vshlq_n_u32::<16>(vmovl_u16(vld1_u16(p.cast())))),
            }
        }
    }

    #[inline(always)]
    unsafe fn store<const OUT: u8>(p: *mut u8, v: float32x4_t) {
        // SAFETY: the caller provides four writable elements at `p`. `fcvtn` rounds with
        // the FPCR mode, which Rust code never changes from round-to-nearest-even.
        unsafe {
            match OUT {
                ROW_F32 => vst1q_f32(p.cast(), v),
                ROW_F16 => {
                    let h: uint16x4_t;
                    asm!(
                        "fcvtn {h:v}.4h, {f:v}.4s",
                        h = lateout(vreg) h,
                        f = in(vreg) v,
                        options(pure, nomem, nostack, preserves_flags)
                    );
                    vst1_u16(p.cast(), h);
                }
                _ => vst1_u16(p.cast(), to_bf16(v)),
            }
        }
    }
}

/// Four f32 rounded to bf16 with integer operations, as `half::bf16::from_f32` does:
/// nearest, ties to even; a NaN is quieted, never rounded into an infinity.
#[inline(always)]
unsafe fn to_bf16(v: float32x4_t) -> uint16x4_t {
    // SAFETY: only called from code compiled with NEON.
    unsafe {
        let x = vreinterpretq_u32_f32(v);
        let lsb = vandq_u32(vshrq_n_u32::<16>(x), vdupq_n_u32(1));
        let bias = vaddq_u32(vdupq_n_u32(0x7FFF), lsb);
        let rounded = vshrq_n_u32::<16>(vaddq_u32(x, bias));
        let quiet = vorrq_u32(vshrq_n_u32::<16>(x), vdupq_n_u32(0x40));
        let magnitude = vandq_u32(x, vdupq_n_u32(0x7FFF_FFFF));
        let nan = vcgtq_u32(magnitude, vdupq_n_u32(0x7F80_0000));
        vmovn_u32(vbslq_u32(nan, quiet, rounded))
    }
}

/// NEON embedding bags: rows of format `FMT` (`sls::ROW_*`); `NV > 0` specialises the
/// dimension to `4 · NV`, `NV == 0` takes any dimension.
///
/// # Safety
///
/// The CPU has NEON. The arguments passed the checks that
/// [`crate::registry::EmbeddingBagFn`] lists, the table's rows are in format `FMT`, and its
/// dimension is `4 · NV` when `NV > 0`.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn embedding_bag<const FMT: u8, const NV: usize>(
    table: &Table<'_>,
    bags: &Bags<'_>,
    pooling: Pooling,
    out: &mut Output<'_>,
    out_stride: usize,
    prefetch: Prefetch,
) -> Result<()> {
    // SAFETY: this function's contract is `sls::embedding_bag`'s, with NEON enabled here.
    unsafe { sls::embedding_bag::<Neon, FMT, NV>(table, bags, pooling, out, out_stride, prefetch) }
}

sls::kernel_table!(embedding_bag, lanes = 4, dims = [16, 32, 64, 128, 256]);
