//! The embedding-bag loop over row-wise quantized rows (Q8, Q4, Q2) that every `sls_q_*`
//! kernel instantiates with its own vector type.
//!
//! It extends the float loop's [`Simd`] vector with [`QuantSimd`], which turns packed codes
//! into f32 lanes, and reuses that loop's index widths and output stores; rows are
//! prefetched by `prefetch_lines`, whose trip count does not depend on a row's alignment,
//! with the extra prefetch of a row's last line only where the table's row size and
//! alignment let some row need it. No intrinsics here.
//!
//! The arithmetic is the reference's (`crate::reference::embedding_bag`) by construction:
//! for each entry the row's scale and bias are multiplied by the weight in scalar f32
//! (`s = w · scale`, `b = w · bias`, skipped when unweighted since `1 · x == x`), then every
//! lane does `acc = fma(s, q, acc + b)`: the bias added first, one rounding, then one fused
//! multiply-add. Vectors run across the dimension, never across a bag; Mean multiplies by
//! the f32 reciprocal of the length after the bag. Where a level has [`LutSimd`], unweighted
//! Q4 / Q2 bags look the exact products `s · q` up instead (see there).

use std::ops::Range;

use crate::arch::prefetch::{last_line_needed, prefetch, prefetch_lines};
use crate::arch::sls::{
    Index, OUT_BF16, OUT_F16, OUT_F32, PREFETCH_MIN_TABLE_BYTES, Simd, checked_index, elem_bytes,
    out_parts, store_block,
};
use crate::embedding::plan::{Prefetch, PrefetchHint};
use crate::embedding::{Bags, IndexSlice, Output, Pooling, Weights};
use crate::error::Result;
use crate::format::Table;

/// Vectors of the general (any dimension) path: dimensions are done in column blocks of
/// this many vectors, each block summing the whole bag.
const BLOCK: usize = 8;

/// Bytes holding `elems` codes of `BITS` bits (the last one possibly partial).
#[inline(always)]
pub(crate) const fn code_bytes<const BITS: u32>(elems: usize) -> usize {
    (elems * BITS as usize).div_ceil(8)
}

/// Bytes of a row of `dim` codes of `BITS` bits and its scale and bias (f32 for Q8, f16
/// otherwise): the table's row size, written so that it is a constant in the kernels
/// specialised for a dimension, whose row prefetch then unrolls.
#[inline(always)]
const fn row_bytes<const BITS: u32>(dim: usize) -> usize {
    code_bytes::<BITS>(dim) + if BITS == 8 { 8 } else { 4 }
}

/// The part of each row to prefetch: from byte `from`, `bytes` bytes (`last_line`: as
/// [`prefetch_lines`] takes it), and whether the scale and bias lie outside it.
#[derive(Clone, Copy)]
struct RowPrefetch {
    from: usize,
    bytes: usize,
    last_line: bool,
    scale_bias: bool,
}

impl RowPrefetch {
    /// `bytes` bytes from `from` of each row of `batch`'s table.
    #[inline(always)]
    fn new<I>(batch: &Batch<I>, from: usize, bytes: usize, scale_bias: bool) -> Self {
        RowPrefetch {
            from,
            bytes,
            last_line: last_line_needed(batch.table.wrapping_add(from), batch.row_bytes, bytes),
            scale_bias,
        }
    }
}

/// The most vectors one [`QuantSimd::load_code_group`] yields.
pub(crate) const MAX_GROUP: usize = 4;
const _: () = assert!(
    BLOCK.is_multiple_of(MAX_GROUP),
    "a column block is whole groups, so passes and blocks agree on them"
);

/// A [`Simd`] vector that can also unpack quantized codes.
///
/// Implementations are `#[inline(always)]`, and run only where the kernel calling
/// [`embedding_bag`] may.
pub(crate) trait QuantSimd: Simd {
    /// Rows the bag loops sum a step before issuing their prefetches (see
    /// [`prefetch_ahead`]): two, or four where the registers hold four rows' codes.
    const ROWS_PER_STEP: usize = 2;

    /// The most vectors of a specialised row a bag loop sums in one pass, each with its
    /// own accumulator register; wider rows go in passes of [`BLOCK`] vectors over the
    /// bag. By default every specialised row is one pass.
    const MAX_ACC: usize = usize::MAX;

    /// `LANES` codes of `BITS` bits (8, 4 or 2) packed at `p` as the quantized formats
    /// pack them (element `e` in byte `e · BITS / 8`, lowest bits first), each converted
    /// exactly to f32. Reads exactly `LANES · BITS / 8` bytes.
    unsafe fn load_codes<const BITS: u32>(p: *const u8) -> Self::V;

    /// Vectors of codes one [`QuantSimd::load_code_group`] yields at `BITS` bits: 1, 2 or
    /// [`MAX_GROUP`]. By default two.
    #[inline(always)]
    fn code_group<const BITS: u32>() -> usize {
        2
    }

    /// `G · LANES` codes of `BITS` bits at `p` (`G` = [`QuantSimd::code_group`]), each
    /// converted exactly to f32, as the first `G` vectors, whose lanes may hold them in an
    /// order of the implementation's choosing (the same for every row), which
    /// [`QuantSimd::ungroup_codes`] puts back: lane-wise sums do not depend on where a code
    /// sits, so a cheaper unpacking that permutes lanes keeps the reference's bits. Reads
    /// exactly `G · LANES · BITS / 8` bytes. By default, [`QuantSimd::load_codes`] for
    /// each vector in element order.
    #[inline(always)]
    unsafe fn load_code_group<const BITS: u32>(p: *const u8) -> [Self::V; MAX_GROUP] {
        // SAFETY: the caller provides the `G · LANES · BITS / 8` bytes read here; the CPU
        // runs `Self` (the trait's contract).
        unsafe {
            let mut group = [Self::zero(); MAX_GROUP];
            for (v, g) in group
                .iter_mut()
                .enumerate()
                .take(Self::code_group::<BITS>())
            {
                *g = Self::load_codes::<BITS>(p.add(v * code_bytes::<BITS>(Self::LANES)));
            }
            group
        }
    }

    /// The first `G` of `group`, vectors accumulated from [`QuantSimd::load_code_group`]s,
    /// back in element order.
    #[inline(always)]
    unsafe fn ungroup_codes<const BITS: u32>(group: [Self::V; MAX_GROUP]) -> [Self::V; MAX_GROUP] {
        group
    }

    /// The first `n < LANES` codes at `p`, the other lanes any finite value; reads only
    /// the `⌈n · BITS / 8⌉` bytes holding them.
    #[inline(always)]
    unsafe fn load_codes_part<const BITS: u32>(p: *const u8, n: usize) -> Self::V {
        let mut buf = [0u8; 16];
        // SAFETY: the caller provides the bytes holding `n` codes at `p`; a vector's codes
        // take at most 16 bytes (sixteen 8-bit codes), so both copy and load fit `buf`.
        unsafe {
            std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), code_bytes::<BITS>(n));
            Self::load_codes::<BITS>(buf.as_ptr())
        }
    }

    /// The two little-endian binary16 values at `p` (4 bytes, unaligned), converted
    /// exactly to f32.
    unsafe fn widen_f16_pair(p: *const u8) -> (f32, f32);
}

/// What stays fixed over one call.
struct Batch<I> {
    table: *const u8,
    rows: usize,
    row_bytes: usize,
    /// Bytes of codes at the start of a row; the scale and bias follow.
    data_bytes: usize,
    dim: usize,
    indices: *const I,
    num_indices: usize,
    prefetch: Prefetch,
    out: *mut u8,
    out_stride: usize,
    pooling: Pooling,
}

/// What stays fixed over one call with index type `I`.
fn batch<const BITS: u32, I>(
    t: &Table<'_>,
    ix: &[I],
    prefetch: Prefetch,
    out: *mut u8,
    out_stride: usize,
    pooling: Pooling,
) -> Batch<I> {
    Batch {
        table: t.bytes().as_ptr(),
        rows: t.rows(),
        row_bytes: t.row_bytes(),
        data_bytes: code_bytes::<BITS>(t.dim()),
        dim: t.dim(),
        indices: ix.as_ptr(),
        num_indices: ix.len(),
        // As the float kernels (and the plan's documentation): a table this small stays in
        // L2, where the prefetch only costs instructions (about fifteen a row, an indirect
        // jump on the hint among them, beside the Q4 dimension-64 loop's thirty-odd).
        prefetch: if t.bytes().len() <= PREFETCH_MIN_TABLE_BYTES {
            Prefetch::OFF
        } else {
            // A distance beyond the batch names its last entry, as this one does: the
            // clamp here lets the row loop add it without overflow.
            Prefetch {
                distance: prefetch.distance.min(ix.len()),
                ..prefetch
            }
        },
        out,
        out_stride,
        pooling,
    }
}

/// Runs every bag of `bags` over the quantized `table` into `out` with vector type `S`,
/// codes of `BITS` bits (8: Q8, 4: Q4, 2: Q2). `NV > 0`: the dimension is `NV · S::LANES`
/// and a bag's accumulators are `NV` vectors kept in registers; `NV == 0`: any dimension,
/// in column blocks with a partial last vector.
///
/// # Safety
///
/// The CPU runs `S`'s instructions; `table` is in the format with `BITS`-bit codes (and
/// `table.dim() == NV · S::LANES` when `NV > 0`); `bags` and `out` passed their
/// constructors' checks and `embedding::check_output` for this table and `out_stride`.
#[inline(always)]
pub(crate) unsafe fn embedding_bag<S: QuantSimd, const BITS: u32, const NV: usize>(
    table: &Table<'_>,
    bags: &Bags<'_>,
    pooling: Pooling,
    out: &mut Output<'_>,
    out_stride: usize,
    prefetch: Prefetch,
) -> Result<()> {
    let (out_type, out_ptr) = out_parts(out);
    let weights = match bags.weights() {
        Weights::None => None,
        Weights::PerIndex(w) => Some((w.as_ptr(), true)),
        Weights::Positional(w) => Some((w.as_ptr(), false)),
    };
    let (t, pf, o, st, pl) = (table, prefetch, out_ptr, out_stride, pooling);
    // SAFETY: forwarded from this function's contract; `Batch` describes the same table,
    // indices and output.
    unsafe {
        match (bags.indices(), weights) {
            (IndexSlice::I32(ix), None) => run::<S, BITS, NV, i32, false>(
                &batch::<BITS, _>(t, ix, pf, o, st, pl),
                bags,
                out_type,
                None,
            ),
            (IndexSlice::I32(ix), w) => run::<S, BITS, NV, i32, true>(
                &batch::<BITS, _>(t, ix, pf, o, st, pl),
                bags,
                out_type,
                w,
            ),
            (IndexSlice::I64(ix), None) => run::<S, BITS, NV, i64, false>(
                &batch::<BITS, _>(t, ix, pf, o, st, pl),
                bags,
                out_type,
                None,
            ),
            (IndexSlice::I64(ix), w) => run::<S, BITS, NV, i64, true>(
                &batch::<BITS, _>(t, ix, pf, o, st, pl),
                bags,
                out_type,
                w,
            ),
        }
    }
}

/// The bag loop for one index width and weighting; `weights` is the weight array and
/// whether it is per index (else positional).
#[inline(always)]
unsafe fn run<S: QuantSimd, const BITS: u32, const NV: usize, I: Index, const WEIGHTED: bool>(
    batch: &Batch<I>,
    bags: &Bags<'_>,
    out_type: u8,
    weights: Option<(*const f32, bool)>,
) -> Result<()> {
    // SAFETY: forwarded.
    unsafe {
        match prefetch_kind(batch) {
            PF_OFF => run_bags::<S, BITS, NV, I, WEIGHTED, PF_OFF>(batch, bags, out_type, weights),
            PF_L2 => run_bags::<S, BITS, NV, I, WEIGHTED, PF_L2>(batch, bags, out_type, weights),
            _ => run_bags::<S, BITS, NV, I, WEIGHTED, PF_ANY>(batch, bags, out_type, weights),
        }
    }
}

/// [`run`] with the prefetch kind `PF` ([`prefetch_kind`]) a constant.
#[inline(always)]
unsafe fn run_bags<
    S: QuantSimd,
    const BITS: u32,
    const NV: usize,
    I: Index,
    const WEIGHTED: bool,
    const PF: u8,
>(
    batch: &Batch<I>,
    bags: &Bags<'_>,
    out_type: u8,
    weights: Option<(*const f32, bool)>,
) -> Result<()> {
    for (bag, range) in bags.ranges().enumerate() {
        if PF != PF_OFF {
            // SAFETY: the ranges come from validated bags, so they lie within the indices.
            unsafe { check_bag(batch, bag, range.clone())? };
        }
        let bag_weights = match weights {
            Some((w, true)) => w.wrapping_add(range.start),
            Some((w, false)) => w,
            None => std::ptr::null(),
        };
        let out_row = batch
            .out
            .wrapping_add(bag * batch.out_stride * elem_bytes(out_type));
        // SAFETY: the ranges come from validated bags, so they lie within the indices and
        // (per-index or positional) weights; the output row holds `dim` elements
        // (check_output); blocks stay within `0..dim` and start at multiples of
        // `BLOCK · LANES`, a multiple of the codes per byte.
        unsafe {
            if NV > 0 && NV <= S::MAX_ACC {
                sum_block::<S, BITS, NV, I, WEIGHTED, true, PF>(
                    batch,
                    bag,
                    range,
                    bag_weights,
                    0,
                    NV,
                    0,
                    out_type,
                    out_row,
                )?;
            } else if NV > 0 {
                sum_passes::<S, BITS, NV, I, WEIGHTED, PF>(
                    batch,
                    bag,
                    range,
                    bag_weights,
                    out_type,
                    out_row,
                )?;
            } else {
                // At least one block, so that a zero-dimension table still checks the
                // indices of loops without prefetch (which check row by row).
                let mut col = 0;
                loop {
                    let width = (batch.dim - col).min(BLOCK * S::LANES);
                    let out = out_row.wrapping_add(col * elem_bytes(out_type));
                    let range = range.clone();
                    // A whole block with its width a constant, so that its accumulators
                    // are registers: indexed by a variable count, they live on the stack.
                    // The general AVX2 kernel on in-L2 bags of 20 (Zen 3, paired ratio to
                    // the in-cache read): Q4 dimension 64 0.026 before, 0.040 after; Q8
                    // 0.060, 0.094; Q4 dimension 128 0.033, 0.046; Q8 0.069, 0.088.
                    macro_rules! block {
                        ($nv:expr, $tail:expr) => {
                            sum_block::<S, BITS, BLOCK, I, WEIGHTED, false, PF>(
                                batch,
                                bag,
                                range,
                                bag_weights,
                                col,
                                $nv,
                                $tail,
                                out_type,
                                out,
                            )?
                        };
                    }
                    if width == BLOCK * S::LANES {
                        block!(BLOCK, 0);
                    } else {
                        block!(width / S::LANES, width % S::LANES);
                    }
                    col += width;
                    if col >= batch.dim {
                        break;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Sums columns `col .. col + nv · LANES + tail` of one bag and stores them at `out`.
///
/// # Safety
///
/// `range` lies within the indices, which (with `PF` other than [`PF_OFF`]) passed
/// [`check_bag`]; `weights` (when `WEIGHTED`) holds `range.len()` weights; `nv ≤ NV`; the columns lie within the
/// dimension and `col` is a multiple of the codes per byte; `out` holds the columns.
/// `WHOLE_ROW`: the columns are the whole row of the dimension `NV · LANES` (`col == 0`,
/// `nv == NV`, `tail == 0`).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn sum_block<
    S: QuantSimd,
    const BITS: u32,
    const NV: usize,
    I: Index,
    const WEIGHTED: bool,
    const WHOLE_ROW: bool,
    const PF: u8,
>(
    batch: &Batch<I>,
    bag: usize,
    range: Range<usize>,
    weights: *const f32,
    col: usize,
    nv: usize,
    tail: usize,
    out_type: u8,
    out: *mut u8,
) -> Result<()> {
    let col_bytes = col * BITS as usize / 8;
    let width = nv * S::LANES + tail;
    let block_bytes = code_bytes::<BITS>(width);
    // The first block fetches the scale and bias with its codes (whole row when it is
    // the only block); later blocks find them in cache and fetch only their codes.
    let pf = if col == 0 {
        // Known at compile time in the kernels specialised for a dimension, whose row
        // prefetch then unrolls.
        if WHOLE_ROW || width == batch.dim {
            RowPrefetch::new(batch, 0, row_bytes::<BITS>(width), false)
        } else {
            RowPrefetch::new(batch, 0, block_bytes, true)
        }
    } else {
        RowPrefetch::new(batch, col_bytes, block_bytes, false)
    };
    let len = range.len();
    // At a specialised dimension, a constant.
    let data_bytes = if WHOLE_ROW {
        code_bytes::<BITS>(NV * S::LANES)
    } else {
        batch.data_bytes
    };
    // SAFETY: forwarded from this function's contract.
    unsafe {
        let mut acc = [S::zero(); NV];
        let mut acc_tail = S::zero();
        add_rows::<S, BITS, NV, I, WEIGHTED, PF>(
            batch,
            bag,
            &range,
            0..len,
            weights,
            (col, nv, tail),
            data_bytes,
            pf,
            (&mut acc, &mut acc_tail),
        )?;
        store_sums::<S, BITS, NV>(
            batch.pooling,
            len,
            &mut acc,
            acc_tail,
            nv,
            tail,
            out_type,
            out,
        );
    }
    Ok(())
}

/// Sums one bag of a specialised row of `NV > S::MAX_ACC` vectors (more accumulators than
/// the registers hold) and stores it at `out`. The bag goes in chunks of [`PASS_ROWS`]
/// rows, each summed in passes of [`BLOCK`] vectors: the first pass prefetches whole rows
/// ahead (and, without prefetch, checks the indices), the others find the chunk's rows in
/// L1. Between passes the accumulators of the other blocks wait on the stack, a load and
/// a store per vector per chunk, where summing whole rows spilled and reloaded them on
/// every row; chunks keep the prefetches flowing through the bag, which passes over the
/// whole bag would leave idle during the later passes.
///
/// # Safety
///
/// As [`sum_block`] for columns `0 .. NV · LANES` of a table of dimension `NV · LANES`.
#[inline(always)]
unsafe fn sum_passes<
    S: QuantSimd,
    const BITS: u32,
    const NV: usize,
    I: Index,
    const WEIGHTED: bool,
    const PF: u8,
>(
    batch: &Batch<I>,
    bag: usize,
    range: Range<usize>,
    weights: *const f32,
    out_type: u8,
    out: *mut u8,
) -> Result<()> {
    // Every specialised dimension wider than a level's `MAX_ACC` vectors is; a constant.
    assert!(NV.is_multiple_of(BLOCK), "whole blocks");
    let len = range.len();
    let pf = RowPrefetch::new(batch, 0, row_bytes::<BITS>(NV * S::LANES), false);
    let data_bytes = code_bytes::<BITS>(NV * S::LANES);
    // SAFETY: forwarded from this function's contract; a later pass reads only rows whose
    // indices the first pass (or `check_bag`) checked.
    unsafe {
        let mut acc = [S::zero(); NV];
        let mut no_tail = S::zero();
        let mut start = 0;
        while start < len {
            let chunk = start..(start + PASS_ROWS).min(len);
            for (pass, block) in acc.chunks_exact_mut(BLOCK).enumerate() {
                let block: &mut [S::V; BLOCK] = block.try_into().expect("BLOCK vectors");
                let cols = (pass * BLOCK * S::LANES, BLOCK, 0);
                let acc = (block, &mut no_tail);
                let chunk = chunk.clone();
                macro_rules! pass {
                    ($pf:expr) => {
                        add_rows::<S, BITS, BLOCK, I, WEIGHTED, { $pf }>(
                            batch, bag, &range, chunk, weights, cols, data_bytes, pf, acc,
                        )?
                    };
                }
                if pass == 0 {
                    pass!(PF);
                } else {
                    pass!(PF_CHECKED);
                }
            }
            start = chunk.end;
        }
        store_sums::<S, BITS, NV>(batch.pooling, len, &mut acc, no_tail, NV, 0, out_type, out);
    }
    Ok(())
}

/// Rows per chunk of [`sum_passes`].
const PASS_ROWS: usize = 16;

/// Adds the rows of the entries at `positions` of the bag `bag` (entries `range`), columns
/// `col .. col + nv · LANES + tail` (`cols = (col, nv, tail)`), to `acc = (vectors,
/// tail)`: `ROWS_PER_STEP` rows a step, then their prefetches `pf` (see
/// [`prefetch_ahead`]).
///
/// # Safety
///
/// As [`sum_block`], with `positions` within `0 .. range.len()` and `data_bytes` the
/// table's bytes of codes per row.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn add_rows<
    S: QuantSimd,
    const BITS: u32,
    const NV: usize,
    I: Index,
    const WEIGHTED: bool,
    const PF: u8,
>(
    batch: &Batch<I>,
    bag: usize,
    range: &Range<usize>,
    positions: Range<usize>,
    weights: *const f32,
    (col, nv, tail): (usize, usize, usize),
    data_bytes: usize,
    pf: RowPrefetch,
    (acc, acc_tail): (&mut [S::V; NV], &mut S::V),
) -> Result<()> {
    // SAFETY: indices are read within `range` (or clamped to the last one for prefetch);
    // a row is read only after its index passed the bounds check, and only its codes of
    // columns `col..col + width` (whole vectors, then the bytes holding the tail's codes)
    // and its scale and bias; prefetches may name any address. The caller's contract
    // covers weights.
    unsafe {
        macro_rules! add {
            ($row:expr, $position:expr) => {
                add_row::<S, BITS, NV, WEIGHTED>(
                    acc,
                    acc_tail,
                    $row,
                    weights.wrapping_add($position),
                    col,
                    nv,
                    tail,
                    data_bytes,
                )
            };
        }
        let mut position = positions.start;
        while position + S::ROWS_PER_STEP <= positions.end {
            let i = range.start + position;
            for r in 0..S::ROWS_PER_STEP {
                add!(
                    bag_row::<I, PF>(batch, bag, position + r, i + r)?,
                    position + r
                );
            }
            prefetch_ahead::<I, PF>(batch, i, S::ROWS_PER_STEP, pf);
            position += S::ROWS_PER_STEP;
        }
        while position < positions.end {
            let i = range.start + position;
            add!(bag_row::<I, PF>(batch, bag, position, i)?, position);
            prefetch_ahead::<I, PF>(batch, i, 1, pf);
            position += 1;
        }
    }
    Ok(())
}

/// Stores the sums `acc` (columns `0 .. nv · LANES`) and `acc_tail` (`tail` more) of a
/// bag of `len` rows at `out` as `out_type`: back in element order, divided by the length
/// for Mean.
///
/// # Safety
///
/// The CPU runs `S`'s instructions; `out` holds the columns; `acc`'s vector groups were
/// summed from [`QuantSimd::load_code_group`]s from its start.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn store_sums<S: QuantSimd, const BITS: u32, const NV: usize>(
    pooling: Pooling,
    len: usize,
    acc: &mut [S::V; NV],
    mut acc_tail: S::V,
    nv: usize,
    tail: usize,
    out_type: u8,
    out: *mut u8,
) {
    // SAFETY: the caller's contract.
    unsafe {
        let g = S::code_group::<BITS>();
        for v in (0..nv - nv % g).step_by(g) {
            let mut group = [S::zero(); MAX_GROUP];
            for (j, x) in group.iter_mut().enumerate().take(g) {
                *x = acc[v + j];
            }
            let group = S::ungroup_codes::<BITS>(group);
            for (j, &x) in group.iter().enumerate().take(g) {
                acc[v + j] = x;
            }
        }
        if pooling == Pooling::Mean && len > 0 {
            let scale = S::splat(1.0 / len as f32);
            for a in acc.iter_mut().take(nv) {
                *a = S::mul(*a, scale);
            }
            acc_tail = S::mul(acc_tail, scale);
        }
        match out_type {
            OUT_F32 => store_block::<S, OUT_F32>(out, &acc[..nv], acc_tail, tail),
            OUT_F16 => store_block::<S, OUT_F16>(out, &acc[..nv], acc_tail, tail),
            _ => store_block::<S, OUT_BF16>(out, &acc[..nv], acc_tail, tail),
        }
    }
}

/// Adds columns `col .. col + nv · LANES + tail` of the row at `row` (codes, then its
/// scale and bias at `data_bytes`), weighted by `*weight` when `WEIGHTED`, to `acc` and
/// `acc_tail`: every lane does the reference's `fma(s, q, acc + b)`.
///
/// # Safety
///
/// As [`sum_block`], for a row whose index passed the bounds check; `weight` is readable
/// when `WEIGHTED`.
// Indexed loops over `acc`: as iterators (`iter_mut().enumerate().skip(..)`), the general
// kernels at dimension 100 ran 3.5% slower (Zen 3, Q4 and Q8, in L1).
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
#[inline(always)]
unsafe fn add_row<S: QuantSimd, const BITS: u32, const NV: usize, const WEIGHTED: bool>(
    acc: &mut [S::V; NV],
    acc_tail: &mut S::V,
    row: *const u8,
    weight: *const f32,
    col: usize,
    nv: usize,
    tail: usize,
    data_bytes: usize,
) {
    let vector_bytes = S::LANES * BITS as usize / 8;
    // SAFETY: the caller's contract: the row holds these codes and its scale and bias, and
    // `weights` (when `WEIGHTED`) the entry's weight.
    unsafe {
        let scale_bias = row.add(data_bytes);
        let (scale, bias) = if BITS == 8 {
            (
                scale_bias.cast::<f32>().read_unaligned(),
                scale_bias.add(4).cast::<f32>().read_unaligned(),
            )
        } else {
            S::widen_f16_pair(scale_bias)
        };
        let (scale, bias) = if WEIGHTED {
            let w = *weight;
            (w * scale, w * bias)
        } else {
            (scale, bias)
        };
        let (s, b) = (S::splat(scale), S::splat(bias));
        let codes = row.add(col * BITS as usize / 8);
        let g = S::code_group::<BITS>();
        let grouped = nv - nv % g;
        for v in (0..grouped).step_by(g) {
            let q = S::load_code_group::<BITS>(codes.add(v * vector_bytes));
            for (j, &q) in q.iter().enumerate().take(g) {
                acc[v + j] = S::fma(s, q, S::add(acc[v + j], b));
            }
        }
        for v in grouped..nv {
            let q = S::load_codes::<BITS>(codes.add(v * vector_bytes));
            acc[v] = S::fma(s, q, S::add(acc[v], b));
        }
        if tail > 0 {
            let q = S::load_codes_part::<BITS>(codes.add(nv * vector_bytes), tail);
            *acc_tail = S::fma(s, q, S::add(*acc_tail, b));
        }
    }
}

/// Checks every index of the bag `bag` (entries `range`) against the table's rows, before
/// any of its rows is read or anything of it stored: the error names the first index out
/// of range. One pass for the largest index as unsigned (a negative one wraps above every
/// row count), which the compiler vectorises, then the per-index search only on failure;
/// the prefetching row loops then form row pointers without a compare and an exit for
/// every row, whose error path also kept the bag and position in registers or on the
/// stack (see [`bag_row`] for the loops without prefetch).
///
/// # Safety
///
/// `range` lies within the indices.
#[inline(always)]
unsafe fn check_bag<I: Index>(batch: &Batch<I>, bag: usize, range: Range<usize>) -> Result<()> {
    // SAFETY: the caller's contract.
    let indices =
        unsafe { std::slice::from_raw_parts(batch.indices.wrapping_add(range.start), range.len()) };
    let largest = indices.iter().fold(0u64, |m, &i| m.max(i.widen() as u64));
    if largest >= batch.rows as u64 {
        for (position, &index) in indices.iter().enumerate() {
            checked_index(index.widen(), batch.rows, bag, position)?;
        }
    }
    Ok(())
}

/// The row of entry `i`, position `position` of bag `bag`: with `PF` [`PF_OFF`] after
/// checking its index here, else trusting [`check_bag`]'s check of the whole bag. Without
/// prefetch the table is in cache (or the caller chose so) and the loop is bound by its
/// instructions: a compare and a predicted branch per row cost less than a separate pass
/// per bag (in-L2 Q4 dimension-64 bags of 20, AVX-512: 0.065 of the in-cache read against
/// 0.062 with the pass; AVX2 0.038 against 0.035). Out of cache the pass wins: the row
/// loop without exits holds more rows' misses (bags of 100, dimension 128, AVX-512: Q8
/// 0.90 of the gather limit against 0.84 checking per row, Q4 0.90 against 0.88).
///
/// # Safety
///
/// `i` is within the indices, and with `PF` other than [`PF_OFF`] its index passed
/// [`check_bag`] (or, with [`PF_CHECKED`], the first pass of [`sum_passes`]).
#[inline(always)]
unsafe fn bag_row<I: Index, const PF: u8>(
    batch: &Batch<I>,
    bag: usize,
    position: usize,
    i: usize,
) -> Result<*const u8> {
    // SAFETY: the caller's contract: `i` is within the indices, and the row pointer is
    // formed only for an index that passed a bounds check, here or in `check_bag`.
    unsafe {
        let index = (*batch.indices.add(i)).widen();
        let index = if PF == PF_OFF {
            checked_index(index, batch.rows, bag, position)?
        } else {
            index as usize
        };
        Ok(batch.table.add(index * batch.row_bytes))
    }
}

/// The prefetch a bag loop issues, a constant parameter of the loop so that the choice is
/// made once per call: none (distance 0), the default hint (L2), or any hint, matched per
/// step.
const PF_OFF: u8 = 0;
/// See [`PF_OFF`].
const PF_L2: u8 = 1;
/// See [`PF_OFF`].
const PF_ANY: u8 = 2;
/// No prefetch, and the indices already checked: the later passes of [`sum_passes`].
const PF_CHECKED: u8 = 3;

/// `batch`'s prefetch as one of [`PF_OFF`], [`PF_L2`], [`PF_ANY`].
#[inline(always)]
fn prefetch_kind<I>(batch: &Batch<I>) -> u8 {
    match batch.prefetch {
        Prefetch { distance: 0, .. } => PF_OFF,
        Prefetch {
            hint: PrefetchHint::L2,
            ..
        } => PF_L2,
        _ => PF_ANY,
    }
}

/// Issues the prefetch `pf` for the rows of the `rows` entries `distance` after entry `i`
/// (the last entry near the end), as the prefetch kind `PF` says: nothing, the default
/// L2 hint as a constant, or a match on the hint, each arm prefetching with a constant
/// hint, so that the rows' prefetches are straight-line code.
///
/// Out of cache a bag is bound by misses in flight, and every instruction of the row loop
/// counts against that: the out-of-order window holds fewer rows, so fewer prefetches
/// wait behind a stalled one (a probe adding 32 `nop`s a row to the gather loop cost it
/// 5%). The loops therefore sum a few rows a step ([`QuantSimd::ROWS_PER_STEP`]) and
/// then prefetch as many, with one clamp, not a saturating add for every row; `rows` is a
/// constant once inlined, so the loop over them unrolls.
/// Bags of 100 over a 1 GiB table, dimension 128, AVX-512: Q8 0.82 of the random-gather
/// limit before two-row steps, 0.85 after; Q4 0.84, 0.86. With the hint a constant of
/// the loop and the bag's indices checked before it ([`check_bag`]), the Q8 loop has no
/// per-row compare and exit and, at two rows a step, no stack reloads.
///
/// # Safety
///
/// `i + rows` is at most the number of indices.
#[inline(always)]
unsafe fn prefetch_ahead<I: Index, const PF: u8>(
    batch: &Batch<I>,
    i: usize,
    rows: usize,
    pf: RowPrefetch,
) {
    // SAFETY: forwarded.
    unsafe {
        match PF {
            PF_OFF | PF_CHECKED => {}
            PF_L2 => prefetch_rows(batch, i, rows, pf, PrefetchHint::L2),
            _ => match batch.prefetch.hint {
                PrefetchHint::L1 => prefetch_rows(batch, i, rows, pf, PrefetchHint::L1),
                PrefetchHint::L2 => prefetch_rows(batch, i, rows, pf, PrefetchHint::L2),
                PrefetchHint::L3 => prefetch_rows(batch, i, rows, pf, PrefetchHint::L3),
                PrefetchHint::NonTemporal => {
                    prefetch_rows(batch, i, rows, pf, PrefetchHint::NonTemporal)
                }
            },
        }
    }
}

/// [`prefetch_ahead`] with the hint `hint`, a constant once inlined into its arm.
///
/// # Safety
///
/// `i + rows` is at most the number of indices.
#[inline(always)]
unsafe fn prefetch_rows<I: Index>(
    batch: &Batch<I>,
    i: usize,
    rows: usize,
    pf: RowPrefetch,
    hint: PrefetchHint,
) {
    // SAFETY: index reads end at the last index at most (the distance was clamped to the
    // batch, so the sum does not overflow); prefetches may name any address.
    unsafe {
        // One clamp for the step: near the end of the batch its last `rows` entries.
        let first = (i + batch.prefetch.distance).min(batch.num_indices - rows);
        for r in 0..rows {
            let ahead = (*batch.indices.add(first + r)).widen() as usize;
            let ahead_row = batch
                .table
                .wrapping_add(ahead.wrapping_mul(batch.row_bytes));
            prefetch_lines(
                ahead_row.wrapping_add(pf.from),
                pf.bytes,
                pf.last_line,
                hint,
            );
            if pf.scale_bias {
                prefetch(ahead_row.wrapping_add(batch.data_bytes), hint);
            }
        }
    }
}

/// Vectors that can also sum unweighted Q4 / Q2 rows by table lookup.
///
/// Without a weight, a row's `s · q` is exact in f32 (an f16 scale has 11 significant
/// bits, a code at most 4), so the reference's `fma(s, q, acc + b)` equals `(acc + b) +
/// s·q` with `s·q` looked up in a per-row table of the `2^BITS` products, one lane
/// permute instead of unpacking, shifting, masking and converting each code. The lookup
/// takes each lane's code from the low bits of its byte, so a vector of bytes yields the
/// codes at one position of every byte (phase); the accumulators hold the row in that
/// phase-major order and are interleaved back after the bag.
///
/// What it costs: a Q4 row of dimension 64 on AVX-512 is 21 vector uops that only ports 0
/// and 5 run (convert the f16 pair 2, split and scale it 3, widen 2, shift 2, look up 4,
/// and the reference's two adds on each of the 4 accumulators, 8), about 10.5 cycles,
/// where an f32 row of dimension 64 is 4 loads and 4 adds and waits on L2 instead. The
/// 8 adds alone (4 cycles) keep an in-L2 Q4 bag below 1.5x the f32 kernel's rows per
/// second whatever the unpacking costs.
///
/// Implementations are `#[inline(always)]`, and run only where the calling kernel may.
/// Only AVX-512 has one (its 16-lane `vpermps` holds a Q4 table), hence the `cfg`.
#[cfg(target_arch = "x86_64")]
pub(crate) trait LutSimd: QuantSimd {
    /// The row's `s · (lane mod 2^BITS)` table and its splatted bias, from the two
    /// little-endian binary16 values at `p` (4 bytes, unaligned) converted exactly.
    unsafe fn row_table<const BITS: u32>(p: *const u8) -> (Self::V, Self::V);
    /// The table entries of the codes in the `LANES` bytes at `p` (unaligned): vector `k <
    /// 8 / BITS` holds, in lane `l`, the product for the code at bit offset `k · BITS` of
    /// byte `l`.
    unsafe fn lookup<const BITS: u32>(p: *const u8, table: Self::V) -> [Self::V; 4];
    /// Lanes `0..LANES/2` (or `LANES/2..LANES` when `UPPER`) of `x` and `y`, alternating:
    /// `x[h], y[h], x[h + 1], y[h + 1], …`.
    unsafe fn interleave<const UPPER: bool>(x: Self::V, y: Self::V) -> Self::V;
}

/// Whether a bag call can sum its rows by [`LutSimd`] lookups: Q4 or Q2 codes at a
/// specialised dimension of whole code vectors (`NV` a multiple of `8 / BITS`), and no
/// weights: an f16 scale times a code of at most 4 bits is exact in f32, so adding the
/// table entry `s · q` rounds once, as the reference's `s.mul_add(q, acc + b)` does; a
/// weighted scale `w · s` has a full f32 mantissa and its products would round.
#[cfg(target_arch = "x86_64")]
pub(crate) fn lut_applies<const BITS: u32, const NV: usize>(bags: &Bags<'_>) -> bool {
    BITS != 8
        && NV != 0
        && NV.is_multiple_of(8 / BITS as usize)
        && matches!(bags.weights(), Weights::None)
}

/// Like [`embedding_bag`], but unweighted Q4 / Q2 bags at a specialised dimension that is
/// a whole number of code vectors (`LANES` bytes) go through [`LutSimd`]'s lookups.
///
/// # Safety
///
/// As [`embedding_bag`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn embedding_bag_lut<S: LutSimd, const BITS: u32, const NV: usize>(
    table: &Table<'_>,
    bags: &Bags<'_>,
    pooling: Pooling,
    out: &mut Output<'_>,
    out_stride: usize,
    prefetch: Prefetch,
) -> Result<()> {
    if !lut_applies::<BITS, NV>(bags) {
        // SAFETY: this function's contract.
        return unsafe {
            embedding_bag::<S, BITS, NV>(table, bags, pooling, out, out_stride, prefetch)
        };
    }
    let (out_type, o) = out_parts(out);
    let (t, pf, st, pl) = (table, prefetch, out_stride, pooling);
    // SAFETY: forwarded from this function's contract; `Batch` describes the same table,
    // indices and output.
    unsafe {
        match bags.indices() {
            IndexSlice::I32(ix) => {
                run_lut::<S, BITS, NV, i32>(&batch::<BITS, _>(t, ix, pf, o, st, pl), bags, out_type)
            }
            IndexSlice::I64(ix) => {
                run_lut::<S, BITS, NV, i64>(&batch::<BITS, _>(t, ix, pf, o, st, pl), bags, out_type)
            }
        }
    }
}

/// The bag loop of [`embedding_bag_lut`] for one index width.
///
/// # Safety
///
/// As [`embedding_bag_lut`], for an unweighted call with `NV` a multiple of `8 / BITS`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn run_lut<S: LutSimd, const BITS: u32, const NV: usize, I: Index>(
    batch: &Batch<I>,
    bags: &Bags<'_>,
    out_type: u8,
) -> Result<()> {
    // SAFETY: forwarded.
    unsafe {
        match prefetch_kind(batch) {
            PF_OFF => run_lut_bags::<S, BITS, NV, I, PF_OFF>(batch, bags, out_type),
            PF_L2 => run_lut_bags::<S, BITS, NV, I, PF_L2>(batch, bags, out_type),
            _ => run_lut_bags::<S, BITS, NV, I, PF_ANY>(batch, bags, out_type),
        }
    }
}

/// [`run_lut`] with the prefetch kind `PF` ([`prefetch_kind`]) a constant.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn run_lut_bags<S: LutSimd, const BITS: u32, const NV: usize, I: Index, const PF: u8>(
    batch: &Batch<I>,
    bags: &Bags<'_>,
    out_type: u8,
) -> Result<()> {
    for (bag, range) in bags.ranges().enumerate() {
        let out = batch
            .out
            .wrapping_add(bag * batch.out_stride * elem_bytes(out_type));
        let len = range.len();
        // SAFETY: the ranges come from validated bags, so they lie within the indices; a
        // row is read only after the bag's indices passed the bounds check, and only its
        // `NV · LANES · BITS / 8` code bytes and the scale and bias after them; the output
        // row holds `dim = NV · LANES` elements (check_output).
        unsafe {
            if PF != PF_OFF {
                check_bag(batch, bag, range.clone())?;
            }
            let mut acc = [S::zero(); NV];
            let pf = RowPrefetch::new(batch, 0, row_bytes::<BITS>(NV * S::LANES), false);
            // `ROWS_PER_STEP` rows a step, then their prefetches (see `prefetch_ahead`).
            let mut position = 0;
            while position + S::ROWS_PER_STEP <= len {
                let i = range.start + position;
                for r in 0..S::ROWS_PER_STEP {
                    let row = bag_row::<I, PF>(batch, bag, position + r, i + r)?;
                    lut_add_row::<S, BITS, NV>(&mut acc, row, batch.data_bytes);
                }
                prefetch_ahead::<I, PF>(batch, i, S::ROWS_PER_STEP, pf);
                position += S::ROWS_PER_STEP;
            }
            while position < len {
                let i = range.start + position;
                let row = bag_row::<I, PF>(batch, bag, position, i)?;
                lut_add_row::<S, BITS, NV>(&mut acc, row, batch.data_bytes);
                prefetch_ahead::<I, PF>(batch, i, 1, pf);
                position += 1;
            }
            let mut sums = lut_element_order::<S, BITS, NV>(&acc);
            if batch.pooling == Pooling::Mean && len > 0 {
                let scale = S::splat(1.0 / len as f32);
                for a in sums.iter_mut() {
                    *a = S::mul(*a, scale);
                }
            }
            match out_type {
                OUT_F32 => store_block::<S, OUT_F32>(out, &sums, S::zero(), 0),
                OUT_F16 => store_block::<S, OUT_F16>(out, &sums, S::zero(), 0),
                _ => store_block::<S, OUT_BF16>(out, &sums, S::zero(), 0),
            }
        }
    }
    Ok(())
}

/// Adds the unweighted row at `row` (codes, then its f16 scale and bias at `data_bytes`) to
/// the `NV · LANES` accumulators `acc`, which hold the row in [`LutSimd`]'s phase-major
/// order: every lane does the reference's `(acc + b) + s·q`, the product looked up.
///
/// # Safety
///
/// The CPU runs `S`'s instructions; `NV` is a multiple of `8 / BITS`; `row` holds `NV ·
/// LANES · BITS / 8` code bytes and the scale and bias after them at `data_bytes`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn lut_add_row<S: LutSimd, const BITS: u32, const NV: usize>(
    acc: &mut [S::V; NV],
    row: *const u8,
    data_bytes: usize,
) {
    let phases = 8 / BITS as usize;
    // SAFETY: the caller provides the code bytes and the scale and bias read here.
    unsafe {
        let (table, bias) = S::row_table::<BITS>(row.add(data_bytes));
        for (g, group) in acc.chunks_exact_mut(phases).enumerate() {
            let products = S::lookup::<BITS>(row.add(g * S::LANES), table);
            for (a, p) in group.iter_mut().zip(products) {
                *a = S::add(S::add(*a, bias), p);
            }
        }
    }
}

/// The accumulators `acc` that [`lut_add_row`] summed into, back in element order: phase
/// `k` of code vector `g` holds elements `g · LANES · phases + l · phases + k`.
///
/// # Safety
///
/// The CPU runs `S`'s instructions; `NV` is a multiple of `8 / BITS`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn lut_element_order<S: LutSimd, const BITS: u32, const NV: usize>(
    acc: &[S::V; NV],
) -> [S::V; NV] {
    let phases = 8 / BITS as usize;
    // SAFETY: only lane operations, which the caller's CPU runs.
    unsafe {
        let mut sums = [S::zero(); NV];
        for (group, sums) in acc.chunks_exact(phases).zip(sums.chunks_exact_mut(phases)) {
            if BITS == 4 {
                sums[0] = S::interleave::<false>(group[0], group[1]);
                sums[1] = S::interleave::<true>(group[0], group[1]);
            } else {
                let (lo02, hi02) = (
                    S::interleave::<false>(group[0], group[2]),
                    S::interleave::<true>(group[0], group[2]),
                );
                let (lo13, hi13) = (
                    S::interleave::<false>(group[1], group[3]),
                    S::interleave::<true>(group[1], group[3]),
                );
                sums[0] = S::interleave::<false>(lo02, lo13);
                sums[1] = S::interleave::<true>(lo02, lo13);
                sums[2] = S::interleave::<false>(hi02, hi13);
                sums[3] = S::interleave::<true>(hi02, hi13);
            }
        }
        sums
    }
}

/// Defines `kernel(format, spec)`, the const table from a registry key to one of this
/// instruction set's monomorphized quantized-row kernels, for the specialised dimensions
/// listed (each a multiple of `lanes`).
macro_rules! quant_kernel_table {
    ($kernel:ident, lanes = $lanes:literal, dims = [$($dim:literal),*]) => {
        /// This instruction set's kernel for quantized rows of `format` and dimensions
        /// `spec`. Panics (at compile time, in the registry) for a key it has no kernel for.
        pub(crate) const fn kernel(
            format: crate::format::Format,
            spec: crate::registry::Spec,
        ) -> crate::registry::EmbeddingBagFn {
            use crate::format::Format;
            use crate::registry::{EmbeddingBagFn, Spec};
            const fn by_dim<const BITS: u32>(spec: Spec) -> EmbeddingBagFn {
                match spec {
                    Spec::Any => $kernel::<BITS, 0>,
                    $(Spec::Dim($dim) => $kernel::<BITS, { $dim / $lanes }>,)*
                    Spec::Dim(_) => panic!("no kernel specialised for this dimension"),
                }
            }
            match format {
                Format::Q8 => by_dim::<8>(spec),
                Format::Q4 => by_dim::<4>(spec),
                Format::Q2 => by_dim::<2>(spec),
                _ => panic!("quantized-row kernels only"),
            }
        }
    };
}
pub(crate) use quant_kernel_table;
