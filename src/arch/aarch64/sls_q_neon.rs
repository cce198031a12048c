//! Embedding bags over Q8 / Q4 / Q2 rows with NEON (Advanced SIMD): four f32 lanes.
//!
//! Sixteen codes (16, 8 or 4 bytes) at a time: the bytes are split so that each holds one
//! code (Q4 duplicates its eight bytes into both halves of a vector and shifts one half
//! right by a nibble; Q2 its four bytes into the four lanes, each shifted by its crumb's
//! offset; then a mask), and four table lookups (`tbl`, whose out-of-range indices give
//! zero) widen them to four vectors of u32 lanes in element order, converted to f32:
//! eleven instructions for sixteen Q4 or Q2 codes and nine for Q8 in the compiled loops,
//! where a vector at a time took twenty (per four codes a load, a duplicate, a shift, a
//! mask and the conversion) and sixteen. Counted, not measured: no Arm hardware was at
//! hand, and the tests run these paths under qemu for their bits only. A vector left over,
//! and a partial one, still duplicates the word holding its four codes to every lane and
//! shifts each lane right by its own code's bit offset (`ushl` by a negative amount).

use std::arch::aarch64::*;
use std::arch::asm;

use crate::arch::aarch64::sls_neon::Neon;
use crate::arch::sls_quant::{self, MAX_GROUP, QuantSimd};
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

/// The sixteen codes of `BITS` bits at `p` (16, 8 or 4 bytes, unaligned), one per byte in
/// the order [`widen_index`] reads them.
///
/// # Safety
///
/// The CPU has NEON; the `16 · BITS / 8` bytes at `p` are readable.
#[inline(always)]
unsafe fn split_codes<const BITS: u32>(p: *const u8) -> uint8x16_t {
    // SAFETY: only called from code compiled with NEON; the caller provides the bytes read,
    // and the shift counts are two readable i64 or four readable i32.
    unsafe {
        match BITS {
            8 => vld1q_u8(p),
            4 => {
                // Bytes 0..8 keep the low nibbles, bytes 8..16 get the high ones.
                let word = vdupq_n_u64(p.cast::<u64>().read_unaligned());
                let shifted = vshlq_u64(word, vld1q_s64([0, -4].as_ptr()));
                vandq_u8(vreinterpretq_u8_u64(shifted), vdupq_n_u8(0xF))
            }
            _ => {
                // Byte `k` of lane `c` gets crumb `c` of byte `k`.
                let word = vdupq_n_u32(p.cast::<u32>().read_unaligned());
                let shifted = vshlq_u32(word, vld1q_s32([0, -2, -4, -6].as_ptr()));
                vandq_u8(vreinterpretq_u8_u32(shifted), vdupq_n_u8(0x3))
            }
        }
    }
}

/// The `tbl` indices that widen elements `4v .. 4v + 4` of sixteen codes split by
/// [`split_codes`] to u32 lanes: lane `m`'s low byte is the byte holding element `4v + m`,
/// its other three bytes index past the table and read as zero.
const fn widen_index<const BITS: u32>(v: usize) -> [u8; 16] {
    let mut index = [0xFF; 16];
    let mut m = 0;
    while m < 4 {
        let e = 4 * v + m;
        index[4 * m] = match BITS {
            8 => e,
            4 => (e % 2) * 8 + e / 2,
            _ => (e % 4) * 4 + e / 4,
        } as u8;
        m += 1;
    }
    index
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

    /// Four vectors for every level: sixteen codes, the most one `tbl` table holds at Q8.
    #[inline(always)]
    fn code_group<const BITS: u32>() -> usize {
        MAX_GROUP
    }

    /// [`split_codes`], then each vector's four codes widened by a table lookup, in
    /// element order (so [`QuantSimd::ungroup_codes`] stays the identity).
    #[inline(always)]
    unsafe fn load_code_group<const BITS: u32>(p: *const u8) -> [float32x4_t; MAX_GROUP] {
        // SAFETY: only called from code compiled with NEON (the trait's contract); the
        // caller provides the `16 · BITS / 8` bytes read by `split_codes`; each index
        // table is sixteen readable bytes.
        unsafe {
            let codes = split_codes::<BITS>(p);
            let indices = const {
                [
                    widen_index::<BITS>(0),
                    widen_index::<BITS>(1),
                    widen_index::<BITS>(2),
                    widen_index::<BITS>(3),
                ]
            };
            let mut group = [vdupq_n_f32(0.0); MAX_GROUP];
            for (g, index) in group.iter_mut().zip(&indices) {
                let lanes = vqtbl1q_u8(codes, vld1q_u8(index.as_ptr()));
                *g = vcvtq_f32_u32(vreinterpretq_u32_u8(lanes));
            }
            group
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
