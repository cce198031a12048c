//! The u8 × i8 GEMM with its fused output stage, as FBGEMM's `fbgemmPacked` with
//! `PackAWithRowOffset`, `PackBMatrix` and `ReQuantizeOutput` / `ReQuantizeForFloat`
//! computes it (`include/fbgemm/OutputProcessing-inl.h`, `src/QuantUtilsAvx2.cc`).

use crate::error::Result;
use crate::gemm::{GemmOutput, OutputStage, PerColumn, QuantType, RequantBias, U8I8Problem};

/// Computes `(A − za)·(B − zb)` exactly (mod 2^32) and writes it through `stage`.
///
/// A is `m × k` u8 (rows `a_stride` apart), B is `k × n` i8 row-major; output element
/// (i, j) goes to `out[i · out_stride + j]`, and elements between rows are not touched.
///
/// # The exact i32 result
///
/// All integer arithmetic is two's-complement i32 and wraps, as FBGEMM's does:
/// - `acc = Σk A[i][k] · B[k][j]`, k ascending (each product fits i32, the sum wraps);
/// - `row_sum[i] = Σk A[i][k]`, `col_sum[j] = Σk B[k][j]` (FBGEMM's row offsets and, with
///   the zero point folded in, its `col_offsets`);
/// - `raw = acc − za · (col_sum[j] − zb[j] · K) − zb[j] · row_sum[i]`.
///
/// Expanding `Σk (A − za)(B − zb) = ΣAB − za·ΣB − zb·ΣA + K·za·zb` shows the two sides are
/// the same polynomial; wrapping i32 operations are exactly the ring operations of the
/// integers mod 2^32, so `raw ≡ Σk (A − za)(B − zb) (mod 2^32)` for every input, including
/// K ≥ 2^32 (K enters reduced mod 2^32) and any i32 `zb`. When the true value fits i32
/// (always, for realistic K), `raw` is that value.
///
/// # Output stages
///
/// [`OutputStage::RawI32`] writes `raw`.
///
/// [`OutputStage::Requantize`] follows FBGEMM's `ReQuantizeOutput` (`g` is 0 for a
/// per-tensor parameter, `j` for a per-column one):
/// 1. bias: none: `f = f32(raw)`; i32: `f = f32(raw +wrapping bias[j])`; f32 with a
///    per-tensor scale: `f = f32(raw) + bias[j] · (1 / act_times_w_scale)`, where the
///    reciprocal is one correctly rounded f32 division (FBGEMM divides in f64 and rounds
///    to f32, which gives the same value: a quotient rounded to 53 bits and then to 24
///    equals the quotient rounded once to 24); f32 with per-column scales:
///    `f = f32(raw) + bias[j] / act_times_w_scale[j]`. `f32(·)` rounds to nearest even
///    (`cvtdq2ps`).
/// 2. `y = f · multiplier[g]` (one f32 multiply, no fused operation).
/// 3. `q = round_half_even(y)` converted to i32, saturating: `y ≥ 2^31` gives `i32::MAX`,
///    `y < −2^31` gives `i32::MIN`, and NaN gives `i32::MIN`, the "integer indefinite"
///    that x86's `cvtps2dq` returns, so a NaN lands on the lower clamp bound as in
///    FBGEMM's kernels (its generic `lrintf` leaves NaN unspecified).
/// 4. `out = clamp(q + zero_point, lo, hi)`, with `(lo, hi)` = (0, 255) for u8 and
///    (−128, 127) for i8; with ReLU `lo = zero_point`.
///
/// The f32 bias term has two forms in FBGEMM, which differ by an ulp now and then (and
/// then, at a rounding tie, by one output code): its generic C++ divides
/// (`bias[j] / act_times_w_scale[g]`) at every granularity, while its AVX2, AVX-512 and
/// NEON kernels multiply by the reciprocal for a per-tensor scale and divide for
/// per-channel scales (`src/QuantUtilsAvx2.cc`, `requantizeOutputProcessingAvx2`). lowp
/// takes the kernels' rule, because those kernels are what FBGEMM runs on every CPU it
/// supports, so lowp matches FBGEMM's shipped results at both granularities. FBGEMM's
/// golden case `gemm_u8i8_m3_n37_k19_floatbias_tensor` (per-tensor, produced by its
/// AVX-512 kernel) cannot tell the forms apart: both reproduce all 111 of its bytes.
///
/// Where FBGEMM's own result is not exact lowp differs deliberately: its `cvtps2dq` turns
/// a `y` beyond ±2^31 into `i32::MIN` (a huge positive value then clamps to 0, where lowp
/// gives 255); FBGEMM writes only u8; its non-VNNI kernels saturate i16 pair sums
/// (`vpmaddubsw`) where lowp is exact on every CPU.
///
/// [`OutputStage::Dequantize`] follows FBGEMM's AVX2 `requantizeForFloatAvx2` (the path
/// its x86 CPUs run; its generic code multiplies by the two scales one after the other):
/// 1. `s = a_scale · b_scale[g]` (one f32 multiply);
/// 2. `y = f32(raw) · s` (one f32 multiply);
/// 3. with a bias, `y = y + bias[j]` (a separate f32 add, not fused);
/// 4. with ReLU, `y = if y < 0 { +0.0 } else { y }`: x86's `max_ps(0, y)`, which keeps
///    `−0.0` as `−0.0` and a NaN as NaN.
///
/// # Errors
///
/// The same checks, with the same errors, as [`crate::gemm_u8i8`]: operand sizes, strides,
/// per-column lengths, the output zero point's range, the output's type and size.
pub fn gemm_u8i8(
    problem: &U8I8Problem<'_>,
    stage: &OutputStage<'_>,
    out: &mut GemmOutput<'_>,
    out_stride: usize,
) -> Result<()> {
    problem.validate(stage, out, out_stride)?;
    let exact = ExactProduct::new(problem);
    let dims = (problem.m, problem.n, out_stride);
    match (stage, out) {
        (OutputStage::RawI32, GemmOutput::I32(c)) => fill(c, dims, |i, j| exact.raw(i, j)),
        (
            OutputStage::Requantize {
                out: ty,
                bias,
                multiplier,
                zero_point,
                relu,
            },
            out,
        ) => {
            let range = match ty {
                QuantType::U8 => (0, 255),
                QuantType::I8 => (-128, 127),
            };
            let r = Requantizer::new(*bias, *multiplier, *zero_point, *relu, range);
            // `apply` clamps to the type's range, so the narrowing casts are exact.
            match out {
                GemmOutput::U8(c) => fill(c, dims, |i, j| r.apply(exact.raw(i, j), j) as u8),
                GemmOutput::I8(c) => fill(c, dims, |i, j| r.apply(exact.raw(i, j), j) as i8),
                _ => unreachable!("validate checked that the output type matches the stage"),
            }
        }
        (
            OutputStage::Dequantize {
                a_scale,
                b_scale,
                bias,
                relu,
            },
            GemmOutput::F32(c),
        ) => fill(c, dims, |i, j| {
            let mut y = exact.raw(i, j) as f32 * (a_scale * b_scale.get(j));
            if let Some(bias) = bias {
                y += bias[j];
            }
            if *relu && y < 0.0 { 0.0 } else { y }
        }),
        _ => unreachable!("validate checked that the output type matches the stage"),
    }
    Ok(())
}

/// Writes `value(i, j)` to `c[i · stride + j]` for the `m × n` result.
fn fill<T>(
    c: &mut [T],
    (m, n, stride): (usize, usize, usize),
    mut value: impl FnMut(usize, usize) -> T,
) {
    if n == 0 {
        // An empty result may come with an empty buffer and any stride.
        return;
    }
    for i in 0..m {
        for (j, slot) in c[i * stride..i * stride + n].iter_mut().enumerate() {
            *slot = value(i, j);
        }
    }
}

/// The operands with their row and column sums, giving `raw` for any (i, j).
struct ExactProduct<'a> {
    problem: &'a U8I8Problem<'a>,
    row_sums: Vec<i32>,
    col_sums: Vec<i32>,
}

impl<'a> ExactProduct<'a> {
    fn new(problem: &'a U8I8Problem<'a>) -> Self {
        let &U8I8Problem { m, n, k, .. } = problem;
        let row_sums = (0..m)
            .map(|i| {
                a_row(problem, i)
                    .iter()
                    .fold(0i32, |s, &x| s.wrapping_add(i32::from(x)))
            })
            .collect();
        let mut col_sums = vec![0i32; n];
        for row in problem.b.chunks_exact(n.max(1)).take(k) {
            for (s, &x) in col_sums.iter_mut().zip(row) {
                *s = s.wrapping_add(i32::from(x));
            }
        }
        ExactProduct {
            problem,
            row_sums,
            col_sums,
        }
    }

    /// `acc − za · (col_sum[j] − zb · K) − zb · row_sum[i]`, wrapping.
    fn raw(&self, i: usize, j: usize) -> i32 {
        let p = self.problem;
        let acc = a_row(p, i).iter().enumerate().fold(0i32, |acc, (kk, &x)| {
            acc.wrapping_add(i32::from(x) * i32::from(p.b[kk * p.n + j]))
        });
        let za = i32::from(p.a_zero_point);
        let zb = p.b_zero_point.get(j);
        // K enters mod 2^32, like every other term.
        let k = p.k as i32;
        let col_offset = self.col_sums[j].wrapping_sub(zb.wrapping_mul(k));
        acc.wrapping_sub(za.wrapping_mul(col_offset))
            .wrapping_sub(zb.wrapping_mul(self.row_sums[i]))
    }
}

/// Row `i` of A; empty when `k = 0` (A itself may then be empty, whatever the stride).
fn a_row<'a>(p: &U8I8Problem<'a>, i: usize) -> &'a [u8] {
    if p.k == 0 {
        &[]
    } else {
        &p.a[i * p.a_stride..][..p.k]
    }
}

/// A requantizing stage with its clamp bounds resolved.
struct Requantizer<'a> {
    bias: RequantBias<'a>,
    multiplier: PerColumn<'a, f32>,
    zero_point: i32,
    lo: i32,
    hi: i32,
}

impl<'a> Requantizer<'a> {
    fn new(
        bias: RequantBias<'a>,
        multiplier: PerColumn<'a, f32>,
        zero_point: i32,
        relu: bool,
        (type_lo, hi): (i32, i32),
    ) -> Self {
        Requantizer {
            bias,
            multiplier,
            zero_point,
            // `validate` keeps the zero point inside the type, so it is a valid bound.
            lo: if relu { zero_point } else { type_lo },
            hi,
        }
    }

    /// The output code of column `j` for the exact result `raw`, within `[lo, hi]`.
    fn apply(&self, raw: i32, j: usize) -> i32 {
        let f = match self.bias {
            RequantBias::None => raw as f32,
            RequantBias::I32(bias) => raw.wrapping_add(bias[j]) as f32,
            RequantBias::F32 {
                bias,
                act_times_w_scale,
            } => {
                raw as f32
                    + match act_times_w_scale {
                        PerColumn::Tensor(scale) => bias[j] * (1.0 / scale),
                        PerColumn::Column(scales) => bias[j] / scales[j],
                    }
            }
        };
        let y = f * self.multiplier.get(j);
        round_to_i32(y)
            .saturating_add(self.zero_point)
            .clamp(self.lo, self.hi)
    }
}

/// `y` rounded half to even, saturated to i32; NaN gives `i32::MIN` like `cvtps2dq`.
fn round_to_i32(y: f32) -> i32 {
    if y.is_nan() {
        i32::MIN
    } else {
        // `as` saturates out-of-range values (and ±inf) to the i32 bounds.
        y.round_ties_even() as i32
    }
}
