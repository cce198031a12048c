//! u8 × i8 GEMM with AMX-INT8: `tdpbusd` on 16 × 64-byte tiles, 2 × 2 accumulator tiles
//! (tmm0–3: 32 rows × 32 columns of i32), two A tiles (tmm4–5: 16 rows × 64 k of u8) and
//! two B tiles (tmm6–7: 16 K-quads × 16 columns × 4 k of i8) per K step of 64.
//!
//! B is packed for AMX (`PackedB` with [`Isa::Amx`](crate::Isa::Amx)): the usual panels
//! of 16 columns, each a run of 64-byte lines of 4 k, with the line count padded to whole
//! tiles, so one B tile is 16 consecutive lines: one `tileloadd` with a 64-byte stride,
//! and the padding is zero weights. A tiles load straight from the caller's rows (with the
//! caller's stride) except where a tile would read past A: the last K step when K is not a
//! multiple of 64 and a row tile of fewer than 16 rows read from zero-padded copies.
//!
//! Exactness: `tdpbusd` sums exact u8 × i8 products into i32 lanes, wrapping like the
//! reference (the order of a wrapping sum does not change it). The accumulators go through
//! a 4 KiB buffer to the AVX-512 epilogue of the other x86 kernels
//! ([`qgemm::epilogue`] with [`Avx512Epi`]), so the zero-point corrections and every
//! output stage are the very code the VNNI path runs.

use crate::arch::qgemm::{self, Ctx};
use crate::arch::x86_64::amx::{self, TILE_BYTES, TILE_ROWS, tdpbusd, tileloadd, tilestored, tilezero};
use crate::arch::x86_64::qgemm_avx512::Avx512Epi;
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

/// 16 rows of 64 bytes, the A tile of a K step that the caller's rows cannot provide.
#[repr(C, align(64))]
struct Tail([[u8; TILE_BYTES]; TILE_ROWS]);

/// Where one A tile (16 rows) reads each K step: `full` steps from `base` (rows `stride`
/// apart), the rest from `tail` (rows 64 bytes apart).
#[derive(Clone, Copy)]
struct RowTile {
    base: *const u8,
    stride: usize,
    full: usize,
    tail: *const u8,
}

impl RowTile {
    /// The tile's rows for step `s`, and their stride.
    #[inline(always)]
    fn at(&self, s: usize) -> (*const u8, usize) {
        if s < self.full {
            (self.base.wrapping_add(s * K_STEP), self.stride)
        } else {
            (self.tail, TILE_BYTES)
        }
    }
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
    let ctx = Ctx::new(block, stage, out, out_stride);
    let k = ctx.k;
    let steps = k.div_ceil(K_STEP);
    debug_assert_eq!(ctx.b.groups, steps * TILE_ROWS, "B is not packed for AMX");
    let (p0, p1) = (ctx.c0 / PANEL, ctx.c1.div_ceil(PANEL));
    let panel_bytes = ctx.b.groups * TILE_BYTES;
    let mut sums = Sums([[0; 2 * PANEL]; 2 * TILE_ROWS]);
    let mut tails = [
        Tail([[0; TILE_BYTES]; TILE_ROWS]),
        Tail([[0; TILE_BYTES]; TILE_ROWS]),
    ];
    // A row tile of fewer than 16 rows, zero-padded to 16 rows of `steps` · 64 bytes.
    let mut short = Vec::new();
    // SAFETY: the CPU has AMX and tile permission (the caller's contract). Every tile load
    // reads 16 rows of 64 bytes that exist: rows of A within `rows` up to k (validated),
    // the tails, `short`, and lines of panels below p1 ≤ ceil(n / 16) within `groups` ·
    // 64 bytes per panel (B packed for AMX); the epilogue gets rows and panels of the
    // block and `sums` holds the 16 sums it reads.
    unsafe {
        amx::configure();
        let mut i = r0;
        while i < r1 {
            let rows = (r1 - i).min(2 * TILE_ROWS);
            let mut tiles = [RowTile {
                base: ctx.a,
                stride: 0,
                full: 0,
                tail: ctx.a,
            }; 2];
            for (t, (tile, tail)) in tiles.iter_mut().zip(&mut tails).enumerate() {
                let first = i + t * TILE_ROWS;
                let count = (r1 - first.min(r1)).min(TILE_ROWS);
                // With k = 0 no tile is loaded (and A may be empty).
                if count == 0 || steps == 0 {
                    break;
                }
                *tile = row_tile(&ctx, first, count, steps, tail, &mut short);
            }
            let mt = rows.div_ceil(TILE_ROWS);
            let mut p = p0;
            while p < p1 {
                let nt = (p1 - p).min(2);
                let b = [
                    ctx.b.lines.add(p * panel_bytes),
                    ctx.b.lines.wrapping_add((p + 1) * panel_bytes),
                ];
                match (mt, nt) {
                    (1, 1) => tile_block::<1, 1>(&tiles, b, steps, &mut sums),
                    (1, _) => tile_block::<1, 2>(&tiles, b, steps, &mut sums),
                    (_, 1) => tile_block::<2, 1>(&tiles, b, steps, &mut sums),
                    _ => tile_block::<2, 2>(&tiles, b, steps, &mut sums),
                }
                for (r, row) in sums.0.iter().enumerate().take(rows) {
                    for q in 0..nt {
                        qgemm::epilogue::<Avx512Epi>(&ctx, i + r, p + q, row[q * PANEL..].as_ptr());
                    }
                }
                p += nt;
            }
            i += rows;
        }
        amx::release();
    }
    Ok(())
}

/// Where the A tile of rows `first..first + count` reads: the caller's rows for every
/// whole K step, `tail` (filled here) for a partial last one; or, for fewer than 16 rows,
/// `short` (filled here) for every step.
///
/// # Safety
///
/// Rows `first..first + count` of A hold `ctx.k` codes each; `count` is 1..=16; `steps`
/// is `ceil(k / 64)`.
unsafe fn row_tile(
    ctx: &Ctx,
    first: usize,
    count: usize,
    steps: usize,
    tail: &mut Tail,
    short: &mut Vec<u8>,
) -> RowTile {
    let k = ctx.k;
    // SAFETY: the caller's contract: each copied range lies within its row of A.
    let row = |r: usize| unsafe {
        std::slice::from_raw_parts(ctx.a.add((first + r) * ctx.a_stride), k)
    };
    if count < TILE_ROWS {
        let width = steps * K_STEP;
        short.clear();
        short.resize(TILE_ROWS * width, 0);
        for r in 0..count {
            short[r * width..][..k].copy_from_slice(row(r));
        }
        return RowTile {
            base: short.as_ptr(),
            stride: width,
            full: steps,
            tail: short.as_ptr(),
        };
    }
    let full = k / K_STEP;
    if full < steps {
        for (r, line) in tail.0.iter_mut().enumerate() {
            let rest = &row(r)[full * K_STEP..];
            line[..rest.len()].copy_from_slice(rest);
            line[rest.len()..].fill(0);
        }
    }
    RowTile {
        base: ctx.a.wrapping_add(first * ctx.a_stride),
        stride: ctx.a_stride,
        full,
        tail: tail.0.as_ptr().cast(),
    }
}

/// Sums `MT` row tiles against `NT` B panels (at `b`, lines of whole tiles) over `steps` K
/// steps into `sums`: row tile t, panel q at rows `16t..`, columns `16q..`.
///
/// # Safety
///
/// Tiles are configured (`amx::configure`); the first `MT` of `a` and the first `NT` of `b`
/// give 16 readable rows of 64 bytes for every step.
#[inline(always)]
unsafe fn tile_block<const MT: usize, const NT: usize>(
    a: &[RowTile; 2],
    b: [*const i8; 2],
    steps: usize,
    sums: &mut Sums,
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
            let (a0, a0_stride) = a[0].at(s);
            tileloadd!(4, a0, a0_stride);
            tileloadd!(6, b[0].add(s * B_TILE), TILE_BYTES);
            tdpbusd!(0, 4, 6);
            if NT == 2 {
                tileloadd!(7, b[1].add(s * B_TILE), TILE_BYTES);
                tdpbusd!(1, 4, 7);
            }
            if MT == 2 {
                let (a1, a1_stride) = a[1].at(s);
                tileloadd!(5, a1, a1_stride);
                tdpbusd!(2, 5, 6);
                if NT == 2 {
                    tdpbusd!(3, 5, 7);
                }
            }
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
