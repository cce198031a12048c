//! u8 × i8 GEMM with AMX-INT8: `tdpbusd` on 16 × 64-byte tiles, 2 × 2 accumulator tiles
//! (tmm0–3: 32 rows × 32 columns of i32), two A tiles (tmm4–5: 16 rows × 64 k of u8) and
//! two B tiles (tmm6–7: 16 K-quads × 16 columns × 4 k of i8) per K step of 64. A block
//! of one row tile (16 rows or fewer) takes four panels instead, 1 × 4 accumulator tiles:
//! each A tile load serves four `tdpbusd`, not two, and a call has half the blocks, each
//! with its tile zeroing and stores (m = 16, n = k = 1024: 0.35–0.39 → 0.39–0.42 of the
//! in-process AMX peak over alternate runs of the two; the spread between runs comes
//! from where B's pages land, in L2). Not the chains' latency: two chains on tiles held
//! in registers reach the full peak.
//!
//! B is packed for AMX (`PackedB` with [`Isa::Amx`](crate::Isa::Amx)): the usual panels
//! of 16 columns, each a run of 64-byte lines of 4 k, with the line count padded to whole
//! tiles, so one B tile is 16 consecutive lines: one `tileloadd` with a 64-byte stride,
//! and the padding is zero weights. A tiles load from a copy of the current row block's
//! rows: 64-byte aligned, `ceil(k / 64)` lines a row, zero-padded past k and to whole
//! tiles, so every tile row is one cache line whatever the caller's alignment and stride
//! (a `tileloadd` whose rows straddle lines measured 15–20% slower in a tile-only loop),
//! and the K tail and short row tiles need no special case. Row blocks run outside and
//! column blocks inside, K whole in the tiles, so every output is finished once: a row
//! block's A (32 KiB at k = 1024) stays in L1 while B streams past with `tileloaddt1`
//! (the hint not to keep it in L1). Measured, loaded machine: slightly ahead of column
//! blocks outside, and of plain loads.
//!
//! Exactness: `tdpbusd` sums exact u8 × i8 products into i32 lanes, wrapping like the
//! reference (the order of a wrapping sum does not change it). The four accumulator tiles
//! are stored to a 4 KiB buffer that stays in L1, and the AVX-512 epilogue of the other
//! x86 kernels ([`qgemm::epilogue_rows`] with [`Avx512Epi`]) finishes them 8 rows of one
//! panel at a time, each column's operands loaded once for the 8 rows: the zero-point
//! corrections and every output stage are the VNNI path's arithmetic. A
//! block's epilogue runs in shares of 8 rows of one panel spread evenly over the K steps
//! of the next block, inline: the out-of-order core then runs the vector work in the
//! shadow of the 16-cycle `tdpbusd`s. (Calling it through a closure cost a call and a
//! `vzeroupper` after every K step, and bunched shares of 16 rows overlapped less.)

use std::mem::MaybeUninit;

use crate::arch::qgemm::{self, Ctx, EPILOGUE_ROW_STRIDE};
use crate::arch::x86_64::amx::{
    self, TILE_BYTES, TILE_ROWS, tdpbusd, tileloadd, tileloaddt1, tilestored, tilezero,
};
use crate::arch::x86_64::qgemm_avx512::Avx512Epi;
use crate::arch::x86_64::qgemm_avx512vnni::Vnni;
use crate::error::Result;
use crate::gemm::{GemmOutput, OutputStage, PANEL, U8I8Block};

/// k per tile step: 16 K-quads.
const K_STEP: usize = TILE_ROWS * 4;
/// Bytes of one B tile: 16 packed lines.
const B_TILE: usize = TILE_ROWS * TILE_BYTES;
/// Rows of a block: two row tiles.
const BLOCK_ROWS: usize = 2 * TILE_ROWS;
/// Rows of one panel per share of a block's epilogue: small enough that a share fits in
/// the shadow of one K step, large enough to amortize setting up a panel's operands.
const SHARE_ROWS: usize = 8;

/// The accumulators of one block of 32 rows × 2 panels as the epilogue reads them: row r,
/// panel q at `r · EPILOGUE_ROW_STRIDE + 16q`.
#[repr(C, align(64))]
struct Sums([i32; BLOCK_ROWS * EPILOGUE_ROW_STRIDE]);

/// 64 bytes of a copied row of A: one row of an A tile.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; TILE_BYTES]);

/// The u8 × i8 GEMM block with AMX-INT8 tiles and the AVX-512 epilogue.
///
/// # Safety
///
/// The CPU supports AVX-512 F, BW, VL, DQ and VNNI and `amx::status()` is `Ok` (the level
/// [`Isa::Amx`](crate::Isa::Amx) is available); the arguments passed
/// `U8I8Block::validate` (the registry's `GemmU8I8Fn` contract), with `block.b` packed for
/// AMX.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
pub(crate) unsafe fn gemm_u8i8(
    block: &U8I8Block<'_>,
    stage: &OutputStage<'_>,
    out: &mut GemmOutput<'_>,
    out_stride: usize,
) -> Result<()> {
    let (r0, r1) = (block.rows.start, block.rows.end);
    if r0 == r1 || block.cols.is_empty() {
        return Ok(());
    }
    // SAFETY: this function's contract is `Ctx::new`'s; the CPU has AVX-512 VNNI, whose
    // row sums the context takes.
    let ctx = unsafe { Ctx::new::<Vnni>(block, stage, out, out_stride) };
    let k = ctx.k;
    let steps = k.div_ceil(K_STEP);
    debug_assert_eq!(ctx.b.groups, steps * TILE_ROWS, "B is not packed for AMX");
    let (p0, p1) = (ctx.c0 / PANEL, ctx.c1.div_ceil(PANEL));
    let panel_bytes = ctx.b.groups * TILE_BYTES;
    // A row block's rows, copied `steps` 64-byte lines a row and zero-padded past k and
    // to whole tiles: tile rows start on cache lines whatever the caller's alignment and
    // stride (rows that straddle lines measured 15–20% slower), and K ends on a whole
    // step. Each copy writes every byte its tiles read, so the buffer starts
    // uninitialized.
    let tiled_rows = (r1 - r0).next_multiple_of(TILE_ROWS).min(BLOCK_ROWS);
    let mut block_a = Vec::<MaybeUninit<Line>>::with_capacity(tiled_rows * steps);
    let a_stride = steps * TILE_BYTES;
    // Two blocks' sums: the epilogue of one block runs while the tiles compute the next.
    // Tile stores write each block's sums before the epilogue reads them.
    let mut slots = MaybeUninit::<[Sums; 2]>::uninit();
    let slots = slots.as_mut_ptr().cast::<Sums>();
    // SAFETY: the CPU has AMX and tile permission (the caller's contract). The copies read
    // k codes of rows below r1 (validated) into rows below 32 of `block_a`, `steps` lines
    // a row. Every tile load reads 16 rows of 64 bytes that exist: lines of `block_a`
    // (`tiled_rows` rows of `steps` lines), and lines of panels below p1 ≤ ceil(n / 16),
    // `groups` · 64 bytes per panel (B packed for AMX); the epilogue gets rows and panels
    // of a block, and its sums.
    unsafe {
        amx::configure();
        let mut pending = Pending::none();
        // Row blocks outside, column blocks inside: a row block's A tiles (32 KiB at
        // k = 1024) stay in L1 while B streams past them, loaded with the hint not to
        // keep it there.
        let mut i = r0;
        while i < r1 {
            let rows = (r1 - i).min(BLOCK_ROWS);
            let copy = block_a.as_mut_ptr().cast::<u8>();
            copy_rows(
                ctx.a.add(i * ctx.a_stride),
                ctx.a_stride,
                k,
                rows,
                copy,
                steps,
            );
            let a0 = block_a.as_ptr().cast::<u8>();
            let a = [a0, a0.wrapping_add(TILE_ROWS * a_stride)];
            let mut p = p0;
            while p < p1 {
                // One row tile takes four panels: an A tile load for four `tdpbusd`, as two
                // row tiles by two panels have, and half the blocks of two panels.
                let nt = match p1 - p {
                    left if rows <= TILE_ROWS && left >= 4 => 4,
                    left => left.min(2),
                };
                let b = [0, 1, 2, 3].map(|q| ctx.b.lines.wrapping_add((p + q) * panel_bytes));
                let slot = 1 - pending.slot;
                let (current, previous) = (slots.add(slot), slots.add(pending.slot));
                let c = current.cast::<i32>();
                let epi = (&ctx, &pending, previous.cast_const());
                match (rows > TILE_ROWS, nt) {
                    (false, 1) => tile_block::<1, 1>(a, a_stride, b, steps, c, epi),
                    (false, 2) => tile_block::<1, 2>(a, a_stride, b, steps, c, epi),
                    (false, _) => tile_block::<1, 4>(a, a_stride, b, steps, c, epi),
                    (true, 1) => tile_block::<2, 1>(a, a_stride, b, steps, c, epi),
                    (true, _) => tile_block::<2, 2>(a, a_stride, b, steps, c, epi),
                }
                if steps == 0 {
                    for item in 0..pending.items {
                        pending.run(&ctx, previous, item);
                    }
                }
                pending = Pending {
                    i,
                    p,
                    nt,
                    rows,
                    items: rows.div_ceil(SHARE_ROWS) * nt,
                    slot,
                };
                p += nt;
            }
            i += rows;
        }
        for item in 0..pending.items {
            pending.run(&ctx, slots.add(pending.slot), item);
        }
        amx::release();
    }
    Ok(())
}

/// Copies `rows` rows of `k` codes (at `a`, `a_stride` bytes apart) to `to`, `lines`
/// 64-byte lines a row, zero-padded past k and up to whole tiles of rows.
///
/// Masked 64-byte moves rather than a `memcpy` and a `memset` call per row (1–3% faster
/// at n = k = 1024): the K tail's padding comes with the last line's load.
///
/// # Safety
///
/// `rows` rows of `k` readable bytes at `a`; `to` is 64-byte aligned with
/// `ceil(rows / 16) · 16 · lines` writable lines; `k ≤ 64 · lines`; the CPU has AVX-512 F
/// and BW.
#[inline(always)]
unsafe fn copy_rows(
    a: *const u8,
    a_stride: usize,
    k: usize,
    rows: usize,
    to: *mut u8,
    lines: usize,
) {
    use std::arch::x86_64::{_mm512_maskz_loadu_epi8, _mm512_store_si512};
    for r in 0..rows.next_multiple_of(TILE_ROWS) {
        let row = a.wrapping_add(r * a_stride);
        for l in 0..lines {
            // Bytes of this line that lie in the row: none in the padding rows.
            let left = if r < rows { k - l * TILE_BYTES } else { 0 };
            let mask = if left >= TILE_BYTES {
                !0
            } else {
                (1u64 << left) - 1
            };
            // SAFETY: the caller's contract; a masked load reads only the bytes its mask
            // selects, which lie in row r.
            unsafe {
                let v = _mm512_maskz_loadu_epi8(mask, row.wrapping_add(l * TILE_BYTES).cast());
                _mm512_store_si512(to.add((r * lines + l) * TILE_BYTES).cast(), v);
            }
        }
    }
}

/// A block whose sums wait in slot `slot` for the epilogue: rows `i..i + rows`, panels
/// `p..p + nt` (nt 1, 2 or 4), in `items` shares of up to [`SHARE_ROWS`] rows of one
/// panel.
struct Pending {
    i: usize,
    p: usize,
    nt: usize,
    rows: usize,
    items: usize,
    slot: usize,
}

impl Pending {
    fn none() -> Pending {
        // Slot 1, so the first block computes into slot 0.
        Pending {
            i: 0,
            p: 0,
            nt: 1,
            rows: 0,
            items: 0,
            slot: 1,
        }
    }

    /// The epilogue of the block's `item`-th share.
    ///
    /// # Safety
    ///
    /// `ctx` is the call's context, `self` a block of it, `sums` its stored sums; the CPU
    /// has AVX-512 F and BW.
    #[inline(always)]
    unsafe fn run(&self, ctx: &Ctx, sums: *const Sums, item: usize) {
        // nt is a power of two: a shift, not a division, in this hot loop.
        let (g, q) = (item >> self.nt.trailing_zeros(), item & (self.nt - 1));
        let first = g * SHARE_ROWS;
        let (i, p) = (self.i + first, self.p + q);
        // SAFETY: the caller's contract; rows first.. < 32 of the block, panel q < 4 (< 2
        // for 32 rows).
        unsafe {
            let sums = sums
                .cast::<i32>()
                .add(first * EPILOGUE_ROW_STRIDE + q * PANEL);
            // A full share with its row count a constant: the row loop unrolls without a
            // bound check per row (a compare with a spilled count, and a branch: 12% at
            // m = 64, n = k = 1024).
            if self.rows - first >= SHARE_ROWS {
                qgemm::epilogue_rows::<Avx512Epi>(ctx, i, SHARE_ROWS, p, sums)
            } else {
                qgemm::epilogue_rows::<Avx512Epi>(ctx, i, self.rows - first, p, sums)
            }
        }
    }
}

/// Sums `MT` row tiles (at `a`, rows `a_stride` bytes apart, 64 k per step) against `NT`
/// B panels (at `b`, lines of whole tiles; `NT` 4 only with one row tile) over `steps` K
/// steps into `c` (row tile t, panel q at rows `16t..`, columns `16q..`, rows
/// `EPILOGUE_ROW_STRIDE` i32 apart), and runs the epilogue of `pending` (its sums at
/// `sums`) between the steps.
///
/// # Safety
///
/// Tiles are configured (`amx::configure`); the first `MT` of `a` and the first `NT` of `b`
/// give 16 readable rows of 64 bytes for every step; `c` has 32 writable rows; as
/// [`Pending::run`] for `ctx`, `pending` and `sums`.
#[inline(always)]
unsafe fn tile_block<const MT: usize, const NT: usize>(
    a: [*const u8; 2],
    a_stride: usize,
    b: [*const i8; 4],
    steps: usize,
    c: *mut i32,
    (ctx, pending, sums): (&Ctx, &Pending, *const Sums),
) {
    const C_STRIDE: usize = EPILOGUE_ROW_STRIDE * 4;
    // SAFETY: the caller's contract.
    unsafe {
        tilezero!(0);
        if NT >= 2 {
            tilezero!(1);
        }
        if MT == 2 || NT == 4 {
            tilezero!(2);
            if NT >= 2 {
                tilezero!(3);
            }
        }
        // The previous block's epilogue, `items` shares spread evenly over the steps:
        // after step s, shares up to (s + 1) · items / steps, counted without a division.
        let (mut item, mut due) = (0, 0);
        for s in 0..steps {
            let a_at = |t: usize| a[t].wrapping_add(s * K_STEP);
            let b_at = |q: usize| b[q].wrapping_add(s * B_TILE);
            if NT == 4 {
                step_wide(a_at(0), a_stride, [0, 1, 2, 3].map(b_at));
            } else {
                step::<MT, NT>([a_at(0), a_at(1)], a_stride, [b_at(0), b_at(1)]);
            }
            due += pending.items;
            while due >= steps {
                pending.run(ctx, sums, item);
                item += 1;
                due -= steps;
            }
        }
        tilestored!(0, c, C_STRIDE);
        if NT >= 2 {
            tilestored!(1, c.add(PANEL), C_STRIDE);
        }
        if NT == 4 {
            tilestored!(2, c.add(2 * PANEL), C_STRIDE);
            tilestored!(3, c.add(3 * PANEL), C_STRIDE);
        } else if MT == 2 {
            let c = c.add(TILE_ROWS * EPILOGUE_ROW_STRIDE);
            tilestored!(2, c, C_STRIDE);
            if NT == 2 {
                tilestored!(3, c.add(PANEL), C_STRIDE);
            }
        }
    }
}

/// One K step of [`tile_block`]: row tile t at `a[t]`, rows `a_stride` bytes apart, panel
/// q's tile at `b[q]`.
///
/// # Safety
///
/// As [`tile_block`], for this step.
#[inline(always)]
unsafe fn step<const MT: usize, const NT: usize>(
    a: [*const u8; 2],
    a_stride: usize,
    b: [*const i8; 2],
) {
    // B tile by B tile, 3–5% faster than A tile by A tile at m = 64 and 256: B tile 0
    // (from L2) is last read by the step's second `tdpbusd`, so the next step's load of
    // it has two `tdpbusd`s of lead (a tile load waits, it seems, for the last reader of
    // its register), and the A tiles (from L1) take the shorter lead.
    // SAFETY: the caller's contract.
    unsafe {
        tileloaddt1!(6, b[0], TILE_BYTES);
        tileloadd!(4, a[0], a_stride);
        tdpbusd!(0, 4, 6);
        if MT == 2 {
            tileloadd!(5, a[1], a_stride);
            tdpbusd!(2, 5, 6);
        }
        if NT == 2 {
            tileloaddt1!(7, b[1], TILE_BYTES);
            tdpbusd!(1, 4, 7);
            if MT == 2 {
                tdpbusd!(3, 5, 7);
            }
        }
    }
}

/// One K step of [`tile_block`] with one row tile (at `a`, rows `a_stride` bytes apart)
/// and four panels (tiles at `b`): accumulators tmm0–3, A in tmm4, the B tiles in turn in
/// tmm6, tmm7, tmm5 and tmm6 again.
///
/// # Safety
///
/// As [`tile_block`], for this step.
#[inline(always)]
unsafe fn step_wide(a: *const u8, a_stride: usize, b: [*const i8; 4]) {
    // SAFETY: the caller's contract.
    unsafe {
        tileloaddt1!(6, b[0], TILE_BYTES);
        tileloadd!(4, a, a_stride);
        tdpbusd!(0, 4, 6);
        tileloaddt1!(7, b[1], TILE_BYTES);
        tdpbusd!(1, 4, 7);
        tileloaddt1!(5, b[2], TILE_BYTES);
        tdpbusd!(2, 4, 5);
        tileloaddt1!(6, b[3], TILE_BYTES);
        tdpbusd!(3, 4, 6);
    }
}
