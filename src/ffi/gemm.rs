//! GEMMs from C: the CBLAS-style wrapping i64 GEMM and the u8 × i8 GEMM over packed
//! weights.

use super::{
    Failure, FfiResult, LowpStatus, check_array, guard, isa_from, read_in, slice_in, slice_out,
    write_out,
};
use crate::error::strided_len;
use crate::gemm::{
    GemmOutput, MatMut, MatRef, OutputStage, PackedB, PerColumn, QuantType, RequantBias, U8I8Block,
    WeightLayout, gemm_i64, gemm_u8i8_block, gemm_u8i8_packed, ranges_overlap,
};

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
        let c_elems = std::ptr::slice_from_raw_parts(c.cast_const(), c_len);
        for (name, input, len) in [("A", a, a_len), ("B", b, b_len)] {
            if ranges_overlap(c_elems, std::ptr::slice_from_raw_parts(input, len)) {
                let range = byte_range(input, len);
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

/// `lowp_packed_b`: opaque packed weights.
pub struct LowpPackedB(PackedB);

/// `lowp_output_stage`: what the u8 × i8 GEMM writes. Pointers are read only for the
/// stage kind and bias kind that use them.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LowpOutputStage {
    /// Requantize: the multipliers; dequantize: the weight scales (`num_scales` values).
    pub scales: *const f32,
    /// 1 (per tensor) or n (per column).
    pub num_scales: usize,
    /// n values for `LOWP_BIAS_I32`.
    pub bias_i32: *const i32,
    /// n values for `LOWP_BIAS_F32` (requantize) or the dequantize bias.
    pub bias_f32: *const f32,
    /// Requantize with `LOWP_BIAS_F32`: activation scale × weight scale (per tensor or
    /// column).
    pub act_times_w_scale: *const f32,
    /// 1 or n.
    pub num_act_times_w_scale: usize,
    /// `lowp_stage_kind`.
    pub kind: i32,
    /// `lowp_bias_kind`.
    pub bias_kind: i32,
    /// Requantize: the output zero point.
    pub zero_point: i32,
    /// Nonzero: fused ReLU.
    pub relu: i32,
    /// Dequantize: the activation scale.
    pub a_scale: f32,
}

/// One value for every column when `count` is 1, else `count` values per column.
///
/// # Safety
///
/// As [`slice_in`].
unsafe fn per_column<'a, T: Copy>(
    ptr: *const T,
    count: usize,
    what: &str,
) -> FfiResult<PerColumn<'a, T>> {
    // SAFETY: forwarded from the caller.
    let values = unsafe { slice_in(ptr, count, what) }?;
    Ok(match values {
        &[one] => PerColumn::Tensor(one),
        many => PerColumn::Column(many),
    })
}

/// Packs i8 weights for `lowp_gemm_u8i8_packed`: see the header.
///
/// # Safety
///
/// `b` must hold `b_len` values, `b_zero_points` `num_b_zero_points`; `packed` must be NULL
/// (reported) or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn lowp_packed_b_create(
    b: *const i8,
    b_len: usize,
    k: usize,
    n: usize,
    layout: i32,
    b_zero_points: *const i32,
    num_b_zero_points: usize,
    isa: i32,
    packed: *mut *mut LowpPackedB,
) -> LowpStatus {
    guard("lowp_packed_b_create", || {
        // SAFETY (all blocks): the header's contract; the helpers check NULL, alignment
        // and sizes first.
        unsafe { write_out(packed, std::ptr::null_mut(), "packed") }?;
        let layout = match layout {
            0 => WeightLayout::KByN,
            1 => WeightLayout::NByK,
            other => {
                return Err(Failure::bad_parameter(
                    "layout",
                    format!("{other} is not a lowp_weight_layout value"),
                ));
            }
        };
        let isa = isa_from(isa, "isa")?;
        let b = unsafe { slice_in(b, b_len, "b") }?;
        let zero_points = unsafe { per_column(b_zero_points, num_b_zero_points, "b_zero_points") }?;
        let resolved = Box::new(LowpPackedB(PackedB::new(
            b,
            k,
            n,
            layout,
            zero_points,
            isa,
        )?));
        unsafe { packed.write(Box::into_raw(resolved)) };
        Ok(())
    })
}

/// # Safety
///
/// `packed` must be NULL (reported) or live.
unsafe fn packed_ref<'a>(packed: *const LowpPackedB) -> FfiResult<&'a PackedB> {
    check_array(packed, 1, "packed")?;
    // SAFETY: non-null and aligned; the caller guarantees a live packing.
    Ok(unsafe { &(*packed).0 })
}

/// The packing's depth, columns and kernel level; each out-pointer may be NULL.
///
/// # Safety
///
/// `packed` must be NULL (reported) or live; the out-pointers NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lowp_packed_b_info(
    packed: *const LowpPackedB,
    k: *mut usize,
    n: *mut usize,
    isa: *mut i32,
) -> LowpStatus {
    guard("lowp_packed_b_info", || {
        // SAFETY (all): the caller passes a live packing and writable out-pointers.
        let packed = unsafe { packed_ref(packed) }?;
        if !k.is_null() {
            unsafe { write_out(k, packed.k(), "k") }?;
        }
        if !n.is_null() {
            unsafe { write_out(n, packed.n(), "n") }?;
        }
        if !isa.is_null() {
            unsafe { write_out(isa, super::isa_code(packed.isa()), "isa") }?;
        }
        Ok(())
    })
}

/// Frees a packing; NULL is a no-op.
///
/// # Safety
///
/// `packed` must be NULL or live and unused by other threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lowp_packed_b_destroy(packed: *mut LowpPackedB) -> LowpStatus {
    guard("lowp_packed_b_destroy", || {
        if !packed.is_null() {
            // SAFETY: the caller passes a live packing created by Box::into_raw.
            drop(unsafe { Box::from_raw(packed) });
        }
        Ok(())
    })
}

/// `(A − za)(B − zb)` through an output stage: see the header.
///
/// # Safety
///
/// Every pointer must be NULL (reported unless its length is 0) or valid for its length as
/// the header states; `out` must not overlap the inputs.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn lowp_gemm_u8i8_packed(
    m: usize,
    a: *const u8,
    a_len: usize,
    a_stride: usize,
    a_zero_point: u8,
    packed: *const LowpPackedB,
    stage: *const LowpOutputStage,
    out: *mut std::ffi::c_void,
    out_len: usize,
    out_stride: usize,
) -> LowpStatus {
    guard("lowp_gemm_u8i8_packed", || {
        // SAFETY: the header's contract makes each pointer valid for the length passed
        // or implied (n per-column values); the helpers check NULL, alignment and sizes.
        let (b, a, stage, out) = unsafe { u8i8_operands(a, a_len, packed, stage, out, out_len) }?;
        gemm_u8i8_packed(m, a, a_stride, a_zero_point, b, &stage, out, out_stride)?;
        Ok(())
    })
}

/// The operands of a u8 × i8 call: the packing, A, the stage and the output buffer of
/// the stage's type.
///
/// # Safety
///
/// As [`lowp_gemm_u8i8_packed`].
#[allow(clippy::type_complexity)]
unsafe fn u8i8_operands<'a>(
    a: *const u8,
    a_len: usize,
    packed: *const LowpPackedB,
    stage: *const LowpOutputStage,
    out: *mut std::ffi::c_void,
    out_len: usize,
) -> FfiResult<(&'a PackedB, &'a [u8], OutputStage<'a>, GemmOutput<'a>)> {
    // SAFETY (all blocks): forwarded from the caller; the helpers check NULL, alignment
    // and sizes first.
    let b = unsafe { packed_ref(packed) }?;
    let s = unsafe { read_in(stage, "stage") }?;
    let n = b.n();
    let a = unsafe { slice_in(a, a_len, "a") }?;
    let scales = || unsafe { per_column(s.scales, s.num_scales, "stage->scales") };
    let relu = s.relu != 0;
    let (stage, out) = match s.kind {
        0 => (
            OutputStage::RawI32,
            GemmOutput::I32(unsafe { slice_out(out.cast(), out_len, "out") }?),
        ),
        1 | 2 => {
            let bias = match s.bias_kind {
                0 => RequantBias::None,
                1 => RequantBias::I32(unsafe { slice_in(s.bias_i32, n, "stage->bias_i32") }?),
                2 => RequantBias::F32 {
                    bias: unsafe { slice_in(s.bias_f32, n, "stage->bias_f32") }?,
                    act_times_w_scale: unsafe {
                        per_column(
                            s.act_times_w_scale,
                            s.num_act_times_w_scale,
                            "stage->act_times_w_scale",
                        )
                    }?,
                },
                other => {
                    return Err(Failure::bad_parameter(
                        "stage->bias_kind",
                        format!("{other} is not a lowp_bias_kind value"),
                    ));
                }
            };
            let (ty, out) = if s.kind == 1 {
                let o = unsafe { slice_out(out.cast::<u8>(), out_len, "out") }?;
                (QuantType::U8, GemmOutput::U8(o))
            } else {
                let o = unsafe { slice_out(out.cast::<i8>(), out_len, "out") }?;
                (QuantType::I8, GemmOutput::I8(o))
            };
            let stage = OutputStage::Requantize {
                out: ty,
                bias,
                multiplier: scales()?,
                zero_point: s.zero_point,
                relu,
            };
            (stage, out)
        }
        3 => {
            let bias = match s.bias_kind {
                0 => None,
                2 => Some(unsafe { slice_in(s.bias_f32, n, "stage->bias_f32") }?),
                other => {
                    return Err(Failure::bad_parameter(
                        "stage->bias_kind",
                        format!(
                            "{other}: a dequantizing stage takes LOWP_BIAS_NONE or LOWP_BIAS_F32"
                        ),
                    ));
                }
            };
            let stage = OutputStage::Dequantize {
                a_scale: s.a_scale,
                b_scale: scales()?,
                bias,
                relu,
            };
            let out = GemmOutput::F32(unsafe { slice_out(out.cast(), out_len, "out") }?);
            (stage, out)
        }
        other => {
            return Err(Failure::bad_parameter(
                "stage->kind",
                format!("{other} is not a lowp_stage_kind value"),
            ));
        }
    };
    Ok((b, a, stage, out))
}

/// One block of a u8 × i8 GEMM, for engines' own threads: see the header.
///
/// # Safety
///
/// As [`lowp_gemm_u8i8_packed`].
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn lowp_gemm_u8i8_packed_block(
    row_begin: usize,
    row_end: usize,
    col_begin: usize,
    col_end: usize,
    a: *const u8,
    a_len: usize,
    a_stride: usize,
    a_zero_point: u8,
    packed: *const LowpPackedB,
    stage: *const LowpOutputStage,
    out: *mut std::ffi::c_void,
    out_len: usize,
    out_stride: usize,
) -> LowpStatus {
    guard("lowp_gemm_u8i8_packed_block", || {
        // SAFETY: as in lowp_gemm_u8i8_packed.
        let (b, a, stage, out) = unsafe { u8i8_operands(a, a_len, packed, stage, out, out_len) }?;
        let block = U8I8Block {
            a,
            a_stride,
            a_zero_point,
            b,
            rows: row_begin..row_end,
            cols: col_begin..col_end,
        };
        gemm_u8i8_block(&block, &stage, out, out_stride)?;
        Ok(())
    })
}
