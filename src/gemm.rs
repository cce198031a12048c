//! Integer GEMMs: u8 × i8 with a fused output stage, and wrapping i64.
//!
//! This module holds the problem descriptions shared by the reference model, the kernels
//! and the dispatched operations.

use crate::error::{Error, Result, checked_mul};
use crate::isa::Isa;
use crate::registry::{self, Kernel, Op};

mod i64;

pub(crate) use i64::validate_i64;
pub use i64::{MatMut, MatRef, MatrixOp, gemm_i64, gemm_i64_cblas};

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
        if out_stride < n {
            return Err(Error::bad_parameter(
                "out_stride",
                format!("{out_stride} is smaller than n = {n}"),
            ));
        }
        let needed = crate::error::strided_len(m, n, out_stride, "output elements")?;
        if out.len() < needed {
            return Err(Error::OutputTooSmall {
                what: "GEMM result",
                needed,
                got: out.len(),
            });
        }
        Ok(())
    }
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
pub fn gemm_u8i8(
    problem: &U8I8Problem<'_>,
    stage: &OutputStage<'_>,
    mut out: GemmOutput<'_>,
    out_stride: usize,
    isa: Option<Isa>,
) -> Result<()> {
    problem.validate(stage, &out, out_stride)?;
    let level = Isa::choose(isa)?;
    let entry = registry::select(Op::GemmU8I8, problem.n, level);
    let Kernel::GemmU8I8(kernel) = entry.kernel else {
        unreachable!("registry entries for u8i8 GEMM hold u8i8 GEMM kernels")
    };
    registry::record(entry);
    // SAFETY: `validate` checked A, B, every per-column array and the output against the
    // shape and strides.
    unsafe { kernel(problem, stage, &mut out, out_stride) }
}
