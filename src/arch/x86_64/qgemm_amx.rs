//! u8 × i8 GEMM with AMX-INT8: `tdpbusd` on 16 × 64-byte tiles, 2 × 2 accumulator tiles
//! (tmm0–3: 32 rows × 32 columns of i32), two A tiles (tmm4–5: 16 rows × 64 k of u8) and
//! two B tiles (tmm6–7: 16 K-quads × 16 columns × 4 k of i8) per K step of 64.
//!
//! B is packed for AMX (`PackedB` with [`Isa::Amx`](crate::Isa::Amx)): the usual panels
//! of 16 columns, each a run of 64-byte lines of 4 k, with the line count padded to whole
//! tiles, so one B tile is 16 consecutive lines: one `tileloadd` with a 64-byte stride,
//! and the padding is zero weights. A tiles load straight from the caller's rows with its
//! stride (`tileloadd` takes one); only what would read past a row or past the last row is
//! copied, zero-padded: the last K step's 64 bytes of each row when k is not a multiple
//! of 64, and all of a last row tile of fewer than 16 rows. Row blocks run outside and
//! column blocks inside, K whole in the tiles, so every output is finished once: a row
//! block's A (32 KiB at k = 1024) stays in L1 while B streams past with `tileloaddt1`
//! (the hint not to keep it in L1). Measured, loaded machine: slightly ahead of column
//! blocks outside, and of plain loads.
//!
//! Exactness: `tdpbusd` sums exact u8 × i8 products into i32 lanes, wrapping like the
//! reference (the order of a wrapping sum does not change it). The four accumulator tiles
//! are stored to a 4 KiB buffer that stays in L1, and the AVX-512 epilogue of the other
//! x86 kernels ([`qgemm::epilogue_rows`] with [`Avx512Epi`]) finishes them a tile of 16
//! rows and one panel at a time, each column's operands loaded once for the 16 rows: the
//! zero-point corrections and every output stage are the VNNI path's arithmetic. A
//! block's epilogue runs in shares between the K steps of the next block. Measured,
//! loaded machine: the vector work does not overlap the tile multiplies (interleaved,
//! all at once or after the block take the same time), so what counts is its
//! instruction count: about 16 per vector of 16 outputs.

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
/// Rows of one panel per share of a block's epilogue: a whole tile, so each column's
/// operands serve 16 rows (4 rows per share measured 10% slower at m = 64).
const SHARE_ROWS: usize = TILE_ROWS;

/// The accumulators of one block of 32 rows × 2 panels as the epilogue reads them: row r,
/// panel q at `r · EPILOGUE_ROW_STRIDE + 16q`.
#[repr(C, align(64))]
struct Sums([i32; BLOCK_ROWS * EPILOGUE_ROW_STRIDE]);

/// 64 zero-padded bytes of one row of A: a row of a copied tile.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; TILE_BYTES]);

/// Where one row tile reads A: full K step s at `base + 64 s`, rows `stride` bytes apart;
/// the partial last step (k not a multiple of 64) at `tail`, rows `tail_stride` apart.
#[derive(Clone, Copy)]
struct ATile {
    base: *const u8,
    stride: usize,
    tail: *const u8,
    tail_stride: usize,
}

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
    let (full, steps) = (k / K_STEP, k.div_ceil(K_STEP));
    debug_assert_eq!(ctx.b.groups, steps * TILE_ROWS, "B is not packed for AMX");
    let (p0, p1) = (ctx.c0 / PANEL, ctx.c1.div_ceil(PANEL));
    let panel_bytes = ctx.b.groups * TILE_BYTES;
    let (whole_tiles, edge_rows) = ((r1 - r0) / TILE_ROWS, (r1 - r0) % TILE_ROWS);
    let row = |i: usize| ctx.a.wrapping_add(i * ctx.a_stride);
    // The copies (allocated only when needed): each whole row tile's last 64 bytes of k,
    // 16 lines per tile; and the rows of a short last row tile, `steps` lines per row.
    let tail = k - full * K_STEP;
    let mut tails = Vec::new();
    if tail > 0 {
        tails.resize(whole_tiles * TILE_ROWS, Line([0; TILE_BYTES]));
        for (r, line) in tails.iter_mut().enumerate() {
            // SAFETY: row r0 + r < r1 holds k codes (validated).
            let codes = unsafe { std::slice::from_raw_parts(row(r0 + r).add(full * K_STEP), tail) };
            line.0[..tail].copy_from_slice(codes);
        }
    }
    let mut edge = Vec::new();
    if edge_rows > 0 {
        edge.resize(TILE_ROWS * steps, Line([0; TILE_BYTES]));
        for (r, lines) in edge
            .chunks_exact_mut(steps.max(1))
            .take(edge_rows)
            .enumerate()
        {
            // SAFETY: as above.
            let codes =
                unsafe { std::slice::from_raw_parts(row(r0 + whole_tiles * TILE_ROWS + r), k) };
            for (line, chunk) in lines.iter_mut().zip(codes.chunks(K_STEP)) {
                line.0[..chunk.len()].copy_from_slice(chunk);
            }
        }
    }
    let a_tile = |t: usize| {
        if t < whole_tiles {
            ATile {
                base: row(r0 + t * TILE_ROWS),
                stride: ctx.a_stride,
                tail: tails.as_ptr().wrapping_add(t * TILE_ROWS).cast(),
                tail_stride: TILE_BYTES,
            }
        } else {
            let base = edge.as_ptr().cast::<u8>();
            ATile {
                base,
                stride: steps * TILE_BYTES,
                tail: base.wrapping_add(full * TILE_BYTES),
                tail_stride: steps * TILE_BYTES,
            }
        }
    };
    // Two blocks' sums: the epilogue of one block runs while the tiles compute the next.
    // Tile stores write each block's sums before the epilogue reads them.
    let mut slots = MaybeUninit::<[Sums; 2]>::uninit();
    let slots = slots.as_mut_ptr().cast::<Sums>();
    // SAFETY: the CPU has AMX and tile permission (the caller's contract). Every tile load
    // reads 16 rows of 64 bytes that exist: rows of A below r1 at k offsets below
    // 64 · full ≤ k, the copies (16 lines per tile, `steps` lines per row), and lines of
    // panels below p1 ≤ ceil(n / 16), `groups` · 64 bytes per panel (B packed for AMX);
    // the epilogue gets rows and panels of a block, and its sums.
    unsafe {
        amx::configure();
        let mut pending = Pending::none();
        // Row blocks outside, column blocks inside: a row block's A tiles (32 KiB at
        // k = 1024) stay in L1 while B streams past them, loaded with the hint not to
        // keep it there.
        let mut i = r0;
        while i < r1 {
            let rows = (r1 - i).min(BLOCK_ROWS);
            let t = (i - r0) / TILE_ROWS;
            let a = [a_tile(t), a_tile(t + 1)];
            let mut p = p0;
            while p < p1 {
                let nt = (p1 - p).min(2);
                let b = [
                    ctx.b.lines.add(p * panel_bytes),
                    ctx.b.lines.wrapping_add((p + 1) * panel_bytes),
                ];
                let slot = 1 - pending.slot;
                let (current, previous) = (slots.add(slot), slots.add(pending.slot));
                // The previous block's epilogue, a share after each K step.
                let share = pending.items.div_ceil(steps.max(1));
                let mut done = 0;
                let mut finish = |upto: usize| {
                    while done < upto.min(pending.items) {
                        pending.run(&ctx, previous, done);
                        done += 1;
                    }
                };
                let between = |s: usize| finish((s + 1) * share);
                let c = current.cast::<i32>();
                match (rows > TILE_ROWS, nt) {
                    (false, 1) => tile_block::<1, 1>(a, b, full, steps, c, between),
                    (false, _) => tile_block::<1, 2>(a, b, full, steps, c, between),
                    (true, 1) => tile_block::<2, 1>(a, b, full, steps, c, between),
                    (true, _) => tile_block::<2, 2>(a, b, full, steps, c, between),
                }
                finish(usize::MAX);
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

/// A block whose sums wait in slot `slot` for the epilogue: rows `i..i + rows`, panels
/// `p..p + nt`, in `items` shares of up to [`SHARE_ROWS`] rows of one panel.
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
        // nt is 1 or 2: a shift, not a division, in this hot loop.
        let (g, q) = (item >> (self.nt - 1), item & (self.nt - 1));
        let first = g * SHARE_ROWS;
        // SAFETY: the caller's contract; rows first.. < 32 of the block, panel q < 2.
        unsafe {
            qgemm::epilogue_rows::<Avx512Epi>(
                ctx,
                self.i + first,
                SHARE_ROWS.min(self.rows - first),
                self.p + q,
                sums.cast::<i32>()
                    .add(first * EPILOGUE_ROW_STRIDE + q * PANEL),
            )
        }
    }
}

/// Sums `MT` row tiles (`a`) against `NT` B panels (at `b`, lines of whole tiles) over
/// `full` whole K steps and, when `steps > full`, the partial last one, into `c` (row
/// tile t, panel q at rows `16t..`, columns `16q..`, rows `EPILOGUE_ROW_STRIDE` i32
/// apart). Calls `between(s)` after issuing step s.
///
/// # Safety
///
/// Tiles are configured (`amx::configure`); the first `MT` of `a` and the first `NT` of `b`
/// give 16 readable rows of 64 bytes for every step; `c` has 32 writable rows.
#[inline(always)]
unsafe fn tile_block<const MT: usize, const NT: usize>(
    a: [ATile; 2],
    b: [*const i8; 2],
    full: usize,
    steps: usize,
    c: *mut i32,
    mut between: impl FnMut(usize),
) {
    const C_STRIDE: usize = EPILOGUE_ROW_STRIDE * 4;
    // SAFETY: the caller's contract.
    unsafe {
        tilezero!(0);
        if NT == 2 {
            tilezero!(1);
        }
        if MT == 2 {
            tilezero!(2);
            if NT == 2 {
                tilezero!(3);
            }
        }
        let b_at = |s: usize| [b[0].add(s * B_TILE), b[1].wrapping_add(s * B_TILE)];
        for s in 0..full {
            let a_at = |t: usize| (a[t].base.wrapping_add(s * K_STEP), a[t].stride);
            step::<MT, NT>([a_at(0), a_at(1)], b_at(s));
            between(s);
        }
        if steps > full {
            let a_at = |t: usize| (a[t].tail, a[t].tail_stride);
            step::<MT, NT>([a_at(0), a_at(1)], b_at(full));
            between(full);
        }
        tilestored!(0, c, C_STRIDE);
        if NT == 2 {
            tilestored!(1, c.add(PANEL), C_STRIDE);
        }
        if MT == 2 {
            let c = c.add(TILE_ROWS * EPILOGUE_ROW_STRIDE);
            tilestored!(2, c, C_STRIDE);
            if NT == 2 {
                tilestored!(3, c.add(PANEL), C_STRIDE);
            }
        }
    }
}

/// One K step of [`tile_block`]: row tile t from `a[t]` (address, row stride), panel q's
/// tile at `b[q]`.
///
/// # Safety
///
/// As [`tile_block`], for this step.
#[inline(always)]
unsafe fn step<const MT: usize, const NT: usize>(a: [(*const u8, usize); 2], b: [*const i8; 2]) {
    // SAFETY: the caller's contract.
    unsafe {
        tileloadd!(4, a[0].0, a[0].1);
        tileloaddt1!(6, b[0], TILE_BYTES);
        tdpbusd!(0, 4, 6);
        if NT == 2 {
            tileloaddt1!(7, b[1], TILE_BYTES);
            tdpbusd!(1, 4, 7);
        }
        if MT == 2 {
            tileloadd!(5, a[1].0, a[1].1);
            tdpbusd!(2, 5, 6);
            if NT == 2 {
                tdpbusd!(3, 5, 7);
            }
        }
    }
}
