//! Compositional embedding bags, in indices pooled per second, against the two ways an
//! engine gets the same vectors without them (same run, same index batches).
//!
//! - `compositional/qr_f32/dim64/bag100/{fused,unfused}/<isa>`: quotient-remainder with
//!   product over two f32 tables of 2048 rows (512 KiB each, in L2) standing for the
//!   4,194,304 rows of the large table; fused is the compositional bag, unfused gathers
//!   each index's component rows into buffers with lowp's own bags of one, multiplies
//!   them, then pools (see `common/compositional.rs`).
//! - `compositional/full_f32/dim64/bag100/<isa>`: the same virtual table held in full
//!   (f32, 1 GiB, out of cache, on 2 MiB pages where the system gives them), plain bag.
//! - `compositional/qr_q8_100M/dim64/bag100/fused/<isa>`: the README's worked example,
//!   100,000,000 categories from two Q8 tables of 10,000 rows.
//!
//! 2048 bags of 100 uniform indices per call, each call on a batch no recent call used.
//! Each level's first fused (and unfused) result is checked bit for bit against the
//! reference. `cargo bench --bench compositional -- <filter>` runs a subset.

#[allow(dead_code)]
#[path = "common/bags.rs"]
mod bags;
#[allow(dead_code)]
#[path = "common/compositional.rs"]
mod compositional;

use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use lowp::registry::{self, Op};
use lowp::{Combine, Format, Isa};

use bags::{IndexDist, IndexPool, TableSize};
use compositional::{DIM, QrCase, Unfused, full_plan};

/// Times `calls` calls of `call`, each on a fresh batch from `pool`.
fn time_calls(pool: &mut IndexPool, calls: u64, mut call: impl FnMut(&[i32])) -> Duration {
    let mut spent = Duration::ZERO;
    for _ in 0..calls {
        let batch = pool.next_batch();
        let start = Instant::now();
        call(batch);
        spent += start.elapsed();
    }
    spent
}

/// Levels with a compositional kernel of their own (the Scalar reference would take
/// minutes, and higher levels without one would run the same kernel again).
fn levels() -> Vec<Isa> {
    Isa::available()
        .iter()
        .copied()
        .filter(|&isa| {
            let op = Op::CompositionalBag(Combine::Product);
            isa != Isa::Scalar && registry::select(op, DIM, isa).isa == isa
        })
        .collect()
}

fn all(c: &mut Criterion) {
    let buffer = bags::table_buffer().expect("the 1 GiB benchmark table");
    let full = TableSize::Large.table(&buffer, Format::F32, DIM);
    let n = full.rows();
    let m = n.isqrt() + usize::from(n.isqrt() * n.isqrt() < n);
    let qr = QrCase::new(&buffer, Format::F32, m, n);
    let mut pool =
        IndexPool::with_batch_len(IndexDist::Uniform, TableSize::Large, n, qr.batch_len());
    let mut out = vec![0f32; qr.out_len()];
    let mut scratch = Unfused::default();
    let checked = pool.next_batch().to_vec();
    let expected = qr.reference_bits(&checked);
    let exact = |out: &[f32]| out.iter().map(|x| x.to_bits()).eq(expected.iter().copied());

    let mut group = c.benchmark_group("compositional");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(qr.batch_len() as u64));
    for isa in levels() {
        let plan = qr.plan(isa);
        qr.fused(&plan, &checked, &mut out);
        assert!(exact(&out), "fused at {isa} differs from the reference");
        group.bench_function(format!("qr_f32/dim{DIM}/bag100/fused/{isa}"), |b| {
            b.iter_custom(|calls| time_calls(&mut pool, calls, |x| qr.fused(&plan, x, &mut out)))
        });
        qr.unfused(isa, &mut scratch, &checked, &mut out);
        assert!(exact(&out), "unfused at {isa} differs from the reference");
        group.bench_function(format!("qr_f32/dim{DIM}/bag100/unfused/{isa}"), |b| {
            b.iter_custom(|calls| {
                time_calls(&mut pool, calls, |x| {
                    qr.unfused(isa, &mut scratch, x, &mut out)
                })
            })
        });
        let plan = full_plan(isa);
        group.bench_function(format!("full_f32/dim{DIM}/bag100/{isa}"), |b| {
            b.iter_custom(|calls| {
                time_calls(&mut pool, calls, |x| qr.full(&plan, &full, x, &mut out))
            })
        });
    }
    let q8 = QrCase::new(&buffer, Format::Q8, 10_000, 100_000_000);
    let mut pool = IndexPool::with_batch_len(
        IndexDist::Uniform,
        TableSize::Large,
        100_000_000,
        q8.batch_len(),
    );
    let checked = pool.next_batch().to_vec();
    let expected = q8.reference_bits(&checked);
    for isa in levels() {
        let plan = q8.plan(isa);
        q8.fused(&plan, &checked, &mut out);
        assert!(
            out.iter().map(|x| x.to_bits()).eq(expected.iter().copied()),
            "Q8 fused at {isa} differs from the reference"
        );
        group.bench_function(format!("qr_q8_100M/dim{DIM}/bag100/fused/{isa}"), |b| {
            b.iter_custom(|calls| time_calls(&mut pool, calls, |x| q8.fused(&plan, x, &mut out)))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10);
    targets = all
}
criterion_main!(benches);
