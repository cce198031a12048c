//! The reference embedding bag and dequantizer over outlier-aware tables.

use crate::embedding::{Bags, Output, Pooling, check_output};
use crate::error::{Error, Result};
use crate::format::Table;
use crate::outlier::OutlierTable;
use crate::quantize::check_dequantize;
use crate::reference::embedding_bag::add_row;

/// Sums (or averages) each bag of `bags` over the outlier table `table` into `out`, the
/// result of bag `b` at `out[b · out_stride..]`. The specification every outlier kernel
/// reproduces bit for bit.
///
/// # Arithmetic
///
/// Per bag, two f32 accumulators per output element start at +0.0 and take the bag's
/// entries in index order, entry `i` at position `j` with weight `w` (as for
/// [`crate::reference::embedding_bag`]):
///
/// - the **dense** accumulator takes the entry's dense row exactly as the plain quantized
///   bag does (`s = w · scale`, `b = w · bias`, `acc = s.mul_add(q, acc + b)`), so it holds
///   bit for bit what [`crate::reference::embedding_bag`] sums over [`OutlierTable::dense`];
/// - the **sparse** accumulator takes the row's outliers in increasing column order, as
///   float rows are taken: unweighted `sparse[c] = sparse[c] + r`, weighted
///   `sparse[c] = w.mul_add(r, sparse[c])`, with `r` the residual converted exactly to f32.
///
/// After the bag, `acc = dense + sparse` (one add per element), then Mean multiplies by the
/// f32 reciprocal of the length (when the bag is not empty), and the output type rounds to
/// nearest even. Keeping the sparse sums apart lets a kernel keep the dense accumulators in
/// registers while it adds outliers to scattered columns. A table without outliers gives
/// exactly the plain bag of its dense part: a dense sum is never −0.0 (it starts at +0.0,
/// and a sum of nonzero terms that cancels is +0.0), so adding +0.0 changes no bit.
///
/// # Errors
///
/// Those of [`crate::reference::embedding_bag`], for the same conditions.
pub fn embedding_bag_outlier(
    table: &OutlierTable<'_>,
    bags: &Bags<'_>,
    pooling: Pooling,
    out: &mut Output<'_>,
    out_stride: usize,
) -> Result<()> {
    check_output(bags.len(), table.dim(), out.len(), out_stride)?;
    let dense_table = table.dense();
    let indices = bags.indices();
    let mut dense = vec![0.0f32; table.dim()];
    let mut sparse = vec![0.0f32; table.dim()];
    for (bag, range) in bags.ranges().enumerate() {
        dense.fill(0.0);
        sparse.fill(0.0);
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
            let weight = bags.weight(i, position);
            add_row(&mut dense, &dense_table, row, weight);
            for entry in table.entries(row) {
                let (c, r) = (table.column(entry), table.residual(entry));
                sparse[c] = match weight {
                    None => sparse[c] + r,
                    Some(w) => w.mul_add(r, sparse[c]),
                };
            }
        }
        for (d, s) in dense.iter_mut().zip(&sparse) {
            *d += s;
        }
        if pooling == Pooling::Mean && len > 0 {
            let scale = 1.0 / len as f32;
            for d in &mut dense {
                *d *= scale;
            }
        }
        out.store(bag * out_stride, &dense);
    }
    Ok(())
}

/// Dequantizes every row of `table` into `out` (`rows × dim` values, row-major): each
/// element is its dense value, `scale · q + bias` as [`crate::reference::dequantize`]
/// computes it, plus its residual (one f32 add) when it is an outlier, converted to the
/// output type.
pub fn dequantize_outlier(table: &OutlierTable<'_>, out: &mut Output<'_>) -> Result<()> {
    let dense_table = table.dense();
    check_dequantize(&dense_table, out.len())?;
    let dim = table.dim();
    let mut values = vec![0.0f32; dim];
    for r in 0..table.rows() {
        let row = Table::new(table.format(), 1, dim, dense_table.row(r))?;
        crate::reference::dequantize(&row, &mut Output::F32(&mut values))?;
        for entry in table.entries(r) {
            values[table.column(entry)] += table.residual(entry);
        }
        out.store(r * dim, &values);
    }
    Ok(())
}
