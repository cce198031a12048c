//! The compositional embedding-bag loop that every `sls_compositional_*` kernel
//! instantiates with its own vector type (the quantized loop's [`QuantSimd`], which reads
//! float rows and unpacks codes alike). No intrinsics here.
//!
//! For each index the loop checks it against the virtual rows, derives each component's
//! row with the plan's multiply-and-shift dividers, loads and dequantizes a block of each
//! component row into registers, combines them, and accumulates: no per-index buffer.
//!
//! The arithmetic is the reference's (`crate::reference::compositional_bag`) by
//! construction: vectors run across the dimension, never across a bag or the components;
//! a quantized element is `fma(scale, q, bias)`; components combine in order with one
//! multiply or add each; every entry accumulates as `fma(w, v, acc)` with `w = 1` when
//! unweighted, which rounds exactly like `acc + v` (the product by 1 is exact, the sum
//! rounds once either way); Mean multiplies by the f32 reciprocal of the length.

use std::marker::PhantomData;
use std::ops::Range;

use crate::arch::sls::{
    OUT_BF16, OUT_F16, OUT_F32, PREFETCH_MIN_TABLE_BYTES, ROW_BF16, ROW_F16, ROW_F32, elem_bytes,
    out_parts, prefetch_span, store_block,
};
use crate::arch::sls_quant::QuantSimd;
use crate::compositional::scheme::RowMap;
use crate::compositional::{Component, CompositionalTable, MAX_COMPONENTS};
use crate::embedding::plan::Prefetch;
use crate::embedding::{Bags, IndexSlice, Output, Pooling, Weights};
use crate::error::{Error, Result};
use crate::format::Format;

/// Combining operations, as const parameters.
pub(crate) const PRODUCT: u8 = 0;
pub(crate) const SUM: u8 = 1;
pub(crate) const CONCAT: u8 = 2;

/// Component formats, as const parameters: `sls::ROW_*` for float rows, then these; a
/// kernel for one format serves tables whose components all have it, `MIXED` any others.
const ROW_Q8: u8 = 3;
const ROW_Q4: u8 = 4;
const ROW_Q2: u8 = 5;
const MIXED: u8 = 6;

/// Vectors of the general (any dimension) path's column blocks.
const BLOCK: usize = 8;

const fn format_id(format: Format) -> u8 {
    match format {
        Format::F32 => ROW_F32,
        Format::F16 => ROW_F16,
        Format::Bf16 => ROW_BF16,
        Format::Q8 => ROW_Q8,
        Format::Q4 => ROW_Q4,
        _ => ROW_Q2,
    }
}

/// One component as the loop reads it.
#[derive(Clone, Copy)]
struct Part<'t> {
    /// The component's row of an index, copied here so the loop reads it from one place.
    map: RowMap,
    base: *const u8,
    row_bytes: usize,
    /// Bytes before the scale and bias of a quantized row.
    data_bytes: usize,
    format: u8,
    dim: usize,
    column: usize,
    _table: PhantomData<&'t [u8]>,
}

/// What stays fixed over one call.
struct Batch<'t> {
    /// Components `0..num_parts`; the slots after them repeat component 0.
    parts: [Part<'t>; MAX_COMPONENTS],
    num_parts: usize,
    virtual_rows: u64,
    dim: usize,
    indices: IndexSlice<'t>,
    weights: Weights<'t>,
    prefetch: Prefetch,
    out: *mut u8,
    out_type: u8,
    out_stride: usize,
    pooling: Pooling,
}

impl Batch<'_> {
    #[inline(always)]
    fn part(&self, c: usize) -> &Part<'_> {
        &self.parts[c]
    }

    /// Index `i` of the batch; `i` is within the indices.
    #[inline(always)]
    unsafe fn index(&self, i: usize) -> i64 {
        // SAFETY: the caller keeps `i` within the indices.
        unsafe {
            match self.indices {
                IndexSlice::I32(s) => i64::from(*s.get_unchecked(i)),
                IndexSlice::I64(s) => *s.get_unchecked(i),
            }
        }
    }
}

/// Runs every bag of `bags` over the compositional `table` into `out` with vector type
/// `S`, combining as `OP`. `NV > 0`: the dimension is `NV · S::LANES` and a bag's
/// accumulators are `NV` vectors kept in registers (product and sum only); `NV == 0`: any
/// dimension, in column blocks with a partial last vector.
///
/// # Safety
///
/// The CPU runs `S`'s instructions; `table` came from `CompositionalTable::new` and
/// combines as `OP` (with `table.dim() == NV · S::LANES` when `NV > 0`); `bags` and `out`
/// passed their constructors' checks and `embedding::check_output` for `table.dim()` and
/// `out_stride`.
#[inline(always)]
pub(crate) unsafe fn compositional_bag<S: QuantSimd, const OP: u8, const NV: usize>(
    table: &CompositionalTable<'_>,
    bags: &Bags<'_>,
    pooling: Pooling,
    out: &mut Output<'_>,
    out_stride: usize,
    prefetch: Prefetch,
) -> Result<()> {
    let (out_type, out_ptr) = out_parts(out);
    fn part<'t>(map: &'t Component<'t>) -> Part<'t> {
        let t = &map.table;
        Part {
            map: map.map,
            base: t.bytes().as_ptr(),
            row_bytes: t.row_bytes(),
            data_bytes: t.row_bytes() - t.format().scale_bias_bytes(),
            format: format_id(t.format()),
            dim: t.dim(),
            column: map.column,
            _table: PhantomData,
        }
    }
    let mut parts = [part(&table.parts()[0]); MAX_COMPONENTS];
    for (slot, map) in parts.iter_mut().zip(table.parts()) {
        *slot = part(map);
    }
    let num_parts = table.parts().len();
    let first = parts[0].format;
    let uniform = parts[..num_parts].iter().all(|p| p.format == first);
    let batch = Batch {
        parts,
        num_parts,
        virtual_rows: table.virtual_rows() as u64,
        dim: table.dim(),
        indices: bags.indices(),
        weights: bags.weights(),
        prefetch: if table.bytes() <= PREFETCH_MIN_TABLE_BYTES {
            Prefetch::OFF
        } else {
            prefetch
        },
        out: out_ptr,
        out_type,
        out_stride,
        pooling,
    };
    // SAFETY: forwarded from this function's contract; `batch` describes the same table,
    // bags and output, and `FMT` is every component's format unless it is `MIXED`.
    unsafe {
        match (uniform, first) {
            (true, ROW_F32) => run::<S, OP, NV, ROW_F32>(&batch, bags),
            (true, ROW_F16) => run::<S, OP, NV, ROW_F16>(&batch, bags),
            (true, ROW_BF16) => run::<S, OP, NV, ROW_BF16>(&batch, bags),
            (true, ROW_Q8) => run::<S, OP, NV, ROW_Q8>(&batch, bags),
            (true, ROW_Q4) => run::<S, OP, NV, ROW_Q4>(&batch, bags),
            (true, ROW_Q2) => run::<S, OP, NV, ROW_Q2>(&batch, bags),
            _ => run::<S, OP, NV, MIXED>(&batch, bags),
        }
    }
}

/// The bag loop for components of format `FMT` (or any, when `MIXED`).
#[inline(always)]
unsafe fn run<S: QuantSimd, const OP: u8, const NV: usize, const FMT: u8>(
    batch: &Batch<'_>,
    bags: &Bags<'_>,
) -> Result<()> {
    let esize = elem_bytes(batch.out_type);
    for (bag, range) in bags.ranges().enumerate() {
        let out_row = batch.out.wrapping_add(bag * batch.out_stride * esize);
        // SAFETY: the ranges come from validated bags, so they lie within the indices and
        // weights; the output row holds `dim` elements (check_output) and every call below
        // writes columns within it.
        unsafe {
            if OP == CONCAT {
                for c in 0..batch.num_parts {
                    let part = batch.part(c);
                    let out = out_row.wrapping_add(part.column * esize);
                    columns::<S, OP, FMT>(batch, bag, range.clone(), c..c + 1, part.dim, out)?;
                }
            } else if NV > 0 {
                let parts = 0..batch.num_parts;
                sum_block::<S, OP, NV, FMT>(batch, bag, range, parts, 0, NV, 0, out_row)?;
            } else {
                columns::<S, OP, FMT>(batch, bag, range, 0..batch.num_parts, batch.dim, out_row)?;
            }
        }
    }
    Ok(())
}

/// Pools columns `0..dim` of the components `parts` over one bag, in column blocks, into
/// `out`; at least one block, so that a zero-dimension table still checks the indices.
///
/// # Safety
///
/// As [`sum_block`], for every block of `0..dim`.
#[inline(always)]
unsafe fn columns<S: QuantSimd, const OP: u8, const FMT: u8>(
    batch: &Batch<'_>,
    bag: usize,
    range: Range<usize>,
    parts: Range<usize>,
    dim: usize,
    out: *mut u8,
) -> Result<()> {
    let esize = elem_bytes(batch.out_type);
    let mut col = 0;
    loop {
        let width = (dim - col).min(BLOCK * S::LANES);
        let at = out.wrapping_add(col * esize);
        let (r, p) = (range.clone(), parts.clone());
        // SAFETY: the block's columns lie within `0..dim`, at a multiple of `BLOCK · LANES`
        // (a multiple of the codes per byte); the caller's contract covers the rest.
        unsafe {
            if width == BLOCK * S::LANES {
                // Constant trip counts keep the block's vectors in registers.
                sum_block::<S, OP, BLOCK, FMT>(batch, bag, r, p, col, BLOCK, 0, at)?;
            } else {
                let (nv, tail) = (width / S::LANES, width % S::LANES);
                sum_block::<S, OP, BLOCK, FMT>(batch, bag, r, p, col, nv, tail, at)?;
            }
        }
        col += width;
        if col >= dim {
            break;
        }
    }
    Ok(())
}

/// Pools columns `col .. col + nv · LANES + tail` of the combined components `parts` over
/// one bag and stores them at `out`. Every index is checked before its rows are read, and
/// before anything is stored.
///
/// # Safety
///
/// `range` lies within the indices (and the per-index or positional weights); `nv ≤ NV`;
/// the columns lie within every component in `parts` and `col` is a multiple of the codes
/// per byte; `out` holds the columns as `batch.out_type`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn sum_block<S: QuantSimd, const OP: u8, const NV: usize, const FMT: u8>(
    batch: &Batch<'_>,
    bag: usize,
    range: Range<usize>,
    parts: Range<usize>,
    col: usize,
    nv: usize,
    tail: usize,
    out: *mut u8,
) -> Result<()> {
    // Later column blocks find the rows the first block prefetched.
    let prefetching = batch.prefetch.distance > 0 && col == 0;
    let len = range.len();
    let last = batch.indices.len().wrapping_sub(1);
    // SAFETY: indices and weights are read within `range` (or the last index, for
    // prefetch); a component row is read only after its index passed the bounds check,
    // which with `CompositionalTable::new`'s row counts puts the row inside its table;
    // prefetches may name any address. The caller's contract covers `out`.
    unsafe {
        let mut acc = [S::zero(); NV];
        let mut acc_tail = S::zero();
        for (position, i) in range.enumerate() {
            let index = batch.index(i);
            if index as u64 >= batch.virtual_rows {
                return Err(Error::IndexOutOfRange {
                    bag,
                    position,
                    index,
                    rows: batch.virtual_rows as usize,
                });
            }
            if prefetching {
                let ahead = batch.index(i.saturating_add(batch.prefetch.distance).min(last));
                // Any index, even an invalid one, maps to some row below 2^63.
                let ahead = ahead as u64 & (i64::MAX as u64);
                for c in parts.clone() {
                    let p = batch.part(c);
                    let row = p
                        .base
                        .wrapping_add((p.map.row(ahead) as usize).wrapping_mul(p.row_bytes));
                    prefetch_span(row, p.row_bytes, batch.prefetch.hint);
                }
            }
            let w = match batch.weights {
                Weights::None => 1.0,
                Weights::PerIndex(w) => *w.get_unchecked(i),
                Weights::Positional(w) => *w.get_unchecked(position),
            };
            let index = index as u64;
            let (mut x, mut x_tail) =
                load_block::<S, NV, FMT>(batch.part(parts.start), index, col, nv, tail);
            for c in parts.start + 1..parts.end {
                let (y, y_tail) = load_block::<S, NV, FMT>(batch.part(c), index, col, nv, tail);
                for (a, &b) in x.iter_mut().zip(&y).take(nv) {
                    *a = combine::<S, OP>(*a, b);
                }
                if tail > 0 {
                    x_tail = combine::<S, OP>(x_tail, y_tail);
                }
            }
            let w = S::splat(w);
            for (a, &v) in acc.iter_mut().zip(&x).take(nv) {
                *a = S::fma(w, v, *a);
            }
            if tail > 0 {
                acc_tail = S::fma(w, x_tail, acc_tail);
            }
        }
        if batch.pooling == Pooling::Mean && len > 0 {
            let scale = S::splat(1.0 / len as f32);
            for a in acc.iter_mut().take(nv) {
                *a = S::mul(*a, scale);
            }
            acc_tail = S::mul(acc_tail, scale);
        }
        match batch.out_type {
            OUT_F32 => store_block::<S, OUT_F32>(out, &acc[..nv], acc_tail, tail),
            OUT_F16 => store_block::<S, OUT_F16>(out, &acc[..nv], acc_tail, tail),
            _ => store_block::<S, OUT_BF16>(out, &acc[..nv], acc_tail, tail),
        }
    }
    Ok(())
}

/// `a · b` or `a + b`.
#[inline(always)]
unsafe fn combine<S: QuantSimd, const OP: u8>(a: S::V, b: S::V) -> S::V {
    // SAFETY: the kernel's instruction set runs this code.
    unsafe {
        if OP == PRODUCT {
            S::mul(a, b)
        } else {
            S::add(a, b)
        }
    }
}

/// Columns `col .. col + nv · LANES + tail` of `part`'s row for `index`, as f32: `nv` full
/// vectors, then `tail` lanes (the others any value).
///
/// # Safety
///
/// `index` is below the virtual rows; the columns lie within the component and `col` is a
/// multiple of the codes per byte; `nv ≤ NV`.
#[inline(always)]
unsafe fn load_block<S: QuantSimd, const NV: usize, const FMT: u8>(
    part: &Part<'_>,
    index: u64,
    col: usize,
    nv: usize,
    tail: usize,
) -> ([S::V; NV], S::V) {
    let format = if FMT == MIXED { part.format } else { FMT };
    // SAFETY: the row is within the component (caller); each read below stays within its
    // columns, and the scale and bias at `data_bytes`.
    unsafe {
        let row = part.base.add(part.map.row(index) as usize * part.row_bytes);
        match format {
            ROW_F32 => load_float::<S, NV, ROW_F32>(row, col, nv, tail),
            ROW_F16 => load_float::<S, NV, ROW_F16>(row, col, nv, tail),
            ROW_BF16 => load_float::<S, NV, ROW_BF16>(row, col, nv, tail),
            ROW_Q8 => {
                let sb = row.add(part.data_bytes).cast::<f32>();
                let (scale, bias) = (sb.read_unaligned(), sb.add(1).read_unaligned());
                load_codes::<S, NV, 8>(row, scale, bias, col, nv, tail)
            }
            ROW_Q4 => {
                let (scale, bias) = S::widen_f16_pair(row.add(part.data_bytes));
                load_codes::<S, NV, 4>(row, scale, bias, col, nv, tail)
            }
            _ => {
                let (scale, bias) = S::widen_f16_pair(row.add(part.data_bytes));
                load_codes::<S, NV, 2>(row, scale, bias, col, nv, tail)
            }
        }
    }
}

/// A block of a float row of format `F` at `row`.
#[inline(always)]
unsafe fn load_float<S: QuantSimd, const NV: usize, const F: u8>(
    row: *const u8,
    col: usize,
    nv: usize,
    tail: usize,
) -> ([S::V; NV], S::V) {
    let esize = elem_bytes(F);
    // SAFETY: the caller provides the columns' elements.
    unsafe {
        let p = row.add(col * esize);
        let mut x = [S::zero(); NV];
        for (v, x) in x.iter_mut().enumerate().take(nv) {
            *x = S::load::<F>(p.add(v * S::LANES * esize));
        }
        let x_tail = if tail > 0 {
            S::load_part::<F>(p.add(nv * S::LANES * esize), tail)
        } else {
            S::zero()
        };
        (x, x_tail)
    }
}

/// A block of a quantized row of `BITS`-bit codes at `row`, dequantized.
#[inline(always)]
unsafe fn load_codes<S: QuantSimd, const NV: usize, const BITS: u32>(
    row: *const u8,
    scale: f32,
    bias: f32,
    col: usize,
    nv: usize,
    tail: usize,
) -> ([S::V; NV], S::V) {
    let vector_bytes = S::LANES * BITS as usize / 8;
    // SAFETY: the caller provides the codes of the columns; `col` is a multiple of the
    // codes per byte.
    unsafe {
        let (s, b) = (S::splat(scale), S::splat(bias));
        let p = row.add(col * BITS as usize / 8);
        let mut x = [S::zero(); NV];
        for (v, x) in x.iter_mut().enumerate().take(nv) {
            *x = S::fma(s, S::load_codes::<BITS>(p.add(v * vector_bytes)), b);
        }
        let x_tail = if tail > 0 {
            S::fma(
                s,
                S::load_codes_part::<BITS>(p.add(nv * vector_bytes), tail),
                b,
            )
        } else {
            S::zero()
        };
        (x, x_tail)
    }
}

/// Defines `kernel(combine, spec)`, the const table from a registry key to one of this
/// instruction set's monomorphized compositional kernels; product and sum get the listed
/// dimensions (each a multiple of `lanes`) specialised, concatenation only the general one.
macro_rules! compositional_kernel_table {
    ($kernel:ident, lanes = $lanes:literal, dims = [$($dim:literal),*]) => {
        /// This instruction set's compositional kernel for `combine` and dimensions
        /// `spec`. Panics (at compile time, in the registry) for a key it has no kernel for.
        pub(crate) const fn kernel(
            combine: crate::compositional::Combine,
            spec: crate::registry::Spec,
        ) -> crate::registry::CompositionalBagFn {
            use crate::arch::sls_compositional::{CONCAT, PRODUCT, SUM};
            use crate::compositional::Combine;
            use crate::registry::{CompositionalBagFn, Spec};
            const fn by_dim<const OP: u8>(spec: Spec) -> CompositionalBagFn {
                match spec {
                    Spec::Any => $kernel::<OP, 0>,
                    $(Spec::Dim($dim) if OP != CONCAT => $kernel::<OP, { $dim / $lanes }>,)*
                    Spec::Dim(_) => panic!("no kernel specialised for this dimension"),
                }
            }
            match combine {
                Combine::Product => by_dim::<PRODUCT>(spec),
                Combine::Sum => by_dim::<SUM>(spec),
                Combine::Concat => by_dim::<CONCAT>(spec),
            }
        }
    };
}
pub(crate) use compositional_kernel_table;
