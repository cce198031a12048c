//! Row-wise quantizers and dequantizers: every registry kernel this CPU runs, for each
//! quantized format, in bytes of f32 values read (quantize) or written (dequantize) per
//! second; then one line per kernel with its median GB/s as a fraction of the in-cache
//! sequential-read limit measured in the same run (`cargo bench --bench quantize -- ratio`
//! prints only those lines).

#[path = "common/names.rs"]
mod names;
#[path = "common/quant.rs"]
mod quant;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lowp::registry::{self, Entry, Op};

use quant::{DIM, QuantCase, ROWS};

fn id(entry: &Entry, case: &QuantCase) -> String {
    format!(
        "{}/{}_{}/rows{ROWS}_dim{DIM}",
        case.format,
        entry.isa,
        names::spec_name(entry.spec)
    )
}

fn runnable() -> impl Iterator<Item = &'static Entry> {
    registry::entries()
        .iter()
        .filter(|e| e.isa.is_available() && e.spec.accepts(DIM))
}

fn quantize(c: &mut Criterion) {
    let mut group = c.benchmark_group("quantize");
    for entry in runnable() {
        let Op::Quantize(format) = entry.op else {
            continue;
        };
        let case = QuantCase::new(format);
        let mut out = vec![0u8; case.table_bytes()];
        case.quantize(entry, &mut out);
        assert!(
            case.quantized_is_exact(&out),
            "{} {} differs from the reference",
            entry.op,
            entry.isa
        );
        group.throughput(Throughput::Bytes(case.f32_bytes() as u64));
        group.bench_function(id(entry, &case), |b| {
            b.iter(|| case.quantize(entry, &mut out))
        });
    }
    group.finish();
}

fn dequantize(c: &mut Criterion) {
    let mut group = c.benchmark_group("dequantize");
    for entry in runnable() {
        let Op::Dequantize(format) = entry.op else {
            continue;
        };
        let case = QuantCase::new(format);
        let mut out = vec![0f32; ROWS * DIM];
        case.dequantize(entry, &mut out);
        assert!(
            case.dequantized_is_exact(&out),
            "{} {} differs from the reference",
            entry.op,
            entry.isa
        );
        group.throughput(Throughput::Bytes(case.f32_bytes() as u64));
        group.bench_function(id(entry, &case), |b| {
            b.iter(|| case.dequantize(entry, &mut out))
        });
    }
    group.finish();
}

/// Median seconds per call of `call` over 15 samples of 20 calls each.
fn median_secs(mut call: impl FnMut()) -> f64 {
    call();
    let mut samples: Vec<f64> = (0..15)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..20 {
                call();
            }
            start.elapsed().as_secs_f64() / 20.0
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Prints each kernel's median GB/s and its ratio to reading the same number of f32 bytes
/// in cache (`lowp::limits::seq_read`), measured in the same run.
fn ratio_to_read_limit(_: &mut Criterion) {
    let bytes = vec![1u8; 4 * ROWS * DIM];
    let limit = lowp::limits::seq_read(&bytes, false);
    println!("ratio: limit {} = {:.1} GB/s", limit.name, limit.value);
    for entry in runnable() {
        let (name, format) = match entry.op {
            Op::Quantize(format) => ("quantize", format),
            Op::Dequantize(format) => ("dequantize", format),
            _ => continue,
        };
        let case = QuantCase::new(format);
        let secs = if name == "quantize" {
            let mut out = vec![0u8; case.table_bytes()];
            median_secs(|| case.quantize(entry, &mut out))
        } else {
            let mut out = vec![0f32; ROWS * DIM];
            median_secs(|| case.dequantize(entry, &mut out))
        };
        let gbs = case.f32_bytes() as f64 / secs / 1e9;
        println!(
            "ratio: {name} {format} {}: {gbs:.1} GB/s = {:.2} of {}",
            entry.isa,
            gbs / limit.value,
            limit.name
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = quantize, dequantize, ratio_to_read_limit
}
criterion_main!(benches);
