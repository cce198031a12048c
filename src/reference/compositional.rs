//! The reference compositional embedding bag.

use crate::compositional::{Combine, CompositionalTable, Scheme};
use crate::embedding::{Bags, Output, Pooling, check_output};
use crate::error::{Error, Result};
use crate::format::{Format, Table, read_bf16, read_code, read_f16, read_f32};

/// Pools each bag of `bags` over the virtual rows of the compositional `table` into `out`:
/// the result of bag `b` is `table.dim()` elements at `out[b · out_stride..]`. This is the
/// specification every compositional-bag kernel reproduces bit for bit.
///
/// # Arithmetic
///
/// Index `i` maps to one row per component as its [`Scheme`] says (computed here with plain
/// integer division). Each component element is converted to f32: exactly for f32, f16 and
/// bf16 rows, and as `scale.mul_add(q, bias)` (one rounding, as
/// [`dequantize`](crate::reference::dequantize) does) for Q8, Q4 and Q2 rows. The virtual
/// row element `v` is then, in component order, `((x_0 · x_1) · x_2) · x_3` for
/// [`Combine::Product`], `((x_0 + x_1) + x_2) + x_3` for [`Combine::Sum`] (each step one f32
/// rounding), and the components' elements side by side for [`Combine::Concat`].
///
/// `v` is then pooled exactly like an f32 row of a plain bag
/// ([`embedding_bag`](crate::reference::embedding_bag)): from +0.0 in index order,
/// `acc = w.mul_add(v, acc)` weighted, `acc + v` unweighted, one multiply by the f32
/// reciprocal of the length for Mean, f16 / bf16 output rounded to nearest even.
///
/// # Errors
///
/// As [`embedding_bag`](crate::reference::embedding_bag)'s, with [`Error::IndexOutOfRange`]
/// naming the virtual rows for an index that is negative or not below them.
pub fn compositional_bag(
    table: &CompositionalTable<'_>,
    bags: &Bags<'_>,
    pooling: Pooling,
    out: &mut Output<'_>,
    out_stride: usize,
) -> Result<()> {
    check_output(bags.len(), table.dim(), out.len(), out_stride)?;
    let indices = bags.indices();
    let components: Vec<&Table<'_>> = table.components().collect();
    let mut acc = vec![0.0f32; table.dim()];
    let mut v = vec![0.0f32; table.dim()];
    for (bag, range) in bags.ranges().enumerate() {
        acc.fill(0.0);
        let len = range.len();
        for (position, i) in range.enumerate() {
            let index = indices.get(i);
            let rows = match u64::try_from(index) {
                Ok(i) if i < table.virtual_rows() as u64 => component_rows(table.scheme(), i),
                _ => {
                    return Err(Error::IndexOutOfRange {
                        bag,
                        position,
                        index,
                        rows: table.virtual_rows(),
                    });
                }
            };
            virtual_row(&mut v, table.combine(), &components, &rows);
            let weight = bags.weight(i, position);
            for (a, &x) in acc.iter_mut().zip(&v) {
                *a = match weight {
                    Some(w) => w.mul_add(x, *a),
                    None => *a + x,
                };
            }
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

/// The rows of index `i` in each component, by the scheme's definition.
fn component_rows(scheme: &Scheme, i: u64) -> Vec<usize> {
    let rows = match scheme {
        &Scheme::QuotientRemainder { m } => vec![i / m as u64, i % m as u64],
        &Scheme::Hashing { m } => vec![i % m as u64],
        Scheme::ChineseRemainder(moduli) => moduli.iter().map(|&m| i % m as u64).collect(),
        Scheme::MixedRadix(radices) => {
            // Least significant digit last: peel digits from the end, the rest is the first.
            let mut rest = i;
            let mut digits = vec![0; radices.len()];
            for j in (1..radices.len()).rev() {
                digits[j] = rest % radices[j] as u64;
                rest /= radices[j] as u64;
            }
            digits[0] = rest;
            digits
        }
    };
    rows.into_iter().map(|r| r as usize).collect()
}

/// The virtual row made of row `rows[c]` of each component `c`.
fn virtual_row(v: &mut [f32], combine: Combine, components: &[&Table<'_>], rows: &[usize]) {
    let mut column = 0;
    for (c, (table, &row)) in components.iter().zip(rows).enumerate() {
        let dim = table.dim();
        for e in 0..dim {
            let x = element(table, row, e);
            match combine {
                Combine::Concat => v[column + e] = x,
                _ if c == 0 => v[e] = x,
                Combine::Product => v[e] *= x,
                Combine::Sum => v[e] += x,
            }
        }
        column += dim;
    }
}

/// Element `e` of row `row` of `table`, converted to f32.
fn element(table: &Table<'_>, row: usize, e: usize) -> f32 {
    let bytes = table.row(row);
    match table.format() {
        Format::F32 => read_f32(bytes, 4 * e),
        Format::F16 => read_f16(bytes, 2 * e),
        Format::Bf16 => read_bf16(bytes, 2 * e),
        format => {
            let at = bytes.len() - format.scale_bias_bytes();
            let (scale, bias) = if format == Format::Q8 {
                (read_f32(bytes, at), read_f32(bytes, at + 4))
            } else {
                (read_f16(bytes, at), read_f16(bytes, at + 2))
            };
            let bits = format.code_bits().expect("the other formats are quantized");
            scale.mul_add(f32::from(read_code(bytes, bits, e)), bias)
        }
    }
}
