//! Embedding bags: the batch description ([`Bags`]), its validation, and the dispatched
//! operation.
//!
//! A batch is a flat array of indices cut into bags by offsets or lengths. Validation of
//! everything that does not depend on the table (offsets, lengths, weight counts) happens
//! once when the [`Bags`] is built; index bounds depend on the table and are checked while
//! the bags are summed (one compare per index, as FBGEMM does), so an error names the bag,
//! the position inside it and the index.

pub mod plan;

use std::ops::Range;

use crate::error::{Error, Result, strided_len};
use crate::format::Table;
use crate::isa::Isa;
use crate::registry::{self, Kernel, Op};

/// A borrowed array of indices, offsets or lengths, in either integer width.
#[derive(Clone, Copy, Debug)]
pub enum IndexSlice<'a> {
    /// 32-bit values.
    I32(&'a [i32]),
    /// 64-bit values.
    I64(&'a [i64]),
}

impl<'a> IndexSlice<'a> {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            IndexSlice::I32(s) => s.len(),
            IndexSlice::I64(s) => s.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i`, widened to i64. Panics if `i >= len`.
    #[inline]
    pub fn get(&self, i: usize) -> i64 {
        match self {
            IndexSlice::I32(s) => i64::from(s[i]),
            IndexSlice::I64(s) => s[i],
        }
    }

    /// Values `range`, as the same width.
    pub fn slice(&self, range: Range<usize>) -> IndexSlice<'a> {
        match *self {
            IndexSlice::I32(s) => IndexSlice::I32(&s[range]),
            IndexSlice::I64(s) => IndexSlice::I64(&s[range]),
        }
    }
}

impl<'a> From<&'a [i32]> for IndexSlice<'a> {
    fn from(s: &'a [i32]) -> Self {
        IndexSlice::I32(s)
    }
}

impl<'a> From<&'a [i64]> for IndexSlice<'a> {
    fn from(s: &'a [i64]) -> Self {
        IndexSlice::I64(s)
    }
}

impl<'a, const N: usize> From<&'a [i32; N]> for IndexSlice<'a> {
    fn from(s: &'a [i32; N]) -> Self {
        IndexSlice::I32(s)
    }
}

impl<'a, const N: usize> From<&'a [i64; N]> for IndexSlice<'a> {
    fn from(s: &'a [i64; N]) -> Self {
        IndexSlice::I64(s)
    }
}

/// Per-entry weights of a batch.
#[derive(Clone, Copy, Debug, Default)]
pub enum Weights<'a> {
    /// Every entry has weight 1 (the plain sum).
    #[default]
    None,
    /// One weight per index: entry `i` of the batch uses `weights[i]`.
    PerIndex(&'a [f32]),
    /// Weight by position: the `j`-th entry of every bag uses `weights[j]`; at least as
    /// many weights as the longest bag.
    Positional(&'a [f32]),
}

/// How a bag's rows are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pooling {
    /// The (weighted) sum of the rows.
    Sum,
    /// The sum multiplied by the f32 reciprocal of the bag length; empty bags give zeros.
    Mean,
}

/// Where the bags' results go: `bags` rows of `dim` elements, `out_stride` apart.
#[derive(Debug)]
pub enum Output<'a> {
    /// f32 results.
    F32(&'a mut [f32]),
    /// f16 results, rounded to nearest even.
    F16(&'a mut [half::f16]),
    /// bf16 results, rounded to nearest even, NaN kept NaN.
    Bf16(&'a mut [half::bf16]),
}

impl Output<'_> {
    /// Elements in the buffer.
    pub fn len(&self) -> usize {
        match self {
            Output::F32(s) => s.len(),
            Output::F16(s) => s.len(),
            Output::Bf16(s) => s.len(),
        }
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores the f32 results `row` at element `at`, converted to the output type.
    pub(crate) fn store(&mut self, at: usize, row: &[f32]) {
        // With dim 0 the buffer may be empty while `at = bag · out_stride` is not 0.
        if row.is_empty() {
            return;
        }
        match self {
            Output::F32(s) => s[at..at + row.len()].copy_from_slice(row),
            Output::F16(s) => {
                for (o, &v) in s[at..at + row.len()].iter_mut().zip(row) {
                    *o = half::f16::from_f32(v);
                }
            }
            Output::Bf16(s) => {
                for (o, &v) in s[at..at + row.len()].iter_mut().zip(row) {
                    *o = half::bf16::from_f32(v);
                }
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Bounds<'a> {
    /// `B + 1` entries; bag `b` is `offsets[b]..offsets[b + 1]`.
    Offsets(IndexSlice<'a>),
    /// `B` entries; bag `b` is `offsets[b]..offsets[b + 1]`, the last bag ends at the
    /// number of indices.
    OffsetsWithoutLast(IndexSlice<'a>),
    /// `B` entries; bag `b` has `lengths[b]` entries, bags back to back from index 0.
    Lengths(IndexSlice<'a>),
}

/// A validated batch of bags: indices, where each bag starts and ends, and weights.
///
/// Construction checks offsets (never decreasing, within `0..=indices.len()`) or lengths
/// (non-negative, adding up to `indices.len()`) and, with [`Bags::with_weights`], the weight
/// count. Offsets need not start at 0 nor end at `indices.len()`: a window of a larger
/// offsets array over the whole indices array is a valid sub-batch, which is how an engine
/// splits one batch over its threads without copying.
#[derive(Clone, Copy, Debug)]
pub struct Bags<'a> {
    indices: IndexSlice<'a>,
    bounds: Bounds<'a>,
    weights: Weights<'a>,
    num_bags: usize,
    max_len: usize,
}

impl<'a> Bags<'a> {
    /// Bags from `B + 1` offsets (PyTorch's `include_last_offset = true`, FBGEMM's
    /// offsets): bag `b` is `indices[offsets[b]..offsets[b + 1]]`.
    pub fn from_offsets(
        indices: impl Into<IndexSlice<'a>>,
        offsets: impl Into<IndexSlice<'a>>,
    ) -> Result<Self> {
        let indices = indices.into();
        let offsets = offsets.into();
        if offsets.is_empty() {
            return Err(Error::bad_parameter(
                "offsets",
                "needs B + 1 entries (at least one); use from_offsets_without_last for B entries",
            ));
        }
        let max_len = check_offsets(offsets, indices.len(), false)?;
        Ok(Bags {
            indices,
            bounds: Bounds::Offsets(offsets),
            weights: Weights::None,
            num_bags: offsets.len() - 1,
            max_len,
        })
    }

    /// Bags from `B` offsets (PyTorch's `include_last_offset = false`): the last bag ends
    /// at `indices.len()`.
    pub fn from_offsets_without_last(
        indices: impl Into<IndexSlice<'a>>,
        offsets: impl Into<IndexSlice<'a>>,
    ) -> Result<Self> {
        let indices = indices.into();
        let offsets = offsets.into();
        let max_len = check_offsets(offsets, indices.len(), true)?;
        Ok(Bags {
            indices,
            bounds: Bounds::OffsetsWithoutLast(offsets),
            weights: Weights::None,
            num_bags: offsets.len(),
            max_len,
        })
    }

    /// Bags from `B` lengths (Caffe2's `SparseLengthsSum`): bag `b` has `lengths[b]`
    /// entries, bags back to back from the first index.
    pub fn from_lengths(
        indices: impl Into<IndexSlice<'a>>,
        lengths: impl Into<IndexSlice<'a>>,
    ) -> Result<Self> {
        let indices = indices.into();
        let lengths = lengths.into();
        let mut sum: i128 = 0;
        let mut max_len = 0;
        for entry in 0..lengths.len() {
            let length = lengths.get(entry);
            if length < 0 {
                return Err(Error::NegativeLength { entry, length });
            }
            sum += i128::from(length);
            max_len = max_len.max(length as usize);
        }
        if sum != indices.len() as i128 {
            return Err(Error::LengthsMismatch {
                sum,
                num_indices: indices.len(),
            });
        }
        Ok(Bags {
            indices,
            bounds: Bounds::Lengths(lengths),
            weights: Weights::None,
            num_bags: lengths.len(),
            max_len,
        })
    }

    /// The same bags with `weights`: per-index weights need exactly one weight per index,
    /// positional weights at least as many as the longest bag.
    pub fn with_weights(mut self, weights: Weights<'a>) -> Result<Self> {
        match weights {
            Weights::None => {}
            Weights::PerIndex(w) if w.len() != self.indices.len() => {
                return Err(Error::WeightCount {
                    kind: "per-index",
                    needed: self.indices.len(),
                    got: w.len(),
                });
            }
            Weights::Positional(w) if w.len() < self.max_len => {
                return Err(Error::WeightCount {
                    kind: "positional",
                    needed: self.max_len,
                    got: w.len(),
                });
            }
            Weights::PerIndex(_) | Weights::Positional(_) => {}
        }
        self.weights = weights;
        Ok(self)
    }

    /// Number of bags.
    pub fn len(&self) -> usize {
        self.num_bags
    }

    /// Whether there are no bags.
    pub fn is_empty(&self) -> bool {
        self.num_bags == 0
    }

    /// The whole indices array (bags given by offsets may use only part of it).
    pub fn indices(&self) -> IndexSlice<'a> {
        self.indices
    }

    /// The weights.
    pub fn weights(&self) -> Weights<'a> {
        self.weights
    }

    /// Entries in the longest bag.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The range of `indices` each bag covers, in bag order.
    pub fn ranges(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        let mut next_start = 0usize;
        (0..self.num_bags).map(move |b| {
            // Offsets and lengths were validated at construction: non-negative, in range.
            let range = match self.bounds {
                Bounds::Offsets(o) => o.get(b) as usize..o.get(b + 1) as usize,
                Bounds::OffsetsWithoutLast(o) => {
                    let end = if b + 1 < o.len() {
                        o.get(b + 1) as usize
                    } else {
                        self.indices.len()
                    };
                    o.get(b) as usize..end
                }
                Bounds::Lengths(l) => next_start..next_start + l.get(b) as usize,
            };
            next_start = range.end;
            range
        })
    }

    /// The weight of entry `position` of a bag, that entry being `indices[i]`.
    #[inline]
    pub fn weight(&self, i: usize, position: usize) -> Option<f32> {
        match self.weights {
            Weights::None => None,
            Weights::PerIndex(w) => Some(w[i]),
            Weights::Positional(w) => Some(w[position]),
        }
    }
}

/// Checks offsets (non-decreasing, within `0..=num_indices`) and returns the longest bag.
fn check_offsets(offsets: IndexSlice<'_>, num_indices: usize, open_end: bool) -> Result<usize> {
    let mut max_len = 0;
    let mut previous = 0i64;
    for entry in 0..offsets.len() {
        let offset = offsets.get(entry);
        if offset < 0 || offset as u64 > num_indices as u64 {
            return Err(Error::OffsetOutOfRange {
                entry,
                offset,
                num_indices,
            });
        }
        if entry > 0 {
            if offset < previous {
                return Err(Error::OffsetDecreasing {
                    entry,
                    offset,
                    previous,
                });
            }
            max_len = max_len.max((offset - previous) as usize);
        }
        previous = offset;
    }
    if open_end && !offsets.is_empty() {
        max_len = max_len.max(num_indices - previous as usize);
    }
    Ok(max_len)
}

/// Checks an output buffer and stride for `bags` rows of `dim` elements.
pub(crate) fn check_output(
    bags: usize,
    dim: usize,
    out_len: usize,
    out_stride: usize,
) -> Result<()> {
    if out_stride < dim {
        return Err(Error::bad_parameter(
            "out_stride",
            format!("{out_stride} is smaller than the dimension {dim}"),
        ));
    }
    let needed = strided_len(bags, dim, out_stride, "output elements")?;
    if out_len < needed {
        return Err(Error::OutputTooSmall {
            what: "embedding bags",
            needed,
            got: out_len,
        });
    }
    Ok(())
}

/// Sums (or averages) each bag of `bags` over `table` into `out`, row `b` of the result at
/// `out[b · out_stride..]`, on `isa` (or the automatic level when `None`).
///
/// Results are bit-identical to [`crate::reference::embedding_bag`] on every level.
pub fn embedding_bag(
    table: &Table<'_>,
    bags: &Bags<'_>,
    pooling: Pooling,
    mut out: Output<'_>,
    out_stride: usize,
    isa: Option<Isa>,
) -> Result<()> {
    check_output(bags.len(), table.dim(), out.len(), out_stride)?;
    let level = Isa::choose(isa)?;
    let entry = registry::select(Op::EmbeddingBag(table.format()), table.dim(), level);
    let Kernel::EmbeddingBag(kernel) = entry.kernel else {
        unreachable!("registry entries for embedding bags hold embedding-bag kernels")
    };
    registry::record(entry);
    let prefetch = plan::Prefetch::default();
    // SAFETY: `table` holds exactly rows × row_bytes bytes (Table::new), `bags` has
    // validated offsets or lengths and weight counts (Bags constructors), and the output
    // holds bags rows of dim at out_stride (check_output above). Kernels check every index
    // against the table's rows themselves.
    unsafe { kernel(table, bags, pooling, &mut out, out_stride, prefetch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_validated() {
        let idx = [0i64, 1, 2, 3];
        assert!(Bags::from_offsets(&idx, &[0i32, 2, 4]).is_ok());
        assert_eq!(
            Bags::from_offsets(&idx, &[0i32, 3, 2]).unwrap_err(),
            Error::OffsetDecreasing {
                entry: 2,
                offset: 2,
                previous: 3
            }
        );
        assert_eq!(
            Bags::from_offsets(&idx, &[0i32, 5]).unwrap_err(),
            Error::OffsetOutOfRange {
                entry: 1,
                offset: 5,
                num_indices: 4
            }
        );
        assert_eq!(
            Bags::from_offsets(&idx, &[-1i32, 2]).unwrap_err(),
            Error::OffsetOutOfRange {
                entry: 0,
                offset: -1,
                num_indices: 4
            }
        );
        assert!(matches!(
            Bags::from_offsets(&idx, &[] as &[i32; 0]),
            Err(Error::BadParameter {
                name: "offsets",
                ..
            })
        ));
    }

    #[test]
    fn sub_batch_windows_and_open_end() {
        let idx = [0i32, 1, 2, 3, 4];
        let window = Bags::from_offsets(&idx, &[1i64, 3]).unwrap();
        assert_eq!(window.ranges().collect::<Vec<_>>(), vec![1..3]);
        let open = Bags::from_offsets_without_last(&idx, &[0i32, 1]).unwrap();
        assert_eq!(open.ranges().collect::<Vec<_>>(), [0..1, 1..5]);
        assert_eq!(open.max_len(), 4);
    }

    #[test]
    fn lengths_are_validated() {
        let idx = [0i64; 3];
        let bags = Bags::from_lengths(&idx, &[1i32, 0, 2]).unwrap();
        assert_eq!(bags.ranges().collect::<Vec<_>>(), [0..1, 1..1, 1..3]);
        assert_eq!(
            Bags::from_lengths(&idx, &[1i32, -1, 3]).unwrap_err(),
            Error::NegativeLength {
                entry: 1,
                length: -1
            }
        );
        assert_eq!(
            Bags::from_lengths(&idx, &[1i32, 1]).unwrap_err(),
            Error::LengthsMismatch {
                sum: 2,
                num_indices: 3
            }
        );
    }

    #[test]
    fn weight_counts_are_validated() {
        let idx = [0i64; 3];
        let bags = Bags::from_lengths(&idx, &[1i32, 2]).unwrap();
        assert_eq!(
            bags.with_weights(Weights::PerIndex(&[1.0; 2])).unwrap_err(),
            Error::WeightCount {
                kind: "per-index",
                needed: 3,
                got: 2
            }
        );
        assert_eq!(
            bags.with_weights(Weights::Positional(&[1.0])).unwrap_err(),
            Error::WeightCount {
                kind: "positional",
                needed: 2,
                got: 1
            }
        );
        assert!(bags.with_weights(Weights::Positional(&[1.0; 2])).is_ok());
    }

    #[test]
    fn output_is_validated() {
        assert!(check_output(3, 4, 12, 4).is_ok());
        assert!(check_output(3, 4, 10, 4).is_err());
        assert!(check_output(3, 4, 14, 5).is_ok());
        assert!(check_output(0, 4, 0, 4).is_ok());
        assert!(matches!(
            check_output(2, 4, 100, 3),
            Err(Error::BadParameter {
                name: "out_stride",
                ..
            })
        ));
    }
}
