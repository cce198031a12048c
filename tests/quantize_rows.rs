//! `quantize_rows`: disjoint row ranges give the whole table's bytes on every level and for
//! both clippings; errors name the row by its table index; the greedy clipping keeps the
//! format, never loses to min/max, and lowers the error on the MiniLM word embeddings.

mod common;

use half::f16;
use lowp::embedding::Output;
use lowp::{Clipping, Error, Format, Isa, QuantInput, Table, quantize_rows, reference};

const QUANTIZED: [Format; 3] = [Format::Q8, Format::Q4, Format::Q2];

/// Deterministic values: a smooth row pattern plus a few outliers, so that greedy
/// clipping has something to clip.
fn values(rows: usize, dim: usize) -> Vec<f32> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..rows * dim)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let u = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            let outlier = if i % 37 == 5 { 8.0 } else { 1.0 };
            u * outlier + (i / dim) as f32 * 0.25
        })
        .collect()
}

fn whole(
    format: Format,
    clipping: Clipping,
    input: QuantInput<'_>,
    rows: usize,
    dim: usize,
) -> Vec<u8> {
    let mut out = vec![0u8; format.table_bytes(rows, dim).unwrap()];
    match clipping {
        Clipping::MinMax => reference::quantize(format, input, rows, dim, &mut out),
        Clipping::Greedy => reference::quantize_greedy(format, input, rows, dim, &mut out),
    }
    .unwrap();
    out
}

fn dequantize(format: Format, bytes: &[u8], rows: usize, dim: usize) -> Vec<f32> {
    let table = Table::new(format, rows, dim, bytes).unwrap();
    let mut out = vec![0.0f32; rows * dim];
    reference::dequantize(&table, &mut Output::F32(&mut out)).unwrap();
    out
}

fn sum_sq(x: &[f32], y: &[f32]) -> f64 {
    x.iter()
        .zip(y)
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
        .sum()
}

#[test]
fn disjoint_ranges_give_the_whole_table() {
    let (rows, dim) = (37, 45);
    let x = values(rows, dim);
    let h: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
    let splits = [0, 5, 5, 20, 36, 37];
    for input in [QuantInput::F32(&x), QuantInput::F16(&h)] {
        for format in QUANTIZED {
            for clipping in [Clipping::MinMax, Clipping::Greedy] {
                if clipping == Clipping::Greedy && format == Format::Q8 {
                    continue;
                }
                let expected = whole(format, clipping, input, rows, dim);
                let row_bytes = format.row_bytes(dim).unwrap();
                for &isa in Isa::available() {
                    let mut out = vec![0xA5u8; expected.len()];
                    for w in splits.windows(2) {
                        let part = &mut out[w[0] * row_bytes..w[1] * row_bytes];
                        quantize_rows(format, clipping, input, dim, w[0]..w[1], part, Some(isa))
                            .unwrap();
                    }
                    assert!(
                        out == expected,
                        "{format} {clipping:?} {isa}: split ranges differ from the whole table"
                    );
                }
            }
        }
    }
}

#[test]
fn errors_name_the_row_in_the_table() {
    let (rows, dim) = (30, 9);
    let mut x = values(rows, dim);
    x[23 * dim + 4] = f32::NAN;
    for clipping in [Clipping::MinMax, Clipping::Greedy] {
        for &isa in Isa::available() {
            let mut out = vec![0u8; Format::Q4.table_bytes(10, dim).unwrap()];
            let err = quantize_rows(
                Format::Q4,
                clipping,
                QuantInput::F32(&x),
                dim,
                20..30,
                &mut out,
                Some(isa),
            )
            .unwrap_err();
            assert!(
                matches!(&err, Error::UnrepresentableRow { row: 23, reason } if reason.contains("column 4")),
                "{clipping:?} {isa}: {err}"
            );
        }
    }
    let mut out = vec![0u8; Format::Q8.table_bytes(5, dim).unwrap()];
    let input = QuantInput::F32(&x[..28 * dim]);
    assert!(matches!(
        quantize_rows(Format::Q8, Clipping::MinMax, input, dim, 25..30, &mut out, None),
        Err(Error::InputTooSmall { needed, got, .. }) if needed == 30 * dim && got == 28 * dim
    ));
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = 6..5;
    assert!(matches!(
        quantize_rows(
            Format::Q8,
            Clipping::MinMax,
            input,
            dim,
            reversed,
            &mut out,
            None
        ),
        Err(Error::BadParameter { name: "rows", .. })
    ));
    assert!(matches!(
        quantize_rows(
            Format::Q8,
            Clipping::MinMax,
            input,
            dim,
            0..4,
            &mut out,
            None
        ),
        Err(Error::TableSize { .. })
    ));
    assert!(matches!(
        quantize_rows(
            Format::Q8,
            Clipping::Greedy,
            input,
            dim,
            0..5,
            &mut out,
            None
        ),
        Err(Error::BadParameter { name: "format", .. })
    ));
}

#[test]
fn greedy_keeps_constant_rows_and_never_loses_to_min_max() {
    let (rows, dim) = (40, 33);
    let mut x = values(rows, dim);
    x[..dim].fill(3.25);
    for format in [Format::Q4, Format::Q2] {
        let input = QuantInput::F32(&x);
        let minmax = whole(format, Clipping::MinMax, input, rows, dim);
        let greedy = whole(format, Clipping::Greedy, input, rows, dim);
        let row_bytes = format.row_bytes(dim).unwrap();
        assert_eq!(
            greedy[..row_bytes],
            minmax[..row_bytes],
            "{format}: constant row"
        );
        let (dm, dg) = (
            dequantize(format, &minmax, rows, dim),
            dequantize(format, &greedy, rows, dim),
        );
        let mut clipped = 0;
        for r in 0..rows {
            let span = r * dim..(r + 1) * dim;
            let (em, eg) = (
                sum_sq(&x[span.clone()], &dm[span.clone()]),
                sum_sq(&x[span.clone()], &dg[span]),
            );
            assert!(eg <= em, "{format} row {r}: greedy {eg} > min/max {em}");
            clipped += usize::from(eg < em);
        }
        // Rows with an 8× outlier every 37 values are where clipping pays.
        assert!(
            clipped >= rows / 2,
            "{format}: only {clipped} rows improved"
        );
    }
}

/// The greedy clipping's RMSE against min/max on real embeddings (figures in the README).
#[test]
fn greedy_lowers_the_minilm_rmse() {
    let (rows, dim) = (4096, 384);
    let x = common::read_data_f32("minilm-word-embeddings-4096x384.f32", rows, dim);
    for (format, at_most) in [(Format::Q4, 0.92), (Format::Q2, 0.7)] {
        let rmse = |clipping| {
            let mut out = vec![0u8; format.table_bytes(rows, dim).unwrap()];
            quantize_rows(
                format,
                clipping,
                QuantInput::F32(&x),
                dim,
                0..rows,
                &mut out,
                None,
            )
            .unwrap();
            (sum_sq(&x, &dequantize(format, &out, rows, dim)) / x.len() as f64).sqrt()
        };
        let (minmax, greedy) = (rmse(Clipping::MinMax), rmse(Clipping::Greedy));
        println!(
            "{format}: RMSE min/max {minmax:.4e}, greedy {greedy:.4e} ({:.1}% lower)",
            100.0 * (1.0 - greedy / minmax)
        );
        assert!(
            greedy <= at_most * minmax,
            "{format}: greedy RMSE {greedy:e} is not at most {at_most} × min/max {minmax:e}"
        );
    }
}

/// Outputs of at least 16 MiB are written past the caches in whole lines (the quantizers'
/// streamed path), from any alignment: same bytes as the reference on every level, nothing
/// written outside the output, and an error still names its row.
#[test]
fn streamed_outputs_give_the_reference_bytes() {
    for (format, dim) in [(Format::Q8, 128), (Format::Q2, 5)] {
        let row_bytes = format.row_bytes(dim).unwrap();
        let rows = (16 << 20) / row_bytes + 3;
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut x: Vec<f32> = (0..rows * dim)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect();
        let expected = whole(format, Clipping::MinMax, QuantInput::F32(&x), rows, dim);
        let len = expected.len();
        for &isa in Isa::available() {
            let mut buffer = vec![0xA5u8; len + 64];
            let out = &mut buffer[13..13 + len];
            lowp::quantize(format, QuantInput::F32(&x), rows, dim, out, Some(isa)).unwrap();
            assert!(out == expected, "{format} dim {dim} on {isa}");
            assert!(
                buffer[..13]
                    .iter()
                    .chain(&buffer[13 + len..])
                    .all(|&b| b == 0xA5)
            );
        }
        x[(rows - 2) * dim + 1] = f32::NAN;
        for &isa in Isa::available() {
            let mut out = vec![0u8; len];
            let err = lowp::quantize(format, QuantInput::F32(&x), rows, dim, &mut out, Some(isa));
            assert!(
                matches!(err, Err(Error::UnrepresentableRow { row, .. }) if row == rows - 2),
                "{format} dim {dim} on {isa}: {err:?}"
            );
        }
    }
}
