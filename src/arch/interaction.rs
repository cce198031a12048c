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
//! that the accumulators of every pair (`pairs × LANES` f32 between passes) stay in L1
//! and each tile loads and stores its accumulators once per `KC` elements; at the end one
//! more transpose per `LANES` pairs turns the accumulators straight into each sample's
//! output row. The transposes of the next block go into a second panel, spread over the
//! current block's tiles.
//!
//! Lanes past the end of the batch repeat its last sample and are not stored. A last
//! block of at most three eighths of the lanes (the whole batch, when it is that small)
//! goes one sample at a time instead, the lanes across a row's pairs ([`single_sample`]).
//!
//! Where the time goes (AVX-512, F = 27, d = 128, B = 64 / 2048, medians of ratios to the
//! in-process FMA peak in thread CPU time, load ~9; a "unit" is the triangle's FMAs at
//! peak): the tiles alone (the next block's transposes skipped) take 1.85 / 1.82 units, the
//! transposes alone (the tiles skipped) 1.21 / 1.89, both together 2.54 / 3.13: they
//! overlap little. At B = 2048 the transposes are bound by the input stream (221 KiB per
//! block in 16 sample streams, about 20 GB/s, where one 28 MiB buffer read sequentially
//! goes at 28 GB/s), so 0.5 of peak needs the tiles hidden entirely under the input and
//! output (with its read-for-ownership) streaming at 23.5 GB/s, 84 % of that rate, which
//! alone caps the kernel at about 0.59. Redirecting the panel stores to a few L1 lines
//! saves a fifth of the transposes' time at B = 64 (their read-for-ownership and
//! write-back), so the panel's trip through L2 costs too. Tried and slower (same probe and
//! load): transposing a 16- (or 8-) element slice of the same block just before its tiles,
//! so that slice and the accumulators stay in L1 (0.35 / 0.24: the short passes cost more
//! than the L1 hits save, and the input loads no longer run under the tiles); one transpose
//! after every 8 elements of each tile (0.35 / 0.30); 8-row bands whose 8 × 3 tiles halve
//! the columns streamed from L2 (0.36 / 0.29 against 0.38 / 0.29 in alternation).
//!
//! Zen 3, AVX2 (F = 27, d = 128, B = 64 / 2048; ratios to the FMA peak, or of two
//! settings alternating in one process, medians; another process loading the other core,
//! which moves a whole process's figures between about 0.38 and 0.51 at B = 64, so only
//! the alternations are comparable): the tiles alone 0.77 of peak, the transposes alone
//! 0.6 / 1.1 units, the writes of the output rows 0.2 / 0.3, adding up to the whole (0.48
//! / 0.34): they overlap no better than on AVX-512. Tried, against the same build with
//! them off: KC = 32, 16, 8 (1.02, 0.92, 0.86 / 0.97, 0.98, 0.95; d = 64 at B = 2048:
//! 1.00, 0.97, 0.93); a software prefetch of the lines each lane reads 16 transposes
//! later (`prefetcht0`: 0.79 / 1.07; 48 later, `prefetcht1`: 0.76 / 0.96; the next
//! block's, one block ahead, `prefetcht1`: 0.78 / 0.89) or 512 to 4096 bytes ahead in
//! each lane's stream (0.78-0.84 / 0.91-0.99, any hint): even where nothing is missing
//! (B = 64) the prefetches cost a fifth; the first transposes' halves loaded by 128 bits
//! into both halves of a vector (16 shuffles, not 24: 1.00 / 1.01). (The parts alone:
//! one run each, skipping the others.)
//!
//! Later, same machine and method, B = 2048 / 64 at d = 128 (the skips paired against the
//! whole kernel, so their ratios are how much faster it runs without that part): without
//! the transposes after the first block 1.9-1.96 / 1.4-1.5, without the output rows 1.11 /
//! 1.1. So at B = 2048 the transposes take about half of a 5.5 ms batch: they read its 28
//! MiB of input at about 10 GB/s, where one sequential stream reads 15.5 GB/s in the same
//! `report` run, and bf16 inputs (half the bytes) lift the kernel from 0.33 to 0.36 of peak
//! there. Tried, none faster beyond the noise, against the same build: one transpose inside
//! every tile's loop after every 8, 16 or 32 elements instead of two before each tile
//! (0.89, 0.90, 0.97-0.99 at B = 2048); tiles of 4 rows × 3 columns with the rows' own
//! triangle as a tile of its own and the column vectors loaded first (0.94-0.97 /
//! 0.96-0.97, where 3 × 3 tiles with that order read 0.96-1.00 / 0.97-0.99; 0.83-0.85 /
//! 0.69-0.71 with the row vectors loaded first, which spills); a `prefetcht0` of each
//! lane's stream 512, 1024 or 2048 bytes ahead only in the transposes after the tiles,
//! where no tile's panel can be evicted (1.02-1.03, 0.96-0.98, 0.95 / 0.94 at 1024).

use std::cell::Cell;
use std::ops::Range;

use crate::arch::prefetch::prefetch;
use crate::arch::sls::{OUT_BF16, OUT_F16, OUT_F32, ROW_BF16, ROW_F32, Simd, elem_bytes};
use crate::embedding::Output;
use crate::embedding::plan::PrefetchHint;
use crate::interaction::{InteractionProblem, Vectors};

/// Elements of every vector per pass of the tiles. Each tile reloads and stores its
/// accumulators once per pass, which at 16 was about a tenth of the tiles' time; a pass's
/// panel (`F` vectors × `KC` × 16 lanes, 108 KiB at F = 27) then lives in L2, not L1, and
/// the tiles' loads absorb that. Ratio to the FMA peak at B = 64 / 2048, F = 27, d = 128,
/// AVX-512 (load ~11): KC = 16: 0.35 / 0.27; 32: 0.38 / 0.31; 64: 0.39 / 0.31; 128 (one
/// pass): 0.35 / 0.29.
const KC: usize = 64;
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

    /// At most this many of the next block's transposes before each tile; the ones left
    /// run after the block's tiles (see [`NextBlock`]).
    const MAX_PER_TILE: usize = usize::MAX;
}

/// f32 elements of scratch the kernels take for a problem of `features` vectors of `dim`
/// elements and `pairs` dot products, or `None` when that overflows `usize`
/// (`InteractionProblem::new` rejects those problems).
pub(crate) fn scratch_len(features: usize, dim: usize, pairs: usize) -> Option<usize> {
    let (panel, acc) = scratch_parts(features, dim, pairs, MAX_LANES)?;
    panel
        .checked_mul(2)?
        .checked_add(acc)?
        .checked_add(MAX_LANES)
}

/// The panel and the accumulators of scratch at `lanes` lanes.
fn scratch_parts(
    features: usize,
    dim: usize,
    pairs: usize,
    lanes: usize,
) -> Option<(usize, usize)> {
    let panel = features
        .checked_mul(dim.checked_next_multiple_of(KC)?)?
        .checked_mul(lanes)?;
    let acc = pairs.checked_next_multiple_of(lanes)?.checked_mul(lanes)?;
    Some((panel, acc))
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
    let (panel_len, acc_len) = scratch_parts(problem.features, problem.dim, problem.pairs, lanes)
        .expect("InteractionProblem::new checked the scratch size");
    let mut scratch = SCRATCH.take();
    let floats = 2 * panel_len + acc_len + MAX_LANES;
    if scratch.len() < floats {
        scratch.resize(floats, 0.0);
    }
    // Aligned to whole cache lines: a vector load that straddles two lines costs about
    // twice as much, and the tiles load from the panels and the accumulators all the time.
    let skip = scratch.as_ptr().align_offset(MAX_LANES * 4).min(MAX_LANES);
    let (panel, rest) = scratch[skip..floats].split_at_mut(panel_len);
    let (next_panel, acc) = rest.split_at_mut(panel_len);
    // A last block of at most three eighths of the lanes costs less one sample at a time
    // (see `single_sample`).
    let tail = samples.len() % lanes;
    let alone = if 8 * tail <= 3 * lanes { tail } else { 0 };
    let blocks = samples.start..samples.end - alone;
    // SAFETY: the caller's contract, for samples inside its range; a panel's `F · d` (`d`
    // padded to `KC`) · LANES elements hold a transposed sample's `d · W`.
    unsafe {
        if !blocks.is_empty() {
            in_blocks::<S, G>(problem, out, blocks.clone(), panel, next_panel, acc);
        }
        for b in blocks.end..samples.end {
            single_sample::<S>(problem, out, b, panel);
        }
    }
    SCRATCH.set(scratch);
}

/// [`interaction`] over `samples` in blocks of `LANES`, the last one possibly partial, in
/// the scratch `panel`, `next_panel` and `acc`.
///
/// # Safety
///
/// As [`interaction`], with the scratch parts of [`scratch_parts`] at `S::LANES` lanes,
/// each aligned to whole cache lines.
#[inline(always)]
unsafe fn in_blocks<'s, S: Transpose, const G: usize>(
    problem: &InteractionProblem<'_>,
    out: &mut Output<'_>,
    samples: Range<usize>,
    mut panel: &'s mut [f32],
    next_panel: &'s mut [f32],
    acc: &mut [f32],
) {
    let lanes = S::LANES;
    let mut next = NextBlock::new(problem, lanes, G, S::MAX_PER_TILE, next_panel);
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
        // SAFETY: `acc` holds the block's finished dot products; samples `b0 .. b0 + n` are
        // in the batch; `problem` comes from `InteractionProblem::new` with `out`'s length.
        unsafe { write_rows::<S>(problem, acc, b0, n, out) };
        std::mem::swap(&mut panel, &mut next.panel);
        b0 += n;
    }
}

thread_local! {
    /// Each thread's scratch, kept from call to call (it only grows): the two panels and
    /// the accumulators of [`interaction`], 0.44 MiB at F = 27, d = 128. Allocated and
    /// zeroed per call, it took about a seventh of a call at B = 64, F = 27, d = 128.
    static SCRATCH: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
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
    /// The block's first sample and its number of samples.
    b0: usize,
    n: usize,
    /// The next transpose: vector `f`, elements `k ..`; `f = F` when all are done.
    f: usize,
    k: usize,
    /// Transposes before each tile: a block's over the tiles of one block.
    per_tile: usize,
    /// Whether the transposes prefetch, for the vectors whose samples lie `d` apart, the
    /// lines the block after theirs will read (see [`PREFETCH_MIN_INPUT_BYTES`]).
    prefetch: bool,
}

/// The input size (all `B × F × d` elements, in bytes) from which the transposes of a
/// vector whose samples lie `d` apart (the dense vector, and every embedding of the
/// separate layout) prefetch the same elements of the block after theirs, one line at a
/// time into L1. A block reads such a vector as one run of `LANES · d` elements, a new one
/// per block for each of the `F` vectors, and out of cache the hardware prefetchers did
/// not keep up with those runs: at B = 2048, F = 27, d = 128 (f32, Zen 3, AVX2) the
/// separate layout ran at 0.59-0.61 of the block layout, whose embeddings are eight long
/// runs. With the prefetch, paired against the same calls without it (separate layout):
/// B = 2048 1.47-1.49x, 512 1.16-1.18x, 384 (5.3 MB of input) 1.24-1.29x; but 256 (3.5 MB)
/// 0.90-0.98x, 128 0.93x and 64 0.89x: there the input stays in cache from call to call
/// and the prefetches only cost. Two blocks ahead instead of one: 1.07-1.15x at B = 2048;
/// hints into L2, L3 or non-temporal instead of L1: 0.88 / 0.88 / 0.93x at B = 64 and
/// 1.26-1.28x at B = 2048. The block layout's embeddings do not need it (the same
/// prefetch on them: 0.99-1.03x at B = 2048).
const PREFETCH_MIN_INPUT_BYTES: usize = 4 << 20;

impl<'s> NextBlock<'s> {
    fn new(
        problem: &InteractionProblem<'_>,
        lanes: usize,
        g: usize,
        max_per_tile: usize,
        panel: &'s mut [f32],
    ) -> NextBlock<'s> {
        let transposes = problem.features * problem.dim.div_ceil(lanes);
        NextBlock {
            panel,
            b0: 0,
            n: 0,
            f: problem.features,
            k: 0,
            per_tile: transposes
                .div_ceil(tiles_per_block(problem, g).max(1))
                .min(max_per_tile),
            prefetch: (0..problem.features)
                .map(|f| problem.vector(0, f).0.bytes().1)
                .sum::<usize>()
                .saturating_mul(problem.batch)
                .saturating_mul(problem.dim)
                >= PREFETCH_MIN_INPUT_BYTES,
        }
    }

    /// Aims at the block of samples `b0 .. b0 + n` (nothing to do when `n = 0`).
    fn aim(&mut self, problem: &InteractionProblem<'_>, b0: usize, n: usize) {
        (self.b0, self.n, self.k) = (b0, n, 0);
        self.f = if n == 0 { problem.features } else { 0 };
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
        let (src, start) = problem.vector(self.b0, f);
        let rows = Rows {
            start: start + k,
            stride: problem.sample_stride(f),
            n: self.n,
        };
        let (base, elem) = src.bytes();
        // Once per 64-byte line of each lane, and only where the block after this one is
        // whole.
        if self.prefetch
            && rows.stride == problem.dim
            && (k * elem).is_multiple_of(64)
            && self.b0 + 2 * lanes <= problem.batch
        {
            for s in lanes..2 * lanes {
                prefetch(
                    base.wrapping_add((rows.start + s * rows.stride) * elem),
                    PrefetchHint::L1,
                );
            }
        }
        // SAFETY: every lane's vector holds `d > k` elements from its start (the problem's
        // checks, the block's `n` samples being in the batch); the panel holds `F` vectors ×
        // `d` (padded to `KC`) × LANES; the CPU runs `S`.
        unsafe {
            match src {
                Vectors::F32(v) => {
                    to_panel::<S, ROW_F32>(problem, v.as_ptr().cast(), rows, f, k, self.panel)
                }
                Vectors::Bf16(v) => {
                    to_panel::<S, ROW_BF16>(problem, v.as_ptr().cast(), rows, f, k, self.panel)
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

/// Where one transpose reads: lane `s`'s elements start at element `start + s · stride` of
/// the buffer, for the block's `n` samples; lanes past `n` repeat the last sample.
#[derive(Clone, Copy)]
struct Rows {
    start: usize,
    stride: usize,
    n: usize,
}

/// Transposes elements `k .. k + LANES` (or to `d`) of vector `f` of every lane (format
/// `FMT`, in `base` where `rows` says) into the panel: element `k + c` of it goes to lane `s`
/// of the panel's vector `((k + c) / KC, f, (k + c) % KC)`.
///
/// # Safety
///
/// The CPU runs `S`; `1 ≤ rows.n ≤ LANES` and elements `start + s · stride .. + (d − k)` of
/// `base` are readable for `s < n`; `k < d`; `panel` holds `⌈d / KC⌉ · F · KC · LANES`
/// elements.
#[inline(always)]
unsafe fn to_panel<S: Transpose, const FMT: u8>(
    problem: &InteractionProblem<'_>,
    base: *const u8,
    rows: Rows,
    f: usize,
    k: usize,
    panel: &mut [f32],
) {
    let lanes = S::LANES;
    let m = lanes.min(problem.dim - k);
    // SAFETY: `S::zero` needs only the CPU support the caller guarantees.
    let mut r = [unsafe { S::zero() }; MAX_LANES];
    // A full block (every block of the widest level) reads at `start + s · stride`, with
    // no clamping of the lane: the address arithmetic of the loads otherwise competes with
    // the shuffles for the vector ports.
    // SAFETY (both loops): lane `s` or the last sample, `< n`, as the caller provides.
    if rows.n == lanes {
        for (s, v) in r[..lanes].iter_mut().enumerate() {
            *v = unsafe { load_lane::<S, FMT>(base, rows, s, m) };
        }
    } else {
        for (s, v) in r[..lanes].iter_mut().enumerate() {
            *v = unsafe { load_lane::<S, FMT>(base, rows, s.min(rows.n - 1), m) };
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

/// The `m` elements (`m ≤ LANES`; zeros past them) of sample `lane` that [`to_panel`]
/// transposes.
///
/// # Safety
///
/// The CPU runs `S`; `m` elements of format `FMT` at element `rows.start + lane ·
/// rows.stride` of `base` are readable.
#[inline(always)]
unsafe fn load_lane<S: Simd, const FMT: u8>(
    base: *const u8,
    rows: Rows,
    lane: usize,
    m: usize,
) -> S::V {
    // SAFETY: the caller's contract.
    unsafe {
        let p = base.add((rows.start + lane * rows.stride) * elem_bytes(FMT));
        if m == S::LANES {
            S::load::<FMT>(p)
        } else {
            S::load_part::<FMT>(p, m)
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

/// Writes the output rows of samples `b0 .. b0 + n` straight into `out`: the dense vector,
/// then the triangle transposed back from `acc` (pair-major, samples across the lanes),
/// then the padding. (Through a scratch copy of the rows, the copy took about a fifth of a
/// call at B = 2048, F = 27, d = 128.)
///
/// # Safety
///
/// The CPU runs `S`; `acc` holds `pairs` (padded to whole vectors) × LANES elements;
/// `b0 + n ≤ B`, `1 ≤ n ≤ LANES`; `problem` comes from `InteractionProblem::new` with
/// `out`'s length.
#[inline(always)]
unsafe fn write_rows<S: Transpose>(
    problem: &InteractionProblem<'_>,
    acc: &[f32],
    b0: usize,
    n: usize,
    out: &mut Output<'_>,
) {
    // SAFETY: the caller's contract; each buffer is the output's.
    unsafe {
        match out {
            Output::F32(o) => {
                write_rows_as::<S, OUT_F32>(problem, acc, b0, n, o.as_mut_ptr().cast())
            }
            Output::F16(o) => {
                write_rows_as::<S, OUT_F16>(problem, acc, b0, n, o.as_mut_ptr().cast())
            }
            Output::Bf16(o) => {
                write_rows_as::<S, OUT_BF16>(problem, acc, b0, n, o.as_mut_ptr().cast())
            }
        }
    }
}

/// [`write_rows`] into an output of type `OUT` at `out`.
///
/// # Safety
///
/// As [`write_rows`], with `out` the output buffer's start.
#[inline(always)]
unsafe fn write_rows_as<S: Transpose, const OUT: u8>(
    problem: &InteractionProblem<'_>,
    acc: &[f32],
    b0: usize,
    n: usize,
    out: *mut u8,
) {
    let (lanes, d, pairs) = (S::LANES, problem.dim, problem.pairs);
    // Row `b` starts at element `b · out_stride` and holds `row_len ≥ d + pairs` elements
    // (`InteractionProblem::new` checked the output's length against both).
    let row = |s: usize| out.wrapping_add((b0 + s) * problem.out_stride * elem_bytes(OUT));
    let mut p0 = 0;
    while p0 < pairs {
        let m = lanes.min(pairs - p0);
        // SAFETY: `p0 + LANES ≤ pairs (padded)`, so the loads are inside `acc`; the stores
        // write elements `d + p0 .. + m ≤ d + pairs` of rows `b0 + s`, `s < n`; the CPU runs
        // `S`.
        unsafe {
            let mut r = [S::zero(); MAX_LANES];
            for (q, v) in r[..lanes].iter_mut().enumerate() {
                *v = S::load::<ROW_F32>(acc.as_ptr().add((p0 + q) * lanes).cast());
            }
            S::transpose(&mut r);
            // (`n` tested inside, for the reason given in `to_panel`.)
            for (s, &v) in r[..lanes].iter().enumerate() {
                if s < n {
                    let p = row(s).add((d + p0) * elem_bytes(OUT));
                    if m == lanes {
                        S::store::<OUT>(p, v);
                    } else {
                        S::store_part::<OUT>(p, v, m);
                    }
                }
            }
        }
        p0 += lanes;
    }
    for s in 0..n {
        // SAFETY: sample `b0 + s` is in the batch and its row at `row(s)`; the CPU runs `S`.
        unsafe { write_dense_and_padding::<S, OUT>(problem, b0 + s, row(s)) };
    }
}

/// Writes the dense vector of sample `b` at the start of its output row `row` (of type
/// `OUT`), and the zeros after its triangle.
///
/// # Safety
///
/// The CPU runs `S`; `b < B`; `row` is where sample `b`'s output row starts, with
/// `row_len` writable elements (`problem` comes from `InteractionProblem::new` with the
/// output's length).
#[inline(always)]
unsafe fn write_dense_and_padding<S: Simd, const OUT: u8>(
    problem: &InteractionProblem<'_>,
    b: usize,
    row: *mut u8,
) {
    let (lanes, d) = (S::LANES, problem.dim);
    let (src, start) = problem.vector(b, 0);
    // SAFETY: the dense vector holds `d` elements from `start`; the row `row_len ≥ d +
    // pairs` elements from `row`; the CPU runs `S`.
    unsafe {
        match src {
            Vectors::F32(v) => copy_widened::<S, ROW_F32, OUT>(v.as_ptr().cast(), start, d, row),
            Vectors::Bf16(v) => copy_widened::<S, ROW_BF16, OUT>(v.as_ptr().cast(), start, d, row),
        }
        let zero = S::zero();
        let mut at = d + problem.pairs;
        while at < problem.row_len {
            let m = lanes.min(problem.row_len - at);
            let p = row.add(at * elem_bytes(OUT));
            if m == lanes {
                S::store::<OUT>(p, zero);
            } else {
                S::store_part::<OUT>(p, zero, m);
            }
            at += lanes;
        }
    }
}

/// Writes elements `start .. start + len` of `src` (format `FMT`), widened exactly to f32,
/// as `OUT` at `dst`.
///
/// # Safety
///
/// The CPU runs `S`; those elements are readable and `len` elements writable at `dst`.
#[inline(always)]
unsafe fn copy_widened<S: Simd, const FMT: u8, const OUT: u8>(
    src: *const u8,
    start: usize,
    len: usize,
    dst: *mut u8,
) {
    let lanes = S::LANES;
    let mut at = 0;
    while at < len {
        let m = lanes.min(len - at);
        // SAFETY: elements `at .. at + m` of both are inside the caller's ranges.
        unsafe {
            let (p, q) = (
                src.add((start + at) * elem_bytes(FMT)),
                dst.add(at * elem_bytes(OUT)),
            );
            if m == lanes {
                S::store::<OUT>(q, S::load::<FMT>(p));
            } else {
                S::store_part::<OUT>(q, S::load_part::<FMT>(p, m), m);
            }
        }
        at += lanes;
    }
}

/// Rows `i` of the triangle per tile of [`single_tile`], and the most vectors of columns
/// `j` it takes at once: `4 × 3` accumulators, the 3 column vectors and one broadcast fill
/// the 16 vector registers of AVX2. Rows whose pairs fit one vector go eight at a time, so
/// that eight independent chains keep both FMA pipes busy.
const SINGLE_ROWS: usize = 4;
const SINGLE_COLS: usize = 3;
const SINGLE_ROWS_NARROW: usize = 8;

/// Computes sample `b` on its own, its pairs across the lanes instead of samples, for a
/// block that would leave most lanes empty (a block costs as much as a full one whatever
/// its samples): its vectors are transposed into `vt` (element `k` of every
/// vector `f`, `vt[k · W + f]` with `W = F` rounded up to whole vectors), so that lane `j`
/// of a vector loaded at `vt[k · W + j0]` is element `k` of vector `j0 + j`, and row `i`
/// takes `fma(v[i][k], that, acc)` for `k` in order from +0.0 with `v[i][k]` broadcast:
/// the reference's chain in every lane. The lanes past a row's last pair are computed and
/// not stored.
///
/// Zen 3, AVX2, F = 27, d = 128, against blocks only (paired in one process, medians):
/// B = 1 3.5x, 2 1.7x, 3 1.16x, 9 (a block and one sample) 1.5x; at d = 64, B = 1 2.9x,
/// 3 1.09x. At B = 4 the two ways cost the same, hence three eighths of the lanes.
///
/// # Safety
///
/// The CPU runs `S`; `problem` comes from `InteractionProblem::new` with `out`'s length;
/// `b < B`; `vt` holds `d · W` elements ([`scratch_parts`]' panel does).
#[inline(always)]
unsafe fn single_sample<S: Transpose>(
    problem: &InteractionProblem<'_>,
    out: &mut Output<'_>,
    b: usize,
    vt: &mut [f32],
) {
    // SAFETY: the caller's contract; each buffer is the output's.
    unsafe {
        match out {
            Output::F32(o) => single_sample_as::<S, OUT_F32>(problem, o.as_mut_ptr().cast(), b, vt),
            Output::F16(o) => single_sample_as::<S, OUT_F16>(problem, o.as_mut_ptr().cast(), b, vt),
            Output::Bf16(o) => {
                single_sample_as::<S, OUT_BF16>(problem, o.as_mut_ptr().cast(), b, vt)
            }
        }
    }
}

/// [`single_sample`] into an output of type `OUT` at `out`.
///
/// # Safety
///
/// As [`single_sample`], with `out` the output buffer's start.
#[inline(always)]
unsafe fn single_sample_as<S: Transpose, const OUT: u8>(
    problem: &InteractionProblem<'_>,
    out: *mut u8,
    b: usize,
    vt: &mut [f32],
) {
    let (lanes, f_count, d) = (S::LANES, problem.features, problem.dim);
    let width = f_count.next_multiple_of(lanes);
    for f0 in (0..f_count).step_by(lanes) {
        // Where each of the group's vectors starts, and whether it is bf16.
        let sources: [(*const u8, bool); MAX_LANES] = std::array::from_fn(|q| {
            if f0 + q >= f_count {
                return (std::ptr::null(), false);
            }
            match problem.vector(b, f0 + q) {
                (Vectors::F32(x), start) => (x.as_ptr().wrapping_add(start).cast(), false),
                (Vectors::Bf16(x), start) => (x.as_ptr().wrapping_add(start).cast(), true),
            }
        });
        for k0 in (0..d).step_by(lanes) {
            let m = lanes.min(d - k0);
            // SAFETY: vector `f < F` of sample `b` holds `d > k0` elements from its start
            // (the problem's checks); `vt` holds `d · W` elements, and `k0 + c < d`, `f0 +
            // LANES ≤ W`; the CPU runs `S`.
            unsafe {
                let mut r = [S::zero(); MAX_LANES];
                let at = Rows {
                    start: k0,
                    stride: 0,
                    n: 1,
                };
                for (v, &(p, bf16)) in r[..lanes].iter_mut().zip(&sources).take(f_count - f0) {
                    *v = if bf16 {
                        load_lane::<S, ROW_BF16>(p, at, 0, m)
                    } else {
                        load_lane::<S, ROW_F32>(p, at, 0, m)
                    };
                }
                S::transpose(&mut r);
                for (c, &v) in r[..m].iter().enumerate() {
                    let at = (k0 + c) * width + f0;
                    S::store::<ROW_F32>(vt.as_mut_ptr().add(at).cast(), v);
                }
            }
        }
    }
    let row = out.wrapping_add(b * problem.out_stride * elem_bytes(OUT));
    // Row 0 has no pairs without the diagonal.
    let mut i0 = usize::from(!problem.diagonal);
    while i0 < f_count {
        let last = |rows: usize| (i0 + rows).min(f_count) - 1;
        // SAFETY (both): `vt` holds the transposed sample; a tile stores only pairs of rows
        // `i0 ..= last < F` in sample `b`'s row; the CPU runs `S`.
        if problem.triangle_row_len(last(SINGLE_ROWS_NARROW)) <= lanes {
            unsafe { single_tile::<S, OUT, SINGLE_ROWS_NARROW, 1>(problem, vt, i0, 0, row) };
            i0 += SINGLE_ROWS_NARROW;
            continue;
        }
        let vectors = problem.triangle_row_len(last(SINGLE_ROWS)).div_ceil(lanes);
        for c0 in (0..vectors).step_by(SINGLE_COLS) {
            unsafe {
                match (vectors - c0).min(SINGLE_COLS) {
                    1 => single_tile::<S, OUT, SINGLE_ROWS, 1>(problem, vt, i0, c0, row),
                    2 => single_tile::<S, OUT, SINGLE_ROWS, 2>(problem, vt, i0, c0, row),
                    _ => single_tile::<S, OUT, SINGLE_ROWS, SINGLE_COLS>(problem, vt, i0, c0, row),
                }
            }
        }
        i0 += SINGLE_ROWS;
    }
    // SAFETY: sample `b` is in the batch and its row starts at `row`; the CPU runs `S`.
    unsafe { write_dense_and_padding::<S, OUT>(problem, b, row) };
}

/// The pairs of rows `i0 .. i0 + R` (those below `F`) with columns `j` in vectors `c0 ..
/// c0 + C` of the transposed sample `vt`, stored as `OUT` in the output row at `row`. Rows
/// past `F − 1` repeat it and are not stored.
///
/// # Safety
///
/// As [`single_sample_as`], with `vt` holding the transposed sample, `i0 < F`, and `row`
/// sample `b`'s output row.
#[inline(always)]
unsafe fn single_tile<S: Simd, const OUT: u8, const R: usize, const C: usize>(
    problem: &InteractionProblem<'_>,
    vt: &[f32],
    i0: usize,
    c0: usize,
    row: *mut u8,
) {
    let (lanes, f_count) = (S::LANES, problem.features);
    let width = f_count.next_multiple_of(lanes);
    let rows: [usize; R] = std::array::from_fn(|r| (i0 + r).min(f_count - 1));
    // SAFETY: every load is inside `vt`'s `d · W` elements (`(c0 + C) · LANES ≤ W`: the
    // vectors cover the pairs of the group's last row, `≤ F`); every store writes pairs of
    // row `i < F`, `j0 + m ≤` the row's length, so inside the output row; the CPU runs `S`.
    unsafe {
        let mut a = [[S::zero(); C]; R];
        for line in vt.chunks_exact(width).take(problem.dim) {
            let p = line.as_ptr();
            let y: [S::V; C] =
                std::array::from_fn(|c| S::load::<ROW_F32>(p.add((c0 + c) * lanes).cast()));
            for (a_r, &i) in a.iter_mut().zip(&rows) {
                let x = S::splat(*p.add(i));
                for (a_rc, &y_c) in a_r.iter_mut().zip(&y) {
                    *a_rc = S::fma(x, y_c, *a_rc);
                }
            }
        }
        for (r, a_r) in a.iter().enumerate().take(f_count - i0) {
            let i = i0 + r;
            let len = problem.triangle_row_len(i);
            let at = problem.dim + problem.triangle_row_start(i);
            for (c, &v) in a_r.iter().enumerate() {
                let j0 = (c0 + c) * lanes;
                if j0 >= len {
                    break;
                }
                let m = lanes.min(len - j0);
                let p = row.add((at + j0) * elem_bytes(OUT));
                if m == lanes {
                    S::store::<OUT>(p, v);
                } else {
                    S::store_part::<OUT>(p, v, m);
                }
            }
        }
    }
}
