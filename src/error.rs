//! The one error type of lowp.
//!
//! Every variant says what was wrong and where, so that a caller (or a C engine reading
//! `lowp_last_error_message`) can find the offending entry without a debugger.

use std::fmt;

/// Result alias used across lowp.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a lowp call.
///
/// New variants may be added in minor releases; match with a wildcard arm.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// An index in a bag is negative or not below the table's row count.
    IndexOutOfRange {
        /// Bag number within the batch.
        bag: usize,
        /// Position of the entry inside its bag.
        position: usize,
        /// The offending index value.
        index: i64,
        /// Rows in the table.
        rows: usize,
    },
    /// `offsets[entry]` is smaller than `offsets[entry - 1]`.
    OffsetDecreasing {
        /// Position in the offsets array.
        entry: usize,
        /// Value at that position.
        offset: i64,
        /// Value at the position before.
        previous: i64,
    },
    /// `offsets[entry]` is negative or past the end of the indices.
    OffsetOutOfRange {
        /// Position in the offsets array.
        entry: usize,
        /// Value at that position.
        offset: i64,
        /// Number of indices.
        num_indices: usize,
    },
    /// `lengths[entry]` is negative.
    NegativeLength {
        /// Position in the lengths array.
        entry: usize,
        /// Value at that position.
        length: i64,
    },
    /// Lengths do not add up to the number of indices.
    LengthsMismatch {
        /// Sum of all lengths.
        sum: i128,
        /// Number of indices.
        num_indices: usize,
    },
    /// A weight array has the wrong number of entries.
    WeightCount {
        /// Which weights: `"per-index"` or `"positional"`.
        kind: &'static str,
        /// Entries required (for positional weights: the longest bag).
        needed: usize,
        /// Entries given.
        got: usize,
    },
    /// An output buffer is too small for the result.
    OutputTooSmall {
        /// Which output.
        what: &'static str,
        /// Elements required.
        needed: usize,
        /// Elements given.
        got: usize,
    },
    /// An input buffer is too small for the shape it is said to have.
    InputTooSmall {
        /// Which input.
        what: &'static str,
        /// Elements required.
        needed: usize,
        /// Elements given.
        got: usize,
    },
    /// A table's byte length is not `rows × row_bytes`.
    TableSize {
        /// Bytes expected from rows, dim and format.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// A size computation (rows × dim, m × stride, …) overflows `usize`.
    SizeOverflow {
        /// What was being computed.
        what: &'static str,
    },
    /// The requested instruction-set level cannot run here.
    UnsupportedIsa {
        /// The level as `LOWP_ISA` spells it.
        isa: &'static str,
        /// Why it cannot be used.
        reason: String,
    },
    /// A row cannot be stored in the requested quantized format.
    UnrepresentableRow {
        /// Row number.
        row: usize,
        /// What does not fit.
        reason: String,
    },
    /// The sparse part of an outlier table is inconsistent.
    InvalidOutliers {
        /// The row whose outliers are wrong (the row count for a problem with the arrays'
        /// lengths or their end).
        row: usize,
        /// What is wrong, with the offending entry and value.
        reason: String,
    },
    /// A parameter is invalid.
    BadParameter {
        /// Which parameter.
        name: &'static str,
        /// Why it is rejected.
        reason: String,
    },
}

impl Error {
    pub(crate) fn bad_parameter(name: &'static str, reason: impl Into<String>) -> Self {
        Error::BadParameter {
            name,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::IndexOutOfRange {
                bag,
                position,
                index,
                rows,
            } => write!(
                f,
                "index {index} at position {position} of bag {bag} is out of range for a table of {rows} rows"
            ),
            Error::OffsetDecreasing {
                entry,
                offset,
                previous,
            } => write!(
                f,
                "offsets[{entry}] = {offset} is smaller than offsets[{}] = {previous}",
                entry - 1
            ),
            Error::OffsetOutOfRange {
                entry,
                offset,
                num_indices,
            } => write!(
                f,
                "offsets[{entry}] = {offset} is outside 0..={num_indices} (the number of indices)"
            ),
            Error::NegativeLength { entry, length } => {
                write!(f, "lengths[{entry}] = {length} is negative")
            }
            Error::LengthsMismatch { sum, num_indices } => write!(
                f,
                "lengths add up to {sum} but there are {num_indices} indices"
            ),
            Error::WeightCount { kind, needed, got } => {
                write!(f, "{kind} weights: {needed} needed, {got} given")
            }
            Error::OutputTooSmall { what, needed, got } => {
                write!(
                    f,
                    "output {what} too small: {needed} elements needed, {got} given"
                )
            }
            Error::InputTooSmall { what, needed, got } => {
                write!(
                    f,
                    "input {what} too small: {needed} elements needed, {got} given"
                )
            }
            Error::TableSize { expected, got } => {
                write!(f, "table has {got} bytes but rows × row bytes = {expected}")
            }
            Error::SizeOverflow { what } => write!(f, "size overflow computing {what}"),
            Error::UnsupportedIsa { isa, reason } => {
                write!(f, "instruction set {isa} cannot be used: {reason}")
            }
            Error::UnrepresentableRow { row, reason } => {
                write!(f, "row {row} cannot be quantized: {reason}")
            }
            Error::InvalidOutliers { row, reason } => {
                write!(f, "outliers of row {row} are invalid: {reason}")
            }
            Error::BadParameter { name, reason } => write!(f, "bad parameter {name}: {reason}"),
        }
    }
}

impl std::error::Error for Error {}

/// `a * b`, or a [`Error::SizeOverflow`] naming `what`.
pub(crate) fn checked_mul(a: usize, b: usize, what: &'static str) -> Result<usize> {
    a.checked_mul(b).ok_or(Error::SizeOverflow { what })
}

/// `a + b`, or a [`Error::SizeOverflow`] naming `what`.
pub(crate) fn checked_add(a: usize, b: usize, what: &'static str) -> Result<usize> {
    a.checked_add(b).ok_or(Error::SizeOverflow { what })
}

/// Elements a strided matrix of `rows` rows of `cols` elements needs:
/// `(rows - 1) · stride + cols`, or 0 when the matrix is empty.
pub(crate) fn strided_len(
    rows: usize,
    cols: usize,
    stride: usize,
    what: &'static str,
) -> Result<usize> {
    if rows == 0 || cols == 0 {
        return Ok(0);
    }
    checked_add(checked_mul(rows - 1, stride, what)?, cols, what)
}
