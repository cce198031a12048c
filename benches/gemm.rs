//! Integer GEMMs: every registry kernel this CPU runs, u8 × i8 over packed weights at
//! small batch with each output stage, and square i64, in operations (2 per multiply-add)
//! per second.

#[path = "common/gemm.rs"]
mod gemm;
#[path = "common/names.rs"]
mod names;

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lowp::registry::{self, Op};

use gemm::{I64_SIZE, I64Case, U8I8_BENCH_M, U8I8_BENCH_NK, U8I8_NK, U8I8Case, U8I8Stage};

/// Every u8 × i8 kernel over [`U8I8_BENCH_M`] × [`U8I8_BENCH_NK`] with the u8
/// requantizing stage, and every other stage at n = k = 1024.
fn gemm_u8i8(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm_u8i8");
    let mut shapes = Vec::new();
    for (n, k) in U8I8_BENCH_NK {
        for m in U8I8_BENCH_M {
            for kind in U8I8Stage::ALL {
                if kind == U8I8Stage::RequantU8 || (n, k) == (U8I8_NK, U8I8_NK) {
                    shapes.push((m, n, k, kind));
                }
            }
        }
    }
    for (m, n, k, kind) in shapes {
        let case = U8I8Case::with_stage(m, n, k, kind);
        let mut out = case.output();
        for entry in registry::entries()
            .iter()
            .filter(|e| e.op == Op::GemmU8I8 && e.isa.is_available() && e.spec.accepts(n))
        {
            case.run_into(entry, &mut out);
            assert!(
                case.is_exact_out(&out),
                "{} {} differs from the reference",
                entry.op,
                entry.isa
            );
            group.throughput(Throughput::Elements(case.ops() as u64));
            let id = format!(
                "{}_{}/m{m}_n{n}_k{k}_{}",
                entry.isa,
                names::spec_name(entry.spec),
                kind.name()
            );
            group.bench_function(id, |b| b.iter(|| case.run_into(entry, &mut out)));
        }
    }
    group.finish();
}

fn gemm_i64(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm_i64");
    for entry in registry::entries()
        .iter()
        .filter(|e| e.op == Op::GemmI64 && e.isa.is_available() && e.spec.accepts(I64_SIZE))
    {
        let case = I64Case::new(I64_SIZE);
        let mut out = vec![0i64; case.out_len()];
        case.run(entry, &mut out);
        assert!(
            case.is_exact(&out),
            "{} {} differs from the reference",
            entry.op,
            entry.isa
        );
        group.throughput(Throughput::Elements(case.ops() as u64));
        let id = format!(
            "{}_{}/m{I64_SIZE}_n{I64_SIZE}_k{I64_SIZE}",
            entry.isa,
            names::spec_name(entry.spec)
        );
        group.bench_function(id, |b| b.iter(|| case.run(entry, &mut out)));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = gemm_u8i8, gemm_i64
}
criterion_main!(benches);
