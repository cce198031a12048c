//! Integer GEMMs: u8 × i8 with a fused output stage, and wrapping i64.
//!
//! This module holds the problem descriptions shared by the reference model, the kernels
//! and the dispatched operations.

use std::ops::Range;

use crate::error::{Error, Result, checked_mul};
use crate::isa::Isa;
use crate::registry::{self, Kernel};

mod i64;
mod pack;

pub(crate) use pack::{PANEL, PackedParts, QUAD};
pub use pack::{PackedB, WeightLayout};

pub use i64::{MatMut, MatRef, MatrixOp, gemm_i64, gemm_i64_cblas};
pub(crate) use i64::{ranges_overlap, validate_i64};

/// A value given once for the whole tensor or once per output column.
#[derive(Clone, Copy, Debug)]
pub enum PerColumn<'a, T> {
    /// One value for every column.
    Tensor(T),
    /// `values[j]` for column `j`; exactly `n` values.
    Column(&'a [T]),
}

impl<T: Copy> PerColumn<'_, T> {
    /// The value for column `j`.
    #[inline]
    pub fn get(&self, j: usize) -> T {
        match self {
            PerColumn::Tensor(v) => *v,
            PerColumn::Column(v) => v[j],
        }
    }

    /// Checks that a per-column array has exactly `n` values.
    pub(crate) fn check(&self, n: usize, what: &'static str) -> Result<()> {
        match self {
            PerColumn::Column(v) if v.len() != n => Err(Error::bad_parameter(
                what,
                format!("{} per-column values given for {n} columns", v.len()),
            )),
            _ => Ok(()),
        }
    }
}

/// The integer type a requantizing stage writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuantType {
    /// u8, clamped to [0, 255].
    U8,
    /// i8, clamped to [−128, 127].
    I8,
}

/// The bias a requantizing stage adds before scaling.
#[derive(Clone, Copy, Debug)]
pub enum RequantBias<'a> {
    /// No bias.
    None,
    /// `bias[j]` added to the exact i32 result (wrapping) before the conversion to f32.
    I32(&'a [i32]),
    /// `bias[j] / act_times_w_scale[g]` added in f32 after the conversion (FBGEMM's float
    /// bias, where `act_times_w_scale` is the activation scale times the weight scale).
    F32 {
        /// One bias per output column.
        bias: &'a [f32],
        /// Activation scale × weight scale, per tensor or per column.
        act_times_w_scale: PerColumn<'a, f32>,
    },
}

/// What the u8 × i8 GEMM writes for each exact i32 result `raw = Σk (A − za)(B − zb)`.
#[derive(Clone, Copy, Debug)]
pub enum OutputStage<'a> {
    /// `raw` itself, as i32.
    RawI32,
    /// Requantize to u8 or i8: bias, multiply by `multiplier[g]` in f32, round half to
    /// even, add `zero_point`, clamp to the type (and to `zero_point` from below with ReLU).
    Requantize {
        /// Output type.
        out: QuantType,
        /// Bias added before scaling.
        bias: RequantBias<'a>,
        /// Real multiplier (activation scale × weight scale / output scale).
        multiplier: PerColumn<'a, f32>,
        /// Output zero point, within the output type's range.
        zero_point: i32,
        /// Clamp at the zero point from below (a fused ReLU).
        relu: bool,
    },
    /// Dequantize to f32: `f32(raw) · (a_scale · b_scale[g]) + bias[j]`, then an optional
    /// ReLU.
    Dequantize {
        /// Activation scale.
        a_scale: f32,
        /// Weight scale, per tensor or per column.
        b_scale: PerColumn<'a, f32>,
        /// Optional bias per column.
        bias: Option<&'a [f32]>,
        /// Clamp negative results to zero.
        relu: bool,
    },
}

/// Where the u8 × i8 GEMM writes: `m` rows of `n` values, `out_stride` apart. The variant
/// must match the output stage.
#[derive(Debug)]
pub enum GemmOutput<'a> {
    /// For [`OutputStage::RawI32`].
    I32(&'a mut [i32]),
    /// For [`OutputStage::Requantize`] with [`QuantType::U8`].
    U8(&'a mut [u8]),
    /// For [`OutputStage::Requantize`] with [`QuantType::I8`].
    I8(&'a mut [i8]),
    /// For [`OutputStage::Dequantize`].
    F32(&'a mut [f32]),
}

impl GemmOutput<'_> {
    /// Elements in the buffer.
    pub fn len(&self) -> usize {
        match self {
            GemmOutput::I32(s) => s.len(),
            GemmOutput::U8(s) => s.len(),
            GemmOutput::I8(s) => s.len(),
            GemmOutput::F32(s) => s.len(),
        }
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The operands of a u8 × i8 GEMM: A is `m × k` u8 with row stride `a_stride`, B is
/// `k × n` i8 row-major (row stride `n`).
#[derive(Clone, Copy, Debug)]
pub struct U8I8Problem<'a> {
    /// Rows of A and of the output.
    pub m: usize,
    /// Columns of B and of the output.
    pub n: usize,
    /// Columns of A, rows of B.
    pub k: usize,
    /// A, `m` rows of `k` codes, `a_stride` apart.
    pub a: &'a [u8],
    /// Distance between rows of A, ≥ `k`.
    pub a_stride: usize,
    /// Zero point of A.
    pub a_zero_point: u8,
    /// B, `k × n` row-major.
    pub b: &'a [i8],
    /// Zero point of B, per tensor or per output column.
    pub b_zero_point: PerColumn<'a, i32>,
}

impl U8I8Problem<'_> {
    /// Checks operand sizes, the stage's per-column arrays and the output against the
    /// shape, so kernels may index without further checks.
    pub(crate) fn validate(
        &self,
        stage: &OutputStage<'_>,
        out: &GemmOutput<'_>,
        out_stride: usize,
    ) -> Result<()> {
        let &U8I8Problem { m, n, k, .. } = self;
        if self.a_stride < k {
            return Err(Error::bad_parameter(
                "a_stride",
                format!("{} is smaller than k = {k}", self.a_stride),
            ));
        }
        let a_needed = crate::error::strided_len(m, k, self.a_stride, "A elements")?;
        if self.a.len() < a_needed {
            return Err(Error::InputTooSmall {
                what: "A",
                needed: a_needed,
                got: self.a.len(),
            });
        }
        let b_needed = checked_mul(k, n, "B elements (k × n)")?;
        if self.b.len() < b_needed {
            return Err(Error::InputTooSmall {
                what: "B",
                needed: b_needed,
                got: self.b.len(),
            });
        }
        self.b_zero_point.check(n, "b_zero_point")?;
        check_stage(stage, out, n)?;
        check_out(out, m, n, out_stride)
    }
}

/// Checks that `out`'s type matches `stage` and that the stage's per-column arrays and
/// output zero point fit `n` columns.
fn check_stage(stage: &OutputStage<'_>, out: &GemmOutput<'_>, n: usize) -> Result<()> {
    let stage_matches = match stage {
        OutputStage::RawI32 => matches!(out, GemmOutput::I32(_)),
        OutputStage::Requantize {
            out: QuantType::U8, ..
        } => matches!(out, GemmOutput::U8(_)),
        OutputStage::Requantize {
            out: QuantType::I8, ..
        } => matches!(out, GemmOutput::I8(_)),
        OutputStage::Dequantize { .. } => matches!(out, GemmOutput::F32(_)),
    };
    if !stage_matches {
        return Err(Error::bad_parameter(
            "out",
            "the output buffer's type does not match the output stage",
        ));
    }
    match stage {
        OutputStage::RawI32 => {}
        OutputStage::Requantize {
            out: ty,
            bias,
            multiplier,
            zero_point,
            ..
        } => {
            multiplier.check(n, "multiplier")?;
            let (lo, hi) = match ty {
                QuantType::U8 => (0, 255),
                QuantType::I8 => (-128, 127),
            };
            if !(lo..=hi).contains(zero_point) {
                return Err(Error::bad_parameter(
                    "zero_point",
                    format!("{zero_point} is outside the output type's range {lo}..={hi}"),
                ));
            }
            match bias {
                RequantBias::None => {}
                RequantBias::I32(b) => check_len("bias", b.len(), n)?,
                RequantBias::F32 {
                    bias,
                    act_times_w_scale,
                } => {
                    check_len("bias", bias.len(), n)?;
                    act_times_w_scale.check(n, "act_times_w_scale")?;
                }
            }
        }
        OutputStage::Dequantize { b_scale, bias, .. } => {
            b_scale.check(n, "b_scale")?;
            if let Some(b) = bias {
                check_len("bias", b.len(), n)?;
            }
        }
    }
    Ok(())
}

/// Checks that `out` holds `rows` rows of `cols` values, `out_stride` apart.
fn check_out(out: &GemmOutput<'_>, rows: usize, cols: usize, out_stride: usize) -> Result<()> {
    if out_stride < cols {
        return Err(Error::bad_parameter(
            "out_stride",
            format!("{out_stride} is smaller than n = {cols}"),
        ));
    }
    let needed = crate::error::strided_len(rows, cols, out_stride, "output elements")?;
    if out.len() < needed {
        return Err(Error::OutputTooSmall {
            what: "GEMM result",
            needed,
            got: out.len(),
        });
    }
    Ok(())
}

fn check_len(what: &'static str, got: usize, n: usize) -> Result<()> {
    if got == n {
        Ok(())
    } else {
        Err(Error::bad_parameter(
            what,
            format!("{got} values given for {n} columns"),
        ))
    }
}

/// Computes `(A − za)(B − zb)` and writes it through `stage` on `isa` (or the automatic
/// level when `None`). Bit-identical to [`crate::reference::gemm_u8i8`] on every level.
///
/// This packs B on every call; to reuse weights across calls, pack them once with
/// [`PackedB::new`] and call [`gemm_u8i8_packed`].
pub fn gemm_u8i8(
    problem: &U8I8Problem<'_>,
    stage: &OutputStage<'_>,
    out: GemmOutput<'_>,
    out_stride: usize,
    isa: Option<Isa>,
) -> Result<()> {
    problem.validate(stage, &out, out_stride)?;
    let packed = PackedB::new(
        problem.b,
        problem.k,
        problem.n,
        WeightLayout::KByN,
        problem.b_zero_point,
        isa,
    )?;
    let block = U8I8Block {
        a: problem.a,
        a_stride: problem.a_stride,
        a_zero_point: problem.a_zero_point,
        b: &packed,
        rows: 0..problem.m,
        cols: 0..problem.n,
    };
    run_block(&block, stage, out, out_stride)
}

/// One block of a u8 × i8 GEMM over packed weights: rows `rows` of the result (rows of A)
/// and columns `cols` (columns of B). Kernels receive it after [`U8I8Block::validate`].
#[derive(Clone, Debug)]
pub struct U8I8Block<'a> {
    /// A, at least `rows.end` rows of `b.k()` codes, `a_stride` apart.
    pub a: &'a [u8],
    /// Distance between rows of A, ≥ `b.k()`.
    pub a_stride: usize,
    /// Zero point of A.
    pub a_zero_point: u8,
    /// The packed weights.
    pub b: &'a PackedB,
    /// Rows of the result to compute.
    pub rows: Range<usize>,
    /// Columns of the result to compute, within `0..b.n()`.
    pub cols: Range<usize>,
}

impl U8I8Block<'_> {
    /// Checks the ranges, A, the stage's per-column arrays (all `n` columns) and the output
    /// (the block's `rows.len() × cols.len()` values, `out_stride` apart).
    pub(crate) fn validate(
        &self,
        stage: &OutputStage<'_>,
        out: &GemmOutput<'_>,
        out_stride: usize,
    ) -> Result<()> {
        let (k, n) = (self.b.k(), self.b.n());
        if self.rows.start > self.rows.end {
            return Err(Error::bad_parameter(
                "rows",
                format!("{:?} is a decreasing range", self.rows),
            ));
        }
        if self.cols.start > self.cols.end || self.cols.end > n {
            return Err(Error::bad_parameter(
                "cols",
                format!("{:?} is not a range within the {n} columns of B", self.cols),
            ));
        }
        if self.a_stride < k {
            return Err(Error::bad_parameter(
                "a_stride",
                format!("{} is smaller than k = {k}", self.a_stride),
            ));
        }
        let a_needed = crate::error::strided_len(self.rows.end, k, self.a_stride, "A elements")?;
        if self.a.len() < a_needed {
            return Err(Error::InputTooSmall {
                what: "A",
                needed: a_needed,
                got: self.a.len(),
            });
        }
        check_stage(stage, out, n)?;
        check_out(out, self.rows.len(), self.cols.len(), out_stride)
    }
}

/// Computes `(A − za)(B − zb)` for the `m` rows of A (`m × k` u8, rows `a_stride` apart)
/// and the packed weights `b`, writing element (i, j) through `stage` to
/// `out[i · out_stride + j]`. Runs the kernel `b` was packed for; bit-identical to
/// [`crate::reference::gemm_u8i8`] on every level.
///
/// The zero-point corrections and the output stage run in the kernel's epilogue, on the
/// accumulators in registers: only [`OutputStage::RawI32`] writes i32 to memory.
///
/// # Errors
///
/// [`Error::BadParameter`] for a stride smaller than a row, a per-column array of the wrong
/// length, an output zero point outside its type or an output of the wrong type;
/// [`Error::InputTooSmall`] / [`Error::OutputTooSmall`] for short buffers.
#[allow(clippy::too_many_arguments)]
pub fn gemm_u8i8_packed(
    m: usize,
    a: &[u8],
    a_stride: usize,
    a_zero_point: u8,
    b: &PackedB,
    stage: &OutputStage<'_>,
    out: GemmOutput<'_>,
    out_stride: usize,
) -> Result<()> {
    let block = U8I8Block {
        a,
        a_stride,
        a_zero_point,
        b,
        rows: 0..m,
        cols: 0..b.n(),
    };
    gemm_u8i8_block(&block, stage, out, out_stride)
}

/// Computes one block of the GEMM, for engines that bring their own threads: rows
/// `block.rows` and columns `block.cols` of the result, element (i, j) written through
/// `stage` to `out[(i − rows.start) · out_stride + (j − cols.start)]`. A is indexed by the
/// global row (`block.a` holds row 0 onwards) and the stage's per-column arrays by the
/// global column (they hold all `n` values).
///
/// Each element of the result depends only on its row of A and its column of B, so
/// threads that call this with disjoint blocks that cover the result compute exactly the
/// result of one [`gemm_u8i8_packed`] call, without synchronisation: e.g. thread `t` of
/// `T` takes rows `t·m/T .. (t+1)·m/T` and passes its own part of the output (from
/// `chunks_mut` or `split_at_mut`). Column blocks that start at a multiple of 16 avoid
/// recomputing a shared panel.
///
/// # Errors
///
/// As [`gemm_u8i8_packed`], and [`Error::BadParameter`] for a decreasing range or columns
/// beyond `n`.
pub fn gemm_u8i8_block(
    block: &U8I8Block<'_>,
    stage: &OutputStage<'_>,
    out: GemmOutput<'_>,
    out_stride: usize,
) -> Result<()> {
    block.validate(stage, &out, out_stride)?;
    run_block(block, stage, out, out_stride)
}

/// Runs the kernel `block.b` was packed for, after validation.
fn run_block(
    block: &U8I8Block<'_>,
    stage: &OutputStage<'_>,
    mut out: GemmOutput<'_>,
    out_stride: usize,
) -> Result<()> {
    let entry = block.b.entry_for(block.rows.len());
    let Kernel::GemmU8I8(kernel) = entry.kernel else {
        unreachable!("registry entries for u8i8 GEMM hold u8i8 GEMM kernels")
    };
    registry::record(entry);
    // SAFETY: the caller validated the block (`U8I8Block::validate`, or
    // `U8I8Problem::validate` for the whole result, which checks the same), and `PackedB`
    // packed B for exactly this kernel.
    unsafe { kernel(block, stage, &mut out, out_stride) }
}
