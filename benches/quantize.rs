//! Row-wise quantizers and dequantizers: every registry kernel this CPU runs, for each
//! quantized format, in bytes of f32 values read (quantize) or written (dequantize) per
//! second; then one line per kernel with its median GB/s as a fraction of the in-cache
//! sequential-read limit measured in the same run (`cargo bench --bench quantize -- ratio`
//! prints only those lines), and the Q8 and Q4 quantizers of each vector level over a
//! whole 1 GiB f32 table against the out-of-cache sequential read.

#[path = "common/names.rs"]
mod names;
#[path = "common/quant.rs"]
mod quant;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lowp::registry::{self, Entry, Op};

use lowp::Isa;
use lowp::limits::{HugeBuffer, LARGE_TABLE_BYTES};
use quant::{DIM, LargeQuantInput, QuantCase, ROWS};

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

/// Median seconds per call of `call` over `samples` samples of `calls` calls each.
fn median_secs(samples: usize, calls: u32, mut call: impl FnMut()) -> f64 {
    call();
    let mut samples: Vec<f64> = (0..samples)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..calls {
                call();
            }
            start.elapsed().as_secs_f64() / f64::from(calls)
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
            median_secs(15, 20, || case.quantize(entry, &mut out))
        } else {
            let mut out = vec![0f32; ROWS * DIM];
            median_secs(15, 20, || case.dequantize(entry, &mut out))
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

/// Prints the GB/s of the Q8 and Q4 quantizers of each vector level over a whole table of
/// f32 far out of cache, and its ratio to reading as many bytes from memory
/// (`lowp::limits::seq_read` over a 1 GiB buffer), measured in the same run. Table and
/// limit buffer are both `HugeBuffer`s, so both read the same kind of pages.
fn large_ratio_to_read_limit(_: &mut Criterion) {
    let limit = {
        let buffer = HugeBuffer::new(LARGE_TABLE_BYTES).expect("the 1 GiB read buffer");
        lowp::limits::seq_read(&buffer, false)
    };
    println!("ratio: limit {} = {:.1} GB/s", limit.name, limit.value);
    let input = LargeQuantInput::new(LARGE_TABLE_BYTES);
    for format in [lowp::Format::Q8, lowp::Format::Q4] {
        // Faulted in by the untimed first call of `median_secs`, so that timed calls write
        // to committed memory, as an engine re-quantizing into its table does.
        let mut out = vec![0u8; input.table_bytes(format)];
        for entry in runnable().filter(|e| e.op == Op::Quantize(format) && e.isa != Isa::Scalar) {
            let secs = median_secs(5, 1, || input.quantize(entry, &mut out));
            assert!(input.quantized_prefix_is_exact(format, &out));
            let gbs = input.f32_bytes() as f64 / secs / 1e9;
            println!(
                "ratio: quantize {format} {} over {} rows: {gbs:.1} GB/s = {:.2} of {}",
                entry.isa,
                input.rows(),
                gbs / limit.value,
                limit.name
            );
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = quantize, dequantize, ratio_to_read_limit, large_ratio_to_read_limit
}
criterion_main!(benches);
