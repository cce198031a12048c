//! The u8 × i8 GEMM loop over packed weights that every `qgemm_*` kernel instantiates with
//! its own dot-product step ([`Dot`]) and vector epilogue ([`Epi`]), plus the portable
//! instantiation the Scalar level runs.
//!
//! No intrinsics here: each instruction set implements the two traits with
//! `#[inline(always)]` methods, and its `#[target_feature]` entry point calls [`gemm`], so
//! the whole loop is compiled for that instruction set.
//!
//! Exactness: the K loop sums exact products in i32 (wrapping, like the reference; the
//! order of a wrapping integer sum does not change it). The epilogue then computes
//! `raw = acc − za · col_offset[j] − zb[j] · row_sum[i]` in wrapping i32 and the stage with
//! the reference's f32 operations in the reference's order, one column per lane.

use crate::error::Result;
use crate::gemm::{
    GemmOutput, OutputStage, PANEL, PackedParts, PerColumn, QUAD, QuantType, RequantBias, U8I8Block,
};

/// Largest register tile: rows.
const MR_MAX: usize = 8;
/// Largest register tile: panels of 16 columns.
const NP_MAX: usize = 4;

/// One instruction set's K step: four k of one row of A against four k of 16 columns.
///
/// Methods are `#[inline(always)]`; they may only run inside the kernel compiled for the
/// instruction set (the trait's contract).
pub(crate) trait Dot {
    /// Rows per register tile (≤ 8).
    const MR: usize;
    /// Panels per register tile (≤ 4).
    const NP: usize;
    /// Panels per register tile when the block has a single row (≤ 8).
    const NP1: usize;
    /// K steps per iteration of the step loop over rows of A in place (one row tile: one
    /// pointer bump and bound test for all): more than one where those scalar instructions
    /// would take the dot product's ports.
    const UNROLL: usize = 1;
    /// Bytes of one packed line: 64 (i8) or 128 (weights stored widened to i16, see
    /// `PackedB`).
    const LINE_BYTES: usize;
    /// Four A codes in the form the step wants (broadcast, widened, or offset).
    type A: Copy;
    /// One 64-byte packed line in the form the step wants.
    type B: Copy;
    /// The running sums of one row over one panel.
    type Acc: Copy;

    /// The accumulator at k = 0 for the panel whose column sums start at `col_sums`.
    unsafe fn init(col_sums: *const i32) -> Self::Acc;
    /// `quad` holds A[k..k + 4] little-endian.
    unsafe fn a(quad: u32) -> Self::A;
    /// Whether a packed copy of A ([`pack_a`]) holds the codes zero-extended to 16 bits:
    /// for steps that multiply in i16, which then broadcast a quad without widening it in
    /// the K loop.
    const A_WIDE: bool = false;
    /// [`Dot::a`] of the quad at `p` in a packed copy of A (4 codes, or 4 little-endian
    /// u16 when [`Dot::A_WIDE`]).
    #[inline(always)]
    unsafe fn a_packed(p: *const u8) -> Self::A {
        // SAFETY: the caller provides the quad's 4 bytes at `p`.
        unsafe { Self::a(u32::from_le(p.cast::<u32>().read_unaligned())) }
    }
    /// The line at `p` (`LINE_BYTES` readable bytes, 64-byte aligned).
    unsafe fn b(p: *const i8) -> Self::B;
    /// Asks for the line at `p` to be brought into L1 (a hint: nothing is read, and any
    /// address may be given).
    #[inline(always)]
    unsafe fn prefetch(_p: *const i8) {}
    /// `acc + Σ_{r<4} a[r] · b[c][r]` per column c, wrapping.
    unsafe fn dot(acc: Self::Acc, a: Self::A, b: Self::B) -> Self::Acc;
    /// Stores the 16 column sums of `acc` at `out` (16 writable i32).
    unsafe fn store(acc: Self::Acc, out: *mut i32);

    /// `Σ row[0..k]`, wrapping, for the weight zero-point term (`k` readable bytes at
    /// `row`).
    #[inline(always)]
    unsafe fn row_sum(row: *const u8, k: usize) -> i32 {
        // SAFETY: the caller provides k readable bytes.
        let row = unsafe { std::slice::from_raw_parts(row, k) };
        row.iter().fold(0i32, |s, &x| s.wrapping_add(i32::from(x)))
    }
}

/// One instruction set's vectors for the epilogue: `LANES` i32 and f32 lanes and the few
/// operations the output stages need, each with the reference's rounding.
pub(crate) trait Epi {
    /// Lanes per vector (divides 16).
    const LANES: usize;
    /// `LANES` i32.
    type I: Copy;
    /// `LANES` f32.
    type F: Copy;

    /// All lanes `x`.
    unsafe fn splat_i(x: i32) -> Self::I;
    /// All lanes `x`.
    unsafe fn splat_f(x: f32) -> Self::F;
    /// `LANES` i32 at `p`.
    unsafe fn load_i(p: *const i32) -> Self::I;
    /// `LANES` f32 at `p`.
    unsafe fn load_f(p: *const f32) -> Self::F;
    /// Wrapping `a + b`.
    unsafe fn add_i(a: Self::I, b: Self::I) -> Self::I;
    /// Wrapping `a · b`.
    unsafe fn mul_i(a: Self::I, b: Self::I) -> Self::I;
    /// i32 → f32, rounding to nearest even.
    unsafe fn to_f(a: Self::I) -> Self::F;
    /// `a + b`.
    unsafe fn add_f(a: Self::F, b: Self::F) -> Self::F;
    /// `a · b`.
    unsafe fn mul_f(a: Self::F, b: Self::F) -> Self::F;
    /// `a / b`.
    unsafe fn div_f(a: Self::F, b: Self::F) -> Self::F;
    /// `if y < 0 { +0.0 } else { y }` (−0.0 and NaN pass).
    unsafe fn relu_f(y: Self::F) -> Self::F;
    /// `y` rounded half to even and clamped to `[lo, hi]`, integers within ±2^24; NaN
    /// gives `lo`. This is the reference's saturating round (NaN to `i32::MIN`) followed
    /// by its clamp: rounding is monotone and keeps the integer bounds, so clamping before
    /// it gives the same integer, and then the conversion cannot leave i32.
    unsafe fn round_clamp(y: Self::F, lo: Self::F, hi: Self::F) -> Self::I;
    /// Stores `LANES` i32 at `p`.
    unsafe fn store_i32(p: *mut i32, v: Self::I);
    /// Stores `LANES` f32 at `p`.
    unsafe fn store_f32(p: *mut f32, v: Self::F);
    /// Stores the low byte of each lane (values already within u8 or i8) at `p`.
    unsafe fn store_i8(p: *mut u8, v: Self::I);

    // The partial forms, for the last columns of a block or panel (`n < LANES` values at
    // `p`; the other lanes of a load hold any value). By default through a padded copy;
    // an instruction set with masked moves overrides them, because the copy's `memcpy`
    // call, inlined with the full-width path, makes the compiler keep that path's
    // constants on the stack and reload them for every row.

    /// [`Epi::load_i`] of the `n` i32 at `p`.
    #[inline(always)]
    unsafe fn load_i_part(p: *const i32, n: usize) -> Self::I {
        // SAFETY: the caller provides n readable values; the copy holds LANES.
        unsafe { Self::load_i(padded(p, n).as_ptr()) }
    }
    /// [`Epi::load_f`] of the `n` f32 at `p`.
    #[inline(always)]
    unsafe fn load_f_part(p: *const f32, n: usize) -> Self::F {
        // SAFETY: as for `load_i_part`.
        unsafe { Self::load_f(padded(p, n).as_ptr()) }
    }
    /// [`Epi::store_i32`] of the first `n` lanes.
    #[inline(always)]
    unsafe fn store_i32_part(p: *mut i32, v: Self::I, n: usize) {
        // SAFETY: the caller provides n writable values.
        unsafe { store_part(p, n, |q| Self::store_i32(q, v)) }
    }
    /// [`Epi::store_f32`] of the first `n` lanes.
    #[inline(always)]
    unsafe fn store_f32_part(p: *mut f32, v: Self::F, n: usize) {
        // SAFETY: as for `store_i32_part`.
        unsafe { store_part(p, n, |q| Self::store_f32(q, v)) }
    }
    /// [`Epi::store_i8`] of the first `n` lanes.
    #[inline(always)]
    unsafe fn store_i8_part(p: *mut u8, v: Self::I, n: usize) {
        // SAFETY: as for `store_i32_part`.
        unsafe { store_part(p, n, |q| Self::store_i8(q, v)) }
    }
}

/// The output stage with its per-tensor values resolved and its per-column arrays as
/// pointers indexed by the global column.
#[derive(Clone, Copy)]
enum Stage {
    Raw,
    Requant {
        bias: Bias,
        multiplier: Col<f32>,
        zero_point: i32,
        lo: i32,
        hi: i32,
    },
    Dequant {
        a_scale: f32,
        b_scale: Col<f32>,
        bias: Option<*const f32>,
        relu: bool,
    },
}

/// The f32 bias of a requantizing stage; an i32 bias is added to the accumulators'
/// starting values instead (see [`Ctx::col_init`]).
#[derive(Clone, Copy)]
enum Bias {
    None,
    /// `bias[j] · recip`, `recip = 1 / act_times_w_scale` (per-tensor scale).
    F32Tensor(*const f32, f32),
    /// `bias[j] / scale[j]`.
    F32Column(*const f32, *const f32),
}

/// A per-tensor value or a per-column array.
#[derive(Clone, Copy)]
enum Col<T> {
    Splat(T),
    At(*const T),
}

impl<T: Copy> Col<T> {
    fn new(p: PerColumn<'_, T>) -> Self {
        match p {
            PerColumn::Tensor(v) => Col::Splat(v),
            PerColumn::Column(v) => Col::At(v.as_ptr()),
        }
    }
}

impl Stage {
    /// The stage, and its i32 bias if it has one.
    fn new(stage: &OutputStage<'_>) -> (Stage, Option<*const i32>) {
        let int_bias = match *stage {
            OutputStage::Requantize {
                bias: RequantBias::I32(b),
                ..
            } => Some(b.as_ptr()),
            _ => None,
        };
        let stage = match *stage {
            OutputStage::RawI32 => Stage::Raw,
            OutputStage::Requantize {
                out,
                bias,
                multiplier,
                zero_point,
                relu,
            } => {
                let (type_lo, hi) = match out {
                    QuantType::U8 => (0, 255),
                    QuantType::I8 => (-128, 127),
                };
                Stage::Requant {
                    bias: match bias {
                        RequantBias::None | RequantBias::I32(_) => Bias::None,
                        RequantBias::F32 {
                            bias,
                            act_times_w_scale: PerColumn::Tensor(s),
                        } => Bias::F32Tensor(bias.as_ptr(), 1.0 / s),
                        RequantBias::F32 {
                            bias,
                            act_times_w_scale: PerColumn::Column(s),
                        } => Bias::F32Column(bias.as_ptr(), s.as_ptr()),
                    },
                    multiplier: Col::new(multiplier),
                    zero_point,
                    lo: if relu { zero_point } else { type_lo },
                    hi,
                }
            }
            OutputStage::Dequantize {
                a_scale,
                b_scale,
                bias,
                relu,
            } => Stage::Dequant {
                a_scale,
                b_scale: Col::new(b_scale),
                bias: bias.map(<[f32]>::as_ptr),
                relu,
            },
        };
        (stage, int_bias)
    }
}

/// The weight zero points over the block's columns.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BlockZb {
    /// All zero: rows of A need no sums.
    Zero,
    /// One value: row i's term `zb · row_sum[i]` is the same in every column.
    Tensor(i32),
    /// Per column: `zb[j] · row_sum[i]`.
    Column,
}

impl BlockZb {
    /// What [`Ctx::row_sums`] holds for a row whose codes sum to `sum`.
    #[inline(always)]
    fn row_term(self, sum: i32) -> i32 {
        match self {
            BlockZb::Tensor(z) => z.wrapping_mul(sum).wrapping_neg(),
            _ => sum.wrapping_neg(),
        }
    }
}

/// Where results go: the block's element (0, 0) and its row stride.
#[derive(Clone, Copy)]
enum Out {
    I32(*mut i32),
    Byte(*mut u8),
    F32(*mut f32),
}

/// What stays fixed over one call. Kernels whose K loop is not a [`Dot`] (the AMX tiles)
/// build it too and finish their sums with [`epilogue_rows`].
pub(crate) struct Ctx {
    pub(crate) a: *const u8,
    pub(crate) a_stride: usize,
    pub(crate) k: usize,
    pub(crate) b: PackedParts,
    /// `bias[j] − za · col_offsets[j]` (bias zero unless the stage has an i32 bias) for
    /// columns `c0..c1`: every term of the result that depends on the column only, which
    /// wrapping arithmetic lets the epilogue add in one step.
    col_init: Vec<i32>,
    zb: BlockZb,
    /// For rows `rows.start..`: `−Σk A[i][k]`, already times `zb` when that is one value
    /// ([`BlockZb::Tensor`]); empty when `zb` is [`BlockZb::Zero`]. Negated and
    /// multiplied ahead so that the epilogue adds it as a broadcast from memory, one
    /// instruction, where a subtrahend costs a scalar negation and a broadcast per row.
    row_sums: Vec<i32>,
    pub(crate) r0: usize,
    pub(crate) c0: usize,
    pub(crate) c1: usize,
    stage: Stage,
    out: Out,
    out_stride: usize,
}

impl Ctx {
    /// The call's context: the block's zero-point case, the row sums of A (with `D`'s
    /// `row_sum`), the column terms and the output stage.
    ///
    /// # Safety
    ///
    /// As for [`gemm`]: the arguments passed validation, the block is not empty, and the
    /// CPU runs `D`.
    // Only the AMX kernels (x86-64) build a context outside [`gemm`].
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub(crate) unsafe fn new<D: Dot>(
        block: &U8I8Block<'_>,
        stage: &OutputStage<'_>,
        out: &mut GemmOutput<'_>,
        out_stride: usize,
    ) -> Ctx {
        // SAFETY: forwarded.
        unsafe { Ctx::build::<D>(block, stage, out, out_stride, true) }
    }

    /// [`Ctx::new`], with the row sums left for [`pack_a`] to add (`sum_rows` false) when
    /// it reads A anyway.
    ///
    /// # Safety
    ///
    /// As for [`Ctx::new`].
    #[inline(always)]
    unsafe fn build<D: Dot>(
        block: &U8I8Block<'_>,
        stage: &OutputStage<'_>,
        out: &mut GemmOutput<'_>,
        out_stride: usize,
        sum_rows: bool,
    ) -> Ctx {
        let (r0, r1) = (block.rows.start, block.rows.end);
        let (c0, c1) = (block.cols.start, block.cols.end);
        let k = block.b.k();
        let parts = block.b.parts();
        // SAFETY: the packed arrays hold a value for every column below n ≥ c1.
        let zbs = unsafe { std::slice::from_raw_parts(parts.zero_points.add(c0), c1 - c0) };
        let zb = match zbs[0] {
            z if zbs.iter().any(|&y| y != z) => BlockZb::Column,
            0 => BlockZb::Zero,
            z => BlockZb::Tensor(z),
        };
        let mut row_sums = Vec::new();
        if zb != BlockZb::Zero && sum_rows {
            // A loop, not a closure: closures in this large function may be left out of line,
            // where the instruction set's intrinsics become calls.
            row_sums.reserve(r1 - r0);
            for i in r0..r1 {
                let row = block.a.as_ptr().wrapping_add(i * block.a_stride);
                // SAFETY: row i of A holds k codes (validated); with k = 0 nothing is read.
                let sum = unsafe { D::row_sum(row, k) };
                row_sums.push(zb.row_term(sum));
            }
        }
        let za = i32::from(block.a_zero_point);
        let (stage, int_bias) = Stage::new(stage);
        let col_init = (c0..c1)
            .map(|j| {
                // SAFETY: the stage's arrays hold n values and the packed ones at least n.
                let (offset, bias) =
                    unsafe { (*parts.col_offsets.add(j), int_bias.map_or(0, |b| *b.add(j))) };
                bias.wrapping_sub(za.wrapping_mul(offset))
            })
            .collect();
        Ctx {
            a: block.a.as_ptr(),
            a_stride: block.a_stride,
            k,
            b: parts,
            col_init,
            zb,
            row_sums,
            r0,
            c0,
            c1,
            stage,
            out: match out {
                GemmOutput::I32(o) => Out::I32(o.as_mut_ptr()),
                GemmOutput::U8(o) => Out::Byte(o.as_mut_ptr()),
                GemmOutput::I8(o) => Out::Byte(o.as_mut_ptr().cast()),
                GemmOutput::F32(o) => Out::F32(o.as_mut_ptr()),
            },
            out_stride,
        }
    }
}

/// Runs the GEMM block with `D`'s K step and `E`'s epilogue.
///
/// # Safety
///
/// `block`, `stage`, `out` and `out_stride` passed `U8I8Block::validate` (or
/// `U8I8Problem::validate` for the whole result with `block.b` packed from that problem);
/// the CPU runs `D` and `E` (the caller is compiled for them).
#[inline(always)]
pub(crate) unsafe fn gemm<D: Dot, E: Epi>(
    block: &U8I8Block<'_>,
    stage: &OutputStage<'_>,
    out: &mut GemmOutput<'_>,
    out_stride: usize,
) -> Result<()> {
    let (r0, r1) = (block.rows.start, block.rows.end);
    let (c0, c1) = (block.cols.start, block.cols.end);
    if r0 == r1 || c0 == c1 {
        return Ok(());
    }
    // Several row tiles sum the rows of A as they pack them.
    let several = r1 - r0 > D::MR;
    // SAFETY: the caller's contract, which includes `Ctx::new`'s.
    let mut ctx = unsafe { Ctx::build::<D>(block, stage, out, out_stride, !several) };
    let k = ctx.k;
    let (p0, p1) = (c0 / PANEL, c1.div_ceil(PANEL));
    let groups = k.div_ceil(QUAD);
    let mut acc = [0i32; ACC_LEN];
    if !several {
        // One row tile: B is read once whatever the order, so K is not blocked, A is read
        // in place, and a single row takes wider tiles (more independent accumulators per
        // line of A).
        let np_max = if r1 - r0 == 1 { D::NP1 } else { D::NP };
        let a = ASource {
            base: ctx.a.wrapping_add(r0 * ctx.a_stride),
            stride: ctx.a_stride,
        };
        let mut p = p0;
        while p < p1 {
            let np = panels_at(np_max, p0, p1, p);
            let steps = Steps::whole(groups);
            // SAFETY: rows r0..r1 are rows of A and panels p..p + np panels of B
            // (validated); `acc` holds ACC_LEN sums.
            unsafe {
                let state = std::ptr::null_mut();
                tile_by_rows::<D, false>(r1 - r0, np, &ctx, a, p, steps, state, &mut acc);
                epilogue_tile::<E>(&ctx, r0, r1 - r0, p, np, &acc);
            }
            p += np;
        }
        return Ok(());
    }
    // Several row tiles. A row block of `mc` rows is first packed (`pack_a`): per row
    // tile and K block, the tile's rows `packed_row_bytes` apart, a constant, so that a
    // tile addresses all its rows from one pointer. Then for each column block of up to
    // NP panels, its K block of `kc` groups stays in L1 while every row tile runs over
    // it; the tiles' running sums wait in `state` between K blocks, and the epilogue runs
    // on the last. K blocks are of equal size (a last block of a few groups would cost a
    // whole round of saved sums for little work).
    let kc_max = packed_row_bytes::<D>() / (QUAD * code_bytes::<D>());
    let blocks = groups.div_ceil(kc_max).max(1);
    let kc = groups.div_ceil(blocks).max(1);
    let tile_bytes = blocks * D::MR * packed_row_bytes::<D>();
    let mc = (L2_A_BYTES / tile_bytes)
        .max(1)
        .min((r1 - r0).div_ceil(D::MR))
        * D::MR;
    let mut packed: Vec<u8> = Vec::with_capacity(mc / D::MR * tile_bytes);
    // Spare capacity only: each tile writes its slots in its first K block before it
    // reads them in the next.
    let mut state: Vec<D::Acc> = Vec::with_capacity(mc * D::NP);
    ctx.row_sums.reserve(r1 - r0);
    let mut i0 = r0;
    while i0 < r1 {
        let i1 = (i0 + mc).min(r1);
        // SAFETY: rows i0..i1 of A hold k codes each (validated); `packed` has room for
        // mc / MR tiles.
        unsafe { pack_a::<D>(&mut ctx, i0, i1, kc, packed.as_mut_ptr()) };
        let mut p = p0;
        while p < p1 {
            let np = panels_at(D::NP, p0, p1, p);
            let mut g = 0;
            loop {
                let last = g + kc >= groups;
                // The block of B after this one: the next K block of these panels, or the
                // first of the next panels (none after the row block's last).
                let ahead = match (last, p + np < p1) {
                    (false, _) => ctx
                        .b
                        .lines
                        .wrapping_add((p * ctx.b.groups + g + kc) * D::LINE_BYTES),
                    (true, true) => ctx
                        .b
                        .lines
                        .wrapping_add((p + np) * ctx.b.groups * D::LINE_BYTES),
                    (true, false) => std::ptr::null(),
                };
                let mut i = i0;
                while i < i1 {
                    let mr = D::MR.min(i1 - i);
                    // The last row tile over this block of B also prefetches the next
                    // block, one line per panel and step: the next block's first tile then
                    // finds it in L1 rather than L2, and the lines it evicts are of a
                    // block no tile reads again.
                    let steps = Steps {
                        start: g,
                        end: (g + kc).min(groups),
                        first: g == 0,
                        last,
                        ahead: if i + mr == i1 {
                            ahead
                        } else {
                            std::ptr::null()
                        },
                    };
                    let t = (i - i0) / D::MR;
                    // SAFETY: `packed` holds this tile's rows of K block g / kc (written
                    // by `pack_a`), panels p..p + np are panels of B; the tile's mr · np
                    // slots start at (i − i0) · np, within the capacity of `state` (mc
                    // rows of NP panels).
                    unsafe {
                        let a = ASource {
                            base: packed
                                .as_ptr()
                                .add(t * tile_bytes + g / kc * D::MR * packed_row_bytes::<D>()),
                            stride: packed_row_bytes::<D>(),
                        };
                        let state = state.as_mut_ptr().add((i - i0) * np);
                        tile_by_rows::<D, true>(mr, np, &ctx, a, p, steps, state, &mut acc);
                        if steps.last {
                            epilogue_tile::<E>(&ctx, i, mr, p, np, &acc);
                        }
                    }
                    i += mr;
                }
                if last {
                    break;
                }
                g += kc;
            }
            p += np;
        }
        i0 = i1;
    }
    Ok(())
}

/// Panels in the column block that starts at panel `p`, of blocks of at most `np_max`
/// panels over `p0..p1`: the blocks differ by at most one panel (64 panels in blocks of 3
/// are 20 of 3 and 2 of 2, not 21 and a single one with a third of the accumulators),
/// larger first.
#[inline(always)]
fn panels_at(np_max: usize, p0: usize, p1: usize, p: usize) -> usize {
    let count = (p1 - p0).div_ceil(np_max);
    let (small, extra) = ((p1 - p0) / count, (p1 - p0) % count);
    // The first `extra` blocks have small + 1 panels.
    if p - p0 < extra * (small + 1) {
        small + 1
    } else {
        small
    }
}

/// Bytes between the rows of a tile in a packed copy of A: the codes of one K block, of
/// at most as many groups as put [`L1_B_BYTES`] of B in a block of `D::NP` panels.
#[inline(always)]
fn packed_row_bytes<D: Dot>() -> usize {
    L1_B_BYTES / (D::NP * D::LINE_BYTES) * QUAD * code_bytes::<D>()
}

/// Bytes of a code in a packed copy of A.
#[inline(always)]
fn code_bytes<D: Dot>() -> usize {
    if D::A_WIDE { 2 } else { 1 }
}

/// Packs rows `i0..i1` of A for the tiles of the several-tiles path at `packed`: row tile
/// t (rows `i0 + t · MR ..`), K block b (groups `b · kc ..`), row r at
/// `((t · blocks + b) · MR + r) · packed_row_bytes`, the block's codes from there (as u16
/// when [`Dot::A_WIDE`]), the last group of a row completed with zero codes. Appends the rows' zero-point terms
/// to `ctx.row_sums` while each row is hot (A is read from memory once).
///
/// # Safety
///
/// Rows `i0..i1` of A hold `ctx.k` codes; `packed` has room for the tiles of `i1 − i0`
/// rows (`blocks · MR · packed_row_bytes` bytes each); `kc ≥ 1`; the CPU runs `D`.
#[inline(always)]
unsafe fn pack_a<D: Dot>(ctx: &mut Ctx, i0: usize, i1: usize, kc: usize, packed: *mut u8) {
    let k = ctx.k;
    let groups = k.div_ceil(QUAD);
    let blocks = groups.div_ceil(kc).max(1);
    let row_bytes = packed_row_bytes::<D>();
    for i in i0..i1 {
        let (t, r) = ((i - i0) / D::MR, (i - i0) % D::MR);
        let row = ctx.a.wrapping_add(i * ctx.a_stride);
        for b in 0..blocks {
            let from = b * kc * QUAD;
            let to = ((b + 1) * kc * QUAD).min(k);
            // SAFETY: the caller's contract: codes from..to of row i exist, and the
            // destination row holds kc groups (row_bytes ≥ kc · QUAD).
            unsafe {
                let dst = packed.add(((t * blocks + b) * D::MR + r) * row_bytes);
                let padded = ((b + 1) * kc).min(groups) * QUAD;
                if D::A_WIDE {
                    let dst = dst.cast::<u16>();
                    for c in from..to {
                        dst.add(c - from).write_unaligned(u16::from(*row.add(c)));
                    }
                    for c in to..padded {
                        dst.add(c - from).write_unaligned(0);
                    }
                } else {
                    std::ptr::copy_nonoverlapping(row.add(from), dst, to.saturating_sub(from));
                    std::ptr::write_bytes(dst.add(to - from), 0, padded - to);
                }
            }
        }
        if ctx.zb != BlockZb::Zero {
            // SAFETY: row i holds k codes; with k = 0 nothing is read.
            let sum = unsafe { D::row_sum(row, k) };
            ctx.row_sums.push(ctx.zb.row_term(sum));
        }
    }
}

/// Bytes of B a K block keeps in L1 (half of a 48 KiB L1: A streams through the rest).
const L1_B_BYTES: usize = 24 << 10;
/// Bytes of A a row block packs (in L2, read once per column block).
const L2_A_BYTES: usize = 256 << 10;

/// Where a tile reads A: row r's codes from `base + r · stride`: rows of A in place, from
/// group 0, or a K block of their packed copy ([`pack_a`]), from the block's first group.
#[derive(Clone, Copy)]
struct ASource {
    base: *const u8,
    stride: usize,
}

/// Sums a tile hands to the epilogue: `(r · NP_MAX + q) · 16` for row r, panel q.
const ACC_LEN: usize = MR_MAX * NP_MAX * PANEL;

/// The K groups one call of a tile covers, and whether they start or end K.
#[derive(Clone, Copy)]
struct Steps {
    start: usize,
    end: usize,
    first: bool,
    last: bool,
    /// The line at `start` of the first panel of the block of B the tiles run next, or
    /// null: the tile prefetches that block's lines as it runs its own steps (see
    /// [`gemm`]).
    ahead: *const i8,
}

impl Steps {
    fn whole(groups: usize) -> Steps {
        Steps {
            start: 0,
            end: groups,
            first: true,
            last: true,
            ahead: std::ptr::null(),
        }
    }
}

/// The line `off` bytes into each panel at `lines`.
///
/// # Safety
///
/// Each panel holds a line at `off`.
#[inline(always)]
unsafe fn lines_at<D: Dot, const NP: usize>(lines: &[*const i8; NP], off: usize) -> [D::B; NP] {
    // SAFETY: the caller's contract.
    unsafe {
        let mut b = [D::b(lines[0].add(off)); NP];
        // An index loop: in the one large kernel function, iterator adapters are left out
        // of line.
        #[allow(clippy::needless_range_loop)]
        for q in 1..NP {
            b[q] = D::b(lines[q].add(off));
        }
        b
    }
}

/// The epilogue of rows `i..i + mr` and panels `p..p + np` from the tile's sums, panel
/// by panel.
#[inline(always)]
unsafe fn epilogue_tile<E: Epi>(
    ctx: &Ctx,
    i: usize,
    mr: usize,
    p: usize,
    np: usize,
    acc: &[i32; ACC_LEN],
) {
    for q in 0..np {
        // SAFETY: row r's sums of panel p + q are at r · EPILOGUE_ROW_STRIDE + 16q <
        // ACC_LEN (r < MR_MAX and q < NP_MAX, or r = 0 and q < 2 · NP_MAX).
        unsafe { epilogue_rows::<E>(ctx, i, mr, p + q, acc.as_ptr().add(q * PANEL)) };
    }
}

/// Calls `tile::<D, PACKED, mr, np>`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_by_rows<D: Dot, const PACKED: bool>(
    mr: usize,
    np: usize,
    ctx: &Ctx,
    a: ASource,
    p: usize,
    steps: Steps,
    state: *mut D::Acc,
    acc: &mut [i32; ACC_LEN],
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        match mr {
            1 => match np {
                1 => tile::<D, PACKED, 1, 1>(ctx, a, p, steps, state, acc),
                2 => tile::<D, PACKED, 1, 2>(ctx, a, p, steps, state, acc),
                3 => tile::<D, PACKED, 1, 3>(ctx, a, p, steps, state, acc),
                4 => tile::<D, PACKED, 1, 4>(ctx, a, p, steps, state, acc),
                5 => tile::<D, PACKED, 1, 5>(ctx, a, p, steps, state, acc),
                6 => tile::<D, PACKED, 1, 6>(ctx, a, p, steps, state, acc),
                7 => tile::<D, PACKED, 1, 7>(ctx, a, p, steps, state, acc),
                _ => tile::<D, PACKED, 1, 8>(ctx, a, p, steps, state, acc),
            },
            2 => tile_by_panels::<D, PACKED, 2>(np, ctx, a, p, steps, state, acc),
            3 => tile_by_panels::<D, PACKED, 3>(np, ctx, a, p, steps, state, acc),
            4 => tile_by_panels::<D, PACKED, 4>(np, ctx, a, p, steps, state, acc),
            5 => tile_by_panels::<D, PACKED, 5>(np, ctx, a, p, steps, state, acc),
            6 => tile_by_panels::<D, PACKED, 6>(np, ctx, a, p, steps, state, acc),
            7 => tile_by_panels::<D, PACKED, 7>(np, ctx, a, p, steps, state, acc),
            _ => tile_by_panels::<D, PACKED, 8>(np, ctx, a, p, steps, state, acc),
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_by_panels<D: Dot, const PACKED: bool, const MR: usize>(
    np: usize,
    ctx: &Ctx,
    a: ASource,
    p: usize,
    steps: Steps,
    state: *mut D::Acc,
    acc: &mut [i32; ACC_LEN],
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        match np {
            1 => tile::<D, PACKED, MR, 1>(ctx, a, p, steps, state, acc),
            2 => tile::<D, PACKED, MR, 2>(ctx, a, p, steps, state, acc),
            3 => tile::<D, PACKED, MR, 3>(ctx, a, p, steps, state, acc),
            _ => tile::<D, PACKED, MR, 4>(ctx, a, p, steps, state, acc),
        }
    }
}

/// Sums the `MR` rows of A at `a` against panels `p..p + NP` of B over the K groups of
/// `steps`: starting from zero (`first`) or from the `MR · NP` sums at `state` (row r,
/// panel q at `r · NP + q`), and ending there or, when `last`, in `acc`, row r, panel q at
/// `(r · NP_MAX + q) · 16`. `state` is only touched when not both `first` and `last`.
#[inline(always)]
unsafe fn tile<D: Dot, const PACKED: bool, const MR: usize, const NP: usize>(
    ctx: &Ctx,
    a: ASource,
    p: usize,
    steps: Steps,
    state: *mut D::Acc,
    acc: &mut [i32; ACC_LEN],
) {
    // Packed A comes with several row tiles, whose single-row tiles are remainders.
    let budget = if MR == 1 && !PACKED { D::NP1 } else { D::NP };
    if MR > D::MR || NP > budget {
        // Tiles beyond the instruction set's register budget are never requested.
        return;
    }
    let groups = ctx.b.groups;
    // Packed rows hold whole groups (the last one completed with zeros) from the K
    // block's first; rows in place stop at k, so their last group is read apart.
    let (stride, first, full) = if PACKED {
        (packed_row_bytes::<D>(), steps.start, steps.end)
    } else {
        (a.stride, 0, ctx.k / QUAD)
    };
    // SAFETY: `a` holds MR rows of the groups of `steps` each; panels p..p + NP hold
    // `groups` lines each and 16 column sums each (the caller's contract).
    unsafe {
        // Not dereferenced when k = 0, where A may be empty.
        let rows: [*const u8; MR] = std::array::from_fn(|r| a.base.wrapping_add(r * stride));
        let lines: [*const i8; NP] =
            std::array::from_fn(|q| ctx.b.lines.add((p + q) * groups * D::LINE_BYTES));
        // Plain loops rather than `array::from_fn` for vectors: its closures are not
        // compiled for the instruction set, and left out of line they cost a call per
        // vector.
        let mut sums = [[D::init(ctx.b.col_sums.add(p * PANEL)); NP]; MR];
        for (r, row) in sums.iter_mut().enumerate() {
            for (q, sum) in row.iter_mut().enumerate() {
                *sum = if steps.first {
                    D::init(ctx.b.col_sums.add((p + q) * PANEL))
                } else {
                    state.add(r * NP + q).read()
                };
            }
        }
        // The step's lines are at one offset into every panel, its codes at one pointer
        // into A (rows at fixed distances from it). The bound is opaque so that the
        // compiler keeps it in a register or on the stack: it otherwise recomputes it
        // from the K block's bounds in every step, scalar instructions that compete with
        // `vpdpbusd` for its ports.
        let (start, end) = (steps.start, steps.end.min(full).max(steps.start));
        // Rows in place hold u8 codes; packed ones may be widened.
        let a_step = if PACKED {
            QUAD * code_bytes::<D>()
        } else {
            QUAD
        };
        let mut a_at = a.base.wrapping_add((start - first) * a_step);
        let mut off = start * D::LINE_BYTES;
        let end_off = std::hint::black_box(end * D::LINE_BYTES);
        // Steps per iteration. Packed A (several row tiles) keeps one: measured with the
        // 8 x 3 VNNI tile, four gained ~1% at M = 64 and lost ~4% at M = 256 (report,
        // n = k = 1024), where the single-row tile of M = 1 gained ~4%.
        let unroll = if PACKED { 1 } else { D::UNROLL };
        // The steps the unrolled loop runs: a whole number of `unroll` from `start`.
        let unrolled_off =
            std::hint::black_box((start + (end - start) / unroll * unroll) * D::LINE_BYTES);
        let panel_bytes = groups * D::LINE_BYTES;
        // The step loop, `$unroll` steps at constant offsets per pointer bump and bound
        // test, with or without prefetching the next block of B (separate loops rather
        // than a test in every step).
        macro_rules! steps {
            ($ahead:expr, $unroll:expr, $end:expr) => {
                while off != $end {
                    for u in 0..$unroll {
                        let off = off + u * D::LINE_BYTES;
                        if let Some(ahead) = $ahead {
                            let at = ahead.wrapping_add(off - start * D::LINE_BYTES);
                            for q in 0..NP {
                                D::prefetch(at.wrapping_add(q * panel_bytes));
                            }
                        }
                        let b = lines_at::<D, NP>(&lines, off);
                        // Index loops, as in `lines_at`.
                        #[allow(clippy::needless_range_loop)]
                        for r in 0..MR {
                            let at = a_at.add(r * stride + u * a_step);
                            let x = if PACKED {
                                D::a_packed(at)
                            } else {
                                D::a(u32::from_le(at.cast::<u32>().read_unaligned()))
                            };
                            for q in 0..NP {
                                sums[r][q] = D::dot(sums[r][q], x, b[q]);
                            }
                        }
                    }
                    a_at = a_at.wrapping_add($unroll * a_step);
                    off += $unroll * D::LINE_BYTES;
                }
            };
        }
        if steps.ahead.is_null() {
            steps!(None::<*const i8>, unroll, unrolled_off);
            if unroll > 1 {
                steps!(None::<*const i8>, 1, end_off);
            }
        } else {
            steps!(Some(steps.ahead), unroll, unrolled_off);
            if unroll > 1 {
                steps!(Some(steps.ahead), 1, end_off);
            }
        }
        let tail = if PACKED { 0 } else { ctx.k - full * QUAD };
        if tail > 0 && steps.end > full {
            // The last group's missing k are zero weights; A contributes zero codes there
            // and is not read past its row.
            let b = lines_at::<D, NP>(&lines, full * D::LINE_BYTES);
            for r in 0..MR {
                let mut quad = [0u8; QUAD];
                let at = rows[r].add(full * QUAD);
                std::ptr::copy_nonoverlapping(at, quad.as_mut_ptr(), tail);
                let x = D::a(u32::from_le_bytes(quad));
                for q in 0..NP {
                    sums[r][q] = D::dot(sums[r][q], x, b[q]);
                }
            }
        }
        if steps.last {
            for (r, row) in sums.iter().enumerate() {
                for (q, &sum) in row.iter().enumerate() {
                    D::store(sum, acc.as_mut_ptr().add((r * NP_MAX + q) * PANEL));
                }
            }
        } else {
            for (r, row) in sums.iter().enumerate() {
                for (q, &sum) in row.iter().enumerate() {
                    state.add(r * NP + q).write(sum);
                }
            }
        }
    }
}

/// Row stride, in i32, of the sums [`epilogue_rows`] reads.
pub(crate) const EPILOGUE_ROW_STRIDE: usize = NP_MAX * PANEL;

/// Writes rows `i..i + mr` of panel `p`, the columns that lie in the block, from the sums
/// at `acc` (row r's 16 at `acc + r · EPILOGUE_ROW_STRIDE`): the epilogue of every
/// kernel, the [`Dot`] tiles' and the AMX tiles' (whose K loop is not a [`Dot`]).
///
/// # Safety
///
/// `ctx` comes from [`Ctx::new`] on a validated block; rows `i..i + mr` and panel `p` lie
/// in it; `acc` holds the rows' sums as above; the CPU runs `E`.
#[inline(always)]
pub(crate) unsafe fn epilogue_rows<E: Epi>(
    ctx: &Ctx,
    i: usize,
    mr: usize,
    p: usize,
    acc: *const i32,
) {
    let first = p * PANEL;
    let end = ctx.c1.min(first + PANEL);
    let mut j = ctx.c0.max(first);
    while j < end {
        let n = E::LANES.min(end - j);
        // SAFETY: columns j..j + n lie in the block and in panel p, whose 16 sums per row
        // are at `acc` (the caller's contract).
        unsafe {
            let sums = acc.add(j - first);
            if n == E::LANES {
                chunk::<E>(ctx, i, mr, j, sums, E::LANES);
            } else {
                chunk::<E>(ctx, i, mr, j, sums, n);
            }
        }
        j += n;
    }
}

/// `LANES` values of `T` read from `p`, of which only the first `n` exist.
#[inline(always)]
unsafe fn padded<T: Copy + Default>(p: *const T, n: usize) -> [T; 16] {
    let mut buf = [T::default(); 16];
    // SAFETY: the caller provides `n ≤ 16` readable values at `p`.
    unsafe { std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n) };
    buf
}

/// Columns `j..j + n` of rows `i..i + mr` (`n ≤ LANES`; fewer only at a block or panel
/// edge) from the sums at `sums`, row r's at `sums + r · EPILOGUE_ROW_STRIDE`. The
/// per-column operands and the stage's constants are set up once, into locals, then each
/// stage has a row loop per zero-point case, without branches: stores to the output
/// (bytes especially) may alias anything as far as the compiler knows, so a loop that
/// read `ctx` or matched on its zero-point case would reload its fields after every row.
#[inline(always)]
unsafe fn chunk<E: Epi>(ctx: &Ctx, i: usize, mr: usize, j: usize, sums: *const i32, n: usize) {
    let full = n == E::LANES;
    // Reads n values at `p`: a whole vector, or the instruction set's partial load.
    macro_rules! load {
        ($kind:ident, $part:ident, $p:expr) => {{
            let p = $p;
            if full { E::$kind(p) } else { E::$part(p, n) }
        }};
    }
    // Stores a vector's first n values at `p`.
    macro_rules! store {
        ($kind:ident, $part:ident, $p:expr, $v:expr) => {{
            let (p, v) = ($p, $v);
            if full {
                E::$kind(p, v)
            } else {
                E::$part(p, v, n)
            }
        }};
    }
    macro_rules! col {
        ($c:expr) => {
            match $c {
                Col::Splat(v) => E::splat_f(v),
                Col::At(p) => load!(load_f, load_f_part, p.add(j)),
            }
        };
    }
    // SAFETY: the caller's contract: n columns from j exist in every per-column array
    // (`col_init` from c0), rows i..i + mr of the block have sums at `sums` and row sums
    // (unless the zero points are zero), and the output rows have the columns.
    unsafe {
        let init = load!(load_i, load_i_part, ctx.col_init.as_ptr().add(j - ctx.c0));
        let zb = ctx.zb;
        let zbs = match zb {
            BlockZb::Column => load!(load_i, load_i_part, ctx.b.zero_points.add(j)),
            _ => E::splat_i(0),
        };
        let row_sums = ctx.row_sums.as_ptr().wrapping_add(i - ctx.r0);
        let out_stride = ctx.out_stride;
        let at = (i - ctx.r0) * out_stride + (j - ctx.c0);
        // Runs `$body` for r in 0..mr with `$raw` row r's exact result before the stage:
        // its sums plus every column term and its row's (negated) zero-point term.
        macro_rules! rows {
            (|$r:ident, $raw:ident| $body:block) => {{
                let sum = |r: usize| E::add_i(E::load_i(sums.add(r * EPILOGUE_ROW_STRIDE)), init);
                match zb {
                    BlockZb::Zero => {
                        for $r in 0..mr {
                            let $raw = sum($r);
                            $body
                        }
                    }
                    BlockZb::Tensor(_) => {
                        for $r in 0..mr {
                            let $raw = E::add_i(sum($r), E::splat_i(*row_sums.add($r)));
                            $body
                        }
                    }
                    BlockZb::Column => {
                        for $r in 0..mr {
                            let term = E::mul_i(zbs, E::splat_i(*row_sums.add($r)));
                            let $raw = E::add_i(sum($r), term);
                            $body
                        }
                    }
                }
            }};
        }
        match (ctx.stage, ctx.out) {
            (Stage::Raw, Out::I32(o)) => {
                let o = o.add(at);
                rows!(|r, raw| {
                    store!(store_i32, store_i32_part, o.add(r * out_stride), raw);
                });
            }
            (
                Stage::Requant {
                    bias,
                    multiplier,
                    zero_point,
                    lo,
                    hi,
                },
                Out::Byte(o),
            ) => {
                // Each per-column value is computed as the reference computes it per
                // element (the same value in every row).
                let addend = match bias {
                    Bias::None => None,
                    Bias::F32Tensor(b, recip) => Some(E::mul_f(
                        load!(load_f, load_f_part, b.add(j)),
                        E::splat_f(recip),
                    )),
                    Bias::F32Column(b, s) => Some(E::div_f(
                        load!(load_f, load_f_part, b.add(j)),
                        load!(load_f, load_f_part, s.add(j)),
                    )),
                };
                let scale = col!(multiplier);
                // clamp(q +sat zp, lo, hi) = clamp(q, lo − zp, hi − zp) + zp, because
                // lo ≤ zp ≤ hi: both sides saturate to the same bound when q + zp leaves
                // i32. The bounds lie within ±255, exact in f32.
                let (lo, hi, zp) = (
                    E::splat_f((lo - zero_point) as f32),
                    E::splat_f((hi - zero_point) as f32),
                    E::splat_i(zero_point),
                );
                let o = o.add(at);
                // A row loop per bias case: with the test inside, the compiler adds −0.0
                // when there is no bias, an instruction per vector.
                macro_rules! requant_rows {
                    (|$f:ident| $biased:expr) => {
                        rows!(|r, raw| {
                            let $f = E::to_f(raw);
                            let v = E::add_i(E::round_clamp(E::mul_f($biased, scale), lo, hi), zp);
                            store!(store_i8, store_i8_part, o.add(r * out_stride), v);
                        })
                    };
                }
                match addend {
                    None => requant_rows!(|f| f),
                    Some(b) => requant_rows!(|f| E::add_f(f, b)),
                }
            }
            (
                Stage::Dequant {
                    a_scale,
                    b_scale,
                    bias,
                    relu,
                },
                Out::F32(o),
            ) => {
                let scale = E::mul_f(E::splat_f(a_scale), col!(b_scale));
                let addend = bias.map(|b| load!(load_f, load_f_part, b.add(j)));
                let o = o.add(at);
                rows!(|r, raw| {
                    let mut y = E::mul_f(E::to_f(raw), scale);
                    if let Some(b) = addend {
                        y = E::add_f(y, b);
                    }
                    if relu {
                        y = E::relu_f(y);
                    }
                    store!(store_f32, store_f32_part, o.add(r * out_stride), y);
                });
            }
            _ => unreachable!("validate checked that the output type matches the stage"),
        }
    }
}

/// Runs `write` (which stores a whole vector) on a scratch buffer of which the first `n`
/// values are copied to `p`.
#[inline(always)]
unsafe fn store_part<T: Copy + Default>(p: *mut T, n: usize, write: impl FnOnce(*mut T)) {
    let mut buf = [T::default(); 16];
    write(buf.as_mut_ptr());
    // SAFETY: the caller provides n writable values at `p`, n ≤ 16.
    unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), p, n) };
}

/// The portable instantiation (the Scalar level): one column at a time, the same loop and
/// the same packed layout as the vector kernels, so the property tests check the loop
/// itself against the reference on every machine.
pub(crate) struct Portable;

impl Dot for Portable {
    const MR: usize = 2;
    const NP: usize = 1;
    const NP1: usize = 1;
    const LINE_BYTES: usize = PANEL * QUAD;
    type A = [i32; QUAD];
    type B = *const i8;
    type Acc = [i32; PANEL];

    #[inline(always)]
    unsafe fn init(_col_sums: *const i32) -> [i32; PANEL] {
        [0; PANEL]
    }

    #[inline(always)]
    unsafe fn a(quad: u32) -> [i32; QUAD] {
        quad.to_le_bytes().map(i32::from)
    }

    #[inline(always)]
    unsafe fn b(p: *const i8) -> *const i8 {
        p
    }

    #[inline(always)]
    unsafe fn dot(mut acc: [i32; PANEL], a: [i32; QUAD], b: *const i8) -> [i32; PANEL] {
        for (c, sum) in acc.iter_mut().enumerate() {
            for (r, &x) in a.iter().enumerate() {
                // SAFETY: `b` is a 64-byte line (the trait's contract).
                let w = i32::from(unsafe { *b.add(c * QUAD + r) });
                *sum = sum.wrapping_add(x * w);
            }
        }
        acc
    }

    #[inline(always)]
    unsafe fn store(acc: [i32; PANEL], out: *mut i32) {
        // SAFETY: the caller provides 16 writable i32.
        unsafe { out.cast::<[i32; PANEL]>().write_unaligned(acc) }
    }
}

impl Epi for Portable {
    const LANES: usize = 1;
    type I = i32;
    type F = f32;

    #[inline(always)]
    unsafe fn splat_i(x: i32) -> i32 {
        x
    }
    #[inline(always)]
    unsafe fn splat_f(x: f32) -> f32 {
        x
    }
    #[inline(always)]
    unsafe fn load_i(p: *const i32) -> i32 {
        // SAFETY: the caller provides one readable value.
        unsafe { p.read_unaligned() }
    }
    #[inline(always)]
    unsafe fn load_f(p: *const f32) -> f32 {
        // SAFETY: the caller provides one readable value.
        unsafe { p.read_unaligned() }
    }
    #[inline(always)]
    unsafe fn add_i(a: i32, b: i32) -> i32 {
        a.wrapping_add(b)
    }
    #[inline(always)]
    unsafe fn mul_i(a: i32, b: i32) -> i32 {
        a.wrapping_mul(b)
    }
    #[inline(always)]
    unsafe fn to_f(a: i32) -> f32 {
        a as f32
    }
    #[inline(always)]
    unsafe fn add_f(a: f32, b: f32) -> f32 {
        a + b
    }
    #[inline(always)]
    unsafe fn mul_f(a: f32, b: f32) -> f32 {
        a * b
    }
    #[inline(always)]
    unsafe fn div_f(a: f32, b: f32) -> f32 {
        a / b
    }
    #[inline(always)]
    unsafe fn relu_f(y: f32) -> f32 {
        if y < 0.0 { 0.0 } else { y }
    }
    #[inline(always)]
    unsafe fn round_clamp(y: f32, lo: f32, hi: f32) -> i32 {
        // `max` returns `lo` for NaN; the clamped value converts exactly.
        y.max(lo).min(hi).round_ties_even() as i32
    }
    #[inline(always)]
    unsafe fn store_i32(p: *mut i32, v: i32) {
        // SAFETY: the caller provides one writable value.
        unsafe { p.write_unaligned(v) }
    }
    #[inline(always)]
    unsafe fn store_f32(p: *mut f32, v: f32) {
        // SAFETY: the caller provides one writable value.
        unsafe { p.write_unaligned(v) }
    }
    #[inline(always)]
    unsafe fn store_i8(p: *mut u8, v: i32) {
        // SAFETY: the caller provides one writable value. The truncation keeps the code.
        unsafe { p.write(v as u8) }
    }
}

/// The Scalar level's packed GEMM: [`gemm`] with [`Portable`].
///
/// # Safety
///
/// As [`gemm`].
pub(crate) unsafe fn gemm_u8i8_portable(
    block: &U8I8Block<'_>,
    stage: &OutputStage<'_>,
    out: &mut GemmOutput<'_>,
    out_stride: usize,
) -> Result<()> {
    // SAFETY: forwarded; portable code runs everywhere.
    unsafe { gemm::<Portable, Portable>(block, stage, out, out_stride) }
}
