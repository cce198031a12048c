//! u8 × i8 GEMM with every output stage, and wrapping i64 GEMM over strided views.

use lowp::registry::Op;
use lowp::{
    MatMut, MatRef, OutputStage, PackedB, QuantType, RequantBias, U8I8Block, U8I8Problem,
    WeightLayout, gemm_u8i8_block, reference,
};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;

use crate::common::guard::GuardedVec;
use crate::compare::{GemmOut, Path, agree, strided_len};
use crate::config;
use crate::strategies::{PerCol, dim, f32_value, guarded, pad, per_col, size, with_extremes};

// u8 × i8 GEMM

#[derive(Clone, Debug)]
enum BiasCase {
    None,
    I32(GuardedVec<i32>),
    F32 {
        bias: GuardedVec<f32>,
        act_times_w_scale: PerCol<f32>,
    },
}

#[derive(Clone, Debug)]
enum StageCase {
    RawI32,
    Requantize {
        out: QuantType,
        bias: BiasCase,
        multiplier: PerCol<f32>,
        zero_point: i32,
        relu: bool,
    },
    Dequantize {
        a_scale: f32,
        b_scale: PerCol<f32>,
        bias: Option<GuardedVec<f32>>,
        relu: bool,
    },
}

impl StageCase {
    fn view(&self) -> OutputStage<'_> {
        match self {
            StageCase::RawI32 => OutputStage::RawI32,
            StageCase::Requantize {
                out,
                bias,
                multiplier,
                zero_point,
                relu,
            } => OutputStage::Requantize {
                out: *out,
                bias: match bias {
                    BiasCase::None => RequantBias::None,
                    BiasCase::I32(b) => RequantBias::I32(b),
                    BiasCase::F32 {
                        bias,
                        act_times_w_scale,
                    } => RequantBias::F32 {
                        bias,
                        act_times_w_scale: act_times_w_scale.view(),
                    },
                },
                multiplier: multiplier.view(),
                zero_point: *zero_point,
                relu: *relu,
            },
            StageCase::Dequantize {
                a_scale,
                b_scale,
                bias,
                relu,
            } => OutputStage::Dequantize {
                a_scale: *a_scale,
                b_scale: b_scale.view(),
                bias: bias.as_deref(),
                relu: *relu,
            },
        }
    }
}

fn i32_value() -> BoxedStrategy<i32> {
    with_extremes(
        &[i32::MIN, i32::MAX, 0, -1],
        prop_oneof![any::<i32>(), -5000..5000],
    )
}

/// Requantization multipliers: mostly the small positive reals real models use.
fn multiplier() -> BoxedStrategy<f32> {
    prop_oneof![3 => 1e-6f32..1.0, 1 => f32_value()].boxed()
}

fn requant_bias(n: usize) -> BoxedStrategy<BiasCase> {
    prop_oneof![
        Just(BiasCase::None),
        guarded(i32_value(), n).prop_map(BiasCase::I32),
        (guarded(f32_value(), n), per_col(multiplier(), n)).prop_map(
            |(bias, act_times_w_scale)| BiasCase::F32 {
                bias,
                act_times_w_scale
            }
        ),
    ]
    .boxed()
}

fn stage(n: usize) -> BoxedStrategy<StageCase> {
    let requantize = select(vec![QuantType::U8, QuantType::I8]).prop_flat_map(move |out| {
        let (lo, hi) = match out {
            QuantType::U8 => (0, 255),
            QuantType::I8 => (-128, 127),
        };
        (
            requant_bias(n),
            per_col(multiplier(), n),
            with_extremes(&[lo, hi], lo..=hi),
            any::<bool>(),
        )
            .prop_map(
                move |(bias, multiplier, zero_point, relu)| StageCase::Requantize {
                    out,
                    bias,
                    multiplier,
                    zero_point,
                    relu,
                },
            )
    });
    let dequantize = (
        f32_value(),
        per_col(f32_value(), n),
        prop::option::of(guarded(f32_value(), n)),
        any::<bool>(),
    )
        .prop_map(|(a_scale, b_scale, bias, relu)| StageCase::Dequantize {
            a_scale,
            b_scale,
            bias,
            relu,
        });
    prop_oneof![Just(StageCase::RawI32), requantize, dequantize].boxed()
}

#[derive(Clone, Debug)]
struct U8I8Case {
    m: usize,
    n: usize,
    k: usize,
    a: GuardedVec<u8>,
    a_stride: usize,
    a_zero_point: u8,
    b: GuardedVec<i8>,
    b_zero_point: PerCol<i32>,
    stage: StageCase,
    out_stride: usize,
}

fn u8i8_case() -> impl Strategy<Value = U8I8Case> {
    let n = dim(96, &[16, 32, 64, 128], |op| op == Op::GemmU8I8);
    (size(64), n, size(300), pad(), pad()).prop_flat_map(|(m, n, k, a_pad, out_pad)| {
        let a_stride = k + a_pad;
        // B's zero point is an i32: beyond i8's range it makes the i32 sums wrap.
        let b_zero_point = with_extremes(
            &[-128, 127, 0, i32::MIN, i32::MAX],
            prop_oneof![4 => -128..=127, 1 => any::<i32>()],
        );
        (
            guarded(
                with_extremes(&[0, 255], any::<u8>()),
                strided_len(m, k, a_stride),
            ),
            with_extremes(&[0, 255], any::<u8>()),
            guarded(with_extremes(&[-128, 127], any::<i8>()), k * n),
            per_col(b_zero_point, n),
            stage(n),
        )
            .prop_map(move |(a, a_zero_point, b, b_zero_point, stage)| U8I8Case {
                m,
                n,
                k,
                a,
                a_stride,
                a_zero_point,
                b,
                b_zero_point,
                stage,
                out_stride: n + out_pad,
            })
    })
}

fn check_u8i8<T: GemmOut>(case: &U8I8Case) -> Result<(), TestCaseError> {
    let problem = U8I8Problem {
        m: case.m,
        n: case.n,
        k: case.k,
        a: &case.a,
        a_stride: case.a_stride,
        a_zero_point: case.a_zero_point,
        b: &case.b,
        b_zero_point: case.b_zero_point.view(),
    };
    let stage = case.stage.view();
    let (n, stride) = (case.n, case.out_stride);
    let out = GuardedVec::filled(strided_len(case.m, n, stride), T::SENTINEL);
    let result = agree(
        &out,
        |i| i % stride < n,
        |path, out| match path {
            Path::Reference => reference::gemm_u8i8(&problem, &stage, &mut T::output(out), stride),
            Path::Level(isa) => {
                lowp::gemm_u8i8(&problem, &stage, T::output(out), stride, Some(isa))
            }
        },
    )?;
    prop_assert_eq!(result, Ok(()));
    // The same result from weights packed once as PyTorch's `out × in`, computed in four
    // blocks (rows and columns cut off any tile or panel boundary), as engines' threads
    // would, each written in place through its own output offset.
    let (m, k) = (case.m, case.k);
    let bt: Vec<i8> = (0..n * k).map(|t| case.b[(t % k) * n + t / k]).collect();
    let (row_cut, col_cut) = (m / 2, n * 2 / 5);
    let result = agree(
        &out,
        |i| i % stride < n,
        |path, out| match path {
            Path::Reference => reference::gemm_u8i8(&problem, &stage, &mut T::output(out), stride),
            Path::Level(isa) => {
                let packed = PackedB::new(
                    &bt,
                    k,
                    n,
                    WeightLayout::NByK,
                    case.b_zero_point.view(),
                    Some(isa),
                )?;
                for rows in [0..row_cut, row_cut..m] {
                    for cols in [0..col_cut, col_cut..n] {
                        if rows.is_empty() || cols.is_empty() {
                            continue;
                        }
                        let at = rows.start * stride + cols.start;
                        let block = U8I8Block {
                            a: &case.a,
                            a_stride: case.a_stride,
                            a_zero_point: case.a_zero_point,
                            b: &packed,
                            rows: rows.clone(),
                            cols,
                        };
                        gemm_u8i8_block(&block, &stage, T::output(&mut out[at..]), stride)?;
                    }
                }
                Ok(())
            }
        },
    )?;
    prop_assert_eq!(result, Ok(()));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// i64 GEMM

/// Strides of a `rows × cols` view: row-major, or stored transposed (column-major), with
/// padding between the stored rows.
#[derive(Clone, Copy, Debug)]
struct View {
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl View {
    /// Elements from the first to one past the last element of the view.
    fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride + 1
        }
    }

    /// Which positions of its buffer the view covers.
    fn covered(&self) -> Vec<bool> {
        let mut covered = vec![false; self.extent()];
        for r in 0..self.rows {
            for c in 0..self.cols {
                covered[r * self.row_stride + c * self.col_stride] = true;
            }
        }
        covered
    }
}

fn view(rows: usize, cols: usize) -> impl Strategy<Value = View> {
    (any::<bool>(), pad()).prop_map(move |(transposed, pad)| {
        let (row_stride, col_stride) = if transposed {
            (1, rows + pad)
        } else {
            (cols + pad, 1)
        };
        View {
            rows,
            cols,
            row_stride,
            col_stride,
        }
    })
}

fn i64_value() -> BoxedStrategy<i64> {
    with_extremes(
        &[i64::MIN, i64::MAX, 0, -1, 1],
        prop_oneof![any::<i64>(), -1000..1000i64],
    )
}

/// A view and the contents of its own guarded buffer.
fn matrix(rows: usize, cols: usize) -> impl Strategy<Value = (View, GuardedVec<i64>)> {
    view(rows, cols).prop_flat_map(|v| (Just(v), guarded(i64_value(), v.extent())))
}

#[derive(Clone, Debug)]
struct I64Case {
    m: usize,
    n: usize,
    k: usize,
    a: (View, GuardedVec<i64>),
    b: (View, GuardedVec<i64>),
    c: (View, GuardedVec<i64>),
    accumulate: bool,
}

fn i64_case() -> impl Strategy<Value = I64Case> {
    let n = dim(40, &[16, 32], |op| op == Op::GemmI64);
    (size(24), n, size(40)).prop_flat_map(|(m, n, k)| {
        (matrix(m, k), matrix(k, n), matrix(m, n), any::<bool>()).prop_map(
            move |(a, b, c, accumulate)| I64Case {
                m,
                n,
                k,
                a,
                b,
                c,
                accumulate,
            },
        )
    })
}

fn mat_ref((view, data): &(View, GuardedVec<i64>)) -> MatRef<'_> {
    MatRef {
        data,
        row_stride: view.row_stride,
        col_stride: view.col_stride,
    }
}

fn check_i64(case: &I64Case) -> Result<(), TestCaseError> {
    let (a, b) = (mat_ref(&case.a), mat_ref(&case.b));
    let (c_view, c_initial) = &case.c;
    let covered = c_view.covered();
    let result = agree(
        c_initial,
        |i| covered[i],
        |path, data| {
            let (m, n, k, acc) = (case.m, case.n, case.k, case.accumulate);
            let mut c = MatMut {
                data,
                row_stride: c_view.row_stride,
                col_stride: c_view.col_stride,
            };
            match path {
                Path::Reference => reference::gemm_i64(m, n, k, &a, &b, &mut c, acc),
                Path::Level(isa) => lowp::gemm_i64(m, n, k, a, b, c, acc, Some(isa)),
            }
        },
    )?;
    prop_assert_eq!(result, Ok(()));
    Ok(())
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn gemm_u8i8_matches_reference(case in u8i8_case()) {
        match case.stage {
            StageCase::RawI32 => check_u8i8::<i32>(&case)?,
            StageCase::Requantize { out: QuantType::U8, .. } => check_u8i8::<u8>(&case)?,
            StageCase::Requantize { out: QuantType::I8, .. } => check_u8i8::<i8>(&case)?,
            StageCase::Dequantize { .. } => check_u8i8::<f32>(&case)?,
        }
    }

    #[test]
    fn gemm_i64_matches_reference(case in i64_case()) {
        check_i64(&case)?;
    }
}
