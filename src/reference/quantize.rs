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
        quantize_row(&values, bits, out_row)
            .map_err(|reason| Error::UnrepresentableRow { row, reason })?;
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
pub(crate) fn min_max(values: &[f32]) -> (f32, f32) {
    let Some(&first) = values.first() else {
        return (0.0, 0.0);
    };
    values.iter().fold((first, first), |(lo, hi), &x| {
        (if x < lo { x } else { lo }, if x > hi { x } else { hi })
    })
}

/// Rejects a row holding NaN or an infinity, naming the first such column.
pub(crate) fn check_finite(values: &[f32]) -> std::result::Result<(), String> {
    match values.iter().position(|x| !x.is_finite()) {
        Some(col) => Err(format!("the value at column {col} is {}", values[col])),
        None => Ok(()),
    }
}

/// What a row's codes are computed from, derived from its clipping range `[min, max]` by
/// [`row_params`]: `code(x) = clamp(round_half_even((x − offset) · inv), 0, levels)`, then
/// the scale and bias bytes stored after the codes. Shared by the reference, the vector
/// kernels (which compute the codes lane by lane with the same three f32 operations) and the
/// greedy quantizer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowParams {
    /// Code bits: 8, 4 or 2.
    pub bits: u32,
    /// Subtracted from each value: the f32 minimum (Q8) or the f16-rounded bias (Q4/Q2).
    pub offset: f32,
    /// Multiplies `x − offset`.
    pub inv: f32,
    /// The largest code, `2^bits − 1`.
    pub levels: u32,
    /// The stored scale and bias: 8 bytes (two f32) for Q8, the first 4 (two f16) for Q4/Q2.
    scale_bias: [u8; 8],
}

impl RowParams {
    /// The code of `x`.
    #[inline]
    pub(crate) fn code(&self, x: f32) -> u8 {
        let q = ((x - self.offset) * self.inv).round_ties_even();
        if self.bits == 8 {
            // In [0, 255] by construction (see `quantize`), so the cast never saturates.
            q as u8
        } else {
            // FBGEMM clamps the integer from `lrintf`. The product is far inside i32 (|x −
            // min'| is at most the range or half an f16 ulp of min, and a nonzero range is at
            // least one f32 ulp of max), so the saturating cast changes nothing before the
            // clamp. The greedy quantizer clips values outside its range here too.
            (q as i32).clamp(0, self.levels as i32) as u8
        }
    }

    /// The scale and bias bytes that follow the codes.
    #[inline(always)]
    pub(crate) fn scale_bias(&self) -> &[u8] {
        if self.bits == 8 {
            &self.scale_bias
        } else {
            &self.scale_bias[..4]
        }
    }

    /// The decoded value of code `q`, as every dequantizer computes it.
    fn decode(&self, q: u8) -> f32 {
        let (scale, bias) = if self.bits == 8 {
            (read_f32(&self.scale_bias, 0), read_f32(&self.scale_bias, 4))
        } else {
            (read_f16(&self.scale_bias, 0), read_f16(&self.scale_bias, 2))
        };
        scale.mul_add(f32::from(q), bias)
    }
}

/// The parameters of a row of `bits`-bit codes whose clipping range is `[min, max]` (see
/// [`quantize`] for the steps), or why the row cannot be stored.
///
/// Inlined, so that the vector quantizers compute it with their own instructions (F16C's
/// conversions where they have it) and keep the result in registers.
#[inline(always)]
pub(crate) fn row_params(bits: u32, min: f32, max: f32) -> std::result::Result<RowParams, String> {
    if bits == 8 {
        let range = max - min;
        if range.is_infinite() {
            return Err(format!(
                "its range {max} − ({min}) overflows f32, so the scale would be infinite"
            ));
        }
        let mut scale_bias = [0u8; 8];
        scale_bias[..4].copy_from_slice(&(range / 255.0f32).to_le_bytes());
        scale_bias[4..].copy_from_slice(&min.to_le_bytes());
        return Ok(RowParams {
            bits,
            offset: min,
            inv: 255.0f32 / (range + 1e-8f32),
            levels: 255,
            scale_bias,
        });
    }
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
    let mut scale_bias = [0u8; 8];
    scale_bias[..2].copy_from_slice(&f16::from_f32(scale).to_le_bytes());
    scale_bias[2..4].copy_from_slice(&bias16.to_le_bytes());
    Ok(RowParams {
        bits,
        offset: min,
        inv,
        levels,
        scale_bias,
    })
}

/// Writes the codes of `values` and the scale and bias of `params` into the row `out`.
pub(crate) fn write_row(values: &[f32], params: &RowParams, out: &mut [u8]) {
    let per_byte = (8 / params.bits) as usize;
    let (codes, scale_bias) = out.split_at_mut(values.len().div_ceil(per_byte));
    codes.fill(0);
    for (e, &x) in values.iter().enumerate() {
        codes[e / per_byte] |= params.code(x) << ((e % per_byte) as u32 * params.bits);
    }
    scale_bias.copy_from_slice(params.scale_bias());
}

/// One row with its min/max range: `values.len()` codes, then the scale and bias (see
/// [`quantize`]).
pub(crate) fn quantize_row(
    values: &[f32],
    bits: u32,
    out: &mut [u8],
) -> std::result::Result<(), String> {
    check_finite(values)?;
    let (min, max) = min_max(values);
    write_row(values, &row_params(bits, min, max)?, out);
    Ok(())
}

/// Steps the greedy search divides the row's range into (FBGEMM's `n_bins`).
const GREEDY_BINS: u32 = 200;
/// Steps the greedy search may take in all: it stops when the range has shrunk to half the
/// row's (FBGEMM's `ratio` parameter 0.5; its default 0.16 stops at 84%). On the MiniLM word
/// embeddings Q2 rows need the wider search: 0.16 lowers their RMSE by 18%, 0.5 by 40%
/// (Q4 gains 11% either way).
const GREEDY_STEPS: u32 = 100;

/// Squared error of `values` coded with `params` and decoded as a reader does.
fn squared_error(values: &[f32], params: &RowParams) -> f32 {
    values
        .iter()
        .map(|&x| {
            let e = x - params.decode(params.code(x));
            e * e
        })
        .sum()
}

/// The parameters and squared error of clipping range `[lo, hi]`, or `None` when that range
/// cannot be stored.
fn candidate(values: &[f32], bits: u32, lo: f32, hi: f32) -> Option<(RowParams, f32)> {
    let params = row_params(bits, lo, hi).ok()?;
    Some((params, squared_error(values, &params)))
}

/// A greedy search for the clipping range of one Q4/Q2 row, after FBGEMM's
/// `param_search_greedy`: the range `[min, max]` is cut into 200 steps; each round tries
/// raising the low end and lowering the high end by one step and moves the end whose move
/// gives the smaller squared error, for 100 rounds (until the range is half the row's).
/// Returns the parameters of the best range seen, the min/max range included.
///
/// The error of a candidate is measured exactly as readers will decode it: the f16-rounded
/// bias and scale and the dequantizers' fused multiply-add. Unlike FBGEMM, which keeps only
/// local optima and loops while `lo + 168·step < hi` (forever when `step` is below half an
/// f32 ulp of `lo`), this counts the rounds and keeps the best candidate seen.
pub(crate) fn greedy_params(values: &[f32], bits: u32) -> std::result::Result<RowParams, String> {
    let (min, max) = min_max(values);
    let first = row_params(bits, min, max)?;
    let mut best = (first, squared_error(values, &first));
    let step = (max - min) / GREEDY_BINS as f32;
    if step == 0.0 {
        return Ok(best.0);
    }
    let (mut raised, mut lowered) = (0u32, 0u32);
    for _ in 0..GREEDY_STEPS {
        let lo = |r: u32| min + r as f32 * step;
        let hi = |l: u32| max - l as f32 * step;
        let up = candidate(values, bits, lo(raised + 1), hi(lowered));
        let down = candidate(values, bits, lo(raised), hi(lowered + 1));
        let (next, moved_up) = match (up, down) {
            (Some(u), Some(d)) if u.1 < d.1 => (u, true),
            (_, Some(d)) => (d, false),
            (Some(u), None) => (u, true),
            (None, None) => break,
        };
        if moved_up {
            raised += 1;
        } else {
            lowered += 1;
        }
        if next.1 < best.1 {
            best = next;
        }
    }
    Ok(best.0)
}

/// Quantizes like [`quantize`] into the same [`Format::Q4`] or [`Format::Q2`] layout, but
/// each row's clipping range is chosen by a greedy search that lowers the row's squared
/// error (see `greedy_params`): values outside the range get the end codes. Every reader
/// decodes the result unchanged; rows where min/max is best come out exactly as
/// [`quantize`] writes them.
///
/// Errors as [`quantize`] does (NaN or infinite input, rows f16 cannot describe), and
/// [`Error::BadParameter`] for a format other than Q4 or Q2.
pub fn quantize_greedy(
    format: Format,
    input: QuantInput<'_>,
    rows: usize,
    dim: usize,
    out: &mut [u8],
) -> Result<()> {
    check_quantize(format, input.len(), rows, dim, out.len())?;
    let bits = match format {
        Format::Q4 | Format::Q2 => format.code_bits().expect("a quantized format"),
        _ => {
            return Err(Error::bad_parameter(
                "format",
                format!("the greedy quantizer writes Q4 or Q2 rows, not {format}"),
            ));
        }
    };
    let row_bytes = format.row_bytes(dim)?;
    let mut values = vec![0.0f32; dim];
    for (row, out_row) in out.chunks_exact_mut(row_bytes).enumerate() {
        for (col, v) in values.iter_mut().enumerate() {
            *v = input.get(row * dim + col);
        }
        check_finite(&values)
            .and_then(|()| greedy_params(&values, bits))
            .map(|params| write_row(&values, &params, out_row))
            .map_err(|reason| Error::UnrepresentableRow { row, reason })?;
    }
    Ok(())
}
