//! The outlier-table benchmark input, shared by `benches/outlier.rs` and the report: a
//! serialized outlier table whose dense part is an out-of-cache Q4 table of dimension 128
//! (as large as the plain tables of `bags.rs`), with 4 outliers per row, in one
//! [`HugeBuffer`]. The plain Q4 kernel reads its dense part, so both run over the same
//! bytes with the same indices.

use lowp::Format;
use lowp::limits::{HugeBuffer, LARGE_TABLE_BYTES};
use lowp::outlier::{HEADER_BYTES, MAGIC, OutlierTable, ResidualType, VERSION, sparse_bytes};

/// Dimension of the benchmarked table.
pub const DIM: usize = 128;
/// Outliers per row.
pub const OUTLIERS: usize = 4;
/// Rows per bag.
pub const BAG: usize = 100;

/// A serialized Q4 outlier table of at least [`LARGE_TABLE_BYTES`] of dense rows. Dense
/// bytes are random in `0x20..=0x3F` (finite positive f16 scales and biases below 2), each
/// row has `outliers` (at most [`DIM`]) distinct random columns and f16 residuals in
/// ±(0.03..0.06).
pub fn large_table(outliers: usize) -> std::io::Result<HugeBuffer> {
    let row_bytes = Format::Q4.row_bytes(DIM).expect("small");
    let rows = LARGE_TABLE_BYTES.div_ceil(row_bytes);
    let nnz = rows * outliers;
    let dense = rows * row_bytes;
    let sparse = sparse_bytes(rows, nnz, ResidualType::F16).expect("fits");
    let mut buffer = HugeBuffer::new(HEADER_BYTES + dense + sparse)?;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (header, rest) = buffer.split_at_mut(HEADER_BYTES);
    header[..8].copy_from_slice(&MAGIC);
    header[8..10].copy_from_slice(&VERSION.to_le_bytes());
    header[10] = 4;
    header[11] = 2;
    header[12..16].copy_from_slice(&(DIM as u32).to_le_bytes());
    header[16..24].copy_from_slice(&(rows as u64).to_le_bytes());
    header[24..32].copy_from_slice(&(nnz as u64).to_le_bytes());
    let (dense_bytes, rest) = rest.split_at_mut(dense);
    for word in dense_bytes.chunks_mut(8) {
        let bytes = (next() & 0x1F1F_1F1F_1F1F_1F1F | 0x2020_2020_2020_2020).to_le_bytes();
        word.copy_from_slice(&bytes[..word.len()]);
    }
    let (offsets, rest) = rest.split_at_mut(4 * (rows + 1));
    for (r, o) in offsets.chunks_exact_mut(4).enumerate() {
        o.copy_from_slice(&((r * outliers) as u32).to_le_bytes());
    }
    let (columns, residuals) = rest.split_at_mut(2 * nnz);
    for (row_columns, row_residuals) in columns
        .chunks_mut(2 * outliers.max(1))
        .zip(residuals.chunks_mut(2 * outliers.max(1)))
    {
        // Distinct sorted columns: one random column in each of `outliers` equal parts.
        let quarter = DIM / outliers.max(1);
        for j in 0..outliers {
            let r = next();
            let col = (j * quarter + (r as usize) % quarter) as u16;
            row_columns[2 * j..2 * j + 2].copy_from_slice(&col.to_le_bytes());
            let magnitude = 0.03 + (r >> 40) as f32 / (1u64 << 24) as f32 * 0.03;
            let value = if r & 1 == 0 { magnitude } else { -magnitude };
            let bits = half::f16::from_f32(value).to_le_bytes();
            row_residuals[2 * j..2 * j + 2].copy_from_slice(&bits);
        }
    }
    Ok(buffer)
}

/// The checked view of a buffer from [`large_table`].
pub fn view(buffer: &[u8]) -> OutlierTable<'_> {
    OutlierTable::from_bytes(buffer).expect("large_table writes a valid table")
}
