//! Outlier-aware quantized tables: low-bit rows plus a few exact values per row, stored
//! sparse (the outlier-aware quantization of the FBGEMM paper, applied to embedding rows).
//!
//! Plain row-wise int4 spends its 16 levels on a range stretched by a row's few extreme
//! values. An [`OutlierTable`] keeps those values apart, exact up to an f16 or f32 residual,
//! and quantizes the rest of the row on its tighter range.
//!
//! # Layout (version 1)
//!
//! [`OutlierTable::to_bytes`] writes, and [`OutlierTable::from_bytes`] reads (checking every
//! field), little-endian, unaligned, no padding:
//!
//! | bytes | content |
//! |---|---|
//! | 0..8 | magic `LOWPOUTL` |
//! | 8..10 | u16 layout version, 1 |
//! | 10 | u8 dense code bits: 8 (Q8), 4 (Q4) or 2 (Q2) |
//! | 11 | u8 residual bytes: 2 (f16) or 4 (f32) |
//! | 12..16 | u32 `dim` |
//! | 16..24 | u64 `rows` |
//! | 24..32 | u64 `nnz`, the number of outliers |
//! | dense | `rows` rows of the dense format, exactly a plain [`crate::Table`] of it |
//! | offsets | `rows + 1` u32: row `r`'s outliers are entries `offsets[r]..offsets[r + 1]` |
//! | columns | `nnz` u16: each outlier's column, strictly increasing within a row, `< dim` |
//! | residuals | `nnz` f16 or f32: exact value − the dense part's decoded value |
//!
//! The dense part is a valid table on its own: a reader that ignores the sparse part gets
//! every outlier clipped to its row's range. A table of `rows` rows with `nnz` outliers
//! takes `32 + rows · row_bytes + 4 · (rows + 1) + nnz · (2 + residual bytes)` bytes: a Q4
//! row of 384 is 196 bytes, and 4 outliers with f16 residuals add 4 + 16 = 20 bytes.
//!
//! # Execution layout
//!
//! The layout above is the interchange format; bag kernels read another, which every
//! constructor builds from it (the serialized bytes and their checks do not change). Out of
//! cache a bag is bound by the random cache lines it fetches, and the CSR arrays put a
//! row's offsets, columns and residuals on lines of their own, away from its dense row. So
//! a table with outliers owns one **record** per row at a fixed stride, from a 64-byte
//! boundary (on 2 MiB pages where the OS grants them, once the records pass 2 MiB):
//!
//! | bytes of record `r` | content |
//! |---|---|
//! | `0..row_bytes` | dense row `r`, exactly as in the dense part |
//! | next 4 | u32 `n`, row `r`'s outlier count |
//! | next `6 · n` | its outliers in CSR order: u16 column, then the residual as f32 |
//! | up to the stride | zeros |
//!
//! Residuals are f32 in the records whatever the table stores (an f16 widens exactly), so a
//! kernel adds them without a conversion per outlier. The stride fits the row with the most outliers (for a threshold-chosen count, its cap
//! `max` when some row reaches it), rounded up to a power of two up to 32 bytes or a
//! multiple of 32 above, so that no record touches more cache lines than its bytes need:
//! [`OutlierTable::record_bytes`]. For Q4 rows of 128 with 4 outliers, 68 + 4 + 24 = 96
//! bytes (two lines, as the plain row's 68), against 88 bytes per row in the CSR form with
//! f16 residuals; for Q4 rows of 384, 224 against 216. The table borrows the CSR
//! bytes and owns the records ([`OutlierTable::owned_bytes`]): holding a table costs its
//! serialized bytes plus the records. Few rows with many outliers make every record long;
//! such tables pay the longest row's stride. A table without outliers owns nothing: its
//! kernels read the dense part.
//!
//! # Use
//!
//! [`quantize_outliers`] (or [`quantize_outlier_rows`] over row ranges, for threads) builds
//! a table, [`OutlierEmbeddingBag`] sums bags over it with the plan options of
//! [`EmbeddingBag`], bit-identical to [`crate::reference::embedding_bag_outlier`] on every
//! level, and [`crate::reference::dequantize_outlier`] decodes it.

mod format;
mod quantize;

pub(crate) use format::{COUNT_BYTES, ENTRY_BYTES};
pub use format::{
    HEADER_BYTES, MAGIC, OutlierTable, ResidualType, Residuals, VERSION, sparse_bytes,
};
pub use quantize::{
    OutlierOptions, OutlierRows, OutlierTableBuf, Outliers, quantize_outlier_rows,
    quantize_outliers,
};

use crate::embedding::check_output;
use crate::embedding::plan::{EmbeddingBag, EmbeddingBagSpec};
use crate::error::{Error, Result};
use crate::isa::Isa;
use crate::registry::{self, Entry, Kernel, Op, OutlierBagFn};
use crate::{Bags, Output};

/// An embedding-bag plan over outlier tables: the options of an [`EmbeddingBagSpec`]
/// (`format` is the dense part's), its kernel resolved once.
#[derive(Clone, Copy, Debug)]
pub struct OutlierEmbeddingBag {
    dense: EmbeddingBag,
    entry: &'static Entry,
    kernel: OutlierBagFn,
}

impl OutlierEmbeddingBag {
    /// Resolves the kernel for `spec` (whose `format` is the dense part's: Q8, Q4 or Q2).
    ///
    /// # Errors
    ///
    /// [`Error::BadParameter`] (`"format"`) for a format that is not quantized, and those
    /// of [`EmbeddingBag::new`].
    pub fn new(spec: EmbeddingBagSpec) -> Result<Self> {
        if !spec.format.is_quantized() {
            return Err(Error::bad_parameter(
                "format",
                format!(
                    "outlier tables have a Q8, Q4 or Q2 dense part, not {}",
                    spec.format
                ),
            ));
        }
        let dense = EmbeddingBag::new(spec)?;
        let level = Isa::choose(spec.isa)?;
        let entry = registry::select(Op::OutlierEmbeddingBag(spec.format), spec.dim, level);
        let Kernel::OutlierEmbeddingBag(kernel) = entry.kernel else {
            unreachable!("registry entries for outlier bags hold outlier-bag kernels")
        };
        Ok(OutlierEmbeddingBag {
            dense,
            entry,
            kernel,
        })
    }

    /// The configuration this plan runs.
    pub fn spec(&self) -> &EmbeddingBagSpec {
        self.dense.spec()
    }

    /// The plan of the same options over the dense part alone (a plain quantized table).
    pub fn dense_plan(&self) -> &EmbeddingBag {
        &self.dense
    }

    /// The level of the kernel this plan resolved to.
    pub fn isa(&self) -> Isa {
        self.entry.isa
    }

    /// Sums (or averages) each bag of `bags` over `table` into `out`, bag `b` at
    /// `out[b · out_stride..]`, bit-identical to
    /// [`crate::reference::embedding_bag_outlier`].
    ///
    /// # Errors
    ///
    /// Exactly those of [`EmbeddingBag::run`] over the table's dense part.
    pub fn run(
        &self,
        table: &OutlierTable<'_>,
        bags: &Bags<'_>,
        mut out: Output<'_>,
        out_stride: usize,
    ) -> Result<()> {
        self.dense.check(&table.dense(), bags, &out)?;
        check_output(bags.len(), table.dim(), out.len(), out_stride)?;
        registry::record(self.entry);
        let spec = self.dense.spec();
        // SAFETY: `table` was checked by its constructor (dense size, offsets, columns),
        // and its dense part is of the plan's format and dimension (`check`), so the kernel
        // resolved for them applies; `bags` has validated offsets or lengths and weight
        // counts; the output holds bags rows of dim at out_stride (check_output). The
        // kernel checks every index against the table's rows.
        unsafe {
            (self.kernel)(
                table,
                bags,
                spec.pooling,
                &mut out,
                out_stride,
                spec.prefetch,
            )
        }
    }
}
