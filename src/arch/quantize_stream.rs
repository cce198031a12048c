//! Non-temporal output for the quantizers: rows are written into a small staging buffer in
//! L1 and leave it in whole, aligned 64-byte lines stored past the caches.
//!
//! A quantized table is a quarter (Q8) to a sixteenth (Q2) of its f32 input, and over a
//! large table every output line is written once and evicted long before anyone reads it.
//! Ordinary stores first read each line from memory (read for ownership), which for Q8
//! adds a quarter to the memory reads and measured 0.73 of the sequential-read limit for a
//! plain read-plus-store loop at Q8's output rate, against 0.80 with non-temporal stores.
//! Rows are rarely line-aligned (a Q8 row of dimension 128 is 136 bytes), so they are
//! staged: only the partial lines at the two ends of the output, which share bytes with
//! whatever lies around it, are stored ordinarily.

/// Outputs at least this large are streamed: more than the L2 of any current server core
/// and a fair share of its L3, so the caches could not keep them for the caller anyway.
/// Smaller ones (a few rows, or an engine's per-thread slice of a modest table) are
/// written in place, so a reader that follows finds them in cache.
pub(crate) const STREAM_MIN_BYTES: usize = 16 << 20;

/// Bytes of the staging buffer: a few rows of any common dimension, well inside L1.
const STAGE_BYTES: usize = 4096;

/// The longest row [`LineWriter`] stages: at least two rows per flush, so most of each
/// flush is whole lines.
pub(crate) const MAX_STAGED_ROW: usize = STAGE_BYTES / 2;

const LINE: usize = 64;

#[repr(C, align(64))]
struct Stage([u8; STAGE_BYTES]);

/// Streams consecutive rows into an output slice: [`LineWriter::row`] hands out the
/// staging bytes for the next row, [`LineWriter::finish`] writes what is left.
pub(crate) struct LineWriter {
    stage: Stage,
    /// The output address of `stage[0]`: line-aligned, so `stage` and the output agree
    /// modulo 64. Before the first flush it may lie before the output's first byte, so it
    /// is only ever offset with wrapping arithmetic.
    base: *mut u8,
    /// The first stage byte that belongs to the output (nonzero only until the first
    /// flush, when the output does not start on a line).
    first: usize,
    /// Stage bytes filled so far.
    fill: usize,
}

impl LineWriter {
    /// A writer whose first row goes to the start of `out`.
    pub(crate) fn new(out: &mut [u8]) -> Self {
        let first = out.as_ptr() as usize % LINE;
        LineWriter {
            stage: Stage([0; STAGE_BYTES]),
            base: out.as_mut_ptr().wrapping_sub(first),
            first,
            fill: first,
        }
    }

    /// The staging bytes of the next `len ≤ MAX_STAGED_ROW` output bytes.
    ///
    /// # Safety
    ///
    /// The output passed to [`LineWriter::new`] has `len` more bytes after those of the
    /// rows handed out before.
    #[inline(always)]
    pub(crate) unsafe fn row(&mut self, len: usize) -> &mut [u8] {
        if self.fill + len > STAGE_BYTES {
            // SAFETY: forwarded; the staged bytes all lie in the output.
            unsafe { self.flush(false) };
        }
        let start = self.fill;
        self.fill += len;
        &mut self.stage.0[start..start + len]
    }

    /// Writes every staged byte to the output and orders the non-temporal stores before
    /// any later store, so whoever the caller hands the output to sees all of it.
    ///
    /// # Safety
    ///
    /// As for [`LineWriter::row`]: every byte handed out lies in the output.
    pub(crate) unsafe fn finish(mut self) {
        // SAFETY: forwarded.
        unsafe {
            self.flush(true);
            #[cfg(target_arch = "x86_64")]
            std::arch::x86_64::_mm_sfence();
        }
    }

    /// Stores the staged bytes: a leading partial line (the output's first) and, when
    /// `last`, a trailing one ordinarily, whole lines non-temporally; otherwise the trailing
    /// partial line moves to the front of the stage to be completed by the next rows.
    ///
    /// # Safety
    ///
    /// Stage bytes `first..fill` stand for output bytes.
    #[inline(never)]
    unsafe fn flush(&mut self, last: bool) {
        let stage = self.stage.0.as_ptr();
        let mut at = self.first;
        // SAFETY: bytes `first..fill` of the stage are output bytes at `base + first ..
        // base + fill`; whole lines lie within them and are line-aligned because `base` is.
        unsafe {
            if !at.is_multiple_of(LINE) {
                let end = at.next_multiple_of(LINE).min(self.fill);
                std::ptr::copy_nonoverlapping(stage.add(at), self.base.wrapping_add(at), end - at);
                at = end;
            }
            while at + LINE <= self.fill {
                stream_line(self.base.wrapping_add(at), stage.add(at));
                at += LINE;
            }
            if last {
                let rest = self.fill - at;
                std::ptr::copy_nonoverlapping(stage.add(at), self.base.wrapping_add(at), rest);
            } else {
                self.stage.0.copy_within(at..self.fill, 0);
                self.base = self.base.wrapping_add(at);
                self.fill -= at;
            }
        }
        self.first = 0;
    }
}

/// Copies the 64 bytes at `src` (line-aligned) to the line at `dst` with non-temporal
/// stores: SSE2's `movntdq` (every x86-64 CPU has it; four 16-byte stores fill one
/// write-combining buffer) or Arm's `stnp`.
///
/// # Safety
///
/// 64 readable bytes at `src` and 64 writable bytes at `dst`, both 64-byte aligned.
#[inline(always)]
unsafe fn stream_line(dst: *mut u8, src: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of x86-64; the caller provides the aligned lines.
    unsafe {
        use std::arch::x86_64::*;
        let (d, s) = (dst.cast::<__m128i>(), src.cast::<__m128i>());
        for k in 0..4 {
            _mm_stream_si128(d.add(k), _mm_load_si128(s.add(k)));
        }
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: `ldp`/`stnp` of q registers are base aarch64 (Advanced SIMD); the caller
    // provides the lines.
    unsafe {
        std::arch::asm!(
            "ldp {a:q}, {b:q}, [{s}]",
            "ldp {c:q}, {d:q}, [{s}, #32]",
            "stnp {a:q}, {b:q}, [{o}]",
            "stnp {c:q}, {d:q}, [{o}, #32]",
            s = in(reg) src,
            o = in(reg) dst,
            a = out(vreg) _,
            b = out(vreg) _,
            c = out(vreg) _,
            d = out(vreg) _,
            options(nostack, preserves_flags),
        );
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    // SAFETY: as above.
    unsafe {
        std::ptr::copy_nonoverlapping(src, dst, LINE)
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of every length up to a staged maximum, at every offset within a line, land
    /// exactly where ordinary stores would put them, and the bytes around the output stay.
    #[test]
    fn streamed_rows_land_in_place() {
        let mut buf = vec![0u8; 40 * MAX_STAGED_ROW + 256];
        let aligned = (LINE - buf.as_ptr() as usize % LINE) % LINE;
        for row_len in [1, 5, 16, 36, 63, 64, 65, 136, 1000, MAX_STAGED_ROW] {
            for offset in [0, 1, 8, 13, 63] {
                for rows in [0, 1, 2, 3, 7, 40] {
                    let (start, len) = (aligned + offset, rows * row_len);
                    buf.fill(0xA5);
                    let mut writer = LineWriter::new(&mut buf[start..start + len]);
                    for r in 0..rows {
                        // SAFETY: the output holds `rows · row_len` bytes.
                        let row = unsafe { writer.row(row_len) };
                        for (i, b) in row.iter_mut().enumerate() {
                            *b = (r * 7 + i) as u8;
                        }
                    }
                    // SAFETY: as above.
                    unsafe { writer.finish() };
                    let expected =
                        (0..rows).flat_map(|r| (0..row_len).map(move |i| (r * 7 + i) as u8));
                    assert!(
                        buf[start..start + len].iter().copied().eq(expected),
                        "{row_len} {offset} {rows}"
                    );
                    assert!(buf[..start].iter().all(|&b| b == 0xA5));
                    assert!(buf[start + len..].iter().all(|&b| b == 0xA5));
                }
            }
        }
    }
}
