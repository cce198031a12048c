//! Row-wise quantizers and dequantizers: every registry kernel this CPU runs, for each
//! quantized format, in bytes of f32 values read (quantize) or written (dequantize) per
//! second; then one line per kernel with its median GB/s as a fraction of the in-cache
//! sequential-read limit measured in the same run (`cargo bench --bench quantize -- ratio`
//! prints only those lines), and the Q8 and Q4 quantizers of each vector level over a
//! whole 1 GiB f32 table against the out-of-cache sequential read, alternated with it in
//! thread CPU time.

#[path = "common/names.rs"]
mod names;
#[path = "common/quant.rs"]
mod quant;

use std::hint::black_box;
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

/// Seconds of CPU time this thread has run: unlike wall clock, not inflated while other
/// processes hold the cores.
fn thread_cpu_secs() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec to write; the clock id is a constant Linux defines.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(status, 0, "clock_gettime");
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// Prints the Q8 and Q4 quantizers of each vector level over a whole table of f32 far out
/// of cache as a fraction of reading as many bytes from memory (`lowp::limits::seq_read`'s
/// loop over a 1 GiB buffer): the median of [`LARGE_SAMPLES`] ratios, each of one whole
/// quantizer call and one read pass timed back to back in thread CPU time, so that load
/// from other processes slows both sides of a ratio alike. Table and read buffer are both
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
    let (mut kernel, mut read, mut ratio) = (vec![], vec![], vec![]);
    for _ in 0..LARGE_SAMPLES {
        let start = thread_cpu_secs();
        input.quantize(entry, out);
        let quantized = thread_cpu_secs();
        black_box(lowp::limits::seq_read_pass(black_box(buffer)));
        let done = thread_cpu_secs();
        let gbs = input.f32_bytes() as f64 / (quantized - start) / 1e9;
        let limit = buffer.len() as f64 / (done - quantized) / 1e9;
        kernel.push(gbs);
        read.push(limit);
        ratio.push(gbs / limit);
    }
    println!(
        "ratio: quantize {format} {} over {} rows, output on {pages} pages: {:.1} GB/s = \
         {:.3} of seq_read_1GiB ({:.1} GB/s), medians of {LARGE_SAMPLES} alternations in \
         thread CPU time",
        entry.isa,
        input.rows(),
        median(kernel),
        median(ratio),
        median(read),
    );
}

/// Alternations of quantizer and read pass [`large_ratio_to_read_limit`] takes the
/// median of.
const LARGE_SAMPLES: usize = 21;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
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
