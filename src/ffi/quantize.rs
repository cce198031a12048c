//! Row-wise quantizers and dequantizers from C: `lowp_quantize`, `lowp_dequantize`.

use super::embedding::float_type_from;
use super::{Failure, FfiResult, LowpStatus, format_from, guard, isa_from, slice_in, slice_out};
use crate::embedding::Output;
use crate::embedding::plan::OutputType;
use crate::format::Table;
use crate::quantize::{Clipping, QuantInput, dequantize, quantize, quantize_rows};

/// Quantizes `rows × dim` values into a table: see the header.
///
/// # Safety
///
/// `input` must hold `input_len` values of `input_type`, `out` `out_bytes` writable bytes
/// not overlapping `input` (or be NULL with a zero length).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn lowp_quantize(
    format: i32,
    input_type: i32,
    input: *const std::ffi::c_void,
    input_len: usize,
    rows: usize,
    dim: usize,
    out: *mut u8,
    out_bytes: usize,
    isa: i32,
) -> LowpStatus {
    guard("lowp_quantize", || {
        let format = format_from(format, "format")?;
        let isa = isa_from(isa, "isa")?;
        // SAFETY (both blocks): the caller guarantees the lengths; the helpers check NULL,
        // alignment and the byte size.
        let input = unsafe { quant_input(input_type, input, input_len) }?;
        let out = unsafe { slice_out(out, out_bytes, "out") }?;
        quantize(format, input, rows, dim, out, isa)?;
        Ok(())
    })
}

/// The values to quantize, of `lowp_float_type` `input_type`.
///
/// # Safety
///
/// As [`slice_in`] for the element type `input_type` names.
unsafe fn quant_input<'a>(
    input_type: i32,
    input: *const std::ffi::c_void,
    input_len: usize,
) -> FfiResult<QuantInput<'a>> {
    // SAFETY (both arms): forwarded from the caller.
    Ok(match float_type_from(input_type, "input_type")? {
        OutputType::F32 => QuantInput::F32(unsafe { slice_in(input.cast(), input_len, "input") }?),
        OutputType::F16 => QuantInput::F16(unsafe { slice_in(input.cast(), input_len, "input") }?),
        OutputType::Bf16 => {
            return Err(Failure::bad_parameter(
                "input_type",
                "the quantizers read f32 or f16 values, not bf16",
            ));
        }
    })
}

/// Quantizes rows `row_begin..row_end` of a table with the chosen clipping: see the header.
///
/// # Safety
///
/// As [`lowp_quantize`].
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn lowp_quantize_rows(
    format: i32,
    clipping: i32,
    input_type: i32,
    input: *const std::ffi::c_void,
    input_len: usize,
    dim: usize,
    row_begin: usize,
    row_end: usize,
    out: *mut u8,
    out_bytes: usize,
    isa: i32,
) -> LowpStatus {
    guard("lowp_quantize_rows", || {
        let format = format_from(format, "format")?;
        let clipping = match clipping {
            0 => Clipping::MinMax,
            1 => Clipping::Greedy,
            other => {
                return Err(Failure::bad_parameter(
                    "clipping",
                    format!("{other} is not a lowp_clipping value"),
                ));
            }
        };
        let isa = isa_from(isa, "isa")?;
        // SAFETY (both): the caller guarantees the lengths; the helpers check NULL,
        // alignment and the byte size.
        let input = unsafe { quant_input(input_type, input, input_len) }?;
        let out = unsafe { slice_out(out, out_bytes, "out") }?;
        quantize_rows(format, clipping, input, dim, row_begin..row_end, out, isa)?;
        Ok(())
    })
}

/// Dequantizes a table into `rows × dim` values: see the header.
///
/// # Safety
///
/// `table` must hold `table_bytes` bytes, `out` `out_len` writable values of `out_type`
/// not overlapping `table` (or be NULL with a zero length).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn lowp_dequantize(
    format: i32,
    table: *const u8,
    table_bytes: usize,
    rows: usize,
    dim: usize,
    out_type: i32,
    out: *mut std::ffi::c_void,
    out_len: usize,
    isa: i32,
) -> LowpStatus {
    guard("lowp_dequantize", || {
        let format = format_from(format, "format")?;
        let isa = isa_from(isa, "isa")?;
        // SAFETY (all blocks): the caller guarantees the lengths; the helpers check NULL,
        // alignment and the byte size.
        let table = Table::new(format, rows, dim, unsafe {
            slice_in(table, table_bytes, "table")
        }?)?;
        let out = unsafe {
            match float_type_from(out_type, "out_type")? {
                OutputType::F32 => Output::F32(slice_out(out.cast(), out_len, "out")?),
                OutputType::F16 => Output::F16(slice_out(out.cast(), out_len, "out")?),
                OutputType::Bf16 => Output::Bf16(slice_out(out.cast(), out_len, "out")?),
            }
        };
        dequantize(&table, out, isa)?;
        Ok(())
    })
}
