//! The wrapping i64 GEMM, as FBGEMM's `cblas_gemm_i64_i64acc` (`include/fbgemm/FbgemmI64.h`).

use crate::error::Result;
use crate::gemm::{MatMut, MatRef, validate_i64};

/// `C = A·B`, or `C = C + A·B` when `accumulate`, with every operation wrapping mod 2^64.
///
/// A is `m × k`, B is `k × n` and C is `m × n`, each a strided view (element (r, c) at
/// `r · row_stride + c · col_stride`), so a transposed operand is the same data with its
/// strides swapped: FBGEMM's `transa` / `lda` of `cblas_gemm_i64_i64acc` become
/// `(row_stride, col_stride) = (1, lda)` for a transposed A and `(lda, 1)` otherwise.
///
/// Each element is `C(i, j) = (accumulate ? C(i, j) : 0) + Σk A(i, k) · B(k, j)`, products
/// and sums wrapping, k ascending. Wrapping addition and multiplication are the ring
/// operations of the integers mod 2^64, so the order changes nothing; it is fixed anyway.
/// With `k = 0` the result is C unchanged (accumulating) or zeros. Elements of C's slice
/// that the view does not reach (padding between rows) are never read or written.
///
/// # Errors
///
/// The same checks, with the same errors, as [`crate::gemm_i64`]: each view must stay
/// inside its slice, the sizes must not overflow, and C's strides must not map two
/// elements to one position.
pub fn gemm_i64(
    m: usize,
    n: usize,
    k: usize,
    a: &MatRef<'_>,
    b: &MatRef<'_>,
    c: &mut MatMut<'_>,
    accumulate: bool,
) -> Result<()> {
    validate_i64(m, n, k, a, b, c)?;
    for i in 0..m {
        for j in 0..n {
            let dot = (0..k).fold(0i64, |sum, kk| {
                let x = a.data[i * a.row_stride + kk * a.col_stride];
                let y = b.data[kk * b.row_stride + j * b.col_stride];
                sum.wrapping_add(x.wrapping_mul(y))
            });
            let cij = &mut c.data[i * c.row_stride + j * c.col_stride];
            *cij = if accumulate {
                cij.wrapping_add(dot)
            } else {
                dot
            };
        }
    }
    Ok(())
}
