//! The reference quantizers and dequantizers: hand-computed rows, the round-trip error
//! bound, f16 input, bad input, and the error on a real embedding table.

mod common;

use half::{bf16, f16};
use lowp::embedding::Output;
use lowp::format::{Format, Table};
use lowp::quantize::QuantInput;
use lowp::{Error, reference};
use proptest::prelude::*;

const QUANTIZED: [Format; 3] = [Format::Q8, Format::Q4, Format::Q2];

fn quantize(format: Format, input: &[f32], rows: usize, dim: usize) -> Result<Vec<u8>, Error> {
    let mut out = vec![0u8; format.table_bytes(rows, dim).unwrap()];
    reference::quantize(format, QuantInput::F32(input), rows, dim, &mut out).map(|()| out)
}

fn dequantize(format: Format, bytes: &[u8], rows: usize, dim: usize) -> Vec<f32> {
    let table = Table::new(format, rows, dim, bytes).unwrap();
    let mut out = vec![0.0f32; rows * dim];
    reference::dequantize(&table, &mut Output::F32(&mut out)).unwrap();
    out
}

/// Little-endian bytes of codes followed by f32 scale and bias.
fn q8_row(codes: &[u8], scale: f32, bias: f32) -> Vec<u8> {
    [codes, &scale.to_le_bytes(), &bias.to_le_bytes()].concat()
}

/// Little-endian bytes of packed codes followed by f16 scale and bias (given as bits).
fn nbit_row(packed: &[u8], scale: u16, bias: u16) -> Vec<u8> {
    [packed, &scale.to_le_bytes(), &bias.to_le_bytes()].concat()
}

const F16_ONE: u16 = 0x3c00;

#[test]
fn q8_row_rounds_half_to_even() {
    // min 0, max 255: scale 1, and 255 / (255 + 1e-8) is exactly 1 in f32, so the codes are
    // the values rounded half to even (2.5 → 2, 3.5 → 4).
    let x = [0.0, 2.5, 3.5, 255.0, 100.49];
    let q = quantize(Format::Q8, &x, 1, 5).unwrap();
    assert_eq!(q, q8_row(&[0, 2, 4, 255, 100], 1.0, 0.0));
    assert_eq!(
        dequantize(Format::Q8, &q, 1, 5),
        [0.0, 2.0, 4.0, 255.0, 100.0]
    );
}

#[test]
fn q8_epsilon_dominates_a_tiny_range() {
    // range 1e-8: the stored scale is range / 255, but codes use 255 / (range + 1e-8) =
    // 1.275e10 (f32: 12750000128), so the maximum gets code 127.5 → 128, not 255, and
    // decodes to about half its value. FBGEMM does exactly this.
    let x = [0.0, 1e-8];
    let q = quantize(Format::Q8, &x, 1, 2).unwrap();
    assert_eq!(q, q8_row(&[0, 128], 1e-8 / 255.0, 0.0));
    let d = dequantize(Format::Q8, &q, 1, 2);
    assert_eq!(d[1], 128.0 * (1e-8f32 / 255.0));
}

#[test]
fn q4_row_with_odd_dim() {
    // min 0, max 15: scale 1, inverse 1; codes 0, 2 (1.5 → 2), 3, 8 (7.5 → 8), 15 packed
    // low nibble first, the last byte's high nibble zero.
    let x = [0.0, 1.5, 3.0, 7.5, 15.0];
    let q = quantize(Format::Q4, &x, 1, 5).unwrap();
    assert_eq!(q, nbit_row(&[0x20, 0x83, 0x0f], F16_ONE, 0));
    assert_eq!(dequantize(Format::Q4, &q, 1, 5), [0.0, 2.0, 3.0, 8.0, 15.0]);
}

#[test]
fn q4_denormal_scale_clamps_the_top_code() {
    // range 2.2e-6: 2.2e-6 / 15 = 1.47e-7 rounds to the f16 denormal 2 · 2⁻²⁴, so the
    // maximum is 18.45 steps above the bias and its code clamps to 15.
    let x = [0.0, 2.2e-6];
    let q = quantize(Format::Q4, &x, 1, 2).unwrap();
    assert_eq!(q, nbit_row(&[0xf0], 0x0002, 0));
}

#[test]
fn q2_row() {
    // min 1, max 4: scale 1, bias 1; codes 0, 1, 2, 3, 2 (1.5 → 2), 2 (2.5 → 2), four per
    // byte from the lowest bits: 0b11_10_01_00 = 0xe4, then 0b10_10 = 0x0a.
    let x = [1.0, 2.0, 3.0, 4.0, 2.5, 3.5];
    let q = quantize(Format::Q2, &x, 1, 6).unwrap();
    assert_eq!(q, nbit_row(&[0xe4, 0x0a], F16_ONE, F16_ONE));
    assert_eq!(
        dequantize(Format::Q2, &q, 1, 6),
        [1.0, 2.0, 3.0, 4.0, 3.0, 3.0]
    );
}

#[test]
fn constant_rows() {
    // Q8: scale 0, bias the value, codes 0. Q4/Q2: range 0 gives scale 1, codes 0.
    let x = [-7.25f32; 5];
    let q8 = quantize(Format::Q8, &x, 1, 5).unwrap();
    assert_eq!(q8, q8_row(&[0; 5], 0.0, -7.25));
    let minus_7_25 = f16::from_f32(-7.25).to_bits();
    assert_eq!(
        quantize(Format::Q4, &x, 1, 5).unwrap(),
        nbit_row(&[0; 3], F16_ONE, minus_7_25)
    );
    assert_eq!(
        quantize(Format::Q2, &x, 1, 5).unwrap(),
        nbit_row(&[0; 2], F16_ONE, minus_7_25)
    );
    for format in QUANTIZED {
        let q = quantize(format, &x, 1, 5).unwrap();
        assert_eq!(dequantize(format, &q, 1, 5), x, "{format}");
    }
}

#[test]
fn constant_1000_3_gets_a_negative_scale() {
    // f16(1000.3) = 1000.5 (0x63d1) lies above the maximum, so range = −0.20001221.
    // Q4: scale f16(−0.20001221 / 15) = −1748 · 2⁻¹⁷ (0xa2d4); code round(14.998) = 15;
    // value 1000.5 − 15 · 1748 · 2⁻¹⁷ = 1000 + 4914.5 · 2⁻¹⁴, a tie between f32 neighbours
    // (2⁻¹⁴ apart here), rounded to even: 1000 + 4914 · 2⁻¹⁴.
    // Q2: scale f16(−0.20001221 / 3) = −1092 · 2⁻¹⁴ (0xac44); code 3; value 1000.5 − 3 · 1092
    // · 2⁻¹⁴ = 1000 + 4916 · 2⁻¹⁴, exact.
    // Q8 has no f16 rounding: scale 0, bias 1000.3.
    let x = [1000.3f32; 3];
    let q4 = quantize(Format::Q4, &x, 1, 3).unwrap();
    assert_eq!(q4, nbit_row(&[0xff, 0x0f], 0xa2d4, 0x63d1));
    assert_eq!(
        dequantize(Format::Q4, &q4, 1, 3),
        [1000.0 + 4914.0 / 16384.0; 3]
    );
    let q2 = quantize(Format::Q2, &x, 1, 3).unwrap();
    assert_eq!(q2, nbit_row(&[0x3f], 0xac44, 0x63d1));
    assert_eq!(
        dequantize(Format::Q2, &q2, 1, 3),
        [1000.0 + 4916.0 / 16384.0; 3]
    );
    let q8 = quantize(Format::Q8, &x, 1, 3).unwrap();
    assert_eq!(q8, q8_row(&[0; 3], 0.0, 1000.3));
}

#[test]
fn first_minimum_decides_the_sign_of_a_zero_bias() {
    // FBGEMM's reference takes the first minimal element (std::min_element).
    let q = quantize(Format::Q8, &[0.0, -0.0, 1.0, -0.0, 0.0, 1.0], 2, 3).unwrap();
    assert_eq!(q[7..11], 0.0f32.to_le_bytes());
    assert_eq!(q[18..22], (-0.0f32).to_le_bytes());
}

#[test]
fn dim_zero_writes_a_zero_rows_scale_and_bias() {
    assert_eq!(quantize(Format::Q8, &[], 2, 0).unwrap(), [0u8; 16]);
    assert_eq!(
        quantize(Format::Q4, &[], 2, 0).unwrap(),
        [nbit_row(&[], F16_ONE, 0), nbit_row(&[], F16_ONE, 0)].concat()
    );
}

#[test]
fn dequantize_writes_exactly_dim_values_per_row() {
    // dim 5 at 4 bits holds 6 codes per row; the padding code must not be written.
    let x: Vec<f32> = (0..10).map(|i| i as f32).collect();
    for format in QUANTIZED {
        let q = quantize(format, &x, 2, 5).unwrap();
        let table = Table::new(format, 2, 5, &q).unwrap();
        let mut out = vec![f32::NAN; 12];
        reference::dequantize(&table, &mut Output::F32(&mut out)).unwrap();
        assert!(out[..10].iter().all(|v| !v.is_nan()), "{format}: {out:?}");
        assert!(
            out[10..].iter().all(|v| v.is_nan()),
            "{format} wrote past rows × dim"
        );
    }
}

#[test]
fn f16_and_bf16_output_round_the_f32_values() {
    let x: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
    for format in QUANTIZED {
        let q = quantize(format, &x, 1, 37).unwrap();
        let table = Table::new(format, 1, 37, &q).unwrap();
        let f32s = dequantize(format, &q, 1, 37);
        let mut halves = vec![f16::ZERO; 37];
        reference::dequantize(&table, &mut Output::F16(&mut halves)).unwrap();
        let mut brains = vec![bf16::ZERO; 37];
        reference::dequantize(&table, &mut Output::Bf16(&mut brains)).unwrap();
        for e in 0..37 {
            assert_eq!(
                halves[e],
                f16::from_f32(f32s[e]),
                "{format} f16 element {e}"
            );
            assert_eq!(
                brains[e],
                bf16::from_f32(f32s[e]),
                "{format} bf16 element {e}"
            );
        }
    }
}

#[test]
fn rejects_float_formats() {
    let x = [1.0f32; 4];
    for format in [Format::F32, Format::F16, Format::Bf16] {
        let mut out = vec![0u8; format.table_bytes(1, 4).unwrap()];
        let err = reference::quantize(format, QuantInput::F32(&x), 1, 4, &mut out).unwrap_err();
        assert!(
            matches!(err, Error::BadParameter { name: "format", .. }),
            "{err:?}"
        );
    }
    let table = Table::from_f32(1, 4, &x).unwrap();
    let mut out = [0.0f32; 4];
    let err = reference::dequantize(&table, &mut Output::F32(&mut out)).unwrap_err();
    assert!(
        matches!(err, Error::BadParameter { name: "table", .. }),
        "{err:?}"
    );
}

#[test]
fn rejects_wrong_sizes() {
    let x = [1.0f32; 11];
    let mut out = vec![0u8; Format::Q4.table_bytes(3, 4).unwrap()];
    assert_eq!(
        reference::quantize(Format::Q4, QuantInput::F32(&x), 3, 4, &mut out),
        Err(Error::InputTooSmall {
            what: "rows to quantize",
            needed: 12,
            got: 11
        })
    );
    let x = [1.0f32; 12];
    for len in [out.len() - 1, out.len() + 1] {
        let mut out = vec![0u8; len];
        assert_eq!(
            reference::quantize(Format::Q4, QuantInput::F32(&x), 3, 4, &mut out),
            Err(Error::TableSize {
                expected: 18,
                got: len
            })
        );
    }
    let mut out = [];
    assert_eq!(
        reference::quantize(Format::Q8, QuantInput::F32(&x), usize::MAX, 2, &mut out),
        Err(Error::SizeOverflow {
            what: "input elements (rows × dim)"
        })
    );

    let q = quantize(Format::Q2, &x, 3, 4).unwrap();
    let table = Table::new(Format::Q2, 3, 4, &q).unwrap();
    let mut small = [0.0f32; 11];
    assert_eq!(
        reference::dequantize(&table, &mut Output::F32(&mut small)),
        Err(Error::OutputTooSmall {
            what: "dequantized rows",
            needed: 12,
            got: 11
        })
    );
}

/// The row and reason of an `UnrepresentableRow`, or a panic.
fn unrepresentable(format: Format, x: &[f32], rows: usize, dim: usize) -> (usize, String) {
    match quantize(format, x, rows, dim) {
        Err(Error::UnrepresentableRow { row, reason }) => (row, reason),
        other => panic!(
            "{format}: expected UnrepresentableRow, got {:?}",
            other.map(|_| ())
        ),
    }
}

#[test]
fn unrepresentable_rows_are_named() {
    // Rows of 2: row 0 is fine everywhere; row 2 breaks what each case says.
    let table = |bad: [f32; 2]| [[0.5, 1.5], [-2.0, 3.0], bad, [1.0, 1.0]].concat();

    // Minimum beyond f16: the n-bit bias; Q8 stores f32 and is fine.
    let x = table([70000.0, 70001.0]);
    for format in [Format::Q4, Format::Q2] {
        let (row, reason) = unrepresentable(format, &x, 4, 2);
        assert_eq!(row, 2, "{format}");
        assert!(reason.contains("bias"), "{format}: {reason}");
    }
    assert!(quantize(Format::Q8, &x, 4, 2).is_ok());

    // Range / levels beyond f16: the scale (9e5 / 15 = 60000 fits, 1e6 / 15 does not).
    assert!(quantize(Format::Q4, &table([0.0, 9e5]), 4, 2).is_ok());
    let (row, reason) = unrepresentable(Format::Q4, &table([0.0, 1e6]), 4, 2);
    assert_eq!(row, 2);
    assert!(reason.contains("scale"), "{reason}");
    let (row, reason) = unrepresentable(Format::Q2, &table([0.0, 2e5]), 4, 2);
    assert_eq!(row, 2);
    assert!(reason.contains("scale"), "{reason}");

    // A range that overflows f32 breaks Q8 too.
    let (row, reason) = unrepresentable(Format::Q8, &table([-3e38, 3e38]), 4, 2);
    assert_eq!(row, 2);
    assert!(reason.contains("range"), "{reason}");

    // NaN and infinities, in every format, naming the column.
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        for format in QUANTIZED {
            let (row, reason) = unrepresentable(format, &table([1.0, bad]), 4, 2);
            assert_eq!(row, 2, "{format} {bad}");
            assert!(reason.contains("column 1"), "{format}: {reason}");
        }
    }
}

/// Checks one quantized row against its input: the stored bias and scale follow the rules,
/// and every element decodes within half a step of its value (see the property below).
fn check_round_trip(format: Format, x: &[f32], q: &[u8]) -> Result<(), TestCaseError> {
    if x.is_empty() {
        return Ok(());
    }
    let (min, max) = x
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let decoded = dequantize(format, q, 1, x.len());
    let at = q.len() - format.scale_bias_bytes();
    let bits = format.code_bits().unwrap();
    let levels = f64::from((1u32 << bits) - 1);
    let (step, extra) = if bits == 8 {
        let scale = f32::from_le_bytes(q[at..at + 4].try_into().unwrap());
        let bias = f32::from_le_bytes(q[at + 4..].try_into().unwrap());
        prop_assert_eq!(bias, min);
        prop_assert_eq!(scale.to_bits(), ((max - min) / 255.0).to_bits());
        // FBGEMM's codes use 255 / (range + 1e-8): value t gets t · range / (range + 1e-8)
        // before rounding, off by less than 1e-8.
        (f64::from(max - min) / 255.0, 1e-8)
    } else {
        let bias = f16::from_le_bytes([q[at + 2], q[at + 3]]);
        prop_assert_eq!(bias, f16::from_f32(min));
        let bias = f64::from(bias.to_f32());
        // The grid starts at the rounded bias, so elements below it clamp to code 0 (off by
        // up to |min − bias|), and its far end moves by `levels` times the f16 rounding of
        // the scale (half an ulp: 2⁻¹¹ relative, or 2⁻²⁵ in the denormal range).
        let step = (f64::from(max) - bias).abs() / levels;
        let extra =
            (f64::from(min) - bias).abs() + levels * (step * 2f64.powi(-11) + 2f64.powi(-25));
        (step, extra)
    };
    // Float slack: each of the few f32 roundings (x − min, the scale, the inverse, the
    // product, the multiply-add) is at most half an ulp of a value below |min| + |max|.
    let slack = 4.0 * f64::from(f32::EPSILON) * (f64::from(min.abs()) + f64::from(max.abs()));
    let tolerance = step / 2.0 + extra + slack;
    for (e, (&v, &d)) in x.iter().zip(&decoded).enumerate() {
        let err = (f64::from(d) - f64::from(v)).abs();
        prop_assert!(
            err <= tolerance,
            "{} element {}: {} decodes to {} (error {:e} > {:e}, step {:e})",
            format,
            e,
            v,
            d,
            err,
            tolerance,
            step
        );
    }
    Ok(())
}

/// Rows of finite values whose minimum and scale fit f16: a center, a spread from 1e-6 to
/// 1e4, and sometimes values repeated (constant stretches, ties).
fn row() -> impl Strategy<Value = Vec<f32>> {
    (0usize..70, -2e4f32..2e4, -6i32..=4).prop_flat_map(|(dim, center, exp)| {
        let spread = 10f32.powi(exp);
        prop::collection::vec(
            prop_oneof![
                4 => (-1.0f32..=1.0).prop_map(move |u| center + spread * u),
                1 => Just(center),
            ],
            dim,
        )
    })
}

proptest! {
    /// dequantize(quantize(x)) is within half a step of x, per element: the step is the
    /// ideal one (range / levels, from the row and the stored bias), plus FBGEMM's own
    /// deviations (its 1e-8 epsilon in Q8; the f16 rounding of bias and scale in Q4/Q2)
    /// and a few f32 roundings.
    #[test]
    fn round_trip_within_half_a_step(x in row()) {
        for format in QUANTIZED {
            let q = quantize(format, &x, 1, x.len()).unwrap();
            check_round_trip(format, &x, &q)?;
        }
    }

    /// f16 input gives the bytes of f32 input of the same values.
    #[test]
    fn f16_input_equals_f32_input(bits in prop::collection::vec(any::<u16>(), 0..80), rows in 1usize..4) {
        let halves: Vec<f16> = bits.into_iter().map(f16::from_bits).filter(|h| h.is_finite()).collect();
        let dim = halves.len() / rows;
        let halves = &halves[..rows * dim];
        let floats: Vec<f32> = halves.iter().map(|h| h.to_f32()).collect();
        for format in QUANTIZED {
            let mut from_halves = vec![0u8; format.table_bytes(rows, dim).unwrap()];
            let r16 = reference::quantize(format, QuantInput::F16(halves), rows, dim, &mut from_halves);
            let r32 = quantize(format, &floats, rows, dim);
            match r32 {
                Ok(from_floats) => {
                    prop_assert_eq!(r16, Ok(()));
                    prop_assert_eq!(from_halves, from_floats);
                }
                Err(e) => prop_assert_eq!(r16, Err(e)),
            }
        }
    }
}

#[test]
fn real_embedding_table_error() {
    let (rows, dim) = (4096, 384);
    let x = common::read_data_f32("minilm-word-embeddings-4096x384.f32", rows, dim);
    // Known figures for row-wise min/max quantization of this table (../shared/data/README.md).
    for (format, known) in [
        (Format::Q8, 4.4e-4),
        (Format::Q4, 7.5e-3),
        (Format::Q2, 3.8e-2),
    ] {
        let q = quantize(format, &x, rows, dim).unwrap();
        let d = dequantize(format, &q, rows, dim);
        let sum_sq: f64 = x
            .iter()
            .zip(&d)
            .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
            .sum();
        let rmse = (sum_sq / x.len() as f64).sqrt();
        println!("{format}: RMSE {rmse:.4e} (known {known:.1e})");
        assert!(
            (rmse / known - 1.0).abs() <= 0.05,
            "{format}: RMSE {rmse:e} is not within 5% of {known:e}"
        );
    }
}
