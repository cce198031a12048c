//! The feature-interaction loop that every `interaction_*` kernel instantiates with its own
//! vector type (the embedding bags' [`Simd`]) and tile size.
//!
//! The arithmetic is the reference's (`crate::reference::interaction`) by construction:
//! vectors run across **samples**, never across the summation over `d`, so lane `s` of an
//! accumulator is the dot product `Z[i][j]` of sample `s` taking `fma(v[i][k], v[j][k],
//! acc)` for `k` in order from +0.0, exactly the reference's chain.
//!
//! Samples go in blocks of `LANES`. One `LANES × LANES` transpose per vector and `LANES`
//! elements turns the block's vectors into a panel `P[k / KC][f][k % KC][s]` (vector `f`,
//! element `k`, sample `s` across the lanes), so one aligned load gives element `k` of
//! vector `f` for every sample. The triangle is cut into tiles of `G` rows `i` × `G`
//! columns `j`: per `k` a tile loads its `2 G` vectors and issues `G²` independent fused
//! multiply-adds, so the FMA pipes, not the loads or the shuffles, are the limit. The tile
//! next to the diagonal also takes the small triangle of the row group itself (whose column
//! vectors are its row vectors, already loaded), so no lane and no pair is computed for
//! nothing. The tiles run over the panel `KC` elements at a time, all of them per pass, so
//! that the pass's panel and the accumulators of every pair (`pairs × LANES` f32 between
//! passes) stay in L1; at the end one more transpose per `LANES` pairs turns the
//! accumulators back into each sample's output row. The transposes of the next block go
//! into a second panel, spread over the current block's tiles.
//!
//! Lanes past the end of the batch repeat its last sample and are not stored.

use std::cell::Cell;
use std::ops::Range;

use crate::arch::sls::{ROW_BF16, ROW_F32, Simd, elem_bytes};
use crate::embedding::Output;
use crate::interaction::{InteractionProblem, Vectors};

/// Elements of every vector per pass of the tiles: a pass's panel (`F` vectors × `KC` × 16
/// lanes, 27 KiB at F = 27) and the accumulators (22 KiB at F = 27) about fill a 48 KiB
/// L1, while a pass is long enough that reloading the accumulators costs little (8 and
/// 32 measured slower at B = 2048, F = 27, d = 128 on AVX-512).
const KC: usize = 16;
const _: () = assert!(
    KC.is_multiple_of(MAX_LANES),
    "a transposed block stays in one pass"
);

/// The widest vector of any level, in f32 lanes.
pub(crate) const MAX_LANES: usize = 16;

/// A vector type that can transpose a square block of `LANES × LANES` f32 in registers.
pub(crate) trait Transpose: Simd {
    /// Transposes the block held in `r[..LANES]`: afterwards lane `s` of `r[c]` is what lane
    /// `c` of `r[s]` was. `r[LANES..]` is left alone.
    ///
    /// # Safety
    ///
    /// The CPU runs `Self`'s instructions.
    unsafe fn transpose(r: &mut [Self::V; MAX_LANES]);
}

/// f32 elements of scratch the kernels take for a problem of `features` vectors of `dim`
/// elements, `pairs` dot products and output rows of `row_len` elements, or `None` when
/// that overflows `usize` (`InteractionProblem::new` rejects those problems).
pub(crate) fn scratch_len(
    features: usize,
    dim: usize,
    pairs: usize,
    row_len: usize,
) -> Option<usize> {
    let (panel, acc, _, rows) = scratch_parts(features, dim, pairs, row_len, MAX_LANES)?;
    panel
        .checked_mul(2)?
        .checked_add(acc)?
        .checked_add(rows)?
        .checked_add(MAX_LANES)
}

/// The panel, the accumulators, the row width and the rows of scratch at `lanes` lanes.
fn scratch_parts(
    features: usize,
    dim: usize,
    pairs: usize,
    row_len: usize,
    lanes: usize,
) -> Option<(usize, usize, usize, usize)> {
    let panel = features
        .checked_mul(dim.checked_next_multiple_of(KC)?)?
        .checked_mul(lanes)?;
    let pairs_pad = pairs.checked_next_multiple_of(lanes)?;
    let acc = pairs_pad.checked_mul(lanes)?;
    // A row's transposed stores run to the padded pair count; only `row_len` is stored.
    let width = row_len.max(dim.checked_add(pairs_pad)?);
    Some((panel, acc, width, width.checked_mul(lanes)?))
}

/// Runs samples `samples` of `problem` into `out` with vector type `S` and tiles of `G × G`
/// pairs.
///
/// # Safety
///
/// The CPU runs `S`'s instructions; `problem` comes from `InteractionProblem::new` with
/// `out`'s length; `samples` is inside `0..problem.batch`; `1 ≤ G ≤ 4`.
#[inline(always)]
pub(crate) unsafe fn interaction<S: Transpose, const G: usize>(
    problem: &InteractionProblem<'_>,
    out: &mut Output<'_>,
    samples: Range<usize>,
) {
    if samples.is_empty() {
        return;
    }
    let lanes = S::LANES;
    let (panel_len, acc_len, width, rows_len) = scratch_parts(
        problem.features,
        problem.dim,
        problem.pairs,
        problem.row_len,
        lanes,
    )
    .expect("InteractionProblem::new checked the scratch size");
    let mut scratch = SCRATCH.take();
    let floats = 2 * panel_len + acc_len + rows_len + MAX_LANES;
    if scratch.floats.len() < floats {
        scratch.floats.resize(floats, 0.0);
    }
    scratch.starts.resize(problem.features * lanes, 0);
    // Aligned to whole cache lines: a vector load that straddles two lines costs about
    // twice as much, and the tiles load from the panels and the accumulators all the time.
    let skip = scratch
        .floats
        .as_ptr()
        .align_offset(MAX_LANES * 4)
        .min(MAX_LANES);
    let (mut panel, rest) = scratch.floats[skip..floats].split_at_mut(panel_len);
    let (next_panel, rest) = rest.split_at_mut(panel_len);
    let (acc, rows) = rest.split_at_mut(acc_len);
    // Past each row's triangle, the row padding: zeros, whatever an earlier call left.
    rows.fill(0.0);
    let mut next = NextBlock::new(problem, lanes, G, next_panel, &mut scratch.starts);
    let mut b0 = samples.start;
    let first = (samples.end - b0).min(lanes);
    next.aim(problem, b0, first);
    // SAFETY: the first block is inside the batch; the CPU runs `S` (the caller's contract).
    unsafe { next.finish::<S>(problem) };
    std::mem::swap(&mut panel, &mut next.panel);
    while b0 < samples.end {
        let n = (samples.end - b0).min(lanes);
        // While this block's tiles run, the next block is transposed into the other panel.
        next.aim(problem, b0 + n, (samples.end - (b0 + n)).min(lanes));
        acc.fill(0.0);
        for (c, chunk) in panel
            .chunks_exact(problem.features * KC * lanes)
            .enumerate()
        {
            let klen = KC.min(problem.dim - c * KC);
            // SAFETY: the chunk holds `klen` elements of every vector; `acc` holds
            // `pairs` (padded) × LANES; the CPU runs `S` and `G ≤ 4` (the caller's contract).
            unsafe {
                if problem.diagonal {
                    triangle::<S, G, true>(problem, chunk, klen, acc, &mut next);
                } else {
                    triangle::<S, G, false>(problem, chunk, klen, acc, &mut next);
                }
            }
        }
        // SAFETY: as `between_tiles`.
        unsafe { next.finish::<S>(problem) };
        // SAFETY: `acc` holds the block's finished dot products; `rows` holds `LANES` rows
        // of `width ≥ d + pairs (padded)` elements; samples `b0 .. b0 + n` are in the batch.
        unsafe { write_rows::<S>(problem, acc, rows, width, b0, n, out) };
        std::mem::swap(&mut panel, &mut next.panel);
        b0 += n;
    }
    SCRATCH.set(scratch);
}

/// The scratch of [`interaction`]: f32 for the two panels, the accumulators and the output
/// rows; where each lane's vectors start.
#[derive(Default)]
struct Scratch {
    floats: Vec<f32>,
    starts: Vec<usize>,
}

thread_local! {
    /// Each thread's scratch, kept from call to call (it only grows, to two panels of the
    /// largest problem run and the rest: 0.47 MiB at F = 27, d = 128). Allocated and
    /// zeroed per call, it took about a seventh of a call at B = 64, F = 27, d = 128.
    static SCRATCH: Cell<Scratch> = Cell::new(Scratch::default());
}

/// The transposes of the next block of samples into its panel, a few before each tile of
/// the current block. Done all at once between blocks, the transposes wait on their loads
/// (a block's `F × LANES` vectors, from L3 at large batches) with nothing to overlap them,
/// which took a software prefetch of the next block into L2; spread over the tiles, the
/// loads run under the FMAs while the hardware prefetchers follow the `LANES` sequential
/// streams, and that prefetch measured slower (its misses hold the fill buffers).
struct NextBlock<'s> {
    /// The panel being filled.
    panel: &'s mut [f32],
    /// Where vector `f` of lane `s` starts in its buffer: `starts[f · LANES + s]`.
    starts: &'s mut [usize],
    /// The block's first sample.
    b0: usize,
    /// The next transpose: vector `f`, elements `k ..`; `f = F` when all are done.
    f: usize,
    k: usize,
    /// Transposes before each tile: a block's over the tiles of one block.
    per_tile: usize,
}

impl<'s> NextBlock<'s> {
    fn new(
        problem: &InteractionProblem<'_>,
        lanes: usize,
        g: usize,
        panel: &'s mut [f32],
        starts: &'s mut [usize],
    ) -> NextBlock<'s> {
        let transposes = problem.features * problem.dim.div_ceil(lanes);
        NextBlock {
            panel,
            starts,
            b0: 0,
            f: problem.features,
            k: 0,
            per_tile: transposes.div_ceil(tiles_per_block(problem, g).max(1)),
        }
    }

    /// Aims at the block of samples `b0 .. b0 + n` (nothing to do when `n = 0`).
    fn aim(&mut self, problem: &InteractionProblem<'_>, b0: usize, n: usize) {
        (self.b0, self.f, self.k) = (b0, if n == 0 { problem.features } else { 0 }, 0);
        if n > 0 {
            lane_starts(problem, b0, n, self.starts);
        }
    }

    /// The next `per_tile` transposes.
    ///
    /// # Safety
    ///
    /// The CPU runs `S`; the block aimed at is inside the batch.
    #[inline(always)]
    unsafe fn step<S: Transpose>(&mut self, problem: &InteractionProblem<'_>) {
        for _ in 0..self.per_tile {
            if self.f == problem.features {
                return;
            }
            // SAFETY: the caller's contract.
            unsafe { self.transpose::<S>(problem) };
        }
    }

    /// The transposes left.
    ///
    /// # Safety
    ///
    /// As [`NextBlock::step`].
    #[inline(always)]
    unsafe fn finish<S: Transpose>(&mut self, problem: &InteractionProblem<'_>) {
        while self.f < problem.features {
            // SAFETY: the caller's contract.
            unsafe { self.transpose::<S>(problem) };
        }
    }

    /// One transpose: elements `k .. k + LANES` of vector `f` of every lane.
    ///
    /// # Safety
    ///
    /// As [`NextBlock::step`], with `f < F`.
    #[inline(always)]
    unsafe fn transpose<S: Transpose>(&mut self, problem: &InteractionProblem<'_>) {
        let (f, k, lanes) = (self.f, self.k, S::LANES);
        let (src, _) = problem.vector(self.b0, f);
        let starts = &self.starts[f * lanes..(f + 1) * lanes];
        // SAFETY: every lane's vector holds `d > k` elements from its start (the problem's
        // checks); the panel holds `F` vectors × `d` (padded to `KC`) × LANES; the CPU runs
        // `S`.
        unsafe {
            match src {
                Vectors::F32(v) => {
                    to_panel::<S, ROW_F32>(problem, v.as_ptr().cast(), starts, f, k, self.panel)
                }
                Vectors::Bf16(v) => {
                    to_panel::<S, ROW_BF16>(problem, v.as_ptr().cast(), starts, f, k, self.panel)
                }
            }
        }
        self.k += lanes;
        if self.k >= problem.dim {
            (self.f, self.k) = (f + 1, 0);
        }
    }
}

/// Tiles of `G × G` pairs per block: each row group has one per group at or left of it,
/// in each pass of `KC` elements.
fn tiles_per_block(problem: &InteractionProblem<'_>, g: usize) -> usize {
    let groups = problem.features.div_ceil(g);
    (groups * (groups + 1) / 2) * problem.dim.div_ceil(KC)
}

/// Fills `starts[f · LANES + s]` with the element where vector `f` of lane `s` starts, for
/// the block of samples `b0 .. b0 + n`; lanes past `n` repeat the last sample.
fn lane_starts(problem: &InteractionProblem<'_>, b0: usize, n: usize, starts: &mut [usize]) {
    let lanes = starts.len() / problem.features;
    for (f, lane_starts) in starts.chunks_exact_mut(lanes).enumerate() {
        for (s, start) in lane_starts.iter_mut().enumerate() {
            *start = problem.vector(b0 + s.min(n - 1), f).1;
        }
    }
}

/// Transposes elements `k .. k + LANES` (or to `d`) of vector `f` of every lane (format
/// `FMT`, lane `s`'s vector starting at element `starts[s]` of `base`) into the panel:
/// element `k + c` of it goes to lane `s` of the panel's vector `((k + c) / KC, f, (k + c) %
/// KC)`.
///
/// # Safety
///
/// The CPU runs `S`; `starts` has `LANES` entries and elements `starts[s] .. + d` of `base`
/// are readable; `k < d`; `panel` holds `⌈d / KC⌉ · F · KC · LANES` elements.
#[inline(always)]
unsafe fn to_panel<S: Transpose, const FMT: u8>(
    problem: &InteractionProblem<'_>,
    base: *const u8,
    starts: &[usize],
    f: usize,
    k: usize,
    panel: &mut [f32],
) {
    let lanes = S::LANES;
    let m = lanes.min(problem.dim - k);
    // SAFETY: `S::zero` needs only the CPU support the caller guarantees.
    let mut r = [unsafe { S::zero() }; MAX_LANES];
    for (s, v) in r[..lanes].iter_mut().enumerate() {
        // SAFETY: `m` elements from `starts[s] + k` are among the `d` the caller provides
        // (`k + m ≤ d`).
        unsafe {
            let p = base.add((starts[s] + k) * elem_bytes(FMT));
            *v = if m == lanes {
                S::load::<FMT>(p)
            } else {
                S::load_part::<FMT>(p, m)
            };
        }
    }
    // `KC` is a multiple of `LANES` and `k` of `LANES`, so elements `k .. k + m` are
    // consecutive vectors of one pass.
    let at = ((k / KC * problem.features + f) * KC + k % KC) * lanes;
    // SAFETY: the CPU runs `S`; elements `k .. k + m` of vector `f` are inside the panel.
    unsafe {
        S::transpose(&mut r);
        // All `LANES` with a test, not a loop to `m`: that loop would become a `memcpy`
        // from `r` in memory instead of stores from registers.
        for (c, &v) in r[..lanes].iter().enumerate() {
            if m == lanes || c < m {
                S::store::<ROW_F32>(panel.as_mut_ptr().add(at + c * lanes).cast(), v);
            }
        }
    }
}

/// Adds `klen` more elements to every dot product of the triangle: row groups of `G`
/// vectors, each as whole `G × G` tiles against the groups to its left, then one tile that
/// also takes the group's own triangle.
///
/// # Safety
///
/// The CPU runs `S`; `panel` holds `klen ≤ KC` elements of each of the `F` vectors;
/// `acc` holds `pairs` (padded to whole vectors) × LANES elements; `1 ≤ G ≤ 4`.
#[inline(always)]
unsafe fn triangle<S: Transpose, const G: usize, const DIAG: bool>(
    problem: &InteractionProblem<'_>,
    panel: &[f32],
    klen: usize,
    acc: &mut [f32],
    next: &mut NextBlock<'_>,
) {
    let f_count = problem.features;
    let mut i0 = 0;
    while i0 < f_count {
        let rows = G.min(f_count - i0);
        // SAFETY: the caller's contract, with `i0 + R ≤ F` in each arm.
        unsafe {
            match rows {
                r if r == G => row_group::<S, G, G, DIAG>(problem, panel, klen, acc, next, i0),
                1 => row_group::<S, G, 1, DIAG>(problem, panel, klen, acc, next, i0),
                2 => row_group::<S, G, 2, DIAG>(problem, panel, klen, acc, next, i0),
                _ => row_group::<S, G, 3, DIAG>(problem, panel, klen, acc, next, i0),
            }
        }
        i0 += G;
    }
}

/// The pairs of rows `i0 .. i0 + R` (a multiple of `G`): columns `0 .. i0` in tiles of `G`,
/// the last of them with the rows' own triangle.
///
/// # Safety
///
/// As [`triangle`], with `i0 + R ≤ F`.
#[inline(always)]
unsafe fn row_group<S: Transpose, const G: usize, const R: usize, const DIAG: bool>(
    problem: &InteractionProblem<'_>,
    panel: &[f32],
    klen: usize,
    acc: &mut [f32],
    next: &mut NextBlock<'_>,
    i0: usize,
) {
    // SAFETY: every tile's columns are below `i0` or its rows; the caller's contract.
    unsafe {
        next.step::<S>(problem);
        if i0 == 0 {
            return tile::<S, R, 0, true, DIAG>(problem, panel, klen, acc, i0, 0);
        }
        let mut j0 = 0;
        while j0 + G < i0 {
            tile::<S, R, G, false, DIAG>(problem, panel, klen, acc, i0, j0);
            next.step::<S>(problem);
            j0 += G;
        }
        tile::<S, R, G, true, DIAG>(problem, panel, klen, acc, i0, j0);
    }
}

/// Rows `i0 .. i0 + R` × columns `j0 .. j0 + C` (all below `i0`), and with `TRI` the rows'
/// own triangle (columns `i0 + c` for `c < r`, or `c ≤ r` with `DIAG`, where then
/// `j0 + C = i0`): `klen` fused multiply-adds into each accumulator.
///
/// # Safety
///
/// As [`triangle`], with `i0 + R ≤ F`, `j0 + C ≤ i0`, and `j0 + C = i0` when `TRI`.
#[inline(always)]
unsafe fn tile<S: Simd, const R: usize, const C: usize, const TRI: bool, const DIAG: bool>(
    problem: &InteractionProblem<'_>,
    panel: &[f32],
    klen: usize,
    acc: &mut [f32],
    i0: usize,
    j0: usize,
) {
    let lanes = S::LANES;
    let p = panel.as_ptr();
    let vstride = KC * lanes;
    let needed = |r: usize, c: usize| TRI && (c < r || (DIAG && c == r));
    // Pair `(i0 + r, j0 + q)` is at `at[r] + q · LANES`: row `i0 + r`'s pairs are
    // consecutive in the triangle (and in `acc`), and its triangle columns follow `j0 + C`.
    let at: [*mut f32; R] = std::array::from_fn(|r| {
        acc.as_mut_ptr()
            .wrapping_add((problem.triangle_row_start(i0 + r) + j0) * lanes)
    });
    // SAFETY: every pair read or written is one of row `i0 + r`'s (`j0 + q ≤ i0 + r`), so
    // inside `acc`; the panel loads read vectors `< i0 + R ≤ F` at `k < klen ≤ KC`; the CPU
    // runs `S` (the caller's contract).
    unsafe {
        let mut a: [[S::V; C]; R] = std::array::from_fn(|r| {
            std::array::from_fn(|c| S::load::<ROW_F32>(at[r].add(c * lanes).cast()))
        });
        let mut t: [[S::V; R]; R] = std::array::from_fn(|r| {
            std::array::from_fn(|c| {
                if needed(r, c) {
                    S::load::<ROW_F32>(at[r].add((C + c) * lanes).cast())
                } else {
                    S::zero()
                }
            })
        });
        for k in 0..klen {
            let x: [S::V; R] = std::array::from_fn(|r| {
                S::load::<ROW_F32>(p.add((i0 + r) * vstride + k * lanes).cast())
            });
            for c in 0..C {
                let y = S::load::<ROW_F32>(p.add((j0 + c) * vstride + k * lanes).cast());
                for (a_r, &x_r) in a.iter_mut().zip(&x) {
                    a_r[c] = S::fma(x_r, y, a_r[c]);
                }
            }
            for (r, t_r) in t.iter_mut().enumerate() {
                for (c, t_rc) in t_r.iter_mut().enumerate() {
                    if needed(r, c) {
                        *t_rc = S::fma(x[r], x[c], *t_rc);
                    }
                }
            }
        }
        for (r, (a_r, t_r)) in a.iter().zip(&t).enumerate() {
            for (c, &v) in a_r.iter().enumerate() {
                S::store::<ROW_F32>(at[r].add(c * lanes).cast(), v);
            }
            for (c, &v) in t_r.iter().enumerate() {
                if needed(r, c) {
                    S::store::<ROW_F32>(at[r].add((C + c) * lanes).cast(), v);
                }
            }
        }
    }
}

/// Writes the output rows of samples `b0 .. b0 + n`: the dense vector, then the triangle
/// transposed back from `acc` (pair-major, samples across the lanes), then the padding.
///
/// # Safety
///
/// The CPU runs `S`; `acc` holds `pairs` (padded to whole vectors) × LANES elements;
/// `rows` holds `LANES` rows of `width ≥ d + pairs (padded)` elements, zero past that;
/// `b0 + n ≤ B`, `n ≤ LANES`; `problem` comes from `InteractionProblem::new` with `out`'s
/// length.
#[inline(always)]
unsafe fn write_rows<S: Transpose>(
    problem: &InteractionProblem<'_>,
    acc: &[f32],
    rows: &mut [f32],
    width: usize,
    b0: usize,
    n: usize,
    out: &mut Output<'_>,
) {
    let (lanes, d) = (S::LANES, problem.dim);
    let mut p0 = 0;
    while p0 < problem.pairs {
        // SAFETY: `p0 + LANES ≤ pairs (padded)`, so the loads are inside `acc`, and the
        // stores at `d + p0 .. + LANES ≤ width` inside each row; the CPU runs `S`.
        unsafe {
            let mut r = [S::zero(); MAX_LANES];
            for (q, v) in r[..lanes].iter_mut().enumerate() {
                *v = S::load::<ROW_F32>(acc.as_ptr().add((p0 + q) * lanes).cast());
            }
            S::transpose(&mut r);
            // (`n` tested inside, for the reason given in `to_panel`.)
            for (s, &v) in r[..lanes].iter().enumerate() {
                if s < n {
                    S::store::<ROW_F32>(rows.as_mut_ptr().add(s * width + d + p0).cast(), v);
                }
            }
        }
        p0 += lanes;
    }
    for s in 0..n {
        // (Not `chunks_exact_mut`: `width` is 0 when `d` and the triangle are.)
        let row = &mut rows[s * width..(s + 1) * width];
        let (src, start) = problem.vector(b0 + s, 0);
        src.widen_into(start, &mut row[..d]);
        // Past the triangle's padded pairs `row` is zero: the row padding.
        out.store((b0 + s) * problem.out_stride, &row[..problem.row_len]);
    }
}
