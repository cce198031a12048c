//! Row-wise quantizers and dequantizers from C: `lowp_quantize`, `lowp_dequantize`.

use super::embedding::float_type_from;
use super::{Failure, LowpStatus, format_from, guard, isa_from, slice_in, slice_out};
use crate::embedding::Output;
use crate::embedding::plan::OutputType;
use crate::format::Table;
use crate::quantize::{QuantInput, dequantize, quantize};

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
        let input = match float_type_from(input_type, "input_type")? {
            OutputType::F32 => {
                QuantInput::F32(unsafe { slice_in(input.cast(), input_len, "input") }?)
            }
            OutputType::F16 => {
                QuantInput::F16(unsafe { slice_in(input.cast(), input_len, "input") }?)
            }
            OutputType::Bf16 => {
                return Err(Failure::bad_parameter(
                    "input_type",
                    "the quantizers read f32 or f16 values, not bf16",
                ));
            }
        };
        let out = unsafe { slice_out(out, out_bytes, "out") }?;
        quantize(format, input, rows, dim, out, isa)?;
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
