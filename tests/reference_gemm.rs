//! The reference u8 × i8 and i64 GEMMs: hand-computed cases for every stage and option,
//! properties against wide-integer models, and bad input with the exact error.

use lowp::reference::{gemm_i64, gemm_u8i8};
use lowp::{
    Error, GemmOutput, MatMut, MatRef, OutputStage, PerColumn, QuantType, RequantBias, U8I8Problem,
};
use proptest::prelude::*;

/// A 1 × n × 1 problem whose exact result in column j is `b[j]` (A = [1], no zero points):
/// the simplest way to feed chosen `raw` values to an output stage.
fn raw_values(b: &[i8]) -> U8I8Problem<'_> {
    U8I8Problem {
        m: 1,
        n: b.len(),
        k: 1,
        a: &[1],
        a_stride: 1,
        a_zero_point: 0,
        b,
        b_zero_point: PerColumn::Tensor(0),
    }
}

fn requantize_u8(problem: &U8I8Problem<'_>, stage: &OutputStage<'_>) -> Vec<u8> {
    let mut out = vec![0xCD; problem.m * problem.n];
    gemm_u8i8(problem, stage, &mut GemmOutput::U8(&mut out), problem.n).unwrap();
    out
}

fn requantize_i8(problem: &U8I8Problem<'_>, stage: &OutputStage<'_>) -> Vec<i8> {
    let mut out = vec![0x55; problem.m * problem.n];
    gemm_u8i8(problem, stage, &mut GemmOutput::I8(&mut out), problem.n).unwrap();
    out
}

fn raw_i32(problem: &U8I8Problem<'_>) -> Vec<i32> {
    let mut out = vec![0x5555_5555; problem.m * problem.n];
    gemm_u8i8(
        problem,
        &OutputStage::RawI32,
        &mut GemmOutput::I32(&mut out),
        problem.n,
    )
    .unwrap();
    out
}

fn dequantize(problem: &U8I8Problem<'_>, stage: &OutputStage<'_>) -> Vec<f32> {
    let mut out = vec![f32::NAN; problem.m * problem.n];
    gemm_u8i8(problem, stage, &mut GemmOutput::F32(&mut out), problem.n).unwrap();
    out
}

/// A requantizing stage without bias and with one multiplier.
fn plain(out: QuantType, multiplier: f32, zero_point: i32, relu: bool) -> OutputStage<'static> {
    requant(
        out,
        RequantBias::None,
        PerColumn::Tensor(multiplier),
        zero_point,
        relu,
    )
}

/// A requantizing stage to u8 with zero point 0 and no ReLU.
fn u8_stage<'a>(bias: RequantBias<'a>, multiplier: PerColumn<'a, f32>) -> OutputStage<'a> {
    requant(QuantType::U8, bias, multiplier, 0, false)
}

fn requant<'a>(
    out: QuantType,
    bias: RequantBias<'a>,
    multiplier: PerColumn<'a, f32>,
    zero_point: i32,
    relu: bool,
) -> OutputStage<'a> {
    OutputStage::Requantize {
        out,
        bias,
        multiplier,
        zero_point,
        relu,
    }
}

// A = [[1, 2, 3], [4, 5, 6]] with za = 1, B = [[1, −1], [0, 2], [−3, 4]]:
// A − za = [[0, 1, 2], [3, 4, 5]].
const A23: [u8; 6] = [1, 2, 3, 4, 5, 6];
const B32: [i8; 6] = [1, -1, 0, 2, -3, 4];

fn small_problem(b_zero_point: PerColumn<'_, i32>) -> U8I8Problem<'_> {
    U8I8Problem {
        m: 2,
        n: 2,
        k: 3,
        a: &A23,
        a_stride: 3,
        a_zero_point: 1,
        b: &B32,
        b_zero_point,
    }
}

#[test]
fn raw_with_per_tensor_b_zero_point() {
    // zb = 2: B − zb = [[−1, −3], [−2, 0], [−5, 2]].
    // Row 0: 0·−1 + 1·−2 + 2·−5 = −12, 0·−3 + 1·0 + 2·2 = 4.
    // Row 1: 3·−1 + 4·−2 + 5·−5 = −36, 3·−3 + 4·0 + 5·2 = 1.
    assert_eq!(
        raw_i32(&small_problem(PerColumn::Tensor(2))),
        [-12, 4, -36, 1]
    );
}

#[test]
fn raw_with_per_column_b_zero_point() {
    // zb = [2, −1]: column 1 of B − zb is [0, 3, 5]: 0 + 3 + 10 = 13 and 0 + 12 + 25 = 37.
    assert_eq!(
        raw_i32(&small_problem(PerColumn::Column(&[2, -1]))),
        [-12, 13, -36, 37]
    );
}

#[test]
fn raw_at_the_extremes() {
    // A = 255, B = −128, K = 64, no zero points: 255 · −128 · 64 = −2088960.
    let a = [255u8; 64];
    let b = [-128i8; 64];
    let mut p = U8I8Problem {
        m: 1,
        n: 1,
        k: 64,
        a: &a,
        a_stride: 64,
        a_zero_point: 0,
        b: &b,
        b_zero_point: PerColumn::Tensor(0),
    };
    assert_eq!(raw_i32(&p), [-2_088_960]);
    // za = 255 makes every A − za zero; zb = 127 makes every B − zb −255.
    p.a_zero_point = 255;
    assert_eq!(raw_i32(&p), [0]);
    p.a_zero_point = 0;
    p.b_zero_point = PerColumn::Tensor(127);
    assert_eq!(raw_i32(&p), [255 * -255 * 64]);
}

#[test]
fn raw_wraps_mod_2_pow_32() {
    // (1 − 0) · (1 − zb) with zb = i32::MIN: 1 + 2^31 wraps to i32::MIN + 1.
    let p = U8I8Problem {
        b_zero_point: PerColumn::Tensor(i32::MIN),
        ..raw_values(&[1])
    };
    assert_eq!(raw_i32(&p), [i32::MIN + 1]);
}

#[test]
fn requantize_rounds_half_to_even() {
    // y = raw · 0.5: 2.5 → 2, 3.5 → 4, −2.5 → −2, −3.5 → −4, 1.5 → 2, −1.5 → −2;
    // plus the zero point 10.
    let b = [5, 7, -5, -7, 3, -3];
    let stage = plain(QuantType::U8, 0.5, 10, false);
    assert_eq!(
        requantize_u8(&raw_values(&b), &stage),
        [12, 14, 8, 6, 12, 8]
    );
}

#[test]
fn requantize_u8_clamps_at_both_ends() {
    // raw = i32 bias (B = 0), multiplier 1, zero point 100.
    let b = [0i8; 6];
    let bias = [200, -300, 0, 155, 154, -100];
    let stage = requant(
        QuantType::U8,
        RequantBias::I32(&bias),
        PerColumn::Tensor(1.0),
        100,
        false,
    );
    assert_eq!(
        requantize_u8(&raw_values(&b), &stage),
        [255, 0, 100, 255, 254, 0]
    );
}

#[test]
fn requantize_i8_clamps_at_both_ends() {
    // Zero point −10: 127 → 117, −118 → −128, −119 → −128 (clamped), 0 → −10,
    // 137 (bias) → 127, 138 → 127 (clamped).
    let b = [127, -118, -119, 0, 100, 100];
    let bias = [0, 0, 0, 0, 37, 38];
    let stage = requant(
        QuantType::I8,
        RequantBias::I32(&bias),
        PerColumn::Tensor(1.0),
        -10,
        false,
    );
    assert_eq!(
        requantize_i8(&raw_values(&b), &stage),
        [117, -128, -128, -10, 127, 127]
    );
}

#[test]
fn relu_clamps_at_the_zero_point() {
    let b = [-5, 5, 0];
    let u8_stage = plain(QuantType::U8, 1.0, 100, true);
    assert_eq!(requantize_u8(&raw_values(&b), &u8_stage), [100, 105, 100]);
    let i8_stage = plain(QuantType::I8, 1.0, -10, true);
    assert_eq!(requantize_i8(&raw_values(&b), &i8_stage), [-10, -5, -10]);
}

#[test]
fn requantize_with_per_column_multipliers() {
    // raw 3 in each column: 3 · 0.5 = 1.5 → 2, 3 · 2 = 6, 3 · 0.25 = 0.75 → 1.
    let stage = u8_stage(RequantBias::None, PerColumn::Column(&[0.5, 2.0, 0.25]));
    assert_eq!(requantize_u8(&raw_values(&[3, 3, 3]), &stage), [2, 6, 1]);
}

#[test]
fn requantize_with_per_column_zero_points_and_multipliers() {
    // raw from `raw_with_per_column_b_zero_point`: [[−12, 13], [−36, 37]]; multipliers
    // [0.25, 0.5], zero point 20: −3 + 20, 6.5 → 6, −9 + 20, 18.5 → 18.
    let stage = requant(
        QuantType::U8,
        RequantBias::None,
        PerColumn::Column(&[0.25, 0.5]),
        20,
        false,
    );
    assert_eq!(
        requantize_u8(&small_problem(PerColumn::Column(&[2, -1])), &stage),
        [17, 26, 11, 38]
    );
}

#[test]
fn i32_bias_is_added_wrapping_before_the_conversion() {
    // 100 + i32::MAX wraps to i32::MIN + 99 = −2147483549; · 1e−9 → −2.1475 → −2; + 10.
    // Without the wrap it would be 2.1475 → 2 → 12.
    let stage = requant(
        QuantType::U8,
        RequantBias::I32(&[i32::MAX]),
        PerColumn::Tensor(1e-9),
        10,
        false,
    );
    assert_eq!(requantize_u8(&raw_values(&[100]), &stage), [8]);
}

#[test]
fn f32_bias_is_divided_by_act_times_w_scale() {
    // raw [1, 0]; bias / 0.5 = [5, −2.5]; f = [6, −2.5]; −2.5 rounds to −2; zero point 10.
    let stage = requant(
        QuantType::U8,
        RequantBias::F32 {
            bias: &[2.5, -1.25],
            act_times_w_scale: PerColumn::Tensor(0.5),
        },
        PerColumn::Tensor(1.0),
        10,
        false,
    );
    assert_eq!(requantize_u8(&raw_values(&[1, 0]), &stage), [16, 8]);
}

#[test]
fn f32_bias_per_tensor_uses_the_reciprocal_per_column_divides() {
    // s = 7/64, bias = 45.5/64: bias / s is exactly 6.5 (a tie, → 6), while
    // bias · f32(1 / s) is 6.5000005 (→ 7). FBGEMM's kernels use the reciprocal for a
    // per-tensor scale and the division for per-channel scales; so does lowp.
    let (s, bias) = (0.109375f32, 0.7109375f32);
    assert_eq!(bias / s, 6.5);
    assert_eq!(bias * (1.0 / s), 6.500_000_5);
    let b = [0i8];
    let stage = |scale| {
        requant(
            QuantType::U8,
            RequantBias::F32 {
                bias: std::slice::from_ref(&bias),
                act_times_w_scale: scale,
            },
            PerColumn::Tensor(1.0),
            0,
            false,
        )
    };
    let per_tensor = requantize_u8(&raw_values(&b), &stage(PerColumn::Tensor(s)));
    let scales = [s];
    let per_column = requantize_u8(&raw_values(&b), &stage(PerColumn::Column(&scales)));
    assert_eq!((per_tensor, per_column), (vec![7], vec![6]));
}

#[test]
fn huge_and_nan_values_saturate_deterministically() {
    // Multiplier +inf: raw > 0 → +inf → 255; raw < 0 → −inf → 0; raw = 0 → NaN → the
    // lower bound (0; the zero point with ReLU; −128 for i8). A finite y = 3e9 beyond
    // i32 saturates to 255 (FBGEMM's cvtps2dq would give 0).
    let b = [1, -1, 0];
    let inf = |relu| plain(QuantType::U8, f32::INFINITY, 50, relu);
    assert_eq!(requantize_u8(&raw_values(&b), &inf(false)), [255, 0, 0]);
    assert_eq!(requantize_u8(&raw_values(&b), &inf(true)), [255, 50, 50]);
    let i8_inf = plain(QuantType::I8, f32::INFINITY, 0, false);
    assert_eq!(requantize_i8(&raw_values(&b), &i8_inf), [127, -128, -128]);
    let nan = plain(QuantType::U8, f32::NAN, 50, false);
    assert_eq!(requantize_u8(&raw_values(&b), &nan), [0, 0, 0]);
    let huge = plain(QuantType::U8, 1e8, 0, false);
    assert_eq!(requantize_u8(&raw_values(&[30, -30]), &huge), [255, 0]);
}

fn dequant<'a>(
    a_scale: f32,
    b_scale: PerColumn<'a, f32>,
    bias: Option<&'a [f32]>,
    relu: bool,
) -> OutputStage<'a> {
    OutputStage::Dequantize {
        a_scale,
        b_scale,
        bias,
        relu,
    }
}

#[test]
fn dequantize_without_and_with_bias() {
    // s = 0.5 · 0.25 = 0.125: raw [8, −3] → [1, −0.375]; + bias [0.5, 0.25] → [1.5, −0.125].
    let p = raw_values(&[8, -3]);
    let plain = dequant(0.5, PerColumn::Tensor(0.25), None, false);
    assert_eq!(dequantize(&p, &plain), [1.0, -0.375]);
    let biased = dequant(0.5, PerColumn::Tensor(0.25), Some(&[0.5, 0.25]), false);
    assert_eq!(dequantize(&p, &biased), [1.5, -0.125]);
    let relu = dequant(0.5, PerColumn::Tensor(0.25), Some(&[0.5, 0.25]), true);
    assert_eq!(dequantize(&p, &relu), [1.5, 0.0]);
    let per_column = dequant(0.5, PerColumn::Column(&[2.0, 4.0]), None, false);
    assert_eq!(dequantize(&p, &per_column), [8.0, -6.0]);
}

#[test]
fn dequantize_multiplies_the_scales_first_then_adds_unfused() {
    // raw 3, a_scale 0.1, b_scale 17/7: 3 · (0.1 · b) and (3 · 0.1) · b differ in f32.
    let b_scale = 17.0f32 / 7.0;
    let want = 3.0 * (0.1f32 * b_scale);
    assert_ne!(want, (3.0 * 0.1f32) * b_scale);
    let p = raw_values(&[3]);
    assert_eq!(
        dequantize(&p, &dequant(0.1, PerColumn::Tensor(b_scale), None, false)),
        [want]
    );
    // raw 3, scale 0.1, bias −0.3: rounding 3 · 0.1 first gives exactly 0; a fused
    // multiply-add would give −7.45e−9.
    assert_ne!(3.0f32.mul_add(0.1, -0.3), 0.0);
    let out = dequantize(
        &p,
        &dequant(0.1, PerColumn::Tensor(1.0), Some(&[-0.3]), false),
    );
    assert_eq!(out[0].to_bits(), 0.0f32.to_bits());
}

#[test]
fn dequantize_relu_keeps_negative_zero_and_nan() {
    // raw 0 · −1 = −0.0 (kept, as x86 max_ps(0, y) keeps it); raw −1 · −1 = 1;
    // raw 1 · −1 = −1 → +0.0.
    let p = raw_values(&[0, -1, 1]);
    let out = dequantize(&p, &dequant(-1.0, PerColumn::Tensor(1.0), None, true));
    let bits: Vec<u32> = out.iter().map(|x| x.to_bits()).collect();
    assert_eq!(bits, [(-0.0f32).to_bits(), 1.0f32.to_bits(), 0]);
    let nan = dequantize(&p, &dequant(f32::NAN, PerColumn::Tensor(1.0), None, true));
    assert!(nan.iter().all(|x| x.is_nan()), "{nan:?}");
}

#[test]
fn strided_a_and_output_leave_gaps_untouched() {
    // The A of `small_problem` with two junk bytes after each row, and an output with
    // three sentinel slots after each row.
    let a = [1, 2, 3, 255, 255, 4, 5, 6];
    let p = U8I8Problem {
        a: &a,
        a_stride: 5,
        ..small_problem(PerColumn::Tensor(2))
    };
    let mut raw = [7i32; 7];
    gemm_u8i8(&p, &OutputStage::RawI32, &mut GemmOutput::I32(&mut raw), 5).unwrap();
    assert_eq!(raw, [-12, 4, 7, 7, 7, -36, 1]);

    let stage = plain(QuantType::U8, 1.0, 50, false);
    let mut codes = [0xEEu8; 7];
    gemm_u8i8(&p, &stage, &mut GemmOutput::U8(&mut codes), 5).unwrap();
    assert_eq!(codes, [38, 54, 0xEE, 0xEE, 0xEE, 14, 51]);
}

#[test]
fn empty_shapes() {
    let stage = requant(
        QuantType::U8,
        RequantBias::I32(&[3, -4]),
        PerColumn::Tensor(1.0),
        9,
        false,
    );
    // M = 0 and N = 0: nothing to write, empty buffers and any stride are fine.
    let none = U8I8Problem {
        m: 0,
        a: &[],
        ..small_problem(PerColumn::Tensor(2))
    };
    gemm_u8i8(&none, &stage, &mut GemmOutput::U8(&mut []), 2).unwrap();
    let no_columns = U8I8Problem {
        n: 0,
        b: &[],
        ..small_problem(PerColumn::Tensor(2))
    };
    gemm_u8i8(
        &no_columns,
        &OutputStage::RawI32,
        &mut GemmOutput::I32(&mut []),
        7,
    )
    .unwrap();
    // K = 0: every raw result is 0, so the output is bias + zero point.
    let no_depth = U8I8Problem {
        k: 0,
        a: &[],
        a_stride: 0,
        b: &[],
        ..small_problem(PerColumn::Tensor(2))
    };
    assert_eq!(raw_i32(&no_depth), [0; 4]);
    assert_eq!(requantize_u8(&no_depth, &stage), [12, 5, 12, 5]);
}

/// A row-major view with `cols` elements per row.
fn dense(data: &[i64], cols: usize) -> MatRef<'_> {
    MatRef {
        data,
        row_stride: cols,
        col_stride: 1,
    }
}

/// A row-major result view with rows `row_stride` apart.
fn c_view(data: &mut [i64], row_stride: usize) -> MatMut<'_> {
    MatMut {
        data,
        row_stride,
        col_stride: 1,
    }
}

#[test]
fn i64_small_cases() {
    let a = [1i64, 2, 3, 4];
    let b = [5i64, 6, 7, 8];
    let mut c = [1i64; 4];
    gemm_i64(
        2,
        2,
        2,
        &dense(&a, 2),
        &dense(&b, 2),
        &mut c_view(&mut c, 2),
        true,
    )
    .unwrap();
    assert_eq!(c, [20, 23, 44, 51]);
    gemm_i64(
        2,
        2,
        2,
        &dense(&a, 2),
        &dense(&b, 2),
        &mut c_view(&mut c, 2),
        false,
    )
    .unwrap();
    assert_eq!(c, [19, 22, 43, 50]);
    // The same A stored column-major is a view with swapped strides.
    let a_cols = [1i64, 3, 2, 4];
    let a_t = MatRef {
        data: &a_cols,
        row_stride: 1,
        col_stride: 2,
    };
    c = [0; 4];
    gemm_i64(2, 2, 2, &a_t, &dense(&b, 2), &mut c_view(&mut c, 2), false).unwrap();
    assert_eq!(c, [19, 22, 43, 50]);
}

#[test]
fn i64_wraps() {
    let run = |x: i64, y: i64, c0: i64| {
        let mut c = [c0];
        gemm_i64(
            1,
            1,
            1,
            &dense(&[x], 1),
            &dense(&[y], 1),
            &mut c_view(&mut c, 1),
            true,
        )
        .unwrap();
        c[0]
    };
    assert_eq!(run(i64::MAX, 2, 0), -2);
    assert_eq!(run(i64::MIN, -1, 0), i64::MIN);
    assert_eq!(run(i64::MAX, 1, 1), i64::MIN);
    assert_eq!(run(i64::MIN, i64::MIN, 5), 5);
}

#[test]
fn i64_k_zero_and_empty() {
    let empty = dense(&[], 0);
    let mut c = [3i64, 4, 99, 5, 6, 99];
    gemm_i64(2, 2, 0, &empty, &empty, &mut c_view(&mut c, 3), true).unwrap();
    assert_eq!(c, [3, 4, 99, 5, 6, 99]);
    gemm_i64(2, 2, 0, &empty, &empty, &mut c_view(&mut c, 3), false).unwrap();
    assert_eq!(c, [0, 0, 99, 0, 0, 99]);
    gemm_i64(0, 0, 3, &empty, &empty, &mut c_view(&mut [], 3), false).unwrap();
}

// ---- properties -------------------------------------------------------------------------

fn a_value() -> impl Strategy<Value = u8> {
    prop_oneof![Just(0u8), Just(255u8), any::<u8>()]
}

fn b_value() -> impl Strategy<Value = i8> {
    prop_oneof![Just(-128i8), Just(127i8), Just(0i8), any::<i8>()]
}

fn zero_point() -> impl Strategy<Value = i32> {
    prop_oneof![
        Just(-128),
        Just(127),
        Just(0),
        -128..=127i32,
        Just(i32::MIN),
        Just(i32::MAX),
        any::<i32>(),
    ]
}

/// A u8i8 problem with padded A rows, an output stride and per-tensor or per-column zb.
#[derive(Debug)]
struct U8I8Case {
    m: usize,
    n: usize,
    k: usize,
    a_stride: usize,
    out_stride: usize,
    a: Vec<u8>,
    b: Vec<i8>,
    za: u8,
    zb: Vec<i32>,
    per_column: bool,
}

fn u8i8_case() -> impl Strategy<Value = U8I8Case> {
    (
        0..5usize,
        0..9usize,
        0..70usize,
        0..3usize,
        0..3usize,
        any::<bool>(),
    )
        .prop_flat_map(|(m, n, k, a_pad, out_pad, per_column)| {
            let a_stride = k + a_pad;
            let zbs = if per_column { n } else { 1 };
            (
                proptest::collection::vec(a_value(), m * a_stride),
                proptest::collection::vec(b_value(), k * n),
                a_value(),
                proptest::collection::vec(zero_point(), zbs),
            )
                .prop_map(move |(a, b, za, zb)| U8I8Case {
                    m,
                    n,
                    k,
                    a_stride,
                    out_stride: n + out_pad,
                    a,
                    b,
                    za,
                    zb,
                    per_column,
                })
        })
}

fn i64_value() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        Just(-1i64),
        Just(0i64),
        any::<i64>(),
    ]
}

/// An i64 GEMM with random transposes, padded leading dimensions and a C with padding.
#[derive(Debug)]
struct I64Case {
    m: usize,
    n: usize,
    k: usize,
    a: Vec<i64>,
    a_strides: (usize, usize),
    b: Vec<i64>,
    b_strides: (usize, usize),
    c: Vec<i64>,
    ldc: usize,
    accumulate: bool,
}

/// Storage for a `rows × cols` operand, transposed or not, with `pad` extra elements per
/// leading dimension: the element count and the (row, column) strides.
fn layout(rows: usize, cols: usize, transposed: bool, pad: usize) -> (usize, (usize, usize)) {
    if transposed {
        let ld = rows + pad;
        (cols * ld, (1, ld))
    } else {
        let ld = cols + pad;
        (rows * ld, (ld, 1))
    }
}

fn i64_case() -> impl Strategy<Value = I64Case> {
    (
        (0..6usize, 0..6usize, 0..6usize),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        (0..3usize, 0..3usize, 0..3usize),
    )
        .prop_flat_map(|((m, n, k), (ta, tb, accumulate), (pa, pb, pc))| {
            let (a_len, a_strides) = layout(m, k, ta, pa);
            let (b_len, b_strides) = layout(k, n, tb, pb);
            let ldc = n + pc;
            (
                proptest::collection::vec(i64_value(), a_len),
                proptest::collection::vec(i64_value(), b_len),
                proptest::collection::vec(i64_value(), m * ldc),
            )
                .prop_map(move |(a, b, c)| I64Case {
                    m,
                    n,
                    k,
                    a,
                    a_strides,
                    b,
                    b_strides,
                    c,
                    ldc,
                    accumulate,
                })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn u8i8_raw_equals_the_wide_integer_formula(case in u8i8_case()) {
        let zb = if case.per_column {
            PerColumn::Column(&case.zb)
        } else {
            PerColumn::Tensor(case.zb[0])
        };
        let problem = U8I8Problem {
            m: case.m,
            n: case.n,
            k: case.k,
            a: &case.a,
            a_stride: case.a_stride,
            a_zero_point: case.za,
            b: &case.b,
            b_zero_point: zb,
        };
        const SENTINEL: i32 = 0x1234_5678;
        let mut out = vec![SENTINEL; case.m * case.out_stride];
        gemm_u8i8(&problem, &OutputStage::RawI32, &mut GemmOutput::I32(&mut out), case.out_stride)
            .unwrap();
        for i in 0..case.m {
            for j in 0..case.out_stride {
                let got = out[i * case.out_stride + j];
                if j >= case.n {
                    prop_assert_eq!(got, SENTINEL, "gap at ({}, {})", i, j);
                    continue;
                }
                // |A − za| ≤ 255 and |B − zb| < 2^32, so each product and the sum over
                // k < 70 fit i64 exactly; `as i32` then reduces mod 2^32.
                let exact: i64 = (0..case.k)
                    .map(|kk| {
                        let x = i64::from(case.a[i * case.a_stride + kk]) - i64::from(case.za);
                        let y = i64::from(case.b[kk * case.n + j]) - i64::from(zb.get(j));
                        x * y
                    })
                    .sum();
                prop_assert_eq!(got, exact as i32, "at ({}, {})", i, j);
            }
        }
    }

    #[test]
    fn i64_equals_i128_arithmetic_mod_2_pow_64(case in i64_case()) {
        let a = MatRef { data: &case.a, row_stride: case.a_strides.0, col_stride: case.a_strides.1 };
        let b = MatRef { data: &case.b, row_stride: case.b_strides.0, col_stride: case.b_strides.1 };
        let mut c = case.c.clone();
        gemm_i64(
            case.m,
            case.n,
            case.k,
            &a,
            &b,
            &mut MatMut { data: &mut c, row_stride: case.ldc, col_stride: 1 },
            case.accumulate,
        )
        .unwrap();
        for i in 0..case.m {
            for j in 0..case.ldc {
                let pos = i * case.ldc + j;
                if j >= case.n {
                    prop_assert_eq!(c[pos], case.c[pos], "padding at ({}, {})", i, j);
                    continue;
                }
                let start = if case.accumulate { i128::from(case.c[pos]) } else { 0 };
                // Each product is at most 2^126 in magnitude; the wrapping sum of at most
                // five of them plus C is exact mod 2^128, hence mod 2^64.
                let exact = (0..case.k).fold(start, |sum, kk| {
                    let x = i128::from(a.data[i * a.row_stride + kk * a.col_stride]);
                    let y = i128::from(b.data[kk * b.row_stride + j * b.col_stride]);
                    sum.wrapping_add(x * y)
                });
                prop_assert_eq!(c[pos], exact as i64, "at ({}, {})", i, j);
            }
        }
    }
}

// ---- bad input --------------------------------------------------------------------------

/// The error of the reference on this input, after checking that the dispatched
/// operation returns the same error and that neither wrote to the output.
fn u8i8_error(
    problem: &U8I8Problem<'_>,
    stage: &OutputStage<'_>,
    mut out: GemmOutput<'_>,
    stride: usize,
) -> Error {
    let snapshot = format!("{out:?}");
    let reference = gemm_u8i8(problem, stage, &mut out, stride).unwrap_err();
    assert_eq!(format!("{out:?}"), snapshot, "the output was written");
    let dispatched = lowp::gemm_u8i8(problem, stage, out, stride, None).unwrap_err();
    assert_eq!(reference, dispatched, "reference and dispatch disagree");
    reference
}

/// [`u8i8_error`] for the raw stage.
fn raw_error(problem: &U8I8Problem<'_>, out: &mut [i32], stride: usize) -> Error {
    u8i8_error(problem, &OutputStage::RawI32, GemmOutput::I32(out), stride)
}

/// The parameter a [`Error::BadParameter`] names; any other error fails the test.
fn bad_parameter(e: Error) -> &'static str {
    match e {
        Error::BadParameter { name, .. } => name,
        other => panic!("expected BadParameter, got {other:?}"),
    }
}

fn input_too_small(what: &'static str, needed: usize, got: usize) -> Error {
    Error::InputTooSmall { what, needed, got }
}

fn output_too_small(what: &'static str, needed: usize, got: usize) -> Error {
    Error::OutputTooSmall { what, needed, got }
}

#[test]
fn u8i8_rejects_short_operands_and_strides() {
    let p = small_problem(PerColumn::Tensor(0));
    let out = &mut [0i32; 4];
    let short_a = U8I8Problem { a: &A23[..5], ..p };
    assert_eq!(raw_error(&short_a, out, 2), input_too_small("A", 6, 5));
    // Row stride 4: (2 − 1) · 4 + 3 = 7 elements.
    let wide_a = U8I8Problem { a_stride: 4, ..p };
    assert_eq!(raw_error(&wide_a, out, 2), input_too_small("A", 7, 6));
    let short_b = U8I8Problem { b: &B32[..5], ..p };
    assert_eq!(raw_error(&short_b, out, 2), input_too_small("B", 6, 5));
    let narrow_a = U8I8Problem { a_stride: 2, ..p };
    assert_eq!(bad_parameter(raw_error(&narrow_a, out, 2)), "a_stride");
    assert_eq!(bad_parameter(raw_error(&p, out, 1)), "out_stride");
    let e = raw_error(&p, &mut out[..3], 2);
    assert_eq!(e, output_too_small("GEMM result", 4, 3));
    // Stride 3 needs (2 − 1) · 3 + 2 = 5.
    assert_eq!(raw_error(&p, out, 3), output_too_small("GEMM result", 5, 4));
}

#[test]
fn u8i8_rejects_wrong_per_column_lengths() {
    let p = small_problem(PerColumn::Tensor(0));
    let three_zero_points = small_problem(PerColumn::Column(&[1, 2, 3]));
    let e = raw_error(&three_zero_points, &mut [0; 4], 2);
    assert_eq!(bad_parameter(e), "b_zero_point");

    let f32_bias = |bias, act_times_w_scale| RequantBias::F32 {
        bias,
        act_times_w_scale,
    };
    let stages = [
        (
            u8_stage(RequantBias::None, PerColumn::Column(&[1.0])),
            "multiplier",
        ),
        (
            u8_stage(RequantBias::I32(&[1, 2, 3]), PerColumn::Tensor(1.0)),
            "bias",
        ),
        (
            u8_stage(
                f32_bias(&[1.0], PerColumn::Tensor(1.0)),
                PerColumn::Tensor(1.0),
            ),
            "bias",
        ),
        (
            u8_stage(
                f32_bias(&[1.0, 2.0], PerColumn::Column(&[1.0; 3])),
                PerColumn::Tensor(1.0),
            ),
            "act_times_w_scale",
        ),
    ];
    for (stage, name) in stages {
        let e = u8i8_error(&p, &stage, GemmOutput::U8(&mut [0; 4]), 2);
        assert_eq!(bad_parameter(e), name);
    }
    for (stage, name) in [
        (
            dequant(1.0, PerColumn::Column(&[1.0]), None, false),
            "b_scale",
        ),
        (
            dequant(1.0, PerColumn::Tensor(1.0), Some(&[1.0; 3]), false),
            "bias",
        ),
    ] {
        let e = u8i8_error(&p, &stage, GemmOutput::F32(&mut [0.0; 4]), 2);
        assert_eq!(bad_parameter(e), name);
    }
}

#[test]
fn u8i8_rejects_zero_points_outside_the_output_type() {
    let p = small_problem(PerColumn::Tensor(0));
    for (ty, zero_point) in [
        (QuantType::U8, 256),
        (QuantType::U8, -1),
        (QuantType::I8, 128),
        (QuantType::I8, -129),
    ] {
        let (mut codes, mut signed) = ([0u8; 4], [0i8; 4]);
        let out = match ty {
            QuantType::U8 => GemmOutput::U8(&mut codes),
            QuantType::I8 => GemmOutput::I8(&mut signed),
        };
        let e = u8i8_error(&p, &plain(ty, 1.0, zero_point, false), out, 2);
        assert_eq!(bad_parameter(e), "zero_point", "{ty:?} {zero_point}");
    }
}

#[test]
fn u8i8_rejects_an_output_of_the_wrong_type() {
    let p = small_problem(PerColumn::Tensor(0));
    let (mut codes, mut signed, mut ints) = ([0u8; 4], [0i8; 4], [0i32; 4]);
    let cases = [
        (OutputStage::RawI32, GemmOutput::U8(&mut codes)),
        (
            plain(QuantType::U8, 1.0, 0, false),
            GemmOutput::I8(&mut signed),
        ),
        (
            plain(QuantType::I8, 1.0, 0, false),
            GemmOutput::I32(&mut ints),
        ),
        (
            dequant(1.0, PerColumn::Tensor(1.0), None, false),
            GemmOutput::U8(&mut [0; 4]),
        ),
    ];
    for (stage, out) in cases {
        assert_eq!(bad_parameter(u8i8_error(&p, &stage, out, 2)), "out");
    }
}

#[test]
fn u8i8_rejects_size_overflow() {
    // m − 1 = 2 rows of stride usize::MAX / 2 + 1 overflow the element count of A.
    let p = U8I8Problem {
        m: 3,
        a_stride: usize::MAX / 2 + 1,
        ..small_problem(PerColumn::Tensor(0))
    };
    let e = raw_error(&p, &mut [0; 6], 2);
    assert_eq!(e, Error::SizeOverflow { what: "A elements" });
    // k × n overflows.
    let p = U8I8Problem {
        m: 1,
        n: usize::MAX / 2 + 1,
        k: 2,
        a: &[0, 0],
        a_stride: 2,
        ..small_problem(PerColumn::Tensor(0))
    };
    let e = raw_error(&p, &mut [], usize::MAX);
    assert_eq!(
        e,
        Error::SizeOverflow {
            what: "B elements (k × n)"
        }
    );
}

/// The error of the reference i64 GEMM on a 2 × 2 result, after checking that dispatch
/// agrees and that C was not written.
fn i64_error(k: usize, a: MatRef<'_>, b: MatRef<'_>, mut c: MatMut<'_>) -> Error {
    let before = c.data.to_vec();
    let reference = gemm_i64(2, 2, k, &a, &b, &mut c, true).unwrap_err();
    assert_eq!(c.data.to_vec(), before, "C was written");
    let dispatched = lowp::gemm_i64(2, 2, k, a, b, c, true, None).unwrap_err();
    assert_eq!(reference, dispatched, "reference and dispatch disagree");
    reference
}

#[test]
fn i64_rejects_views_past_their_slices() {
    let six = [1i64; 6];
    let c = &mut [0i64; 4];
    let e = i64_error(3, dense(&six[..5], 3), dense(&six, 2), c_view(c, 2));
    assert_eq!(e, input_too_small("A", 6, 5));
    let e = i64_error(3, dense(&six, 3), dense(&six[..5], 2), c_view(c, 2));
    assert_eq!(e, input_too_small("B", 6, 5));
    let e = i64_error(3, dense(&six, 3), dense(&six, 2), c_view(&mut c[..3], 2));
    assert_eq!(e, output_too_small("C", 4, 3));
    // A transposed view reaching past the slice: 1 · 1 + 2 · 3 + 1 = 8 elements.
    let a_t = MatRef {
        data: &six,
        row_stride: 1,
        col_stride: 3,
    };
    let e = i64_error(3, a_t, dense(&six, 2), c_view(c, 2));
    assert_eq!(e, input_too_small("A", 8, 6));
}

#[test]
fn i64_rejects_overlapping_c_strides() {
    let four = [1i64; 4];
    let c = &mut [0i64; 8];
    // (row stride, column stride) = (1, 1): C(0, 1) and C(1, 0) share a position;
    // (2, 0) folds each row onto one element.
    for (row_stride, col_stride) in [(1, 1), (2, 0)] {
        let view = MatMut {
            data: c,
            row_stride,
            col_stride,
        };
        let e = i64_error(2, dense(&four, 2), dense(&four, 2), view);
        assert_eq!(bad_parameter(e), "C strides", "{row_stride}, {col_stride}");
    }
}

#[test]
fn i64_rejects_size_overflow() {
    let four = [1i64; 4];
    let huge = MatRef {
        data: &four,
        row_stride: usize::MAX,
        col_stride: 1,
    };
    let e = i64_error(2, huge, dense(&four, 2), c_view(&mut [0; 4], 2));
    assert_eq!(e, Error::SizeOverflow { what: "A" });
}
