//! The outlier-aware quantizer: per row, the elements farthest from the row's median are
//! kept exact as residuals, and the rest is quantized on its own, tighter range.

use std::ops::Range;
use std::sync::Arc;

use half::f16;

use crate::error::{Error, Result, checked_mul};
use crate::format::{Format, read_f16, read_f32};
use crate::isa::Isa;
use crate::outlier::format::{OutlierTable, Records, ResidualType, Residuals};
use crate::quantize::{Clipping, QuantInput};
use crate::reference::quantize::{
    RowParams, check_finite, greedy_params, min_max, row_params, write_row,
};

/// How many outliers each row keeps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outliers {
    /// Exactly this many per row (all of them when the row is shorter).
    Fixed(usize),
    /// Per row, the next outlier (in order of distance from the median) is kept while it
    /// lowers the row's squared error, as a reader decodes the row, by at least
    /// `min_gain`, up to `max` outliers. Rows that quantize well keep fewer outliers, so
    /// the table's bytes per row fall below those of `Fixed(max)`.
    Threshold {
        /// Most outliers per row.
        max: usize,
        /// Smallest decrease of the row's squared error one more outlier must bring.
        min_gain: f32,
    },
}

/// What the outlier quantizer writes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OutlierOptions {
    /// The dense part's format: Q8, Q4 or Q2.
    pub format: Format,
    /// How the dense part's clipping range is chosen, over the row without its outliers
    /// ([`Clipping::Greedy`]: Q4 and Q2 only).
    pub clipping: Clipping,
    /// How many outliers per row.
    pub outliers: Outliers,
    /// The residuals' type.
    pub residual: ResidualType,
}

impl OutlierOptions {
    /// `k` outliers per row with f16 residuals over a min/max `format` dense part.
    pub fn new(format: Format, k: usize) -> Self {
        OutlierOptions {
            format,
            clipping: Clipping::MinMax,
            outliers: Outliers::Fixed(k),
            residual: ResidualType::F16,
        }
    }
}

/// The sparse part of a range of rows, as [`quantize_outlier_rows`] returns it.
#[derive(Clone, Debug, Default)]
pub struct OutlierRows {
    /// Outliers of each row of the range.
    counts: Vec<u32>,
    columns: Vec<u16>,
    residuals: Vec<f32>,
}

/// The residuals of an owned table.
#[derive(Clone, Debug)]
enum ResidualVec {
    F16(Vec<f16>),
    F32(Vec<f32>),
}

/// An owned outlier table, as the quantizer builds it: its arrays, and the kernels'
/// records built once, which every [`OutlierTableBuf::table`] view shares.
#[derive(Clone, Debug)]
pub struct OutlierTableBuf {
    format: Format,
    rows: usize,
    dim: usize,
    dense: Vec<u8>,
    offsets: Vec<u32>,
    columns: Vec<u16>,
    residuals: ResidualVec,
    records: Option<Arc<Records>>,
}

impl OutlierTableBuf {
    /// A table from its dense bytes (all rows, as [`quantize_outlier_rows`] wrote them)
    /// and the sparse parts of consecutive row ranges covering the table, in row order.
    ///
    /// # Errors
    ///
    /// [`Error::TableSize`] if `dense` is not `rows × row_bytes`,
    /// [`Error::InvalidOutliers`] if the parts do not cover exactly `rows` rows or hold
    /// more than `u32::MAX` outliers.
    pub fn from_row_ranges(
        options: &OutlierOptions,
        rows: usize,
        dim: usize,
        dense: Vec<u8>,
        parts: impl IntoIterator<Item = OutlierRows>,
    ) -> Result<Self> {
        crate::format::Table::new(options.format, rows, dim, &dense)?;
        let mut offsets = vec![0u32];
        let (mut columns, mut residuals) = (Vec::new(), Vec::new());
        for part in parts {
            for count in part.counts {
                let last = *offsets.last().expect("starts with 0");
                let next = last.checked_add(count).ok_or(Error::InvalidOutliers {
                    row: offsets.len() - 1,
                    reason: "more than u32::MAX outliers".into(),
                })?;
                offsets.push(next);
            }
            columns.extend(part.columns);
            residuals.extend(part.residuals);
        }
        if offsets.len() != rows + 1 {
            return Err(Error::InvalidOutliers {
                row: offsets.len() - 1,
                reason: format!(
                    "the row ranges cover {} rows, not {rows}",
                    offsets.len() - 1
                ),
            });
        }
        let residuals = match options.residual {
            ResidualType::F32 => ResidualVec::F32(residuals),
            ResidualType::F16 => {
                ResidualVec::F16(residuals.iter().map(|&r| f16::from_f32(r)).collect())
            }
        };
        let mut table = OutlierTableBuf {
            format: options.format,
            rows,
            dim,
            dense,
            offsets,
            columns,
            residuals,
            records: None,
        };
        let records = table.unbuilt()?.with_built_records()?.records();
        table.records = records;
        Ok(table)
    }

    /// The checked view without records.
    fn unbuilt(&self) -> Result<OutlierTable<'_>> {
        let dense = crate::format::Table::new(self.format, self.rows, self.dim, &self.dense)?;
        let residuals = match &self.residuals {
            ResidualVec::F16(r) => Residuals::F16(r),
            ResidualVec::F32(r) => Residuals::F32(r),
        };
        OutlierTable::parts_unbuilt(dense, &self.offsets, &self.columns, residuals)
    }

    /// The view, sharing this table's records.
    pub fn table(&self) -> OutlierTable<'_> {
        self.unbuilt()
            .expect("an OutlierTableBuf is checked when it is built and never changes")
            .sharing_records(self.records.clone())
    }
}

/// Quantizes a whole `rows × dim` table (row-major `input`) with `options`, on `isa` (or
/// the automatic level when `None`) for the dense part's min/max quantizer.
pub fn quantize_outliers(
    options: &OutlierOptions,
    input: QuantInput<'_>,
    rows: usize,
    dim: usize,
    isa: Option<Isa>,
) -> Result<OutlierTableBuf> {
    let mut dense = vec![0u8; options.format.table_bytes(rows, dim)?];
    let part = quantize_outlier_rows(options, input, dim, 0..rows, &mut dense, isa)?;
    OutlierTableBuf::from_row_ranges(options, rows, dim, dense, [part])
}

/// Quantizes rows `rows` of a table of `dim`-element rows: the dense rows go into `out`
/// (exactly those rows of the dense table, `format.table_bytes(rows.len(), dim)` bytes),
/// the sparse part is returned. Rows are independent, so disjoint ranges from any threads,
/// put together by [`OutlierTableBuf::from_row_ranges`], give the whole table's bytes.
///
/// Per row, in f32:
/// 1. The median `m` is the row's lower median (element `(dim − 1) / 2` in increasing
///    order). Columns are ranked by `|x − m|`, largest first, ties by lower column.
/// 2. The first `k` ranked columns are the outliers ([`Outliers`] says how `k` is chosen).
///    The dense part's clipping range is chosen over the other elements only: their
///    min/max, or the greedy search of [`Clipping::Greedy`]; its scale, bias and codes are
///    those of the plain quantizer over that range, and an outlier gets the code the range
///    clamps it to, so a reader ignoring the sparse part sees the row clipped.
/// 3. The residual of an outlier is `x − (scale · q + bias)`, the dense value as the
///    dequantizer decodes it (one fused multiply-add), stored as f32 or rounded to f16.
///    Outliers are stored in increasing column order.
///
/// # Errors
///
/// As [`crate::quantize_rows`] (sizes, non-finite values, rows whose scale or bias does not
/// fit the format, naming the row by its table index), plus [`Error::UnrepresentableRow`]
/// for an f16 residual beyond ±65504, and [`Error::BadParameter`] for greedy clipping of
/// Q8, a non-quantized format or a dimension above 65536.
pub fn quantize_outlier_rows(
    options: &OutlierOptions,
    input: QuantInput<'_>,
    dim: usize,
    rows: Range<usize>,
    out: &mut [u8],
    isa: Option<Isa>,
) -> Result<OutlierRows> {
    Isa::choose(isa)?;
    let format = options.format;
    let Some(bits) = format.code_bits() else {
        return Err(Error::bad_parameter(
            "format",
            format!("{format} is not a quantized format"),
        ));
    };
    if dim > 1 << 16 {
        return Err(Error::bad_parameter(
            "dim",
            format!("{dim} is more than outlier columns (u16) can address, 65536"),
        ));
    }
    if options.clipping == Clipping::Greedy && format == Format::Q8 {
        return Err(Error::bad_parameter(
            "clipping",
            "greedy clipping writes Q4 or Q2 rows, not q8",
        ));
    }
    if rows.start > rows.end {
        return Err(Error::bad_parameter(
            "rows",
            format!("the range {}..{} is reversed", rows.start, rows.end),
        ));
    }
    let end = checked_mul(rows.end, dim, "input elements (rows.end × dim)")?;
    if input.len() < end {
        return Err(Error::InputTooSmall {
            what: "rows to quantize",
            needed: end,
            got: input.len(),
        });
    }
    let expected = format.table_bytes(rows.len(), dim)?;
    if out.len() != expected {
        return Err(Error::TableSize {
            expected,
            got: out.len(),
        });
    }
    let row_bytes = format.row_bytes(dim)?;
    let mut sparse = OutlierRows::default();
    let mut values = vec![0.0f32; dim];
    for (row, out_row) in rows.clone().zip(out.chunks_exact_mut(row_bytes)) {
        for (col, v) in values.iter_mut().enumerate() {
            *v = input.get(row * dim + col);
        }
        quantize_row(options, bits, &values, out_row, &mut sparse)
            .map_err(|reason| Error::UnrepresentableRow { row, reason })?;
    }
    Ok(sparse)
}

/// One row: writes its dense bytes and appends its outliers to `sparse`.
fn quantize_row(
    options: &OutlierOptions,
    bits: u32,
    values: &[f32],
    out: &mut [u8],
    sparse: &mut OutlierRows,
) -> std::result::Result<(), String> {
    check_finite(values)?;
    let ranked = ranked_columns(values);
    let fit = |k: usize| Fit::new(options, bits, values, &ranked[..k.min(values.len())]);
    let best = match options.outliers {
        Outliers::Fixed(k) => fit(k)?,
        Outliers::Threshold { max, min_gain } => {
            let mut best = fit(0)?;
            for k in 1..=max.min(values.len()) {
                let next = fit(k)?;
                let gain = best.squared_error - next.squared_error;
                // A NaN gain (errors overflowing f32) keeps no more outliers.
                if gain.is_nan() || gain < min_gain {
                    break;
                }
                best = next;
            }
            best
        }
    };
    write_row(values, &best.params, out);
    sparse.counts.push(best.outliers.len() as u32);
    for &(col, residual) in &best.outliers {
        sparse.columns.push(col as u16);
        sparse.residuals.push(residual);
    }
    Ok(())
}

/// Columns by decreasing distance from the row's lower median, ties by lower column.
fn ranked_columns(values: &[f32]) -> Vec<usize> {
    if values.is_empty() {
        return Vec::new();
    }
    let mut sorted = values.to_vec();
    let mid = (values.len() - 1) / 2;
    let median = *sorted.select_nth_unstable_by(mid, f32::total_cmp).1;
    let mut ranked: Vec<usize> = (0..values.len()).collect();
    ranked.sort_by(|&a, &b| {
        let (da, db) = ((values[a] - median).abs(), (values[b] - median).abs());
        db.total_cmp(&da).then(a.cmp(&b))
    });
    ranked
}

/// A row quantized with a given set of outliers.
struct Fit {
    params: RowParams,
    /// (column, residual as stored, converted back to f32), in increasing column order.
    outliers: Vec<(usize, f32)>,
    /// The row's squared error as a reader decodes it.
    squared_error: f32,
}

impl Fit {
    fn new(
        options: &OutlierOptions,
        bits: u32,
        values: &[f32],
        outliers: &[usize],
    ) -> std::result::Result<Fit, String> {
        let mut is_outlier = vec![false; values.len()];
        for &c in outliers {
            is_outlier[c] = true;
        }
        let rest: Vec<f32> = (0..values.len())
            .filter(|&c| !is_outlier[c])
            .map(|c| values[c])
            .collect();
        let params = match options.clipping {
            Clipping::MinMax => {
                let (min, max) = min_max(&rest);
                row_params(bits, min, max)?
            }
            Clipping::Greedy => greedy_params(&rest, bits)?,
        };
        let sb = params.scale_bias();
        let (scale, bias) = if bits == 8 {
            (read_f32(sb, 0), read_f32(sb, 4))
        } else {
            (read_f16(sb, 0), read_f16(sb, 2))
        };
        let decode = |x: f32| scale.mul_add(f32::from(params.code(x)), bias);
        let mut squared_error = 0.0f32;
        let mut kept = Vec::with_capacity(outliers.len());
        for (col, &x) in values.iter().enumerate() {
            let mut decoded = decode(x);
            if is_outlier[col] {
                let residual = x - decoded;
                let stored = match options.residual {
                    ResidualType::F32 => residual,
                    ResidualType::F16 => {
                        let r = f16::from_f32(residual);
                        if r.is_infinite() {
                            return Err(format!(
                                "the residual {residual} of column {col} does not fit f16"
                            ));
                        }
                        r.to_f32()
                    }
                };
                kept.push((col, stored));
                decoded += stored;
            }
            let e = x - decoded;
            squared_error += e * e;
        }
        Ok(Fit {
            params,
            outliers: kept,
            squared_error,
        })
    }
}
