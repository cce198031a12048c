//! Row-wise quantizers and dequantizers, dispatched.
//!
//! The arithmetic (FBGEMM's, byte for byte) is documented on
//! [`crate::reference::quantize`] and [`crate::reference::dequantize`].

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
