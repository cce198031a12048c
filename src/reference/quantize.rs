use crate::embedding::Output;
use crate::error::Result;
use crate::format::{Format, Table};
use crate::quantize::QuantInput;

/// Placeholder (being written).
pub fn quantize(
    _format: Format,
    _input: QuantInput<'_>,
    _rows: usize,
    _dim: usize,
    _out: &mut [u8],
) -> Result<()> {
    unimplemented!()
}

/// Placeholder (being written).
pub fn dequantize(_table: &Table<'_>, _out: &mut Output<'_>) -> Result<()> {
    unimplemented!()
}
