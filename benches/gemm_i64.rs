//! Wrapping i64 GEMM: every registry kernel this CPU runs over square sizes {64, 256, 1024}
//! and the small batches m ∈ {1, 16, 64} with n = k = 1024, in operations (2 per
//! multiply-add) per second, single-threaded. The 64-bit multiply-add peak measured first
//! in the same process is printed, so throughput reads as a fraction of it.
//!
//! After criterion's runs, a summary times 1024³ on every level alternately with the peak
//! loop (so both see the same machine load, which matters on a shared machine) and prints
//! medians, the ratio to the peak and the ratio to the scalar reference.
//!
//! ```text
//! cargo bench --bench gemm_i64
//! ```

#[path = "common/gemm_i64.rs"]
mod gemm_i64;
#[path = "common/names.rs"]
mod names;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use lowp::registry::{self, Op};
use lowp::{Isa, limits};

use gemm_i64::{I64_SHAPES, I64GemmCase};

fn gemm_i64(c: &mut Criterion) {
    for isa in limits::i64_madd_peak_levels() {
        let peak = limits::i64_madd_peak(isa, false).expect("listed levels are available");
        eprintln!("limit {}: {:.2} {}", peak.name, peak.value, peak.unit);
    }
    let mut group = c.benchmark_group("gemm_i64");
    for shape in I64_SHAPES {
        let case = I64GemmCase::new(shape);
        let mut out = vec![0i64; case.out_len()];
        for entry in registry::entries()
            .iter()
            .filter(|e| e.op == Op::GemmI64 && e.isa.is_available() && e.spec.accepts(case.n))
        {
            case.run(entry, &mut out);
            assert!(
                case.is_exact(&out),
                "{} {} differs from the reference",
                entry.op,
                entry.isa
            );
            group.throughput(Throughput::Elements(case.ops() as u64));
            let id = format!(
                "{}_{}/{}",
                entry.isa,
                names::spec_name(entry.spec),
                case.name()
            );
            group.bench_function(id, |b| b.iter(|| case.run(entry, &mut out)));
        }
    }
    group.finish();
}

/// Rounds of the interleaved summary.
const SUMMARY_ROUNDS: usize = 5;

/// 1024³ on every level. Each round measures the 64-bit multiply-add peak, then times three
/// calls and keeps the fastest, so that peak and kernel see about the same machine load (the
/// machine may be shared); the figures are medians over rounds of the kernel's GOPS and of
/// its ratio to that round's peak. The scalar reference (far slower) runs one call.
fn summary() {
    let case = I64GemmCase::new((1024, 1024, 1024));
    let mut out = vec![0i64; case.out_len()];
    let peak_isa = limits::i64_madd_peak_levels().last().copied();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut scalar_gops = None;
    println!(
        "summary {}: median over rounds of (best of 3 calls, its ratio to the \
         i64_madd_peak measured just before)",
        case.name()
    );
    for entry in registry::entries()
        .iter()
        .filter(|e| e.op == Op::GemmI64 && e.isa.is_available() && e.spec.accepts(case.n))
    {
        let scalar = entry.isa == Isa::Scalar;
        let (rounds, calls) = if scalar { (1, 1) } else { (SUMMARY_ROUNDS, 3) };
        let (mut gops, mut peaks, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let peak = peak_isa.map(|isa| {
                limits::i64_madd_peak(isa, false)
                    .expect("listed levels are available")
                    .value
            });
            let secs = (0..calls)
                .map(|_| {
                    let start = Instant::now();
                    case.run(entry, &mut out);
                    start.elapsed().as_secs_f64()
                })
                .fold(f64::INFINITY, f64::min);
            let g = case.ops() as f64 / secs / 1e9;
            gops.push(g);
            if let Some(p) = peak {
                peaks.push(p);
                ratios.push(g / p);
            }
        }
        assert!(
            case.is_exact(&out),
            "{} differs from the reference",
            entry.isa
        );
        let g = median(gops);
        if scalar {
            scalar_gops = Some(g);
        }
        let (peak, ratio) = if peaks.is_empty() {
            ("none".to_owned(), "null".to_owned())
        } else {
            (
                format!("{:.2} GOPS", median(peaks)),
                format!("{:.3}", median(ratios)),
            )
        };
        println!(
            "summary {:<8} {g:>7.2} GOPS  peak {peak}  ratio to peak {ratio}  × scalar {}",
            entry.isa.name(),
            scalar_gops.map_or("null".to_owned(), |s| format!("{:.2}", g / s)),
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10);
    targets = gemm_i64
}

fn main() {
    benches();
    // Only under `cargo bench` (which passes --bench), not when tests run benches once.
    if std::env::args().any(|a| a == "--bench") {
        summary();
    }
    Criterion::default().configure_from_args().final_summary();
}
