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
    /// The line at `p` (`LINE_BYTES` readable bytes, 64-byte aligned).
    unsafe fn b(p: *const i8) -> Self::B;
    /// `acc + Σ_{r<4} a[r] · b[c][r]` per column c, wrapping.
    unsafe fn dot(acc: Self::Acc, a: Self::A, b: Self::B) -> Self::Acc;
    /// Stores the 16 column sums of `acc` at `out` (16 writable i32).
    unsafe fn store(acc: Self::Acc, out: *mut i32);
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
    /// Wrapping `a − b`.
    unsafe fn sub_i(a: Self::I, b: Self::I) -> Self::I;
    /// Wrapping `a · b`.
    unsafe fn mul_i(a: Self::I, b: Self::I) -> Self::I;
    /// `max(lo, min(a, hi))`.
    unsafe fn clamp_i(a: Self::I, lo: Self::I, hi: Self::I) -> Self::I;
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
    /// Round half to even, saturating; NaN gives `i32::MIN`.
    unsafe fn round_i(y: Self::F) -> Self::I;
    /// Stores `LANES` i32 at `p`.
    unsafe fn store_i32(p: *mut i32, v: Self::I);
    /// Stores `LANES` f32 at `p`.
    unsafe fn store_f32(p: *mut f32, v: Self::F);
    /// Stores the low byte of each lane (values already within u8 or i8) at `p`.
    unsafe fn store_i8(p: *mut u8, v: Self::I);
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

#[derive(Clone, Copy)]
enum Bias {
    None,
    I32(*const i32),
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
    fn new(stage: &OutputStage<'_>) -> Stage {
        match *stage {
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
                        RequantBias::None => Bias::None,
                        RequantBias::I32(b) => Bias::I32(b.as_ptr()),
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
/// build it too and finish their sums with [`epilogue`].
pub(crate) struct Ctx {
    pub(crate) a: *const u8,
    pub(crate) a_stride: usize,
    za: i32,
    pub(crate) k: usize,
    pub(crate) b: PackedParts,
    /// `Σk A[i][k]` for rows `rows.start..`, empty when every `zb` is zero.
    row_sums: Vec<i32>,
    pub(crate) r0: usize,
    pub(crate) c0: usize,
    pub(crate) c1: usize,
    stage: Stage,
    out: Out,
    out_stride: usize,
}

impl Ctx {
    /// The context of a non-empty block (the arguments of [`gemm`], validated).
    pub(crate) fn new(
        block: &U8I8Block<'_>,
        stage: &OutputStage<'_>,
        out: &mut GemmOutput<'_>,
        out_stride: usize,
    ) -> Ctx {
        let (r0, r1) = (block.rows.start, block.rows.end);
        let k = block.b.k();
        let parts = block.b.parts();
        let row_sums = if parts.symmetric {
            Vec::new()
        } else {
            (r0..r1)
                .map(|i| {
                    // With k = 0, A may be empty whatever the stride.
                    let row = if k == 0 {
                        &[][..]
                    } else {
                        &block.a[i * block.a_stride..][..k]
                    };
                    row.iter().fold(0i32, |s, &x| s.wrapping_add(i32::from(x)))
                })
                .collect()
        };
        Ctx {
            a: block.a.as_ptr(),
            a_stride: block.a_stride,
            za: i32::from(block.a_zero_point),
            k,
            b: parts,
            row_sums,
            r0,
            c0: block.cols.start,
            c1: block.cols.end,
            stage: Stage::new(stage),
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
    let ctx = Ctx::new(block, stage, out, out_stride);
    let k = ctx.k;
    let (p0, p1) = (c0 / PANEL, c1.div_ceil(PANEL));
    let groups = k.div_ceil(QUAD);
    let mut acc = [0i32; ACC_LEN];
    if r1 - r0 <= D::MR {
        // One row tile: B is read once whatever the order, so K is not blocked, and a
        // single row takes wider tiles (more independent accumulators per line of A).
        let np_max = if r1 - r0 == 1 { D::NP1 } else { D::NP };
        let mut p = p0;
        while p < p1 {
            let np = np_max.min(p1 - p);
            let steps = Steps::whole(groups);
            // SAFETY: rows r0..r1 are rows of A and panels p..p + np panels of B
            // (validated); `acc` holds ACC_LEN sums.
            unsafe {
                tile_by_rows::<D>(
                    r1 - r0,
                    np,
                    &ctx,
                    r0,
                    p,
                    steps,
                    0,
                    &mut Vec::new(),
                    &mut acc,
                );
                epilogue_tile::<E>(&ctx, r0, r1 - r0, p, np, &acc);
            }
            p += np;
        }
        return Ok(());
    }
    // Several row tiles: for each column block of NP panels, its K block of `kc` groups
    // (about 16 KiB of B) stays in L1 while every row tile of a row block of `mc` rows
    // runs over it; the tiles' running sums wait in `state` between K blocks, and the
    // epilogue runs on the last.
    let kc = (L1_B_BYTES / (D::NP * D::LINE_BYTES)).max(1);
    let mc = (L1_A_BYTES / (kc * QUAD)).max(D::MR) / D::MR * D::MR;
    let mut state: Vec<D::Acc> = Vec::with_capacity(mc * D::NP);
    let mut p = p0;
    while p < p1 {
        let np = D::NP.min(p1 - p);
        let mut i0 = r0;
        while i0 < r1 {
            let i1 = (i0 + mc).min(r1);
            let mut g = 0;
            loop {
                let steps = Steps {
                    start: g,
                    end: (g + kc).min(groups),
                    first: g == 0,
                    last: g + kc >= groups,
                };
                let mut i = i0;
                while i < i1 {
                    let mr = D::MR.min(i1 - i);
                    // Every earlier tile of the row block has MR rows of np panels.
                    let slot = (i - i0) * np;
                    if steps.first {
                        state.truncate(slot);
                    }
                    // SAFETY: as above; `state` holds the sums of every earlier tile of
                    // this row block, and this tile's from the previous K block at `slot`.
                    unsafe {
                        tile_by_rows::<D>(mr, np, &ctx, i, p, steps, slot, &mut state, &mut acc);
                        if steps.last {
                            epilogue_tile::<E>(&ctx, i, mr, p, np, &acc);
                        }
                    }
                    i += mr;
                }
                if steps.last {
                    break;
                }
                g += kc;
            }
            i0 = i1;
        }
        p += np;
    }
    Ok(())
}

/// Bytes of B a K block keeps in L1.
const L1_B_BYTES: usize = 16 << 10;
/// Bytes of A a row block reads per K block.
const L1_A_BYTES: usize = 16 << 10;
/// Sums a tile hands to the epilogue: `(r · NP_MAX + q) · 16` for row r, panel q.
const ACC_LEN: usize = MR_MAX * NP_MAX * PANEL;

/// The K groups one call of a tile covers, and whether they start or end K.
#[derive(Clone, Copy)]
struct Steps {
    start: usize,
    end: usize,
    first: bool,
    last: bool,
}

impl Steps {
    fn whole(groups: usize) -> Steps {
        Steps {
            start: 0,
            end: groups,
            first: true,
            last: true,
        }
    }
}

/// The epilogue of rows `i..i + mr` and panels `p..p + np` from the tile's sums.
#[inline(always)]
unsafe fn epilogue_tile<E: Epi>(
    ctx: &Ctx,
    i: usize,
    mr: usize,
    p: usize,
    np: usize,
    acc: &[i32; ACC_LEN],
) {
    for r in 0..mr {
        for q in 0..np {
            // SAFETY: forwarded from the caller; the index is below ACC_LEN because
            // r < MR_MAX and q < NP_MAX, or r = 0 and q < 2 · NP_MAX.
            unsafe { epilogue::<E>(ctx, i + r, p + q, acc[(r * NP_MAX + q) * PANEL..].as_ptr()) };
        }
    }
}

/// Calls `tile::<D, mr, np>`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_by_rows<D: Dot>(
    mr: usize,
    np: usize,
    ctx: &Ctx,
    i: usize,
    p: usize,
    steps: Steps,
    slot: usize,
    state: &mut Vec<D::Acc>,
    acc: &mut [i32; ACC_LEN],
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        match mr {
            1 => match np {
                1 => tile::<D, 1, 1>(ctx, i, p, steps, slot, state, acc),
                2 => tile::<D, 1, 2>(ctx, i, p, steps, slot, state, acc),
                3 => tile::<D, 1, 3>(ctx, i, p, steps, slot, state, acc),
                4 => tile::<D, 1, 4>(ctx, i, p, steps, slot, state, acc),
                5 => tile::<D, 1, 5>(ctx, i, p, steps, slot, state, acc),
                6 => tile::<D, 1, 6>(ctx, i, p, steps, slot, state, acc),
                7 => tile::<D, 1, 7>(ctx, i, p, steps, slot, state, acc),
                _ => tile::<D, 1, 8>(ctx, i, p, steps, slot, state, acc),
            },
            2 => tile_by_panels::<D, 2>(np, ctx, i, p, steps, slot, state, acc),
            3 => tile_by_panels::<D, 3>(np, ctx, i, p, steps, slot, state, acc),
            4 => tile_by_panels::<D, 4>(np, ctx, i, p, steps, slot, state, acc),
            5 => tile_by_panels::<D, 5>(np, ctx, i, p, steps, slot, state, acc),
            6 => tile_by_panels::<D, 6>(np, ctx, i, p, steps, slot, state, acc),
            7 => tile_by_panels::<D, 7>(np, ctx, i, p, steps, slot, state, acc),
            _ => tile_by_panels::<D, 8>(np, ctx, i, p, steps, slot, state, acc),
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_by_panels<D: Dot, const MR: usize>(
    np: usize,
    ctx: &Ctx,
    i: usize,
    p: usize,
    steps: Steps,
    slot: usize,
    state: &mut Vec<D::Acc>,
    acc: &mut [i32; ACC_LEN],
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        match np {
            1 => tile::<D, MR, 1>(ctx, i, p, steps, slot, state, acc),
            2 => tile::<D, MR, 2>(ctx, i, p, steps, slot, state, acc),
            3 => tile::<D, MR, 3>(ctx, i, p, steps, slot, state, acc),
            _ => tile::<D, MR, 4>(ctx, i, p, steps, slot, state, acc),
        }
    }
}

/// Sums rows `i..i + MR` of A against panels `p..p + NP` of B over the K groups of
/// `steps`: starting from the column-sum start (`first`) or from the `MR · NP` sums at
/// `state[slot..]`, and ending there (appended when `state` ends at `slot`) or, when
/// `last`, in `acc`, row r, panel q at `(r · NP_MAX + q) · 16`.
#[inline(always)]
unsafe fn tile<D: Dot, const MR: usize, const NP: usize>(
    ctx: &Ctx,
    i: usize,
    p: usize,
    steps: Steps,
    slot: usize,
    state: &mut Vec<D::Acc>,
    acc: &mut [i32; ACC_LEN],
) {
    let budget = if MR == 1 { D::NP1 } else { D::NP };
    if MR > D::MR || NP > budget {
        // Tiles beyond the instruction set's register budget are never requested.
        return;
    }
    let groups = ctx.b.groups;
    let full = ctx.k / QUAD;
    // SAFETY: rows i..i + MR of A hold k codes each; panels p..p + NP hold `groups` lines
    // each and 16 column sums each (the caller's contract).
    unsafe {
        let rows: [*const u8; MR] = std::array::from_fn(|r| {
            // Not dereferenced when k = 0, where A may be empty.
            ctx.a.wrapping_add((i + r) * ctx.a_stride)
        });
        let lines: [*const i8; NP] =
            std::array::from_fn(|q| ctx.b.lines.add((p + q) * groups * D::LINE_BYTES));
        let mut sums: [[D::Acc; NP]; MR] = if steps.first {
            [std::array::from_fn(|q| D::init(ctx.b.col_sums.add((p + q) * PANEL))); MR]
        } else {
            std::array::from_fn(|r| std::array::from_fn(|q| state[slot + r * NP + q]))
        };
        for g in steps.start..steps.end.min(full) {
            let b: [D::B; NP] = std::array::from_fn(|q| D::b(lines[q].add(g * D::LINE_BYTES)));
            for r in 0..MR {
                let a = D::a(rows[r].add(g * QUAD).cast::<u32>().read_unaligned().to_le());
                for q in 0..NP {
                    sums[r][q] = D::dot(sums[r][q], a, b[q]);
                }
            }
        }
        let tail = ctx.k - full * QUAD;
        if tail > 0 && steps.end > full {
            // The last group's missing k are zero weights; A contributes zero codes there
            // and is not read past its row.
            let b: [D::B; NP] = std::array::from_fn(|q| D::b(lines[q].add(full * D::LINE_BYTES)));
            for r in 0..MR {
                let mut quad = [0u8; QUAD];
                std::ptr::copy_nonoverlapping(rows[r].add(full * QUAD), quad.as_mut_ptr(), tail);
                let a = D::a(u32::from_le_bytes(quad));
                for q in 0..NP {
                    sums[r][q] = D::dot(sums[r][q], a, b[q]);
                }
            }
        }
        if steps.last {
            for (r, row) in sums.iter().enumerate() {
                for (q, &sum) in row.iter().enumerate() {
                    D::store(sum, acc.as_mut_ptr().add((r * NP_MAX + q) * PANEL));
                }
            }
        } else if state.len() == slot {
            for row in sums {
                state.extend_from_slice(&row);
            }
        } else {
            for (r, row) in sums.iter().enumerate() {
                state[slot + r * NP..][..NP].copy_from_slice(row);
            }
        }
    }
}

/// Writes row `i`'s columns of panel `p` that lie in the block, from the 16 sums at `acc`.
///
/// # Safety
///
/// `ctx` comes from [`Ctx::new`] on a validated block; row `i` and panel `p` lie in it;
/// `acc` holds 16 readable i32; the CPU runs `E`.
#[inline(always)]
pub(crate) unsafe fn epilogue<E: Epi>(ctx: &Ctx, i: usize, p: usize, acc: *const i32) {
    let start = ctx.c0.max(p * PANEL);
    let end = ctx.c1.min(p * PANEL + PANEL);
    let row_term = if ctx.b.symmetric {
        None
    } else {
        Some(ctx.row_sums[i - ctx.r0])
    };
    let mut j = start;
    while j < end {
        let n = E::LANES.min(end - j);
        // SAFETY: columns j..j + n lie in the block and in panel p (`acc` holds its 16
        // sums, the packed arrays 16 values per panel, the stage's arrays n values).
        unsafe {
            let lane = j - p * PANEL;
            if n == E::LANES {
                chunk::<E>(ctx, i, j, row_term, acc.add(lane), E::LANES);
            } else {
                chunk::<E>(ctx, i, j, row_term, acc.add(lane), n);
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

/// Columns `j..j + n` of row `i` (`n ≤ LANES`; fewer only at a block or panel edge).
#[inline(always)]
unsafe fn chunk<E: Epi>(
    ctx: &Ctx,
    i: usize,
    j: usize,
    row_term: Option<i32>,
    acc: *const i32,
    n: usize,
) {
    let full = n == E::LANES;
    // Reads n values at `p`: directly for a full vector, through a padded copy otherwise.
    macro_rules! load {
        ($kind:ident, $p:expr) => {{
            let p = $p;
            if full {
                E::$kind(p)
            } else {
                E::$kind(padded(p, n).as_ptr())
            }
        }};
    }
    // SAFETY: the caller's contract: n columns from j exist in every per-column array,
    // 16 − (j mod 16) ≥ n in the packed ones, and the output row has them.
    unsafe {
        let za = E::splat_i(ctx.za);
        let mut raw = E::sub_i(
            load!(load_i, acc),
            E::mul_i(za, load!(load_i, ctx.b.col_offsets.add(j))),
        );
        if let Some(rs) = row_term {
            raw = E::sub_i(
                raw,
                E::mul_i(load!(load_i, ctx.b.zero_points.add(j)), E::splat_i(rs)),
            );
        }
        let col = |c: Col<f32>| match c {
            Col::Splat(v) => E::splat_f(v),
            Col::At(p) => load!(load_f, p.add(j)),
        };
        let at = (i - ctx.r0) * ctx.out_stride + (j - ctx.c0);
        match (ctx.stage, ctx.out) {
            (Stage::Raw, Out::I32(o)) => store(o.add(at), full, n, |p| E::store_i32(p, raw)),
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
                let f = match bias {
                    Bias::None => E::to_f(raw),
                    Bias::I32(b) => E::to_f(E::add_i(raw, load!(load_i, b.add(j)))),
                    Bias::F32Tensor(b, recip) => E::add_f(
                        E::to_f(raw),
                        E::mul_f(load!(load_f, b.add(j)), E::splat_f(recip)),
                    ),
                    Bias::F32Column(b, s) => E::add_f(
                        E::to_f(raw),
                        E::div_f(load!(load_f, b.add(j)), load!(load_f, s.add(j))),
                    ),
                };
                let q = E::round_i(E::mul_f(f, col(multiplier)));
                // clamp(q +sat zp, lo, hi) = clamp(q, lo − zp, hi − zp) + zp, because
                // lo ≤ zp ≤ hi: both sides saturate to the same bound when q + zp
                // leaves i32.
                let v = E::add_i(
                    E::clamp_i(q, E::splat_i(lo - zero_point), E::splat_i(hi - zero_point)),
                    E::splat_i(zero_point),
                );
                store(o.add(at), full, n, |p| E::store_i8(p, v));
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
                let s = E::mul_f(E::splat_f(a_scale), col(b_scale));
                let mut y = E::mul_f(E::to_f(raw), s);
                if let Some(b) = bias {
                    y = E::add_f(y, load!(load_f, b.add(j)));
                }
                if relu {
                    y = E::relu_f(y);
                }
                store(o.add(at), full, n, |p| E::store_f32(p, y));
            }
            _ => unreachable!("validate checked that the output type matches the stage"),
        }
    }
}

/// Runs `write` (which stores a whole vector) on `p` directly when `full`, else on a
/// scratch buffer of which the first `n` values are copied to `p`.
#[inline(always)]
unsafe fn store<T: Copy + Default>(p: *mut T, full: bool, n: usize, write: impl FnOnce(*mut T)) {
    if full {
        write(p);
        return;
    }
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
    unsafe fn sub_i(a: i32, b: i32) -> i32 {
        a.wrapping_sub(b)
    }
    #[inline(always)]
    unsafe fn mul_i(a: i32, b: i32) -> i32 {
        a.wrapping_mul(b)
    }
    #[inline(always)]
    unsafe fn clamp_i(a: i32, lo: i32, hi: i32) -> i32 {
        a.min(hi).max(lo)
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
    unsafe fn round_i(y: f32) -> i32 {
        if y.is_nan() {
            i32::MIN
        } else {
            // `as` saturates out-of-range values and ±inf to the i32 bounds.
            y.round_ties_even() as i32
        }
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
