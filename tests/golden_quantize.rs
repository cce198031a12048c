//! The reference quantizers and dequantizers against FBGEMM's own outputs
//! (`../shared/golden/`, kind `rowwise_quant`: 64 synthetic rows at dims 37 and 8).
//!
//! Bytes must equal FBGEMM's on every row, except rows where FBGEMM stored an infinite or
//! NaN scale or bias: there lowp deliberately returns `Error::UnrepresentableRow` naming the
//! row, and this test checks that instead. Dequantized values must equal FBGEMM's bit for
//! bit over the first `dim` columns (FBGEMM's n-bit dequantizer emits a padded width).

mod common;

use common::golden::{Case, Manifest};
use half::f16;
use lowp::embedding::Output;
use lowp::format::{Format, Table};
use lowp::quantize::QuantInput;
use lowp::{Error, reference};

/// The formats and the key of each in a case's `results`.
const FORMATS: [(Format, &str); 3] = [
    (Format::Q8, "bit8"),
    (Format::Q4, "bit4"),
    (Format::Q2, "bit2"),
];

/// The stored scale and bias of one quantized row.
fn scale_bias(format: Format, row: &[u8]) -> (f32, f32) {
    let at = row.len() - format.scale_bias_bytes();
    if format == Format::Q8 {
        let f = |i: usize| f32::from_le_bytes(row[i..i + 4].try_into().unwrap());
        (f(at), f(at + 4))
    } else {
        let f = |i: usize| f16::from_le_bytes([row[i], row[i + 1]]).to_f32();
        (f(at), f(at + 2))
    }
}

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

/// lowp's dequantization of `rows` (row numbers of the case) against FBGEMM's, whose rows
/// are `width ≥ dim` wide: bit-equal, or both NaN where FBGEMM gave NaN.
fn assert_dequant_matches(
    case: &Case,
    what: &str,
    lowp: &[f32],
    fbgemm: &[f32],
    width: usize,
    rows: &[usize],
) {
    let dim = lowp.len() / rows.len().max(1);
    for (i, &r) in rows.iter().enumerate() {
        for c in 0..dim {
            let (got, want) = (lowp[i * dim + c], fbgemm[r * width + c]);
            let same = if want.is_nan() {
                got.is_nan()
            } else {
                got.to_bits() == want.to_bits()
            };
            assert!(
                same,
                "{} {what}: row {r} column {c}: lowp {got:e} ({:#010x}), FBGEMM {want:e} ({:#010x})",
                case.name,
                got.to_bits(),
                want.to_bits()
            );
        }
    }
}

fn check_format(case: &Case, format: Format, key: &str) {
    let rows = case.param("rows").as_u64().unwrap() as usize;
    let dim = case.param("dim").as_u64().unwrap() as usize;
    let input = case.f32("input");
    let results = &case.meta["results"][key];
    let output_array = results["output_array"].as_str().unwrap();
    let dequant_array = results["dequant_array"].as_str().unwrap();
    let golden = case.u8(output_array);
    let row_bytes = format.row_bytes(dim).unwrap();
    assert_eq!(
        case.shape(output_array),
        [rows, row_bytes],
        "{} {output_array}",
        case.name
    );
    assert_eq!(results["row_bytes"].as_u64(), Some(row_bytes as u64));

    // Rows where FBGEMM stored an infinite or NaN scale or bias.
    let bad: Vec<usize> = (0..rows)
        .filter(|&r| {
            let (s, b) = scale_bias(format, &golden[r * row_bytes..(r + 1) * row_bytes]);
            !(s.is_finite() && b.is_finite())
        })
        .collect();
    let good: Vec<usize> = (0..rows).filter(|r| !bad.contains(r)).collect();
    println!(
        "{} {format}: rows FBGEMM stored with a non-finite scale or bias: {bad:?}",
        case.name
    );

    // The whole table: an error naming the first such row, or FBGEMM's bytes.
    match (quantize(format, &input, rows, dim), bad.first()) {
        (Ok(out), None) => assert!(out == golden, "{} {format}: bytes differ", case.name),
        (Err(Error::UnrepresentableRow { row, .. }), Some(&first)) => assert_eq!(row, first),
        (other, first) => panic!(
            "{} {format}: whole table gave {:?}, expected an error at row {first:?} or success",
            case.name,
            other.map(|_| ())
        ),
    }

    // Each row alone: FBGEMM's bytes, or an error for this row that says whether the bias
    // or the scale does not fit, as FBGEMM's stored values show.
    for r in 0..rows {
        let want = &golden[r * row_bytes..(r + 1) * row_bytes];
        let got = quantize(format, &input[r * dim..(r + 1) * dim], 1, dim);
        if bad.contains(&r) {
            let Err(Error::UnrepresentableRow { row: 0, reason }) = got else {
                panic!(
                    "{} {format} row {r}: expected UnrepresentableRow, got {got:?}",
                    case.name
                );
            };
            let (scale, bias) = scale_bias(format, want);
            let culprit = if bias.is_finite() { "scale" } else { "bias" };
            assert!(
                reason.contains(culprit),
                "{} {format} row {r}: FBGEMM stored scale {scale}, bias {bias}; lowp says {reason:?}",
                case.name
            );
        } else {
            let got = got.unwrap_or_else(|e| panic!("{} {format} row {r}: {e}", case.name));
            assert_eq!(got, want, "{} {format} row {r}: bytes differ", case.name);
        }
    }

    // The representable rows together, as one table: FBGEMM's bytes.
    let good_input: Vec<f32> = good
        .iter()
        .flat_map(|&r| input[r * dim..(r + 1) * dim].to_vec())
        .collect();
    let good_golden: Vec<u8> = good
        .iter()
        .flat_map(|&r| golden[r * row_bytes..(r + 1) * row_bytes].to_vec())
        .collect();
    let ours = quantize(format, &good_input, good.len(), dim).unwrap();
    assert!(
        ours == good_golden,
        "{} {format}: representable rows differ",
        case.name
    );

    // Dequantization. FBGEMM's width: dim for 8-bit, the packed width for n-bit.
    let fbgemm = case.f32(dequant_array);
    let width = case.shape(dequant_array)[1];
    let packed_width = match format.code_bits().unwrap() {
        8 => dim,
        bits => format.data_bytes(dim).unwrap() * (8 / bits as usize),
    };
    assert_eq!(width, packed_width, "{} {dequant_array} width", case.name);
    assert_eq!(case.shape(dequant_array)[0], rows);
    // FBGEMM's rows with a non-finite scale or bias decode to NaN throughout.
    for &r in &bad {
        assert!(
            fbgemm[r * width..r * width + dim]
                .iter()
                .all(|v| v.is_nan()),
            "{} {format} row {r}: FBGEMM's dequantization is not all NaN",
            case.name
        );
    }
    let all: Vec<usize> = (0..rows).collect();
    let from_fbgemm_bytes = dequantize(format, &golden, rows, dim);
    assert_dequant_matches(
        case,
        "dequantized FBGEMM bytes",
        &from_fbgemm_bytes,
        &fbgemm,
        width,
        &all,
    );
    let from_ours = dequantize(format, &ours, good.len(), dim);
    assert_dequant_matches(
        case,
        "dequantized lowp bytes",
        &from_ours,
        &fbgemm,
        width,
        &good,
    );
}

#[test]
fn rowwise_quant_matches_fbgemm() {
    let cases = Manifest::load().cases("rowwise_quant");
    assert_eq!(cases.len(), 2, "expected the 64×37 and 64×8 cases");
    for case in &cases {
        for (format, key) in FORMATS {
            check_format(case, format, key);
        }
    }
}
