//! u8 × i8 GEMM with AMX-INT8: `tdpbusd` on 16 × 64-byte tiles, 2 × 2 accumulator tiles
//! (tmm0–3: 32 rows × 32 columns of i32), two A tiles (tmm4–5: 16 rows × 64 k of u8) and
//! two B tiles (tmm6–7: 16 K-quads × 16 columns × 4 k of i8) per K step of 64.
//!
//! B is packed for AMX (`PackedB` with [`Isa::Amx`](crate::Isa::Amx)): the usual panels
//! of 16 columns, each a run of 64-byte lines of 4 k, with the line count padded to whole
//! tiles, so one B tile is 16 consecutive lines: one `tileloadd` with a 64-byte stride,
//! and the padding is zero weights. A is copied once per call into the same form (each
//! A tile 1 KiB contiguous, zero past K and past the last row), which also keeps every
//! tile load inside its buffer. Column blocks run outside and row blocks inside, so B is
//! read once per call (it need not fit in L2) and a column block's two panels stay in L1
//! over the row blocks; A streams in order. Measured, loaded machine: reading A in place
//! with the caller's stride was no faster, and 1 × 2 tiles lost to 2 × 2 once the
//! epilogue overlapped the multiplies.
//!
//! Exactness: `tdpbusd` sums exact u8 × i8 products into i32 lanes, wrapping like the
//! reference (the order of a wrapping sum does not change it). The accumulators go through
//! a 4 KiB buffer to the AVX-512 epilogue of the other x86 kernels
//! ([`qgemm::epilogue`] with [`Avx512Epi`]), so the zero-point corrections and every
//! output stage are the very code the VNNI path runs. A block's epilogue runs in shares
//! between the K steps of the next block: the vector work then overlaps the tile
//! multiplies instead of following them.

use crate::arch::qgemm::{self, Ctx};
use crate::arch::x86_64::amx::{
    self, TILE_BYTES, TILE_ROWS, tdpbusd, tileloadd, tilestored, tilezero,
};
use crate::arch::x86_64::qgemm_avx512::Avx512Epi;
use crate::arch::x86_64::qgemm_avx512vnni::Vnni;
use crate::error::Result;
use crate::gemm::{GemmOutput, OutputStage, PANEL, U8I8Block};

/// k per tile step: 16 K-quads.
pub(crate) const K_STEP: usize = TILE_ROWS * 4;
/// Bytes of one B tile: 16 packed lines.
const B_TILE: usize = TILE_ROWS * TILE_BYTES;

/// The accumulators of one 32 × 32 block as the epilogue reads them: row r, panel q at
/// `0[r][16q..]`.
#[repr(C, align(64))]
struct Sums([[i32; 2 * PANEL]; 2 * TILE_ROWS]);

/// 64 bytes of A: one row of an A tile in a K step, or a row of [`Sums`].
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
    // Two blocks' sums: the epilogue of one block runs while the tiles compute the next.
    let mut sums = [
        Sums([[0; 2 * PANEL]; 2 * TILE_ROWS]),
        Sums([[0; 2 * PANEL]; 2 * TILE_ROWS]),
    ];
    // A packed tile by tile: row block b (32 rows from r0 + 32b), step s, row tile t is
    // the 16 lines from ((b · steps + s) · 2 + t) · 16, zero-padded past k and past the
    // last row.
    let blocks = (r1 - r0).div_ceil(2 * TILE_ROWS);
    let block_lines = steps * 2 * TILE_ROWS;
    let mut packed_a = vec![Line([0; TILE_BYTES]); blocks * block_lines];
    // SAFETY: the CPU has AMX and tile permission (the caller's contract). Every tile load
    // reads 16 rows of 64 bytes that exist: `packed_a` (steps · 2 tiles per block), and
    // lines of panels below p1 ≤ ceil(n / 16), `groups` · 64 bytes per panel (B packed
    // for AMX); the epilogue gets rows and panels of a block, and its sums.
    unsafe {
        for (b, lines) in packed_a.chunks_exact_mut(block_lines.max(1)).enumerate() {
            let i = r0 + b * 2 * TILE_ROWS;
            pack_a(&ctx, i, (r1 - i).min(2 * TILE_ROWS), lines);
        }
        amx::configure();
        let mut pending = Pending::none();
        // Column blocks outside, row blocks inside: the two B panels of a column block
        // (32 KiB at k = 1024) stay in L1 while every row block runs over them, and the
        // packed A streams through in order.
        let mut p = p0;
        while p < p1 {
            let nt = (p1 - p).min(2);
            let b = [
                ctx.b.lines.add(p * panel_bytes),
                ctx.b.lines.wrapping_add((p + 1) * panel_bytes),
            ];
            let mut i = r0;
            while i < r1 {
                let rows = (r1 - i).min(2 * TILE_ROWS);
                let mt = rows.div_ceil(TILE_ROWS);
                let a = packed_a
                    .as_ptr()
                    .wrapping_add((i - r0) / (2 * TILE_ROWS) * block_lines)
                    .cast::<u8>();
                // The previous block's epilogue, a share after each K step, so that
                // vector work overlaps the tile multiplies in flight.
                let [current, previous] = sums.each_mut();
                let (current, previous) = if pending.slot == 0 {
                    (previous, &*current)
                } else {
                    (current, &*previous)
                };
                let share = pending.items.div_ceil(steps.max(1));
                let mut done = 0;
                let mut finish = |upto: usize| {
                    while done < upto.min(pending.items) {
                        pending.run(&ctx, previous, done);
                        done += 1;
                    }
                };
                match (mt, nt) {
                    (1, 1) => tile_block::<1, 1>(a, b, steps, current, |s| finish((s + 1) * share)),
                    (1, _) => tile_block::<1, 2>(a, b, steps, current, |s| finish((s + 1) * share)),
                    (_, 1) => tile_block::<2, 1>(a, b, steps, current, |s| finish((s + 1) * share)),
                    _ => tile_block::<2, 2>(a, b, steps, current, |s| finish((s + 1) * share)),
                }
                finish(usize::MAX);
                pending = Pending {
                    i,
                    p,
                    nt,
                    items: rows * nt,
                    slot: 1 - pending.slot,
                };
                i += rows;
            }
            p += nt;
        }
        let [first, second] = &sums;
        let last = if pending.slot == 0 { first } else { second };
        for item in 0..pending.items {
            pending.run(&ctx, last, item);
        }
        amx::release();
    }
    Ok(())
}

/// A block whose sums wait in `sums[slot]` for the epilogue: rows `i..`, panels `p..p +
/// nt`, `items` (row, panel) pairs.
struct Pending {
    i: usize,
    p: usize,
    nt: usize,
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
            items: 0,
            slot: 1,
        }
    }

    /// The epilogue of the block's `item`-th (row, panel) pair.
    ///
    /// # Safety
    ///
    /// `ctx` is the call's context, `self` a block of it, `sums` its sums; the CPU has
    /// AVX-512 F and BW.
    #[inline(always)]
    unsafe fn run(&self, ctx: &Ctx, sums: &Sums, item: usize) {
        // nt is 1 or 2: a shift, not a division, in this hot loop.
        let (r, q) = (item >> (self.nt - 1), item & (self.nt - 1));
        // SAFETY: the caller's contract; row r < 32 of the block, panel q < 2.
        unsafe {
            qgemm::epilogue::<Avx512Epi>(
                ctx,
                self.i + r,
                self.p + q,
                sums.0[r][q * PANEL..].as_ptr(),
            )
        }
    }
}

/// Packs rows `first..first + rows` of A (`rows` ≤ 32) into `packed` tile by tile (see
/// [`gemm_u8i8`]), zero past k and in the missing rows.
///
/// # Safety
///
/// Rows `first..first + rows` of A hold `ctx.k` codes each; `packed` holds
/// `2 · 16 · ceil(k / 64)` lines.
#[inline(always)]
unsafe fn pack_a(ctx: &Ctx, first: usize, rows: usize, packed: &mut [Line]) {
    let k = ctx.k;
    for r in 0..2 * TILE_ROWS {
        let (t, rr) = (r / TILE_ROWS, r % TILE_ROWS);
        let row: &[u8] = if r < rows && k > 0 {
            // SAFETY: the caller's contract.
            unsafe { std::slice::from_raw_parts(ctx.a.add((first + r) * ctx.a_stride), k) }
        } else {
            &[]
        };
        let mut chunks = row.chunks(K_STEP);
        for group in packed.chunks_exact_mut(2 * TILE_ROWS) {
            let line = &mut group[t * TILE_ROWS + rr].0;
            let chunk = chunks.next().unwrap_or(&[]);
            // Whole lines as one fixed-size copy (a vector move, not a memcpy call).
            if let Ok(whole) = <&[u8; TILE_BYTES]>::try_from(chunk) {
                *line = *whole;
            } else {
                line[..chunk.len()].copy_from_slice(chunk);
                line[chunk.len()..].fill(0);
            }
        }
    }
}

/// Sums `MT` row tiles against `NT` B panels (at `b`, lines of whole tiles) over `steps` K
/// steps into `sums`: row tile t, panel q at rows `16t..`, columns `16q..`. Calls
/// `between(s)` after issuing step s.
///
/// # Safety
///
/// Tiles are configured (`amx::configure`); the first `MT` of `a` and the first `NT` of `b`
/// give 16 readable rows of 64 bytes for every step.
#[inline(always)]
unsafe fn tile_block<const MT: usize, const NT: usize>(
    a: *const u8,
    b: [*const i8; 2],
    steps: usize,
    sums: &mut Sums,
    mut between: impl FnMut(usize),
) {
    const C_STRIDE: usize = 2 * PANEL * 4;
    // SAFETY: the caller's contract; `sums` has 32 rows of 128 bytes.
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
        for s in 0..steps {
            let a_step = a.add(s * 2 * TILE_ROWS * TILE_BYTES);
            tileloadd!(4, a_step, TILE_BYTES);
            tileloadd!(6, b[0].add(s * B_TILE), TILE_BYTES);
            tdpbusd!(0, 4, 6);
            if NT == 2 {
                tileloadd!(7, b[1].add(s * B_TILE), TILE_BYTES);
                tdpbusd!(1, 4, 7);
            }
            if MT == 2 {
                tileloadd!(5, a_step.add(TILE_ROWS * TILE_BYTES), TILE_BYTES);
                tdpbusd!(2, 5, 6);
                if NT == 2 {
                    tdpbusd!(3, 5, 7);
                }
            }
            between(s);
        }
        let c = sums.0.as_mut_ptr().cast::<i32>();
        tilestored!(0, c, C_STRIDE);
        if NT == 2 {
            tilestored!(1, c.add(PANEL), C_STRIDE);
        }
        if MT == 2 {
            tilestored!(2, c.add(TILE_ROWS * 2 * PANEL), C_STRIDE);
            if NT == 2 {
                tilestored!(3, c.add(TILE_ROWS * 2 * PANEL + PANEL), C_STRIDE);
            }
        }
    }
}
