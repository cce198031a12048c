//! The blocked, packed i64 GEMM loop that every `i64gemm_*` kernel instantiates with its own
//! vector type.
//!
//! No intrinsics here: each instruction set implements [`I64Madd`] with `#[inline(always)]`
//! methods, and its `#[target_feature]` entry point calls [`gemm`], so the whole loop is
//! compiled for that instruction set.
//!
//! Blocking (the usual three-level scheme): columns of B in blocks of [`NC`], depth in blocks
//! of [`KC`], rows of A in blocks of [`MC`]. Each (depth × column) block of B is packed into
//! panels of `NR` columns, k-major, and each (row × depth) block of A into panels of [`MR`]
//! rows, k-major, so that the register tile reads both operands sequentially whatever the
//! caller's strides (a transposed operand costs nothing extra) and its inner loop is loads
//! and multiply-adds only. Edges are zero-padded in the packs; a tile computes into a local
//! buffer and only its valid part is added into C.
//!
//! Bit equality with `crate::reference::gemm_i64` holds by construction: every operation is
//! addition or multiplication mod 2^64, a commutative ring, so any order and grouping of the
//! products gives the reference's bits. C is zeroed first when not accumulating and each
//! depth block's partial sums are then added into it.

use crate::arch::prefetch::prefetch;
use crate::embedding::plan::PrefetchHint;
use crate::gemm::{MatMut, MatRef};

/// Rows of a register tile; smaller row counts at the bottom edge get their own tiles
/// (a 1-row GEMM does not pay for 4).
pub(crate) const MR: usize = 4;
/// Depth of a packed block. Long, because a 64-bit multiply-add is slow (two cycles per
/// vector with AVX-512), so the operands a tile streams (one vector of B per 4 multiply-adds)
/// come fast enough from L2: its `KC × NR` panel of B (128 KiB with AVX-512) need not stay
/// in L1, and a tile reads and writes its rows of C only once per 512 depth steps. (At
/// 1024³ with AVX-512, depths 512 and 1024 ran 12–15% faster than 128; 512 keeps the small
/// batches faster: see `NC`.)
const KC: usize = 512;
/// Rows of A packed at once (`MC × KC`, at most 512 KiB with split halves).
const MC: usize = 64;
/// Columns of B packed at once (`KC × NC` i64 = 1 MiB, inside L2, where a small batch
/// reads it back: with 2 MiB packs m = 16 and 64 ran 4–15% slower).
const NC: usize = 256;
/// Most columns a tile may have (`NV · LANES` of every implementation).
const MAX_NR: usize = 32;

/// One instruction set's 64-bit multiply-add over a vector of `LANES` output columns.
///
/// Implementations are `#[inline(always)]` so they compile into the `#[target_feature]`
/// kernel that calls [`gemm`]; every method may only run where that kernel may.
pub(crate) trait I64Madd {
    /// Output columns one accumulator holds.
    const LANES: usize;
    /// i64 words a packed A element takes: 1 (the value), or 2 (the value, then its upper
    /// 32 bits shifted down, for kernels that build 64-bit products from 32-bit halves).
    const A_PARTS: usize;
    /// Partial sums of `LANES` outputs, in whatever form the multiply-add keeps them.
    type Acc: Copy;
    /// One element of A, broadcast.
    type A: Copy;
    /// `LANES` consecutive elements of a packed row of B.
    type B: Copy;

    /// Sums that are all 0.
    unsafe fn zero() -> Self::Acc;
    /// Broadcasts the packed A element (`A_PARTS` words) at `p`.
    unsafe fn load_a(p: *const i64) -> Self::A;
    /// Loads `LANES` i64 at `p` (unaligned).
    unsafe fn load_b(p: *const i64) -> Self::B;
    /// `acc + a · b` per lane, mod 2^64.
    unsafe fn madd(acc: Self::Acc, a: Self::A, b: Self::B) -> Self::Acc;
    /// Writes the `LANES` sums of `acc` as i64 at `p` (unaligned).
    unsafe fn store(p: *mut i64, acc: Self::Acc);
}

/// `C = A·B` or `C += A·B`, wrapping, with `NV` accumulators of `S::LANES` columns per tile
/// row (`NR = NV · S::LANES` columns per tile).
///
/// # Safety
///
/// The CPU runs `S`'s instructions; `NV · S::LANES ≤ 32`; the views passed
/// `crate::gemm::validate_i64` for `m`, `n`, `k` (every index below is then in bounds, and
/// is checked anyway: only the packed buffers are read through raw pointers).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm<S: I64Madd, const NV: usize>(
    m: usize,
    n: usize,
    k: usize,
    a: &MatRef<'_>,
    b: &MatRef<'_>,
    c: &mut MatMut<'_>,
    accumulate: bool,
) {
    let nr = NV * S::LANES;
    debug_assert!(nr <= MAX_NR);
    if m == 0 || n == 0 {
        return;
    }
    let (crs, ccs) = (c.row_stride, c.col_stride);
    if k == 0 {
        // No depth block writes C: an empty product is zero.
        if !accumulate {
            for i in 0..m {
                (0..n).for_each(|j| c.data[i * crs + j * ccs] = 0);
            }
        }
        return;
    }
    let mut b_pack = vec![0i64; n.min(NC).next_multiple_of(nr) * k.min(KC)];
    let mut a_pack = vec![0i64; m.min(MC).next_multiple_of(MR) * k.min(KC) * S::A_PARTS];
    // Each tile overwrites the rows and columns of this that are then read.
    let mut tile = [0i64; MR * MAX_NR];
    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            pack_b(b, pc, kc, jc, nc, nr, &mut b_pack);
            let add = accumulate || pc > 0;
            for ic in (0..m).step_by(MC) {
                let mc = MC.min(m - ic);
                pack_a::<S>(a, ic, mc, pc, kc, &mut a_pack);
                for jr in (0..nc).step_by(nr) {
                    let cols = nr.min(nc - jr);
                    // Panel jr / nr of the pack starts at (jr / nr) · kc · nr.
                    let bp = b_pack[jr * kc..][..kc * nr].as_ptr();
                    for ir in (0..mc).step_by(MR) {
                        let rows = MR.min(mc - ir);
                        let ap = a_pack[ir * kc * S::A_PARTS..][..kc * MR * S::A_PARTS].as_ptr();
                        // The tile's rows of C are used once its sums are ready, thousands of
                        // multiplies from now; rows are `crs` apart, far enough to miss every
                        // cache, so ask for them first (contiguous rows only: a line per 8
                        // columns).
                        if ccs == 1 {
                            for r in 0..rows {
                                let row =
                                    c.data.as_ptr().wrapping_add((ic + ir + r) * crs + jc + jr);
                                for line in (0..cols).step_by(8) {
                                    prefetch(row.wrapping_add(line).cast(), PrefetchHint::L1);
                                }
                            }
                        }
                        // SAFETY: `ap` and `bp` point to whole packed panels of depth `kc`
                        // (sliced above), `tile` holds MR × NR sums, and the caller runs
                        // this function only where `S`'s instructions exist.
                        unsafe {
                            match rows {
                                4 => tile_madd::<S, 4, NV>(kc, ap, bp, &mut tile),
                                3 => tile_madd::<S, 3, NV>(kc, ap, bp, &mut tile),
                                2 => tile_madd::<S, 2, NV>(kc, ap, bp, &mut tile),
                                _ => tile_madd::<S, 1, NV>(kc, ap, bp, &mut tile),
                            }
                        }
                        for (r, sums) in tile.chunks_exact(nr).take(rows).enumerate() {
                            let start = (ic + ir + r) * crs + (jc + jr) * ccs;
                            update_row(&mut c.data[start..], &sums[..cols], ccs, add);
                        }
                    }
                }
            }
        }
    }
}

/// Adds `sums` into (or, unless `add`, writes them over) the first `sums.len()` elements of
/// a row of C that starts at `row[0]`, `stride` apart; a contiguous row (the common case) is
/// one slice the compiler vectorizes.
#[inline(always)]
fn update_row(row: &mut [i64], sums: &[i64], stride: usize, add: bool) {
    match (stride, add) {
        (1, false) => row[..sums.len()].copy_from_slice(sums),
        (1, true) => {
            for (x, &s) in row[..sums.len()].iter_mut().zip(sums) {
                *x = x.wrapping_add(s);
            }
        }
        (_, false) => sums
            .iter()
            .enumerate()
            .for_each(|(j, &s)| row[j * stride] = s),
        (_, true) => {
            for (j, &s) in sums.iter().enumerate() {
                let x = &mut row[j * stride];
                *x = x.wrapping_add(s);
            }
        }
    }
}

/// The sums of one `R × NR` tile over `kc` depth steps, written row by row (`NR` apart)
/// into `out`.
///
/// # Safety
///
/// The CPU runs `S`'s instructions; `a` points to an A panel of `kc` steps of `MR ·
/// A_PARTS` words, `b` to a B panel of `kc` steps of `NR` words; `R ≤ MR`.
#[inline(always)]
unsafe fn tile_madd<S: I64Madd, const R: usize, const NV: usize>(
    kc: usize,
    a: *const i64,
    b: *const i64,
    out: &mut [i64; MR * MAX_NR],
) {
    let nr = NV * S::LANES;
    let a_step = MR * S::A_PARTS;
    // SAFETY: the caller's contract covers every read (step kk < kc, row r < R ≤ MR, vector
    // v < NV) and the stores (R · NR ≤ MR · MAX_NR), and the instruction set.
    unsafe {
        let mut acc = [[S::zero(); NV]; R];
        let (mut ap, mut bp) = (a, b);
        for _ in 0..kc {
            let bv: [S::B; NV] = std::array::from_fn(|v| S::load_b(bp.add(v * S::LANES)));
            for (r, acc_row) in acc.iter_mut().enumerate() {
                let av = S::load_a(ap.add(r * S::A_PARTS));
                for (acc_v, &b_v) in acc_row.iter_mut().zip(&bv) {
                    *acc_v = S::madd(*acc_v, av, b_v);
                }
            }
            ap = ap.add(a_step);
            bp = bp.add(nr);
        }
        for (r, acc_row) in acc.iter().enumerate() {
            for (v, &acc_v) in acc_row.iter().enumerate() {
                S::store(out.as_mut_ptr().add(r * nr + v * S::LANES), acc_v);
            }
        }
    }
}

/// Packs rows `pc..pc + kc` and columns `jc..jc + nc` of B into panels of `nr` columns:
/// panel p holds, for each depth step, columns `jc + p·nr ..` (zeros past `jc + nc`).
fn pack_b(b: &MatRef<'_>, pc: usize, kc: usize, jc: usize, nc: usize, nr: usize, out: &mut [i64]) {
    for (p, panel) in out
        .chunks_exact_mut(kc * nr)
        .take(nc.div_ceil(nr))
        .enumerate()
    {
        let j0 = jc + p * nr;
        let cols = nr.min(jc + nc - j0);
        for (kk, row) in panel.chunks_exact_mut(nr).enumerate() {
            let base = (pc + kk) * b.row_stride + j0 * b.col_stride;
            if b.col_stride == 1 {
                row[..cols].copy_from_slice(&b.data[base..][..cols]);
            } else {
                for (j, x) in row[..cols].iter_mut().enumerate() {
                    *x = b.data[base + j * b.col_stride];
                }
            }
            row[cols..].fill(0);
        }
    }
}

/// Packs rows `ic..ic + mc` and columns `pc..pc + kc` of A into panels of [`MR`] rows: panel
/// q holds, for each depth step, rows `ic + q·MR ..` as `S::A_PARTS` words each (zeros past
/// `ic + mc`).
fn pack_a<S: I64Madd>(a: &MatRef<'_>, ic: usize, mc: usize, pc: usize, kc: usize, out: &mut [i64]) {
    let step = MR * S::A_PARTS;
    for (q, panel) in out
        .chunks_exact_mut(kc * step)
        .take(mc.div_ceil(MR))
        .enumerate()
    {
        let i0 = ic + q * MR;
        let rows = MR.min(ic + mc - i0);
        if a.col_stride == 1 {
            // Row-major A: copy each row's contiguous run into its slot of every step.
            for r in 0..MR {
                let src = if r < rows {
                    &a.data[(i0 + r) * a.row_stride + pc..][..kc]
                } else {
                    &[][..]
                };
                for (kk, group) in panel.chunks_exact_mut(step).enumerate() {
                    let x = src.get(kk).copied().unwrap_or(0);
                    put_a(&mut group[r * S::A_PARTS..][..S::A_PARTS], x);
                }
            }
            continue;
        }
        for (kk, group) in panel.chunks_exact_mut(step).enumerate() {
            let col = (pc + kk) * a.col_stride;
            for (r, parts) in group.chunks_exact_mut(S::A_PARTS).enumerate() {
                let x = if r < rows {
                    a.data[(i0 + r) * a.row_stride + col]
                } else {
                    0
                };
                put_a(parts, x);
            }
        }
    }
}

/// Writes a packed A element: `x`, then (with two parts) its upper 32 bits shifted down.
#[inline(always)]
fn put_a(parts: &mut [i64], x: i64) {
    parts[0] = x;
    if let Some(hi) = parts.get_mut(1) {
        *hi = ((x as u64) >> 32) as i64;
    }
}
