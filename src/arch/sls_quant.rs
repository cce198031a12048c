//! The embedding-bag loop over row-wise quantized rows (Q8, Q4, Q2) that every `sls_q_*`
//! kernel instantiates with its own vector type.
//!
//! It extends the float loop's [`Simd`] vector with [`QuantSimd`], which turns packed codes
//! into f32 lanes, and reuses that loop's index widths and output stores; rows are
//! prefetched by `prefetch_bytes`, whose trip count does not depend on a row's alignment.
//! No intrinsics here.
//!
//! The arithmetic is the reference's (`crate::reference::embedding_bag`) by construction:
//! for each entry the row's scale and bias are multiplied by the weight in scalar f32
//! (`s = w · scale`, `b = w · bias`, skipped when unweighted since `1 · x == x`), then every
//! lane does `acc = fma(s, q, acc + b)`: the bias added first, one rounding, then one fused
//! multiply-add. Vectors run across the dimension, never across a bag; Mean multiplies by
//! the f32 reciprocal of the length after the bag.

use std::ops::Range;

use crate::arch::prefetch::prefetch;
use crate::arch::sls::{Index, OUT_BF16, OUT_F16, OUT_F32, Simd, elem_bytes, store_block};
use crate::embedding::plan::Prefetch;
use crate::embedding::plan::PrefetchHint;
use crate::embedding::{Bags, IndexSlice, Output, Pooling, Weights};
use crate::error::{Error, Result};
use crate::format::Table;

/// Vectors of the general (any dimension) path: dimensions are done in column blocks of
/// this many vectors, each block summing the whole bag.
const BLOCK: usize = 8;

/// Bytes holding `elems` codes of `BITS` bits (the last one possibly partial).
#[inline(always)]
const fn code_bytes<const BITS: u32>(elems: usize) -> usize {
    (elems * BITS as usize).div_ceil(8)
}

/// A [`Simd`] vector that can also unpack quantized codes.
///
/// Implementations are `#[inline(always)]`, and run only where the kernel calling
/// [`embedding_bag`] may.
pub(crate) trait QuantSimd: Simd {
    /// `LANES` codes of `BITS` bits (8, 4 or 2) packed at `p` as the quantized formats
    /// pack them (element `e` in byte `e · BITS / 8`, lowest bits first), each converted
    /// exactly to f32. Reads exactly `LANES · BITS / 8` bytes.
    unsafe fn load_codes<const BITS: u32>(p: *const u8) -> Self::V;

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
    let (out_type, out_ptr) = match out {
        Output::F32(s) => (OUT_F32, s.as_mut_ptr().cast::<u8>()),
        Output::F16(s) => (OUT_F16, s.as_mut_ptr().cast::<u8>()),
        Output::Bf16(s) => (OUT_BF16, s.as_mut_ptr().cast::<u8>()),
    };
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
            prefetch,
            out,
            out_stride,
            pooling,
        }
    }
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
    for (bag, range) in bags.ranges().enumerate() {
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
            if NV > 0 {
                sum_block::<S, BITS, NV, I, WEIGHTED>(
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
            } else {
                // At least one block, so that a zero-dimension table still checks indices.
                let mut col = 0;
                loop {
                    let width = (batch.dim - col).min(BLOCK * S::LANES);
                    sum_block::<S, BITS, BLOCK, I, WEIGHTED>(
                        batch,
                        bag,
                        range.clone(),
                        bag_weights,
                        col,
                        width / S::LANES,
                        width % S::LANES,
                        out_type,
                        out_row.wrapping_add(col * elem_bytes(out_type)),
                    )?;
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
/// Every index of the bag is checked before its row is read, and before anything is
/// stored.
///
/// # Safety
///
/// `range` lies within the indices; `weights` (when `WEIGHTED`) holds `range.len()`
/// weights; `nv ≤ NV`; the columns lie within the dimension and `col` is a multiple of
/// the codes per byte; `out` holds the columns.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn sum_block<
    S: QuantSimd,
    const BITS: u32,
    const NV: usize,
    I: Index,
    const WEIGHTED: bool,
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
    let vector_bytes = S::LANES * BITS as usize / 8;
    let col_bytes = col * BITS as usize / 8;
    let width = nv * S::LANES + tail;
    let block_bytes = code_bytes::<BITS>(width);
    // The first block fetches the scale and bias with its codes (whole row when it is
    // the only block); later blocks find them in cache and fetch only their codes.
    let (pf_from, pf_bytes, pf_scale_bias) = if col == 0 {
        if width == batch.dim {
            (0, batch.row_bytes, false)
        } else {
            (0, block_bytes, true)
        }
    } else {
        (col_bytes, block_bytes, false)
    };
    let len = range.len();
    // SAFETY: indices are read within `range` (or clamped to the last one for prefetch);
    // a row is read only after its index passed the bounds check, and only its codes of
    // columns `col..col + width` (whole vectors, then the bytes holding the tail's codes)
    // and its scale and bias; prefetches may name any address. The caller's contract
    // covers weights and `out`.
    unsafe {
        let mut acc = [S::zero(); NV];
        let mut acc_tail = S::zero();
        for (position, i) in range.enumerate() {
            let index = (*batch.indices.add(i)).widen();
            if index as u64 >= batch.rows as u64 {
                return Err(Error::IndexOutOfRange {
                    bag,
                    position,
                    index,
                    rows: batch.rows,
                });
            }
            if batch.prefetch.distance > 0 {
                let ahead = i
                    .saturating_add(batch.prefetch.distance)
                    .min(batch.num_indices - 1);
                let ahead = (*batch.indices.add(ahead)).widen() as usize;
                let ahead_row = batch
                    .table
                    .wrapping_add(ahead.wrapping_mul(batch.row_bytes));
                prefetch_bytes(
                    ahead_row.wrapping_add(pf_from),
                    pf_bytes,
                    batch.prefetch.hint,
                );
                if pf_scale_bias {
                    prefetch(
                        ahead_row.wrapping_add(batch.data_bytes),
                        batch.prefetch.hint,
                    );
                }
            }
            let row = batch.table.add(index as usize * batch.row_bytes);
            let scale_bias = row.add(batch.data_bytes);
            let (scale, bias) = if BITS == 8 {
                (
                    scale_bias.cast::<f32>().read_unaligned(),
                    scale_bias.add(4).cast::<f32>().read_unaligned(),
                )
            } else {
                S::widen_f16_pair(scale_bias)
            };
            let (scale, bias) = if WEIGHTED {
                let w = *weights.add(position);
                (w * scale, w * bias)
            } else {
                (scale, bias)
            };
            let (s, b) = (S::splat(scale), S::splat(bias));
            let codes = row.add(col_bytes);
            for (v, a) in acc.iter_mut().enumerate().take(nv) {
                let q = S::load_codes::<BITS>(codes.add(v * vector_bytes));
                *a = S::fma(s, q, S::add(*a, b));
            }
            if tail > 0 {
                let q = S::load_codes_part::<BITS>(codes.add(nv * vector_bytes), tail);
                acc_tail = S::fma(s, q, S::add(acc_tail, b));
            }
        }
        if batch.pooling == Pooling::Mean && len > 0 {
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
    Ok(())
}

/// Prefetches every cache line holding one of the `bytes > 0` bytes from `p`: one line
/// every 64 bytes from `p`, then the line of the last byte (again, when `p` was at the start
/// of a line). Quantized rows are rarely line-aligned (a Q4 row of dimension 64 is 36
/// bytes), so the number of lines a row touches varies from row to row; a loop over exactly
/// those lines mispredicts its exit about once a row, which measured slower than this
/// loop of constant trip count plus one possibly redundant prefetch.
#[inline(always)]
fn prefetch_bytes(p: *const u8, bytes: usize, hint: PrefetchHint) {
    const LINE: usize = 64;
    let mut offset = 0;
    while offset < bytes {
        prefetch(p.wrapping_add(offset), hint);
        offset += LINE;
    }
    prefetch(p.wrapping_add(bytes.saturating_sub(1)), hint);
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
