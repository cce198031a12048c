//! Embedding bags over Q8 / Q4 / Q2 rows with NEON (Advanced SIMD): four f32 lanes.
//!
//! Four codes take 4, 2 or 1 bytes. Q8 widens its bytes twice; Q4 and Q2 duplicate the
//! word holding the four codes to every lane and shift each lane right by its own code's
//! bit offset (`ushl` by a negative amount), then mask.

use std::arch::aarch64::*;
use std::arch::asm;

use crate::arch::aarch64::sls_neon::Neon;
use crate::arch::sls_quant::{self, QuantSimd};
use crate::embedding::plan::Prefetch;
use crate::embedding::{Bags, Output, Pooling};
use crate::error::Result;
use crate::format::Table;

/// Four lanes of `word`, lane `i` shifted right by `i · BITS` bits and masked to `BITS`.
#[inline(always)]
unsafe fn spread<const BITS: u32>(word: u32) -> uint32x4_t {
    let step = BITS as i32;
    let shifts = [0, -step, -2 * step, -3 * step];
    // SAFETY: only called from code compiled with NEON; `shifts` is four readable i32.
    unsafe {
        let lanes = vshlq_u32(vdupq_n_u32(word), vld1q_s32(shifts.as_ptr()));
        vandq_u32(lanes, vdupq_n_u32((1 << BITS) - 1))
    }
}

impl QuantSimd for Neon {
    /// Sixteen accumulators leave the other half of the 32 vector registers to the scale,
    /// the bias and the codes. With one accumulator per vector of a whole row, the
    /// dimension-256 kernels (64 four-lane accumulators) stored and reloaded accumulators
    /// on the stack inside their row loops (about 2,800 `ldr`/`str` of `q` registers
    /// against `sp` next to the conversions; none after). Dimensions 128 and 256 now go
    /// in passes of eight vectors, as on AVX2; inspected in the compiled code, not
    /// measured on Arm hardware.
    const MAX_ACC: usize = 16;

    #[inline(always)]
    unsafe fn load_codes<const BITS: u32>(p: *const u8) -> float32x4_t {
        // SAFETY: only called from code compiled with NEON (the trait's contract); the
        // caller provides the `4 · BITS / 8` bytes read here, unaligned.
        unsafe {
            let codes = match BITS {
                8 => {
                    let bytes = vreinterpret_u8_u32(vdup_n_u32(p.cast::<u32>().read_unaligned()));
                    vmovl_u16(vget_low_u16(vmovl_u8(bytes)))
                }
                4 => spread::<4>(u32::from(p.cast::<u16>().read_unaligned())),
                _ => spread::<2>(u32::from(*p)),
            };
            vcvtq_f32_u32(codes)
        }
    }

    #[inline(always)]
    unsafe fn widen_f16_pair(p: *const u8) -> (f32, f32) {
        // SAFETY: the caller provides four readable bytes; `fcvtl` widens binary16 exactly
        // and touches no memory.
        unsafe {
            let h = vcreate_u16(u64::from(p.cast::<u32>().read_unaligned()));
            let f: float32x4_t;
            asm!(
                "fcvtl {f:v}.4s, {h:v}.4h",
                f = lateout(vreg) f,
                h = in(vreg) h,
                options(pure, nomem, nostack, preserves_flags)
            );
            (vgetq_lane_f32::<0>(f), vgetq_lane_f32::<1>(f))
        }
    }
}

/// NEON embedding bags over quantized rows with `BITS`-bit codes (8: Q8, 4: Q4, 2: Q2);
/// `NV > 0` specialises the dimension to `4 · NV`, `NV == 0` takes any dimension.
///
/// # Safety
///
/// The CPU has NEON. The arguments passed the checks that
/// [`crate::registry::EmbeddingBagFn`] lists, the table is in the format with `BITS`-bit
/// codes, and its dimension is `4 · NV` when `NV > 0`.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn embedding_bag<const BITS: u32, const NV: usize>(
    table: &Table<'_>,
    bags: &Bags<'_>,
    pooling: Pooling,
    out: &mut Output<'_>,
    out_stride: usize,
    prefetch: Prefetch,
) -> Result<()> {
    // SAFETY: this function's contract is `sls_quant::embedding_bag`'s, with NEON enabled.
    unsafe {
        sls_quant::embedding_bag::<Neon, BITS, NV>(table, bags, pooling, out, out_stride, prefetch)
    }
}

sls_quant::quant_kernel_table!(embedding_bag, lanes = 4, dims = [16, 32, 64, 128, 256]);
