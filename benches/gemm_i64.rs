//! Wrapping i64 GEMM: every registry kernel this CPU runs over square sizes {64, 256, 1024}
//! and the small batches m ∈ {1, 16, 64} with n = k = 1024, in operations (2 per
//! multiply-add) per second, single-threaded. The 64-bit multiply-add peak measured first
//! in the same process is printed, so throughput reads as a fraction of it.
//!
//! After criterion's runs, a summary times 1024³ on every level alternately with the peak
//! loop in thread CPU time (so both see the same machine load, which matters on a shared
//! machine; `common/paired.rs`) and prints medians, the ratio to the peak and the ratio to
//! the scalar reference.
//!
//! ```text
//! cargo bench --bench gemm_i64
//! ```

#[path = "common/gemm_i64.rs"]
mod gemm_i64;
#[path = "common/names.rs"]
mod names;
#[path = "common/paired.rs"]
mod paired;

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group};
use lowp::Isa;
use lowp::limits::{self, LimitKind};
use lowp::registry::{self, Op};

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

/// Pairs (kernel samples) of the summary's ratio.
const SUMMARY_PAIRS: usize = 21;

/// 1024³ on every level. Each vector level alternates with the 64-bit multiply-add peak
/// loop in thread CPU time ([`paired::paired`]: samples of one call, about 80 ms on
/// AVX-512, and about 10 ms of the peak loop), so that peak and kernel see the same
/// machine load (the machine may be shared); the figures are the medians of the kernel's
/// GOPS, of the peak around it and of the per-pair ratios. The scalar reference (far
/// slower) runs one call, timed in thread CPU time, and has no ratio to the peak.
fn summary() {
    let case = I64GemmCase::new((1024, 1024, 1024));
    let mut out = vec![0i64; case.out_len()];
    let peak_isa = limits::i64_madd_peak_levels().last().copied();
    let mut scalar_gops = None;
    println!(
        "summary {}: medians of {SUMMARY_PAIRS} kernel samples alternating with the \
         i64_madd_peak loop in thread CPU time",
        case.name()
    );
    for entry in registry::entries()
        .iter()
        .filter(|e| e.op == Op::GemmI64 && e.isa.is_available() && e.spec.accepts(case.n))
    {
        let mut run = |n: u64| {
            for _ in 0..n {
                case.run(entry, &mut out);
            }
            (n as usize * case.ops()) as f64
        };
        let (g, peak, ratio) = match peak_isa.filter(|_| entry.isa != Isa::Scalar) {
            Some(isa) => {
                let p = paired::paired(SUMMARY_PAIRS, 0.01, &mut run, |n| {
                    limits::run_peak(&LimitKind::I64MaddPeak, isa, n)
                        .expect("a listed level has the loop") as f64
                });
                let (q1, q3) = p.ratio_quartiles;
                (
                    p.kernel,
                    format!("{:.2} GOPS", p.limit),
                    format!("{:.3} (quartiles {q1:.3}-{q3:.3})", p.ratio),
                )
            }
            None => {
                let start = paired::thread_cpu_secs();
                let ops = run(1);
                let g = ops / (paired::thread_cpu_secs() - start) / 1e9;
                (g, "none".to_owned(), "null".to_owned())
            }
        };
        assert!(
            case.is_exact(&out),
            "{} differs from the reference",
            entry.isa
        );
        if entry.isa == Isa::Scalar {
            scalar_gops = Some(g);
        }
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
