//! AMX (Advanced Matrix Extensions): detection, the Linux permission request, and the few
//! tile instructions the AMX kernels use.
//!
//! Stable Rust has no AMX intrinsics, but `asm!` goes through LLVM's integrated assembler,
//! which accepts the AMX mnemonics whatever the target features: the instructions are
//! written here as `asm!` (no C toolchain, no build script, nothing to compile out on other
//! targets). The compiler never allocates tile registers, so the tiles keep their contents
//! between `asm!` statements; each statement names its tiles literally (`tmm0`..`tmm7`).
//!
//! Tiles need two grants beyond the CPUID bits: the OS must enable the tile state in XCR0
//! (bits 17 and 18), and Linux hands out the tile-data state (8 KiB per thread) only to
//! processes that ask with `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`; a process
//! that executes a tile instruction without it gets SIGILL.

use std::arch::asm;
use std::sync::OnceLock;

/// Whether tiles are usable in this process, or why not. Detects once and makes the
/// permission request at most once per process.
pub(crate) fn status() -> Result<(), &'static str> {
    static STATUS: OnceLock<Result<(), &'static str>> = OnceLock::new();
    *STATUS.get_or_init(detect)
}

fn detect() -> Result<(), &'static str> {
    use std::arch::x86_64::__cpuid_count;
    let leaf7 = __cpuid_count(7, 0);
    // AMX-TILE is EDX bit 24, AMX-INT8 bit 25 of leaf 7, sub-leaf 0.
    if leaf7.edx & (1 << 24) == 0 || leaf7.edx & (1 << 25) == 0 {
        return Err("the CPU lacks AMX-TILE or AMX-INT8 (CPUID leaf 7 EDX bits 24, 25)");
    }
    // XGETBV is only defined once the OS has set CR4.OSXSAVE (leaf 1 ECX bit 27).
    if __cpuid_count(1, 0).ecx & (1 << 27) == 0 {
        return Err("the OS has not enabled XSAVE, so it cannot save tile state");
    }
    let xcr0_low: u32;
    // SAFETY: XGETBV with ECX = 0 reads XCR0; it exists since OSXSAVE is set (checked).
    unsafe {
        asm!("xgetbv", in("ecx") 0u32, out("eax") xcr0_low, out("edx") _,
             options(nomem, nostack, preserves_flags));
    }
    // XTILECFG (bit 17) and XTILEDATA (bit 18).
    if xcr0_low & (0b11 << 17) != 0b11 << 17 {
        return Err("the OS does not enable the tile state (XCR0 bits 17, 18)");
    }
    request_permission()
}

#[cfg(target_os = "linux")]
fn request_permission() -> Result<(), &'static str> {
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let ret: i64;
    // SAFETY: a plain system call that only changes this process's permitted xfeatures;
    // the kernel clobbers rcx and r11 and nothing else.
    unsafe {
        asm!("syscall",
             inlateout("rax") SYS_ARCH_PRCTL => ret,
             in("rdi") ARCH_REQ_XCOMP_PERM,
             in("rsi") XFEATURE_XTILEDATA,
             lateout("rcx") _, lateout("r11") _,
             options(nostack));
    }
    match ret {
        0 => Ok(()),
        -22 => Err("Linux refused the tile-data permission: EINVAL (a kernel older than 5.16)"),
        -28 => Err(
            "Linux refused the tile-data permission: ENOSPC (the signal stack limit is too small)",
        ),
        -1 => Err("Linux refused the tile-data permission: EPERM"),
        _ => Err("Linux refused the tile-data permission (arch_prctl(ARCH_REQ_XCOMP_PERM))"),
    }
}

#[cfg(not(target_os = "linux"))]
fn request_permission() -> Result<(), &'static str> {
    Err("lowp requests the tile-data permission only on Linux")
}

/// Rows of every tile lowp configures: 16 rows of A or C, or 16 K-quads of B.
pub(crate) const TILE_ROWS: usize = 16;
/// Bytes per tile row: 64 u8 of A (64 k), 64 i8 of B (16 columns × 4 k) or 16 i32 of C.
pub(crate) const TILE_BYTES: usize = 64;

/// The 64-byte `ldtilecfg` operand: palette 1, every tile 16 rows of 64 bytes.
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

const FULL_TILES: TileConfig = {
    let mut bytes = [0u8; 64];
    bytes[0] = 1;
    let mut t = 0;
    while t < 8 {
        // colsb (u16, little-endian) at 16 + 2t, rows (u8) at 48 + t.
        bytes[16 + 2 * t] = TILE_BYTES as u8;
        bytes[48 + t] = TILE_ROWS as u8;
        t += 1;
    }
    TileConfig(bytes)
};

/// Configures all eight tiles as 16 × 64 bytes (zeroing them).
///
/// # Safety
///
/// [`status`] returned `Ok` (the CPU has AMX and the process may use tile data).
#[inline(always)]
pub(crate) unsafe fn configure() {
    // SAFETY: the caller's contract; the operand is 64 readable bytes.
    unsafe {
        asm!("ldtilecfg [{}]", in(reg) FULL_TILES.0.as_ptr(), options(nostack, readonly, preserves_flags));
    }
}

/// Returns the tiles to their initial state, so the OS need not save them.
///
/// # Safety
///
/// As [`configure`].
#[inline(always)]
pub(crate) unsafe fn release() {
    // SAFETY: the caller's contract.
    unsafe { asm!("tilerelease", options(nostack, nomem, preserves_flags)) }
}

/// `tilezero tmm$t`.
macro_rules! tilezero {
    ($t:literal) => {
        ::std::arch::asm!(
            concat!("tilezero tmm", $t),
            options(nostack, nomem, preserves_flags)
        )
    };
}

/// `tileloadd tmm$t`: 16 rows of 64 bytes from `$p`, `$stride` bytes apart.
macro_rules! tileloadd {
    ($t:literal, $p:expr, $stride:expr) => {
        ::std::arch::asm!(
            concat!("tileloadd tmm", $t, ", [{p} + {s} * 1]"),
            p = in(reg) $p,
            s = in(reg) $stride,
            options(nostack, readonly, preserves_flags)
        )
    };
}

/// `tileloaddt1 tmm$t`: as `tileloadd`, hinting that the data need not stay in L1.
macro_rules! tileloaddt1 {
    ($t:literal, $p:expr, $stride:expr) => {
        ::std::arch::asm!(
            concat!("tileloaddt1 tmm", $t, ", [{p} + {s} * 1]"),
            p = in(reg) $p,
            s = in(reg) $stride,
            options(nostack, readonly, preserves_flags)
        )
    };
}

/// `tdpbusd tmm$c, tmm$a, tmm$b`: `C[i][j] += Σ_{r<4} A[i][4l + r] · B[l][4j + r]` over the
/// 16 K-quads `l`, A u8, B i8, C i32 wrapping.
macro_rules! tdpbusd {
    ($c:literal, $a:literal, $b:literal) => {
        ::std::arch::asm!(
            concat!("tdpbusd tmm", $c, ", tmm", $a, ", tmm", $b),
            options(nostack, nomem, preserves_flags)
        )
    };
}

/// `tilestored`: tile `tmm$t` to 16 rows of 64 bytes at `$p`, `$stride` bytes apart.
macro_rules! tilestored {
    ($t:literal, $p:expr, $stride:expr) => {
        ::std::arch::asm!(
            concat!("tilestored [{p} + {s} * 1], tmm", $t),
            p = in(reg) $p,
            s = in(reg) $stride,
            options(nostack, preserves_flags)
        )
    };
}

pub(crate) use {tdpbusd, tileloadd, tileloaddt1, tilestored, tilezero};
