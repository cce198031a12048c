//! The int8 dot-product peak with AMX (`tdpbusd` on tiles held in registers), for
//! [`crate::limits`].

use crate::arch::x86_64::amx::{self, TILE_BYTES, TILE_ROWS, tdpbusd, tileloadd, tilestored};

/// u8 × i8 multiply-adds (2 ops each) per loop round: four `tdpbusd`, each 16 × 16 outputs
/// over 64 k.
pub const DOT_OPS_PER_ROUND: u64 = 4 * 16 * 16 * 64 * 2;

/// Runs `rounds` rounds of four independent `tdpbusd` (accumulators tmm0–3, the same
/// layout as the GEMM kernel: two A tiles by two B tiles) and returns a value that depends
/// on every one of them.
///
/// # Safety
///
/// `amx::status()` returned `Ok`.
pub unsafe fn dot_peak(rounds: u64, a: u8, b: i8) -> i32 {
    let a_tile = [a; TILE_ROWS * TILE_BYTES];
    let b_tile = [b; TILE_ROWS * TILE_BYTES];
    let mut c = [[0i32; TILE_ROWS * TILE_BYTES / 4]; 4];
    // SAFETY: the caller's contract; every load and store covers 16 rows of 64 bytes in
    // the arrays above.
    unsafe {
        amx::configure();
        tileloadd!(4, a_tile.as_ptr(), TILE_BYTES);
        tileloadd!(5, a_tile.as_ptr(), TILE_BYTES);
        tileloadd!(6, b_tile.as_ptr(), TILE_BYTES);
        tileloadd!(7, b_tile.as_ptr(), TILE_BYTES);
        for _ in 0..rounds {
            tdpbusd!(0, 4, 6);
            tdpbusd!(1, 4, 7);
            tdpbusd!(2, 5, 6);
            tdpbusd!(3, 5, 7);
        }
        tilestored!(0, c[0].as_mut_ptr(), TILE_BYTES);
        tilestored!(1, c[1].as_mut_ptr(), TILE_BYTES);
        tilestored!(2, c[2].as_mut_ptr(), TILE_BYTES);
        tilestored!(3, c[3].as_mut_ptr(), TILE_BYTES);
        amx::release();
    }
    c.iter().flatten().fold(0i32, |s, &x| s.wrapping_add(x))
}
