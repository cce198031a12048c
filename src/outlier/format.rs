//! The outlier table's byte layout, its view and its checks, and the row records the
//! kernels read.

use std::sync::Arc;

use crate::error::{Error, Result, checked_add, checked_mul};
use crate::format::{Format, Plain, Table, as_bytes};
use crate::limits::{HUGE_PAGE, HugeBuffer};

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

/// An outlier-aware table: a plain quantized [`Table`] (the dense part) plus, in CSR form,
/// a few exact corrections per row.
///
/// Element `e` of row `r` decodes as `scale · q + bias` from the dense row, plus the
/// residual of the outlier `(r, e)` when the row has one. The sparse part is `rows + 1`
/// little-endian u32 offsets (row `r`'s outliers are entries `offsets[r]..offsets[r + 1]`),
/// then `nnz` u16 columns, then `nnz` residuals (f16 or f32). Every constructor checks it
/// (see [`OutlierTable::from_parts`]), so a kernel may trust it. Bytes need no alignment.
///
/// # Memory
///
/// The table borrows its dense and CSR arrays (zero-copy), and when it has outliers it
/// also **owns a copy** built at construction, the rows as the bag kernels read them
/// ([module docs](crate::outlier), "Execution layout"): one record per row holding its
/// dense bytes and its outliers together, so a bag fetches both with one prefetch
/// stream. That copy takes [`OutlierTable::record_bytes`] per row
/// ([`OutlierTable::owned_bytes`] in all), on top of the borrowed
/// [`OutlierTable::bytes_per_row`]: for Q4 rows of 128 with 4 f16 outliers, 96 bytes
/// against the CSR's 88. A table without outliers owns nothing (its kernels read the
/// dense part). Clones share the copy.
#[derive(Clone, Debug)]
pub struct OutlierTable<'a> {
    dense: Table<'a>,
    offsets: &'a [u8],
    columns: &'a [u8],
    residuals: &'a [u8],
    residual: ResidualType,
    nnz: usize,
    /// `Some(k)` when every row has exactly `k` outliers (`offsets[r] = k · r`).
    per_row: Option<usize>,
    /// The kernels' records; `None` exactly when the table has no outliers.
    records: Option<Arc<Records>>,
}

/// Bytes of a record's outlier count (a u32, which holds any count up to 65536).
pub(crate) const COUNT_BYTES: usize = 4;
/// Bytes of a record's outlier entry: a u16 column, then the residual as f32 (f16
/// residuals widened exactly, so a kernel adds them without converting).
pub(crate) const ENTRY_BYTES: usize = 6;

/// One 64-byte cache line: the aligned unit of small tables' records.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

impl Plain for Line {}

/// Where the records live: in aligned lines on the heap, or, from one huge page of
/// records up, in a [`HugeBuffer`] (2 MiB pages where the OS grants them, so random
/// records cost no more page walks than the rows of a large dense table there).
enum Storage {
    Lines(Vec<Line>),
    Huge(HugeBuffer),
}

/// The rows of a table with outliers as the kernels read them: `rows` records of `stride`
/// bytes from a 64-byte boundary, record `r` = dense row `r`, its outlier count (u32) and
/// its entries (u16 column, f32 residual), in CSR order; then zeros up to the stride.
pub(crate) struct Records {
    storage: Storage,
    /// Bytes of the storage that are records: `rows · stride`.
    len: usize,
    stride: usize,
    /// Bytes of the longest record (its row has the most outliers).
    used: usize,
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records")
            .field("len", &self.len)
            .field("stride", &self.stride)
            .field("used", &self.used)
            .finish_non_exhaustive()
    }
}

impl Records {
    fn bytes(&self) -> &[u8] {
        match &self.storage {
            Storage::Lines(lines) => &as_bytes(lines)[..self.len],
            Storage::Huge(buffer) => &buffer[..self.len],
        }
    }
}

/// The stride of records of `used` bytes: with records from a 64-byte boundary, a stride
/// that is a power of two up to 32 or a multiple of 32 above makes every record touch
/// exactly `⌈used / 64⌉` cache lines, the fewest possible (a record of 88 bytes at a stride
/// of 88 would straddle a third line for 3 rows in 8), for at most 31 bytes of padding.
fn record_stride(used: usize) -> usize {
    if used <= 32 {
        used.next_power_of_two()
    } else {
        used.next_multiple_of(32)
    }
}

/// The rows a kernel reads: `bytes` holds one row every `stride` bytes from a 64-byte
/// boundary (or the dense table's own alignment when there are no outliers); `used` bytes
/// of each may be read. With `entries`, a row's dense bytes are followed by its outlier
/// count (u32) and its entries (u16 column, f32 residual); without, the rows are the dense
/// part's and there are no outliers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowRecords<'t> {
    pub(crate) bytes: &'t [u8],
    pub(crate) stride: usize,
    pub(crate) used: usize,
    pub(crate) entries: bool,
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
        Self::parts_unbuilt(dense, offsets, columns, residuals)?.with_built_records()
    }

    /// The checks of [`OutlierTable::from_parts`] without building the kernels' records:
    /// the caller gives the table the records of the same parts with
    /// [`OutlierTable::sharing_records`] before any kernel sees it.
    pub(crate) fn parts_unbuilt(
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

    /// This table with its kernels' records built.
    pub(crate) fn with_built_records(self) -> Result<Self> {
        let records = self.build_records()?.map(Arc::new);
        Ok(OutlierTable { records, ..self })
    }

    /// This table (from [`OutlierTable::parts_unbuilt`]) with `records`, which
    /// [`OutlierTable::records`] of a table of the same parts returned.
    pub(crate) fn sharing_records(self, records: Option<Arc<Records>>) -> Self {
        OutlierTable { records, ..self }
    }

    /// The records of this checked table ([`Records`]), or `None` without outliers.
    fn build_records(&self) -> Result<Option<Records>> {
        if self.nnz == 0 {
            return Ok(None);
        }
        let what = "outlier table records";
        let most = match self.per_row {
            Some(k) => k,
            None => (0..self.rows())
                .map(|r| self.entries(r).len())
                .max()
                .unwrap_or(0),
        };
        let row_bytes = self.dense.row_bytes();
        let used = checked_add(
            row_bytes + COUNT_BYTES,
            checked_mul(most, ENTRY_BYTES, what)?,
            what,
        )?;
        let stride = record_stride(used);
        let len = checked_mul(self.rows(), stride, what)?;
        let fill = |bytes: &mut [u8]| {
            for (r, record) in bytes.chunks_exact_mut(stride).enumerate() {
                let (dense, sparse) = record.split_at_mut(row_bytes);
                dense.copy_from_slice(self.dense.row(r));
                let entries = self.entries(r);
                sparse[..COUNT_BYTES].copy_from_slice(&(entries.len() as u32).to_le_bytes());
                let slots = sparse[COUNT_BYTES..].chunks_exact_mut(ENTRY_BYTES);
                for (slot, e) in slots.zip(entries) {
                    slot[..2].copy_from_slice(&self.columns[2 * e..2 * e + 2]);
                    slot[2..].copy_from_slice(&self.residual(e).to_le_bytes());
                }
            }
        };
        // A failed huge mapping leaves the records on the heap: slower, never wrong.
        let huge = (len >= HUGE_PAGE)
            .then(|| HugeBuffer::new(len).ok())
            .flatten();
        let storage = match huge {
            Some(mut buffer) => {
                fill(&mut buffer[..]);
                Storage::Huge(buffer)
            }
            None => {
                let mut bytes = vec![0u8; len];
                fill(&mut bytes);
                let lines = bytes.chunks(64).map(|chunk| {
                    let mut line = [0u8; 64];
                    line[..chunk.len()].copy_from_slice(chunk);
                    Line(line)
                });
                Storage::Lines(lines.collect())
            }
        };
        Ok(Some(Records {
            storage,
            len,
            stride,
            used,
        }))
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
        )?
        .with_built_records()
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
            records: None,
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

    /// `Some(k)` when every row has exactly `k` outliers.
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

    /// Bytes per row of the records the bag kernels read: the dense row, the outlier
    /// count and room for the most outliers any row has, rounded up so that no record
    /// touches more cache lines than its bytes need ([module docs](crate::outlier),
    /// "Execution layout"). The dense row's bytes when the table has no outliers.
    pub fn record_bytes(&self) -> usize {
        self.records
            .as_ref()
            .map_or(self.dense.row_bytes(), |r| r.stride)
    }

    /// Bytes the table owns: its records, `rows ·` [`OutlierTable::record_bytes`], or 0
    /// without outliers (everything else is borrowed).
    pub fn owned_bytes(&self) -> usize {
        self.records.as_ref().map_or(0, |r| r.len)
    }

    /// The records a kernel reads (the dense rows themselves when there are no outliers).
    pub(crate) fn row_records(&self) -> RowRecords<'_> {
        match &self.records {
            Some(r) => RowRecords {
                bytes: r.bytes(),
                stride: r.stride,
                used: r.used,
                entries: true,
            },
            None => RowRecords {
                bytes: self.dense.bytes(),
                stride: self.dense.row_bytes(),
                used: self.dense.row_bytes(),
                entries: false,
            },
        }
    }

    /// The records built for this table, to share with a table of the same parts.
    pub(crate) fn records(&self) -> Option<Arc<Records>> {
        self.records.clone()
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
