//! Embedding-bag plans: a kernel resolved once for one configuration, run many times.
//!
//! Like FBGEMM's generated kernels, an [`EmbeddingBag`] fixes the table format, the
//! dimension, the index type, the weighting, the pooling, the output type and the prefetch
//! options up front and picks its kernel from the [registry](crate::registry) once, so
//! [`EmbeddingBag::run`] only checks the call against the plan and jumps to that kernel.
//!
//! Plans are `Send + Sync`: one plan serves every thread. A batch is split over threads by
//! slicing its offsets: each thread's window of `B + 1` offsets addresses the same indices
//! array, without a copy.
//!
//! ```
//! use lowp::embedding::plan::{EmbeddingBag, EmbeddingBagSpec, IndexType};
//! use lowp::{Bags, Format, Output, Table};
//!
//! // 1000 rows of dimension 16; 64 bags of 3 entries each.
//! let dim = 16;
//! let rows: Vec<f32> = (0..1000 * dim).map(|i| (i % 97) as f32).collect();
//! let table = Table::from_f32(1000, dim, &rows)?;
//! let indices: Vec<i64> = (0..192).map(|i| (i * 37) % 1000).collect();
//! let offsets: Vec<i64> = (0..=64).map(|b| 3 * b).collect();
//!
//! let plan = EmbeddingBag::new(EmbeddingBagSpec {
//!     index: IndexType::I64,
//!     ..EmbeddingBagSpec::new(Format::F32, dim)
//! })?;
//! let mut out = vec![0f32; 64 * dim];
//! let threads = 4;
//! let per_thread = 64 / threads;
//! std::thread::scope(|s| {
//!     let chunks = out.chunks_mut(per_thread * dim).enumerate();
//!     let handles: Vec<_> = chunks
//!         .map(|(t, chunk)| {
//!             let (plan, table, indices) = (&plan, &table, &indices);
//!             // Bags t·16 .. (t+1)·16: 17 offsets into the whole indices array.
//!             let window = &offsets[t * per_thread..=(t + 1) * per_thread];
//!             s.spawn(move || -> lowp::Result<()> {
//!                 let bags = Bags::from_offsets(indices.as_slice(), window)?;
//!                 plan.run(table, &bags, Output::F32(chunk), dim)
//!             })
//!         })
//!         .collect();
//!     handles.into_iter().try_for_each(|h| h.join().unwrap())
//! })?;
//!
//! // Bag 0 is rows 0, 37 and 74.
//! let expected: Vec<f32> = (0..dim)
//!     .map(|e| [0, 37, 74].iter().map(|r| ((r * dim + e) % 97) as f32).sum())
//!     .collect();
//! assert_eq!(&out[..dim], expected.as_slice());
//! # Ok::<(), lowp::Error>(())
//! ```

use crate::embedding::{Bags, IndexSlice, Output, Pooling, Weights, check_output};
use crate::error::{Error, Result};
use crate::format::{Format, Table};
use crate::isa::Isa;
use crate::registry::{self, EmbeddingBagFn, Entry, Kernel, Op};

/// The integer type of a batch's indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IndexType {
    /// `i32` indices.
    I32,
    /// `i64` indices.
    I64,
}

/// Which weights a batch carries (see [`Weights`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeightsKind {
    /// Unweighted.
    None,
    /// One weight per index.
    PerIndex,
    /// One weight per position in a bag.
    Positional,
}

/// The element type of the results (see [`Output`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutputType {
    /// f32.
    F32,
    /// IEEE binary16, rounded to nearest even.
    F16,
    /// bfloat16, rounded to nearest even.
    Bf16,
}

/// Which cache level a software prefetch fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrefetchHint {
    /// Every level down to L1 (x86 `prefetcht0`, Arm `pldl1keep`).
    L1,
    /// L2 and beyond (x86 `prefetcht1`, Arm `pldl2keep`).
    L2,
    /// L3 only (x86 `prefetcht2`, Arm `pldl3keep`).
    L3,
    /// Close to the core, marked for early eviction (x86 `prefetchnta`, Arm `pldl1strm`).
    NonTemporal,
}

/// Software prefetch of table rows: while summing entry `i` of a batch, the kernel
/// prefetches every cache line of the row of entry `i + distance` (counted across bags,
/// as FBGEMM counts it). `distance == 0` turns prefetching off. Tables of at most 1 MiB
/// are never prefetched: they stay in L2, where a prefetch only costs instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Prefetch {
    /// Entries ahead; 0 = off.
    pub distance: usize,
    /// Cache level to fill.
    pub hint: PrefetchHint,
}

impl Prefetch {
    /// No software prefetch.
    pub const OFF: Prefetch = Prefetch {
        distance: 0,
        hint: PrefetchHint::L1,
    };
}

impl Default for Prefetch {
    /// Into L2, 64 entries ahead. A random row gather over a table larger than the caches
    /// is limited by the cache misses in flight, and hardware prefetchers cannot guess
    /// random rows; prefetching far ahead into L2 keeps more misses in flight without
    /// pushing the rows being summed out of L1. On the development machine (bags of 100
    /// over a 2 GiB f32 table on 2 MiB pages, one core) this beat no prefetch by 25–40% and
    /// every L1 distance from 8 to 128; L2 distances 32–128 were within noise of each
    /// other.
    fn default() -> Self {
        Prefetch {
            distance: 64,
            hint: PrefetchHint::L2,
        }
    }
}

/// What an [`EmbeddingBag`] plan computes. Build it with [`EmbeddingBagSpec::new`] and
/// change fields with struct-update syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EmbeddingBagSpec {
    /// Format of the table's rows.
    pub format: Format,
    /// Elements per row (and per result).
    pub dim: usize,
    /// Integer type of the indices (offsets and lengths may be either).
    pub index: IndexType,
    /// Weights the bags carry.
    pub weights: WeightsKind,
    /// Sum or mean.
    pub pooling: Pooling,
    /// Element type of the results.
    pub output: OutputType,
    /// Software prefetch of rows.
    pub prefetch: Prefetch,
    /// The instruction-set level to run on; `None` = [`Isa::best`] (capped by `LOWP_ISA`).
    pub isa: Option<Isa>,
}

impl EmbeddingBagSpec {
    /// Unweighted sums over `format` rows of `dim` elements, `i64` indices, f32 results,
    /// default prefetch, automatic level.
    pub fn new(format: Format, dim: usize) -> Self {
        EmbeddingBagSpec {
            format,
            dim,
            index: IndexType::I64,
            weights: WeightsKind::None,
            pooling: Pooling::Sum,
            output: OutputType::F32,
            prefetch: Prefetch::default(),
            isa: None,
        }
    }
}

/// An embedding-bag kernel resolved for one [`EmbeddingBagSpec`].
#[derive(Clone, Copy, Debug)]
pub struct EmbeddingBag {
    spec: EmbeddingBagSpec,
    entry: &'static Entry,
    kernel: EmbeddingBagFn,
}

impl EmbeddingBag {
    /// Resolves the kernel for `spec`: the best one at or below `spec.isa` (or the
    /// automatic level) specialised for `spec.dim` if there is one.
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedIsa`] if `spec.isa` names a level this CPU lacks, or if
    /// `LOWP_ISA` is invalid when `spec.isa` is `None`.
    pub fn new(spec: EmbeddingBagSpec) -> Result<Self> {
        let level = Isa::choose(spec.isa)?;
        let entry = registry::select(Op::EmbeddingBag(spec.format), spec.dim, level);
        let Kernel::EmbeddingBag(kernel) = entry.kernel else {
            unreachable!("registry entries for embedding bags hold embedding-bag kernels")
        };
        Ok(EmbeddingBag {
            spec,
            entry,
            kernel,
        })
    }

    /// The configuration this plan runs.
    pub fn spec(&self) -> &EmbeddingBagSpec {
        &self.spec
    }

    /// The level of the kernel this plan resolved to.
    pub fn isa(&self) -> Isa {
        self.entry.isa
    }

    /// Sums (or averages) each bag of `bags` over `table` into `out`, the result of bag `b`
    /// at `out[b · out_stride..]`. Results are bit-identical to
    /// [`crate::reference::embedding_bag`].
    ///
    /// # Errors
    ///
    /// Checked before anything is written, [`Error::BadParameter`] naming
    /// - `"table"` if the table's format or dimension is not the plan's,
    /// - `"indices"` if the indices are not of the plan's index type,
    /// - `"weights"` if the bags' weights are not of the plan's kind,
    /// - `"out"` if `out` is not of the plan's output type,
    /// - `"out_stride"` if `out_stride < dim`;
    ///
    /// and [`Error::OutputTooSmall`] if `out` cannot hold the bags. While summing,
    /// [`Error::IndexOutOfRange`] for the first index outside the table: the bags before it
    /// hold their results, the failing bag's row and later ones are unspecified.
    pub fn run(
        &self,
        table: &Table<'_>,
        bags: &Bags<'_>,
        mut out: Output<'_>,
        out_stride: usize,
    ) -> Result<()> {
        self.check(table, bags, &out)?;
        check_output(bags.len(), table.dim(), out.len(), out_stride)?;
        registry::record(self.entry);
        // SAFETY: `table` holds exactly rows × row_bytes bytes in the plan's format and
        // dimension (Table::new, `check` above), so the kernel resolved for that format and
        // dimension applies; `bags` has validated offsets or lengths and weight counts (Bags
        // constructors); the output holds bags rows of dim at out_stride (check_output).
        // The kernel checks every index against the table's rows.
        unsafe {
            (self.kernel)(
                table,
                bags,
                self.spec.pooling,
                &mut out,
                out_stride,
                self.spec.prefetch,
            )
        }
    }

    /// Checks that a call matches the plan's configuration.
    pub(crate) fn check(&self, table: &Table<'_>, bags: &Bags<'_>, out: &Output<'_>) -> Result<()> {
        let spec = &self.spec;
        if table.format() != spec.format || table.dim() != spec.dim {
            return Err(Error::bad_parameter(
                "table",
                format!(
                    "a {} table of dimension {}, but the plan is for {} rows of dimension {}",
                    table.format(),
                    table.dim(),
                    spec.format,
                    spec.dim
                ),
            ));
        }
        let index = match bags.indices() {
            IndexSlice::I32(_) => IndexType::I32,
            IndexSlice::I64(_) => IndexType::I64,
        };
        if index != spec.index {
            return Err(Error::bad_parameter(
                "indices",
                format!("{index:?} indices, but the plan is for {:?}", spec.index),
            ));
        }
        let weights = match bags.weights() {
            Weights::None => WeightsKind::None,
            Weights::PerIndex(_) => WeightsKind::PerIndex,
            Weights::Positional(_) => WeightsKind::Positional,
        };
        if weights != spec.weights {
            return Err(Error::bad_parameter(
                "weights",
                format!(
                    "{weights:?} weights, but the plan is for {:?}",
                    spec.weights
                ),
            ));
        }
        let output = match out {
            Output::F32(_) => OutputType::F32,
            Output::F16(_) => OutputType::F16,
            Output::Bf16(_) => OutputType::Bf16,
        };
        if output != spec.output {
            return Err(Error::bad_parameter(
                "out",
                format!("{output:?} output, but the plan is for {:?}", spec.output),
            ));
        }
        Ok(())
    }
}
