//! The feature-interaction loop that every `interaction_*` kernel instantiates with its own
//! vector type (the embedding bags' [`Simd`]).
//!
//! The arithmetic is the reference's (`crate::reference::interaction`) by construction:
//! vectors run across the columns `j` of the triangle, never across the summation over
//! `d`, so every lane is one dot product `Z[i][j]` accumulating `fma(v[i][k], v[j][k], acc)`
//! for `k` in order from +0.0, exactly the reference's chain (the product of two f32 is
//! the same whichever operand comes first).
//!
//! Per sample, the `F` vectors are widened to f32 once and also transposed into a tile
//! `T[k][j] = v[j][k]` (columns padded with zeros to whole vectors), so that one vector
//! load gives element `k` of `LANES` consecutive vectors `j`. A register block is a few
//! rows `i` × one or two vectors of columns: per `k` it loads the column vectors once,
//! broadcasts `v[i][k]` for each row and issues [`CHAINS`] independent fused
//! multiply-adds, enough to hide the FMA latency. Lanes past a row's last
//! column (`j ≥ i`, or `j > i` with the diagonal) are computed and dropped; only the
//! column vectors a row block needs are computed at all.

use crate::arch::sls::{ROW_F32, Simd};
use crate::embedding::Output;
use crate::error::Result;
use crate::interaction::InteractionProblem;

/// Independent FMA chains per register block: an FMA has about 4 cycles of latency and
/// two issue per cycle, so 8 chains keep both pipes busy. A block is 8 rows × 1 column
/// vector where one vector covers the rows' columns, else 4 rows × 2 column vectors.
const CHAINS: usize = 8;

/// A vector type that can transpose a square block of `LANES × LANES` f32.
pub(crate) trait Transpose: Simd {
    /// Writes the transpose of the `LANES × LANES` block at `src` (rows `src_stride`
    /// elements apart) to `dst` (rows `dst_stride` apart): `dst[c][r] = src[r][c]`. This
    /// default moves one element at a time; instruction sets override it with shuffles.
    ///
    /// # Safety
    ///
    /// The CPU runs `Self`'s instructions; both blocks are inside their buffers and do not
    /// overlap.
    #[inline(always)]
    unsafe fn transpose(src: *const f32, src_stride: usize, dst: *mut f32, dst_stride: usize) {
        for r in 0..Self::LANES {
            for c in 0..Self::LANES {
                // SAFETY: `r, c < LANES`: inside both blocks (the caller's contract).
                unsafe { *dst.add(c * dst_stride + r) = *src.add(r * src_stride + c) };
            }
        }
    }
}

/// Runs `problem` with vector type `S` into `out`.
///
/// # Safety
///
/// The CPU runs `S`'s instructions; `problem` comes from `InteractionProblem::new` with
/// `out`'s length.
#[inline(always)]
pub(crate) unsafe fn interaction<S: Transpose>(
    problem: &InteractionProblem<'_>,
    out: &mut Output<'_>,
) -> Result<()> {
    if problem.batch == 0 {
        // Nothing to write, and no input bounds the scratch of one sample.
        return Ok(());
    }
    let (f_count, d) = (problem.features, problem.dim);
    // The sample's vectors row-major and their transpose, both padded with zeros to whole
    // `LANES × LANES` blocks: `F` up to `tile_cols`, `d` up to `dpad`.
    let tile_cols = f_count.div_ceil(S::LANES) * S::LANES;
    let dpad = d.div_ceil(S::LANES) * S::LANES;
    let mut vectors = vec![0f32; tile_cols * dpad];
    let mut tile = vec![0f32; dpad * tile_cols];
    let mut row = vec![0f32; problem.row_len];
    let first_row = if problem.diagonal { 0 } else { 1 };
    for b in 0..problem.batch {
        for f in 0..f_count {
            let (src, start) = problem.vector(b, f);
            src.widen_into(start, &mut vectors[f * dpad..f * dpad + d]);
        }
        for jb in (0..tile_cols).step_by(S::LANES) {
            for kb in (0..dpad).step_by(S::LANES) {
                // SAFETY: `jb + LANES ≤ tile_cols` and `kb + LANES ≤ dpad`: the block is
                // inside `vectors` (`tile_cols × dpad`) and its transpose inside `tile`
                // (`dpad × tile_cols`); the CPU runs `S` (this function's contract).
                unsafe {
                    S::transpose(
                        vectors.as_ptr().add(jb * dpad + kb),
                        dpad,
                        tile.as_mut_ptr().add(kb * tile_cols + jb),
                        tile_cols,
                    );
                }
            }
        }
        row[..d].copy_from_slice(&vectors[..d]);
        let sample = Sample {
            vectors: &vectors,
            vstride: dpad,
            tile: &tile,
            tile_cols,
        };
        let mut i0 = first_row;
        while i0 < f_count {
            // Column vectors the last of the next `CHAINS` rows needs.
            let wide = problem.triangle_row_len((i0 + CHAINS).min(f_count) - 1);
            if wide <= S::LANES {
                // SAFETY: the CPU runs `S` (this function's contract); `i0 < f_count`,
                // one column vector fits the tile, and `row` holds `d + pairs` elements,
                // as `block` requires.
                unsafe { block::<S, CHAINS, 1>(problem, &sample, i0, 0, &mut row) };
                i0 += CHAINS;
                continue;
            }
            const ROWS: usize = CHAINS / 2;
            // Column vectors the block's last row needs.
            let last = (i0 + ROWS).min(f_count) - 1;
            let col_vectors = problem.triangle_row_len(last).div_ceil(S::LANES);
            let mut c0 = 0;
            while c0 < col_vectors {
                // SAFETY: as above, with `c0 + 2 ≤ col_vectors ≤ tile_cols / LANES` or
                // `c0 + 1 = col_vectors`.
                unsafe {
                    if col_vectors - c0 >= 2 {
                        block::<S, ROWS, 2>(problem, &sample, i0, c0, &mut row);
                    } else {
                        block::<S, ROWS, 1>(problem, &sample, i0, c0, &mut row);
                    }
                }
                c0 += 2;
            }
            i0 += ROWS;
        }
        // `row` past the triangle is the padding: zeros, never written.
        out.store(b * problem.out_stride, &row);
    }
    Ok(())
}

/// One sample's vectors, widened to f32, in the two layouts the blocks read.
struct Sample<'a> {
    /// Vector `j` at `vectors[j · vstride..][..d]`: the broadcast operands.
    vectors: &'a [f32],
    /// Elements from one vector to the next (`d` padded).
    vstride: usize,
    /// The transpose: element `k` of vector `j` at `tile[k · tile_cols + j]`.
    tile: &'a [f32],
    /// Columns of the tile (`F` padded to whole vectors).
    tile_cols: usize,
}

/// Rows `i0 .. i0 + NR` (those below `F`) × column vectors `c0 .. c0 + NC` of one
/// sample's triangle, written into `row` (which starts with the `d` dense elements).
/// Rows past `F − 1` repeat row `F − 1` and are not stored.
///
/// # Safety
///
/// The CPU runs `S`; `sample` holds the sample's `F` widened vectors and their transpose;
/// `i0 < F`; `(c0 + NC) · LANES ≤ tile_cols`; `row` holds at least `d + pairs` elements.
#[inline(always)]
unsafe fn block<S: Simd, const NR: usize, const NC: usize>(
    problem: &InteractionProblem<'_>,
    sample: &Sample<'_>,
    i0: usize,
    c0: usize,
    row: &mut [f32],
) {
    let (f_count, d) = (problem.features, problem.dim);
    let rows: [usize; NR] = std::array::from_fn(|r| (i0 + r).min(f_count - 1));
    let &Sample {
        vectors,
        vstride,
        tile,
        tile_cols,
    } = sample;
    let v = vectors.as_ptr();
    let t = tile.as_ptr().wrapping_add(c0 * S::LANES);
    // SAFETY: `S::zero` needs only the CPU support the caller guarantees.
    let mut acc = [[unsafe { S::zero() }; NC]; NR];
    for k in 0..d {
        // SAFETY: `k < d` and `(c0 + NC) · LANES ≤ tile_cols`, so each load reads tile row
        // `k` inside `tile`; `rows[r] < F`, so `v[rows[r] · vstride + k]` is inside `vectors`.
        unsafe {
            let cols: [S::V; NC] = std::array::from_fn(|c| {
                S::load::<ROW_F32>(t.add(k * tile_cols + c * S::LANES).cast())
            });
            for r in 0..NR {
                let x = S::splat(*v.add(rows[r] * vstride + k));
                for c in 0..NC {
                    acc[r][c] = S::fma(x, cols[c], acc[r][c]);
                }
            }
        }
    }
    let triangle = d;
    for (r, acc_r) in acc.iter().enumerate() {
        let i = i0 + r;
        if i >= f_count {
            break;
        }
        let len = problem.triangle_row_len(i);
        let start = triangle + problem.triangle_row_start(i);
        for (c, &a) in acc_r.iter().enumerate() {
            let col = (c0 + c) * S::LANES;
            if col >= len {
                break;
            }
            let p = row.as_mut_ptr().wrapping_add(start + col).cast();
            // SAFETY: `col + n ≤ len`, so the store stays inside row `i` of the triangle,
            // which `row` holds.
            unsafe {
                let n = len - col;
                if n >= S::LANES {
                    S::store::<ROW_F32>(p, a);
                } else {
                    S::store_part::<ROW_F32>(p, a, n);
                }
            }
        }
    }
}
