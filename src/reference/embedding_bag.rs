//! The reference embedding bag (FBGEMM's `SparseLengthsSum` family).

use crate::embedding::{Bags, Output, Pooling, check_output};
use crate::error::{Error, Result};
use crate::format::{Format, Table, read_bf16, read_code, read_f16, read_f32};

/// Sums (or averages) each bag of `bags` over `table` into `out`: the result of bag `b` is
/// `dim` elements at `out[b · out_stride..]`. This is the specification every embedding-bag
/// kernel reproduces bit for bit.
///
/// # Arithmetic
///
/// For each bag, one f32 accumulator per output element starts at +0.0 and takes the bag's
/// entries in index order. Entry `i` at position `j` of the bag has weight `w`: `weights[i]`
/// for per-index weights, `weights[j]` for positional weights, none when unweighted.
///
/// - **f32, f16, bf16 rows**: the element `x` is converted exactly to f32, then
///   weighted: `acc = w.mul_add(x, acc)` (one rounding), unweighted: `acc = acc + x`.
/// - **Q8, Q4, Q2 rows**: the row's scale and bias (f32 for Q8, f16 converted exactly for
///   Q4 and Q2) are first multiplied by the weight, `s = w · scale` and `b = w · bias` (one
///   f32 multiply each; `w = 1` when unweighted, which is exact), then for each code `q`:
///   `acc = s.mul_add(q, acc + b)`: the bias is added first (one rounding), then one fused
///   multiply-add. Note that this is *not* the sum of dequantized rows.
/// - **Mean**: after the bag, if it has `len > 0` entries, `acc = acc · (1 / len)`, the
///   reciprocal rounded to f32 first, then one multiply. An empty bag gives zeros (+0.0)
///   with either pooling.
/// - **Output**: f32 as is; f16 and bf16 rounded to nearest, ties to even; a NaN stays NaN.
///
/// This is FBGEMM's arithmetic step for step (its scalar models `EmbeddingSpMDM_ref` and
/// `EmbeddingSpMDMNBit_ref` in `src/RefImplementations.cc`, which its JIT kernels match bit
/// for bit), so results are bit-identical to FBGEMM's for the same table, indices and
/// weights. One deliberate difference: FBGEMM rounds a bf16 output by adding `0x8000` to
/// the f32 bits and truncating (ties away from zero, and a NaN may turn into an infinity or
/// a zero); lowp rounds ties to even and keeps NaN, as PyTorch's conversion does.
///
/// # Errors
///
/// - [`Error::BadParameter`] (`out_stride`) if `out_stride < dim`, and
///   [`Error::OutputTooSmall`] if `out` holds fewer than `(bags − 1) · out_stride + dim`
///   elements; both are checked before anything is written.
/// - [`Error::IndexOutOfRange`] naming the bag (numbered from 0 within this call), the
///   position inside it and the index, for an index that is negative or not below
///   `table.rows()`. Indices are checked while the bags are summed, as FBGEMM does: the
///   bags before the failing one hold their results; the failing bag's output row and
///   every later one are unspecified.
///
/// Elements of `out` between rows (when `out_stride > dim`) and past the last row are never
/// written.
pub fn embedding_bag(
    table: &Table<'_>,
    bags: &Bags<'_>,
    pooling: Pooling,
    out: &mut Output<'_>,
    out_stride: usize,
) -> Result<()> {
    check_output(bags.len(), table.dim(), out.len(), out_stride)?;
    let indices = bags.indices();
    let mut acc = vec![0.0f32; table.dim()];
    for (bag, range) in bags.ranges().enumerate() {
        acc.fill(0.0);
        let len = range.len();
        for (position, i) in range.enumerate() {
            let index = indices.get(i);
            let row = match usize::try_from(index) {
                Ok(row) if row < table.rows() => row,
                _ => {
                    return Err(Error::IndexOutOfRange {
                        bag,
                        position,
                        index,
                        rows: table.rows(),
                    });
                }
            };
            add_row(&mut acc, table, row, bags.weight(i, position));
        }
        if pooling == Pooling::Mean && len > 0 {
            let scale = 1.0 / len as f32;
            for a in &mut acc {
                *a *= scale;
            }
        }
        out.store(bag * out_stride, &acc);
    }
    Ok(())
}

/// Adds row `row` of `table`, times `weight` (1 when `None`), into `acc` in FBGEMM's order.
pub(crate) fn add_row(acc: &mut [f32], table: &Table<'_>, row: usize, weight: Option<f32>) {
    let bytes = table.row(row);
    match table.format() {
        Format::F32 => add_float(acc, weight, |e| read_f32(bytes, 4 * e)),
        Format::F16 => add_float(acc, weight, |e| read_f16(bytes, 2 * e)),
        Format::Bf16 => add_float(acc, weight, |e| read_bf16(bytes, 2 * e)),
        format @ (Format::Q8 | Format::Q4 | Format::Q2) => {
            // Scale then bias close the row: f32 for Q8, f16 for the packed formats.
            let at = bytes.len() - format.scale_bias_bytes();
            let (scale, bias) = if format == Format::Q8 {
                (read_f32(bytes, at), read_f32(bytes, at + 4))
            } else {
                (read_f16(bytes, at), read_f16(bytes, at + 2))
            };
            let bits = format
                .code_bits()
                .expect("quantized formats have code bits");
            add_quantized(acc, weight, bytes, bits, scale, bias);
        }
    }
}

/// `acc[e] += weight · x(e)` with one rounding when weighted, a plain add when not.
fn add_float(acc: &mut [f32], weight: Option<f32>, x: impl Fn(usize) -> f32) {
    match weight {
        None => {
            for (e, a) in acc.iter_mut().enumerate() {
                *a += x(e);
            }
        }
        Some(w) => {
            for (e, a) in acc.iter_mut().enumerate() {
                *a = w.mul_add(x(e), *a);
            }
        }
    }
}

/// `acc[e] = (w · scale).mul_add(q[e], acc[e] + w · bias)` over the `bits`-bit codes.
fn add_quantized(
    acc: &mut [f32],
    weight: Option<f32>,
    codes: &[u8],
    bits: u32,
    scale: f32,
    bias: f32,
) {
    let w = weight.unwrap_or(1.0);
    let (s, b) = (w * scale, w * bias);
    for (e, a) in acc.iter_mut().enumerate() {
        let q = f32::from(read_code(codes, bits, e));
        *a = s.mul_add(q, *a + b);
    }
}
