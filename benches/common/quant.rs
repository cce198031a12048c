//! Quantizer benchmark inputs, shared by `benches/quantize.rs` and the report: [`ROWS`] ×
//! [`DIM`] f32 values (256 KiB, the size of the in-cache read limit) quantized to a
//! row-wise format, and that table dequantized back. Each case holds the reference model's
//! bytes and values. [`LargeQuantInput`] is a whole f32 table far out of cache, as an
//! engine quantizes one (the report's out-of-cache quantizer rows).

use lowp::limits::HugeBuffer;
use lowp::registry::{Entry, Kernel, Op};
use lowp::{Format, Output, QuantInput, Table, reference};
use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};

/// Rows quantized per call.
pub const ROWS: usize = 512;
/// Elements per row.
pub const DIM: usize = 128;

/// f32 rows and their quantized table in one format.
pub struct QuantCase {
    /// The quantized format.
    pub format: Format,
    input: Vec<f32>,
    quantized: Vec<u8>,
    dequantized: Vec<f32>,
}

impl QuantCase {
    /// Random values in [−1, 1) quantized to `format` by the reference, and dequantized.
    pub fn new(format: Format) -> Self {
        let mut rng = TestRng::from_seed(RngAlgorithm::XorShift, &[5; 16]);
        let input: Vec<f32> = (0..ROWS * DIM)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        let mut quantized = vec![0; format.table_bytes(ROWS, DIM).expect("small table")];
        reference::quantize(format, QuantInput::F32(&input), ROWS, DIM, &mut quantized)
            .expect("valid benchmark inputs");
        let mut dequantized = vec![0.0; ROWS * DIM];
        let table = Table::new(format, ROWS, DIM, &quantized).expect("sized by the format");
        reference::dequantize(&table, &mut Output::F32(&mut dequantized))
            .expect("valid benchmark inputs");
        QuantCase {
            format,
            input,
            quantized,
            dequantized,
        }
    }

    /// Bytes of f32 values one call reads (quantize) or writes (dequantize).
    pub fn f32_bytes(&self) -> usize {
        4 * ROWS * DIM
    }

    /// Bytes of the quantized table.
    pub fn table_bytes(&self) -> usize {
        self.quantized.len()
    }

    /// Runs `entry`'s quantizer itself (no dispatch) into `out`.
    ///
    /// # Panics
    ///
    /// If `entry` is not a quantizer for this format, `out` does not hold
    /// [`Self::table_bytes`], or the kernel fails.
    pub fn quantize(&self, entry: &Entry, out: &mut [u8]) {
        let Kernel::Quantize(kernel) = entry.kernel else {
            panic!("{} is not a quantizer", entry.op);
        };
        assert_eq!(entry.op, Op::Quantize(self.format));
        assert_eq!(out.len(), self.quantized.len());
        // SAFETY: a quantized format, ROWS × DIM input values and an output of exactly the
        // table's size (asserted above): the checks the quantizer contract asks for, which
        // the reference also passed with these arguments in `new`.
        unsafe { kernel(self.format, QuantInput::F32(&self.input), ROWS, DIM, out) }
            .expect("valid benchmark inputs");
    }

    /// Whether `out` holds the reference quantizer's bytes.
    pub fn quantized_is_exact(&self, out: &[u8]) -> bool {
        out == self.quantized
    }

    /// Runs `entry`'s dequantizer itself (no dispatch) into `out` (`ROWS × DIM` values).
    ///
    /// # Panics
    ///
    /// If `entry` is not a dequantizer for this format, `out` has the wrong size, or the
    /// kernel fails.
    pub fn dequantize(&self, entry: &Entry, out: &mut [f32]) {
        let Kernel::Dequantize(kernel) = entry.kernel else {
            panic!("{} is not a dequantizer", entry.op);
        };
        assert_eq!(entry.op, Op::Dequantize(self.format));
        assert_eq!(out.len(), self.dequantized.len());
        let table = Table::new(self.format, ROWS, DIM, &self.quantized).expect("sized");
        // SAFETY: a quantized table from its checking constructor and room for exactly its
        // ROWS × DIM values (asserted above): the dequantizer contract, which the reference
        // also passed with these arguments in `new`.
        unsafe { kernel(&table, &mut Output::F32(out)) }.expect("valid benchmark inputs");
    }

    /// Whether `out` holds the reference dequantizer's bits.
    pub fn dequantized_is_exact(&self, out: &[f32]) -> bool {
        out.len() == self.dequantized.len()
            && out
                .iter()
                .zip(&self.dequantized)
                .all(|(x, y)| x.to_bits() == y.to_bits())
    }
}

/// A whole f32 table of `bytes` bytes (rows of [`DIM`] values in [−1, 1)), for quantizing
/// from memory: the report sizes it like the out-of-cache read limit, far beyond the L3.
/// It lives in a [`HugeBuffer`], as the limit's buffer does, so that the quantizer reads
/// the same kind of pages as the limit it is divided by: on 4 KiB pages the quantizers
/// read at about 0.6 of their rate on 2 MiB pages (TLB misses and the hardware prefetcher
/// stopping at every page boundary), which would measure the allocation, not the kernel.
pub struct LargeQuantInput {
    buffer: HugeBuffer,
}

impl LargeQuantInput {
    /// Rows of the reference checks [`Self::quantized_prefix_is_exact`] makes (the
    /// reference would take seconds over the whole table).
    pub const CHECKED_ROWS: usize = 4096;

    /// `bytes / (4 · DIM)` rows of pseudo-random values.
    ///
    /// # Panics
    ///
    /// If the buffer cannot be mapped.
    pub fn new(bytes: usize) -> Self {
        let mut buffer = HugeBuffer::new(bytes / (4 * DIM) * 4 * DIM).expect("the f32 table");
        // A xorshift stream, not the proptest generator: a gibibyte of values must take
        // a fraction of a second.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for value in buffer.chunks_exact_mut(4) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // 24 random bits over [−1, 1): exact in f32.
            let x = (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
            value.copy_from_slice(&x.to_le_bytes());
        }
        LargeQuantInput { buffer }
    }

    /// The table's values.
    fn values(&self) -> &[f32] {
        // SAFETY: every bit pattern is a valid f32; `align_to` puts only whole, aligned f32
        // in the middle part (and the buffer is 2 MiB aligned, so the prefix is empty).
        let (head, values, _) = unsafe { self.buffer.align_to::<f32>() };
        assert!(head.is_empty(), "HugeBuffer is 2 MiB aligned");
        values
    }

    /// Rows of the table.
    pub fn rows(&self) -> usize {
        self.values().len() / DIM
    }

    /// Bytes of f32 values one call reads.
    pub fn f32_bytes(&self) -> usize {
        4 * self.values().len()
    }

    /// Bytes of the whole table quantized to `format`.
    pub fn table_bytes(&self, format: Format) -> usize {
        format.table_bytes(self.rows(), DIM).expect("fits memory")
    }

    /// Runs `entry`'s quantizer itself (no dispatch) over the whole table into `out`.
    ///
    /// # Panics
    ///
    /// If `entry` is not a quantizer, `out` does not hold [`Self::table_bytes`] for its
    /// format, or the kernel fails.
    pub fn quantize(&self, entry: &Entry, out: &mut [u8]) {
        let (Kernel::Quantize(kernel), Op::Quantize(format)) = (entry.kernel, entry.op) else {
            panic!("{} is not a quantizer", entry.op);
        };
        assert_eq!(out.len(), self.table_bytes(format));
        // SAFETY: a quantized format, rows × DIM input values and an output of exactly the
        // table's size (asserted above): the checks the quantizer contract asks for.
        unsafe {
            kernel(
                format,
                QuantInput::F32(self.values()),
                self.rows(),
                DIM,
                out,
            )
        }
        .expect("valid benchmark inputs");
    }

    /// Whether the first [`Self::CHECKED_ROWS`] rows of `out` (the table quantized to
    /// `format`) hold the reference quantizer's bytes.
    pub fn quantized_prefix_is_exact(&self, format: Format, out: &[u8]) -> bool {
        let rows = Self::CHECKED_ROWS.min(self.rows());
        let mut expected = vec![0; format.table_bytes(rows, DIM).expect("small table")];
        let input = QuantInput::F32(&self.values()[..rows * DIM]);
        reference::quantize(format, input, rows, DIM, &mut expected)
            .expect("valid benchmark inputs");
        out.starts_with(&expected)
    }
}
