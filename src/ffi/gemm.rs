//! GEMMs from C: the CBLAS-style wrapping i64 GEMM.

use super::{Failure, FfiResult, LowpStatus, check_array, guard, isa_from};
use crate::error::strided_len;
use crate::gemm::{MatMut, MatRef, gemm_i64};

/// `LOWP_ROW_MAJOR` (CBLAS's `CblasRowMajor`).
pub const LOWP_ROW_MAJOR: i32 = 101;
/// `LOWP_COL_MAJOR` (CBLAS's `CblasColMajor`).
pub const LOWP_COL_MAJOR: i32 = 102;
/// `LOWP_NO_TRANS` (CBLAS's `CblasNoTrans`).
pub const LOWP_NO_TRANS: i32 = 111;
/// `LOWP_TRANS` (CBLAS's `CblasTrans`).
pub const LOWP_TRANS: i32 = 112;

/// One operand as CBLAS describes it, checked and turned into (row stride, column stride,
/// element count) of the `rows × cols` matrix the product uses.
fn operand(
    name: &'static str,
    row_major: bool,
    trans: bool,
    rows: usize,
    cols: usize,
    ld: usize,
) -> FfiResult<(usize, usize, usize)> {
    // Stored as `rows × cols` (or its transpose) in the given layout: consecutive elements
    // of a stored row (row-major) or column (column-major) are adjacent.
    let rows_adjacent = row_major != trans;
    let (rs, cs, inner) = if rows_adjacent {
        (ld, 1, cols)
    } else {
        (1, ld, rows)
    };
    if ld < inner.max(1) {
        return Err(Failure::bad_parameter(
            name,
            format!("leading dimension {ld} is smaller than {}", inner.max(1)),
        ));
    }
    let len = if rows_adjacent {
        strided_len(rows, cols, ld, name)?
    } else {
        strided_len(cols, rows, ld, name)?
    };
    Ok((rs, cs, len))
}

fn byte_range<T>(ptr: *const T, len: usize) -> std::ops::Range<usize> {
    let start = ptr as usize;
    start..start.saturating_add(len * size_of::<T>())
}

/// `C = op(A)·op(B)` (or `C += …` when `accumulate` is 1), wrapping mod 2^64: see the
/// header.
///
/// # Safety
///
/// `a`, `b` and `c` must hold the matrices their dimensions and leading dimensions
/// describe (CBLAS's contract); NULL and overlap of C with A or B are reported.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn lowp_gemm_i64(
    layout: i32,
    trans_a: i32,
    trans_b: i32,
    m: usize,
    n: usize,
    k: usize,
    a: *const i64,
    lda: usize,
    b: *const i64,
    ldb: usize,
    accumulate: i32,
    c: *mut i64,
    ldc: usize,
    isa: i32,
) -> LowpStatus {
    guard("lowp_gemm_i64", || {
        let row_major = match layout {
            LOWP_ROW_MAJOR => true,
            LOWP_COL_MAJOR => false,
            other => {
                return Err(Failure::bad_parameter(
                    "layout",
                    format!("{other} is neither LOWP_ROW_MAJOR nor LOWP_COL_MAJOR"),
                ));
            }
        };
        let trans = |code: i32, name: &str| match code {
            LOWP_NO_TRANS => Ok(false),
            LOWP_TRANS => Ok(true),
            other => Err(Failure::bad_parameter(
                name,
                format!("{other} is neither LOWP_NO_TRANS nor LOWP_TRANS"),
            )),
        };
        let (ta, tb) = (trans(trans_a, "trans_a")?, trans(trans_b, "trans_b")?);
        let accumulate = match accumulate {
            0 => false,
            1 => true,
            other => {
                return Err(Failure::bad_parameter(
                    "accumulate",
                    format!("{other} is neither 0 nor 1"),
                ));
            }
        };
        let isa = isa_from(isa, "isa")?;
        let (a_rs, a_cs, a_len) = operand("A (lda)", row_major, ta, m, k, lda)?;
        let (b_rs, b_cs, b_len) = operand("B (ldb)", row_major, tb, k, n, ldb)?;
        let (c_rs, c_cs, c_len) = operand("C (ldc)", row_major, false, m, n, ldc)?;
        check_array(a, a_len, "A")?;
        check_array(b, b_len, "B")?;
        check_array(c.cast_const(), c_len, "C")?;
        let c_bytes = byte_range(c.cast_const(), c_len);
        for (name, range) in [("A", byte_range(a, a_len)), ("B", byte_range(b, b_len))] {
            if c_bytes.start < range.end && range.start < c_bytes.end {
                return Err(Failure::new(
                    LowpStatus::Aliasing,
                    format!(
                        "C (bytes {:#x}..{:#x}) overlaps {name} (bytes {:#x}..{:#x})",
                        c_bytes.start, c_bytes.end, range.start, range.end
                    ),
                ));
            }
        }
        // SAFETY (all three): NULL, alignment and size were checked just above, C overlaps
        // neither A nor B, and the caller guarantees each buffer holds its matrix.
        let (a, b, c) = unsafe {
            (
                super::slice_in(a, a_len, "A")?,
                super::slice_in(b, b_len, "B")?,
                super::slice_out(c, c_len, "C")?,
            )
        };
        let a = MatRef {
            data: a,
            row_stride: a_rs,
            col_stride: a_cs,
        };
        let b = MatRef {
            data: b,
            row_stride: b_rs,
            col_stride: b_cs,
        };
        let c = MatMut {
            data: c,
            row_stride: c_rs,
            col_stride: c_cs,
        };
        gemm_i64(m, n, k, a, b, c, accumulate, isa)?;
        Ok(())
    })
}
