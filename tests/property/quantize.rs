//! Row-wise quantizers (f32 and f16 input) and dequantizers (every output type).

use half::{bf16, f16};
use lowp::registry::Op;
use lowp::{Format, QuantInput, Table, reference};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;

use crate::common::guard::GuardedVec;
use crate::compare::{Bits, FloatOut, Path, agree};
use crate::config;
use crate::strategies::{
    HOT_DIMS, OutType, dim, f32_value, float_bits, out_type, quantized_format, table,
};

/// Values around which quantizers have edge cases: the f16 limits (for the stored scale
/// and bias), values that overflow them, a row whose f16 bias rounds above its maximum.
const QUANTIZER_EXTREMES: [f32; 9] = [
    65504.0,
    -65504.0,
    65520.0,
    1e30,
    -1e30,
    f32::MAX,
    f32::MIN,
    f32::MIN_POSITIVE,
    1000.3,
];

/// One row to quantize for codes up to `levels`: typical values in a random range, a
/// constant row, arbitrary `special` values mixed with [`QUANTIZER_EXTREMES`], a row of
/// exact ties, a row a few ulps wide, or a row of signed zeros.
fn quantizer_row(dim: usize, levels: u32, special: BoxedStrategy<f32>) -> BoxedStrategy<Vec<f32>> {
    let typical = (select(vec![1e-3f32, 1.0, 100.0, 6e4]), -1e3f32..1e3).prop_flat_map(
        move |(spread, center)| vec((-spread..spread).prop_map(move |x| center + x), dim),
    );
    let extreme = prop_oneof![3 => special, 1 => select(QUANTIZER_EXTREMES.to_vec())];
    let constant = prop_oneof![extreme.clone(), -1e5f32..1e5].prop_map(move |x| vec![x; dim]);
    prop_oneof![
        4 => typical,
        1 => constant,
        1 => vec(extreme, dim),
        1 => tie_row(dim, levels),
        1 => narrow_row(dim),
        1 => steep_row(dim),
        1 => signed_zero_row(dim),
    ]
    .boxed()
}

/// A row whose codes are exact ties: the step `s` is a power of two and the range is
/// `levels · s` (so the scale, its reciprocal and, for Q8, `255 / (range + 1e-8)` are
/// exact), and the values are `min + k · s / 2`, so odd `k` lands exactly halfway between
/// two codes and must round to the even one.
fn tie_row(dim: usize, levels: u32) -> impl Strategy<Value = Vec<f32>> {
    (
        select(vec![0.25f32, 1.0, 2.0]),
        -64i32..64,
        vec(0..=2 * levels, dim),
    )
        .prop_map(move |(step, low, halves)| {
            let min = low as f32 * step;
            let mut row: Vec<f32> = halves
                .iter()
                .map(|&k| min + k as f32 * 0.5 * step)
                .collect();
            if dim >= 2 {
                row[0] = min;
                row[1] = min + levels as f32 * step;
            }
            row
        })
}

/// A row within three f32 ulps of a value: its f16 bias often rounds above the row's
/// maximum (a negative scale, codes counting down) or leaves a subnormal f16 scale.
fn narrow_row(dim: usize) -> impl Strategy<Value = Vec<f32>> {
    let center = prop_oneof![
        -6e4f32..6e4,
        select(vec![1000.3f32, -1000.3, 0.1, 3.3e4, -2.1e4])
    ];
    (center, vec(0..4u32, dim)).prop_map(|(c, ulps)| {
        ulps.iter()
            .map(|&k| f32::from_bits(c.to_bits() + k))
            .collect()
    })
}

/// A row whose f16 bias rounds up to just above its maximum (which is a few f32 ulps below
/// that f16 value): the negative scale is tiny, so `(x − bias) · inv` for the row's minimum
/// is far above the largest code (tens of thousands for Q4) and must clamp to it.
fn steep_row(dim: usize) -> impl Strategy<Value = Vec<f32>> {
    // Exact f16 values, each with the f16 value below it.
    let pair = select(vec![
        (1000.0f32, 1000.5f32),
        (3.0, 3.0 + 1.0 / 512.0),
        (32768.0, 32800.0),
    ]);
    (pair, vec(1..64u32, dim)).prop_map(|((below, top), ulps)| {
        let mut row: Vec<f32> = ulps
            .iter()
            .map(|&k| f32::from_bits(top.to_bits() - k))
            .collect();
        // Just past the midpoint, so f16 rounds the minimum up to `top`.
        if let Some(first) = row.first_mut() {
            *first = below + (top - below) * 0.52;
        }
        row
    })
}

/// Zeros of both signs and values on one side of them: the minimum (or the maximum) is a
/// zero, stored with the sign of the row's first zero.
fn signed_zero_row(dim: usize) -> impl Strategy<Value = Vec<f32>> {
    let value = prop_oneof![Just(0.0f32), Just(-0.0f32), 0.5f32..4.0];
    (vec(value, dim), any::<bool>()).prop_map(|(row, negate)| {
        row.into_iter()
            .map(|x| if negate { -x } else { x })
            .collect()
    })
}

#[derive(Clone, Debug)]
enum QuantIn {
    F32(GuardedVec<f32>),
    F16(GuardedVec<f16>),
}

#[derive(Clone, Debug)]
struct QuantizeCase {
    format: Format,
    rows: usize,
    dim: usize,
    input: QuantIn,
}

fn quantize_case() -> impl Strategy<Value = QuantizeCase> {
    let dim = dim(1100, &HOT_DIMS, |op| matches!(op, Op::Quantize(_)));
    (quantized_format(), 0..=6usize, dim, any::<bool>()).prop_flat_map(
        |(format, rows, dim, half_input)| {
            // f16 input gets special values drawn as f16 bit patterns (f16 denormals, …).
            let special = if half_input {
                float_bits(5, 10)
                    .prop_map(|b| f16::from_bits(b as u16).to_f32())
                    .boxed()
            } else {
                f32_value()
            };
            let levels = (1u32 << format.code_bits().expect("a quantized format")) - 1;
            vec(quantizer_row(dim, levels, special), rows).prop_map(move |rows_values| {
                let values = rows_values.concat();
                let input = if half_input {
                    let halves: Vec<f16> = values.iter().map(|&x| f16::from_f32(x)).collect();
                    QuantIn::F16(GuardedVec::from_slice(&halves))
                } else {
                    QuantIn::F32(GuardedVec::from_slice(&values))
                };
                QuantizeCase {
                    format,
                    rows,
                    dim,
                    input,
                }
            })
        },
    )
}

fn check_quantize(case: &QuantizeCase) -> Result<(), TestCaseError> {
    let input = match &case.input {
        QuantIn::F32(v) => QuantInput::F32(v),
        QuantIn::F16(v) => QuantInput::F16(v),
    };
    let (format, rows, dim) = (case.format, case.rows, case.dim);
    let out = GuardedVec::filled(format.table_bytes(rows, dim).unwrap(), u8::SENTINEL);
    // Rows f16 cannot describe are an error; `agree` checks every level returns the same.
    let _ = agree(
        &out,
        |_| true,
        |path, out| match path {
            Path::Reference => reference::quantize(format, input, rows, dim, out),
            Path::Level(isa) => lowp::quantize(format, input, rows, dim, out, Some(isa)),
        },
    )?;
    Ok(())
}

#[derive(Clone, Debug)]
struct DequantizeCase {
    format: Format,
    rows: usize,
    dim: usize,
    table: GuardedVec<u8>,
    out: OutType,
}

fn dequantize_case() -> impl Strategy<Value = DequantizeCase> {
    let dim = dim(1100, &HOT_DIMS, |op| matches!(op, Op::Dequantize(_)));
    (quantized_format(), 0..=6usize, dim).prop_flat_map(|(format, rows, dim)| {
        (table(format, rows, dim), out_type()).prop_map(move |(table, out)| DequantizeCase {
            format,
            rows,
            dim,
            table,
            out,
        })
    })
}

fn check_dequantize<T: FloatOut>(case: &DequantizeCase) -> Result<(), TestCaseError> {
    let table = Table::new(case.format, case.rows, case.dim, &case.table).unwrap();
    let out = GuardedVec::filled(case.rows * case.dim, T::SENTINEL);
    let result = agree(
        &out,
        |_| true,
        |path, out| match path {
            Path::Reference => reference::dequantize(&table, &mut T::output(out)),
            Path::Level(isa) => lowp::dequantize(&table, T::output(out), Some(isa)),
        },
    )?;
    prop_assert_eq!(result, Ok(()));
    Ok(())
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn quantize_matches_reference(case in quantize_case()) {
        check_quantize(&case)?;
    }

    #[test]
    fn dequantize_matches_reference(case in dequantize_case()) {
        match case.out {
            OutType::F32 => check_dequantize::<f32>(&case)?,
            OutType::F16 => check_dequantize::<f16>(&case)?,
            OutType::Bf16 => check_dequantize::<bf16>(&case)?,
        }
    }
}
