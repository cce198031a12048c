//! FBGEMM's own GEMM outputs (`../shared/golden/`, kinds `gemm_u8i8_requant` and
//! `gemm_i64`) reproduced exactly by the reference model and by the dispatched operations.

mod common;

use common::golden::{Case, Manifest};
use lowp::{
    GemmOutput, MatMut, MatRef, OutputStage, PerColumn, QuantType, RequantBias, U8I8Problem,
};

/// The case's per-tensor (one value) or per-column (`n` values) parameter.
fn per_column<'v, T: Copy>(case: &Case, values: &'v [T], n: usize) -> PerColumn<'v, T> {
    match case.param("q_granularity").as_str() {
        Some("TENSOR") => {
            assert_eq!(values.len(), 1, "{}: per-tensor parameter", case.name);
            PerColumn::Tensor(values[0])
        }
        Some("OUT_CHANNEL") => {
            assert_eq!(values.len(), n, "{}: per-column parameter", case.name);
            PerColumn::Column(values)
        }
        other => panic!("{}: unexpected q_granularity {other:?}", case.name),
    }
}

fn usize_param(case: &Case, key: &str) -> usize {
    case.param(key)
        .as_u64()
        .unwrap_or_else(|| panic!("{}: params.{key}", case.name)) as usize
}

fn i32_param(case: &Case, key: &str) -> i32 {
    case.param(key)
        .as_i64()
        .unwrap_or_else(|| panic!("{}: params.{key}", case.name)) as i32
}

/// Runs `stage` through the reference and through dispatch, checks that they agree bit for
/// bit, and returns the reference's output.
fn run_u8<'a>(problem: &U8I8Problem<'a>, stage: &OutputStage<'a>, n_out: usize) -> Vec<u8> {
    let mut reference = vec![0xCD_u8; n_out];
    lowp::reference::gemm_u8i8(
        problem,
        stage,
        &mut GemmOutput::U8(&mut reference),
        problem.n,
    )
    .expect("reference u8i8 GEMM");
    let mut dispatched = vec![0xCD_u8; n_out];
    lowp::gemm_u8i8(
        problem,
        stage,
        GemmOutput::U8(&mut dispatched),
        problem.n,
        None,
    )
    .expect("dispatched u8i8 GEMM");
    assert_eq!(reference, dispatched, "dispatch differs from the reference");
    reference
}

fn run_raw(problem: &U8I8Problem<'_>) -> Vec<i32> {
    let len = problem.m * problem.n;
    let stage = OutputStage::RawI32;
    let mut reference = vec![0x5555_5555; len];
    lowp::reference::gemm_u8i8(
        problem,
        &stage,
        &mut GemmOutput::I32(&mut reference),
        problem.n,
    )
    .expect("reference u8i8 GEMM, raw");
    let mut dispatched = vec![0x5555_5555; len];
    lowp::gemm_u8i8(
        problem,
        &stage,
        GemmOutput::I32(&mut dispatched),
        problem.n,
        None,
    )
    .expect("dispatched u8i8 GEMM, raw");
    assert_eq!(reference, dispatched, "dispatch differs from the reference");
    reference
}

#[test]
fn gemm_u8i8_requant_matches_fbgemm() {
    let manifest = Manifest::load();
    let cases = manifest.cases("gemm_u8i8_requant");
    assert_eq!(cases.len(), 5, "the golden set has 5 u8i8 GEMM cases");
    for case in &cases {
        let (m, n, k) = (
            usize_param(case, "M"),
            usize_param(case, "N"),
            usize_param(case, "K"),
        );
        assert_eq!(case.shape("A"), [m, k], "{}", case.name);
        assert_eq!(case.shape("B"), [k, n], "{}", case.name);
        let a = case.u8("A");
        let b = case.i8("B");
        let zb_values = case.i32("B_zero_point");
        let multipliers = case.f32("C_multiplier");
        let zb = per_column(case, &zb_values, n);
        let problem = U8I8Problem {
            m,
            n,
            k,
            a: &a,
            a_stride: k,
            a_zero_point: u8::try_from(i32_param(case, "A_zero_point")).unwrap(),
            b: &b,
            b_zero_point: zb,
        };

        // The generator passed FBGEMM col_offsets[j] = Σk B[k][j] − zb·K; recomputing
        // them checks that B and the zero points were read the way FBGEMM saw them.
        let col_offsets = case.i32("col_offsets");
        for (j, &offset) in col_offsets.iter().enumerate() {
            let col_sum: i32 = (0..k).map(|kk| i32::from(b[kk * n + j])).sum();
            assert_eq!(
                offset,
                col_sum - zb.get(j) * k as i32,
                "{}: col_offsets[{j}]",
                case.name
            );
        }

        let i32_bias;
        let f32_bias;
        let scales;
        let bias = match case.param("bias_type").as_str() {
            Some("i32") => {
                i32_bias = case.i32("bias");
                RequantBias::I32(&i32_bias)
            }
            Some("f32") => {
                f32_bias = case.f32("bias");
                scales = case.f32("act_times_w_scale");
                RequantBias::F32 {
                    bias: &f32_bias,
                    act_times_w_scale: per_column(case, &scales, n),
                }
            }
            other => panic!("{}: unexpected bias_type {other:?}", case.name),
        };
        let stage = OutputStage::Requantize {
            out: QuantType::U8,
            bias,
            multiplier: per_column(case, &multipliers, n),
            zero_point: i32_param(case, "C_zero_point"),
            relu: case.param("fuse_relu").as_bool().unwrap(),
        };
        let got = run_u8(&problem, &stage, m * n);
        let want = case.u8("C");
        let differing = got.iter().zip(&want).filter(|(g, w)| g != w).count();
        assert_eq!(
            differing,
            0,
            "{}: {differing} of {} output bytes differ from FBGEMM's",
            case.name,
            want.len()
        );
        println!("{}: {} output bytes equal FBGEMM's", case.name, want.len());
    }
}

#[test]
fn saturation_case_is_exact_where_fbgemm_acc16_model_saturates() {
    let manifest = Manifest::load();
    let cases = manifest.cases("gemm_u8i8_requant");
    let case = cases
        .iter()
        .find(|c| c.name == "gemm_u8i8_saturation_k64")
        .expect("the saturation golden case");
    let (m, n, k) = (
        usize_param(case, "M"),
        usize_param(case, "N"),
        usize_param(case, "K"),
    );
    let a = case.u8("A");
    let b = case.i8("B");
    assert!(a.iter().all(|&x| x == 255) && b.iter().all(|&x| x == -128));
    let problem = U8I8Problem {
        m,
        n,
        k,
        a: &a,
        a_stride: k,
        a_zero_point: u8::try_from(i32_param(case, "A_zero_point")).unwrap(),
        b: &b,
        b_zero_point: PerColumn::Tensor(i32_param(case, "B_zero_point_scalar")),
    };
    let raw = run_raw(&problem);
    let exact = case.meta["results"]["exact_acc"].as_i64().unwrap() as i32;
    assert_eq!(exact, 255 * -128 * 64);
    assert!(raw.iter().all(|&r| r == exact), "lowp raw {raw:?}");
    // FBGEMM's VNNI accumulators, for both packing requests, and its acc32 model.
    assert_eq!(raw, case.i32("acc32_raw"));
    assert_eq!(raw, case.i32("acc16_request_raw"));
    assert_eq!(raw, case.i32("ref_acc32"));
    // FBGEMM's acc16 model saturates its i16 pair sums; lowp does not.
    let acc16_model = case.i32("ref_acc16_model");
    assert!(acc16_model.iter().all(|&r| r == -32768), "{acc16_model:?}");
}

/// `(row_stride, col_stride)` of an operand stored with leading dimension `ld`, transposed
/// or not, as `cblas_gemm_i64_i64acc` reads it.
fn strides(case: &Case, trans_key: &str, ld: usize) -> (usize, usize) {
    match case.param(trans_key).as_str() {
        Some("NoTranspose") => (ld, 1),
        Some("Transpose") => (1, ld),
        other => panic!("{}: unexpected {trans_key} {other:?}", case.name),
    }
}

#[test]
fn gemm_i64_matches_fbgemm() {
    let manifest = Manifest::load();
    let cases = manifest.cases("gemm_i64");
    assert_eq!(cases.len(), 12, "the golden set has 12 i64 GEMM cases");
    for case in &cases {
        let (m, n, k) = (
            usize_param(case, "M"),
            usize_param(case, "N"),
            usize_param(case, "K"),
        );
        let (lda, ldb, ldc) = (
            usize_param(case, "lda"),
            usize_param(case, "ldb"),
            usize_param(case, "ldc"),
        );
        let accumulate = case.param("accumulate").as_bool().unwrap();
        let a_data = case.i64("A");
        let b_data = case.i64("B");
        let c_in = case.i64("C_in");
        let want = case.i64("C_out");
        let (a_rs, a_cs) = strides(case, "transa", lda);
        let (b_rs, b_cs) = strides(case, "transb", ldb);
        let a = MatRef {
            data: &a_data,
            row_stride: a_rs,
            col_stride: a_cs,
        };
        let b = MatRef {
            data: &b_data,
            row_stride: b_rs,
            col_stride: b_cs,
        };

        let mut reference = c_in.clone();
        lowp::reference::gemm_i64(
            m,
            n,
            k,
            &a,
            &b,
            &mut MatMut {
                data: &mut reference,
                row_stride: ldc,
                col_stride: 1,
            },
            accumulate,
        )
        .expect("reference i64 GEMM");
        let mut dispatched = c_in.clone();
        lowp::gemm_i64(
            m,
            n,
            k,
            a,
            b,
            MatMut {
                data: &mut dispatched,
                row_stride: ldc,
                col_stride: 1,
            },
            accumulate,
            None,
        )
        .expect("dispatched i64 GEMM");

        assert_eq!(reference, want, "{}: reference vs FBGEMM", case.name);
        assert_eq!(dispatched, want, "{}: dispatch vs FBGEMM", case.name);
        // Padding columns j ≥ n of C are FBGEMM's input, untouched.
        for i in 0..m {
            assert_eq!(
                reference[i * ldc + n..(i + 1) * ldc],
                c_in[i * ldc + n..(i + 1) * ldc],
                "{}: padding of row {i}",
                case.name
            );
        }
        // The case must exercise the result: C_out differs from C_in in its view.
        assert_ne!(want, c_in, "{}", case.name);
    }
}
