//! Wrapping i64 GEMM: strided views, their validation and the dispatched operation.

use crate::error::{Error, Result, checked_add, checked_mul};
use crate::isa::Isa;
use crate::registry::{self, Kernel, Op};

/// A strided read-only view of a matrix of i64: element (r, c) is
/// `data[r · row_stride + c · col_stride]`. A transposed matrix is the same data with the
/// strides swapped.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    /// The elements.
    pub data: &'a [i64],
    /// Distance between consecutive rows.
    pub row_stride: usize,
    /// Distance between consecutive columns.
    pub col_stride: usize,
}

/// A strided mutable view of a matrix of i64, as [`MatRef`].
#[derive(Debug)]
pub struct MatMut<'a> {
    /// The elements.
    pub data: &'a mut [i64],
    /// Distance between consecutive rows.
    pub row_stride: usize,
    /// Distance between consecutive columns.
    pub col_stride: usize,
}

/// Elements a strided `rows × cols` view reaches: one past its last element's position.
pub(crate) fn view_extent(
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
    what: &'static str,
) -> Result<usize> {
    if rows == 0 || cols == 0 {
        return Ok(0);
    }
    let last = checked_add(
        checked_mul(rows - 1, row_stride, what)?,
        checked_mul(cols - 1, col_stride, what)?,
        what,
    )?;
    checked_add(last, 1, what)
}

/// Checks the views of an i64 GEMM: each reaches only its slice, and no two elements of C
/// share a memory position (which would make the result depend on the order of writes).
pub(crate) fn validate_i64(
    m: usize,
    n: usize,
    k: usize,
    a: &MatRef<'_>,
    b: &MatRef<'_>,
    c: &MatMut<'_>,
) -> Result<()> {
    for (what, rows, cols, rs, cs, len) in [
        ("A", m, k, a.row_stride, a.col_stride, a.data.len()),
        ("B", k, n, b.row_stride, b.col_stride, b.data.len()),
        ("C", m, n, c.row_stride, c.col_stride, c.data.len()),
    ] {
        let needed = view_extent(rows, cols, rs, cs, what)?;
        if len < needed {
            return Err(if what == "C" {
                Error::OutputTooSmall {
                    what,
                    needed,
                    got: len,
                }
            } else {
                Error::InputTooSmall {
                    what,
                    needed,
                    got: len,
                }
            });
        }
    }
    if !view_is_injective(m, n, c.row_stride, c.col_stride) {
        return Err(Error::bad_parameter(
            "C strides",
            format!(
                "row stride {} and column stride {} map two elements of the {m} × {n} result to one position",
                c.row_stride, c.col_stride
            ),
        ));
    }
    Ok(())
}

/// Whether `(r, c) ↦ r · rs + c · cs` is one-to-one on `rows × cols`. Sufficient and
/// necessary for the layouts people use: the smaller stride's dimension must fit inside
/// one step of the larger stride.
fn view_is_injective(rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    // An empty view (any strides) or a single element has no two elements to collide.
    if rows == 0 || cols == 0 || (rows == 1 && cols == 1) {
        return true;
    }
    if rows <= 1 {
        return cs > 0;
    }
    if cols <= 1 {
        return rs > 0;
    }
    let (small, small_n, big) = if cs <= rs {
        (cs, cols, rs)
    } else {
        (rs, rows, cs)
    };
    small > 0
        && (small_n - 1)
            .checked_mul(small)
            .is_some_and(|span| span < big)
}

/// `C = A·B` (or `C += A·B` when `accumulate`), wrapping mod 2^64, with A `m × k`, B `k × n`
/// and C `m × n` as strided views, on `isa` (or the automatic level when `None`).
/// Bit-identical to [`crate::reference::gemm_i64`] on every level.
#[allow(clippy::too_many_arguments)]
pub fn gemm_i64(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_>,
    b: MatRef<'_>,
    mut c: MatMut<'_>,
    accumulate: bool,
    isa: Option<Isa>,
) -> Result<()> {
    validate_i64(m, n, k, &a, &b, &c)?;
    let level = Isa::choose(isa)?;
    let entry = registry::select(Op::GemmI64, n, level);
    let Kernel::GemmI64(kernel) = entry.kernel else {
        unreachable!("registry entries for i64 GEMM hold i64 GEMM kernels")
    };
    registry::record(entry);
    // SAFETY: `validate_i64` checked that every view stays inside its slice and that C's
    // view is one-to-one.
    unsafe { kernel(m, n, k, &a, &b, &mut c, accumulate) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injectivity() {
        assert!(view_is_injective(3, 4, 4, 1));
        assert!(view_is_injective(3, 4, 1, 3));
        assert!(!view_is_injective(3, 4, 3, 1));
        assert!(!view_is_injective(3, 4, 0, 1));
        assert!(view_is_injective(1, 4, 0, 1));
        assert!(!view_is_injective(1, 4, 7, 0));
        assert!(view_is_injective(1, 1, 0, 0));
        assert!(view_is_injective(5, 0, 0, 1));
        assert!(view_is_injective(0, 5, 1, 0));
    }

    #[test]
    fn extents() {
        assert_eq!(view_extent(3, 4, 4, 1, "x").unwrap(), 12);
        assert_eq!(view_extent(3, 4, 1, 3, "x").unwrap(), 12);
        assert_eq!(view_extent(0, 4, 1, 3, "x").unwrap(), 0);
        assert!(view_extent(3, 4, usize::MAX, 1, "x").is_err());
    }
}
