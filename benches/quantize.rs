//! Row-wise quantizers and dequantizers: every registry kernel this CPU runs, for each
//! quantized format, in bytes of f32 values read (quantize) or written (dequantize) per
//! second.

#[path = "common/names.rs"]
mod names;
#[path = "common/quant.rs"]
mod quant;

use std::time::Duration;

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

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = quantize, dequantize
}
criterion_main!(benches);
