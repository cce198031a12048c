//! The embedding-bag loop that every `sls_*` kernel instantiates with its own vector type.
//!
//! No intrinsics here: each instruction set implements [`Simd`] with `#[inline(always)]`
//! methods, and its `#[target_feature]` entry point calls [`embedding_bag`], so the whole
//! loop is compiled for that instruction set.
//!
//! The arithmetic is the reference's (`crate::reference::embedding_bag`) by construction:
//! vectors run across the embedding dimension, never across a bag, so every output element
//! still sees `acc + x` (unweighted) or `fma(w, x, acc)` (weighted) in index order from +0.0,
//! then one multiply by the f32 reciprocal of the length for Mean.

use std::ops::Range;

use crate::arch::prefetch::prefetch;
use crate::embedding::plan::{Prefetch, PrefetchHint};
use crate::embedding::{Bags, IndexSlice, Output, Pooling, Weights};
use crate::error::{Error, Result};
use crate::format::Table;

/// Row element formats, as const parameters: f32.
pub(crate) const ROW_F32: u8 = 0;
/// IEEE binary16 rows.
pub(crate) const ROW_F16: u8 = 1;
/// bfloat16 rows.
pub(crate) const ROW_BF16: u8 = 2;

/// Output element types, as const parameters (same numbering as the row formats).
pub(crate) const OUT_F32: u8 = ROW_F32;
pub(crate) const OUT_F16: u8 = ROW_F16;
pub(crate) const OUT_BF16: u8 = ROW_BF16;

/// Tables of at most this many bytes are not prefetched, whatever the plan says: they stay
/// in the L2 of current server cores (1–2 MiB), where a prefetch only adds instructions.
/// Measured on the development machine (AVX-512, f32 rows of 64, bags of 20 over a
/// 512 KiB table): 58 GB/s without prefetch, 34 GB/s with the default one.
pub(crate) const PREFETCH_MIN_TABLE_BYTES: usize = 1 << 20;

/// Vectors of the general (any dimension) path: dimensions are done in column blocks of
/// this many vectors, each block summing the whole bag.
const BLOCK: usize = 8;

/// Bytes of one element of row format or output type `FMT`.
pub(crate) const fn elem_bytes(fmt: u8) -> usize {
    if fmt == ROW_F32 { 4 } else { 2 }
}

/// One instruction set's f32 vector and the few operations the loop needs.
///
/// Implementations are `#[inline(always)]` so they compile into the `#[target_feature]`
/// kernel that calls [`embedding_bag`]; every method may only run where that kernel may.
pub(crate) trait Simd {
    /// f32 lanes per vector.
    const LANES: usize;
    /// The vector of `LANES` f32.
    type V: Copy;

    /// All lanes +0.0.
    unsafe fn zero() -> Self::V;
    /// All lanes `x`.
    unsafe fn splat(x: f32) -> Self::V;
    /// `acc + x`, one rounding.
    unsafe fn add(acc: Self::V, x: Self::V) -> Self::V;
    /// `w · x + acc`, one rounding.
    unsafe fn fma(w: Self::V, x: Self::V, acc: Self::V) -> Self::V;
    /// `a · b`.
    unsafe fn mul(a: Self::V, b: Self::V) -> Self::V;
    /// `LANES` elements of row format `FMT` at `p` (unaligned), converted exactly to f32.
    unsafe fn load<const FMT: u8>(p: *const u8) -> Self::V;
    /// `LANES` f32 stored at `p` (unaligned) as output type `OUT`, rounding to nearest
    /// even, NaN kept NaN.
    unsafe fn store<const OUT: u8>(p: *mut u8, v: Self::V);

    /// `2 · LANES` elements of format `FMT` at `p` as two vectors whose lanes may hold the
    /// elements in an order of the implementation's choosing (the same for every row), which
    /// [`Simd::unpair`] puts back. Lane-wise sums do not depend on where an element sits,
    /// so a cheaper widening that permutes lanes (bf16 on AVX-512) keeps the reference's
    /// bits. By default, two [`Simd::load`]s in element order.
    #[inline(always)]
    unsafe fn load_pair<const FMT: u8>(p: *const u8) -> (Self::V, Self::V) {
        // SAFETY: the caller provides `2 · LANES` readable elements at `p`.
        unsafe {
            (
                Self::load::<FMT>(p),
                Self::load::<FMT>(p.add(Self::LANES * elem_bytes(FMT))),
            )
        }
    }

    /// Two vectors accumulated from [`Simd::load_pair`]s, back in element order.
    #[inline(always)]
    unsafe fn unpair<const FMT: u8>(a: Self::V, b: Self::V) -> (Self::V, Self::V) {
        (a, b)
    }

    /// The first `n < LANES` elements at `p`, the other lanes zero; reads only those `n`.
    #[inline(always)]
    unsafe fn load_part<const FMT: u8>(p: *const u8, n: usize) -> Self::V {
        let mut buf = [0u8; 64];
        // SAFETY: the caller provides `n` readable elements at `p`; `n · size < 64`
        // because no vector holds more than 16 f32.
        unsafe {
            std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n * elem_bytes(FMT));
            Self::load::<FMT>(buf.as_ptr())
        }
    }

    /// Stores the first `n < LANES` lanes of `v` at `p` as `OUT`; writes only those `n`.
    #[inline(always)]
    unsafe fn store_part<const OUT: u8>(p: *mut u8, v: Self::V, n: usize) {
        let mut buf = [0u8; 64];
        // SAFETY: `buf` holds a whole vector of any output type; the caller provides `n`
        // writable elements at `p`.
        unsafe {
            Self::store::<OUT>(buf.as_mut_ptr(), v);
            std::ptr::copy_nonoverlapping(buf.as_ptr(), p, n * elem_bytes(OUT));
        }
    }
}

/// An index width.
pub(crate) trait Index: Copy {
    fn widen(self) -> i64;
}

impl Index for i32 {
    #[inline(always)]
    fn widen(self) -> i64 {
        i64::from(self)
    }
}

impl Index for i64 {
    #[inline(always)]
    fn widen(self) -> i64 {
        self
    }
}

/// `index`, entry `position` of bag `bag`, as a row of a table of `rows` rows, or the error
/// naming it. One unsigned compare rejects negative indices too. The one check every bag
/// loop makes before it forms a row pointer.
#[inline(always)]
pub(crate) fn checked_index(index: i64, rows: usize, bag: usize, position: usize) -> Result<usize> {
    if index as u64 >= rows as u64 {
        return Err(Error::IndexOutOfRange {
            bag,
            position,
            index,
            rows,
        });
    }
    Ok(index as usize)
}

/// What stays fixed over one call.
struct Batch<I> {
    table: *const u8,
    rows: usize,
    row_bytes: usize,
    dim: usize,
    indices: *const I,
    num_indices: usize,
    prefetch: Prefetch,
    out: *mut u8,
    out_stride: usize,
    pooling: Pooling,
}

/// The output's element type (`OUT_*`) and its first byte.
pub(crate) fn out_parts(out: &mut Output<'_>) -> (u8, *mut u8) {
    match out {
        Output::F32(s) => (OUT_F32, s.as_mut_ptr().cast::<u8>()),
        Output::F16(s) => (OUT_F16, s.as_mut_ptr().cast::<u8>()),
        Output::Bf16(s) => (OUT_BF16, s.as_mut_ptr().cast::<u8>()),
    }
}

/// Runs every bag of `bags` over `table` into `out` with vector type `S`, rows of format
/// `FMT`. `NV > 0`: the dimension is `NV · S::LANES` and a bag's accumulators are `NV`
/// vectors the compiler keeps in registers; `NV == 0`: any dimension, in column blocks.
///
/// # Safety
///
/// The CPU runs `S`'s instructions; `table` rows are in format `FMT` (and `table.dim() ==
/// NV · S::LANES` when `NV > 0`); `bags` and `out` passed their constructors' checks and
/// `embedding::check_output` for this table and `out_stride`.
#[inline(always)]
pub(crate) unsafe fn embedding_bag<S: Simd, const FMT: u8, const NV: usize>(
    table: &Table<'_>,
    bags: &Bags<'_>,
    pooling: Pooling,
    out: &mut Output<'_>,
    out_stride: usize,
    prefetch: Prefetch,
) -> Result<()> {
    let (out_type, out_ptr) = out_parts(out);
    fn batch<I>(
        t: &Table<'_>,
        ix: &[I],
        pf: Prefetch,
        out: *mut u8,
        stride: usize,
        pooling: Pooling,
    ) -> Batch<I> {
        Batch {
            table: t.bytes().as_ptr(),
            rows: t.rows(),
            row_bytes: t.row_bytes(),
            dim: t.dim(),
            indices: ix.as_ptr(),
            num_indices: ix.len(),
            prefetch: pf,
            out,
            out_stride: stride,
            pooling,
        }
    }
    let weights = match bags.weights() {
        Weights::None => None,
        Weights::PerIndex(w) => Some((w.as_ptr(), true)),
        Weights::Positional(w) => Some((w.as_ptr(), false)),
    };
    let prefetch = if table.bytes().len() <= PREFETCH_MIN_TABLE_BYTES {
        Prefetch::OFF
    } else {
        prefetch
    };
    let (t, pf, o, st, pl) = (table, prefetch, out_ptr, out_stride, pooling);
    // SAFETY: forwarded from this function's contract; `Batch` describes the same table,
    // indices and output.
    unsafe {
        match (bags.indices(), weights) {
            (IndexSlice::I32(ix), None) => {
                run::<S, FMT, NV, i32, false>(&batch(t, ix, pf, o, st, pl), bags, out_type, None)
            }
            (IndexSlice::I32(ix), w) => {
                run::<S, FMT, NV, i32, true>(&batch(t, ix, pf, o, st, pl), bags, out_type, w)
            }
            (IndexSlice::I64(ix), None) => {
                run::<S, FMT, NV, i64, false>(&batch(t, ix, pf, o, st, pl), bags, out_type, None)
            }
            (IndexSlice::I64(ix), w) => {
                run::<S, FMT, NV, i64, true>(&batch(t, ix, pf, o, st, pl), bags, out_type, w)
            }
        }
    }
}

/// The bag loop for one index width and weighting; `weights` is the weight array and
/// whether it is per index (else positional).
#[inline(always)]
unsafe fn run<S: Simd, const FMT: u8, const NV: usize, I: Index, const WEIGHTED: bool>(
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
        // (check_output); blocks stay within `0..dim`.
        unsafe {
            if NV > 0 {
                sum_block::<S, FMT, NV, I, WEIGHTED>(
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
                // A macro, not a closure: a closure would not inherit the caller's target
                // features, and the kernel would call its intrinsics out of line.
                macro_rules! block {
                    ($col:expr, $nv:expr, $tail:expr) => {
                        sum_block::<S, FMT, BLOCK, I, WEIGHTED>(
                            batch,
                            bag,
                            range.clone(),
                            bag_weights,
                            $col,
                            $nv,
                            $tail,
                            out_type,
                            out_row.wrapping_add($col * elem_bytes(out_type)),
                        )
                    };
                }
                // At least one block, so that a zero-dimension table still checks indices.
                let mut col = 0;
                loop {
                    let width = (batch.dim - col).min(BLOCK * S::LANES);
                    if width == BLOCK * S::LANES {
                        // Constant trip counts: the block's accumulators stay in registers
                        // (with a run-time count they live in memory, stored every row).
                        block!(col, BLOCK, 0)?;
                    } else {
                        block!(col, width / S::LANES, width % S::LANES)?;
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
/// Every index of the bag is checked before anything is stored.
///
/// # Safety
///
/// `range` lies within the indices; `weights` (when `WEIGHTED`) holds `range.len()`
/// weights; `nv ≤ NV`; the columns lie within the dimension; `out` holds them.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn sum_block<S: Simd, const FMT: u8, const NV: usize, I: Index, const WEIGHTED: bool>(
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
    let esize = elem_bytes(FMT);
    let col_bytes = col * esize;
    let block_bytes = (nv * S::LANES + tail) * esize;
    let len = range.len();
    // SAFETY: indices are read within `range` (or clamped to the last one for prefetch);
    // a row is read only after its index passed the bounds check, and only its columns
    // `col..col + width`; prefetches may name any address. The caller's contract covers
    // weights and `out`.
    unsafe {
        let mut acc = [S::zero(); NV];
        let mut acc_tail = S::zero();
        for (position, i) in range.enumerate() {
            let index = checked_index((*batch.indices.add(i)).widen(), batch.rows, bag, position)?;
            if batch.prefetch.distance > 0 {
                let ahead = i
                    .saturating_add(batch.prefetch.distance)
                    .min(batch.num_indices - 1);
                let ahead = (*batch.indices.add(ahead)).widen() as usize;
                prefetch_span(
                    batch
                        .table
                        .wrapping_add(ahead.wrapping_mul(batch.row_bytes))
                        .wrapping_add(col_bytes),
                    block_bytes,
                    batch.prefetch.hint,
                );
            }
            let row = batch.table.add(index * batch.row_bytes + col_bytes);
            let w = if WEIGHTED {
                S::splat(*weights.add(position))
            } else {
                S::zero()
            };
            let step = |acc: S::V, x: S::V| {
                if WEIGHTED {
                    S::fma(w, x, acc)
                } else {
                    S::add(acc, x)
                }
            };
            let vector = |v: usize| row.add(v * S::LANES * esize);
            for v in (0..nv - nv % 2).step_by(2) {
                let (x0, x1) = S::load_pair::<FMT>(vector(v));
                acc[v] = step(acc[v], x0);
                acc[v + 1] = step(acc[v + 1], x1);
            }
            if nv % 2 == 1 {
                acc[nv - 1] = step(acc[nv - 1], S::load::<FMT>(vector(nv - 1)));
            }
            if tail > 0 {
                let x = S::load_part::<FMT>(row.add(nv * S::LANES * esize), tail);
                acc_tail = step(acc_tail, x);
            }
        }
        for v in (0..nv - nv % 2).step_by(2) {
            (acc[v], acc[v + 1]) = S::unpair::<FMT>(acc[v], acc[v + 1]);
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

/// Prefetches every cache line of `bytes` bytes from `p` (at least one line).
#[inline(always)]
pub(crate) fn prefetch_span(p: *const u8, bytes: usize, hint: PrefetchHint) {
    const LINE: usize = 64;
    let lead = p as usize % LINE;
    let mut line = p.wrapping_sub(lead);
    for _ in 0..(lead + bytes.max(1)).div_ceil(LINE) {
        prefetch(line, hint);
        line = line.wrapping_add(LINE);
    }
}

/// Stores full vectors `acc` then `tail` lanes of `acc_tail`, as output type `OUT`.
#[inline(always)]
pub(crate) unsafe fn store_block<S: Simd, const OUT: u8>(
    out: *mut u8,
    acc: &[S::V],
    acc_tail: S::V,
    tail: usize,
) {
    let step = S::LANES * elem_bytes(OUT);
    // SAFETY: the caller provides `acc.len() · LANES + tail` writable elements at `out`.
    unsafe {
        for (v, &a) in acc.iter().enumerate() {
            S::store::<OUT>(out.add(v * step), a);
        }
        if tail > 0 {
            S::store_part::<OUT>(out.add(acc.len() * step), acc_tail, tail);
        }
    }
}

/// Defines `kernel(format, spec)`, the const table from a registry key to one of this
/// instruction set's monomorphized kernels, for the specialised dimensions listed (each a
/// multiple of `lanes`).
macro_rules! kernel_table {
    ($kernel:ident, lanes = $lanes:literal, dims = [$($dim:literal),*]) => {
        /// This instruction set's kernel for rows of `format` and dimensions `spec`.
        /// Panics (at compile time, in the registry) for a key it has no kernel for.
        pub(crate) const fn kernel(
            format: crate::format::Format,
            spec: crate::registry::Spec,
        ) -> crate::registry::EmbeddingBagFn {
            use crate::arch::sls::{ROW_BF16, ROW_F16, ROW_F32};
            use crate::format::Format;
            use crate::registry::{EmbeddingBagFn, Spec};
            const fn by_dim<const FMT: u8>(spec: Spec) -> EmbeddingBagFn {
                match spec {
                    Spec::Any => $kernel::<FMT, 0>,
                    $(Spec::Dim($dim) => $kernel::<FMT, { $dim / $lanes }>,)*
                    Spec::Dim(_) => panic!("no kernel specialised for this dimension"),
                }
            }
            match format {
                Format::F32 => by_dim::<ROW_F32>(spec),
                Format::F16 => by_dim::<ROW_F16>(spec),
                Format::Bf16 => by_dim::<ROW_BF16>(spec),
                _ => panic!("float-row kernels only"),
            }
        }
    };
}
pub(crate) use kernel_table;
