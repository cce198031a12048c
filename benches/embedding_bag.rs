//! Embedding bags: every registry kernel this CPU runs, for each table format, dimension,
//! table size and index distribution, in bytes of rows gathered per second.

#[path = "common/bags.rs"]
mod bags;
#[path = "common/names.rs"]
mod names;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lowp::registry::{self, Op};

use bags::{BAG, BAGS, BagCase, DIMS, IndexDist, IndexPool, TableSize};

fn embedding_bag(c: &mut Criterion) {
    let buffer = bags::table_buffer().expect("the 1 GiB benchmark table");
    let mut group = c.benchmark_group("embedding_bag");
    for entry in registry::entries().iter().filter(|e| e.isa.is_available()) {
        let Op::EmbeddingBag(format) = entry.op else {
            continue;
        };
        for dim in DIMS.into_iter().filter(|&d| entry.spec.accepts(d)) {
            for size in TableSize::ALL {
                for dist in IndexDist::ALL {
                    let case = BagCase::new(size.table(&buffer, format, dim));
                    let mut pool = IndexPool::new(dist, size, case.table.rows());
                    let mut out = vec![0.0f32; case.out_len()];
                    case.run(entry, pool.next_batch(), &mut out);
                    assert!(
                        case.is_exact(pool.last_batch(), &out),
                        "{} {} differs from the reference",
                        entry.op,
                        entry.isa
                    );
                    group.throughput(Throughput::Bytes(case.gathered_bytes() as u64));
                    let id = format!(
                        "{format}/{}_{}/dim{dim}_bag{BAG}x{BAGS}_{}_{}",
                        entry.isa,
                        names::spec_name(entry.spec),
                        size.name(),
                        dist.name()
                    );
                    // Only the kernel calls are timed, not drawing their index batches.
                    group.bench_function(id, |b| {
                        b.iter_custom(|calls| {
                            let mut spent = Duration::ZERO;
                            for _ in 0..calls {
                                let batch = pool.next_batch();
                                let start = Instant::now();
                                case.run(entry, batch, &mut out);
                                spent += start.elapsed();
                            }
                            spent
                        })
                    });
                }
            }
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = embedding_bag
}
criterion_main!(benches);
