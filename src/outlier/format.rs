//! The outlier table's byte layout, its borrowed view and its checks.

use crate::error::{Error, Result, checked_add, checked_mul};
use crate::format::{Format, Plain, Table, as_bytes};

impl Plain for u16 {}
impl Plain for u32 {}

/// The eight bytes every serialized outlier table starts with.
pub const MAGIC: [u8; 8] = *b"LOWPOUTL";
/// The layout version this crate writes and reads.
pub const VERSION: u16 = 1;
/// Bytes of the header before the dense part.
pub const HEADER_BYTES: usize = 32;

/// The element type of the stored residuals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResidualType {
    /// IEEE binary16, rounded to nearest even from the f32 residual.
    F16,
    /// IEEE binary32.
    F32,
}

impl ResidualType {
    /// Bytes of one residual.
    pub const fn bytes(self) -> usize {
        match self {
            ResidualType::F16 => 2,
            ResidualType::F32 => 4,
        }
    }
}

/// Bytes of the sparse part of a table of `rows` rows with `nnz` outliers: the offsets,
/// the columns and the residuals.
pub fn sparse_bytes(rows: usize, nnz: usize, residual: ResidualType) -> Result<usize> {
    let what = "sparse part bytes";
    let offsets = checked_mul(checked_add(rows, 1, what)?, 4, what)?;
    let entries = checked_mul(nnz, 2 + residual.bytes(), what)?;
    checked_add(offsets, entries, what)
}

/// A borrowed outlier-aware table: a plain quantized [`Table`] (the dense part) plus, in CSR
/// form, a few exact corrections per row.
///
/// Element `e` of row `r` decodes as `scale · q + bias` from the dense row, plus the
/// residual of the outlier `(r, e)` when the row has one. The sparse part is `rows + 1`
/// little-endian u32 offsets (row `r`'s outliers are entries `offsets[r]..offsets[r + 1]`),
/// then `nnz` u16 columns, then `nnz` residuals (f16 or f32). Every constructor checks it
/// (see [`OutlierTable::from_parts`]), so a kernel may trust it. Bytes need no alignment.
#[derive(Clone, Copy, Debug)]
pub struct OutlierTable<'a> {
    dense: Table<'a>,
    offsets: &'a [u8],
    columns: &'a [u8],
    residuals: &'a [u8],
    residual: ResidualType,
    nnz: usize,
    /// `Some(k)` when every row has exactly `k` outliers (`offsets[r] = k · r`).
    per_row: Option<usize>,
}

/// Residual values of an outlier table, in either type.
#[derive(Clone, Copy, Debug)]
pub enum Residuals<'a> {
    /// binary16 residuals.
    F16(&'a [half::f16]),
    /// binary32 residuals.
    F32(&'a [f32]),
}

impl<'a> OutlierTable<'a> {
    /// A table from its dense part and its sparse arrays.
    ///
    /// # Errors
    ///
    /// [`Error::BadParameter`] (`"dense"`) if the dense table is not Q8, Q4 or Q2 or its
    /// dimension does not fit u32;
    /// [`Error::InvalidOutliers`] naming the row when `offsets` does not have `rows + 1`
    /// entries, does not start at 0, decreases, or does not end at the number of columns;
    /// when the residuals are not as many as the columns; or when a row's columns are not
    /// strictly increasing and below `dim`.
    pub fn from_parts(
        dense: Table<'a>,
        offsets: &'a [u32],
        columns: &'a [u16],
        residuals: Residuals<'a>,
    ) -> Result<Self> {
        let (residual, residual_bytes, residual_len) = match residuals {
            Residuals::F16(r) => (ResidualType::F16, as_bytes(r), r.len()),
            Residuals::F32(r) => (ResidualType::F32, as_bytes(r), r.len()),
        };
        if offsets.len() != dense.rows().wrapping_add(1) {
            return Err(Error::InvalidOutliers {
                row: offsets.len().min(dense.rows()),
                reason: format!(
                    "{} offsets given, a table of {} rows needs rows + 1",
                    offsets.len(),
                    dense.rows()
                ),
            });
        }
        if residual_len != columns.len() {
            return Err(Error::InvalidOutliers {
                row: dense.rows(),
                reason: format!(
                    "{} residuals for {} columns: one residual per column needed",
                    residual_len,
                    columns.len()
                ),
            });
        }
        Self::checked(
            dense,
            as_bytes(offsets),
            as_bytes(columns),
            residual_bytes,
            residual,
        )
    }

    /// A table from its serialized form (the [module](crate::outlier) layout, version 1),
    /// borrowing the bytes.
    ///
    /// # Errors
    ///
    /// [`Error::BadParameter`] (`"bytes"`) for a wrong magic, version, dense format or
    /// residual type; [`Error::TableSize`] when the length is not exactly the header's
    /// sizes; and every error of [`OutlierTable::from_parts`].
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self> {
        if bytes.len() < HEADER_BYTES {
            return Err(Error::TableSize {
                expected: HEADER_BYTES,
                got: bytes.len(),
            });
        }
        let bad = |reason: String| Error::bad_parameter("bytes", reason);
        if bytes[..8] != MAGIC {
            return Err(bad(format!(
                "starts with {:?}, not the outlier table magic \"LOWPOUTL\"",
                &bytes[..8]
            )));
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version != VERSION {
            return Err(bad(format!(
                "layout version {version}; this library reads version {VERSION}"
            )));
        }
        let format = match bytes[10] {
            8 => Format::Q8,
            4 => Format::Q4,
            2 => Format::Q2,
            b => return Err(bad(format!("dense code bits {b}; 8, 4 or 2 expected"))),
        };
        let residual = match bytes[11] {
            2 => ResidualType::F16,
            4 => ResidualType::F32,
            b => return Err(bad(format!("residual bytes {b}; 2 or 4 expected"))),
        };
        let field = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8"));
        let too_big = |_| Error::SizeOverflow {
            what: "outlier table header sizes",
        };
        let dim = u32::from_le_bytes(bytes[12..16].try_into().expect("4")) as usize;
        let rows = usize::try_from(field(16)).map_err(too_big)?;
        let nnz = usize::try_from(field(24)).map_err(too_big)?;
        let dense_bytes = format.table_bytes(rows, dim)?;
        let what = "outlier table bytes";
        let expected = checked_add(
            checked_add(HEADER_BYTES, dense_bytes, what)?,
            sparse_bytes(rows, nnz, residual)?,
            what,
        )?;
        if bytes.len() != expected {
            return Err(Error::TableSize {
                expected,
                got: bytes.len(),
            });
        }
        let (dense, rest) = bytes[HEADER_BYTES..].split_at(dense_bytes);
        let (offsets, rest) = rest.split_at((rows + 1) * 4);
        let (columns, residuals) = rest.split_at(nnz * 2);
        Self::checked(
            Table::new(format, rows, dim, dense)?,
            offsets,
            columns,
            residuals,
            residual,
        )
    }

    /// Checks the sparse arrays (little-endian bytes, `offsets` of `rows + 1` entries,
    /// `residuals` as many as the columns) against the dense table.
    fn checked(
        dense: Table<'a>,
        offsets: &'a [u8],
        columns: &'a [u8],
        residuals: &'a [u8],
        residual: ResidualType,
    ) -> Result<Self> {
        if !dense.format().is_quantized() {
            return Err(Error::bad_parameter(
                "dense",
                format!("a {} table; the dense part is Q8, Q4 or Q2", dense.format()),
            ));
        }
        if u32::try_from(dense.dim()).is_err() {
            return Err(Error::bad_parameter(
                "dense",
                format!("dimension {} does not fit the layout's u32", dense.dim()),
            ));
        }
        let nnz = columns.len() / 2;
        let table = OutlierTable {
            dense,
            offsets,
            columns,
            residuals,
            residual,
            nnz,
            per_row: None,
        };
        if table.offset(0) != 0 {
            return Err(Error::InvalidOutliers {
                row: 0,
                reason: format!(
                    "offsets[0] = {}, the first offset must be 0",
                    table.offset(0)
                ),
            });
        }
        for row in 0..dense.rows() {
            let (start, end) = (table.offset(row), table.offset(row + 1));
            if end < start {
                return Err(Error::InvalidOutliers {
                    row,
                    reason: format!(
                        "offsets[{}] = {end} is smaller than offsets[{row}] = {start}",
                        row + 1
                    ),
                });
            }
            if end > nnz {
                return Err(Error::InvalidOutliers {
                    row,
                    reason: format!("offsets[{}] = {end} is past the {nnz} columns", row + 1),
                });
            }
            let mut previous = None;
            for entry in start..end {
                let col = table.column(entry);
                if col >= dense.dim() {
                    return Err(Error::InvalidOutliers {
                        row,
                        reason: format!(
                            "column {col} (entry {entry}) is outside the dimension {}",
                            dense.dim()
                        ),
                    });
                }
                if previous.is_some_and(|p| col <= p) {
                    return Err(Error::InvalidOutliers {
                        row,
                        reason: format!(
                            "column {col} (entry {entry}) does not follow {} in increasing order",
                            previous.expect("checked")
                        ),
                    });
                }
                previous = Some(col);
            }
        }
        let k = if dense.rows() > 0 { table.offset(1) } else { 0 };
        let uniform = (0..=dense.rows()).all(|r| table.offset(r) == r * k);
        if table.offset(dense.rows()) != nnz {
            return Err(Error::InvalidOutliers {
                row: dense.rows(),
                reason: format!(
                    "the last offset is {}, but there are {nnz} columns",
                    table.offset(dense.rows())
                ),
            });
        }
        Ok(OutlierTable {
            per_row: uniform.then_some(k),
            ..table
        })
    }

    /// The dense part: a valid plain table of the dense format, which a reader may use
    /// alone (less accurately).
    pub fn dense(&self) -> Table<'a> {
        self.dense
    }

    /// The dense part's format (Q8, Q4 or Q2).
    pub fn format(&self) -> Format {
        self.dense.format()
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.dense.rows()
    }

    /// Elements per row.
    pub fn dim(&self) -> usize {
        self.dense.dim()
    }

    /// Number of outliers in the table.
    pub fn nnz(&self) -> usize {
        self.nnz
    }

    /// `Some(k)` when every row has exactly `k` outliers. Kernels then find a row's
    /// outliers at entry `k · row` without reading the offsets: one random cache line less
    /// per row.
    pub fn outliers_per_row(&self) -> Option<usize> {
        self.per_row
    }

    /// The residuals' type.
    pub fn residual_type(&self) -> ResidualType {
        self.residual
    }

    /// Bytes the table takes serialized, header included.
    pub fn serialized_bytes(&self) -> usize {
        HEADER_BYTES
            + self.dense.bytes().len()
            + self.offsets.len()
            + self.columns.len()
            + self.residuals.len()
    }

    /// Bytes per row, sparse part and header included: what the table costs per row.
    pub fn bytes_per_row(&self) -> f64 {
        self.serialized_bytes() as f64 / self.rows().max(1) as f64
    }

    /// `offsets[row]`, `row ≤ rows`.
    pub fn offset(&self, row: usize) -> usize {
        u32::from_le_bytes(self.offsets[4 * row..4 * row + 4].try_into().expect("4")) as usize
    }

    /// The outlier entries of `row`.
    pub fn entries(&self, row: usize) -> std::ops::Range<usize> {
        self.offset(row)..self.offset(row + 1)
    }

    /// The column of outlier `entry`.
    pub fn column(&self, entry: usize) -> usize {
        usize::from(u16::from_le_bytes([
            self.columns[2 * entry],
            self.columns[2 * entry + 1],
        ]))
    }

    /// The residual of outlier `entry`, converted exactly to f32.
    pub fn residual(&self, entry: usize) -> f32 {
        match self.residual {
            ResidualType::F16 => crate::format::read_f16(self.residuals, 2 * entry),
            ResidualType::F32 => crate::format::read_f32(self.residuals, 4 * entry),
        }
    }

    /// The raw little-endian arrays: offsets, columns, residuals (for kernels).
    pub(crate) fn sparse_bytes(&self) -> (&'a [u8], &'a [u8], &'a [u8]) {
        (self.offsets, self.columns, self.residuals)
    }

    /// The serialized form (header, dense part, offsets, columns, residuals), which
    /// [`OutlierTable::from_bytes`] reads back.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.serialized_bytes());
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.push(self.format().code_bits().expect("quantized") as u8);
        bytes.push(self.residual.bytes() as u8);
        bytes.extend_from_slice(&(self.dim() as u32).to_le_bytes());
        bytes.extend_from_slice(&(self.rows() as u64).to_le_bytes());
        bytes.extend_from_slice(&(self.nnz as u64).to_le_bytes());
        bytes.extend_from_slice(self.dense.bytes());
        bytes.extend_from_slice(self.offsets);
        bytes.extend_from_slice(self.columns);
        bytes.extend_from_slice(self.residuals);
        bytes
    }
}
