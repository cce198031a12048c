//! The row-wise quantizer and dequantizer loops that every `quantize_*` kernel instantiates
//! with its own vector type (the [`Simd`] of the embedding-bag kernels plus [`QuantSimd`]).
//!
//! The arithmetic is the reference's (`crate::reference::quantize`) by construction:
//! - the min and max are exact whatever order lanes are reduced in; only the sign of a zero
//!   minimum or maximum depends on which element is first, and that is settled by a scan
//!   for the first zero, as the reference picks it;
//! - the scale, bias and reciprocal of each row come from the reference's own
//!   `row_params`, once per row;
//! - each code is `round_half_even((x − offset) · inv)` in f32, lane by lane, then clamped
//!   to `[0, levels]` as an integer, as the reference clamps;
//! - dequantized values are the same single fused multiply-add per element.
//!
//! A row is read twice from L1: once for its range, once for its codes; the second pass
//! rounds, narrows and packs four vectors of codes at a time, so a Q8 row of dimension 128
//! costs two packing steps. A row holding NaN or an infinity is handed to the reference,
//! which names the column.
//!
//! Calls with at least 16 MiB of output (a table far out of cache) prefetch their input a
//! few rows ahead and write their output past the caches in whole lines
//! ([`quantize_stream`](crate::arch::quantize_stream)); the bytes are the same either way.

use crate::arch::prefetch::prefetch_lines;
use crate::arch::quantize_stream::{LineWriter, MAX_STAGED_ROW, STREAM_MIN_BYTES};
use crate::arch::sls::{ROW_BF16, ROW_F16, ROW_F32, Simd};
use crate::embedding::Output;
use crate::embedding::plan::PrefetchHint;
use crate::error::{Error, Result};
use crate::format::{Format, Table, read_code, read_f16, read_f32};
use crate::quantize::QuantInput;
use crate::reference::quantize::{RowParams, check_finite, min_max, row_params};

/// Elements the dequantizer handles per step: a multiple of every vector width (4, 8, 16
/// lanes) and of every codes-per-byte count, so each step reads whole code bytes.
const CHUNK: usize = 16;

/// The operations quantizers need beyond the embedding-bag ones.
///
/// Implementations are `#[inline(always)]` so they compile into the `#[target_feature]`
/// kernel that calls [`quantize`] or [`dequantize`]; every method may only run where that
/// kernel may.
pub(crate) trait QuantSimd: Simd {
    /// Whether [`QuantSimd::min`], [`QuantSimd::max`] and the reductions return NaN when
    /// a lane is NaN (NEON's `fmin`/`fmax`); x86's `vminps`/`vmaxps` may drop it, so their
    /// rows are checked for NaN separately.
    const MIN_MAX_KEEP_NAN: bool;
    /// Lane-wise minimum (which zero is returned does not matter).
    unsafe fn min(a: Self::V, b: Self::V) -> Self::V;
    /// Lane-wise maximum (as [`QuantSimd::min`]).
    unsafe fn max(a: Self::V, b: Self::V) -> Self::V;
    /// The smallest lane.
    unsafe fn reduce_min(v: Self::V) -> f32;
    /// The largest lane.
    unsafe fn reduce_max(v: Self::V) -> f32;
    /// Whether every lane is +0 or −0 (not when one is NaN).
    unsafe fn all_zero(v: Self::V) -> bool;
    /// Rounds the `4 · LANES` values of `v` (finite, at most `i32::MAX` in magnitude) to the
    /// nearest integer, ties to even, clamps them to `[0, 2^BITS − 1]`, and stores them at
    /// `p` (unaligned) as `BITS`-bit codes, packed as the quantized formats pack them:
    /// `4 · LANES · BITS / 8` bytes.
    unsafe fn store_codes<const BITS: u32>(p: *mut u8, v: [Self::V; 4]);
    /// `LANES` bytes at `p` (unaligned), converted to f32.
    unsafe fn load_codes(p: *const u8) -> Self::V;
}

/// The running range of some vectors: lane-wise minimum and maximum, and `x · 0` summed
/// over them (±0 while every value is finite, NaN from the first NaN or infinity on).
#[derive(Clone, Copy)]
struct Range<V> {
    lo: V,
    hi: V,
    poison: V,
}

impl<V: Copy> Range<V> {
    /// The range of `v`.
    #[inline(always)]
    unsafe fn of<S: QuantSimd<V = V>>(v: V) -> Self {
        // SAFETY: only called from code compiled for `S`.
        let poison = unsafe { S::mul(v, S::zero()) };
        Range {
            lo: v,
            hi: v,
            poison,
        }
    }

    /// The range widened by the lanes of `v`.
    #[inline(always)]
    unsafe fn add<S: QuantSimd<V = V>>(self, v: V) -> Self {
        // SAFETY: only called from code compiled for `S`.
        unsafe {
            Range {
                lo: S::min(self.lo, v),
                hi: S::max(self.hi, v),
                poison: if S::MIN_MAX_KEEP_NAN {
                    self.poison
                } else {
                    S::fma(v, S::zero(), self.poison)
                },
            }
        }
    }

    /// The range of both.
    #[inline(always)]
    unsafe fn join<S: QuantSimd<V = V>>(self, other: Self) -> Self {
        // SAFETY: only called from code compiled for `S`.
        unsafe {
            Range {
                lo: S::min(self.lo, other.lo),
                hi: S::max(self.hi, other.hi),
                poison: S::add(self.poison, other.poison),
            }
        }
    }

    /// The smallest and largest value seen, or `None` when there was a NaN or an infinity.
    #[inline(always)]
    unsafe fn reduce<S: QuantSimd<V = V>>(self) -> Option<(f32, f32)> {
        // SAFETY: only called from code compiled for `S`.
        unsafe {
            let (lo, hi) = (S::reduce_min(self.lo), S::reduce_max(self.hi));
            // Infinities reach the minimum or the maximum; a NaN reaches them where min and
            // max keep it, else it shows in the poison.
            (lo.is_finite() && hi.is_finite() && S::all_zero(self.poison)).then_some((lo, hi))
        }
    }
}

/// Bytes of one input element of format `FMT` (`ROW_F32` or `ROW_F16`).
const fn elem_bytes(fmt: u8) -> usize {
    if fmt == ROW_F32 { 4 } else { 2 }
}

/// Input element `i` of format `FMT` at `p`, as f32.
#[inline(always)]
unsafe fn scalar_at<const FMT: u8>(p: *const u8, i: usize) -> f32 {
    // SAFETY: the caller provides element `i` at `p`; the reads are unaligned.
    unsafe {
        if FMT == ROW_F32 {
            p.cast::<f32>().add(i).read_unaligned()
        } else {
            half::f16::from_bits(p.cast::<u16>().add(i).read_unaligned()).to_f32()
        }
    }
}

/// Quantizes `rows × dim` values into `out` in `format`, with vector type `S`.
///
/// # Safety
///
/// The CPU runs `S`'s instructions; the arguments passed `quantize::check_quantize`.
#[inline(always)]
pub(crate) unsafe fn quantize<S: QuantSimd>(
    format: Format,
    input: QuantInput<'_>,
    rows: usize,
    dim: usize,
    out: &mut [u8],
) -> Result<()> {
    let (fmt, p) = match input {
        QuantInput::F32(s) => (ROW_F32, s.as_ptr().cast::<u8>()),
        QuantInput::F16(s) => (ROW_F16, s.as_ptr().cast::<u8>()),
    };
    let row_bytes = format.row_bytes(dim)?;
    // SAFETY: forwarded from this function's contract.
    unsafe {
        match (fmt, format) {
            (ROW_F32, Format::Q8) => rows_of::<S, ROW_F32, 8>(p, rows, dim, out, row_bytes),
            (ROW_F32, Format::Q4) => rows_of::<S, ROW_F32, 4>(p, rows, dim, out, row_bytes),
            (ROW_F32, _) => rows_of::<S, ROW_F32, 2>(p, rows, dim, out, row_bytes),
            (_, Format::Q8) => rows_of::<S, ROW_F16, 8>(p, rows, dim, out, row_bytes),
            (_, Format::Q4) => rows_of::<S, ROW_F16, 4>(p, rows, dim, out, row_bytes),
            _ => rows_of::<S, ROW_F16, 2>(p, rows, dim, out, row_bytes),
        }
    }
}

/// Bytes ahead of the row being quantized that the streamed path prefetches into L1 (four
/// f32 rows of dimension 128). Over a 1 GiB table on 2 MiB pages the hardware prefetchers
/// alone left the AVX-512 quantizers waiting on memory; 1.5 to 2.5 KiB ahead measured best
/// (Q8 0.67 → 0.73, Q4 0.62 → 0.70 of the sequential-read limit), 4 KiB clearly worse.
const PREFETCH_AHEAD: usize = 2048;

/// The quantizer for input format `FMT` and `BITS`-bit codes. Large outputs (whose input
/// is then four to sixteen times larger, far out of cache) are streamed past the caches
/// ([`quantize_stream`](crate::arch::quantize_stream)) with the input prefetched
/// [`PREFETCH_AHEAD`] bytes ahead; others are written in place.
#[inline(always)]
unsafe fn rows_of<S: QuantSimd, const FMT: u8, const BITS: u32>(
    input: *const u8,
    rows: usize,
    dim: usize,
    out: &mut [u8],
    row_bytes: usize,
) -> Result<()> {
    // SAFETY: `check_quantize` provided `rows · dim` input elements and `rows · row_bytes`
    // output bytes, so each row below reads its own `dim` elements and gets `row_bytes`.
    unsafe {
        if out.len() >= STREAM_MIN_BYTES && row_bytes <= MAX_STAGED_ROW {
            let mut writer = LineWriter::new(out);
            let row_in = dim * elem_bytes(FMT);
            let result = (0..rows).try_for_each(|row| {
                let ahead = input.wrapping_add(row * row_in + PREFETCH_AHEAD);
                prefetch_lines(ahead, row_in, false, PrefetchHint::L1);
                row_of::<S, FMT, BITS>(input, row, dim, writer.row(row_bytes))
            });
            writer.finish();
            result
        } else {
            out.chunks_exact_mut(row_bytes)
                .take(rows)
                .enumerate()
                .try_for_each(|(row, out_row)| row_of::<S, FMT, BITS>(input, row, dim, out_row))
        }
    }
}

/// Quantizes row `row` of the table at `input` into `out_row`.
///
/// # Safety
///
/// The table holds that row's `dim` elements; `out_row` is a whole quantized row; the CPU
/// runs `S`.
#[inline(always)]
unsafe fn row_of<S: QuantSimd, const FMT: u8, const BITS: u32>(
    input: *const u8,
    row: usize,
    dim: usize,
    out_row: &mut [u8],
) -> Result<()> {
    // SAFETY: forwarded from the contract.
    unsafe {
        let x = input.add(row * dim * elem_bytes(FMT));
        let range = match row_range::<S, FMT>(x, dim) {
            Some(range) => Ok(range),
            // The reference's checks name the column (and would find the range).
            None => {
                let values: Vec<f32> = (0..dim).map(|i| scalar_at::<FMT>(x, i)).collect();
                check_finite(&values).map(|()| min_max(&values))
            }
        };
        let params = range
            .and_then(|(min, max)| row_params(BITS, min, max))
            .map_err(|reason| Error::UnrepresentableRow { row, reason })?;
        write_codes::<S, FMT, BITS>(x, dim, &params, out_row);
    }
    Ok(())
}

/// The row's first minimal and first maximal elements, or `None` when it holds a NaN or an
/// infinity (or is empty: `(0, 0)`, as the reference).
///
/// # Safety
///
/// `dim` readable elements at `x`; the CPU runs `S`.
#[inline(always)]
unsafe fn row_range<S: QuantSimd, const FMT: u8>(x: *const u8, dim: usize) -> Option<(f32, f32)> {
    let full = dim - dim % S::LANES;
    let mut lo = f32::INFINITY;
    let mut hi = f32::NEG_INFINITY;
    let mut finite = true;
    let at = |i: usize| x.wrapping_add(i * elem_bytes(FMT));
    // SAFETY: vectors read elements `0..full`, the scalar loop `full..dim`.
    unsafe {
        if full > 0 {
            // Two independent chains, so that the row's vectors need not wait on each
            // other's latency.
            let mut even = Range::of::<S>(S::load::<FMT>(x));
            let mut odd = even;
            let mut i = S::LANES;
            while i + 2 * S::LANES <= full {
                odd = odd.add::<S>(S::load::<FMT>(at(i)));
                even = even.add::<S>(S::load::<FMT>(at(i + S::LANES)));
                i += 2 * S::LANES;
            }
            if i < full {
                odd = odd.add::<S>(S::load::<FMT>(at(i)));
            }
            match even.join::<S>(odd).reduce::<S>() {
                Some((l, h)) => (lo, hi) = (l, h),
                None => finite = false,
            }
        }
        for i in full..dim {
            let v = scalar_at::<FMT>(x, i);
            finite &= v.is_finite();
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if !finite {
            return None;
        }
        if dim == 0 {
            return Some((0.0, 0.0));
        }
        // Equal values differ only in the sign of zero; the reference keeps the first.
        if lo == 0.0 {
            lo = first_zero::<FMT>(x, dim);
        }
        if hi == 0.0 {
            hi = first_zero::<FMT>(x, dim);
        }
    }
    Some((lo, hi))
}

/// The first element of the row equal to zero (+0 or −0); the caller knows there is one.
#[inline(always)]
unsafe fn first_zero<const FMT: u8>(x: *const u8, dim: usize) -> f32 {
    // SAFETY: `dim` readable elements at `x`.
    unsafe {
        (0..dim)
            .map(|i| scalar_at::<FMT>(x, i))
            .find(|v| *v == 0.0)
            .unwrap_or(0.0)
    }
}

/// Writes the codes of the row at `x` and the scale and bias of `params` into `out_row`.
///
/// # Safety
///
/// `dim` readable elements at `x`; `out_row` is a whole row of `BITS`-bit codes for `dim`
/// and its scale and bias; the CPU runs `S`.
#[inline(always)]
unsafe fn write_codes<S: QuantSimd, const FMT: u8, const BITS: u32>(
    x: *const u8,
    dim: usize,
    params: &RowParams,
    out_row: &mut [u8],
) {
    let code_bytes = (dim * BITS as usize).div_ceil(8);
    let (codes, scale_bias) = out_row.split_at_mut(code_bytes);
    scale_bias.copy_from_slice(params.scale_bias());
    let out = codes.as_mut_ptr();
    let group = 4 * S::LANES;
    // SAFETY: whole groups read elements `col..col + group` and write their
    // `group · BITS / 8` code bytes from `col · BITS / 8`; the tail reads its `n` elements
    // and writes the `⌈n · BITS / 8⌉` bytes holding their codes, all within the row.
    unsafe {
        let offset = S::splat(-params.offset);
        let inv = S::splat(params.inv);
        // `v + (−offset)` is `v − offset` bit for bit (IEEE defines subtraction so).
        let scaled = |v: S::V| S::mul(S::add(v, offset), inv);
        let mut col = 0;
        while col + group <= dim {
            let src = x.add(col * elem_bytes(FMT));
            let at = |k: usize| src.add(k * S::LANES * elem_bytes(FMT));
            let v = [
                scaled(S::load::<FMT>(at(0))),
                scaled(S::load::<FMT>(at(1))),
                scaled(S::load::<FMT>(at(2))),
                scaled(S::load::<FMT>(at(3))),
            ];
            S::store_codes::<BITS>(out.add(col * BITS as usize / 8), v);
            col += group;
        }
        if col < dim {
            let n = dim - col;
            let src = x.add(col * elem_bytes(FMT));
            let mut v = [S::zero(); 4];
            for (k, v) in v.iter_mut().enumerate() {
                let first = k * S::LANES;
                if first >= n {
                    break;
                }
                let p = src.add(first * elem_bytes(FMT));
                *v = scaled(if n - first >= S::LANES {
                    S::load::<FMT>(p)
                } else {
                    S::load_part::<FMT>(p, n - first)
                });
            }
            let mut buf = [0u8; 64];
            S::store_codes::<BITS>(buf.as_mut_ptr(), v);
            let bytes = (n * BITS as usize).div_ceil(8);
            // Codes of the padding lanes must not reach the unused bits of the last byte.
            let used_bits = (n * BITS as usize) % 8;
            if used_bits != 0 {
                buf[bytes - 1] &= (1u8 << used_bits) - 1;
            }
            std::ptr::copy_nonoverlapping(buf.as_ptr(), out.add(col * BITS as usize / 8), bytes);
        }
    }
}

/// Spreads the low `BITS` bytes of `packed` to eight codes, one per byte, undoing the
/// quantized formats' packing.
#[inline(always)]
fn unpack<const BITS: u32>(packed: u64) -> u64 {
    if BITS == 4 {
        let x = (packed | (packed << 16)) & 0x0000_FFFF_0000_FFFF;
        let x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
        (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F
    } else {
        let x = (packed | (packed << 24)) & 0x0000_00FF_0000_00FF;
        let x = (x | (x << 12)) & 0x000F_000F_000F_000F;
        (x | (x << 6)) & 0x0303_0303_0303_0303
    }
}

/// Dequantizes every row of `table` into `out`, with vector type `S`.
///
/// # Safety
///
/// The CPU runs `S`'s instructions; the arguments passed `quantize::check_dequantize`.
#[inline(always)]
pub(crate) unsafe fn dequantize<S: QuantSimd>(
    table: &Table<'_>,
    out: &mut Output<'_>,
) -> Result<()> {
    let (out_type, p) = match out {
        Output::F32(s) => (ROW_F32, s.as_mut_ptr().cast::<u8>()),
        Output::F16(s) => (ROW_F16, s.as_mut_ptr().cast::<u8>()),
        Output::Bf16(s) => (ROW_BF16, s.as_mut_ptr().cast::<u8>()),
    };
    // SAFETY: forwarded from this function's contract.
    unsafe {
        match (table.format(), out_type) {
            (Format::Q8, ROW_F32) => dequantize_rows::<S, 8, ROW_F32>(table, p),
            (Format::Q8, ROW_F16) => dequantize_rows::<S, 8, ROW_F16>(table, p),
            (Format::Q8, _) => dequantize_rows::<S, 8, ROW_BF16>(table, p),
            (Format::Q4, ROW_F32) => dequantize_rows::<S, 4, ROW_F32>(table, p),
            (Format::Q4, ROW_F16) => dequantize_rows::<S, 4, ROW_F16>(table, p),
            (Format::Q4, _) => dequantize_rows::<S, 4, ROW_BF16>(table, p),
            (_, ROW_F32) => dequantize_rows::<S, 2, ROW_F32>(table, p),
            (_, ROW_F16) => dequantize_rows::<S, 2, ROW_F16>(table, p),
            _ => dequantize_rows::<S, 2, ROW_BF16>(table, p),
        }
    }
    Ok(())
}

/// The dequantizer for `BITS`-bit codes and output type `OUT`.
///
/// # Safety
///
/// As [`dequantize`]; `out` holds `rows × dim` elements of type `OUT`.
#[inline(always)]
unsafe fn dequantize_rows<S: QuantSimd, const BITS: u32, const OUT: u8>(
    table: &Table<'_>,
    out: *mut u8,
) {
    let dim = table.dim();
    let at = (dim * BITS as usize).div_ceil(8);
    for r in 0..table.rows() {
        let row = table.row(r);
        let (scale, bias) = if BITS == 8 {
            (read_f32(row, at), read_f32(row, at + 4))
        } else {
            (read_f16(row, at), read_f16(row, at + 2))
        };
        // SAFETY: the output holds `rows × dim` elements (check_dequantize); chunks write
        // elements `col..col + n` of row `r` and read only this row's code bytes.
        unsafe {
            let scale = S::splat(scale);
            let bias = S::splat(bias);
            let dst = out.add(r * dim * elem_bytes(OUT));
            let mut col = 0;
            while col < dim {
                let n = (dim - col).min(CHUNK);
                let o = dst.add(col * elem_bytes(OUT));
                // Whole chunks get a constant `n`, so their loops and copies are unrolled.
                if n == CHUNK {
                    decode_chunk::<S, BITS, OUT>(row, col, CHUNK, o, scale, bias);
                } else {
                    decode_chunk::<S, BITS, OUT>(row, col, n, o, scale, bias);
                }
                col += n;
            }
        }
    }
}

/// Writes `scale · q + bias` for the codes of elements `col..col + n` (`n ≤ CHUNK`) of the
/// quantized `row` to `out`, as output type `OUT`.
///
/// # Safety
///
/// The row holds those codes; `n` writable elements of type `OUT` at `out`; the CPU runs
/// `S`.
#[inline(always)]
unsafe fn decode_chunk<S: QuantSimd, const BITS: u32, const OUT: u8>(
    row: &[u8],
    col: usize,
    n: usize,
    out: *mut u8,
    scale: S::V,
    bias: S::V,
) {
    let mut buf = [0u8; CHUNK];
    if n == CHUNK {
        // A whole chunk's codes are `2 · BITS` bytes (16 for Q8) at `col · BITS / 8`.
        let src = &row[col * BITS as usize / 8..][..2 * BITS as usize];
        if BITS == 8 {
            buf.copy_from_slice(src);
        } else {
            let mut packed = [0u8; 8];
            packed[..src.len()].copy_from_slice(src);
            let word = u64::from_le_bytes(packed);
            buf[..8]
                .copy_from_slice(&unpack::<BITS>(word & ((1u64 << (8 * BITS)) - 1)).to_le_bytes());
            buf[8..].copy_from_slice(&unpack::<BITS>(word >> (8 * BITS)).to_le_bytes());
        }
    } else {
        for (e, b) in buf.iter_mut().enumerate().take(n) {
            *b = read_code(row, BITS, col + e);
        }
    }
    // SAFETY: vectors read `LANES ≤ CHUNK − k` bytes of `buf` and write elements
    // `k..k + min(LANES, n − k)` of the caller's `n`.
    unsafe {
        for k in (0..n).step_by(S::LANES) {
            let v = S::fma(scale, S::load_codes(buf.as_ptr().add(k)), bias);
            let o = out.add(k * elem_bytes(OUT));
            if n - k >= S::LANES {
                S::store::<OUT>(o, v);
            } else {
                S::store_part::<OUT>(o, v, n - k);
            }
        }
    }
}

/// Defines this instruction set's `quantize` and `dequantize` registry kernels: `#[target_feature]`
/// entry points that run the generic loops with vector type `$simd`.
macro_rules! quantize_kernels {
    ($simd:ty, $features:literal, $name:literal) => {
        #[doc = concat!($name, " quantizer of rows into a row-wise quantized format.")]
        ///
        /// # Safety
        ///
        #[doc = concat!("The CPU has ", $features, "; the arguments passed `quantize::check_quantize`.")]
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn quantize(
            format: crate::format::Format,
            input: crate::quantize::QuantInput<'_>,
            rows: usize,
            dim: usize,
            out: &mut [u8],
        ) -> crate::error::Result<()> {
            // SAFETY: this function's contract is `quantize::quantize`'s, with the features
            // of `$simd` enabled here.
            unsafe { crate::arch::quantize::quantize::<$simd>(format, input, rows, dim, out) }
        }

        #[doc = concat!($name, " dequantizer of a row-wise quantized table.")]
        ///
        /// # Safety
        ///
        #[doc = concat!("The CPU has ", $features, "; the arguments passed `quantize::check_dequantize`.")]
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn dequantize(
            table: &crate::format::Table<'_>,
            out: &mut crate::embedding::Output<'_>,
        ) -> crate::error::Result<()> {
            // SAFETY: as for `quantize`.
            unsafe { crate::arch::quantize::dequantize::<$simd>(table, out) }
        }
    };
}
pub(crate) use quantize_kernels;
