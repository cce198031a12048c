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
use lowp::limits;
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

/// Rounds of the interleaved summary.
const SUMMARY_ROUNDS: usize = 5;

/// 1024³ on every level, each call alternating with a peak measurement; medians.
fn summary() {
    let case = I64GemmCase::new((1024, 1024, 1024));
    let mut out = vec![0i64; case.out_len()];
    let entries: Vec<_> = registry::entries()
        .iter()
        .filter(|e| e.op == Op::GemmI64 && e.isa.is_available() && e.spec.accepts(case.n))
        .collect();
    let mut peaks = Vec::new();
    let mut gops = vec![Vec::new(); entries.len()];
    for _ in 0..SUMMARY_ROUNDS {
        for (entry, samples) in entries.iter().zip(&mut gops) {
            if let Some(isa) = limits::i64_madd_peak_levels().last() {
                peaks.push(limits::i64_madd_peak(*isa, true).expect("listed").value);
            }
            let start = Instant::now();
            case.run(entry, &mut out);
            samples.push(case.ops() as f64 / start.elapsed().as_secs_f64() / 1e9);
        }
    }
    assert!(
        case.is_exact(&out),
        "the last kernel differs from the reference"
    );
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let peak = (!peaks.is_empty()).then(|| median(&mut peaks));
    let medians: Vec<f64> = gops.iter_mut().map(median).collect();
    let scalar = entries
        .iter()
        .zip(&medians)
        .find(|(e, _)| e.isa == lowp::Isa::Scalar)
        .map(|(_, &g)| g);
    println!(
        "summary {} (median of {SUMMARY_ROUNDS}, each call alternating with the peak loop): \
         i64_madd_peak {}",
        case.name(),
        peak.map_or("none".to_owned(), |p| format!("{p:.2} GOPS"))
    );
    for (entry, g) in entries.iter().zip(medians) {
        println!(
            "summary {:<8} {g:>7.2} GOPS  ratio to peak {}  × scalar {}",
            entry.isa.name(),
            peak.map_or("null".to_owned(), |p| format!("{:.3}", g / p)),
            scalar.map_or("null".to_owned(), |s| format!("{:.2}", g / s)),
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
