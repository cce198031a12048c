//! Row-wise quantizers and dequantizers: every registry kernel this CPU runs, for each
//! quantized format, in bytes of f32 values read (quantize) or written (dequantize) per
//! second; then one line per kernel with its median GB/s as a fraction of the in-cache
//! sequential-read limit (`cargo bench --bench quantize -- ratio` prints only those lines),
//! and the Q8 and Q4 quantizers of each vector level over a whole 1 GiB f32 table against
//! the out-of-cache sequential read; both ratios alternate kernel and read loop in thread
//! CPU time (`common/paired.rs`).

#[path = "common/names.rs"]
mod names;
#[path = "common/paired.rs"]
mod paired;
#[path = "common/quant.rs"]
mod quant;

use std::hint::black_box;
use std::time::Duration;

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

/// Pairs (kernel samples) of each ratio line.
const PAIRS: usize = 21;

/// Prints each kernel's median GB/s and its ratio to reading the same number of f32 bytes
/// in cache (the loop of `lowp::limits::seq_read`): the median of [`PAIRS`] ratios of
/// about 10 ms of the kernel to the read loop's samples on either side, in thread CPU
/// time ([`paired::paired`]).
fn ratio_to_read_limit(_: &mut Criterion) {
    // Aligned as the report's read buffer is: a `Vec` from malloc is only 16-byte aligned,
    // and its 32-byte loads splitting cache lines read about half as fast.
    let bytes = HugeBuffer::new(4 * ROWS * DIM).expect("256 KiB");
    let limit = lowp::limits::seq_read(&bytes, false);
    println!(
        "ratio: limit {} = {:.1} GB/s measured once; each line pairs its own",
        limit.name, limit.value
    );
    let read = |n: u64| {
        for _ in 0..n {
            black_box(lowp::limits::seq_read_pass(black_box(&bytes)));
        }
        n as f64 * bytes.len() as f64
    };
    for entry in runnable() {
        let (name, format) = match entry.op {
            Op::Quantize(format) => ("quantize", format),
            Op::Dequantize(format) => ("dequantize", format),
            _ => continue,
        };
        let case = QuantCase::new(format);
        let work = case.f32_bytes() as f64;
        let p = if name == "quantize" {
            let mut out = vec![0u8; case.table_bytes()];
            let quantize = |n: u64| {
                for _ in 0..n {
                    case.quantize(entry, &mut out);
                }
                n as f64 * work
            };
            paired::paired(PAIRS, 0.01, quantize, read)
        } else {
            let mut out = vec![0f32; ROWS * DIM];
            let dequantize = |n: u64| {
                for _ in 0..n {
                    case.dequantize(entry, &mut out);
                }
                n as f64 * work
            };
            paired::paired(PAIRS, 0.01, dequantize, read)
        };
        let (q1, q3) = p.ratio_quartiles;
        println!(
            "ratio: {name} {format} {}: {:.1} GB/s = {:.2} (quartiles {q1:.2}-{q3:.2}) of {} \
             ({:.1} GB/s), medians of {PAIRS} alternations in thread CPU time",
            entry.isa, p.kernel, p.ratio, limit.name, p.limit
        );
    }
}

/// Prints the Q8 and Q4 quantizers of each vector level over a whole table of f32 far out
/// of cache as a fraction of reading as many bytes from memory (`lowp::limits::seq_read`'s
/// loop over a 1 GiB buffer): the median of [`PAIRS`] ratios, each of one whole quantizer
/// call to the mean of the read passes before and after it, in thread CPU time
/// ([`paired::paired`]), so that load from other processes slows both sides of a ratio
/// alike. Table and read buffer are both
/// `HugeBuffer`s, so both read the same kind of pages; the output is one too (the same
/// pages as the limit), then a `Vec` on 4 KiB pages, which on the development VM costs
/// the quantizers about a quarter of their rate.
fn large_ratio_to_read_limit(_: &mut Criterion) {
    let buffer = HugeBuffer::new(LARGE_TABLE_BYTES).expect("the 1 GiB read buffer");
    let input = LargeQuantInput::new(LARGE_TABLE_BYTES);
    for format in [lowp::Format::Q8, lowp::Format::Q4] {
        let bytes = input.table_bytes(format);
        let mut huge = HugeBuffer::new(bytes).expect("the quantized table");
        let mut small = vec![0u8; bytes];
        for (pages, out) in [("2MiB", &mut huge[..]), ("4KiB", &mut small[..])] {
            for entry in runnable().filter(|e| e.op == Op::Quantize(format) && e.isa != Isa::Scalar)
            {
                large_ratio(&input, &buffer, entry, format, pages, out);
            }
        }
    }
}

/// One line of [`large_ratio_to_read_limit`]: `entry` quantizing `input` to `format` into
/// `out`, on `pages` (the output's page size, printed).
fn large_ratio(
    input: &LargeQuantInput,
    buffer: &[u8],
    entry: &Entry,
    format: lowp::Format,
    pages: &str,
    out: &mut [u8],
) {
    // Untimed: faults a `Vec` output in, so that timed calls write to committed memory,
    // as an engine re-quantizing into its table does.
    input.quantize(entry, out);
    assert!(input.quantized_prefix_is_exact(format, out));
    let bytes = input.f32_bytes() as f64;
    let quantize = |n: u64| {
        for _ in 0..n {
            input.quantize(entry, out);
        }
        n as f64 * bytes
    };
    // A sample is one call of each: both last far longer than the 10 ms asked for.
    let p = paired::paired(PAIRS, 0.01, quantize, |n| {
        for _ in 0..n {
            black_box(lowp::limits::seq_read_pass(black_box(buffer)));
        }
        n as f64 * buffer.len() as f64
    });
    println!(
        "ratio: quantize {format} {} over {} rows, output on {pages} pages: {:.1} GB/s = \
         {:.3} (quartiles {:.3}-{:.3}) of seq_read_1GiB ({:.1} GB/s), medians of {PAIRS} \
         alternations in thread CPU time",
        entry.isa,
        input.rows(),
        p.kernel,
        p.ratio,
        p.ratio_quartiles.0,
        p.ratio_quartiles.1,
        p.limit,
    );
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
