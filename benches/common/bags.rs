//! Embedding-bag benchmark inputs, shared by `benches/embedding.rs` and the report: calls
//! of a number of bags of a fixed size (the report's default [`BAGS`] bags of [`BAG`]
//! rows; the benchmarks' [`BENCH_BAGS`] bags of several sizes), over a large
//! (≥ 1 GiB, in a [`HugeBuffer`] like the gather limits) or small (L2-resident) table,
//! with uniform or Zipf-distributed indices that no recent call used ([`IndexPool`]).

use lowp::embedding::plan::Prefetch;
use lowp::limits::{HugeBuffer, LARGE_TABLE_BYTES};
use lowp::registry::{self, Entry, Kernel, Op};
use lowp::{Bags, Format, Isa, Output, Pooling, Table};
use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};

/// Embedding dimensions of the report's per-kernel rows.
pub const DIMS: [usize; 2] = [64, 128];
/// Rows per bag of the report's per-kernel rows.
pub const BAG: usize = 20;
/// Bags per call of the report's per-kernel rows.
pub const BAGS: usize = 2048;
/// Embedding dimensions of the benchmarks (and of the report's per-format rows).
pub const BENCH_DIMS: [usize; 4] = [32, 64, 128, 256];
/// Bags per call of the benchmarks.
pub const BENCH_BAGS: usize = 10_000;
/// Indices an [`IndexPool`] over a large table cycles through before reusing a batch:
/// at least one 64-byte line each, 670 MB of traffic, enough to flush even a
/// several-hundred-MiB L3.
pub const LARGE_POOL_INDICES: usize = 256 * BAGS * BAG;
/// Bytes of a small table: well inside the L2 of any current server core.
pub const SMALL_TABLE_BYTES: usize = 512 << 10;
/// The Zipf exponent of skewed indices (row popularity ∝ rank^−s).
const ZIPF_EXPONENT: f64 = 1.05;
/// The largest row any benchmarked table has (f32 rows of the largest dimension).
const MAX_ROW_BYTES: usize = 4 * BENCH_DIMS[BENCH_DIMS.len() - 1];

/// The buffer every table is a view of: [`LARGE_TABLE_BYTES`] plus one row, of random
/// bytes in `0x20..=0x3F`. Read in any format and at any row size, every f32, f16 and bf16
/// element and every scale and bias is then a finite, normal, positive number below 2, so
/// sums stay finite and no denormal slows a float path down.
pub fn table_buffer() -> std::io::Result<HugeBuffer> {
    let mut buffer = HugeBuffer::new(LARGE_TABLE_BYTES + MAX_ROW_BYTES)?;
    let mut rng = TestRng::from_seed(RngAlgorithm::XorShift, &[1; 16]);
    for word in buffer.chunks_mut(8) {
        let bytes =
            (rng.random::<u64>() & 0x1F1F_1F1F_1F1F_1F1F | 0x2020_2020_2020_2020).to_le_bytes();
        word.copy_from_slice(&bytes[..word.len()]);
    }
    Ok(buffer)
}

/// For each available level, lowest first, the kernel an embedding-bag plan for `format`
/// and `dim` resolves there (the one specialised for `dim` where there is one), skipping
/// levels that have no kernel of their own and would run a lower level's again.
pub fn plan_kernels(format: Format, dim: usize) -> Vec<&'static Entry> {
    let mut kernels: Vec<&'static Entry> = Vec::new();
    for &isa in Isa::available() {
        let entry = registry::select(Op::EmbeddingBag(format), dim, isa);
        if !kernels.iter().any(|k| std::ptr::eq(*k, entry)) {
            kernels.push(entry);
        }
    }
    kernels
}

/// Which table a bag reads from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TableSize {
    /// At least [`LARGE_TABLE_BYTES`]: out of every cache.
    Large,
    /// At most [`SMALL_TABLE_BYTES`]: in L2.
    Small,
}

impl TableSize {
    /// Both sizes.
    pub const ALL: [TableSize; 2] = [TableSize::Large, TableSize::Small];

    /// `large` or `small`, as the report's `table` key spells it.
    pub fn name(self) -> &'static str {
        match self {
            TableSize::Large => "large",
            TableSize::Small => "small",
        }
    }

    /// The nominal size: a large table has at least this many bytes (a whole number of
    /// rows), a small one at most; the gather limits for this size read exactly this
    /// prefix of the [`table_buffer`].
    pub fn bytes(self) -> usize {
        match self {
            TableSize::Large => LARGE_TABLE_BYTES,
            TableSize::Small => SMALL_TABLE_BYTES,
        }
    }

    /// A table of this size in `format` and `dim` over the start of `buffer` (from
    /// [`table_buffer`]).
    pub fn table(self, buffer: &[u8], format: Format, dim: usize) -> Table<'_> {
        let row_bytes = format.row_bytes(dim).expect("small dimension");
        let rows = match self {
            TableSize::Large => self.bytes().div_ceil(row_bytes),
            TableSize::Small => self.bytes() / row_bytes,
        };
        Table::new(format, rows, dim, &buffer[..rows * row_bytes]).expect("sized to fit")
    }
}

/// How indices are distributed over a table's rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexDist {
    /// Every row equally likely.
    Uniform,
    /// Row popularity follows Zipf's law with exponent 1.05, the popular rows scattered
    /// over the table.
    Zipf,
}

impl IndexDist {
    /// Both distributions.
    pub const ALL: [IndexDist; 2] = [IndexDist::Uniform, IndexDist::Zipf];

    /// `uniform` or `zipf`, as the report's `index_dist` key spells it.
    pub fn name(self) -> &'static str {
        match self {
            IndexDist::Uniform => "uniform",
            IndexDist::Zipf => "zipf",
        }
    }
}

/// Index batches for successive calls: each call gets a batch no recent call used, so a
/// large table's rows are not found in cache because the same indices ran just before.
/// Batches are drawn as needed up to a capacity, then reused round-robin: for a large
/// table after [`LARGE_POOL_INDICES`] other indices (and at least 3 other batches), for a
/// small one, which is in cache anyway, after 8 batches.
pub struct IndexPool {
    dist: IndexDist,
    rows: usize,
    batch_len: usize,
    rng: TestRng,
    batches: Vec<Vec<i32>>,
    capacity: usize,
    last: usize,
}

impl IndexPool {
    /// Batches of [`BAGS`] × [`BAG`] `dist` indices into `rows` rows of a table of size
    /// `size`.
    pub fn new(dist: IndexDist, size: TableSize, rows: usize) -> Self {
        Self::with_batch_len(dist, size, rows, BAGS * BAG)
    }

    /// Batches of `batch_len` `dist` indices into `rows` rows of a table of size `size`.
    pub fn with_batch_len(dist: IndexDist, size: TableSize, rows: usize, batch_len: usize) -> Self {
        IndexPool {
            dist,
            rows,
            batch_len,
            rng: TestRng::from_seed(RngAlgorithm::XorShift, &[2; 16]),
            batches: Vec::new(),
            capacity: match size {
                TableSize::Large => (LARGE_POOL_INDICES / batch_len.max(1)).max(4),
                TableSize::Small => 8,
            },
            last: 0,
        }
    }

    /// Draws every batch up to the capacity now, so that [`Self::next_batch`] only picks
    /// one: for timings that include picking the batch (the report's paired samples).
    pub fn fill(&mut self) {
        while self.batches.len() < self.capacity {
            let batch = self.draw();
            self.batches.push(batch);
        }
        self.last = self.batches.len() - 1;
    }

    /// The batch for the next call.
    pub fn next_batch(&mut self) -> &[i32] {
        if self.batches.len() < self.capacity {
            let batch = self.draw();
            self.batches.push(batch);
            self.last = self.batches.len() - 1;
        } else {
            self.last = (self.last + 1) % self.capacity;
        }
        &self.batches[self.last]
    }

    /// The batch [`Self::next_batch`] returned last.
    pub fn last_batch(&self) -> &[i32] {
        &self.batches[self.last]
    }

    fn draw(&mut self) -> Vec<i32> {
        let n = self.rows as f64;
        // Inverse transform of the continuous power law on [1, n + 1): its floor is a rank.
        let exponent = 1.0 - ZIPF_EXPONENT;
        let span = (n + 1.0).powf(exponent) - 1.0;
        (0..self.batch_len)
            .map(|_| {
                let row = match self.dist {
                    IndexDist::Uniform => self.rng.random_range(0..self.rows),
                    IndexDist::Zipf => {
                        let u: f64 = self.rng.random();
                        let rank =
                            ((span * u + 1.0).powf(1.0 / exponent) as usize - 1).min(self.rows - 1);
                        // Scatter ranks over the table (a bijection when the prime does not
                        // divide the row count), so that popular rows do not share pages.
                        (rank as u64 * 2_654_435_761 % self.rows as u64) as usize
                    }
                };
                i32::try_from(row).expect("tables have fewer than 2^31 rows")
            })
            .collect()
    }
}

/// One benchmark shape: sum bags of a batch over `table` into f32.
pub struct BagCase<'a> {
    /// The table.
    pub table: Table<'a>,
    /// Rows per bag.
    pub bag: usize,
    /// Bags per call.
    pub bags: usize,
    offsets: Vec<i32>,
}

impl<'a> BagCase<'a> {
    /// [`BAGS`] bags of [`BAG`] rows over `table`.
    pub fn new(table: Table<'a>) -> Self {
        Self::with_shape(table, BAG, BAGS)
    }

    /// `bags` bags of `bag` rows over `table`.
    pub fn with_shape(table: Table<'a>, bag: usize, bags: usize) -> Self {
        BagCase {
            table,
            bag,
            bags,
            offsets: (0..=bags).map(|b| (b * bag) as i32).collect(),
        }
    }

    /// Indices of one call.
    pub fn batch_len(&self) -> usize {
        self.bags * self.bag
    }

    /// Elements of the output.
    pub fn out_len(&self) -> usize {
        self.bags * self.table.dim()
    }

    /// Bytes of table rows one call gathers.
    pub fn gathered_bytes(&self) -> usize {
        self.batch_len() * self.table.row_bytes()
    }

    /// Runs `entry`'s kernel itself (no dispatch) on the batch `indices` into `out`, with
    /// the default software prefetch (as the dispatched API uses).
    ///
    /// # Panics
    ///
    /// As [`Self::run_with`].
    pub fn run(&self, entry: &Entry, indices: &[i32], out: &mut [f32]) {
        self.run_with(entry, indices, out, Prefetch::default());
    }

    /// Runs `entry`'s kernel itself (no dispatch) on the batch `indices` into `out`, with
    /// software prefetch `prefetch`.
    ///
    /// # Panics
    ///
    /// If `entry` is not an embedding-bag kernel for the table's format, `out` does not hold
    /// [`Self::out_len`] elements, or the kernel fails.
    pub fn run_with(&self, entry: &Entry, indices: &[i32], out: &mut [f32], prefetch: Prefetch) {
        let Kernel::EmbeddingBag(kernel) = entry.kernel else {
            panic!("{} is not an embedding-bag kernel", entry.op);
        };
        assert_eq!(entry.op, Op::EmbeddingBag(self.table.format()));
        assert_eq!(out.len(), self.out_len());
        let bags = self.bags(indices);
        let dim = self.table.dim();
        // SAFETY: the table and the bags come from their checking constructors, and `out`
        // holds exactly `bags` rows of `dim` at stride `dim` (asserted above), which is what
        // the embedding-bag kernel contract asks; kernels check indices themselves.
        unsafe {
            kernel(
                &self.table,
                &bags,
                Pooling::Sum,
                &mut Output::F32(out),
                dim,
                prefetch,
            )
        }
        .expect("valid benchmark inputs");
    }

    /// Whether `out` is bit for bit the reference model's result for the batch `indices`.
    pub fn is_exact(&self, indices: &[i32], out: &[f32]) -> bool {
        let expected = self.reference_bits(indices);
        out.len() == expected.len() && out.iter().zip(&expected).all(|(x, &y)| x.to_bits() == y)
    }

    /// The bits of the reference model's result for the batch `indices`.
    pub fn reference_bits(&self, indices: &[i32]) -> Vec<u32> {
        let mut expected = vec![0.0f32; self.out_len()];
        lowp::reference::embedding_bag(
            &self.table,
            &self.bags(indices),
            Pooling::Sum,
            &mut Output::F32(&mut expected),
            self.table.dim(),
        )
        .expect("valid benchmark inputs");
        expected.iter().map(|x| x.to_bits()).collect()
    }

    fn bags<'s>(&'s self, indices: &'s [i32]) -> Bags<'s> {
        Bags::from_offsets(indices, &self.offsets[..]).expect("offsets fit the batch")
    }
}
