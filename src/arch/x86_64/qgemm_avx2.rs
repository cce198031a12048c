//! u8 × i8 GEMM with AVX2, exact: `vpmaddubsw` would add two u8 × i8 products in
//! saturating i16 (255 · 127 · 2 overflows it), so both operands are widened to i16
//! (the weights once, when `PackedB` packs them; A by a zero-extended broadcast) and
//! multiplied with `vpmaddwd`, whose i32 pair sums are exact. A packed line (16 columns ×
//! 4 k, 128 bytes of i16) is four ymm of 4 columns each; each `vpmaddwd` leaves two half-sums per
//! column (k 0–1 and k 2–3), added together once at the end of K (`vphaddd`).
//!
//! Register tile: 2 rows × 1 panel = 8 accumulators, the panel's line in 4 ymm, the
//! broadcast A and a product within the 16 ymm (3 rows would spill: the compiler keeps the
//! line in registers rather than multiplying from memory). Packed A holds the codes
//! already widened to u16, so the K loop broadcasts them with `vpbroadcastq` and spends
//! no shuffle-port `vpmovzxbw`.

use std::arch::x86_64::*;

use crate::arch::qgemm::{self, Dot, Epi};
use crate::error::Result;
use crate::gemm::{GemmOutput, OutputStage, U8I8Block};

/// The AVX2 K step and epilogue.
pub(crate) struct Avx2;

impl Dot for Avx2 {
    const MR: usize = 2;
    const NP: usize = 1;
    const NP1: usize = 3;
    const LINE_BYTES: usize = 128;
    /// A[k..k + 4] as i16, repeated over the 16 lanes.
    type A = __m256i;
    /// The widened line, read by each multiply from memory (keeping registers for
    /// accumulators): columns 0–3, 4–7, 8–11 and 12–15 at 32-byte steps.
    type B = *const i8;
    /// Per column a pair of lanes (k 0–1, k 2–3), four columns per vector.
    type Acc = [__m256i; 4];

    #[inline(always)]
    unsafe fn init(_col_sums: *const i32) -> [__m256i; 4] {
        // SAFETY: only called from code compiled with AVX2 (the trait's contract).
        unsafe { [_mm256_setzero_si256(); 4] }
    }

    #[inline(always)]
    unsafe fn a(quad: u32) -> __m256i {
        // SAFETY: as for `init`. The broadcast quad's bytes, zero-extended to i16, repeat
        // A[k..k + 4] over the 16 lanes (one `vpmovzxbw`).
        unsafe { _mm256_cvtepu8_epi16(_mm_set1_epi32(quad as i32)) }
    }

    const A_WIDE: bool = true;

    #[inline(always)]
    unsafe fn a_packed(p: *const u8) -> __m256i {
        // SAFETY: as for `init`; the caller provides 8 bytes at `p`: A[k..k + 4] as u16,
        // broadcast as one 64-bit lane (`vpbroadcastq` from memory, no shuffle).
        unsafe { _mm256_set1_epi64x(p.cast::<i64>().read_unaligned()) }
    }

    #[inline(always)]
    unsafe fn b(p: *const i8) -> *const i8 {
        p
    }

    #[inline(always)]
    unsafe fn dot(acc: [__m256i; 4], a: __m256i, b: *const i8) -> [__m256i; 4] {
        // SAFETY: as for `init`; `b` is a 128-byte widened line (the trait's contract).
        // Each i16 product is at most 255 · 128 in magnitude, so `vpmaddwd`'s pair sums
        // are exact.
        unsafe {
            std::array::from_fn(|h| {
                let line = _mm256_loadu_si256(b.add(32 * h).cast());
                _mm256_add_epi32(acc[h], _mm256_madd_epi16(line, a))
            })
        }
    }

    #[inline(always)]
    unsafe fn row_sum(row: *const u8, k: usize) -> i32 {
        // SAFETY: the caller provides k readable bytes; compiled with AVX2. `vpsadbw`
        // against zero adds each 8 bytes into a u64 lane, exactly; the u64 total
        // truncated to 32 bits is the wrapping i32 sum.
        unsafe {
            let zero = _mm256_setzero_si256();
            let mut acc = zero;
            let full = k / 32;
            for c in 0..full {
                let v = _mm256_loadu_si256(row.add(32 * c).cast());
                acc = _mm256_add_epi64(acc, _mm256_sad_epu8(v, zero));
            }
            let mut lanes = [0u64; 4];
            _mm256_storeu_si256(lanes.as_mut_ptr().cast(), acc);
            let tail = std::slice::from_raw_parts(row.add(32 * full), k % 32);
            let total = tail
                .iter()
                .fold(lanes.iter().sum::<u64>(), |s, &x| s + u64::from(x));
            total as i32
        }
    }

    #[inline(always)]
    unsafe fn store(acc: [__m256i; 4], out: *mut i32) {
        // SAFETY: as for `init`; the caller provides 16 writable i32 at `out`.
        unsafe {
            for h in 0..2 {
                // hadd of columns 0–3 and 4–7 (per 128-bit half) gives columns
                // 0 1 4 5 | 2 3 6 7; the 64-bit permute puts them in order.
                let sums = _mm256_hadd_epi32(acc[2 * h], acc[2 * h + 1]);
                let ordered = _mm256_permute4x64_epi64::<0b11_01_10_00>(sums);
                _mm256_storeu_si256(out.add(8 * h).cast(), ordered);
            }
        }
    }
}

impl Epi for Avx2 {
    const LANES: usize = 8;
    type I = __m256i;
    type F = __m256;

    #[inline(always)]
    unsafe fn splat_i(x: i32) -> __m256i {
        // SAFETY: only called from code compiled with AVX2 (the trait's contract).
        unsafe { _mm256_set1_epi32(x) }
    }
    #[inline(always)]
    unsafe fn splat_f(x: f32) -> __m256 {
        // SAFETY: as for `splat_i`.
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    unsafe fn load_i(p: *const i32) -> __m256i {
        // SAFETY: the caller provides 8 readable i32; the load is unaligned.
        unsafe { _mm256_loadu_si256(p.cast()) }
    }
    #[inline(always)]
    unsafe fn load_f(p: *const f32) -> __m256 {
        // SAFETY: the caller provides 8 readable f32; the load is unaligned.
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn add_i(a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: as for `splat_i`.
        unsafe { _mm256_add_epi32(a, b) }
    }
    #[inline(always)]
    unsafe fn mul_i(a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: as for `splat_i`. `vpmulld` keeps the low 32 bits: wrapping.
        unsafe { _mm256_mullo_epi32(a, b) }
    }
    #[inline(always)]
    unsafe fn to_f(a: __m256i) -> __m256 {
        // SAFETY: as for `splat_i`. Rounds by MXCSR, which Rust code keeps at nearest-even.
        unsafe { _mm256_cvtepi32_ps(a) }
    }
    #[inline(always)]
    unsafe fn add_f(a: __m256, b: __m256) -> __m256 {
        // SAFETY: as for `splat_i`.
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn mul_f(a: __m256, b: __m256) -> __m256 {
        // SAFETY: as for `splat_i`.
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn div_f(a: __m256, b: __m256) -> __m256 {
        // SAFETY: as for `splat_i`.
        unsafe { _mm256_div_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn relu_f(y: __m256) -> __m256 {
        // SAFETY: as for `splat_i`. `vmaxps(0, y)` returns its second operand, y, when y is
        // NaN or both are zeros (so −0.0 stays −0.0), and 0 only when 0 > y.
        unsafe { _mm256_max_ps(_mm256_setzero_ps(), y) }
    }
    #[inline(always)]
    unsafe fn round_clamp(y: __m256, lo: __m256, hi: __m256) -> __m256i {
        // SAFETY: as for `splat_i`. `vmaxps(y, lo)` returns its second operand, lo, when y
        // is NaN; `vcvtps2dq` rounds the clamped value half to even (MXCSR).
        unsafe { _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(y, lo), hi)) }
    }
    #[inline(always)]
    unsafe fn store_i32(p: *mut i32, v: __m256i) {
        // SAFETY: the caller provides 8 writable i32.
        unsafe { _mm256_storeu_si256(p.cast(), v) }
    }
    #[inline(always)]
    unsafe fn store_f32(p: *mut f32, v: __m256) {
        // SAFETY: the caller provides 8 writable f32.
        unsafe { _mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn store_i8(p: *mut u8, v: __m256i) {
        // SAFETY: the caller provides 8 writable bytes. The low byte of each lane (the
        // code, already clamped to u8 or i8) is gathered into dword 0 of each 128-bit half,
        // then the two dwords are joined.
        unsafe {
            let low_bytes = _mm256_setr_epi8(
                0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1, -1,
                -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
            );
            let packed = _mm256_permutevar8x32_epi32(
                _mm256_shuffle_epi8(v, low_bytes),
                _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0),
            );
            _mm_storel_epi64(p.cast(), _mm256_castsi256_si128(packed));
        }
    }
}

/// The u8 × i8 GEMM block with AVX2.
///
/// # Safety
///
/// The CPU supports AVX2; the arguments passed `U8I8Block::validate` (the registry's
/// `GemmU8I8Fn` contract).
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn gemm_u8i8(
    block: &U8I8Block<'_>,
    stage: &OutputStage<'_>,
    out: &mut GemmOutput<'_>,
    out_stride: usize,
) -> Result<()> {
    // SAFETY: compiled for AVX2; the arguments are validated (the caller's contract).
    unsafe { qgemm::gemm::<Avx2, Avx2>(block, stage, out, out_stride) }
}
