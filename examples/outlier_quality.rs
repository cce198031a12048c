//! Quantization error and size of plain and outlier-aware tables on the MiniLM word
//! embeddings (`../shared/data/minilm-word-embeddings-4096x384.f32`, or
//! `$LOWP_SHARED/data/...`): the README's outlier table.
//!
//! `cargo run --release --example outlier_quality` prints one Markdown row per format and
//! configuration: RMSE over all elements (as the dequantizer decodes them), bytes per row
//! (the serialized table, header and sparse part included, over its rows), and both as
//! ratios to the plain min/max table of the same format.

use std::path::PathBuf;

use lowp::outlier::{OutlierOptions, OutlierTableBuf, Outliers, ResidualType, quantize_outliers};
use lowp::{Clipping, Format, Output, QuantInput, reference};

const ROWS: usize = 4096;
const DIM: usize = 384;

fn data() -> Vec<f32> {
    let root = std::env::var_os("LOWP_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let path = root.join("data/minilm-word-embeddings-4096x384.f32");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        bytes.len(),
        ROWS * DIM * 4,
        "{} has the wrong size",
        path.display()
    );
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// RMSE of the decoded table against `exact`, and its bytes per row.
fn measure(table: &OutlierTableBuf, exact: &[f32]) -> (f64, f64) {
    let table = table.table();
    let mut decoded = vec![0f32; exact.len()];
    reference::dequantize_outlier(&table, &mut Output::F32(&mut decoded)).unwrap();
    let sum: f64 = exact
        .iter()
        .zip(&decoded)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    ((sum / exact.len() as f64).sqrt(), table.bytes_per_row())
}

fn main() {
    let exact = data();
    let input = QuantInput::F32(&exact);
    println!(
        "| format | dense clipping | outliers per row | RMSE | × min/max | bytes/row | × plain |"
    );
    println!("|---|---|---|---|---|---|---|");
    for format in [Format::Q4, Format::Q2, Format::Q8] {
        let plain_bytes = format.row_bytes(DIM).unwrap() as f64;
        let clippings: &[Clipping] = if format == Format::Q8 {
            &[Clipping::MinMax]
        } else {
            &[Clipping::MinMax, Clipping::Greedy]
        };
        let mut configs = Vec::new();
        for &clipping in clippings {
            for k in [0, 1, 2, 4, 8] {
                configs.push((clipping, Outliers::Fixed(k)));
            }
        }
        if format == Format::Q4 {
            for min_gain in [5e-5, 1e-4, 2e-4] {
                configs.push((Clipping::Greedy, Outliers::Threshold { max: 4, min_gain }));
            }
        }
        let mut base = None;
        for (clipping, outliers) in configs {
            let options = OutlierOptions {
                format,
                clipping,
                outliers,
                residual: ResidualType::F16,
            };
            let table = quantize_outliers(&options, input, ROWS, DIM, None).unwrap();
            let (rmse, _) = measure(&table, &exact);
            let nnz = table.table().nnz();
            // The plain table is the dense part alone, without header or offsets.
            let bytes = if matches!(outliers, Outliers::Fixed(0)) {
                plain_bytes
            } else {
                table.table().bytes_per_row()
            };
            let base_rmse = *base.get_or_insert(rmse);
            let k = match outliers {
                Outliers::Fixed(0) => "0 (plain)".to_string(),
                Outliers::Fixed(k) => k.to_string(),
                Outliers::Threshold { max, min_gain } => format!(
                    "≤ {max}, gain ≥ {min_gain:e} (mean {:.2})",
                    nnz as f64 / ROWS as f64
                ),
            };
            let clip = match clipping {
                Clipping::MinMax => "min/max",
                Clipping::Greedy => "greedy",
            };
            println!(
                "| {format} | {clip} | {k} | {rmse:.3e} | {:.3} | {bytes:.1} | {:.3} |",
                rmse / base_rmse,
                bytes / plain_bytes
            );
        }
    }
}
