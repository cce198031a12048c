//! Embedding bags, in bytes of table rows gathered per second.
//!
//! - `embedding/<format>/dim<d>/bag<n>/<table>_<dist>/<isa>`: for every table format, each
//!   dimension of [`BENCH_DIMS`], each bag size of [`BENCH_BAG_SIZES`], a large (≥ 1 GiB, on
//!   2 MiB pages) and a small (L2-resident) table, uniform and Zipf(1.05) indices, and each
//!   available level: the kernel an [`EmbeddingBag`] plan resolves at that level (the one
//!   specialised for the dimension where there is one), [`BENCH_BAGS`] bags per call, with
//!   the default software prefetch. Each kernel's first result is checked bit for bit
//!   against the reference model.
//! - `embedding_overhead/<isa>`: one plan call on a batch of one bag of one row (building the
//!   `Bags` included), f32 rows of dimension 64 in cache: the fixed cost of a call.
//! - `embedding_prefetch/f32/dim<d>/<hint>_<distance>`: the best level's kernel over the large
//!   table, uniform indices, bags of 100, for each software-prefetch option.
//! - `embedding_same_rows/<format>/dim64/bag20/rows<n>/<isa>`: Q4 bags over the small
//!   (in-L2) table and f32 bags over a table with as many rows (7x the bytes), the same
//!   batches, in rows per second: the "same logical table" reading of the in-L2 bar.
//!
//! `cargo bench --bench embedding -- <filter>` runs a subset, e.g. `embedding/f32/dim64/bag100`.

// Shared with the report, which also uses the default-shape (`BAG` × `BAGS`) helpers.
#[allow(dead_code)]
#[path = "common/bags.rs"]
mod bags;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use lowp::embedding::plan::{EmbeddingBag, EmbeddingBagSpec, IndexType, Prefetch, PrefetchHint};
use lowp::registry::{self, Entry, Op};
use lowp::{Bags, Format, Isa, Output, Table};

use bags::{BENCH_BAGS, BENCH_DIMS, BagCase, IndexDist, IndexPool, TableSize};

/// Rows per bag.
const BENCH_BAG_SIZES: [usize; 3] = [1, 20, 100];

/// Every table format with an embedding-bag kernel in the registry, in registry order.
fn formats() -> Vec<Format> {
    let mut formats = Vec::new();
    for entry in registry::entries() {
        if let Op::EmbeddingBag(format) = entry.op
            && !formats.contains(&format)
        {
            formats.push(format);
        }
    }
    formats
}

/// Times `calls` calls of `case` with `entry`, each on a fresh batch from `pool` (drawing
/// batches stays outside the timing).
fn time_calls(
    case: &BagCase<'_>,
    entry: &Entry,
    pool: &mut IndexPool,
    out: &mut [f32],
    prefetch: Prefetch,
    calls: u64,
) -> Duration {
    let mut spent = Duration::ZERO;
    for _ in 0..calls {
        let batch = pool.next_batch();
        let start = Instant::now();
        case.run_with(entry, batch, out, prefetch);
        spent += start.elapsed();
    }
    spent
}

/// All three groups over one table buffer (filling 1 GiB takes seconds).
fn all(c: &mut Criterion) {
    let buffer = bags::table_buffer().expect("the 1 GiB benchmark table");
    embedding(c, &buffer);
    overhead(c);
    prefetch(c, &buffer);
    same_rows(c, &buffer);
}

fn embedding(c: &mut Criterion, buffer: &[u8]) {
    let mut group = c.benchmark_group("embedding");
    // A bag-100 call over the large table takes up to a quarter second: flat sampling keeps
    // it at a few calls per sample instead of criterion's growing linear series.
    group.sampling_mode(SamplingMode::Flat);
    for format in formats() {
        for dim in BENCH_DIMS {
            let kernels = bags::plan_kernels(format, dim);
            for bag in BENCH_BAG_SIZES {
                for size in TableSize::ALL {
                    let table = size.table(buffer, format, dim);
                    let case = BagCase::with_shape(table, bag, BENCH_BAGS);
                    for dist in IndexDist::ALL {
                        let mut pool =
                            IndexPool::with_batch_len(dist, size, table.rows(), case.batch_len());
                        // A batch and its reference result, drawn and computed only if a
                        // benchmark of this shape runs (criterion skips filtered-out closures),
                        // then checked against every level's first result.
                        let mut expected = None;
                        let mut out = vec![0.0f32; case.out_len()];
                        group.throughput(Throughput::Bytes(case.gathered_bytes() as u64));
                        for entry in &kernels {
                            let id = format!(
                                "{format}/dim{dim}/bag{bag}/{}_{}/{}",
                                size.name(),
                                dist.name(),
                                entry.isa
                            );
                            let mut checked = false;
                            group.bench_function(id, |b| {
                                if !checked {
                                    let (batch, expected) = expected.get_or_insert_with(|| {
                                        let batch = pool.next_batch().to_vec();
                                        let bits = case.reference_bits(&batch);
                                        (batch, bits)
                                    });
                                    case.run(entry, batch, &mut out);
                                    assert!(
                                        out.iter()
                                            .map(|x| x.to_bits())
                                            .eq(expected.iter().copied()),
                                        "{} {} dim {dim} differs from the reference",
                                        entry.op,
                                        entry.isa
                                    );
                                    checked = true;
                                }
                                b.iter_custom(|calls| {
                                    let pf = Prefetch::default();
                                    time_calls(&case, entry, &mut pool, &mut out, pf, calls)
                                })
                            });
                        }
                    }
                }
            }
        }
    }
    group.finish();
}

fn overhead(c: &mut Criterion) {
    let dim = 64;
    let rows: Vec<f32> = (0..1024 * dim).map(|i| (i % 251) as f32).collect();
    let table = Table::from_f32(1024, dim, &rows).expect("a valid table");
    let offsets = [0i32, 1];
    let mut out = vec![0.0f32; dim];
    let mut group = c.benchmark_group("embedding_overhead");
    for &isa in Isa::available() {
        let plan = EmbeddingBag::new(EmbeddingBagSpec {
            index: IndexType::I32,
            isa: Some(isa),
            ..EmbeddingBagSpec::new(Format::F32, dim)
        })
        .expect("an available level");
        let mut next = 0i32;
        group.bench_function(format!("f32_dim{dim}_1x1/{isa}"), |b| {
            b.iter(|| {
                next = (next + 97) % 1024;
                let index = [black_box(next)];
                let bags = Bags::from_offsets(&index[..], &offsets[..]).expect("one bag");
                plan.run(&table, &bags, Output::F32(&mut out), dim)
                    .expect("a valid call");
                black_box(&out);
            })
        });
    }
    group.finish();
}

/// The prefetch options compared: off, L1 at the distances FBGEMM uses, L2 near and far,
/// L3 and non-temporal.
const PREFETCHES: [Prefetch; 9] = [
    Prefetch::OFF,
    Prefetch {
        distance: 8,
        hint: PrefetchHint::L1,
    },
    Prefetch {
        distance: 16,
        hint: PrefetchHint::L1,
    },
    Prefetch {
        distance: 16,
        hint: PrefetchHint::L2,
    },
    Prefetch {
        distance: 32,
        hint: PrefetchHint::L2,
    },
    Prefetch {
        distance: 64,
        hint: PrefetchHint::L2,
    },
    Prefetch {
        distance: 128,
        hint: PrefetchHint::L2,
    },
    Prefetch {
        distance: 64,
        hint: PrefetchHint::L3,
    },
    Prefetch {
        distance: 16,
        hint: PrefetchHint::NonTemporal,
    },
];

fn prefetch(c: &mut Criterion, buffer: &[u8]) {
    let mut group = c.benchmark_group("embedding_prefetch");
    group.sampling_mode(SamplingMode::Flat);
    for dim in [64, 128] {
        let entry = *bags::plan_kernels(Format::F32, dim)
            .last()
            .expect("the reference at least");
        let table = TableSize::Large.table(buffer, Format::F32, dim);
        let case = BagCase::with_shape(table, 100, BENCH_BAGS);
        let mut pool = IndexPool::with_batch_len(
            IndexDist::Uniform,
            TableSize::Large,
            table.rows(),
            case.batch_len(),
        );
        let mut out = vec![0.0f32; case.out_len()];
        group.throughput(Throughput::Bytes(case.gathered_bytes() as u64));
        for pf in PREFETCHES {
            let option = match pf.distance {
                0 => "off".to_owned(),
                d => format!("{:?}_{d}", pf.hint),
            };
            let id = format!("f32/dim{dim}/{}/{option}", entry.isa);
            group.bench_function(id, |b| {
                b.iter_custom(|calls| time_calls(&case, entry, &mut pool, &mut out, pf, calls))
            });
        }
    }
    group.finish();
}

/// The in-L2 bar's "same logical table" reading: Q4 dimension-64 bags of 20 over the small
/// (in-L2) Q4 table, and f32 bags over a table with the same number of rows (about 7x the
/// bytes, beyond L2), fed the same batches (pools with the same seed), in rows per second.
fn same_rows(c: &mut Criterion, buffer: &[u8]) {
    let mut group = c.benchmark_group("embedding_same_rows");
    group.sampling_mode(SamplingMode::Flat);
    let dim = 64;
    let rows = TableSize::Small.table(buffer, Format::Q4, dim).rows();
    for format in [Format::Q4, Format::F32] {
        let bytes = rows * format.row_bytes(dim).expect("small dimension");
        let table = Table::new(format, rows, dim, &buffer[..bytes]).expect("the buffer holds it");
        let case = BagCase::with_shape(table, 20, BENCH_BAGS);
        let mut out = vec![0.0f32; case.out_len()];
        group.throughput(Throughput::Elements(case.batch_len() as u64));
        for entry in bags::plan_kernels(format, dim) {
            let mut pool = IndexPool::with_batch_len(
                IndexDist::Uniform,
                TableSize::Small,
                rows,
                case.batch_len(),
            );
            let id = format!("{format}/dim{dim}/bag20/rows{rows}/{}", entry.isa);
            group.bench_function(id, |b| {
                b.iter_custom(|calls| {
                    time_calls(
                        &case,
                        entry,
                        &mut pool,
                        &mut out,
                        Prefetch::default(),
                        calls,
                    )
                })
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(800))
        .sample_size(10);
    targets = all
}
criterion_main!(benches);
