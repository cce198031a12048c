//! The per-CPU report: this machine, its limits, and every kernel lowp can run here, with
//! its throughput, the fraction of the matching limit it reaches, and whether its output
//! was bit-identical to the reference model on the benchmark's own inputs.
//!
//! ```text
//! cargo run --release --example report [-- --quick] [-- --json]
//! ```
//!
//! `--quick` keeps the run to about two minutes on a quiet machine; `--json` prints
//! one JSON object per line, each a `limit` or a `kernel` row (the machine description then
//! goes to stderr). Figures are medians of several repetitions.
//!
//! The limits are measured once at the start and printed first. A kernel row's ratio is
//! measured one of two ways, named in its last column (JSON: `method`):
//!
//! - `paired`: rows whose limit is a compute peak (`int8_dot_peak_*`, `f32_fma_peak_*`,
//!   `i64_madd_peak_*`: GEMMs, GEMVs at M ≥ 16, interaction) or the in-cache sequential read
//!   `seq_read_256KiB` (GEMVs at M ≤ 4, the in-cache quantizers and dequantizers, the in-L2
//!   plan bags), and the plan bags of 100 over the 1 GiB table against their random-gather
//!   limit (`gather_large_*`). The kernel alternates with its limit's loop in samples of
//!   about 10 ms of thread CPU time (limit, kernel, limit, …, limit;
//!   `benches/common/paired.rs`), each kernel sample divided by the mean of the two limit
//!   samples around it; the ratio is the median of those 21 ratios (41 without `--quick`),
//!   printed with their quartiles (JSON: `ratio_quartiles`, `pairs`). A gather sample is a
//!   fixed slice of work, not a pass over the table: the bag kernel runs calls of 1,000
//!   bags, each on its own batch of a pool drawn beforehand, and the limit gathers as many
//!   rows per repetition (`limits::GatherLoop`: same row size and prefetch, positions drawn
//!   as the limit draws them), both rotating through about 10 million positions so that
//!   neither finds its rows in cache. The row's throughput is the median of the kernel's
//!   samples and its limit value (JSON: `limit_value`) the median of the limit means it was
//!   paired with, both in thread CPU time, so they read higher than wall clock on a loaded
//!   machine; the ratio is what the issues' bars are about. On the shared development VM
//!   the same kernel's ratio measured the old way moved by up to a fifth between quiet
//!   runs, mostly with the moment it ran; paired, the quartiles span a few percent.
//! - `once`: every other row: the per-kernel embedding-bag rows (bags of 20, out of cache
//!   and in cache, uniform and Zipf), compositional and outlier bags, and the 1 GiB
//!   quantizer rows. The kernel is timed in wall clock (one warm-up call, then the median
//!   of 3 samples of at least 20 ms with `--quick`, 5 of 60 ms otherwise) and divided by
//!   its limit as measured at the start; their ratios carry the drift described above.
//!   Pairing the few hundred per-kernel bag rows too would take `--quick` past two and a
//!   half minutes.

#[path = "../benches/common/bags.rs"]
mod bags;
#[path = "../benches/common/compositional.rs"]
mod compositional;
#[path = "../benches/common/gemm.rs"]
mod gemm;
#[path = "../benches/common/interaction.rs"]
mod interaction;
#[path = "../benches/common/names.rs"]
mod names;
#[path = "../benches/common/outlier.rs"]
mod outlier;
#[path = "../benches/common/paired.rs"]
mod paired;
#[path = "../benches/common/quant.rs"]
mod quant;

use std::collections::BTreeSet;
use std::hint::black_box;
use std::io::Write;
use std::time::Instant;

use lowp::limits::{self, GatherTable, HugeBuffer, Limit, LimitKind};
use lowp::registry::{Entry, Op, Spec};
use lowp::{Format, Isa};
use serde_json::{Map, Value, json};

use bags::{BAG, BAGS, BENCH_BAGS, BENCH_DIMS, BagCase, DIMS, IndexDist, IndexPool, TableSize};
use gemm::{I64_SIZE, I64Case, U8I8_M, U8I8_NK, U8I8Case};
use names::spec_name;
use paired::Paired;
use quant::{LargeQuantInput, QuantCase};

fn main() {
    let mut quick = false;
    let mut json = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--quick" => quick = true,
            "--json" => json = true,
            _ => {
                eprintln!("usage: report [--quick] [--json]  (unknown argument {arg:?})");
                std::process::exit(2);
            }
        }
    }
    let started = Instant::now();
    let report = Report { json };
    report.note(&machine_description());

    let buffer = bags::table_buffer().unwrap_or_else(|e| {
        eprintln!("cannot allocate the 1 GiB benchmark table: {e}");
        std::process::exit(1);
    });
    let mut limits = limits::measure(&buffer, quick);
    limits.extend(extra_gathers(&buffer, &limits, quick));
    for limit in &limits {
        report.limit(limit);
    }

    let mut entries: Vec<&Entry> = lowp::registry::entries()
        .iter()
        .filter(|e| e.isa.is_available())
        .collect();
    entries.sort_by_key(|e| (e.op.to_string(), e.isa, spec_name(e.spec)));
    for entry in entries {
        for row in kernel_rows(entry, &buffer, &limits, quick) {
            report.kernel(&row);
        }
    }
    plan_bag_rows(&buffer, &limits, quick, &report);
    same_rows_note(&buffer, quick, &report);
    quant_large_rows(&limits, quick, &report);
    outlier_bag_rows(&limits, quick, &report);
    compositional_rows(&buffer, &limits, quick, &report);
    interaction_unfused_note(&buffer, &limits, quick, &report);
    report.note(&format!("done in {:.1} s", started.elapsed().as_secs_f64()));
}

/// CPU model, detected levels and the `LOWP_ISA` cap.
fn machine_description() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            let (key, value) = l.split_once(':')?;
            (key.trim() == "model name").then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown (no model name in /proc/cpuinfo)".to_owned());
    let levels: Vec<&str> = Isa::available().iter().map(|i| i.name()).collect();
    let cap = match (Isa::best(), std::env::var("LOWP_ISA")) {
        (Ok(isa), Ok(value)) => format!("{isa} (LOWP_ISA={value})"),
        (Ok(isa), Err(_)) => format!("{isa} (LOWP_ISA unset: the best detected level)"),
        (Err(e), _) => format!("error: {e}"),
    };
    let amx = Isa::Amx
        .unavailable_reason()
        .map_or_else(String::new, |why| format!("\namx unavailable: {why}"));
    format!(
        "cpu: {model}\nlevels: {}\nautomatic level (LOWP_ISA cap): {cap}{amx}",
        levels.join(", ")
    )
}

/// Gather limits at the row sizes of the benchmarked tables that [`limits::measure`] did
/// not cover: every small-table size, and large-table sizes outside its standard set.
fn extra_gathers(buffer: &HugeBuffer, measured: &[Limit], quick: bool) -> Vec<Limit> {
    let mut needed = BTreeSet::new();
    for entry in lowp::registry::entries()
        .iter()
        .filter(|e| e.isa.is_available())
    {
        if let Op::EmbeddingBag(format) = entry.op {
            for dim in DIMS.into_iter().filter(|&d| entry.spec.accepts(d)) {
                for size in TableSize::ALL {
                    needed.insert((size, format.row_bytes(dim).expect("small dimension")));
                }
            }
        }
    }
    let mut extra = Vec::new();
    for (size, row_bytes) in needed {
        if gather_limit(measured, size.name(), row_bytes).is_some() {
            continue;
        }
        let table = GatherTable {
            name: size.name(),
            bytes: &buffer[..size.bytes()],
            // Only the large table's page size matters: the small one is in cache.
            huge_pages: (size == TableSize::Large)
                .then(|| buffer.huge_page_fraction())
                .flatten(),
        };
        for prefetch in [false, true] {
            extra.push(limits::gather(&table, row_bytes, prefetch, quick));
        }
    }
    extra
}

/// The gather limits (prefetching and plain) measured for this table and row size.
fn gather_limits<'a>(
    limits: &'a [Limit],
    table: &str,
    row_bytes: usize,
) -> impl Iterator<Item = &'a Limit> {
    limits.iter().filter(move |l| {
        matches!(&l.kind, LimitKind::Gather { table: t, row_bytes: r, .. }
            if t == table && *r == row_bytes)
    })
}

/// The better of the prefetching and plain gather limits for this table and row size.
fn gather_limit<'a>(limits: &'a [Limit], table: &str, row_bytes: usize) -> Option<&'a Limit> {
    gather_limits(limits, table, row_bytes).max_by(|a, b| a.value.total_cmp(&b.value))
}

/// One kernel × shape measurement.
struct KernelRow {
    op: &'static str,
    isa: Isa,
    spec: Spec,
    value: f64,
    unit: &'static str,
    format: String,
    shape: Vec<(&'static str, Value)>,
    limit: String,
    /// The limit's value in `unit`, when it is measured: the median of the samples paired
    /// with the kernel's, or the figure measured once at the start.
    limit_value: Option<f64>,
    method: Method,
    exact: bool,
}

/// How a row's ratio was measured.
enum Method {
    /// The kernel by [`secs_per_call`] in wall clock, divided by the limit measured once at
    /// the start of the run.
    Once,
    /// Alternating with its limit's loop in thread CPU time ([`paired::paired`]): the
    /// median of the per-pair ratios.
    Paired(Paired),
}

/// Every shape of `entry`'s operation that it accepts, measured.
fn kernel_rows(entry: &Entry, buffer: &[u8], limits: &[Limit], quick: bool) -> Vec<KernelRow> {
    match entry.op {
        Op::EmbeddingBag(format) => DIMS
            .into_iter()
            .filter(|&d| entry.spec.accepts(d))
            .flat_map(|dim| {
                TableSize::ALL.into_iter().flat_map(move |size| {
                    IndexDist::ALL
                        .into_iter()
                        .map(move |dist| (dim, size, dist))
                })
            })
            .map(|shape| bag_row(entry, format, shape, buffer, limits, quick))
            .collect(),
        Op::GemmU8I8 if entry.spec.accepts(U8I8_NK) => U8I8_M
            .into_iter()
            .map(|m| u8i8_row(entry, m, buffer, limits, quick))
            .collect(),
        Op::GemmI64 if entry.spec.accepts(I64_SIZE) => vec![i64_row(entry, buffer, limits, quick)],
        Op::Quantize(format) | Op::Dequantize(format) if entry.spec.accepts(quant::DIM) => {
            vec![quant_row(entry, format, buffer, limits, quick)]
        }
        Op::Interaction => interaction_rows(entry, buffer, limits, quick),
        // Measured against the plain kernel by `outlier_bag_rows`.
        Op::OutlierEmbeddingBag(_) => Vec::new(),
        // Measured per level, with the unfused and full-table comparisons, by
        // `compositional_rows`.
        Op::CompositionalBag(_) => Vec::new(),
        op => {
            eprintln!(
                "note: no benchmark shape for {op} ({}, {:?})",
                entry.isa, entry.spec
            );
            Vec::new()
        }
    }
}

fn bag_row(
    entry: &Entry,
    format: Format,
    (dim, size, dist): (usize, TableSize, IndexDist),
    buffer: &[u8],
    limits: &[Limit],
    quick: bool,
) -> KernelRow {
    let case = BagCase::new(size.table(buffer, format, dim));
    let mut pool = IndexPool::new(dist, size, case.table.rows());
    let mut out = vec![0.0f32; case.out_len()];
    let secs = secs_per_call(quick, || {
        // Drawing or picking the batch stays outside the timing.
        let batch = pool.next_batch();
        timed(|| case.run(entry, batch, &mut out))
    });
    let limit = gather_limit(limits, size.name(), case.table.row_bytes())
        .expect("extra_gathers measured every benchmarked row size");
    KernelRow {
        op: "embedding_bag",
        isa: entry.isa,
        spec: entry.spec,
        value: case.gathered_bytes() as f64 / secs / 1e9,
        unit: "GB/s",
        format: format.name().to_owned(),
        shape: vec![
            ("dim", json!(dim)),
            ("bag", json!(BAG)),
            ("bags", json!(BAGS)),
            ("table", json!(size.name())),
            ("index_dist", json!(dist.name())),
        ],
        limit: limit.name.clone(),
        limit_value: Some(limit.value),
        method: Method::Once,
        exact: case.is_exact(pool.last_batch(), &out),
    }
}

/// Bags of 100 that [`plan_bag_rows`] gathers from the large table.
const PLAN_BAG_LARGE: usize = 100;
/// Bags of 20 that [`plan_bag_rows`] gathers from the small table.
const PLAN_BAG_SMALL: usize = 20;
/// Bags per call of [`plan_bag_rows`]: a tenth of the benchmarks' [`BENCH_BAGS`], so that
/// a call (100,000 rows of the large table) lasts a few milliseconds and a paired sample is
/// a few calls, each on its own batch.
const PLAN_BAGS: usize = BENCH_BAGS / 10;

/// One row per float table format, dimension of [`BENCH_DIMS`] and level (and per Q8 and
/// Q4 format, dimension of [`DIMS`] and level): the kernel an embedding-bag plan resolves
/// at that level, calls of [`PLAN_BAGS`] bags of [`PLAN_BAG_LARGE`] uniform indices over
/// the large table, against the better (with or without the kernels' default prefetch)
/// random-gather limit for that row size; then f32 and Q4 rows of dimension 64 in bags of
/// [`PLAN_BAG_SMALL`] over the small (in-L2) table against the in-cache sequential read,
/// and a note comparing their rows per second at the best level. All are paired with their
/// limit's loop ([`paired::paired`]; for the gathers, [`limits::GatherLoop`] at the same
/// row size and prefetch, one call's rows per repetition), every call on a batch that no
/// recent call used ([`IndexPool`], drawn before timing). Each level's first result is
/// compared with the reference's.
fn plan_bag_rows(buffer: &[u8], limits: &[Limit], quick: bool, report: &Report) {
    let in_cache = limits
        .iter()
        .find(|l| {
            l.kind
                == LimitKind::SeqRead {
                    bytes: limits::IN_CACHE_BYTES,
                }
        })
        .expect("measure() reads a buffer in cache");
    let mut shapes: Vec<(Format, usize, TableSize, usize)> = Vec::new();
    for format in [Format::F32, Format::F16, Format::Bf16] {
        for dim in BENCH_DIMS {
            shapes.push((format, dim, TableSize::Large, PLAN_BAG_LARGE));
        }
    }
    for format in [Format::Q8, Format::Q4] {
        for dim in DIMS {
            shapes.push((format, dim, TableSize::Large, PLAN_BAG_LARGE));
        }
    }
    shapes.push((Format::F32, 64, TableSize::Small, PLAN_BAG_SMALL));
    shapes.push((Format::Q4, 64, TableSize::Small, PLAN_BAG_SMALL));
    let (pairs, sample_secs) = pairing(quick);
    // The best level's rows per second on the small table, per format.
    let mut small_rows_per_sec: Vec<(Format, f64)> = Vec::new();
    for (format, dim, size, bag) in shapes {
        let case = BagCase::with_shape(size.table(buffer, format, dim), bag, PLAN_BAGS);
        let rows = case.table.rows();
        let mut pool = IndexPool::with_batch_len(IndexDist::Uniform, size, rows, case.batch_len());
        // One batch checks every level; timed calls pick the others.
        let checked_batch = pool.next_batch().to_vec();
        pool.fill();
        let expected = case.reference_bits(&checked_batch);
        // Out of cache, the kernel is paired with the gather loop both with and without
        // prefetch, and measured against whichever reads faster next to it: which of the
        // two wins differs by row size and from run to run, and choosing it from the one
        // figure of each measured at the start picked the slower one often enough to put
        // kernels at 1.5 times their "limit".
        let mut limit_runs: Vec<(&Limit, LimitRun<'_>)> = match size {
            TableSize::Large => gather_limits(limits, size.name(), case.table.row_bytes())
                .map(|limit| (limit, gather_loop(limit, buffer, case.batch_len())))
                .collect(),
            TableSize::Small => vec![(
                in_cache,
                limit_loop(in_cache, buffer).expect("the in-cache read has a loop"),
            )],
        };
        assert!(
            !limit_runs.is_empty(),
            "measure() gathers every row size of 32 to 1024 bytes"
        );
        let mut out = vec![0.0f32; case.out_len()];
        for entry in bags::plan_kernels(format, dim) {
            case.run(entry, &checked_batch, &mut out);
            let exact = out.iter().map(|x| x.to_bits()).eq(expected.iter().copied());
            let mut kernel_run = |n: u64| {
                for _ in 0..n {
                    case.run(entry, pool.next_batch(), &mut out);
                }
                n as f64 * case.gathered_bytes() as f64
            };
            let (limit, p) = limit_runs
                .iter_mut()
                .map(|(limit, limit_run)| {
                    (
                        *limit,
                        paired::paired(pairs, sample_secs, &mut kernel_run, limit_run),
                    )
                })
                .max_by(|(_, a), (_, b)| a.limit.total_cmp(&b.limit))
                .expect("at least one limit");
            report.kernel(&KernelRow {
                op: "embedding_bag",
                isa: entry.isa,
                spec: entry.spec,
                value: p.kernel,
                unit: "GB/s",
                format: format.name().to_owned(),
                shape: vec![
                    ("dim", json!(dim)),
                    ("bag", json!(bag)),
                    ("bags", json!(PLAN_BAGS)),
                    ("table", json!(size.name())),
                    ("index_dist", json!(IndexDist::Uniform.name())),
                ],
                limit: limit.name.clone(),
                limit_value: Some(p.limit),
                method: Method::Paired(p),
                exact,
            });
            if size == TableSize::Small {
                // GB/s is bytes per nanosecond.
                let rows_per_sec = p.kernel * 1e9 / case.table.row_bytes() as f64;
                match small_rows_per_sec.iter_mut().find(|(f, _)| *f == format) {
                    Some((_, best)) => *best = best.max(rows_per_sec),
                    None => small_rows_per_sec.push((format, rows_per_sec)),
                }
            }
        }
    }
    if let [(_, f32_rows), (_, q4_rows)] = small_rows_per_sec[..] {
        report.note(&format!(
            "in-L2 dim 64 bag {PLAN_BAG_SMALL}, best level: q4 {:.0} M rows/s vs f32 {:.0} M \
             rows/s = {:.2}x (bar 1.5x; thread CPU time)",
            q4_rows / 1e6,
            f32_rows / 1e6,
            q4_rows / f32_rows
        ));
    }
}

/// A limit's loop for [`paired::paired`]: `run(n)` repeats it `n` times and returns the
/// bytes (or operations) it did.
type LimitRun<'a> = Box<dyn FnMut(u64) -> f64 + 'a>;

/// The loop behind the large-table gather limit `limit` for [`paired::paired`]:
/// [`limits::GatherLoop`] over the large table at the start of `buffer` (the rows
/// [`limits::measure`] gathers from), at the limit's row size and prefetch, `chunk` rows
/// per repetition, rotating through as many random positions as an [`IndexPool`] over the
/// large table holds indices, so that its rows are no more often in cache than a kernel's.
fn gather_loop<'a>(limit: &Limit, buffer: &'a [u8], chunk: usize) -> LimitRun<'a> {
    let LimitKind::Gather {
        row_bytes,
        prefetch,
        ..
    } = limit.kind
    else {
        panic!("{} is not a gather limit", limit.name);
    };
    let mut gather = limits::GatherLoop::new(
        &buffer[..TableSize::Large.bytes()],
        row_bytes,
        prefetch,
        bags::LARGE_POOL_INDICES,
        chunk,
    );
    Box::new(move |n| gather.run(n) as f64)
}

/// The other reading of the in-L2 bar, "the same logical table": the rows per second of
/// Q4 dimension-64 bags of [`PLAN_BAG_SMALL`] over the small (in-L2) Q4 table against an f32
/// table with the same number of rows (about 7x the bytes, so beyond L2), both fed the same
/// uniform batches, at the best level of each; a note beside the in-L2 one, whose f32 table
/// has the small table's bytes instead.
fn same_rows_note(buffer: &[u8], quick: bool, report: &Report) {
    let dim = 64;
    let q4 = TableSize::Small.table(buffer, Format::Q4, dim);
    let rows = q4.rows();
    let f32_bytes = rows * Format::F32.row_bytes(dim).expect("small dimension");
    let f32_table = lowp::Table::new(Format::F32, rows, dim, &buffer[..f32_bytes])
        .expect("the buffer holds it");
    let num_bags = if quick { BENCH_BAGS / 10 } else { BENCH_BAGS };
    let mut best = Vec::new();
    for table in [q4, f32_table] {
        let format = table.format();
        let case = BagCase::with_shape(table, PLAN_BAG_SMALL, num_bags);
        let mut out = vec![0.0f32; case.out_len()];
        let mut rows_per_sec: f64 = 0.0;
        for entry in bags::plan_kernels(format, dim) {
            // The same seed for both formats: the same batches in the same order.
            let mut pool = IndexPool::with_batch_len(
                IndexDist::Uniform,
                TableSize::Small,
                rows,
                case.batch_len(),
            );
            let checked = pool.next_batch().to_vec();
            case.run(entry, &checked, &mut out);
            if !case.is_exact(&checked, &out) {
                report.note(&format!(
                    "same-rows {format} {} differs from the reference",
                    entry.isa
                ));
            }
            let secs = secs_per_call(quick, || {
                let batch = pool.next_batch();
                timed(|| case.run(entry, batch, &mut out))
            });
            rows_per_sec = rows_per_sec.max(case.batch_len() as f64 / secs);
        }
        best.push((case.table.bytes().len(), rows_per_sec));
    }
    let [(q4_bytes, q4_rows), (f32_bytes, f32_rows)] = best[..] else {
        unreachable!("two tables")
    };
    report.note(&format!(
        "same logical table ({rows} rows) dim 64 bag {PLAN_BAG_SMALL}, best level: q4 ({} KiB) \
         {:.0} M rows/s vs f32 ({} KiB) {:.0} M rows/s = {:.2}x (bar 1.5x)",
        q4_bytes >> 10,
        q4_rows / 1e6,
        f32_bytes >> 10,
        f32_rows / 1e6,
        q4_rows / f32_rows
    ));
}

/// Compositional bags (quotient-remainder, product, dimension 64, 2048 bags of 100 uniform
/// indices), one row per level with a kernel of its own: f32 components of 2048 rows
/// (512 KiB each) for the 4,194,304 rows of the large table, and the README's Q8 example
/// (10,000-row components, 100,000,000 categories), in GB/s of component rows read against
/// the in-cache sequential read. Then a note with the bars at the best level: indices per
/// second fused, unfused (lowp's own bags of one into buffers, product, pool) and over the
/// virtual table held in full (f32, out of cache, against its gather limit).
fn compositional_rows(buffer: &HugeBuffer, limits: &[Limit], quick: bool, report: &Report) {
    use compositional::{BAG, BAGS, DIM, QrCase, Unfused, full_plan};
    let in_cache = limits
        .iter()
        .find(|l| {
            l.kind
                == LimitKind::SeqRead {
                    bytes: limits::IN_CACHE_BYTES,
                }
        })
        .expect("measure() reads a buffer in cache");
    let full = TableSize::Large.table(buffer, Format::F32, DIM);
    let n = full.rows();
    let m = n.isqrt() + usize::from(n.isqrt() * n.isqrt() < n);
    let f32_case = QrCase::new(buffer, Format::F32, m, n);
    let q8_case = QrCase::new(buffer, Format::Q8, 10_000, 100_000_000);
    let mut levels: Vec<&Entry> = Vec::new();
    for &isa in Isa::available() {
        let entry = lowp::registry::select(Op::CompositionalBag(lowp::Combine::Product), DIM, isa);
        if !levels.iter().any(|e| std::ptr::eq(*e, entry)) {
            levels.push(entry);
        }
    }
    let mut out = vec![0f32; f32_case.out_len()];
    let mut best = None;
    for (case, format) in [(&f32_case, "qr_f32"), (&q8_case, "qr_q8")] {
        let rows = case.table.virtual_rows();
        let mut pool =
            IndexPool::with_batch_len(IndexDist::Uniform, TableSize::Large, rows, case.batch_len());
        let checked = pool.next_batch().to_vec();
        let expected = case.reference_bits(&checked);
        for entry in &levels {
            let plan = case.plan(entry.isa);
            case.fused(&plan, &checked, &mut out);
            let exact = out.iter().map(|x| x.to_bits()).eq(expected.iter().copied());
            let secs = secs_per_call(quick, || {
                let batch = pool.next_batch();
                timed(|| case.fused(&plan, batch, &mut out))
            });
            if format == "qr_f32" {
                best = Some((entry.isa, secs));
            }
            report.kernel(&KernelRow {
                op: "embedding_bag",
                isa: entry.isa,
                spec: entry.spec,
                value: case.component_bytes() as f64 / secs / 1e9,
                unit: "GB/s",
                format: format.to_owned(),
                shape: vec![
                    ("dim", json!(DIM)),
                    ("bag", json!(BAG)),
                    ("bags", json!(BAGS)),
                    ("virtual_rows", json!(rows)),
                    ("component_rows", json!(case.m)),
                    ("table", json!("small")),
                    ("index_dist", json!(IndexDist::Uniform.name())),
                ],
                limit: in_cache.name.clone(),
                limit_value: Some(in_cache.value),
                method: Method::Once,
                exact,
            });
        }
    }
    let Some((isa, fused)) = best else { return };
    let mut pool = IndexPool::with_batch_len(
        IndexDist::Uniform,
        TableSize::Large,
        n,
        f32_case.batch_len(),
    );
    let mut scratch = Unfused::default();
    let unfused = secs_per_call(quick, || {
        let batch = pool.next_batch();
        timed(|| f32_case.unfused(isa, &mut scratch, batch, &mut out))
    });
    let plan = full_plan(isa);
    let full_secs = secs_per_call(quick, || {
        let batch = pool.next_batch();
        timed(|| f32_case.full(&plan, &full, batch, &mut out))
    });
    let gather = gather_limit(limits, "large", full.row_bytes()).map_or(f64::NAN, |l| l.value);
    let per_sec = |secs: f64| f32_case.batch_len() as f64 / secs / 1e6;
    report.note(&format!(
        "compositional qr product dim64 bag100 ({isa}, {n} virtual rows from 2 x {m} f32 rows): \
         fused {:.1} M indices/s; unfused (bags of one into buffers, product, pool) {:.1} M/s, \
         fused {:.2}x; full 1 GiB f32 table {:.1} M/s ({:.2} of its gather limit), fused {:.2}x",
        per_sec(fused),
        per_sec(unfused),
        unfused / fused,
        per_sec(full_secs),
        per_sec(full_secs) * 1e6 * full.row_bytes() as f64 / 1e9 / gather,
        full_secs / fused
    ));
}

/// Two rows per level with a Q4 kernel of its own: the plain Q4 kernel and the outlier
/// kernel over the same out-of-cache table (`benches/common/outlier.rs`: Q4 dimension 128,
/// 4 outliers per row) with the same batches of 100 uniform indices, in
/// bytes of dense rows gathered against the random-gather limit at the Q4 row size; the
/// outlier row's `vs_plain` is its speed over the plain one's. Each level's first result
/// is compared with the reference's.
fn outlier_bag_rows(limits: &[Limit], quick: bool, report: &Report) {
    use lowp::embedding::plan::{EmbeddingBagSpec, IndexType};
    use lowp::outlier::OutlierEmbeddingBag;
    use lowp::{Bags, Output, Pooling};

    let Ok(buffer) = outlier::large_table(outlier::OUTLIERS) else {
        report.note("cannot allocate the outlier benchmark table: no outlier rows");
        return;
    };
    let table = outlier::view(&buffer);
    let num_bags = if quick { BENCH_BAGS / 10 } else { BENCH_BAGS };
    let case = BagCase::with_shape(table.dense(), outlier::BAG, num_bags);
    let offsets: Vec<i32> = (0..=num_bags).map(|b| (b * outlier::BAG) as i32).collect();
    let mut pool = IndexPool::with_batch_len(
        IndexDist::Uniform,
        TableSize::Large,
        case.table.rows(),
        case.batch_len(),
    );
    let limit = gather_limit(limits, TableSize::Large.name(), case.table.row_bytes())
        .expect("extra_gathers measured the Q4 row size");
    let checked_batch = pool.next_batch().to_vec();
    let checked_bags = Bags::from_offsets(&checked_batch[..], &offsets[..]).expect("valid");
    let mut expected = vec![0.0f32; case.out_len()];
    lowp::reference::embedding_bag_outlier(
        &table,
        &checked_bags,
        Pooling::Sum,
        &mut Output::F32(&mut expected),
        outlier::DIM,
    )
    .expect("valid inputs");
    let mut out = vec![0.0f32; case.out_len()];
    for entry in bags::plan_kernels(Format::Q4, outlier::DIM) {
        let plan = OutlierEmbeddingBag::new(EmbeddingBagSpec {
            index: IndexType::I32,
            isa: Some(entry.isa),
            ..EmbeddingBagSpec::new(Format::Q4, outlier::DIM)
        })
        .expect("an available level");
        case.run(entry, &checked_batch, &mut out);
        let plain_exact = case.is_exact(&checked_batch, &out);
        plan.run(&table, &checked_bags, Output::F32(&mut out), outlier::DIM)
            .expect("valid inputs");
        let exact = out
            .iter()
            .zip(&expected)
            .all(|(x, y)| x.to_bits() == y.to_bits());
        let plain_secs = secs_per_call(quick, || {
            let batch = pool.next_batch();
            timed(|| case.run(entry, batch, &mut out))
        });
        let secs = secs_per_call(quick, || {
            let batch = pool.next_batch();
            let bags = Bags::from_offsets(batch, &offsets[..]).expect("valid");
            timed(|| {
                plan.run(&table, &bags, Output::F32(&mut out), outlier::DIM)
                    .expect("valid inputs")
            })
        });
        for (outliers, secs, exact) in [
            (0, plain_secs, plain_exact),
            (outlier::OUTLIERS, secs, exact),
        ] {
            let mut shape = vec![
                ("dim", json!(outlier::DIM)),
                ("bag", json!(outlier::BAG)),
                ("bags", json!(num_bags)),
                ("table", json!(TableSize::Large.name())),
                ("index_dist", json!(IndexDist::Uniform.name())),
                ("outliers_per_row", json!(outliers)),
            ];
            if outliers > 0 {
                shape.push(("vs_plain", json!(plain_secs / secs)));
            }
            report.kernel(&KernelRow {
                op: if outliers > 0 {
                    "embedding_bag_outlier"
                } else {
                    "embedding_bag"
                },
                isa: entry.isa,
                spec: if outliers > 0 {
                    plan_spec(&plan)
                } else {
                    entry.spec
                },
                value: case.gathered_bytes() as f64 / secs / 1e9,
                unit: "GB/s",
                format: Format::Q4.name().to_owned(),
                shape,
                limit: limit.name.clone(),
                limit_value: Some(limit.value),
                method: Method::Once,
                exact,
            });
        }
    }
}

/// The specialization of the kernel an outlier plan resolved to.
fn plan_spec(plan: &lowp::outlier::OutlierEmbeddingBag) -> Spec {
    lowp::registry::select(
        Op::OutlierEmbeddingBag(Format::Q4),
        outlier::DIM,
        plan.isa(),
    )
    .spec
}

fn u8i8_row(entry: &Entry, m: usize, buffer: &[u8], limits: &[Limit], quick: bool) -> KernelRow {
    let case = U8I8Case::new(m, U8I8_NK, U8I8_NK);
    let mut out = vec![0u8; case.out_len()];
    // M ≤ 4 is a GEMV: judged by the in-cache read bandwidth over the packed weights;
    // larger batches by the int8 dot-product peak of the kernel's own level (the highest
    // level's when its level has no peak loop; chosen by level, not by the larger figure,
    // which under load the once-measured peaks can swap).
    let gemv = m <= 4;
    let peak = limits
        .iter()
        .filter(|l| {
            if gemv {
                l.kind
                    == LimitKind::SeqRead {
                        bytes: limits::IN_CACHE_BYTES,
                    }
            } else {
                // The tile peak judges only the tile kernel: vector kernels keep the highest
                // vector peak.
                l.kind == LimitKind::Int8DotPeak && (l.isa != Isa::Amx || entry.isa == Isa::Amx)
            }
        })
        .max_by_key(|l| (l.isa == entry.isa, l.isa));
    let work = if gemv {
        case.packed_bytes()
    } else {
        case.ops()
    };
    let rated = rate_against(peak, buffer, quick, work, || case.run(entry, &mut out));
    KernelRow {
        op: "gemm",
        isa: entry.isa,
        spec: entry.spec,
        value: rated.value,
        unit: if gemv { "GB/s" } else { "GOPS" },
        format: "u8i8".to_owned(),
        shape: gemm_shape(case.m, case.n, case.k, "requant_u8"),
        limit: peak.map_or_else(|| "int8_dot_peak".to_owned(), |p| p.name.clone()),
        limit_value: rated.limit_value,
        method: rated.method,
        exact: case.is_exact(&out),
    }
}

/// GOPS against the 64-bit multiply-add peak (`vpmullq`) of the highest level that has one,
/// on every level (as u8 × i8 rows use the highest int8 peak); a null ratio where no level
/// has one.
fn i64_row(entry: &Entry, buffer: &[u8], limits: &[Limit], quick: bool) -> KernelRow {
    let case = I64Case::new(I64_SIZE);
    let mut out = vec![0i64; case.out_len()];
    let peak = limits
        .iter()
        .filter(|l| l.kind == LimitKind::I64MaddPeak)
        .max_by_key(|l| l.isa);
    let rated = rate_against(peak, buffer, quick, case.ops(), || {
        case.run(entry, &mut out)
    });
    KernelRow {
        op: "gemm",
        isa: entry.isa,
        spec: entry.spec,
        value: rated.value,
        unit: "GOPS",
        format: "i64".to_owned(),
        shape: gemm_shape(case.size, case.size, case.size, "raw"),
        limit: peak.map_or_else(|| "i64_madd_peak".to_owned(), |p| p.name.clone()),
        limit_value: rated.limit_value,
        method: rated.method,
        exact: case.is_exact(&out),
    }
}

/// GFLOPS of the triangle (2 · d per dot product) at F = 27, every batch and dimension, f32
/// and bf16 inputs in one block, and f32 inputs in `F − 1` separate buffers (those rows
/// carry the shape key `layout` = `separate`; the others are the block layout), the Scalar
/// reference only at the small batches, against the f32 FMA peak of the highest level that
/// has one.
fn interaction_rows(entry: &Entry, buffer: &[u8], limits: &[Limit], quick: bool) -> Vec<KernelRow> {
    use interaction::Layout;
    let peak = best_fma_peak(limits);
    let mut rows = Vec::new();
    for (bf16_input, layout) in [
        (false, Layout::Block),
        (true, Layout::Block),
        (false, Layout::Separate),
    ] {
        for dim in interaction::DIMS {
            for batch in interaction::BATCHES {
                if entry.isa == Isa::Scalar && batch > 64 {
                    continue;
                }
                let case =
                    interaction::InteractionCase::with_layout(batch, dim, bf16_input, layout);
                let mut out = vec![0f32; case.out_len()];
                let rated = rate_against(peak, buffer, quick, case.flops(), || {
                    case.run(entry, &mut out)
                });
                rows.push(KernelRow {
                    op: "interaction",
                    isa: entry.isa,
                    spec: entry.spec,
                    value: rated.value,
                    unit: "GFLOPS",
                    format: case.format().to_owned(),
                    shape: [
                        ("b", json!(batch)),
                        ("f", json!(interaction::FEATURES)),
                        ("dim", json!(dim)),
                    ]
                    .into_iter()
                    .chain((layout == Layout::Separate).then(|| ("layout", json!(layout.name()))))
                    .collect(),
                    limit: peak.map_or_else(|| "f32_fma_peak".to_owned(), |p| p.name.clone()),
                    limit_value: rated.limit_value,
                    method: rated.method,
                    exact: case.is_exact(&out),
                });
            }
        }
    }
    rows
}

/// The f32 FMA peak of the highest level that has one: the widest FMA, chosen by level
/// rather than by the larger figure, because under load the peaks measured once at the
/// start can come out the wrong way round (AVX2's above AVX-512's), which would change
/// what the paired ratios are of.
fn best_fma_peak(limits: &[Limit]) -> Option<&Limit> {
    limits
        .iter()
        .filter(|l| l.kind == LimitKind::F32FmaPeak)
        .max_by_key(|l| l.isa)
}

/// The fused interaction (dispatched, best level) against the unfused way at the Criteo
/// shape (B = 2048, F = 27, d = 128, f32), per batch, in the same run: the fused kernel
/// paired with the f32 FMA peak as its rows are, the unfused way paired with the fused
/// kernel (the speed-up is the median of the per-pair ones), all in thread CPU time.
fn interaction_unfused_note(buffer: &[u8], limits: &[Limit], quick: bool, report: &Report) {
    let case = interaction::InteractionCase::new(2048, 128, false);
    let entry = lowp::registry::select(Op::Interaction, 128, Isa::detected());
    let flops = case.flops() as f64;
    let mut out = vec![0f32; case.out_len()];
    let fused = rate_against(best_fma_peak(limits), buffer, quick, case.flops(), || {
        case.run(entry, &mut out)
    });
    // The speed-up is paired too: unfused samples against the fused ones around them.
    let mut scratch = interaction::Unfused::default();
    let mut unfused_out = vec![0f32; case.out_len()];
    let (pairs, sample_secs) = pairing(quick);
    let unfused = paired::paired(
        pairs,
        sample_secs,
        |n| {
            for _ in 0..n {
                case.unfused(&mut scratch, &mut unfused_out);
            }
            n as f64 * flops
        },
        |n| {
            for _ in 0..n {
                case.run(entry, &mut out);
            }
            n as f64 * flops
        },
    );
    let peak_ratio = ratio(fused.value, fused.limit_value, &fused.method).unwrap_or(f64::NAN);
    report.note(&format!(
        "interaction b2048 f27 dim128 f32: fused ({}) {:.1} ms per batch, {:.1} GFLOPS ({:.2} of the \
         f32 FMA peak, {}); unfused (full 27 x 27 product, gather, concatenate) {:.1} ms, {:.1} \
         GFLOPS; fused is {:.2}x faster (paired)",
        entry.isa,
        flops / fused.value / 1e6,
        fused.value,
        peak_ratio,
        match fused.method {
            Method::Once => "once",
            Method::Paired(_) => "paired",
        },
        flops / unfused.kernel / 1e6,
        unfused.kernel,
        1.0 / unfused.ratio
    ));
}

fn gemm_shape(m: usize, n: usize, k: usize, stage: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("m", json!(m)),
        ("n", json!(n)),
        ("k", json!(k)),
        ("stage", json!(stage)),
    ]
}

/// GB/s of f32 values read (quantize) or written (dequantize), against reading a buffer
/// of their size in cache.
fn quant_row(
    entry: &Entry,
    format: Format,
    buffer: &[u8],
    limits: &[Limit],
    quick: bool,
) -> KernelRow {
    let case = QuantCase::new(format);
    let limit = limits
        .iter()
        .find(|l| {
            l.kind
                == LimitKind::SeqRead {
                    bytes: case.f32_bytes(),
                }
        })
        .expect("the in-cache read limit has the quantizer input's size");
    let bytes = case.f32_bytes();
    let (op, rated, exact) = if let Op::Quantize(_) = entry.op {
        let mut out = vec![0u8; case.table_bytes()];
        let rated = rate_against(Some(limit), buffer, quick, bytes, || {
            case.quantize(entry, &mut out)
        });
        ("quantize", rated, case.quantized_is_exact(&out))
    } else {
        let mut out = vec![0f32; quant::ROWS * quant::DIM];
        let rated = rate_against(Some(limit), buffer, quick, bytes, || {
            case.dequantize(entry, &mut out)
        });
        ("dequantize", rated, case.dequantized_is_exact(&out))
    };
    KernelRow {
        op,
        isa: entry.isa,
        spec: entry.spec,
        value: rated.value,
        unit: "GB/s",
        format: format.name().to_owned(),
        shape: vec![("rows", json!(quant::ROWS)), ("dim", json!(quant::DIM))],
        limit: limit.name.clone(),
        limit_value: rated.limit_value,
        method: rated.method,
        exact,
    }
}

/// Q8 and Q4 quantizers (min/max) over a whole f32 table of the out-of-cache read limit's
/// size (1 GiB, rows of 128), one row per vector level, in GB/s of f32 read against
/// reading that much memory: what an engine quantizing a table meets, where the in-cache
/// rows of `quant_row` measure the arithmetic alone. The scalar quantizer is left out (a
/// second per call); the first rows are checked against the reference. Table and output
/// are on 2 MiB pages, as the limit's buffer is (`benches/quantize.rs` also prints the
/// rate into a `Vec` on 4 KiB pages).
fn quant_large_rows(limits: &[Limit], quick: bool, report: &Report) {
    let limit = limits
        .iter()
        .find(|l| {
            l.kind
                == LimitKind::SeqRead {
                    bytes: limits::LARGE_TABLE_BYTES,
                }
        })
        .expect("measure() reads the large table");
    let input = LargeQuantInput::new(limits::LARGE_TABLE_BYTES);
    for format in [Format::Q8, Format::Q4] {
        let mut out = HugeBuffer::new(input.table_bytes(format)).expect("the quantized table");
        for entry in lowp::registry::entries().iter().filter(|e| {
            e.op == Op::Quantize(format)
                && e.isa != Isa::Scalar
                && e.isa.is_available()
                && e.spec.accepts(quant::DIM)
        }) {
            let secs = secs_per_call(quick, || timed(|| input.quantize(entry, &mut out)));
            report.kernel(&KernelRow {
                op: "quantize",
                isa: entry.isa,
                spec: entry.spec,
                value: input.f32_bytes() as f64 / secs / 1e9,
                unit: "GB/s",
                format: format.name().to_owned(),
                shape: vec![
                    ("rows", json!(input.rows())),
                    ("dim", json!(quant::DIM)),
                    ("table", json!("large")),
                ],
                limit: limit.name.clone(),
                limit_value: Some(limit.value),
                method: Method::Once,
                exact: input.quantized_prefix_is_exact(format, &out),
            });
        }
    }
}

/// A kernel's throughput and the limit it is judged by, as [`rate_against`] measured them.
struct Rated {
    /// In work per nanosecond (GOPS, GB/s).
    value: f64,
    limit_value: Option<f64>,
    method: Method,
}

/// A row's ratio to its limit: the paired median, or `value` over the limit measured once.
fn ratio(value: f64, limit_value: Option<f64>, method: &Method) -> Option<f64> {
    match method {
        Method::Paired(p) => Some(p.ratio),
        Method::Once => limit_value.map(|l| value / l),
    }
}

/// Pairs and seconds per sample of the paired rows: the median of 21 ratios with
/// `--quick`, 41 otherwise; 10 ms samples are long enough for thread CPU time to be exact
/// to far better than a percent and short enough for the load to stay the same within a
/// pair.
fn pairing(quick: bool) -> (usize, f64) {
    (if quick { 21 } else { 41 }, 0.01)
}

/// `call` (one kernel call doing `work` units: operations or bytes) against `limit`:
/// paired with the limit's loop where it has one ([`limit_loop`]), else timed by
/// [`secs_per_call`] against the figure measured at the start (and without a limit, just
/// timed). `buffer` is the one [`limits::measure`] read, for the in-cache read loop.
fn rate_against(
    limit: Option<&Limit>,
    buffer: &[u8],
    quick: bool,
    work: usize,
    mut call: impl FnMut(),
) -> Rated {
    if let Some(limit_run) = limit.and_then(|l| limit_loop(l, buffer)) {
        let (pairs, sample_secs) = pairing(quick);
        let kernel_run = |n: u64| {
            for _ in 0..n {
                call();
            }
            n as f64 * work as f64
        };
        let p = paired::paired(pairs, sample_secs, kernel_run, limit_run);
        return Rated {
            value: p.kernel,
            limit_value: Some(p.limit),
            method: Method::Paired(p),
        };
    }
    let secs = secs_per_call(quick, || timed(&mut call));
    Rated {
        value: work as f64 / secs / 1e9,
        limit_value: limit.map(|l| l.value),
        method: Method::Once,
    }
}

/// The loop behind `limit` for [`paired::paired`] (`run(n)` runs n rounds and returns
/// the work done in the limit's unit): the compute peaks' own loops
/// ([`limits::run_peak`]), and the in-cache sequential read over the first bytes of
/// `buffer`, the ones [`limits::measure`] read. `None` for out-of-cache limits, whose
/// loops need to know the slice of work a sample is ([`gather_loop`]); the 1 GiB
/// sequential read has none.
fn limit_loop<'a>(limit: &'a Limit, buffer: &'a [u8]) -> Option<LimitRun<'a>> {
    match limit.kind {
        LimitKind::SeqRead { bytes } if bytes <= limits::IN_CACHE_BYTES => {
            let bytes = &buffer[..bytes];
            Some(Box::new(move |n| {
                for _ in 0..n {
                    // As in `limits::seq_read`: every pass reads, none is folded away.
                    black_box(limits::seq_read_pass(black_box(bytes)));
                }
                n as f64 * bytes.len() as f64
            }))
        }
        LimitKind::Int8DotPeak | LimitKind::F32FmaPeak | LimitKind::I64MaddPeak => {
            Some(Box::new(move |n| {
                limits::run_peak(&limit.kind, limit.isa, n).expect("a measured peak has a loop")
                    as f64
            }))
        }
        LimitKind::SeqRead { .. } | LimitKind::Gather { .. } => None,
    }
}

/// Median seconds per call: one warm-up call, then samples of whole calls lasting at least
/// a sample time each; the median of the samples' means. `call` runs one call and returns
/// the seconds it timed, so it can prepare inputs outside the timing.
fn secs_per_call(quick: bool, mut call: impl FnMut() -> f64) -> f64 {
    call();
    let (samples, sample_secs) = if quick { (3, 0.02) } else { (5, 0.06) };
    let mut means: Vec<f64> = (0..samples)
        .map(|_| {
            let (mut spent, mut calls) = (0.0, 0);
            while spent < sample_secs {
                spent += call();
                calls += 1;
            }
            spent / f64::from(calls)
        })
        .collect();
    means.sort_by(f64::total_cmp);
    means[means.len() / 2]
}

fn timed(f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

/// Prints rows as a table or as JSON lines.
struct Report {
    json: bool,
}

impl Report {
    /// Free text: to stdout in table mode, to stderr in JSON mode.
    fn note(&self, text: &str) {
        if self.json {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }

    fn limit(&self, limit: &Limit) {
        let pages = limit.huge_pages.map(|f| match f {
            f if f >= 0.9 => "2MiB",
            f if f <= 0.1 => "4KiB",
            _ => "mixed",
        });
        if self.json {
            let mut row = json!({
                "type": "limit",
                "name": limit.name,
                "isa": limit.isa.name(),
                "value": limit.value,
                "unit": limit.unit,
            });
            if let Some(pages) = pages {
                row["pages"] = json!(pages);
            }
            emit(&row.to_string());
        } else {
            let pages = match (pages, limit.huge_pages) {
                (Some(p), Some(f)) => format!("  pages {p} ({:.0}% on 2 MiB pages)", f * 100.0),
                _ => String::new(),
            };
            emit(&format!(
                "limit  {:<28} {:<10} {:>8.2} {:<5}{pages}",
                limit.name, limit.isa, limit.value, limit.unit
            ));
        }
    }

    fn kernel(&self, row: &KernelRow) {
        let ratio = ratio(row.value, row.limit_value, &row.method);
        if self.json {
            let mut object = Map::new();
            object.insert("type".into(), json!("kernel"));
            object.insert("op".into(), json!(row.op));
            object.insert("isa".into(), json!(row.isa.name()));
            object.insert("spec".into(), json!(spec_name(row.spec)));
            object.insert("value".into(), json!(row.value));
            object.insert("unit".into(), json!(row.unit));
            object.insert("format".into(), json!(row.format));
            for (key, value) in &row.shape {
                object.insert((*key).into(), value.clone());
            }
            object.insert("limit".into(), json!(row.limit));
            object.insert("limit_value".into(), json!(row.limit_value));
            object.insert("ratio".into(), json!(ratio));
            match &row.method {
                Method::Once => {
                    object.insert("method".into(), json!("once"));
                }
                Method::Paired(p) => {
                    object.insert("method".into(), json!("paired"));
                    object.insert("pairs".into(), json!(p.pairs));
                    let (q1, q3) = p.ratio_quartiles;
                    object.insert("ratio_quartiles".into(), json!([q1, q3]));
                }
            }
            object.insert("exact".into(), json!(row.exact));
            emit(&Value::Object(object).to_string());
        } else {
            let shape: Vec<String> = row
                .shape
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().map_or(v.to_string(), str::to_owned)))
                .collect();
            let method = match &row.method {
                Method::Once => "once".to_owned(),
                Method::Paired(p) => format!(
                    "paired x{} quartiles {:.3}-{:.3} limit {:.2}",
                    p.pairs, p.ratio_quartiles.0, p.ratio_quartiles.1, p.limit
                ),
            };
            emit(&format!(
                "kernel {:<13} {:<5} {:<10} {:<5} {:<70} {:>8.2} {:<5} {:<28} {:>6} {:<9} {method}",
                row.op,
                row.format,
                row.isa,
                spec_name(row.spec),
                shape.join(" "),
                row.value,
                row.unit,
                row.limit,
                ratio.map_or("null".to_owned(), |r| format!("{r:.3}")),
                if row.exact { "exact" } else { "NOT EXACT" },
            ));
        }
    }
}

/// Prints one line to stdout now, so a long run shows progress.
fn emit(line: &str) {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .ok();
}
