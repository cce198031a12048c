//! This machine's limits, measured in-process in a few seconds: the yardsticks the report
//! and the benchmarks divide kernel throughput by.
//!
//! - **Sequential read** ([`seq_read`]): GB/s reading a buffer front to back, in cache
//!   (a 256 KiB buffer) and out of cache (a 1 GiB one).
//! - **Random row gather** ([`gather`]): GB/s reading whole rows of `row_bytes` at uniformly
//!   random positions of a table, optionally with the software prefetch the embedding-bag
//!   kernels use by default ([`Prefetch::default`]): what an embedding bag cannot beat.
//! - **int8 dot-product peak** ([`int8_dot_peak`]): GOPS (a u8 × i8 multiply-add is 2 ops)
//!   of independent chains of the level's dot-product instruction: `vpdpbusd` with AVX-512
//!   VNNI, `vpmaddubsw` + `vpmaddwd` with AVX2, `sdot` with NEON dot product.
//! - **64-bit multiply-add peak** ([`i64_madd_peak`]): GOPS (a wrapping i64 multiply-add is
//!   2 ops) of independent chains of `vpmullq` + `vpaddq` with AVX-512 DQ, the only vector
//!   64-bit multiply lowp's levels have: what the i64 GEMM is judged against.
//!
//! - **f32 FMA peak** ([`f32_fma_peak`]): GFLOPS (an FMA is 2 flops) of independent chains
//!   of the level's vector fused multiply-add (AVX2, AVX-512, NEON): what float kernels
//!   whose work is multiply-adds, such as the feature interaction, are judged against.
//!
//! Large tables live in a [`HugeBuffer`], on 2 MiB pages where the OS grants them (random
//! gathers over 4 KiB pages are markedly slower, from TLB misses); the benchmarks allocate
//! their tables the same way so that kernels and limits see the same memory.
//!
//! Every figure is the median of several timed repetitions after one warm-up; `quick`
//! uses fewer and shorter repetitions.

use std::hint::black_box;
use std::io;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::time::Instant;

use crate::embedding::plan::Prefetch;
use crate::error::Result;
use crate::isa::Isa;

/// Bytes of the buffer [`measure`] reads for the in-cache sequential limit (fits the L2 of
/// any current server core).
pub const IN_CACHE_BYTES: usize = 256 << 10;

/// Bytes of the table [`measure`] expects for out-of-cache limits: far beyond any cache.
pub const LARGE_TABLE_BYTES: usize = 1 << 30;

/// Row sizes [`measure`] measures random gathers for.
pub const GATHER_ROW_BYTES: [usize; 6] = [32, 64, 128, 256, 512, 1024];

/// The huge-page size `HugeBuffer` aligns to and asks for.
pub(crate) const HUGE_PAGE: usize = 2 << 20;

/// What a [`Limit`] measures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LimitKind {
    /// Sequential read of a buffer of `bytes`.
    SeqRead {
        /// Buffer size.
        bytes: usize,
    },
    /// Random gather of rows of `row_bytes` from the [`GatherTable`] named `table`.
    Gather {
        /// The table's name.
        table: String,
        /// Bytes per row.
        row_bytes: usize,
        /// Whether rows were prefetched as [`Prefetch::default`] says.
        prefetch: bool,
    },
    /// The int8 dot-product peak of [`Limit::isa`].
    Int8DotPeak,
    /// The f32 fused-multiply-add peak of [`Limit::isa`] (GFLOPS, an FMA is 2 flops).
    F32FmaPeak,
    /// The 64-bit multiply-add peak of [`Limit::isa`].
    I64MaddPeak,
}

/// One measured limit of this machine.
#[derive(Clone, Debug, PartialEq)]
pub struct Limit {
    /// What was measured.
    pub kind: LimitKind,
    /// A stable name, e.g. `seq_read_1GiB`, `gather_large_256B_prefetch`,
    /// `int8_dot_peak_avx512vnni`; kernel rows of the report refer to limits by it.
    pub name: String,
    /// The level whose instructions the measuring loop uses.
    pub isa: Isa,
    /// The measurement, in `unit`.
    pub value: f64,
    /// `GB/s` (10⁹ bytes per second) or `GOPS` (10⁹ operations per second).
    pub unit: &'static str,
    /// For gathers: the fraction of the table on 2 MiB pages, when the OS tells.
    pub huge_pages: Option<f64>,
}

/// The standard set of limits over the first [`LARGE_TABLE_BYTES`] of `table` (all of it
/// if smaller; hold at least that much, so the large figures are out of cache): sequential
/// read in cache (its first [`IN_CACHE_BYTES`]) and out of cache, random gathers (table
/// name `large`) for each of [`GATHER_ROW_BYTES`] with and without prefetch, and the int8
/// dot-product and 64-bit multiply-add peaks of every level that has one here.
pub fn measure(table: &HugeBuffer, quick: bool) -> Vec<Limit> {
    let large = GatherTable {
        name: "large",
        bytes: &table[..LARGE_TABLE_BYTES.min(table.len())],
        huge_pages: table.huge_page_fraction(),
    };
    let mut limits = vec![
        seq_read(&table[..IN_CACHE_BYTES.min(table.len())], quick),
        seq_read(large.bytes, quick),
    ];
    for row_bytes in GATHER_ROW_BYTES {
        for prefetch in [false, true] {
            limits.push(gather(&large, row_bytes, prefetch, quick));
        }
    }
    for isa in int8_dot_peak_levels() {
        limits.push(int8_dot_peak(isa, quick).expect("listed levels are available"));
    }
    for isa in f32_fma_peak_levels() {
        limits.push(f32_fma_peak(isa, quick).expect("listed levels are available"));
    }
    for isa in i64_madd_peak_levels() {
        limits.push(i64_madd_peak(isa, quick).expect("listed levels are available"));
    }
    limits
}

/// Sequential read bandwidth over `bytes` (read whole, repeatedly for small buffers), named
/// `seq_read_<size>`.
pub fn seq_read(bytes: &[u8], quick: bool) -> Limit {
    let target: usize = if quick { 64 << 20 } else { 256 << 20 };
    let passes = (target / bytes.len().max(1)).max(1);
    let secs = median_secs(quick, || {
        timed(|| {
            for _ in 0..passes {
                // black_box on the input stops the compiler from reading once for all passes.
                black_box(read_fold(black_box(bytes)));
            }
        })
    });
    Limit {
        kind: LimitKind::SeqRead { bytes: bytes.len() },
        name: format!("seq_read_{}", size_name(bytes.len())),
        isa: read_isa(),
        value: (passes * bytes.len()) as f64 / secs / 1e9,
        unit: "GB/s",
        huge_pages: None,
    }
}

/// One pass of [`seq_read`]'s loop over `bytes` (a wrapping sum of its words, to pass to
/// `black_box`): for benchmarks that time the read limit themselves, e.g. alternating it
/// with a kernel in thread CPU time on a loaded machine.
pub fn seq_read_pass(bytes: &[u8]) -> u64 {
    read_fold(bytes)
}

/// A table for [`gather`] to read rows from.
#[derive(Clone, Copy, Debug)]
pub struct GatherTable<'a> {
    /// The limit names say this, e.g. `large` or `small`.
    pub name: &'a str,
    /// The table.
    pub bytes: &'a [u8],
    /// The fraction of it on 2 MiB pages, when known ([`HugeBuffer::huge_page_fraction`]).
    pub huge_pages: Option<f64>,
}

/// Random-gather bandwidth: GB/s of whole rows of `row_bytes` read at uniformly random row
/// positions of `table` (fresh positions for every repetition, so that a repetition does not
/// find the previous one's rows in cache), when `prefetch` prefetching every cache line of
/// the row some entries ahead as the embedding-bag kernels do by default
/// ([`Prefetch::default`]: distance and cache level). Named
/// `gather_<table>_<row_bytes>B` with `_prefetch` appended when prefetching.
///
/// # Panics
///
/// If `row_bytes` is 0, larger than the table, or the table has more than 2³² rows.
pub fn gather(table: &GatherTable<'_>, row_bytes: usize, prefetch: bool, quick: bool) -> Limit {
    assert!(
        row_bytes > 0 && row_bytes <= table.bytes.len(),
        "row size {row_bytes} does not fit a table of {} bytes",
        table.bytes.len()
    );
    let rows = u32::try_from(table.bytes.len() / row_bytes).expect("at most 2^32 rows");
    let target: usize = if quick { 32 << 20 } else { 128 << 20 };
    let count = (target / row_bytes).max(1 << 12);
    let mut rng = SplitMix64(0x5EED ^ row_bytes as u64);
    let mut positions = vec![0u32; count];
    let secs = median_secs(quick, || {
        for p in &mut positions {
            *p = rng.below(rows);
        }
        timed(|| {
            black_box(read_gather(
                black_box(table.bytes),
                row_bytes,
                &positions,
                prefetch.then(Prefetch::default),
            ));
        })
    });
    let suffix = if prefetch { "_prefetch" } else { "" };
    Limit {
        kind: LimitKind::Gather {
            table: table.name.to_owned(),
            row_bytes,
            prefetch,
        },
        name: format!("gather_{}_{row_bytes}B{suffix}", table.name),
        isa: read_isa(),
        value: (count * row_bytes) as f64 / secs / 1e9,
        unit: "GB/s",
        huge_pages: table.huge_pages,
    }
}

/// The loop behind a [`gather`] limit, for benchmarks that time it themselves (alternating
/// it with a kernel in thread CPU time, as [`seq_read_pass`] and [`run_peak`] serve the
/// other limits): the same rows of `row_bytes`, the same prefetch, positions drawn the same
/// way, but a fixed slice of work per repetition instead of a fresh batch per timing, so a
/// sample can last a few milliseconds. Holds `count` random positions of `table` and
/// gathers them `chunk` at a time, rotating through them; make `count` rows' worth of
/// cache lines far more than the last-level cache so that no repetition finds the rows of
/// the previous ones in cache.
pub struct GatherLoop<'a> {
    table: &'a [u8],
    row_bytes: usize,
    prefetch: Option<Prefetch>,
    positions: Vec<u32>,
    chunk: usize,
    next: usize,
}

impl<'a> GatherLoop<'a> {
    /// `count` random positions of `table` (uniform, as [`gather`] draws them), gathered
    /// `chunk` at a time (at most `count`), prefetched if `prefetch` as [`gather`] does.
    ///
    /// # Panics
    ///
    /// As [`gather`], and if `chunk` is 0.
    pub fn new(
        table: &'a [u8],
        row_bytes: usize,
        prefetch: bool,
        count: usize,
        chunk: usize,
    ) -> Self {
        assert!(
            row_bytes > 0 && row_bytes <= table.len(),
            "row size {row_bytes} does not fit a table of {} bytes",
            table.len()
        );
        assert!(chunk > 0, "at least one row per repetition");
        let rows = u32::try_from(table.len() / row_bytes).expect("at most 2^32 rows");
        let mut rng = SplitMix64(0x5EED ^ row_bytes as u64);
        GatherLoop {
            table,
            row_bytes,
            prefetch: prefetch.then(Prefetch::default),
            positions: (0..count.max(chunk)).map(|_| rng.below(rows)).collect(),
            chunk,
            next: 0,
        }
    }

    /// Gathers the next `n` chunks of positions and returns the bytes read.
    pub fn run(&mut self, n: u64) -> u64 {
        for _ in 0..n {
            if self.next + self.chunk > self.positions.len() {
                self.next = 0;
            }
            let rows = &self.positions[self.next..self.next + self.chunk];
            black_box(read_gather(
                black_box(self.table),
                self.row_bytes,
                rows,
                self.prefetch,
            ));
            self.next += self.chunk;
        }
        n * (self.chunk * self.row_bytes) as u64
    }
}

/// Runs `rounds` rounds of the loop behind a peak limit (the kind and level of a
/// [`LimitKind::Int8DotPeak`], [`LimitKind::F32FmaPeak`] or [`LimitKind::I64MaddPeak`]
/// limit, the loops [`int8_dot_peak`], [`f32_fma_peak`] and [`i64_madd_peak`] time) and
/// returns the operations done, in the limit's unit (GOPS or GFLOPS are these per
/// nanosecond). For benchmarks that time the peak themselves, e.g. alternating it with a
/// kernel in thread CPU time on a loaded machine, as [`seq_read_pass`] is for the read
/// limit. `None` for other kinds, and where `isa` is unavailable or has no such loop.
pub fn run_peak(kind: &LimitKind, isa: Isa, rounds: u64) -> Option<u64> {
    match kind {
        LimitKind::Int8DotPeak => run_dot(isa, rounds),
        LimitKind::F32FmaPeak => run_fma(isa, rounds),
        LimitKind::I64MaddPeak => run_i64_madd(isa, rounds),
        LimitKind::SeqRead { .. } | LimitKind::Gather { .. } => None,
    }
}

/// The available levels that have an int8 dot-product peak loop, lowest first.
pub fn int8_dot_peak_levels() -> Vec<Isa> {
    Isa::available()
        .iter()
        .copied()
        .filter(|&isa| run_dot(isa, 0).is_some())
        .collect()
}

/// The int8 dot-product peak of `isa` in GOPS, named `int8_dot_peak_<isa>`.
///
/// # Errors
///
/// [`crate::Error::UnsupportedIsa`] if this CPU lacks `isa` or lowp has no peak loop for it
/// (see [`int8_dot_peak_levels`]).
pub fn int8_dot_peak(isa: Isa, quick: bool) -> Result<Limit> {
    isa.require()?;
    if run_dot(isa, 0).is_none() {
        return Err(crate::Error::UnsupportedIsa {
            isa: isa.name(),
            reason: "lowp has no int8 dot-product peak loop for this level".into(),
        });
    }
    Ok(Limit {
        kind: LimitKind::Int8DotPeak,
        name: format!("int8_dot_peak_{}", isa.name()),
        isa,
        value: peak_gops(quick, |rounds| run_dot(isa, rounds).expect("checked above")),
        unit: "GOPS",
        huge_pages: None,
    })
}

/// The available levels that have an f32 FMA peak loop, lowest first.
pub fn f32_fma_peak_levels() -> Vec<Isa> {
    Isa::available()
        .iter()
        .copied()
        .filter(|&isa| run_fma(isa, 0).is_some())
        .collect()
}

/// The f32 fused-multiply-add peak of `isa` in GFLOPS (an FMA is 2 flops), from
/// independent chains of its vector FMA; named `f32_fma_peak_<isa>`.
///
/// # Errors
///
/// [`crate::Error::UnsupportedIsa`] if this CPU lacks `isa` or lowp has no FMA loop for it
/// (see [`f32_fma_peak_levels`]).
pub fn f32_fma_peak(isa: Isa, quick: bool) -> Result<Limit> {
    isa.require()?;
    if run_fma(isa, 0).is_none() {
        return Err(crate::Error::UnsupportedIsa {
            isa: isa.name(),
            reason: "lowp has no f32 FMA peak loop for this level".into(),
        });
    }
    Ok(Limit {
        kind: LimitKind::F32FmaPeak,
        name: format!("f32_fma_peak_{}", isa.name()),
        isa,
        value: peak_gops(quick, |rounds| run_fma(isa, rounds).expect("checked above")),
        unit: "GFLOPS",
        huge_pages: None,
    })
}

/// Runs `rounds` rounds of `isa`'s FMA peak loop and returns the flops done, or `None`
/// when `isa` is unavailable or has no such loop.
fn run_fma(isa: Isa, rounds: u64) -> Option<u64> {
    use crate::arch::peak_fma as peak;
    if !isa.is_available() {
        return None;
    }
    // Operands the compiler cannot see, so it cannot fold the chains.
    let (w, x) = (black_box(1.0f32), black_box(1e-3f32));
    let lanes = match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            // SAFETY: `isa.is_available()` above: the CPU has AVX2, FMA and F16C.
            black_box(unsafe { peak::fma_peak_avx2(rounds, w, x) });
            8
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            // SAFETY: `isa.is_available()` above: the CPU has AVX-512 F, BW and VL.
            black_box(unsafe { peak::fma_peak_avx512(rounds, w, x) });
            16
        }
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => {
            // SAFETY: `isa.is_available()` above: the CPU has NEON.
            black_box(unsafe { peak::fma_peak_neon(rounds, w, x) });
            4
        }
        _ => {
            let _ = (w, x);
            return None;
        }
    };
    Some(rounds * peak::flops_per_round(lanes))
}

/// GOPS of a peak loop: `run(rounds)` runs that many rounds and returns the ops done. The
/// round count grows until one run is long enough to time, then is scaled to the target
/// time; the figure is the median of [`median_secs`].
fn peak_gops(quick: bool, run: impl Fn(u64) -> u64) -> f64 {
    let target_secs = if quick { 0.02 } else { 0.1 };
    let mut rounds = 1u64 << 10;
    let rounds = loop {
        let secs = timed(|| {
            run(rounds);
        });
        if secs >= target_secs / 8.0 || rounds >= 1 << 40 {
            break ((rounds as f64 * target_secs / secs.max(1e-9)) as u64).max(1);
        }
        rounds *= 8;
    };
    let mut ops = 0;
    let secs = median_secs(quick, || timed(|| ops = run(rounds)));
    ops as f64 / secs / 1e9
}

/// The available levels that have a 64-bit multiply-add peak loop, lowest first.
pub fn i64_madd_peak_levels() -> Vec<Isa> {
    Isa::available()
        .iter()
        .copied()
        .filter(|&isa| run_i64_madd(isa, 0).is_some())
        .collect()
}

/// The 64-bit multiply-add peak of `isa` in GOPS, named `i64_madd_peak_<isa>`.
///
/// # Errors
///
/// [`crate::Error::UnsupportedIsa`] if this CPU lacks `isa` or lowp has no peak loop for it
/// (see [`i64_madd_peak_levels`]).
pub fn i64_madd_peak(isa: Isa, quick: bool) -> Result<Limit> {
    isa.require()?;
    if run_i64_madd(isa, 0).is_none() {
        return Err(crate::Error::UnsupportedIsa {
            isa: isa.name(),
            reason: "lowp has no 64-bit multiply-add peak loop for this level".into(),
        });
    }
    Ok(Limit {
        kind: LimitKind::I64MaddPeak,
        name: format!("i64_madd_peak_{}", isa.name()),
        isa,
        value: peak_gops(quick, |rounds| {
            run_i64_madd(isa, rounds).expect("checked above")
        }),
        unit: "GOPS",
        huge_pages: None,
    })
}

/// Runs `rounds` rounds of `isa`'s 64-bit multiply-add peak loop and returns the ops done,
/// or `None` when `isa` is unavailable or has no such loop.
fn run_i64_madd(isa: Isa, rounds: u64) -> Option<u64> {
    if !isa.is_available() {
        return None;
    }
    // An operand the compiler cannot see, so it cannot fold the products.
    let a = black_box(0x9E37_79B9_7F4A_7C15_u64 as i64);
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            use crate::arch::x86_64::peak_avx512 as peak;
            // SAFETY: `isa.is_available()` above: the CPU has AVX-512 F and DQ.
            black_box(unsafe { peak::i64_madd_peak(rounds, a) });
            Some(rounds * peak::I64_MADD_OPS_PER_ROUND)
        }
        _ => {
            let _ = (a, rounds);
            None
        }
    }
}

/// Runs `rounds` rounds of `isa`'s dot-product peak loop and returns the ops done, or
/// `None` when `isa` is unavailable or has no such loop.
fn run_dot(isa: Isa, rounds: u64) -> Option<u64> {
    if !isa.is_available() {
        return None;
    }
    // Operands the compiler cannot see, so it cannot fold the products.
    let (a, b) = (black_box(3u8), black_box(-5i8));
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            use crate::arch::x86_64::peak_avx2 as peak;
            // SAFETY: `isa.is_available()` above: the CPU has AVX2.
            black_box(unsafe { peak::dot_peak(rounds, a) });
            Some(rounds * peak::DOT_OPS_PER_ROUND)
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni => {
            use crate::arch::x86_64::peak_avx512vnni as peak;
            // SAFETY: `isa.is_available()` above: the CPU has AVX-512 F and VNNI.
            black_box(unsafe { peak::dot_peak(rounds, a, b) });
            Some(rounds * peak::DOT_OPS_PER_ROUND)
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Amx => {
            use crate::arch::x86_64::peak_amx as peak;
            // SAFETY: `isa.is_available()` above: the CPU has AMX-INT8 and the process
            // may use tile data.
            black_box(unsafe { peak::dot_peak(rounds, a, b) });
            Some(rounds * peak::DOT_OPS_PER_ROUND)
        }
        #[cfg(target_arch = "aarch64")]
        Isa::NeonDot => {
            use crate::arch::aarch64::peak_neondot as peak;
            // SAFETY: `isa.is_available()` above: the CPU has NEON and dot product.
            black_box(unsafe { peak::dot_peak(rounds, a as i8, b) });
            Some(rounds * peak::DOT_OPS_PER_ROUND)
        }
        _ => {
            let _ = (a, b);
            None
        }
    }
}

/// The level the read loops run at: AVX2 (256-bit loads) where present, else the build's
/// baseline, which is NEON on aarch64.
fn read_isa() -> Isa {
    if cfg!(target_arch = "x86_64") && Isa::Avx2.is_available() {
        Isa::Avx2
    } else if Isa::Neon.is_available() {
        Isa::Neon
    } else {
        Isa::Scalar
    }
}

fn read_fold(bytes: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if Isa::Avx2.is_available() {
        // SAFETY: the CPU has AVX2.
        return unsafe { crate::arch::x86_64::peak_avx2::fold(bytes) };
    }
    fold(bytes)
}

fn read_gather(table: &[u8], row_bytes: usize, rows: &[u32], prefetch: Option<Prefetch>) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if Isa::Avx2.is_available() {
        // SAFETY: the CPU has AVX2.
        return unsafe {
            crate::arch::x86_64::peak_avx2::gather_rows(table, row_bytes, rows, prefetch)
        };
    }
    gather_rows(table, row_bytes, rows, prefetch)
}

/// A wrapping sum of little-endian u64 words that covers every byte of `bytes` with as few
/// loads as possible: whole 64-byte blocks, then one block ending at the last byte
/// (overlapping the one before); under 64 bytes the same with 8-byte words; under 8, bytes.
/// No partial copies and no per-byte tail, so the loops measure loads, not bookkeeping;
/// eight lanes let the compiler use full-width vector loads and several accumulators.
#[inline(always)]
pub(crate) fn fold(bytes: &[u8]) -> u64 {
    let word = |w: &[u8]| u64::from_le_bytes(w.try_into().expect("8 bytes"));
    let n = bytes.len();
    if n >= 64 {
        let mut lanes = [0u64; 8];
        let mut add = |block: &[u8]| {
            for (lane, w) in lanes.iter_mut().zip(block.chunks_exact(8)) {
                *lane = lane.wrapping_add(word(w));
            }
        };
        let mut blocks = bytes.chunks_exact(64);
        blocks.by_ref().for_each(&mut add);
        if !blocks.remainder().is_empty() {
            add(&bytes[n - 64..]);
        }
        lanes.iter().fold(0, |s, &l| s.wrapping_add(l))
    } else if n >= 8 {
        let mut words = bytes.chunks_exact(8);
        let sum = words.by_ref().fold(0u64, |s, w| s.wrapping_add(word(w)));
        if words.remainder().is_empty() {
            sum
        } else {
            sum.wrapping_add(word(&bytes[n - 8..]))
        }
    } else {
        bytes.iter().fold(0, |s, &b| s.wrapping_add(u64::from(b)))
    }
}

/// The wrapping sum of [`fold`] over the rows `rows` of `table` (rows of `row_bytes`), with
/// `prefetch` (if any, and its distance positive) prefetching every cache line of the row
/// `distance` entries ahead.
#[inline(always)]
pub(crate) fn gather_rows(
    table: &[u8],
    row_bytes: usize,
    rows: &[u32],
    prefetch: Option<Prefetch>,
) -> u64 {
    let mut x = 0;
    for (j, &r) in rows.iter().enumerate() {
        if let Some(p) = prefetch
            && p.distance > 0
            && let Some(&ahead) = rows.get(j + p.distance)
        {
            let start = ahead as usize * row_bytes;
            let mut line = start & !63;
            while line < start + row_bytes {
                crate::arch::prefetch::prefetch(table.as_ptr().wrapping_add(line), p.hint);
                line += 64;
            }
        }
        let start = r as usize * row_bytes;
        x = fold(&table[start..start + row_bytes]).wrapping_add(x);
    }
    x
}

/// `run` once to warm up, then the median of its results over several repetitions.
fn median_secs(quick: bool, mut run: impl FnMut() -> f64) -> f64 {
    run();
    let mut secs: Vec<f64> = (0..if quick { 3 } else { 7 }).map(|_| run()).collect();
    secs.sort_by(f64::total_cmp);
    secs[secs.len() / 2]
}

fn timed(f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

/// `1GiB`, `256KiB`, `1000B`: the largest binary unit that divides `bytes`.
fn size_name(bytes: usize) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes}B")
}

/// A small, fast generator for random row positions (Steele, Lea and Flood's SplitMix64).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2⁻³²).
    fn below(&mut self, n: u32) -> u32 {
        (((self.next() >> 32) * u64::from(n)) >> 32) as u32
    }
}

/// A zeroed byte buffer for large tables: aligned to 2 MiB and, on Linux, mapped with
/// `madvise(MADV_HUGEPAGE)` so the kernel backs it with 2 MiB pages where it allows
/// ([`HugeBuffer::huge_page_fraction`] says whether it did). Every page is touched at
/// creation, so the memory is committed: later reads never hit the shared zero page and
/// timings never include page faults.
pub struct HugeBuffer {
    ptr: NonNull<u8>,
    len: usize,
    mapped: usize,
}

impl HugeBuffer {
    /// A committed, zeroed buffer of `len` bytes.
    ///
    /// # Errors
    ///
    /// The OS error when the memory cannot be mapped.
    pub fn new(len: usize) -> io::Result<HugeBuffer> {
        let mapped = len
            .max(1)
            .checked_next_multiple_of(HUGE_PAGE)
            .ok_or_else(|| io::Error::new(io::ErrorKind::OutOfMemory, "size overflow"))?;
        let mut buffer = HugeBuffer {
            ptr: os::map(mapped)?,
            len,
            mapped,
        };
        for page in buffer.chunks_mut(4096) {
            // black_box: the compiler cannot prove the store redundant and drop it.
            page[0] = black_box(0);
        }
        Ok(buffer)
    }

    /// The fraction of the buffer backed by huge pages, from the `AnonHugePages` lines of
    /// `/proc/self/smaps` for the mappings that overlap it; `None` where that file does not
    /// exist (other OSes). If the kernel merged the buffer's mapping with a neighbouring
    /// huge-page mapping, the neighbour's huge pages count too (capped at the buffer size).
    pub fn huge_page_fraction(&self) -> Option<f64> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let (start, end) = (
            self.ptr.as_ptr() as usize,
            self.ptr.as_ptr() as usize + self.len,
        );
        let mut overlaps = false;
        let mut huge_bytes = 0usize;
        for line in smaps.lines() {
            let mut fields = line.split_whitespace();
            let first = fields.next().unwrap_or("");
            if let Some((lo, hi)) = first.split_once('-')
                && let (Ok(lo), Ok(hi)) =
                    (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                overlaps = lo < end && start < hi;
            } else if overlaps && first == "AnonHugePages:" {
                let kib: usize = fields.next()?.parse().ok()?;
                huge_bytes += kib * 1024;
            }
        }
        Some(huge_bytes.min(self.len) as f64 / self.len.max(1) as f64)
    }
}

// SAFETY: a `HugeBuffer` owns its mapping alone, as a `Box<[u8]>` owns its bytes: moving
// it to another thread moves the only owner, and `&HugeBuffer` gives only shared reads.
unsafe impl Send for HugeBuffer {}
// SAFETY: as for `Send`: shared references only read, and writes need `&mut`.
unsafe impl Sync for HugeBuffer {}

impl Deref for HugeBuffer {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` points to `mapped ≥ len` bytes that this buffer owns, all
        // initialized (zeroed by the OS, then written only through `&mut self`).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for HugeBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for HugeBuffer {
    fn drop(&mut self) {
        // SAFETY: `ptr` and `mapped` are exactly what `os::map` returned, and no slice of
        // the buffer outlives `self`.
        unsafe { os::unmap(self.ptr, self.mapped) }
    }
}

impl std::fmt::Debug for HugeBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HugeBuffer")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Linux (x86-64 and aarch64, where these constants and `off_t = i64` hold): an anonymous
/// mapping, trimmed to a 2 MiB boundary, with `MADV_HUGEPAGE`. Declared here because the
/// `libc` crate is not a dependency of the library; the symbols are in the C library std
/// links anyway.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod os {
    use std::ffi::c_void;
    use std::io;
    use std::ptr::NonNull;

    use super::HUGE_PAGE;

    const PROT_READ: i32 = 1;
    const PROT_WRITE: i32 = 2;
    const MAP_PRIVATE: i32 = 2;
    const MAP_ANONYMOUS: i32 = 0x20;
    const MADV_HUGEPAGE: i32 = 14;

    unsafe extern "C" {
        fn mmap(
            addr: *mut c_void,
            len: usize,
            prot: i32,
            flags: i32,
            fd: i32,
            off: i64,
        ) -> *mut c_void;
        fn munmap(addr: *mut c_void, len: usize) -> i32;
        fn madvise(addr: *mut c_void, len: usize, advice: i32) -> i32;
    }

    /// Maps `len` zeroed bytes (a positive multiple of `HUGE_PAGE`) aligned to `HUGE_PAGE`.
    pub(super) fn map(len: usize) -> io::Result<NonNull<u8>> {
        // Over-map by one huge page, then cut the unaligned head and the tail away.
        let span = len + HUGE_PAGE;
        // SAFETY: a new private anonymous mapping at an address of the kernel's choosing
        // aliases no existing memory.
        let base = unsafe {
            mmap(
                std::ptr::null_mut(),
                span,
                PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base as usize == usize::MAX {
            return Err(io::Error::last_os_error());
        }
        let base = base.cast::<u8>();
        let head = (base as usize).next_multiple_of(HUGE_PAGE) - base as usize;
        // SAFETY: `head < HUGE_PAGE`, so `start` and `start + len` lie inside the span.
        let start = unsafe { base.add(head) };
        let tail = span - head - len;
        // SAFETY: the head and the tail are parts of the mapping just made that nothing
        // refers to; unmapping them cannot fail for a valid range, and if it did, they would
        // merely stay mapped.
        unsafe {
            if head > 0 {
                munmap(base.cast(), head);
            }
            if tail > 0 {
                munmap(start.add(len).cast(), tail);
            }
            // A hint: when huge pages are refused the buffer works on 4 KiB pages.
            madvise(start.cast(), len, MADV_HUGEPAGE);
        }
        Ok(NonNull::new(start).expect("a successful mmap is never at address 0"))
    }

    /// Unmaps what `map` returned.
    ///
    /// # Safety
    ///
    /// `ptr` and `len` come from one call of `map`, and nothing uses the memory any more.
    pub(super) unsafe fn unmap(ptr: NonNull<u8>, len: usize) {
        // SAFETY: the caller's contract.
        unsafe { munmap(ptr.as_ptr().cast(), len) };
    }
}

/// Elsewhere: the global allocator, aligned to 2 MiB, without a huge-page request.
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
mod os {
    use std::alloc::{Layout, alloc_zeroed, dealloc};
    use std::io;
    use std::ptr::NonNull;

    use super::HUGE_PAGE;

    fn layout(len: usize) -> io::Result<Layout> {
        Layout::from_size_align(len, HUGE_PAGE)
            .map_err(|e| io::Error::new(io::ErrorKind::OutOfMemory, e))
    }

    /// Allocates `len` zeroed bytes (positive) aligned to `HUGE_PAGE`.
    pub(super) fn map(len: usize) -> io::Result<NonNull<u8>> {
        // SAFETY: the layout has a non-zero size.
        NonNull::new(unsafe { alloc_zeroed(layout(len)?) })
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))
    }

    /// Frees what `map` returned.
    ///
    /// # Safety
    ///
    /// `ptr` and `len` come from one call of `map`, and nothing uses the memory any more.
    pub(super) unsafe fn unmap(ptr: NonNull<u8>, len: usize) {
        // SAFETY: the caller's contract; the layout is the one `map` allocated with.
        unsafe { dealloc(ptr.as_ptr(), layout(len).expect("valid when allocated")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        let mut rng = SplitMix64(7);
        (0..len).map(|_| rng.next() as u8).collect()
    }

    #[test]
    fn fold_reads_every_byte() {
        for len in [1, 7, 8, 9, 20, 63, 64, 65, 72, 130, 300] {
            let mut bytes = pattern(len);
            let before = fold(&bytes);
            assert_eq!(read_fold(&bytes), before, "len {len}");
            for i in 0..len {
                // +1 in any byte changes the sum even where overlapping loads read it twice.
                bytes[i] = bytes[i].wrapping_add(1);
                assert_ne!(fold(&bytes), before, "len {len}, byte {i} not read");
                assert_ne!(read_fold(&bytes), before, "len {len}, byte {i} not read");
                bytes[i] = bytes[i].wrapping_sub(1);
            }
        }
        assert_eq!(fold(&[]), 0);
    }

    #[test]
    fn gather_loop_rotates_through_its_positions() {
        let (row_bytes, rows) = (36, 50);
        let table = pattern(row_bytes * rows);
        let mut gather = GatherLoop::new(&table, row_bytes, true, 10, 4);
        // Chunks start at 0, 4, then wrap (8 + 4 > 10) to 0 again.
        let starts: Vec<usize> = (0..3)
            .map(|_| {
                assert_eq!(gather.run(1), (4 * row_bytes) as u64);
                gather.next - 4
            })
            .collect();
        assert_eq!(starts, [0, 4, 0]);
        assert!(gather.positions.iter().all(|&p| (p as usize) < rows));
        assert_eq!(gather.run(0), 0);
    }

    #[test]
    fn gather_reads_the_chosen_rows() {
        let (row_bytes, rows) = (36, 50);
        let table = pattern(row_bytes * rows);
        let positions: Vec<u32> = (0..40).map(|i| (i * 17 % rows) as u32).collect();
        let expected = positions.iter().fold(0u64, |x, &r| {
            x.wrapping_add(fold(&table[r as usize * row_bytes..][..row_bytes]))
        });
        for prefetch in [None, Some(Prefetch::default()), Some(Prefetch::OFF)] {
            assert_eq!(
                gather_rows(&table, row_bytes, &positions, prefetch),
                expected
            );
            assert_eq!(
                read_gather(&table, row_bytes, &positions, prefetch),
                expected
            );
        }
    }

    #[test]
    fn huge_buffer_is_zeroed_aligned_and_writable() {
        let mut buffer = HugeBuffer::new(3 << 20).unwrap();
        assert_eq!(buffer.len(), 3 << 20);
        assert_eq!(buffer.as_ptr() as usize % HUGE_PAGE, 0);
        assert!(buffer.iter().all(|&b| b == 0));
        buffer[(3 << 20) - 1] = 9;
        assert_eq!(buffer[(3 << 20) - 1], 9);
        if cfg!(target_os = "linux") {
            let fraction = buffer.huge_page_fraction().expect("Linux has smaps");
            assert!((0.0..=1.0).contains(&fraction), "{fraction}");
        }
        assert!(HugeBuffer::new(0).unwrap().is_empty());
    }

    #[test]
    fn dot_peaks_exist_exactly_for_their_levels() {
        assert!(int8_dot_peak(Isa::Scalar, true).is_err());
        for isa in int8_dot_peak_levels() {
            let peak = int8_dot_peak(isa, true).unwrap();
            assert_eq!(peak.name, format!("int8_dot_peak_{isa}"));
            assert!(peak.value > 0.0, "{peak:?}");
        }
        let expected: &[Isa] = if cfg!(target_arch = "x86_64") {
            &[Isa::Avx2, Isa::Avx512Vnni, Isa::Amx]
        } else {
            &[Isa::NeonDot]
        };
        let expected: Vec<Isa> = expected
            .iter()
            .copied()
            .filter(|i| i.is_available())
            .collect();
        assert_eq!(int8_dot_peak_levels(), expected);
    }

    #[test]
    fn fma_peaks_exist_exactly_for_their_levels() {
        assert!(f32_fma_peak(Isa::Scalar, true).is_err());
        for isa in f32_fma_peak_levels() {
            let peak = f32_fma_peak(isa, true).unwrap();
            assert_eq!(peak.name, format!("f32_fma_peak_{isa}"));
            assert!(peak.value > 0.0, "{peak:?}");
        }
        let expected: &[Isa] = if cfg!(target_arch = "x86_64") {
            &[Isa::Avx2, Isa::Avx512]
        } else {
            &[Isa::Neon]
        };
        let expected: Vec<Isa> = expected
            .iter()
            .copied()
            .filter(|i| i.is_available())
            .collect();
        assert_eq!(f32_fma_peak_levels(), expected);
    }

    #[test]
    fn i64_madd_peak_exists_exactly_for_avx512() {
        assert!(i64_madd_peak(Isa::Scalar, true).is_err());
        for isa in i64_madd_peak_levels() {
            let peak = i64_madd_peak(isa, true).unwrap();
            assert_eq!(peak.name, format!("i64_madd_peak_{isa}"));
            assert_eq!(peak.kind, LimitKind::I64MaddPeak);
            assert!(peak.value > 0.0, "{peak:?}");
        }
        let expected: Vec<Isa> = [Isa::Avx512]
            .into_iter()
            .filter(|i| cfg!(target_arch = "x86_64") && i.is_available())
            .collect();
        assert_eq!(i64_madd_peak_levels(), expected);
    }

    #[test]
    fn run_peak_runs_exactly_the_peak_kinds() {
        let peaks = [
            (LimitKind::Int8DotPeak, int8_dot_peak_levels()),
            (LimitKind::F32FmaPeak, f32_fma_peak_levels()),
            (LimitKind::I64MaddPeak, i64_madd_peak_levels()),
        ];
        for (kind, levels) in peaks {
            for &isa in Isa::available() {
                let ops = run_peak(&kind, isa, 3);
                assert_eq!(ops.is_some(), levels.contains(&isa), "{kind:?} {isa}");
                assert_ne!(ops, Some(0), "{kind:?} {isa}");
            }
        }
        let read = LimitKind::SeqRead { bytes: 64 };
        assert_eq!(run_peak(&read, read_isa(), 3), None);
    }

    #[test]
    fn names() {
        assert_eq!(size_name(256 << 10), "256KiB");
        assert_eq!(size_name(1 << 30), "1GiB");
        assert_eq!(size_name(72), "72B");
        let table = pattern(4096);
        let small = GatherTable {
            name: "small",
            bytes: &table,
            huge_pages: None,
        };
        let limit = gather(&small, 64, true, true);
        assert_eq!(limit.name, "gather_small_64B_prefetch");
        assert!(limit.value > 0.0);
        assert_eq!(seq_read(&table, true).name, "seq_read_4KiB");
    }
}
