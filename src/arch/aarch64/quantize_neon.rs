//! Row-wise quantizers and dequantizers with NEON: four f32 lanes (the vector of
//! `sls_neon`, plus min/max and byte codes).

use std::arch::aarch64::*;

use crate::arch::aarch64::sls_neon::Neon;
use crate::arch::quantize::{QuantSimd, quantize_kernels};

impl QuantSimd for Neon {
    #[inline(always)]
    unsafe fn min(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: only called from code compiled with NEON (the trait's contract).
        unsafe { vminq_f32(a, b) }
    }

    #[inline(always)]
    unsafe fn max(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: as for `min`.
        unsafe { vmaxq_f32(a, b) }
    }

    #[inline(always)]
    unsafe fn reduce_min(v: float32x4_t) -> f32 {
        // SAFETY: as for `min`.
        unsafe { vminvq_f32(v) }
    }

    #[inline(always)]
    unsafe fn reduce_max(v: float32x4_t) -> f32 {
        // SAFETY: as for `min`.
        unsafe { vmaxvq_f32(v) }
    }

    #[inline(always)]
    unsafe fn store_codes(p: *mut u8, v: float32x4_t) {
        // SAFETY: as for `min`; the caller provides four writable bytes at `p`, written
        // unaligned. `fcvtns` rounds to nearest even; lanes in [0, 255] pass both
        // saturating narrowings unchanged.
        unsafe {
            let half = vqmovun_s32(vcvtnq_s32_f32(v));
            let bytes = vqmovn_u16(vcombine_u16(half, half));
            p.cast::<u32>()
                .write_unaligned(vget_lane_u32::<0>(vreinterpret_u32_u8(bytes)));
        }
    }

    #[inline(always)]
    unsafe fn load_codes(p: *const u8) -> float32x4_t {
        // SAFETY: as for `min`; the caller provides four readable bytes at `p`, read
        // unaligned.
        unsafe {
            let bytes = vreinterpret_u8_u32(vdup_n_u32(p.cast::<u32>().read_unaligned()));
            vcvtq_f32_u32(vmovl_u16(vget_low_u16(vmovl_u8(bytes))))
        }
    }
}

quantize_kernels!(Neon, "neon", "NEON");
