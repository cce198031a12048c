//! u8 × i8 GEMM with AVX-512 BW (no VNNI), and the AVX-512 epilogue that the VNNI kernel
//! shares.
//!
//! Exact without VNNI: `vpmaddubsw` would add two u8 × i8 products in saturating i16
//! (255 · 127 · 2 overflows it), so both operands are widened to i16 (the weights once,
//! when `PackedB` packs them; A by a zero-extended broadcast) and multiplied with
//! `vpmaddwd`, whose i32 pair sums are exact. A packed line (16 columns × 4 k, 128 bytes of
//! i16) is two zmm; each
//! `vpmaddwd` leaves two half-sums per column (k 0–1 and k 2–3), added together once at
//! the end of K.

use std::arch::x86_64::*;

use crate::arch::qgemm::{self, Dot, Epi};
use crate::error::Result;
use crate::gemm::{GemmOutput, OutputStage, U8I8Block};

/// The AVX-512 BW K step.
pub(crate) struct Avx512Bw;

/// The AVX-512 epilogue: sixteen i32 / f32 lanes.
pub(crate) struct Avx512Epi;

impl Dot for Avx512Bw {
    const MR: usize = 6;
    const NP: usize = 2;
    const NP1: usize = 4;
    const LINE_BYTES: usize = 128;
    /// A[k..k + 4] as i16, repeated over the 32 lanes.
    type A = __m512i;
    /// Columns 0–7 and 8–15 of a widened line.
    type B = [__m512i; 2];
    /// Per column pair of lanes (k 0–1, k 2–3), for columns 0–7 and 8–15.
    type Acc = [__m512i; 2];

    #[inline(always)]
    unsafe fn init(_col_sums: *const i32) -> [__m512i; 2] {
        // SAFETY: only called from code compiled with AVX-512 (the trait's contract).
        unsafe { [_mm512_setzero_si512(); 2] }
    }

    #[inline(always)]
    unsafe fn a(quad: u32) -> __m512i {
        // SAFETY: as for `init`. The broadcast quad's bytes, zero-extended to i16, repeat
        // A[k..k + 4] over the 32 lanes (one `vpmovzxbw`).
        unsafe { _mm512_cvtepu8_epi16(_mm256_set1_epi32(quad as i32)) }
    }

    const A_WIDE: bool = true;

    #[inline(always)]
    unsafe fn a_packed(p: *const u8) -> __m512i {
        // SAFETY: as for `init`; the caller provides 8 bytes at `p`: A[k..k + 4] as u16,
        // broadcast as one 64-bit lane (`vpbroadcastq` from memory, no shuffle).
        unsafe { _mm512_set1_epi64(p.cast::<i64>().read_unaligned()) }
    }

    #[inline(always)]
    unsafe fn b(p: *const i8) -> [__m512i; 2] {
        // SAFETY: the caller provides a 128-byte widened line at `p`.
        unsafe {
            [
                _mm512_loadu_si512(p.cast()),
                _mm512_loadu_si512(p.add(64).cast()),
            ]
        }
    }

    #[inline(always)]
    unsafe fn dot(acc: [__m512i; 2], a: __m512i, b: [__m512i; 2]) -> [__m512i; 2] {
        // SAFETY: as for `init`. Each i16 product is at most 255 · 128 in magnitude, so
        // `vpmaddwd`'s pair sums are exact.
        unsafe {
            [
                _mm512_add_epi32(acc[0], _mm512_madd_epi16(b[0], a)),
                _mm512_add_epi32(acc[1], _mm512_madd_epi16(b[1], a)),
            ]
        }
    }

    #[inline(always)]
    unsafe fn row_sum(row: *const u8, k: usize) -> i32 {
        // SAFETY: the caller provides k readable bytes; compiled with AVX-512 BW.
        unsafe { row_sum(row, k) }
    }

    #[inline(always)]
    unsafe fn store(acc: [__m512i; 2], out: *mut i32) {
        // SAFETY: as for `init`; the caller provides 16 writable i32 at `out`.
        unsafe {
            // Lane 2c holds column c's k 0–1 half, lane 2c + 1 its k 2–3 half; columns 8–15
            // are in the second vector (indices 16–31 of the two-vector permute).
            let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
            let sum = _mm512_add_epi32(
                _mm512_permutex2var_epi32(acc[0], even, acc[1]),
                _mm512_permutex2var_epi32(acc[0], odd, acc[1]),
            );
            _mm512_storeu_si512(out.cast(), sum);
        }
    }
}

impl Epi for Avx512Epi {
    const LANES: usize = 16;
    type I = __m512i;
    type F = __m512;

    #[inline(always)]
    unsafe fn splat_i(x: i32) -> __m512i {
        // SAFETY: only called from code compiled with AVX-512 (the trait's contract).
        unsafe { _mm512_set1_epi32(x) }
    }
    #[inline(always)]
    unsafe fn splat_f(x: f32) -> __m512 {
        // SAFETY: as for `splat_i`.
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    unsafe fn load_i(p: *const i32) -> __m512i {
        // SAFETY: the caller provides 16 readable i32; the load is unaligned.
        unsafe { _mm512_loadu_si512(p.cast()) }
    }
    #[inline(always)]
    unsafe fn load_f(p: *const f32) -> __m512 {
        // SAFETY: the caller provides 16 readable f32; the load is unaligned.
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn add_i(a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: as for `splat_i`.
        unsafe { _mm512_add_epi32(a, b) }
    }
    #[inline(always)]
    unsafe fn mul_i(a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: as for `splat_i`. `vpmulld` keeps the low 32 bits: wrapping.
        unsafe { _mm512_mullo_epi32(a, b) }
    }
    #[inline(always)]
    unsafe fn to_f(a: __m512i) -> __m512 {
        // SAFETY: as for `splat_i`. Rounds by MXCSR, which Rust code keeps at nearest-even.
        unsafe { _mm512_cvtepi32_ps(a) }
    }
    #[inline(always)]
    unsafe fn add_f(a: __m512, b: __m512) -> __m512 {
        // SAFETY: as for `splat_i`.
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn mul_f(a: __m512, b: __m512) -> __m512 {
        // SAFETY: as for `splat_i`.
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn div_f(a: __m512, b: __m512) -> __m512 {
        // SAFETY: as for `splat_i`.
        unsafe { _mm512_div_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn relu_f(y: __m512) -> __m512 {
        // SAFETY: as for `splat_i`. `vmaxps(0, y)` returns its second operand, y, when y is
        // NaN or both are zeros (so −0.0 stays −0.0), and 0 only when 0 > y.
        unsafe { _mm512_max_ps(_mm512_setzero_ps(), y) }
    }
    #[inline(always)]
    unsafe fn round_clamp(y: __m512, lo: __m512, hi: __m512) -> __m512i {
        // SAFETY: as for `splat_i`. `vmaxps(y, lo)` returns its second operand, lo, when y
        // is NaN; `vcvtps2dq` rounds the clamped value half to even (MXCSR).
        unsafe { _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(y, lo), hi)) }
    }
    #[inline(always)]
    unsafe fn store_i32(p: *mut i32, v: __m512i) {
        // SAFETY: the caller provides 16 writable i32.
        unsafe { _mm512_storeu_si512(p.cast(), v) }
    }
    #[inline(always)]
    unsafe fn store_f32(p: *mut f32, v: __m512) {
        // SAFETY: the caller provides 16 writable f32.
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn store_i8(p: *mut u8, v: __m512i) {
        // SAFETY: the caller provides 16 writable bytes; `vpmovdb` truncates, which keeps
        // codes already clamped to u8 or i8.
        unsafe { _mm_storeu_si128(p.cast(), _mm512_cvtepi32_epi8(v)) }
    }
    // Masked moves: they touch only the first n elements (masked-off lanes neither read
    // nor fault), with no copy through memory.
    #[inline(always)]
    unsafe fn load_i_part(p: *const i32, n: usize) -> __m512i {
        // SAFETY: the caller provides n readable i32, n < 16.
        unsafe { _mm512_maskz_loadu_epi32(lanes(n), p) }
    }
    #[inline(always)]
    unsafe fn load_f_part(p: *const f32, n: usize) -> __m512 {
        // SAFETY: the caller provides n readable f32, n < 16.
        unsafe { _mm512_maskz_loadu_ps(lanes(n), p) }
    }
    #[inline(always)]
    unsafe fn store_i32_part(p: *mut i32, v: __m512i, n: usize) {
        // SAFETY: the caller provides n writable i32, n < 16.
        unsafe { _mm512_mask_storeu_epi32(p, lanes(n), v) }
    }
    #[inline(always)]
    unsafe fn store_f32_part(p: *mut f32, v: __m512, n: usize) {
        // SAFETY: the caller provides n writable f32, n < 16.
        unsafe { _mm512_mask_storeu_ps(p, lanes(n), v) }
    }
    #[inline(always)]
    unsafe fn store_i8_part(p: *mut u8, v: __m512i, n: usize) {
        // SAFETY: the caller provides n writable bytes, n < 16; `vpmovdb` truncates, as in
        // `store_i8`.
        unsafe { _mm512_mask_cvtepi32_storeu_epi8(p.cast(), lanes(n), v) }
    }
}

/// The mask of the first `n < 16` lanes.
#[inline(always)]
fn lanes(n: usize) -> __mmask16 {
    (1 << n) - 1
}

/// `Σ row[0..k]`, wrapping, for [`Dot::row_sum`]: `vpsadbw` against zero adds each 8 bytes
/// into a u64 lane, exactly; the u64 total truncated to 32 bits is the wrapping i32 sum.
///
/// # Safety
///
/// `k` readable bytes at `row`; only called from code compiled with AVX-512 BW.
#[inline(always)]
pub(crate) unsafe fn row_sum(row: *const u8, k: usize) -> i32 {
    // SAFETY: the caller's contract; the masked load of the tail reads (and may fault on)
    // only its k mod 64 bytes.
    unsafe {
        let zero = _mm512_setzero_si512();
        let mut acc = zero;
        let full = k / 64;
        for c in 0..full {
            let v = _mm512_loadu_si512(row.add(64 * c).cast());
            acc = _mm512_add_epi64(acc, _mm512_sad_epu8(v, zero));
        }
        let tail = k % 64;
        if tail > 0 {
            let v = _mm512_maskz_loadu_epi8((1u64 << tail) - 1, row.add(64 * full).cast());
            acc = _mm512_add_epi64(acc, _mm512_sad_epu8(v, zero));
        }
        _mm512_reduce_add_epi64(acc) as i32
    }
}

/// The u8 × i8 GEMM block with AVX-512 BW.
///
/// # Safety
///
/// The CPU supports AVX-512 F and BW; the arguments passed `U8I8Block::validate` (the
/// registry's `GemmU8I8Fn` contract).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
pub(crate) unsafe fn gemm_u8i8(
    block: &U8I8Block<'_>,
    stage: &OutputStage<'_>,
    out: &mut GemmOutput<'_>,
    out_stride: usize,
) -> Result<()> {
    // SAFETY: compiled for AVX-512 BW; the arguments are validated (the caller's contract).
    unsafe { qgemm::gemm::<Avx512Bw, Avx512Epi>(block, stage, out, out_stride) }
}
