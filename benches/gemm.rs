//! Integer GEMMs: every registry kernel this CPU runs, u8 × i8 with a requantizing stage
//! at small batch and square i64, in operations (2 per multiply-add) per second.

#[path = "common/gemm.rs"]
mod gemm;
#[path = "common/names.rs"]
mod names;

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lowp::registry::{self, Op};

use gemm::{I64_SIZE, I64Case, U8I8_M, U8I8_NK, U8I8Case};

fn gemm_u8i8(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm_u8i8");
    for entry in registry::entries()
        .iter()
        .filter(|e| e.op == Op::GemmU8I8 && e.isa.is_available() && e.spec.accepts(U8I8_NK))
    {
        for m in U8I8_M {
            let case = U8I8Case::new(m, U8I8_NK, U8I8_NK);
            let mut out = vec![0u8; case.out_len()];
            case.run(entry, &mut out);
            assert!(
                case.is_exact(&out),
                "{} {} differs from the reference",
                entry.op,
                entry.isa
            );
            group.throughput(Throughput::Elements(case.ops() as u64));
            let id = format!(
                "{}_{}/m{m}_n{}_k{}_requant_u8",
                entry.isa,
                names::spec_name(entry.spec),
                case.n,
                case.k
            );
            group.bench_function(id, |b| b.iter(|| case.run(entry, &mut out)));
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
