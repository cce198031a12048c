//! Row-wise quantizers and dequantizers with NEON: four f32 lanes (the vector of
//! `sls_neon`, plus min/max and byte codes).

use std::arch::aarch64::*;

use crate::arch::aarch64::sls_neon::Neon;
use crate::arch::quantize::{QuantSimd, quantize_kernels};

impl QuantSimd for Neon {
    const MIN_MAX_KEEP_NAN: bool = true;

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
    unsafe fn all_zero(v: float32x4_t) -> bool {
        // SAFETY: as for `min`; `fmaxv` returns NaN when a lane is NaN.
        unsafe { vmaxvq_f32(vabsq_f32(v)) == 0.0 }
    }

    #[inline(always)]
    unsafe fn store_codes<const BITS: u32>(p: *mut u8, v: [float32x4_t; 4]) {
        // SAFETY: as for `min`; the caller provides the `2 · BITS` writable bytes at `p`,
        // written unaligned. `fcvtns` rounds to nearest even; the saturating narrowings
        // clamp to [0, 255], then to the largest code. Neighbouring codes are joined as
        // halves of a u16, `c0 + (c1 << 8)`, by adding the u16 shifted right (`usra`): the
        // low byte becomes `c0 + (c1 << BITS)`, which the narrowing `xtn` keeps.
        unsafe {
            let codes = |x| vqmovun_s32(vcvtnq_s32_f32(x));
            let [a, b, c, d] = [codes(v[0]), codes(v[1]), codes(v[2]), codes(v[3])];
            let bytes = vcombine_u8(
                vqmovn_u16(vcombine_u16(a, b)),
                vqmovn_u16(vcombine_u16(c, d)),
            );
            match BITS {
                8 => vst1q_u8(p, bytes),
                4 => {
                    let words = vreinterpretq_u16_u8(vminq_u8(bytes, vdupq_n_u8(15)));
                    vst1_u8(p, vmovn_u16(vsraq_n_u16::<4>(words, words)));
                }
                _ => {
                    let words = vreinterpretq_u16_u8(vminq_u8(bytes, vdupq_n_u8(3)));
                    let nibbles = vreinterpret_u16_u8(vmovn_u16(vsraq_n_u16::<6>(words, words)));
                    let packed = vmovn_u16(vcombine_u16(
                        vsra_n_u16::<4>(nibbles, nibbles),
                        vdup_n_u16(0),
                    ));
                    p.cast::<u32>()
                        .write_unaligned(vget_lane_u32::<0>(vreinterpret_u32_u8(packed)));
                }
            }
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
