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
///
/// # Aliasing
///
/// C never overlaps A or B here: C's `&mut [i64]` and the `&[i64]` of A and B cannot alias
/// under Rust's borrow rules, so safe code cannot even express the call (it does not
/// compile). Code that builds the slices from raw pointers (the C ABI) must rule the
/// overlap out before building them, with [`ranges_overlap`]; debug builds check it again.
///
/// # Errors
///
/// [`Error::InputTooSmall`] (A or B) or [`Error::OutputTooSmall`] (C) when a view reaches
/// past its slice, [`Error::SizeOverflow`] when a view's extent overflows `usize`,
/// [`Error::BadParameter`] when C's strides map two elements to one position, and the
/// errors of [`Isa::choose`].
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
    debug_assert!(
        !ranges_overlap(c.data, a.data) && !ranges_overlap(c.data, b.data),
        "C's slice overlaps A's or B's: only unsafe code can build such slices"
    );
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

/// Whether `a` and `b` share at least one byte. Empty slices share none, wherever they
/// point. The C ABI calls this on the buffers it was given (as slices of their claimed
/// lengths, before turning them into real slices) to turn an aliasing C into an error.
pub(crate) fn ranges_overlap<T, U>(a: *const [T], b: *const [U]) -> bool {
    let bytes = |start: *const u8, len: usize, size: usize| {
        let start = start as usize;
        (start, start.saturating_add(len.saturating_mul(size)))
    };
    let (a_start, a_end) = bytes(a.cast(), a.len(), size_of::<T>());
    let (b_start, b_end) = bytes(b.cast(), b.len(), size_of::<U>());
    a_start < a_end && b_start < b_end && a_start < b_end && b_start < a_end
}

/// How a CBLAS-style operand is stored (FBGEMM's `matrix_op_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatrixOp {
    /// Stored as used: A as `m × k` rows, B as `k × n` rows.
    NoTranspose,
    /// Stored transposed: A as `k × m` rows, B as `n × k` rows.
    Transpose,
}

/// The CBLAS-style form of [`gemm_i64`], as FBGEMM's `cblas_gemm_i64_i64acc`
/// (`include/fbgemm/FbgemmI64.h`), row-major: `C = op(A)·op(B)`, or `C += op(A)·op(B)` when
/// `accumulate`, wrapping mod 2^64, with `op(A)` `m × k`, `op(B)` `k × n` and C `m × n`.
///
/// Each operand is stored row-major with its own leading dimension (the distance between
/// stored rows): A is `m × k` with `lda ≥ k` (`k × m` with `lda ≥ m` when `transa` is
/// [`MatrixOp::Transpose`]), B is `k × n` with `ldb ≥ n` (`n × k` with `ldb ≥ k` when
/// transposed), C is `m × n` with `ldc ≥ n`; as in CBLAS, no leading dimension is 0. A
/// slice needs `(rows − 1) · ld + row width` elements (none for an empty matrix);
/// elements between stored rows are never read, nor, in C, written. The operands become
/// strided views (a transposed operand is not copied) and the call goes to [`gemm_i64`],
/// on `isa` or the automatic level when `None`; bit-identical to the reference on every
/// level.
///
/// C cannot alias A or B, as for [`gemm_i64`].
///
/// # Errors
///
/// [`Error::BadParameter`] naming `lda`, `ldb` or `ldc` when it is smaller than its
/// operand's stored row width (or 0); then the errors of [`gemm_i64`]:
/// [`Error::InputTooSmall`] / [`Error::OutputTooSmall`] naming the operand whose slice is
/// shorter than its shape needs, [`Error::SizeOverflow`] when that size overflows `usize`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_i64_cblas(
    transa: MatrixOp,
    transb: MatrixOp,
    m: usize,
    n: usize,
    k: usize,
    a: &[i64],
    lda: usize,
    b: &[i64],
    ldb: usize,
    accumulate: bool,
    c: &mut [i64],
    ldc: usize,
    isa: Option<Isa>,
) -> Result<()> {
    let a = cblas_operand(a, transa, m, k, lda, "lda", "A")?;
    let b = cblas_operand(b, transb, k, n, ldb, "ldb", "B")?;
    check_leading_dim(ldc, n, "ldc", "C")?;
    let c = MatMut {
        data: c,
        row_stride: ldc,
        col_stride: 1,
    };
    gemm_i64(m, n, k, a, b, c, accumulate, isa)
}

/// The `rows × cols` view of a CBLAS operand stored row-major (transposed if `op` says so)
/// with leading dimension `ld`, after checking `ld` against the stored row width.
fn cblas_operand<'a>(
    data: &'a [i64],
    op: MatrixOp,
    rows: usize,
    cols: usize,
    ld: usize,
    ld_name: &'static str,
    what: &str,
) -> Result<MatRef<'a>> {
    let (row_stride, col_stride, width) = match op {
        MatrixOp::NoTranspose => (ld, 1, cols),
        MatrixOp::Transpose => (1, ld, rows),
    };
    let stored = match op {
        MatrixOp::NoTranspose => what.to_owned(),
        MatrixOp::Transpose => format!("{what} (transposed)"),
    };
    check_leading_dim(ld, width, ld_name, &stored)?;
    Ok(MatRef {
        data,
        row_stride,
        col_stride,
    })
}

/// CBLAS's rule: a leading dimension is at least the stored row width, and at least 1.
fn check_leading_dim(ld: usize, width: usize, name: &'static str, stored: &str) -> Result<()> {
    if ld >= width.max(1) {
        Ok(())
    } else {
        Err(Error::bad_parameter(
            name,
            format!("{ld} is smaller than max(1, {width}), the row width of {stored} as stored"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap() {
        let v = [0i64; 8];
        assert!(ranges_overlap(&v[..4], &v[3..]));
        assert!(!ranges_overlap(&v[..4], &v[4..]));
        assert!(!ranges_overlap(&v[4..], &v[..4]));
        assert!(ranges_overlap(&v[2..3], &v[..]));
        // Empty ranges never overlap, even inside another range.
        assert!(!ranges_overlap(&v[2..2], &v[..]));
        assert!(!ranges_overlap(&v[..], &v[5..5]));
        // Different element types: bytes decide.
        let bytes: *const [u8] = std::ptr::slice_from_raw_parts(v.as_ptr().cast::<u8>(), 9);
        assert!(ranges_overlap(bytes, &v[1..2]));
        assert!(!ranges_overlap(bytes, &v[2..3]));
        // Lengths whose byte size overflows saturate rather than wrap.
        let huge: *const [i64] = std::ptr::slice_from_raw_parts(v.as_ptr(), usize::MAX);
        assert!(ranges_overlap(huge, &v[7..]));
    }

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
