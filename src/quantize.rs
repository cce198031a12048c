//! Row-wise quantizers and dequantizers, dispatched.
//!
//! The arithmetic (FBGEMM's, byte for byte) is documented on
//! [`crate::reference::quantize`] and [`crate::reference::dequantize`].
//!
//! [`quantize_rows`] quantizes any range of a table's rows into that range's bytes of the
//! quantized table, so an engine can split a large table across its threads: rows are
//! independent, and disjoint ranges that cover the table give exactly the bytes of
//! [`quantize`] over the whole table. It also selects the clipping range of each row
//! ([`Clipping`]): FBGEMM's min/max, or a greedy search that lowers the squared error.

use std::ops::Range;

use crate::embedding::Output;
use crate::error::{Error, Result, checked_mul};
use crate::format::{Format, Table};
use crate::isa::Isa;
use crate::registry::{self, Kernel, Op};

/// Rows to quantize: `rows × dim` values, row-major.
#[derive(Clone, Copy, Debug)]
pub enum QuantInput<'a> {
    /// f32 values.
    F32(&'a [f32]),
    /// f16 values (converted exactly to f32 first).
    F16(&'a [half::f16]),
}

impl QuantInput<'_> {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            QuantInput::F32(s) => s.len(),
            QuantInput::F16(s) => s.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values `range` (in bounds).
    fn slice(&self, range: Range<usize>) -> Self {
        match self {
            QuantInput::F32(s) => QuantInput::F32(&s[range]),
            QuantInput::F16(s) => QuantInput::F16(&s[range]),
        }
    }

    /// Value `i` as f32.
    #[inline]
    pub fn get(&self, i: usize) -> f32 {
        match self {
            QuantInput::F32(s) => s[i],
            QuantInput::F16(s) => s[i].to_f32(),
        }
    }
}

/// Checks a quantizer call: a quantized format, enough input, and an output of exactly
/// the table's size.
pub(crate) fn check_quantize(
    format: Format,
    input_len: usize,
    rows: usize,
    dim: usize,
    out_len: usize,
) -> Result<()> {
    if !format.is_quantized() {
        return Err(Error::bad_parameter(
            "format",
            format!("{format} is not a quantized format"),
        ));
    }
    let needed = checked_mul(rows, dim, "input elements (rows × dim)")?;
    if input_len < needed {
        return Err(Error::InputTooSmall {
            what: "rows to quantize",
            needed,
            got: input_len,
        });
    }
    let expected = format.table_bytes(rows, dim)?;
    if out_len != expected {
        return Err(Error::TableSize {
            expected,
            got: out_len,
        });
    }
    Ok(())
}

/// Checks a dequantizer call: a quantized table and room for `rows × dim` values.
pub(crate) fn check_dequantize(table: &Table<'_>, out_len: usize) -> Result<()> {
    if !table.format().is_quantized() {
        return Err(Error::bad_parameter(
            "table",
            format!("{} is not a quantized format", table.format()),
        ));
    }
    let needed = checked_mul(table.rows(), table.dim(), "output elements (rows × dim)")?;
    if out_len < needed {
        return Err(Error::OutputTooSmall {
            what: "dequantized rows",
            needed,
            got: out_len,
        });
    }
    Ok(())
}

/// Quantizes `rows × dim` values into `out` (exactly `format.table_bytes(rows, dim)`
/// bytes) on `isa` (or the automatic level when `None`). Bytes are identical to
/// [`crate::reference::quantize`] on every level.
pub fn quantize(
    format: Format,
    input: QuantInput<'_>,
    rows: usize,
    dim: usize,
    out: &mut [u8],
    isa: Option<Isa>,
) -> Result<()> {
    check_quantize(format, input.len(), rows, dim, out.len())?;
    let level = Isa::choose(isa)?;
    let entry = registry::select(Op::Quantize(format), dim, level);
    let Kernel::Quantize(kernel) = entry.kernel else {
        unreachable!("registry entries for quantizers hold quantizer kernels")
    };
    registry::record(entry);
    // SAFETY: `check_quantize` checked the format, the input length and the output size.
    unsafe { kernel(format, input, rows, dim, out) }
}

/// Dequantizes every row of `table` into `out` (`rows × dim` values, row-major) on `isa`
/// (or the automatic level when `None`). Identical to [`crate::reference::dequantize`] on
/// every level.
pub fn dequantize(table: &Table<'_>, mut out: Output<'_>, isa: Option<Isa>) -> Result<()> {
    check_dequantize(table, out.len())?;
    let level = Isa::choose(isa)?;
    let entry = registry::select(Op::Dequantize(table.format()), table.dim(), level);
    let Kernel::Dequantize(kernel) = entry.kernel else {
        unreachable!("registry entries for dequantizers hold dequantizer kernels")
    };
    registry::record(entry);
    // SAFETY: `check_dequantize` checked the format and the output size; the table's
    // byte size was checked when it was built.
    unsafe { kernel(table, &mut out) }
}

/// How each row's clipping range — the values its lowest and highest codes stand for — is
/// chosen. Both write the same format, which every reader decodes unchanged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Clipping {
    /// The row's minimum and maximum: FBGEMM's quantizers, byte for byte, vectorized on
    /// every level.
    #[default]
    MinMax,
    /// A greedy search over ranges shrunk from the row's `[min, max]` for the smallest
    /// squared error, as FBGEMM's greedy n-bit quantizer does ([`Format::Q4`] and
    /// [`Format::Q2`] only; scalar on every level, see
    /// [`crate::reference::quantize_greedy`]). On the MiniLM word embeddings it lowers the
    /// RMSE by 12% (Q4) and 40% (Q2), see the README.
    Greedy,
}

/// Quantizes rows `rows` of a table of `dim`-element rows into `out`, which holds exactly
/// those rows of the quantized table (`format.table_bytes(rows.len(), dim)` bytes, the
/// slice from byte `rows.start · format.row_bytes(dim)`), on `isa` (or the automatic
/// level when `None`).
///
/// `input` is the whole table, row-major (at least `rows.end · dim` values); only the rows
/// in `rows` are read. Rows are quantized independently, so calls over disjoint ranges
/// (from any threads) that cover `0..table rows` produce exactly the bytes of one
/// [`quantize`] call (or, with [`Clipping::Greedy`], one
/// [`crate::reference::quantize_greedy`] call) over the whole table. An error names the
/// row by its index in the table.
///
/// With [`Clipping::MinMax`], a call whose output is at least 16 MiB writes it with
/// non-temporal stores, which skip reading each output line from memory before writing
/// it (Q8 over a 1 GiB table: 0.67 → 0.76 of the sequential-read limit, with the input
/// prefetch that comes with it); threads splitting a large table gain most from ranges
/// at least that large.
pub fn quantize_rows(
    format: Format,
    clipping: Clipping,
    input: QuantInput<'_>,
    dim: usize,
    rows: Range<usize>,
    out: &mut [u8],
    isa: Option<Isa>,
) -> Result<()> {
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
    let part = input.slice(rows.start * dim..end);
    let result = match clipping {
        Clipping::MinMax => quantize(format, part, rows.len(), dim, out, isa),
        Clipping::Greedy => {
            Isa::choose(isa)?;
            crate::reference::quantize_greedy(format, part, rows.len(), dim, out)
        }
    };
    result.map_err(|e| match e {
        Error::UnrepresentableRow { row, reason } => Error::UnrepresentableRow {
            row: row + rows.start,
            reason,
        },
        e => e,
    })
}
