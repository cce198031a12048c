//! The reference embedding bag against small cases computed by hand, one per option, plus
//! the Mean = Sum × (1/len) property and the errors it reports.
//!
//! Expected values are written as the exact numbers the hand computation gives, and every
//! comparison is on bits (so +0.0 and −0.0 differ, as do NaN and a number).

use half::{bf16, f16};
use lowp::reference::embedding_bag;
use lowp::{Bags, Error, Format, Output, Pooling, Table, Weights};
use proptest::collection::vec;
use proptest::prelude::*;

/// Runs the reference into an f32 output of `bags × dim` prefilled with NaN, so that an
/// element left unwritten cannot pass.
fn run(table: &Table<'_>, bags: &Bags<'_>, pooling: Pooling) -> Vec<f32> {
    let mut out = vec![f32::NAN; bags.len() * table.dim()];
    embedding_bag(
        table,
        bags,
        pooling,
        &mut Output::F32(&mut out),
        table.dim(),
    )
    .expect("valid input");
    out
}

fn sum(table: &Table<'_>, bags: &Bags<'_>) -> Vec<f32> {
    run(table, bags, Pooling::Sum)
}

#[track_caller]
fn assert_bits(got: &[f32], want: &[f32]) {
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(got), bits(want), "got {got:?}, want {want:?}");
}

/// A quantized row: the packed codes, then scale, then bias, each already as bytes.
fn qrow(codes: &[u8], scale: &[u8], bias: &[u8]) -> Vec<u8> {
    [codes, scale, bias].concat()
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn f32_rows_add_in_index_order_from_positive_zero() {
    // 1e8 is exact in f32 and its ulp is 8, so 1e8 + 1 rounds back to 1e8.
    let rows = [
        1e8, -0.0, //
        1.0, -0.0, //
        -1e8, 0.5, //
        3.0, 0.25,
    ];
    let table = Table::from_f32(4, 2, &rows).unwrap();
    let indices = [0i32, 1, 2, 0, 2, 1, 3, 1];
    let bags = Bags::from_offsets(&indices, &[0i32, 3, 6, 7, 8]).unwrap();
    assert_bits(
        &sum(&table, &bags),
        &[
            // ((0 + 1e8) + 1) + −1e8 = 1e8 − 1e8 = 0; 0 + −0 + −0 + 0.5 = 0.5.
            0.0, 0.5, //
            // ((0 + 1e8) + −1e8) + 1 = 1: the same rows in another order.
            1.0, 0.5, //
            3.0, 0.25, //
            // The accumulator starts at +0, and +0 + −0 = +0: a lone −0 row gives +0.
            1.0, 0.0,
        ],
    );
}

#[test]
fn weighted_f32_rows_use_one_fused_multiply_add() {
    // w = x = 1 + 2⁻¹²; w·x = 1 + 2⁻¹¹ + 2⁻²⁴, half an ulp above 1 + 2⁻¹¹: the first entry
    // rounds (ties to even) to acc = 1 + 2⁻¹¹. The second entry, w·(−x) + acc, fused, is
    // exactly −2⁻²⁴; an unfused multiply would round w·x the same way and give 0.
    let x = 1.0 + 2f32.powi(-12);
    let rows = [x, -x];
    let table = Table::from_f32(2, 1, &rows).unwrap();
    let indices = [0i64, 1];
    let weights = [x, x];
    let bags = Bags::from_lengths(&indices, &[2i64])
        .unwrap()
        .with_weights(Weights::PerIndex(&weights))
        .unwrap();
    assert_bits(&sum(&table, &bags), &[-5.960_464_5e-8]);
}

#[test]
fn per_index_and_positional_weights() {
    let rows = [1.0f32, 10.0, 100.0];
    let table = Table::from_f32(3, 1, &rows).unwrap();
    let indices = [0i32, 1, 2, 2, 0, 1];
    let plain = Bags::from_lengths(&indices, &[3i32, 2, 1]).unwrap();

    let positional = plain
        .with_weights(Weights::Positional(&[2.0, 3.0, 5.0]))
        .unwrap();
    // 2·1 + 3·10 + 5·100 = 532; 2·100 + 3·1 = 203; 2·10 = 20.
    assert_bits(&sum(&table, &positional), &[532.0, 203.0, 20.0]);

    let weights = [2.0, 3.0, 5.0, 7.0, 11.0, 13.0];
    let per_index = plain.with_weights(Weights::PerIndex(&weights)).unwrap();
    // 532; 7·100 + 11·1 = 711; 13·10 = 130.
    assert_bits(&sum(&table, &per_index), &[532.0, 711.0, 130.0]);
}

#[test]
fn f16_rows_convert_exactly_and_accumulate_in_f32() {
    // Row 0: 65504 (f16 max), 2⁻¹⁴ (smallest normal); row 1: 65504, 2⁻²⁴ (smallest
    // subnormal).
    let rows = [
        f16::MAX,
        f16::MIN_POSITIVE,
        f16::MAX,
        f16::from_bits(0x0001),
    ];
    let table = Table::from_f16(2, 2, &rows).unwrap();
    let indices = [0i32, 1];
    let bags = Bags::from_offsets(&indices, &[0i32, 2]).unwrap();
    // 65504 + 65504 = 131008 (beyond f16, fine in f32); 2⁻¹⁴ + 2⁻²⁴ = 0x38802000, exact.
    assert_bits(
        &sum(&table, &bags),
        &[131008.0, f32::from_bits(0x3880_2000)],
    );

    // As f16: 131008 ≥ 65520 overflows to +inf; 2⁻¹⁴ + 2⁻²⁴ is exact (ulp there is 2⁻²⁴).
    let mut out = [f16::NAN; 2];
    embedding_bag(&table, &bags, Pooling::Sum, &mut Output::F16(&mut out), 2).unwrap();
    assert_eq!(out.map(f16::to_bits), [0x7C00, 0x0401]);
}

#[test]
#[allow(clippy::excessive_precision)] // 768.50390625 is exact; shorter would hide that
fn bf16_rows_convert_exactly() {
    // Row 0: 1.0078125 (0x3F81), 256; row 1: 256, −2. Weights 0.5 and 3.
    let rows = [0x3F81u16, 0x4380, 0x4380, 0xC000].map(bf16::from_bits);
    let table = Table::from_bf16(2, 2, &rows).unwrap();
    let indices = [0i64, 1];
    let bags = Bags::from_offsets(&indices, &[0i64, 2])
        .unwrap()
        .with_weights(Weights::PerIndex(&[0.5, 3.0]))
        .unwrap();
    // 0.5·1.0078125 + 3·256 = 0.50390625 + 768; 0.5·256 + 3·(−2) = 128 − 6.
    assert_bits(&sum(&table, &bags), &[768.503_906_25, 122.0]);
}

#[test]
fn q8_rows_add_the_bias_before_the_fused_multiply_add() {
    let table_bytes = [
        // Codes 0, 1, 255; scale 0.5, bias −1: values −1, −0.5, 126.5.
        qrow(
            &[0, 1, 255],
            &0.5f32.to_le_bytes(),
            &(-1.0f32).to_le_bytes(),
        ),
        // Scale 0, bias 2²⁴: every value is 16777216.
        qrow(
            &[7, 8, 9],
            &0.0f32.to_le_bytes(),
            &16777216.0f32.to_le_bytes(),
        ),
        // Codes 1, 2, 3; scale 1, bias 1: values 2, 3, 4.
        qrow(&[1, 2, 3], &1.0f32.to_le_bytes(), &1.0f32.to_le_bytes()),
    ]
    .concat();
    let table = Table::new(Format::Q8, 3, 3, &table_bytes).unwrap();
    let indices = [0i32, 1, 2];
    let bags = Bags::from_offsets(&indices, &[0i32, 1, 3]).unwrap();
    // Bag 1, after row 1 acc = 2²⁴ (ulp 2). Row 2: acc + bias = 2²⁴ + 1 rounds (tie, even) to
    // 2²⁴; then fma(1, q, 2²⁴) for q = 1, 2, 3 gives 2²⁴ (tie), 2²⁴ + 2, 2²⁴ + 4 (tie, even).
    // Adding the dequantized value 2 instead would give 2²⁴ + 2 in element 0.
    assert_bits(
        &sum(&table, &bags),
        &[-1.0, -0.5, 126.5, 16777216.0, 16777218.0, 16777220.0],
    );

    // Weight 2 on row 0: s = 1, b = −2: fma(1, q, 0 − 2) = −2, −1, 253.
    let weighted = Bags::from_offsets(&indices[..1], &[0i32, 1])
        .unwrap()
        .with_weights(Weights::PerIndex(&[2.0]))
        .unwrap();
    assert_bits(&sum(&table, &weighted), &[-2.0, -1.0, 253.0]);
}

#[test]
fn q4_rows_with_an_odd_dimension() {
    // dim 3: two code bytes, element 0 in the low nibble, then f16 scale and bias.
    let table_bytes = [
        // Codes 3, 10, 15; scale 0.25, bias −2: values −1.25, 0.5, 1.75.
        qrow(&[0xA3, 0x0F], &[0x00, 0x34], &[0x00, 0xC0]),
        // Codes 0, 1, 2; scale 1, bias 0.5: values 0.5, 1.5, 2.5.
        qrow(&[0x10, 0x02], &[0x00, 0x3C], &[0x00, 0x38]),
    ]
    .concat();
    let table = Table::new(Format::Q4, 2, 3, &table_bytes).unwrap();
    let indices = [0i32, 1];
    let bags = Bags::from_offsets(&indices, &[0i32, 2]).unwrap();
    assert_bits(&sum(&table, &bags), &[-0.75, 2.0, 4.25]);
    assert_bits(&run(&table, &bags, Pooling::Mean), &[-0.375, 1.0, 2.125]);

    // Weights 2 and −1: row 0 s = 0.5, b = −4 → −2.5, 1, 3.5; row 1 s = −1, b = −0.5 →
    // (−2.5 − 0.5) − 0, (1 − 0.5) − 1, (3.5 − 0.5) − 2.
    let weighted = bags.with_weights(Weights::PerIndex(&[2.0, -1.0])).unwrap();
    assert_bits(&sum(&table, &weighted), &[-3.0, -0.5, 1.0]);
}

#[test]
fn q2_rows_with_a_dimension_not_a_multiple_of_four() {
    // dim 5: two code bytes, element 0 in the lowest two bits, then f16 scale and bias.
    let table_bytes = [
        // Codes 1, 2, 3, 0 | 2: 0b00_11_10_01 = 0x39, 0x02; scale 1.5, bias 0.5:
        // values 2, 3.5, 5, 0.5, 3.5.
        qrow(&[0x39, 0x02], &[0x00, 0x3E], &[0x00, 0x38]),
        // Codes 3, 3, 3, 3 | 1; scale −0.25, bias 1: values 0.25 × 4, 0.75.
        qrow(&[0xFF, 0x01], &[0x00, 0xB4], &[0x00, 0x3C]),
    ]
    .concat();
    let table = Table::new(Format::Q2, 2, 5, &table_bytes).unwrap();
    let indices = [0i64, 1];
    let bags = Bags::from_lengths(&indices, &[2i32]).unwrap();
    assert_bits(&sum(&table, &bags), &[2.25, 3.75, 5.25, 0.75, 4.25]);

    // Positional weights 1, 4: row 1 gets s = −1, b = 4, adding 1, 1, 1, 1, 3.
    let positional = bags.with_weights(Weights::Positional(&[1.0, 4.0])).unwrap();
    assert_bits(&sum(&table, &positional), &[3.0, 4.5, 6.0, 1.5, 6.5]);
}

#[test]
fn bags_from_offsets_lengths_and_sub_batch_windows() {
    // Row r holds 2^r, so each sum names the set of rows in its bag.
    let rows = [1.0f32, 2.0, 4.0, 8.0, 16.0];
    let table = Table::from_f32(5, 1, &rows).unwrap();
    let wide = [0i64, 1, 2, 3, 4, 0];
    let narrow = [0i32, 1, 2, 3, 4, 0];
    // Bags {0, 1}, {}, {2, 3, 4}, {0}.
    let want = [3.0, 0.0, 28.0, 1.0];
    let offsets = [0i32, 2, 2, 5, 6];
    for bags in [
        Bags::from_offsets(&wide, &offsets),
        Bags::from_offsets(&narrow, &[0i64, 2, 2, 5, 6]),
        Bags::from_offsets_without_last(&wide, &offsets[..4]),
        Bags::from_lengths(&narrow, &[2i32, 0, 3, 1]),
        Bags::from_lengths(&wide, &[2i64, 0, 3, 1]),
    ] {
        assert_bits(&sum(&table, &bags.unwrap()), &want);
    }
    // A window of the offsets over the whole indices: bags 1 and 2 of the batch only.
    let window = Bags::from_offsets(&wide, &offsets[1..4]).unwrap();
    assert_bits(&sum(&table, &window), &[0.0, 28.0]);
    // Positional weights count from the start of each bag, also in a window.
    let window = window
        .with_weights(Weights::Positional(&[1.0, 10.0, 100.0]))
        .unwrap();
    assert_bits(&sum(&table, &window), &[0.0, 4.0 + 80.0 + 1600.0]);
}

#[test]
fn mean_multiplies_by_the_f32_reciprocal() {
    let rows = [1.0f32, 2.0];
    let table = Table::from_f32(2, 1, &rows).unwrap();
    let indices = [0i32, 1, 1, 1];
    // Bags {0, 1, 1} (sum 5), {} and {1}.
    let bags = Bags::from_offsets(&indices, &[0i32, 3, 3, 4]).unwrap();
    // f32(1/3) = 0x3EAAAAAB = 0.3333333432674408; 5 × that = 1.666666716337204, nearer to
    // 0x3FD55556 than to 0x3FD55555 (which 5 / 3 would give). Empty bag: +0. One entry: × 1.
    assert_bits(
        &run(&table, &bags, Pooling::Mean),
        &[f32::from_bits(0x3FD5_5556), 0.0, 2.0],
    );
}

#[test]
fn empty_bags_give_positive_zeros() {
    let rows = [-1.5f32, f32::NAN];
    let table = Table::from_f32(1, 2, &rows).unwrap();
    let indices: [i32; 0] = [];
    let bags = Bags::from_offsets(&indices, &[0i32, 0, 0]).unwrap();
    let weighted = bags.with_weights(Weights::Positional(&[])).unwrap();
    for bags in [bags, weighted] {
        for pooling in [Pooling::Sum, Pooling::Mean] {
            assert_bits(&run(&table, &bags, pooling), &[0.0; 4]);
        }
    }
}

#[test]
fn f16_output_rounds_to_nearest_even() {
    // 1 + 2⁻¹¹ is halfway between f16 1 and 1 + 2⁻¹⁰: even is 1 (0x3C00). 1 + 3·2⁻¹¹ is
    // halfway between 0x3C01 and 0x3C02: even is 0x3C02. 65520 is halfway between 65504 and
    // the first power of two past f16's range: even rounds to +inf.
    let rows = [
        1.0 + 2f32.powi(-11),
        1.0 + 3.0 * 2f32.powi(-11),
        65520.0,
        f32::NAN,
    ];
    let table = Table::from_f32(1, 4, &rows).unwrap();
    let bags = Bags::from_lengths(&[0i32], &[1i32]).unwrap();
    let mut out = [f16::ZERO; 4];
    embedding_bag(&table, &bags, Pooling::Sum, &mut Output::F16(&mut out), 4).unwrap();
    assert_eq!(
        out[..3].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        [0x3C00, 0x3C02, 0x7C00]
    );
    assert!(out[3].is_nan());
}

#[test]
fn bf16_output_rounds_to_nearest_even_and_keeps_nan() {
    let rows = [
        // Halfway between bf16 0x3F80 and 0x3F81: even is 0x3F80 (FBGEMM would give 0x3F81).
        f32::from_bits(0x3F80_8000),
        // Halfway between 0x3F81 and 0x3F82: even is 0x3F82.
        f32::from_bits(0x3F81_8000),
        // Just above halfway: up to 0x3F81.
        f32::from_bits(0x3F80_8008),
        // Negative tie: magnitude to even, 0xBF80.
        f32::from_bits(0xBF80_8000),
        // A NaN that adding 0x8000 and truncating would turn into −0.0 (0x8000).
        f32::from_bits(0x7FFF_FFFF),
    ];
    let table = Table::from_f32(1, 5, &rows).unwrap();
    let bags = Bags::from_lengths(&[0i64], &[1i64]).unwrap();
    let mut out = [bf16::ZERO; 5];
    embedding_bag(&table, &bags, Pooling::Sum, &mut Output::Bf16(&mut out), 5).unwrap();
    assert_eq!(
        out[..4].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        [0x3F80, 0x3F82, 0x3F81, 0xBF80]
    );
    assert!(out[4].is_nan(), "NaN became {:#06x}", out[4].to_bits());
}

/// `bf16::from_f32` (which `Output::Bf16` uses) checked against rounding by distance: for
/// every bf16 prefix and the low halves that matter (zero, smallest, just below, at and just
/// above the tie, largest), the result is the nearer bf16 neighbour, ties to even, and a
/// NaN stays a NaN of the same sign.
#[test]
fn half_bf16_from_f32_is_round_to_nearest_even() {
    // A bf16 pattern's value; one step past the largest finite value counts as 2¹²⁸, the
    // value the rounding compares against before it overflows to infinity.
    let value = |b: u16| -> f64 {
        let v = f64::from(f32::from_bits(u32::from(b) << 16));
        if v.is_infinite() {
            v.signum() * 2f64.powi(128)
        } else {
            v
        }
    };
    for high in 0..=0xFFFFu16 {
        for low in [0u16, 1, 0x7FFF, 0x8000, 0x8001, 0xFFFF] {
            let x = f32::from_bits(u32::from(high) << 16 | u32::from(low));
            let got = bf16::from_f32(x);
            if x.is_nan() {
                assert!(got.is_nan() && got.is_sign_negative() == x.is_sign_negative());
                continue;
            }
            if x.is_infinite() {
                assert_eq!(got.to_bits(), high);
                continue;
            }
            // The neighbours toward and away from zero (`high + 1` cannot carry into the sign:
            // a finite `high` is at most 0x7F7F or 0xFF7F).
            let (toward, away) = (high, high + 1);
            let d_toward = (f64::from(x) - value(toward)).abs();
            let d_away = (f64::from(x) - value(away)).abs();
            let want = if d_toward < d_away || (d_toward == d_away && toward % 2 == 0) {
                toward
            } else {
                away
            };
            assert_eq!(
                got.to_bits(),
                want,
                "bf16::from_f32({x:e} = {:#010x})",
                x.to_bits()
            );
        }
    }
}

#[test]
fn out_stride_leaves_the_gaps_untouched() {
    let rows = [1.0f32, 2.0, 3.0, 4.0];
    let table = Table::from_f32(2, 2, &rows).unwrap();
    let bags = Bags::from_lengths(&[1i32, 0], &[1i32, 1]).unwrap();
    const GAP: f32 = -7.5;
    // Two rows of 2 at stride 3, and one spare element after the last row.
    let mut out = [GAP; 6];
    embedding_bag(&table, &bags, Pooling::Sum, &mut Output::F32(&mut out), 3).unwrap();
    assert_bits(&out, &[3.0, 4.0, GAP, 1.0, 2.0, GAP]);

    let gap = bf16::from_f32(GAP);
    let mut out = [gap; 6];
    embedding_bag(&table, &bags, Pooling::Sum, &mut Output::Bf16(&mut out), 3).unwrap();
    assert_eq!(out, [3.0, 4.0, GAP, 1.0, 2.0, GAP].map(bf16::from_f32));
}

/// The error a call over an f32 output of `out_len` elements returns, from the reference
/// and from the dispatched operation, which must agree.
fn errors(table: &Table<'_>, bags: &Bags<'_>, out_len: usize, out_stride: usize) -> Error {
    let mut out = vec![f32::NAN; out_len];
    let reference = embedding_bag(
        table,
        bags,
        Pooling::Sum,
        &mut Output::F32(&mut out),
        out_stride,
    )
    .expect_err("bad input is an error");
    let dispatched = lowp::embedding_bag(
        table,
        bags,
        Pooling::Sum,
        Output::F32(&mut out),
        out_stride,
        None,
    )
    .expect_err("bad input is an error");
    assert_eq!(reference, dispatched);
    reference
}

#[test]
fn out_of_range_indices_name_bag_position_and_value() {
    let rows = [10.0f32, 20.0, 30.0];
    let table = Table::from_f32(3, 1, &rows).unwrap();

    let negative = [0i32, 1, 2, -1];
    let bags = Bags::from_offsets(&negative, &[0i32, 2, 4]).unwrap();
    assert_eq!(
        errors(&table, &bags, 2, 1),
        Error::IndexOutOfRange {
            bag: 1,
            position: 1,
            index: -1,
            rows: 3
        }
    );
    // Bags before the failing one are complete.
    let mut out = [f32::NAN; 2];
    assert!(embedding_bag(&table, &bags, Pooling::Sum, &mut Output::F32(&mut out), 1).is_err());
    assert_bits(&out[..1], &[30.0]);

    let too_big = [2i64, 0, 3];
    let bags = Bags::from_lengths(&too_big, &[0i32, 3]).unwrap();
    assert_eq!(
        errors(&table, &bags, 2, 1),
        Error::IndexOutOfRange {
            bag: 1,
            position: 2,
            index: 3,
            rows: 3
        }
    );
    for index in [i64::MAX, i64::MIN] {
        let indices = [index];
        let bags = Bags::from_lengths(&indices, &[1i32]).unwrap();
        assert_eq!(
            errors(&table, &bags, 1, 1),
            Error::IndexOutOfRange {
                bag: 0,
                position: 0,
                index,
                rows: 3
            }
        );
    }
}

#[test]
fn output_too_small_and_short_stride_are_rejected_before_writing() {
    let rows = [0.0f32; 9];
    let table = Table::from_f32(3, 3, &rows).unwrap();
    let indices = [0i32, 1];
    let bags = Bags::from_offsets(&indices, &[0i32, 1, 2]).unwrap();
    // Two rows of 3 at stride 4 need 4 + 3 = 7 elements.
    assert_eq!(
        errors(&table, &bags, 6, 4),
        Error::OutputTooSmall {
            what: "embedding bags",
            needed: 7,
            got: 6
        }
    );
    assert_eq!(
        errors(&table, &bags, 100, 2),
        Error::BadParameter {
            name: "out_stride",
            reason: "2 is smaller than the dimension 3".into()
        }
    );
    let mut out = [f32::NAN; 6];
    assert!(embedding_bag(&table, &bags, Pooling::Sum, &mut Output::F32(&mut out), 4).is_err());
    assert!(
        out.iter().all(|v| v.is_nan()),
        "an invalid call wrote {out:?}"
    );
}

/// A random batch over a random table of any format: finite values, finite scales and
/// biases, bags of 0 to 5 entries, any weighting.
#[derive(Debug)]
struct Batch {
    format: Format,
    rows: usize,
    dim: usize,
    bytes: Vec<u8>,
    indices: Vec<i64>,
    lengths: Vec<i64>,
    weighting: Weighting,
}

#[derive(Clone, Debug)]
enum Weighting {
    None,
    PerIndex(Vec<f32>),
    Positional(Vec<f32>),
}

fn batch() -> impl Strategy<Value = Batch> {
    (
        0..Format::ALL.len(),
        1..6usize,
        0..12usize,
        vec(0..6i64, 0..8),
    )
        .prop_flat_map(|(f, rows, dim, lengths)| {
            let format = Format::ALL[f];
            let n = lengths.iter().sum::<i64>() as usize;
            (
                Just((format, rows, dim, lengths)),
                vec(-100.0f32..100.0, rows * dim),
                vec(any::<u8>(), rows * format.row_bytes(dim).unwrap()),
                vec((-4.0f32..4.0, -4.0f32..4.0), rows),
                vec(0..rows as i64, n),
                prop_oneof![
                    Just(Weighting::None),
                    vec(-2.0f32..2.0, n).prop_map(Weighting::PerIndex),
                    // Bags have at most 5 entries.
                    vec(-2.0f32..2.0, 5).prop_map(Weighting::Positional),
                ],
            )
        })
        .prop_map(
            |((format, rows, dim, lengths), values, mut raw, scale_bias, indices, weighting)| {
                let bytes = match format {
                    Format::F32 => f32_bytes(&values),
                    Format::F16 => values
                        .iter()
                        .flat_map(|&v| f16::from_f32(v).to_le_bytes())
                        .collect(),
                    Format::Bf16 => values
                        .iter()
                        .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
                        .collect(),
                    _ => {
                        // Random codes; overwrite each row's scale and bias with finite values.
                        let row_bytes = format.row_bytes(dim).unwrap();
                        let at = row_bytes - format.scale_bias_bytes();
                        for (row, &(s, b)) in raw.chunks_exact_mut(row_bytes).zip(&scale_bias) {
                            let sb = if format == Format::Q8 {
                                f32_bytes(&[s, b])
                            } else {
                                [
                                    f16::from_f32(s).to_le_bytes(),
                                    f16::from_f32(b).to_le_bytes(),
                                ]
                                .concat()
                            };
                            row[at..].copy_from_slice(&sb);
                        }
                        raw
                    }
                };
                Batch {
                    format,
                    rows,
                    dim,
                    bytes,
                    indices,
                    lengths,
                    weighting,
                }
            },
        )
}

proptest! {
    #[test]
    fn mean_is_sum_times_the_reciprocal_of_the_length(b in batch()) {
        let table = Table::new(b.format, b.rows, b.dim, &b.bytes).unwrap();
        let weights = match &b.weighting {
            Weighting::None => Weights::None,
            Weighting::PerIndex(w) => Weights::PerIndex(w),
            Weighting::Positional(w) => Weights::Positional(w),
        };
        let bags = Bags::from_lengths(&b.indices[..], &b.lengths[..])
            .unwrap()
            .with_weights(weights)
            .unwrap();
        let sum = run(&table, &bags, Pooling::Sum);
        let mean = run(&table, &bags, Pooling::Mean);
        for (bag, &len) in b.lengths.iter().enumerate() {
            for e in bag * b.dim..(bag + 1) * b.dim {
                let want = if len == 0 { 0.0 } else { sum[e] * (1.0 / len as f32) };
                prop_assert_eq!(mean[e].to_bits(), want.to_bits(), "bag {} element {}", bag, e % b.dim);
            }
        }
    }
}
