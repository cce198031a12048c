//! Embedding bags over an outlier table against the plain Q4 kernel on the same rows.
//!
//! `outlier/q4/dim128/bag100/large_uniform/<isa>/{plain,outliers4}`: for every level with a
//! kernel of its own, [`BENCH_BAGS`] bags of 100 uniform indices per call over an
//! out-of-cache Q4 table of dimension 128 (≥ 1 GiB of dense rows on 2 MiB pages), read
//! plain (the dense part alone, through the Q4 kernel) and with its 4 outliers per row
//! (through the outlier kernel), with the default software prefetch and the same index
//! batches. Throughput is in bytes of dense rows gathered, so the two rows' ratio is the
//! outlier kernel's speed relative to the plain one. Each kernel's first result is checked
//! bit for bit against the reference model.
//!
//! `cargo bench --bench outlier`

#[allow(dead_code)]
#[path = "common/bags.rs"]
mod bags;
#[path = "common/outlier.rs"]
mod outlier;

use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use lowp::embedding::plan::{EmbeddingBagSpec, IndexType, Prefetch};
use lowp::outlier::OutlierEmbeddingBag;
use lowp::{Bags, Format, Output, Pooling, reference};

use bags::{BENCH_BAGS, BagCase, IndexDist, IndexPool, TableSize};

fn bench(c: &mut Criterion) {
    let buffer = outlier::large_table(outlier::OUTLIERS).expect("the 1 GiB outlier table");
    let table = outlier::view(&buffer);
    let dense = table.dense();
    let case = BagCase::with_shape(dense, outlier::BAG, BENCH_BAGS);
    let offsets: Vec<i32> = (0..=BENCH_BAGS)
        .map(|b| (b * outlier::BAG) as i32)
        .collect();
    let mut pool = IndexPool::with_batch_len(
        IndexDist::Uniform,
        TableSize::Large,
        dense.rows(),
        case.batch_len(),
    );
    let mut out = vec![0.0f32; case.out_len()];
    let mut group = c.benchmark_group("outlier");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Bytes(case.gathered_bytes() as u64));
    let prefix = format!("q4/dim{}/bag{}/large_uniform", outlier::DIM, outlier::BAG);
    for entry in bags::plan_kernels(Format::Q4, outlier::DIM) {
        let isa = entry.isa;
        let plan = OutlierEmbeddingBag::new(EmbeddingBagSpec {
            index: IndexType::I32,
            isa: Some(isa),
            ..EmbeddingBagSpec::new(Format::Q4, outlier::DIM)
        })
        .expect("an available level");
        let batch = pool.next_batch().to_vec();
        let bags = Bags::from_offsets(&batch[..], &offsets[..]).expect("valid offsets");
        let mut expected = vec![0.0f32; case.out_len()];
        reference::embedding_bag_outlier(
            &table,
            &bags,
            Pooling::Sum,
            &mut Output::F32(&mut expected),
            outlier::DIM,
        )
        .expect("valid inputs");
        plan.run(&table, &bags, Output::F32(&mut out), outlier::DIM)
            .expect("valid inputs");
        assert!(
            out.iter()
                .zip(&expected)
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "{isa}: the outlier kernel differs from the reference"
        );
        case.run(entry, &batch, &mut out);
        assert!(
            case.is_exact(&batch, &out),
            "{isa}: the Q4 kernel differs from the reference"
        );
        group.bench_function(format!("{prefix}/{isa}/plain"), |b| {
            b.iter_custom(|calls| {
                let mut spent = Duration::ZERO;
                for _ in 0..calls {
                    let batch = pool.next_batch();
                    let start = Instant::now();
                    case.run_with(entry, batch, &mut out, Prefetch::default());
                    spent += start.elapsed();
                }
                spent
            })
        });
        group.bench_function(
            format!("{prefix}/{isa}/outliers{}", outlier::OUTLIERS),
            |b| {
                b.iter_custom(|calls| {
                    let mut spent = Duration::ZERO;
                    for _ in 0..calls {
                        let batch = pool.next_batch();
                        let start = Instant::now();
                        let bags = Bags::from_offsets(batch, &offsets[..]).expect("valid");
                        plan.run(&table, &bags, Output::F32(&mut out), outlier::DIM)
                            .expect("valid inputs");
                        spent += start.elapsed();
                    }
                    spent
                })
            },
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(10);
    targets = bench
}
criterion_main!(benches);
