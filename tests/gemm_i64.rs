//! The CBLAS-style i64 GEMM (`lowp::gemm_i64_cblas`): FBGEMM's golden cases through the
//! wrapper on every available level, shapes that cross the kernels' cache blocks, and the
//! exact error of every bad leading dimension or buffer. (`tests/golden_gemm.rs` checks the
//! same golden cases through the view API; the property harness checks small shapes.)

mod common;

use common::golden::{Case, Manifest};
use lowp::{Error, Isa, MatMut, MatRef, MatrixOp, gemm_i64_cblas};

fn usize_param(case: &Case, key: &str) -> usize {
    case.param(key)
        .as_u64()
        .unwrap_or_else(|| panic!("{}: params.{key}", case.name)) as usize
}

fn op_param(case: &Case, key: &str) -> MatrixOp {
    match case.param(key).as_str() {
        Some("NoTranspose") => MatrixOp::NoTranspose,
        Some("Transpose") => MatrixOp::Transpose,
        other => panic!("{}: unexpected {key} {other:?}", case.name),
    }
}

#[test]
fn golden_cases_through_the_cblas_wrapper_on_every_level() {
    let manifest = Manifest::load();
    let cases = manifest.cases("gemm_i64");
    assert_eq!(cases.len(), 12, "the golden set has 12 i64 GEMM cases");
    let mut transposed = [false; 2];
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
        let (transa, transb) = (op_param(case, "transa"), op_param(case, "transb"));
        transposed[0] |= transa == MatrixOp::Transpose;
        transposed[1] |= transb == MatrixOp::Transpose;
        let accumulate = case.param("accumulate").as_bool().unwrap();
        let (a, b, c_in, want) = (
            case.i64("A"),
            case.i64("B"),
            case.i64("C_in"),
            case.i64("C_out"),
        );
        for &isa in Isa::available() {
            let mut c = c_in.clone();
            gemm_i64_cblas(
                transa,
                transb,
                m,
                n,
                k,
                &a,
                lda,
                &b,
                ldb,
                accumulate,
                &mut c,
                ldc,
                Some(isa),
            )
            .unwrap_or_else(|e| panic!("{} on {isa}: {e}", case.name));
            // C_out holds FBGEMM's whole C buffer, padding columns included (untouched).
            assert_eq!(c, want, "{} on {isa}", case.name);
        }
    }
    assert_eq!(
        transposed,
        [true, true],
        "the golden set transposes A and B"
    );
}

/// SplitMix64: full-range i64 values.
fn values(seed: u64, len: usize) -> Vec<i64> {
    let mut state = seed;
    (0..len)
        .map(|i| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            // Every 7th value an extreme, so products wrap in every way.
            match i % 7 {
                3 => i64::MIN,
                5 => i64::MAX,
                _ => (z ^ (z >> 31)) as i64,
            }
        })
        .collect()
}

/// The kernels block depth by 512, rows by 64 and columns by 256 and tile 4 rows; these
/// shapes cross every block edge, with every transpose, padded leading dimensions and both
/// accumulate modes, on every level, against the reference model.
#[test]
fn shapes_across_cache_blocks_match_the_reference_on_every_level() {
    let shapes = [
        (67, 531, 300),
        (1, 1030, 513),
        (130, 17, 257),
        (5, 3, 1000),
        (3, 9, 0),
    ];
    let ops = [MatrixOp::NoTranspose, MatrixOp::Transpose];
    for (s, &(m, n, k)) in shapes.iter().enumerate() {
        for (t, (&transa, &transb)) in ops
            .iter()
            .flat_map(|a| ops.iter().map(move |b| (a, b)))
            .enumerate()
        {
            let accumulate = t % 2 == 1;
            let (a_rows, a_width) = if transa == MatrixOp::Transpose {
                (k, m)
            } else {
                (m, k)
            };
            let (b_rows, b_width) = if transb == MatrixOp::Transpose {
                (n, k)
            } else {
                (k, n)
            };
            let (lda, ldb, ldc) = (a_width + 3, b_width + 1, n + 2);
            let seed = (s * 4 + t) as u64;
            let a = values(seed, a_rows * lda);
            let b = values(seed + 100, b_rows * ldb);
            let c_in = values(seed + 200, m * ldc);
            let view = |data, op, ld| match op {
                MatrixOp::NoTranspose => MatRef {
                    data,
                    row_stride: ld,
                    col_stride: 1,
                },
                MatrixOp::Transpose => MatRef {
                    data,
                    row_stride: 1,
                    col_stride: ld,
                },
            };
            let mut want = c_in.clone();
            lowp::reference::gemm_i64(
                m,
                n,
                k,
                &view(&a, transa, lda),
                &view(&b, transb, ldb),
                &mut MatMut {
                    data: &mut want,
                    row_stride: ldc,
                    col_stride: 1,
                },
                accumulate,
            )
            .unwrap();
            for &isa in Isa::available() {
                let mut c = c_in.clone();
                gemm_i64_cblas(
                    transa,
                    transb,
                    m,
                    n,
                    k,
                    &a,
                    lda,
                    &b,
                    ldb,
                    accumulate,
                    &mut c,
                    ldc,
                    Some(isa),
                )
                .unwrap();
                let first_bad = c.iter().zip(&want).position(|(x, y)| x != y);
                assert!(
                    first_bad.is_none(),
                    "{m}×{n}×{k} {transa:?} {transb:?} accumulate={accumulate} on {isa}: \
                     first difference at C[{}]",
                    first_bad.unwrap_or(0)
                );
            }
        }
    }
}

/// Calls the wrapper with 2 × 3 × 4 operands as given, no transposes unless told.
fn call(
    ops: (MatrixOp, MatrixOp),
    a: &[i64],
    lda: usize,
    b: &[i64],
    ldb: usize,
    c: &mut [i64],
    ldc: usize,
) -> lowp::Result<()> {
    gemm_i64_cblas(ops.0, ops.1, 2, 3, 4, a, lda, b, ldb, false, c, ldc, None)
}

fn bad(name: &'static str, reason: &str) -> lowp::Result<()> {
    Err(Error::BadParameter {
        name,
        reason: reason.to_owned(),
    })
}

#[test]
fn bad_leading_dimensions_and_buffers_are_exact_errors() {
    use MatrixOp::{NoTranspose as N, Transpose as T};
    let (a, b, mut c) = (vec![1i64; 16], vec![2i64; 16], vec![0i64; 16]);
    // A is 2 × 4 (lda ≥ 4), or stored 4 × 2 (lda ≥ 2); B is 4 × 3 (ldb ≥ 3), or stored
    // 3 × 4 (ldb ≥ 4); C is 2 × 3 (ldc ≥ 3).
    assert_eq!(
        call((N, N), &a, 3, &b, 3, &mut c, 3),
        bad(
            "lda",
            "3 is smaller than max(1, 4), the row width of A as stored"
        )
    );
    assert_eq!(
        call((T, N), &a, 1, &b, 3, &mut c, 3),
        bad(
            "lda",
            "1 is smaller than max(1, 2), the row width of A (transposed) as stored"
        )
    );
    assert_eq!(
        call((N, N), &a, 4, &b, 2, &mut c, 3),
        bad(
            "ldb",
            "2 is smaller than max(1, 3), the row width of B as stored"
        )
    );
    assert_eq!(
        call((N, T), &a, 4, &b, 3, &mut c, 3),
        bad(
            "ldb",
            "3 is smaller than max(1, 4), the row width of B (transposed) as stored"
        )
    );
    assert_eq!(
        call((N, N), &a, 4, &b, 3, &mut c, 2),
        bad(
            "ldc",
            "2 is smaller than max(1, 3), the row width of C as stored"
        )
    );
    // The smallest legal leading dimensions work, transposed or not.
    assert_eq!(call((N, N), &a, 4, &b, 3, &mut c, 3), Ok(()));
    assert_eq!(call((T, T), &a, 2, &b, 4, &mut c, 3), Ok(()));
    assert_eq!(c[..6], [8; 6]);
    // As in CBLAS, a leading dimension is at least 1 even for an empty operand.
    assert_eq!(
        gemm_i64_cblas(N, N, 0, 0, 0, &[], 1, &[], 1, false, &mut [], 0, None),
        bad(
            "ldc",
            "0 is smaller than max(1, 0), the row width of C as stored"
        )
    );
    assert_eq!(
        gemm_i64_cblas(N, N, 0, 0, 0, &[], 1, &[], 1, false, &mut [], 1, None),
        Ok(())
    );
    // Buffers: (rows − 1) · ld + width elements; padding after the last row is not needed.
    assert_eq!(
        call((N, N), &a[..8], 5, &b, 3, &mut c, 3),
        Err(Error::InputTooSmall {
            what: "A",
            needed: 9,
            got: 8
        })
    );
    assert_eq!(
        call((N, T), &a, 4, &b[..11], 4, &mut c, 3),
        Err(Error::InputTooSmall {
            what: "B",
            needed: 12,
            got: 11
        })
    );
    assert_eq!(call((N, N), &a, 4, &b, 3, &mut c[..7], 4), Ok(()));
    assert_eq!(
        call((N, N), &a, 4, &b, 3, &mut c[..6], 4),
        Err(Error::OutputTooSmall {
            what: "C",
            needed: 7,
            got: 6
        })
    );
    // Sizes that overflow usize.
    assert_eq!(
        gemm_i64_cblas(
            N,
            N,
            usize::MAX / 2,
            1,
            4,
            &a,
            4,
            &b,
            1,
            false,
            &mut c,
            1,
            None
        ),
        Err(Error::SizeOverflow { what: "A" })
    );
}
