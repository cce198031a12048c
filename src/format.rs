//! Table formats, their exact byte layouts, and the borrowed [`Table`] view.
//!
//! Every layout is little-endian, row-major, unaligned, with no padding inside or between
//! rows. The quantized layouts are FBGEMM's fused row-wise formats byte for byte, so a
//! table quantized by FBGEMM (or PyTorch's `torch.ops.quantized.embedding_bag_*` packers)
//! loads here unchanged:
//!
//! | format | FBGEMM name | row bytes | row layout |
//! |---|---|---|---|
//! | [`Format::F32`] | `float` rows | 4·dim | dim f32 |
//! | [`Format::F16`] | `float16` rows | 2·dim | dim IEEE binary16 |
//! | [`Format::Bf16`] | `bfloat16` rows | 2·dim | dim bfloat16 |
//! | [`Format::Q8`] | `Fused8BitRowwiseQuantizedSBFloat` | dim + 8 | dim u8 codes, f32 scale, f32 bias |
//! | [`Format::Q4`] | `FusedNBitRowwiseQuantizedSBHalf`, 4 bits | ⌈dim/2⌉ + 4 | packed codes, f16 scale, f16 bias |
//! | [`Format::Q2`] | `FusedNBitRowwiseQuantizedSBHalf`, 2 bits | ⌈dim/4⌉ + 4 | packed codes, f16 scale, f16 bias |
//!
//! A quantized element decodes as `scale · q + bias`. In the packed n-bit formats element
//! `e` sits in byte `e / (8 / bits)` at bit offset `(e mod (8 / bits)) · bits`, element 0 in
//! the lowest bits; unused high bits of a last partial byte are zero. (Source: FBGEMM's
//! `include/fbgemm/QuantUtils.h` and `src/QuantUtils.cc`, summarised in the project's
//! FBGEMM-FACTS.md.)

use std::fmt;

use crate::error::{Error, Result, checked_mul};

/// The element format of an embedding table's rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// IEEE binary32 elements.
    F32,
    /// IEEE binary16 elements.
    F16,
    /// bfloat16 elements (the upper half of an f32).
    Bf16,
    /// 8-bit row-wise: dim u8 codes, f32 scale, f32 bias.
    Q8,
    /// 4-bit row-wise: two codes per byte, f16 scale, f16 bias.
    Q4,
    /// 2-bit row-wise: four codes per byte, f16 scale, f16 bias.
    Q2,
}

impl Format {
    /// Every format, in declaration order.
    pub const ALL: [Format; 6] = [
        Format::F32,
        Format::F16,
        Format::Bf16,
        Format::Q8,
        Format::Q4,
        Format::Q2,
    ];

    /// Short lower-case name, as the report prints it.
    pub const fn name(self) -> &'static str {
        match self {
            Format::F32 => "f32",
            Format::F16 => "f16",
            Format::Bf16 => "bf16",
            Format::Q8 => "q8",
            Format::Q4 => "q4",
            Format::Q2 => "q2",
        }
    }

    /// Bits per code for the quantized formats, `None` for float formats.
    pub const fn code_bits(self) -> Option<u32> {
        match self {
            Format::Q8 => Some(8),
            Format::Q4 => Some(4),
            Format::Q2 => Some(2),
            Format::F32 | Format::F16 | Format::Bf16 => None,
        }
    }

    /// Whether rows are row-wise quantized codes plus scale and bias.
    pub const fn is_quantized(self) -> bool {
        self.code_bits().is_some()
    }

    /// Bytes of packed codes (or of elements, for float formats) in a row of `dim`.
    pub fn data_bytes(self, dim: usize) -> Result<usize> {
        let what = "row bytes";
        Ok(match self {
            Format::F32 => checked_mul(dim, 4, what)?,
            Format::F16 | Format::Bf16 => checked_mul(dim, 2, what)?,
            Format::Q8 => dim,
            Format::Q4 => dim.div_ceil(2),
            Format::Q2 => dim.div_ceil(4),
        })
    }

    /// Bytes of the scale and bias that follow the codes (0 for float formats).
    pub const fn scale_bias_bytes(self) -> usize {
        match self {
            Format::Q8 => 8,
            Format::Q4 | Format::Q2 => 4,
            Format::F32 | Format::F16 | Format::Bf16 => 0,
        }
    }

    /// Bytes in one row of `dim` elements.
    pub fn row_bytes(self, dim: usize) -> Result<usize> {
        self.data_bytes(dim)?
            .checked_add(self.scale_bias_bytes())
            .ok_or(Error::SizeOverflow { what: "row bytes" })
    }

    /// Bytes in a table of `rows` rows of `dim` elements.
    pub fn table_bytes(self, rows: usize, dim: usize) -> Result<usize> {
        checked_mul(rows, self.row_bytes(dim)?, "table bytes (rows × row bytes)")
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A borrowed embedding table: `rows` rows of `dim` elements in `format`, in `bytes`.
///
/// The constructor checks that `bytes.len() == rows × row_bytes` (with overflow checks), so
/// a `Table` always holds exactly its rows. Bytes need no alignment.
#[derive(Clone, Copy, Debug)]
pub struct Table<'a> {
    bytes: &'a [u8],
    rows: usize,
    dim: usize,
    row_bytes: usize,
    format: Format,
}

impl<'a> Table<'a> {
    /// A table over `bytes` laid out as `format` (see the [module docs](self)).
    pub fn new(format: Format, rows: usize, dim: usize, bytes: &'a [u8]) -> Result<Self> {
        let expected = format.table_bytes(rows, dim)?;
        if bytes.len() != expected {
            return Err(Error::TableSize {
                expected,
                got: bytes.len(),
            });
        }
        Ok(Table {
            bytes,
            rows,
            dim,
            row_bytes: format.row_bytes(dim)?,
            format,
        })
    }

    /// An f32 table over `values` (`rows × dim` elements).
    pub fn from_f32(rows: usize, dim: usize, values: &'a [f32]) -> Result<Self> {
        Table::new(Format::F32, rows, dim, as_bytes(values))
    }

    /// An f16 table over `values` (`rows × dim` elements).
    pub fn from_f16(rows: usize, dim: usize, values: &'a [half::f16]) -> Result<Self> {
        Table::new(Format::F16, rows, dim, as_bytes(values))
    }

    /// A bf16 table over `values` (`rows × dim` elements).
    pub fn from_bf16(rows: usize, dim: usize, values: &'a [half::bf16]) -> Result<Self> {
        Table::new(Format::Bf16, rows, dim, as_bytes(values))
    }

    /// The element format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Elements per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Bytes per row.
    pub fn row_bytes(&self) -> usize {
        self.row_bytes
    }

    /// All bytes of the table.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The bytes of row `r`. Panics if `r >= rows` (callers check indices first).
    pub fn row(&self, r: usize) -> &'a [u8] {
        &self.bytes[r * self.row_bytes..(r + 1) * self.row_bytes]
    }
}

/// Views a slice of plain numbers as its little-endian bytes (lowp supports only
/// little-endian targets, where memory order is the format's order).
pub(crate) fn as_bytes<T: Plain>(values: &[T]) -> &[u8] {
    // SAFETY: `Plain` types have no padding and no invalid bit patterns as bytes; the
    // length is the slice's size in bytes, which cannot overflow for an existing slice.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast(), std::mem::size_of_val(values)) }
}

/// Number types whose every byte is initialized (no padding).
pub(crate) trait Plain: Copy {}
impl Plain for f32 {}
impl Plain for half::f16 {}
impl Plain for half::bf16 {}

#[cfg(target_endian = "big")]
compile_error!("lowp's table formats are little-endian; big-endian targets are not supported");

/// Reads the little-endian f32 at `bytes[at..at + 4]`.
pub(crate) fn read_f32(bytes: &[u8], at: usize) -> f32 {
    f32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// Reads the little-endian f16 at `bytes[at..at + 2]`, converted exactly to f32.
pub(crate) fn read_f16(bytes: &[u8], at: usize) -> f32 {
    half::f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

/// Reads the little-endian bf16 at `bytes[at..at + 2]`, converted exactly to f32.
pub(crate) fn read_bf16(bytes: &[u8], at: usize) -> f32 {
    half::bf16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

/// The `bits`-bit code of element `e` in a packed row (`bits` is 2, 4 or 8).
pub(crate) fn read_code(codes: &[u8], bits: u32, e: usize) -> u8 {
    let per_byte = (8 / bits) as usize;
    let shift = (e % per_byte) as u32 * bits;
    let mask = ((1u16 << bits) - 1) as u8;
    (codes[e / per_byte] >> shift) & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_bytes_match_fbgemm() {
        assert_eq!(Format::F32.row_bytes(37).unwrap(), 148);
        assert_eq!(Format::F16.row_bytes(37).unwrap(), 74);
        assert_eq!(Format::Bf16.row_bytes(8).unwrap(), 16);
        assert_eq!(Format::Q8.row_bytes(37).unwrap(), 45);
        assert_eq!(Format::Q4.row_bytes(37).unwrap(), 19 + 4);
        assert_eq!(Format::Q2.row_bytes(37).unwrap(), 10 + 4);
        assert_eq!(Format::Q2.row_bytes(0).unwrap(), 4);
    }

    #[test]
    fn table_size_is_checked() {
        let bytes = [0u8; 45 * 3];
        assert!(Table::new(Format::Q8, 3, 37, &bytes).is_ok());
        assert_eq!(
            Table::new(Format::Q8, 2, 37, &bytes).unwrap_err(),
            Error::TableSize {
                expected: 90,
                got: 135
            }
        );
        assert_eq!(
            Format::F32.table_bytes(usize::MAX / 2, 2).unwrap_err(),
            Error::SizeOverflow {
                what: "table bytes (rows × row bytes)"
            }
        );
        assert!(matches!(
            Format::F32.row_bytes(usize::MAX / 2),
            Err(Error::SizeOverflow { .. })
        ));
    }

    #[test]
    fn codes_unpack_lowest_bits_first() {
        let codes = [0b1110_0100u8, 0x21];
        assert_eq!(
            (0..4).map(|e| read_code(&codes, 2, e)).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        assert_eq!(
            (0..4).map(|e| read_code(&codes, 4, e)).collect::<Vec<_>>(),
            [4, 14, 1, 2]
        );
        assert_eq!(read_code(&codes, 8, 1), 0x21);
    }
}
