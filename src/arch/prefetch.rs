//! A portable software-prefetch hint: the one prefetch of the crate, used by the
//! embedding-bag kernels of every instruction set and by the gather limits alike, so a
//! kernel and the limit it is judged against issue the same instruction.

use crate::embedding::plan::PrefetchHint;

/// Asks the CPU to bring the cache line holding `p` towards the core, to the level `hint`
/// names. A hint only: it never faults and never changes memory, so any address (even a
/// dangling one) is fine. A no-op on architectures without a prefetch instruction.
#[inline(always)]
pub fn prefetch(p: *const u8, hint: PrefetchHint) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY: the prefetch instructions are part of SSE, which every x86-64 CPU has;
        // they neither fault nor change architecturally visible state, whatever the address.
        unsafe {
            match hint {
                PrefetchHint::L1 => _mm_prefetch::<_MM_HINT_T0>(p.cast()),
                PrefetchHint::L2 => _mm_prefetch::<_MM_HINT_T1>(p.cast()),
                PrefetchHint::L3 => _mm_prefetch::<_MM_HINT_T2>(p.cast()),
                PrefetchHint::NonTemporal => _mm_prefetch::<_MM_HINT_NTA>(p.cast()),
            }
        }
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: `prfm` is in the base aarch64 instruction set; it is a hint that never faults
    // and writes no register or memory.
    unsafe {
        use std::arch::asm;
        match hint {
            PrefetchHint::L1 => {
                asm!("prfm pldl1keep, [{p}]", p = in(reg) p, options(nostack, preserves_flags, readonly))
            }
            PrefetchHint::L2 => {
                asm!("prfm pldl2keep, [{p}]", p = in(reg) p, options(nostack, preserves_flags, readonly))
            }
            PrefetchHint::L3 => {
                asm!("prfm pldl3keep, [{p}]", p = in(reg) p, options(nostack, preserves_flags, readonly))
            }
            PrefetchHint::NonTemporal => {
                asm!("prfm pldl1strm, [{p}]", p = in(reg) p, options(nostack, preserves_flags, readonly))
            }
        }
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = (p, hint);
}

/// Prefetches every cache line holding one of the `bytes > 0` bytes from `p`: one line
/// every 64 bytes from `p`, then the line of the last byte (again, when `p` was at the start
/// of a line). Quantized rows are rarely line-aligned (a Q4 row of dimension 64 is 36
/// bytes), so the number of lines a row touches varies from row to row; a loop over exactly
/// those lines mispredicts its exit about once a row, which measured slower than this
/// loop of constant trip count plus one possibly redundant prefetch.
#[inline(always)]
pub(crate) fn prefetch_bytes(p: *const u8, bytes: usize, hint: PrefetchHint) {
    prefetch_lines(p, bytes, true, hint);
}

/// Prefetches one line every 64 bytes of the `bytes > 0` bytes from `p`, then, when
/// `last_line`, the line of the last byte: every line of the span when `last_line` or
/// when the span ends within the line of its last 64-byte step, which
/// [`last_line_needed`] tells for all spans of a table at once.
#[inline(always)]
pub(crate) fn prefetch_lines(p: *const u8, bytes: usize, last_line: bool, hint: PrefetchHint) {
    const LINE: usize = 64;
    let mut offset = 0;
    while offset < bytes {
        prefetch(p.wrapping_add(offset), hint);
        offset += LINE;
    }
    if last_line {
        prefetch(p.wrapping_add(bytes.saturating_sub(1)), hint);
    }
}

/// Whether some span of `bytes > 0` bytes at `first + k · stride` (`k ≥ 0`) ends in a
/// line that [`prefetch_lines`]'s 64-byte steps from its start miss. Such spans start at
/// every offset within a line that is `first`'s modulo `g`, the largest power of two
/// dividing both `stride` and 64; the latest is `64 − g + first mod g`, and a span from
/// offset `o` needs a line beyond its steps exactly when `o + bytes` exceeds the
/// `⌈bytes / 64⌉` lines they cover. A 68-byte Q4 row of dimension 128 starts at most 60
/// bytes into a line (in a line-aligned table) and so never needs the extra prefetch of a
/// constant trip count, which [`prefetch_bytes`] would issue for every row; a 36-byte row
/// of dimension 64 needs it.
pub(crate) fn last_line_needed(first: *const u8, stride: usize, bytes: usize) -> bool {
    const LINE: usize = 64;
    let g = 1usize << stride.trailing_zeros().min(LINE.trailing_zeros());
    let latest = LINE - g + first as usize % g;
    latest + bytes > bytes.div_ceil(LINE) * LINE
}
