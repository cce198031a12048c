//! The embedding-bag loop over outlier-aware tables (a quantized dense part plus sparse
//! exact residuals) that every `sls_outlier_*` kernel instantiates with its own vector
//! type.
//!
//! The dense part runs the quantized kernels' inner step unchanged, through the same
//! [`QuantSimd`] code loads: `acc = fma(w · scale, q, acc + w · bias)` in registers. The
//! outliers go to a separate f32 row in memory, one scalar add (or fused multiply-add when
//! weighted) per outlier, and that row is added to the registers once per bag: the order
//! `crate::reference::embedding_bag_outlier` defines. Adding scattered columns straight
//! into the vector accumulators would need a spill per row.
//!
//! Where a level has [`LutSimd`] (AVX-512), unweighted Q4 / Q2 bags at the specialised
//! dimensions sum their dense rows by lookup as the plain kernel does, which gives the same
//! bits: out of cache both kernels wait on the same number of lines a row, so what sets
//! their ratio is the instructions a row, which bound how many rows ahead the core runs.
//! With 4 outliers per Q4 row of 128 that raised the kernel from 0.69× to about 0.8× the
//! plain one's speed; issuing the record's prefetch as its two end lines, and the first
//! four outliers without a loop, to about 0.82×.
//!
//! Kernels read the table's records, not its CSR arrays: a row's dense bytes, its outlier
//! count and its entries (column, residual) in one record at a fixed stride, so the entry
//! `distance` ahead is prefetched as one contiguous span, and summing a row touches no
//! line but its record's. Out of cache a bag is bound by random lines: from the CSR arrays
//! a row cost its dense lines plus one for its columns, one for its residuals (and one
//! for its offsets, read before the others' addresses were known), and the kernel ran at
//! 0.42× the plain Q4 kernel's speed with 4 outliers per Q4 row of 128 (AVX-512), where a
//! 96-byte record takes the plain row's two lines. No intrinsics here.

use std::ops::Range;

use crate::arch::prefetch::{last_line_needed, prefetch, prefetch_bytes, prefetch_lines};
use crate::arch::sls::{
    Index, OUT_BF16, OUT_F16, OUT_F32, ROW_F32, checked_index, elem_bytes, out_parts, store_block,
};
#[cfg(target_arch = "x86_64")]
use crate::arch::sls_quant::{LutSimd, lut_add_row, lut_applies, lut_element_order};
use crate::arch::sls_quant::{QuantSimd, code_bytes};
use crate::embedding::plan::Prefetch;
use crate::embedding::{Bags, IndexSlice, Output, Pooling, Weights};
use crate::error::Result;
use crate::outlier::{COUNT_BYTES, ENTRY_BYTES, OutlierTable};

/// Vectors of the general (any dimension) path, as in the quantized kernels.
const BLOCK: usize = 8;

/// What stays fixed over one call.
struct Batch<I> {
    /// The table's records, one every `stride` bytes.
    records: *const u8,
    stride: usize,
    /// Bytes of a record that may be read (prefetched).
    used: usize,
    /// Whether some record's `used` bytes end in a line beyond its 64-byte steps
    /// ([`last_line_needed`]): never for 96-byte records at a stride of 96.
    record_last_line: bool,
    /// Whether records hold outliers after their dense row (else there are none).
    entries: bool,
    rows: usize,
    row_bytes: usize,
    data_bytes: usize,
    dim: usize,
    /// `dim` f32: the sparse sums of the bag being summed.
    sparse: *mut f32,
    indices: *const I,
    num_indices: usize,
    prefetch: Prefetch,
    out: *mut u8,
    out_stride: usize,
    pooling: Pooling,
}

/// What stays fixed over one call over `t` with indices `ix`, summing outliers into
/// `sparse`.
#[allow(clippy::too_many_arguments)]
fn batch<const BITS: u32, I>(
    t: &OutlierTable<'_>,
    sparse: *mut f32,
    ix: &[I],
    prefetch: Prefetch,
    out: *mut u8,
    out_stride: usize,
    pooling: Pooling,
) -> Batch<I> {
    let dense = t.dense();
    let records = t.row_records();
    let first = records.bytes.as_ptr();
    Batch {
        records: first,
        stride: records.stride,
        used: records.used,
        record_last_line: last_line_needed(first, records.stride, records.used.max(1)),
        entries: records.entries,
        rows: dense.rows(),
        row_bytes: dense.row_bytes(),
        data_bytes: code_bytes::<BITS>(dense.dim()),
        dim: dense.dim(),
        sparse,
        indices: ix.as_ptr(),
        num_indices: ix.len(),
        prefetch,
        out,
        out_stride,
        pooling,
    }
}

/// Runs every bag of `bags` over the outlier `table` into `out` with vector type `S`, dense
/// codes of `BITS` bits. `NV > 0`: the dimension is `NV · S::LANES`; `NV == 0`: any.
///
/// # Safety
///
/// The CPU runs `S`'s instructions; the dense part has `BITS`-bit codes (and dimension
/// `NV · S::LANES` when `NV > 0`); `table` was checked by its constructor; `bags` and `out`
/// passed their constructors' checks and `embedding::check_output` for this dimension and
/// `out_stride`.
#[inline(always)]
pub(crate) unsafe fn embedding_bag<S: QuantSimd, const BITS: u32, const NV: usize>(
    table: &OutlierTable<'_>,
    bags: &Bags<'_>,
    pooling: Pooling,
    out: &mut Output<'_>,
    out_stride: usize,
    prefetch: Prefetch,
) -> Result<()> {
    let (out_type, out_ptr) = out_parts(out);
    let mut sparse_row = vec![0.0f32; table.dim()];
    let sparse = sparse_row.as_mut_ptr();
    let weights = match bags.weights() {
        Weights::None => None,
        Weights::PerIndex(w) => Some((w.as_ptr(), true)),
        Weights::Positional(w) => Some((w.as_ptr(), false)),
    };
    // Width and weighting are fixed per call: one monomorphized loop each.
    macro_rules! go {
        ($ix:expr, $i:ty, $weighted:literal, $w:expr) => {{
            let b = batch::<BITS, $i>(table, sparse, $ix, prefetch, out_ptr, out_stride, pooling);
            // SAFETY: forwarded from this function's contract; `b` describes the same
            // table, indices and output, and `sparse` holds `dim` f32.
            unsafe { run::<S, BITS, NV, $i, $weighted>(&b, bags, out_type, $w) }
        }};
    }
    match (bags.indices(), weights) {
        (IndexSlice::I32(ix), None) => go!(ix, i32, false, None),
        (IndexSlice::I32(ix), w) => go!(ix, i32, true, w),
        (IndexSlice::I64(ix), None) => go!(ix, i64, false, None),
        (IndexSlice::I64(ix), w) => go!(ix, i64, true, w),
    }
}

/// The bag loop for one index width and weighting.
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
        // weights; the output row holds `dim` elements (check_output); `sparse` holds `dim`
        // f32; blocks stay within `0..dim` and start at multiples of `BLOCK · LANES`, a
        // multiple of the codes per byte.
        unsafe {
            std::ptr::write_bytes(batch.sparse, 0, batch.dim);
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

/// Sums columns `col .. col + nv · LANES + tail` of one bag's dense rows and stores them,
/// plus the sparse sums, at `out`. The first block (`col == 0`) also sums every outlier of
/// the bag into `sparse`, which later blocks only read. Every index is checked before its
/// row is read, and before anything is stored.
///
/// # Safety
///
/// As `sls_quant`'s block: `range` within the indices, `weights` (when `WEIGHTED`) holding
/// `range.len()` weights, `nv ≤ NV`, the columns within the dimension with `col` a
/// multiple of the codes per byte, `out` holding the columns; and the blocks of one bag
/// run in column order after `sparse` was zeroed.
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
    let first = col == 0;
    // The first block fetches the record from its codes' end (scale, bias, outliers) with
    // its codes (the whole record when it is the only block); later blocks find those in
    // cache and fetch only their codes.
    let pf = if first && width == batch.dim {
        RecordPrefetch::whole(batch)
    } else {
        RecordPrefetch {
            from: col_bytes,
            bytes: code_bytes::<BITS>(width),
            last_line: true,
            rest: first,
            ends: false,
        }
    };
    let len = range.len();
    // SAFETY: indices are read within `range`; a record is read only after its index
    // passed the bounds check (`checked_record`), and only its codes of columns `col..col
    // + width`, its scale and bias and (first block) its outliers. The caller's contract
    // covers weights, `sparse` and `out`.
    unsafe {
        let mut acc = [S::zero(); NV];
        let mut acc_tail = S::zero();
        for (position, i) in range.enumerate() {
            let row = checked_record(batch, bag, position, i, pf)?;
            let scale_bias = row.add(batch.data_bytes);
            let (scale, bias) = if BITS == 8 {
                (
                    scale_bias.cast::<f32>().read_unaligned(),
                    scale_bias.add(4).cast::<f32>().read_unaligned(),
                )
            } else {
                S::widen_f16_pair(scale_bias)
            };
            let w = if WEIGHTED {
                *weights.add(position)
            } else {
                1.0
            };
            let (scale, bias) = if WEIGHTED {
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
            if first {
                add_outliers::<I, WEIGHTED>(batch, row, w);
            }
        }
        let sparse = batch.sparse.add(col).cast::<u8>();
        for (v, a) in acc.iter_mut().enumerate().take(nv) {
            *a = S::add(*a, S::load::<ROW_F32>(sparse.add(4 * v * S::LANES)));
        }
        if tail > 0 {
            let rest = S::load_part::<ROW_F32>(sparse.add(4 * nv * S::LANES), tail);
            acc_tail = S::add(acc_tail, rest);
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

/// The part of each record to prefetch: `bytes` bytes from byte `from` (`last_line`: as
/// [`prefetch_lines`] takes it), and, with `rest`, the record's bytes after its codes.
#[derive(Clone, Copy)]
struct RecordPrefetch {
    from: usize,
    bytes: usize,
    last_line: bool,
    rest: bool,
    /// The span lies in the lines of its first and last bytes: two prefetches, no loop.
    ends: bool,
}

impl RecordPrefetch {
    /// The whole record.
    fn whole<I>(batch: &Batch<I>) -> Self {
        RecordPrefetch {
            from: 0,
            bytes: batch.used,
            last_line: batch.record_last_line,
            rest: false,
            // A span of at most two lines whose 64-byte steps cover it (no last line
            // beyond them) has its second line, if any, at its last byte.
            ends: batch.used <= 128 && !batch.record_last_line,
        }
    }
}

/// The record of entry `i` (position `position` of bag `bag`) after checking its index,
/// having first issued the prefetch `pf` for the entry `distance` ahead.
///
/// # Safety
///
/// `i` is within the indices.
#[inline(always)]
unsafe fn checked_record<I: Index>(
    batch: &Batch<I>,
    bag: usize,
    position: usize,
    i: usize,
    pf: RecordPrefetch,
) -> Result<*const u8> {
    // SAFETY: indices are read at `i` (or clamped to the last one for prefetch); the
    // record pointer is formed only after its index passed the bounds check; prefetches
    // may name any address.
    unsafe {
        let index = checked_index((*batch.indices.add(i)).widen(), batch.rows, bag, position)?;
        let distance = batch.prefetch.distance;
        if distance > 0 {
            let last = batch.num_indices - 1;
            let ahead = (*batch.indices.add(i.saturating_add(distance).min(last))).widen();
            let ahead_row = batch
                .records
                .wrapping_add((ahead as usize).wrapping_mul(batch.stride));
            let hint = batch.prefetch.hint;
            let from = ahead_row.wrapping_add(pf.from);
            if pf.ends {
                prefetch(from, hint);
                prefetch(from.wrapping_add(pf.bytes - 1), hint);
            } else {
                prefetch_lines(from, pf.bytes, pf.last_line, hint);
            }
            if pf.rest {
                let rest = ahead_row.wrapping_add(batch.data_bytes);
                prefetch_bytes(rest, batch.used - batch.data_bytes, hint);
            }
        }
        Ok(batch.records.add(index * batch.stride))
    }
}

/// Adds the outliers of the record at `row`, weighted by `w` when `WEIGHTED`, to the bag's
/// sparse sums, in CSR order: `sparse[c] + r` or `w.mul_add(r, sparse[c])`, as the
/// reference.
///
/// # Safety
///
/// `row` is a record of `batch`'s table.
#[inline(always)]
unsafe fn add_outliers<I, const WEIGHTED: bool>(batch: &Batch<I>, row: *const u8, w: f32) {
    if !batch.entries {
        return;
    }
    // SAFETY: the count and entries lie within the record because the table built it from
    // checked offsets (the count fits the record, columns are below `dim`, which `sparse`
    // holds).
    unsafe {
        let count = row.add(batch.row_bytes).cast::<u32>().read_unaligned() as usize;
        let entries = row.add(batch.row_bytes + COUNT_BYTES);
        let add = |n: usize| {
            let entry = entries.add(n * ENTRY_BYTES);
            let c = usize::from(entry.cast::<u16>().read_unaligned());
            let r = entry.add(2).cast::<f32>().read_unaligned();
            let slot = batch.sparse.add(c);
            *slot = if WEIGHTED {
                w.mul_add(r, *slot)
            } else {
                *slot + r
            };
        };
        // Rows hold a few outliers: the first `UNROLLED` take one predictable branch each
        // rather than a loop's counter, compare and remainder (a third of a row's
        // instructions at 4 outliers), the rest a loop.
        const UNROLLED: usize = 4;
        for n in 0..UNROLLED {
            if n < count {
                add(n);
            }
        }
        for n in UNROLLED..count {
            add(n);
        }
    }
}

/// Like [`embedding_bag`], but unweighted Q4 / Q2 bags at a specialised dimension that is
/// a whole number of code vectors go through [`LutSimd`]'s lookups, as the plain kernel
/// of the level does (`sls_quant::embedding_bag_lut`): the dense sums are the same bits
/// (the lookup is exact without a weight), in fewer instructions a row.
///
/// # Safety
///
/// As [`embedding_bag`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn embedding_bag_lut<S: LutSimd, const BITS: u32, const NV: usize>(
    table: &OutlierTable<'_>,
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
    let mut sparse_row = vec![0.0f32; table.dim()];
    let sparse = sparse_row.as_mut_ptr();
    let (t, pf, st, pl) = (table, prefetch, out_stride, pooling);
    // SAFETY: forwarded from this function's contract; `Batch` describes the same table,
    // indices and output, and `sparse` holds `dim` f32.
    unsafe {
        match bags.indices() {
            IndexSlice::I32(ix) => run_lut::<S, BITS, NV, i32>(
                &batch::<BITS, _>(t, sparse, ix, pf, o, st, pl),
                bags,
                out_type,
            ),
            IndexSlice::I64(ix) => run_lut::<S, BITS, NV, i64>(
                &batch::<BITS, _>(t, sparse, ix, pf, o, st, pl),
                bags,
                out_type,
            ),
        }
    }
}

/// The bag loop of [`embedding_bag_lut`] for one index width: the whole row in `NV`
/// registers, the outliers into `sparse`, added after the bag in element order.
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
    let pf = RecordPrefetch::whole(batch);
    for (bag, range) in bags.ranges().enumerate() {
        let out = batch
            .out
            .wrapping_add(bag * batch.out_stride * elem_bytes(out_type));
        let len = range.len();
        // SAFETY: the ranges come from validated bags, so they lie within the indices; a
        // record is read only after its index passed the bounds check, and only its `NV ·
        // LANES · BITS / 8` code bytes, its scale and bias and its outliers; `sparse` and
        // the output row hold `dim = NV · LANES` elements (check_output).
        unsafe {
            std::ptr::write_bytes(batch.sparse, 0, batch.dim);
            let mut acc = [S::zero(); NV];
            for (position, i) in range.enumerate() {
                let row = checked_record(batch, bag, position, i, pf)?;
                lut_add_row::<S, BITS, NV>(&mut acc, row, batch.data_bytes);
                add_outliers::<I, false>(batch, row, 1.0);
            }
            let mut sums = lut_element_order::<S, BITS, NV>(&acc);
            let sparse = batch.sparse.cast::<u8>();
            for (v, a) in sums.iter_mut().enumerate() {
                *a = S::add(*a, S::load::<ROW_F32>(sparse.add(4 * v * S::LANES)));
            }
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

/// Defines an instruction set's outlier-table kernel (`embedding_bag`, compiled with
/// `features`) over its [`QuantSimd`] vector `simd`, and `kernel(format, spec)`, the const
/// table from a registry key to its monomorphized instances for the dimensions listed.
macro_rules! outlier_kernels {
    ($simd:ty, features = $features:literal, lanes = $lanes:literal, dims = [$($dim:literal),*]) => {
        $crate::arch::sls_outlier::outlier_kernels!(
            $simd,
            features = $features,
            lanes = $lanes,
            dims = [$($dim),*],
            bag = embedding_bag
        );
    };
    (
        $simd:ty,
        features = $features:literal,
        lanes = $lanes:literal,
        dims = [$($dim:literal),*],
        bag = $bag:ident
    ) => {
        /// Embedding bags over outlier tables whose dense part has `BITS`-bit codes;
        /// `NV > 0` specialises the dimension to `NV` vectors, `NV == 0` takes any.
        ///
        /// # Safety
        ///
        /// The CPU has this module's instruction set; the arguments passed the checks
        /// [`crate::registry::OutlierBagFn`] lists; the dense part has `BITS`-bit codes
        /// and, when `NV > 0`, `NV` vectors per row.
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn embedding_bag<const BITS: u32, const NV: usize>(
            table: &crate::outlier::OutlierTable<'_>,
            bags: &crate::embedding::Bags<'_>,
            pooling: crate::embedding::Pooling,
            out: &mut crate::embedding::Output<'_>,
            out_stride: usize,
            prefetch: crate::embedding::plan::Prefetch,
        ) -> crate::error::Result<()> {
            // SAFETY: this function's contract is `sls_outlier::embedding_bag`'s, with the
            // instruction set enabled.
            unsafe {
                crate::arch::sls_outlier::$bag::<$simd, BITS, NV>(
                    table, bags, pooling, out, out_stride, prefetch,
                )
            }
        }

        /// This instruction set's outlier kernel for dense `format` and dimensions
        /// `spec`. Panics (at compile time, in the registry) for a key it has no kernel for.
        pub(crate) const fn kernel(
            format: crate::format::Format,
            spec: crate::registry::Spec,
        ) -> crate::registry::OutlierBagFn {
            use crate::format::Format;
            use crate::registry::{OutlierBagFn, Spec};
            const fn by_dim<const BITS: u32>(spec: Spec) -> OutlierBagFn {
                match spec {
                    Spec::Any => embedding_bag::<BITS, 0>,
                    $(Spec::Dim($dim) => embedding_bag::<BITS, { $dim / $lanes }>,)*
                    Spec::Dim(_) => panic!("no outlier kernel specialised for this dimension"),
                }
            }
            match format {
                Format::Q8 => by_dim::<8>(spec),
                Format::Q4 => by_dim::<4>(spec),
                Format::Q2 => by_dim::<2>(spec),
                _ => panic!("outlier tables have a quantized dense part"),
            }
        }
    };
}
pub(crate) use outlier_kernels;
