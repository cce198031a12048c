//! Row-wise quantizers and dequantizers, byte-compatible with FBGEMM.
//!
//! The steps are those of FBGEMM's reference functions in `src/QuantUtils.cc`
//! (`FloatOrHalfToFused8BitRowwiseQuantizedSBFloatRef`,
//! `FloatOrHalfToFusedNBitRowwiseQuantizedSBHalfRef` and the two `...ToFloatOrHalfRef`
//! dequantizers), checked against FBGEMM's own outputs in the golden tests. Every
//! operation is in f32 (FBGEMM uses no double here); f16 conversions round to nearest even.

use half::f16;

use crate::embedding::Output;
use crate::error::{Error, Result};
use crate::format::{Format, Table, read_code, read_f16, read_f32};
use crate::quantize::{QuantInput, check_dequantize, check_quantize};

/// Quantizes `rows × dim` values (row-major, the first `rows · dim` of `input`) into `out`,
/// which must hold exactly `format.table_bytes(rows, dim)` bytes, in FBGEMM's fused
/// row-wise layouts ([`Format::Q8`], [`Format::Q4`], [`Format::Q2`]).
///
/// f16 input is converted exactly to f32 first, so it gives the same bytes as f32 input of
/// the same values. Per row, with `min` and `max` the row's first minimal and first maximal
/// elements (as `std::min_element` / `std::max_element` pick them), all in f32:
///
/// **Q8** (FBGEMM's `FloatOrHalfToFused8BitRowwiseQuantizedSBFloatRef`):
/// 1. `range = max − min`; stored scale `range / 255`, stored bias `min` (both f32).
/// 2. `inv = 255 / (range + 1e-8)`: deliberately not the reciprocal of the stored scale.
/// 3. `q = round_half_even((x − min) · inv)`, with no clamp. None is needed: `x − min ≤
///    range ≤ range + 1e-8` after rounding, so the product is at most `255·(1 + 2⁻²⁴)²`
///    and rounds to at most 255. (FBGEMM's integer conversion of an out-of-range code would
///    depend on its code path: `lrintf` then truncation to `uint8_t` in its scalar code,
///    saturating packs in its 32-column AVX2 blocks, a byte shuffle in its 8-column blocks.
///    It never happens for a finite range.)
///
/// A constant row stores scale 0 and codes 0.
///
/// **Q4 / Q2** (FBGEMM's `FloatOrHalfToFusedNBitRowwiseQuantizedSBHalfRef`), with
/// `levels = 2^bits − 1`:
/// 1. `bias16 = f16(min)`; `min' = f32(bias16)`: the rounded bias is used from here on (max is
///    not rounded).
/// 2. `range = max − min'`; `scale = range == 0 ? 1 : range / levels`; `scale =
///    f32(f16(scale))`; if that is 0, `scale = 1`.
/// 3. `inv = 1 / scale`; if `inv` is infinite, `scale = inv = 1`.
/// 4. `q = clamp(round_half_even((x − min') · inv), 0, levels)`, packed lowest bits first.
/// 5. Stored: `f16(scale)`, then `bias16`.
///
/// When `f16(min)` rounds above `max`, the range and the scale are negative and codes count
/// down: a constant row of 1000.3 stores bias 1000.5, scale −0.013336 and codes 15, which
/// decode to 1000.3 within half a step. FBGEMM does the same; lowp reproduces it.
///
/// # Deliberate differences from FBGEMM
/// - An n-bit row whose bias or scale is infinite in f16 (a minimum beyond ±65504 after
///   rounding, or a range too wide for the scale) is an [`Error::UnrepresentableRow`]
///   naming the row; FBGEMM stores the infinity and the row dequantizes to NaN.
/// - A Q8 row whose range overflows f32 (e.g. −3e38 and 3e38) is the same error; FBGEMM
///   would store an infinite scale and round NaN codes with `lrintf`, whose result C
///   leaves unspecified.
/// - A NaN or infinite input value is the same error, naming the row and the column:
///   FBGEMM's min/max then depend on the position of the NaN, or yield the cases above.
/// - For `dim == 0` FBGEMM writes nothing; lowp writes the scale and bias of a constant
///   zero row (Q8: scale 0, bias 0; Q4/Q2: scale 1, bias 0), so the output is defined.
/// - FBGEMM's AVX2 quantizers take the min and max with `vminps`/`vmaxps`, which may pick
///   the other sign of zero when a row's minimum is both +0 and −0; lowp follows the
///   reference functions (the first one in the row).
///
/// On error the content of `out` is unspecified.
pub fn quantize(
    format: Format,
    input: QuantInput<'_>,
    rows: usize,
    dim: usize,
    out: &mut [u8],
) -> Result<()> {
    check_quantize(format, input.len(), rows, dim, out.len())?;
    let bits = format
        .code_bits()
        .expect("check_quantize accepts only quantized formats");
    let row_bytes = format.row_bytes(dim)?;
    let mut values = vec![0.0f32; dim];
    for (row, out_row) in out.chunks_exact_mut(row_bytes).enumerate() {
        for (col, v) in values.iter_mut().enumerate() {
            *v = input.get(row * dim + col);
        }
        let quantized = if bits == 8 {
            quantize_row_q8(&values, out_row)
        } else {
            quantize_row_nbit(&values, bits, out_row)
        };
        quantized.map_err(|reason| Error::UnrepresentableRow { row, reason })?;
    }
    Ok(())
}

/// Dequantizes every row of the quantized `table` into `out`: `rows × dim` values,
/// row-major, row `r` at element `r · dim`, converted to the output type (f16 and bf16
/// round to nearest even).
///
/// Each value is `scale · q + bias` as one fused multiply-add in f32 (`mul_add`, a single
/// rounding). FBGEMM's source (`Fused8BitRowwiseQuantizedSBFloatToFloatOrHalfRef` and
/// `FusedNBitRowwiseQuantizedSBHalfToFloatOrHalfRef` in `src/QuantUtils.cc`, and its AVX2
/// 8-bit dequantizer) writes a multiply then an add, but its build contracts them (GCC
/// fuses by default where FMA is enabled), and its AVX2 n-bit dequantizer calls
/// `_mm256_fmadd_ps` outright. The golden data settles it: an unfused multiply-add differs
/// from FBGEMM's 8-bit output in 690 of 2368 values at dim 37 and 137 of 512 at dim 8; the
/// fused one matches them all. For Q4/Q2 both agree anyway: an f16 scale (11 significant
/// bits) times a code of at most 4 bits is exact in f32. The f16 scale and bias of Q4/Q2
/// rows are converted exactly to f32 first.
///
/// lowp writes exactly `dim` values per row; FBGEMM's n-bit dequantizer takes its width
/// from the packed row (dim 37 at 4 bits gives 38 values, the last from a padding code).
pub fn dequantize(table: &Table<'_>, out: &mut Output<'_>) -> Result<()> {
    check_dequantize(table, out.len())?;
    let format = table.format();
    let bits = format
        .code_bits()
        .expect("check_dequantize accepts only quantized formats");
    let dim = table.dim();
    let at = format.data_bytes(dim)?;
    let mut values = vec![0.0f32; dim];
    for r in 0..table.rows() {
        let row = table.row(r);
        let (scale, bias) = if bits == 8 {
            (read_f32(row, at), read_f32(row, at + 4))
        } else {
            (read_f16(row, at), read_f16(row, at + 2))
        };
        for (e, v) in values.iter_mut().enumerate() {
            *v = scale.mul_add(f32::from(read_code(row, bits, e)), bias);
        }
        out.store(r * dim, &values);
    }
    Ok(())
}

/// The row's first minimal and first maximal elements; `(0, 0)` for an empty row.
fn min_max(values: &[f32]) -> (f32, f32) {
    let Some(&first) = values.first() else {
        return (0.0, 0.0);
    };
    values.iter().fold((first, first), |(lo, hi), &x| {
        (if x < lo { x } else { lo }, if x > hi { x } else { hi })
    })
}

/// Rejects a row holding NaN or an infinity, naming the first such column.
fn check_finite(values: &[f32]) -> std::result::Result<(), String> {
    match values.iter().position(|x| !x.is_finite()) {
        Some(col) => Err(format!("the value at column {col} is {}", values[col])),
        None => Ok(()),
    }
}

/// One Q8 row: `values.len()` codes, f32 scale, f32 bias (see [`quantize`]).
fn quantize_row_q8(values: &[f32], out: &mut [u8]) -> std::result::Result<(), String> {
    check_finite(values)?;
    let (min, max) = min_max(values);
    let range = max - min;
    if range.is_infinite() {
        return Err(format!(
            "its range {max} − ({min}) overflows f32, so the scale would be infinite"
        ));
    }
    let inv = 255.0f32 / (range + 1e-8f32);
    let (codes, scale_bias) = out.split_at_mut(values.len());
    for (code, &x) in codes.iter_mut().zip(values) {
        // In [0, 255] by construction (see `quantize`), so the cast never saturates.
        *code = ((x - min) * inv).round_ties_even() as u8;
    }
    scale_bias[..4].copy_from_slice(&(range / 255.0f32).to_le_bytes());
    scale_bias[4..].copy_from_slice(&min.to_le_bytes());
    Ok(())
}

/// One Q4 or Q2 row: packed codes, f16 scale, f16 bias (see [`quantize`]).
fn quantize_row_nbit(values: &[f32], bits: u32, out: &mut [u8]) -> std::result::Result<(), String> {
    check_finite(values)?;
    let (min, max) = min_max(values);
    let bias16 = f16::from_f32(min);
    if bias16.is_infinite() {
        return Err(format!(
            "its minimum {min} rounds to {bias16} in f16, so the bias cannot be stored"
        ));
    }
    let min = bias16.to_f32();
    let range = max - min;
    let levels = (1u32 << bits) - 1;
    let scale16 = f16::from_f32(if range == 0.0 {
        1.0
    } else {
        range / levels as f32
    });
    if scale16.is_infinite() {
        return Err(format!(
            "its range {range} / {levels} rounds to {scale16} in f16, so the scale cannot be stored"
        ));
    }
    let mut scale = scale16.to_f32();
    if scale == 0.0 {
        scale = 1.0;
    }
    let mut inv = 1.0f32 / scale;
    if inv.is_infinite() {
        scale = 1.0;
        inv = 1.0;
    }

    let per_byte = (8 / bits) as usize;
    let (codes, scale_bias) = out.split_at_mut(values.len().div_ceil(per_byte));
    codes.fill(0);
    for (e, &x) in values.iter().enumerate() {
        // FBGEMM clamps the integer from `lrintf`. The product is far inside i32 (|x − min'|
        // is at most the range or half an f16 ulp of min, and a nonzero range is at least
        // one f32 ulp of max), so the saturating cast changes nothing before the clamp.
        let q = (((x - min) * inv).round_ties_even() as i32).clamp(0, levels as i32) as u8;
        codes[e / per_byte] |= q << ((e % per_byte) as u32 * bits);
    }
    scale_bias[..2].copy_from_slice(&f16::from_f32(scale).to_le_bytes());
    scale_bias[2..].copy_from_slice(&bias16.to_le_bytes());
    Ok(())
}
