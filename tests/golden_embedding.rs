//! Every `embedding_bag` case of FBGEMM's golden vectors (`../shared/golden/`), reproduced
//! bit for bit by the reference model and by the dispatched operation.
//!
//! The cases cover fp32, fp16, int8, int4 and int2 tables at dims 8, 37 and 64, each with
//! the variants sum, weighted (per-index), positional and mean, written as f32 (and as f16
//! for dim 64). FBGEMM's JIT kernels and its reference agreed on all of them, so the
//! manifest stores one output per variant.

mod common;

use common::golden::{Case, Manifest};
use lowp::{Bags, Format, Output, Pooling, Table, Weights};

fn format_of(case: &Case) -> Format {
    match case.param("format").as_str().expect("format param") {
        "fp32" => Format::F32,
        "fp16" => Format::F16,
        "int8" => Format::Q8,
        "int4" => Format::Q4,
        "int2" => Format::Q2,
        other => panic!("case {}: unknown table format {other}", case.name),
    }
}

fn table_dtype(format: Format) -> &'static str {
    match format {
        Format::F32 => "f32",
        Format::F16 => "f16",
        _ => "u8",
    }
}

fn usize_param(case: &Case, key: &str) -> usize {
    case.param(key)
        .as_u64()
        .unwrap_or_else(|| panic!("case {}: param {key}", case.name)) as usize
}

/// Which implementation produced an output, for messages.
#[derive(Clone, Copy, Debug)]
enum Runner {
    Reference,
    Dispatched,
}

/// Runs one variant into an output of `out_dtype` prefilled with NaN (so an element left
/// unwritten fails) and returns the result's bits.
fn run(
    runner: Runner,
    table: &Table<'_>,
    bags: &Bags<'_>,
    pooling: Pooling,
    out_dtype: &str,
) -> Vec<u32> {
    let n = bags.len() * table.dim();
    let dim = table.dim();
    let call = |mut out: Output<'_>| match runner {
        Runner::Reference => lowp::reference::embedding_bag(table, bags, pooling, &mut out, dim),
        Runner::Dispatched => lowp::embedding_bag(table, bags, pooling, out, dim, None),
    };
    match out_dtype {
        "f32" => {
            let mut out = vec![f32::NAN; n];
            call(Output::F32(&mut out)).expect("golden inputs are valid");
            out.iter().map(|v| v.to_bits()).collect()
        }
        "f16" => {
            let mut out = vec![half::f16::NAN; n];
            call(Output::F16(&mut out)).expect("golden inputs are valid");
            out.iter().map(|v| u32::from(v.to_bits())).collect()
        }
        other => panic!("unexpected output dtype {other}"),
    }
}

fn expected_bits(case: &Case, array: &str, out_dtype: &str) -> Vec<u32> {
    match out_dtype {
        "f32" => case.f32(array).iter().map(|v| v.to_bits()).collect(),
        "f16" => case
            .f16(array)
            .iter()
            .map(|v| u32::from(v.to_bits()))
            .collect(),
        other => panic!("unexpected output dtype {other}"),
    }
}

/// Asserts equal bits, reporting how many elements differ and the first few.
fn assert_bits(what: &str, dim: usize, got: &[u32], want: &[u32]) {
    assert_eq!(got.len(), want.len(), "{what}: output length");
    let diffs: Vec<_> = (0..got.len()).filter(|&i| got[i] != want[i]).collect();
    assert!(
        diffs.is_empty(),
        "{what}: {} of {} elements differ; first (bag, element, got, want): {:?}",
        diffs.len(),
        got.len(),
        diffs
            .iter()
            .take(5)
            .map(|&i| (
                i / dim,
                i % dim,
                format!("{:#x}", got[i]),
                format!("{:#x}", want[i])
            ))
            .collect::<Vec<_>>()
    );
}

#[test]
fn embedding_bags_match_fbgemm_bit_for_bit() {
    let manifest = Manifest::load();
    let cases = manifest.cases("embedding_bag");
    assert_eq!(cases.len(), 15, "the golden set has 15 embedding-bag cases");
    let mut variants_checked = 0;
    for case in &cases {
        let format = format_of(case);
        let rows = usize_param(case, "num_rows");
        let dim = usize_param(case, "dim");
        let table = Table::new(format, rows, dim, case.raw("table", table_dtype(format)))
            .unwrap_or_else(|e| panic!("case {}: {e}", case.name));
        assert_eq!(
            table.row_bytes(),
            usize_param(case, "row_bytes"),
            "{}",
            case.name
        );

        let indices = case.i64("indices");
        let offsets = case.i32("offsets");
        let plain = Bags::from_offsets(&indices[..], &offsets[..]).expect("golden bags");
        assert_eq!(plain.len(), usize_param(case, "num_bags"), "{}", case.name);

        let variants = case.meta["variants"].as_array().expect("variants");
        for v in variants {
            let name = format!("{}/{}", case.name, v["name"].as_str().unwrap());
            assert_eq!(v["jit_returned"], true, "{name}: FBGEMM failed");
            let weight_values = v["weights_array"].as_str().map(|array| case.f32(array));
            let weights = match weight_values.as_deref() {
                None => Weights::None,
                Some(w) if v["is_weight_positional"] == true => Weights::Positional(w),
                Some(w) => Weights::PerIndex(w),
            };
            let bags = plain.with_weights(weights).expect("golden weights");
            let pooling = if v["normalize_by_lengths"] == true {
                Pooling::Mean
            } else {
                Pooling::Sum
            };
            let out_dtype = v["out_dtype"].as_str().unwrap();
            let array = v["output_array"].as_str().unwrap();
            let want = expected_bits(case, array, out_dtype);
            for runner in [Runner::Reference, Runner::Dispatched] {
                let got = run(runner, &table, &bags, pooling, out_dtype);
                assert_bits(&format!("{name} ({runner:?})"), dim, &got, &want);
            }
            variants_checked += 1;
        }
    }
    // 15 cases × 4 variants, plus 4 f16-output variants for each of the 5 dim-64 cases.
    assert_eq!(variants_checked, 15 * 4 + 5 * 4);
}
