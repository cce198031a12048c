//! Compositional embedding bags: one virtual table of `N` rows built from up to four small
//! component tables, fused into the bag.
//!
//! Shi et al. ("Compositional Embeddings Using Complementary Partitions for
//! Memory-Efficient Recommendation Systems", KDD 2020) give each of `N` categories its own
//! vector without storing `N` rows: a [`Scheme`] maps index `i` to one row of each
//! component (quotient and remainder, mixed-radix digits, residues modulo coprime numbers,
//! or one hashed row), and a [`Combine`] operation turns those rows into the category's
//! vector (element-wise product or sum, or concatenation). DLRM's reference code runs one
//! embedding bag per component and combines the pooled results in Python; lowp's kernel
//! derives every index's component rows (divisions by multiply and shift, precomputed
//! here), combines them and accumulates, in one pass with no per-index temporaries.
//!
//! Components may be in any table format, mixed freely. The arithmetic is
//! [`crate::reference::compositional_bag`]'s on every instruction-set level.
//!
//! ```
//! use lowp::compositional::{Combine, CompositionalTable, Scheme};
//! use lowp::{Bags, Output, Pooling, Table};
//!
//! // 1000 categories of dimension 4 from a 100-row quotient and a 10-row remainder table.
//! let quotient: Vec<f32> = (0..100 * 4).map(|x| (x % 7) as f32).collect();
//! let remainder: Vec<f32> = (0..10 * 4).map(|x| (x % 5) as f32 + 0.5).collect();
//! let table = CompositionalTable::new(
//!     &[Table::from_f32(100, 4, &quotient)?, Table::from_f32(10, 4, &remainder)?],
//!     Scheme::QuotientRemainder { m: 10 },
//!     Combine::Product,
//!     1000,
//! )?;
//! let bags = Bags::from_offsets(&[437i64, 999], &[0i32, 2])?;
//! let mut out = [0f32; 4];
//! lowp::compositional_bag(&table, &bags, Pooling::Sum, Output::F32(&mut out), 4, None)?;
//! // Category 437 is quotient row 43 times remainder row 7, then 999 is 99 times 9.
//! let q = |r: usize, e: usize| quotient[4 * r + e];
//! let m = |r: usize, e: usize| remainder[4 * r + e];
//! for e in 0..4 {
//!     assert_eq!(out[e], q(43, e) * m(7, e) + q(99, e) * m(9, e));
//! }
//! # Ok::<(), lowp::Error>(())
//! ```

pub(crate) mod divide;
pub mod scheme;

use crate::embedding::plan::Prefetch;
use crate::embedding::{Bags, Output, Pooling, check_output};
use crate::error::{Error, Result};
use crate::format::{Format, Table};
use crate::isa::Isa;
use crate::registry::{self, CompositionalBagFn, Entry, Kernel, Op};

pub use scheme::{MAX_COMPONENTS, Scheme};

use scheme::{RowMap, row_maps};

/// How the component rows of an index become its vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Combine {
    /// Element-wise product, in component order (all components of one dimension).
    Product,
    /// Element-wise sum, in component order (all components of one dimension).
    Sum,
    /// Concatenation: the vector's dimension is the sum of the components'.
    Concat,
}

impl Combine {
    /// Every operation, in declaration order.
    pub const ALL: [Combine; 3] = [Combine::Product, Combine::Sum, Combine::Concat];

    /// Short lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Combine::Product => "product",
            Combine::Sum => "sum",
            Combine::Concat => "concat",
        }
    }
}

/// One component table and where its rows come from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Component<'a> {
    pub(crate) table: Table<'a>,
    pub(crate) map: RowMap,
    /// First output column of this component's values (0 unless concatenating).
    pub(crate) column: usize,
}

impl Component<'_> {
    /// The row of index `i` (`0 ≤ i < 2^63`).
    #[inline(always)]
    pub(crate) fn row(&self, i: u64) -> usize {
        self.map.row(i) as usize
    }
}

/// A virtual table of `virtual_rows` rows held as up to [`MAX_COMPONENTS`] component
/// tables, a [`Scheme`] and a [`Combine`] operation.
#[derive(Clone, Debug)]
pub struct CompositionalTable<'a> {
    components: Vec<Component<'a>>,
    scheme: Scheme,
    combine: Combine,
    virtual_rows: usize,
    dim: usize,
}

impl<'a> CompositionalTable<'a> {
    /// The virtual table of `virtual_rows` rows that `scheme` and `combine` make of
    /// `components` (one per component of the scheme, in its order).
    ///
    /// # Errors
    ///
    /// [`Error::BadParameter`] naming
    /// - `"scheme"` for a modulus or factor of 0, more than [`MAX_COMPONENTS`] or no
    ///   factors, Chinese-remainder moduli that are not pairwise coprime, or (mixed radix,
    ///   Chinese remainder) more virtual rows than the factors tell apart;
    /// - `"virtual_rows"` above `i64::MAX`;
    /// - `"components"` for a count other than the scheme's, a component in a format other
    ///   than f32, f16, bf16, Q8, Q4 and Q2, a component with fewer rows
    ///   than the scheme maps to it, or (product, sum) components of different dimensions;
    ///
    /// [`Error::SizeOverflow`] if the concatenated dimension overflows.
    pub fn new(
        components: &[Table<'a>],
        scheme: Scheme,
        combine: Combine,
        virtual_rows: usize,
    ) -> Result<Self> {
        let maps = row_maps(&scheme, virtual_rows)?;
        let bad = |reason: String| Error::bad_parameter("components", reason);
        if components.len() != maps.len() {
            return Err(bad(format!(
                "the scheme has {} components, {} tables given",
                maps.len(),
                components.len()
            )));
        }
        let mut column = 0usize;
        let mut built = Vec::with_capacity(components.len());
        for (c, (table, map)) in components.iter().zip(&maps).enumerate() {
            if !matches!(
                table.format(),
                Format::F32 | Format::F16 | Format::Bf16 | Format::Q8 | Format::Q4 | Format::Q2
            ) {
                return Err(bad(format!(
                    "component {c} is a {} table, which compositional tables do not read",
                    table.format()
                )));
            }
            if table.rows() < map.rows_needed {
                return Err(bad(format!(
                    "component {c} has {} rows, the scheme needs {}",
                    table.rows(),
                    map.rows_needed
                )));
            }
            if combine != Combine::Concat && table.dim() != components[0].dim() {
                return Err(bad(format!(
                    "component {c} has dimension {}, component 0 has {}; {} needs equal \
                     dimensions",
                    table.dim(),
                    components[0].dim(),
                    combine.name()
                )));
            }
            built.push(Component {
                table: *table,
                map: *map,
                column,
            });
            if combine == Combine::Concat {
                column = column.checked_add(table.dim()).ok_or(Error::SizeOverflow {
                    what: "concatenated dimension",
                })?;
            }
        }
        let dim = match combine {
            Combine::Concat => column,
            Combine::Product | Combine::Sum => components[0].dim(),
        };
        Ok(CompositionalTable {
            components: built,
            scheme,
            combine,
            virtual_rows,
            dim,
        })
    }

    /// The component tables, in the scheme's order.
    pub fn components(&self) -> impl ExactSizeIterator<Item = &Table<'a>> {
        self.components.iter().map(|c| &c.table)
    }

    /// The component rows of virtual index `index`, in the scheme's order, or `None` if
    /// the index is negative or not below the virtual rows.
    pub fn component_rows(&self, index: i64) -> Option<Vec<usize>> {
        let i = u64::try_from(index)
            .ok()
            .filter(|&i| i < self.virtual_rows as u64)?;
        Some(self.components.iter().map(|c| c.row(i)).collect())
    }

    pub(crate) fn parts(&self) -> &[Component<'a>] {
        &self.components
    }

    /// The partition scheme.
    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    /// The combining operation.
    pub fn combine(&self) -> Combine {
        self.combine
    }

    /// Rows of the virtual table: valid indices are `0..virtual_rows`.
    pub fn virtual_rows(&self) -> usize {
        self.virtual_rows
    }

    /// Elements of each virtual row (and of each bag's result).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Bytes of all component tables together.
    pub fn bytes(&self) -> usize {
        self.components.iter().map(|c| c.table.bytes().len()).sum()
    }
}

/// A compositional-bag kernel resolved once for one table shape, pooling and prefetch.
#[derive(Clone, Copy, Debug)]
pub struct CompositionalBag {
    combine: Combine,
    dim: usize,
    pooling: Pooling,
    prefetch: Prefetch,
    entry: &'static Entry,
    kernel: CompositionalBagFn,
}

impl CompositionalBag {
    /// The kernel for tables combined like `table` (same operation and dimension), with
    /// `pooling` and `prefetch` (of every component row, `prefetch.distance` entries
    /// ahead; skipped when all components together take at most 1 MiB), on `isa` or the
    /// automatic level.
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedIsa`] if `isa` names a level this CPU lacks, or if `LOWP_ISA`
    /// is invalid when `isa` is `None`.
    pub fn new(
        table: &CompositionalTable<'_>,
        pooling: Pooling,
        prefetch: Prefetch,
        isa: Option<Isa>,
    ) -> Result<Self> {
        let level = Isa::choose(isa)?;
        let entry = registry::select(Op::CompositionalBag(table.combine), table.dim, level);
        let Kernel::CompositionalBag(kernel) = entry.kernel else {
            unreachable!("registry entries for compositional bags hold compositional kernels")
        };
        Ok(CompositionalBag {
            combine: table.combine,
            dim: table.dim,
            pooling,
            prefetch,
            entry,
            kernel,
        })
    }

    /// The level of the kernel this plan resolved to.
    pub fn isa(&self) -> Isa {
        self.entry.isa
    }

    /// Pools each bag of `bags` over the virtual rows of `table` into `out`, bag `b` at
    /// `out[b · out_stride..]`, bit-identical to [`crate::reference::compositional_bag`].
    ///
    /// # Errors
    ///
    /// Before anything is written: [`Error::BadParameter`] (`"table"`) if `table` is not
    /// combined like the plan's, (`"out_stride"`) if `out_stride` is below the dimension,
    /// and [`Error::OutputTooSmall`]. While pooling, [`Error::IndexOutOfRange`] (with
    /// `rows` the virtual rows) for the first index that is negative or not below the
    /// virtual rows: earlier bags hold their results, the failing and later ones are
    /// unspecified.
    pub fn run(
        &self,
        table: &CompositionalTable<'_>,
        bags: &Bags<'_>,
        mut out: Output<'_>,
        out_stride: usize,
    ) -> Result<()> {
        if table.combine != self.combine || table.dim != self.dim {
            return Err(Error::bad_parameter(
                "table",
                format!(
                    "a {} table of dimension {}, but the plan is for {} of dimension {}",
                    table.combine.name(),
                    table.dim,
                    self.combine.name(),
                    self.dim
                ),
            ));
        }
        check_output(bags.len(), table.dim, out.len(), out_stride)?;
        registry::record(self.entry);
        // SAFETY: `table` was built by `CompositionalTable::new`, so every component holds
        // exactly its rows (Table::new) and at least the rows its map can produce for an
        // index below the virtual rows; its operation and dimension are the plan's, so the
        // resolved kernel applies. `bags` has validated offsets or lengths and weight
        // counts (Bags constructors); the output holds bags rows of dim at out_stride
        // (check_output). The kernel checks every index against the virtual rows.
        unsafe {
            (self.kernel)(
                table,
                bags,
                self.pooling,
                &mut out,
                out_stride,
                self.prefetch,
            )
        }
    }
}

/// Pools each bag of `bags` over the virtual rows of `table` into `out` with the default
/// prefetch, on `isa` or the automatic level: [`CompositionalBag::new`] then
/// [`CompositionalBag::run`], whose errors it returns.
pub fn compositional_bag(
    table: &CompositionalTable<'_>,
    bags: &Bags<'_>,
    pooling: Pooling,
    out: Output<'_>,
    out_stride: usize,
    isa: Option<Isa>,
) -> Result<()> {
    CompositionalBag::new(table, pooling, Prefetch::default(), isa)?
        .run(table, bags, out, out_stride)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_validated_exactly() {
        let bytes = vec![0u8; 4 * 10 * 8];
        let t = |rows, dim| Table::new(Format::F32, rows, dim, &bytes[..4 * rows * dim]).unwrap();
        let qr = Scheme::QuotientRemainder { m: 10 };
        let err = |tables: &[Table<'_>], combine| {
            CompositionalTable::new(tables, qr.clone(), combine, 95).unwrap_err()
        };
        let bad = |reason: &str| Error::bad_parameter("components", reason);
        assert_eq!(
            err(&[t(10, 8)], Combine::Sum),
            bad("the scheme has 2 components, 1 tables given")
        );
        assert_eq!(
            err(&[t(9, 8), t(10, 8)], Combine::Sum),
            bad("component 0 has 9 rows, the scheme needs 10")
        );
        assert_eq!(
            err(&[t(10, 8), t(5, 8)], Combine::Product),
            bad("component 1 has 5 rows, the scheme needs 10")
        );
        assert_eq!(
            err(&[t(10, 8), t(10, 4)], Combine::Product),
            bad("component 1 has dimension 4, component 0 has 8; product needs equal dimensions")
        );
        let concat = CompositionalTable::new(&[t(10, 8), t(10, 4)], qr, Combine::Concat, 95);
        assert_eq!(concat.unwrap().dim(), 12);
    }
}
