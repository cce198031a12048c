//! u8 × i8 GEMM with AVX-512 VNNI: one `vpdpbusd` per (row, panel, 4 k) multiplies the
//! four broadcast A codes (u8) by one packed 64-byte line (16 columns × 4 k of i8) and adds
//! each column's four products to its i32 lane. The products and their four-term sums are
//! exact (|Σ| ≤ 4 · 255 · 128), the lane addition wraps like the reference.
//!
//! Register tile: 8 rows × 3 panels (48 columns) = 24 accumulators, 3 line registers and
//! one broadcast, within the 32 zmm; per K step 3 line loads and 8 broadcasts feed 24
//! `vpdpbusd`, and batches of 16 and 64 rows split into whole tiles. A single row takes 8
//! panels (8 independent accumulators per line of A), and a single row tile (A in place)
//! runs four K steps per loop iteration (`Dot::UNROLL`): the GEMV's 8 `vpdpbusd` per step
//! would otherwise share their ports with a pointer bump and a bound test per step. The
//! epilogue is the AVX-512 one ([`Avx512Epi`]).

use std::arch::x86_64::*;

use crate::arch::qgemm::{self, Dot};
use crate::arch::x86_64::qgemm_avx512::{self, Avx512Epi};
use crate::error::Result;
use crate::gemm::{GemmOutput, OutputStage, U8I8Block};

/// The AVX-512 VNNI K step.
pub(crate) struct Vnni;

impl Dot for Vnni {
    const MR: usize = 8;
    const NP: usize = 3;
    const NP1: usize = 8;
    const UNROLL: usize = 4;
    const LINE_BYTES: usize = 64;
    type A = __m512i;
    type B = __m512i;
    type Acc = __m512i;

    #[inline(always)]
    unsafe fn init(_col_sums: *const i32) -> __m512i {
        // SAFETY: only called from code compiled with AVX-512 VNNI (the trait's contract).
        unsafe { _mm512_setzero_si512() }
    }

    #[inline(always)]
    unsafe fn a(quad: u32) -> __m512i {
        // SAFETY: as for `init`.
        unsafe { _mm512_set1_epi32(quad as i32) }
    }

    #[inline(always)]
    unsafe fn b(p: *const i8) -> __m512i {
        // SAFETY: the caller provides a 64-byte line at `p`.
        unsafe { _mm512_loadu_si512(p.cast()) }
    }

    #[inline(always)]
    unsafe fn prefetch(p: *const i8) {
        // SAFETY: as for `init`; a prefetch reads nothing and does not fault.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p) }
    }

    #[inline(always)]
    unsafe fn dot(acc: __m512i, a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: as for `init`. `vpdpbusd` takes its first multiplicand unsigned (A) and
        // its second signed (B).
        unsafe { _mm512_dpbusd_epi32(acc, a, b) }
    }

    #[inline(always)]
    unsafe fn row_sum(row: *const u8, k: usize) -> i32 {
        // SAFETY: the caller provides k readable bytes; compiled with AVX-512 BW.
        unsafe { qgemm_avx512::row_sum(row, k) }
    }

    #[inline(always)]
    unsafe fn store(acc: __m512i, out: *mut i32) {
        // SAFETY: as for `init`; the caller provides 16 writable i32 at `out`.
        unsafe { _mm512_storeu_si512(out.cast(), acc) }
    }
}

/// The u8 × i8 GEMM block with AVX-512 VNNI.
///
/// # Safety
///
/// The CPU supports AVX-512 F, BW and VNNI; the arguments passed `U8I8Block::validate`
/// (the registry's `GemmU8I8Fn` contract).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
pub(crate) unsafe fn gemm_u8i8(
    block: &U8I8Block<'_>,
    stage: &OutputStage<'_>,
    out: &mut GemmOutput<'_>,
    out_stride: usize,
) -> Result<()> {
    // SAFETY: compiled for AVX-512 VNNI; the arguments are validated (the caller's
    // contract).
    unsafe { qgemm::gemm::<Vnni, Avx512Epi>(block, stage, out, out_stride) }
}
