//! Helpers shared by the integration tests: the project's shared test data (FBGEMM golden
//! vectors and real embedding data), read from `../shared/` beside the project root.
//!
//! Missing or malformed data is a test failure with a message saying which file, never a
//! silent skip.

#![allow(dead_code)] // each test binary uses its own subset

pub mod golden;
pub mod guard;

use std::path::PathBuf;

/// `../shared/<rel>` from the project root, or `$LOWP_SHARED/<rel>` when that is set.
pub fn shared_path(rel: &str) -> PathBuf {
    let root = std::env::var_os("LOWP_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    root.join(rel)
}

/// Reads a whole shared file, failing the test with the path if it is missing.
pub fn read_shared(rel: &str) -> Vec<u8> {
    let path = shared_path(rel);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "shared test data {} is missing or unreadable ({e}); the tests need ../shared beside the project (or LOWP_SHARED)",
            path.display()
        )
    })
}

/// Reads a raw little-endian f32 matrix of `rows × cols` from `../shared/data/<name>`,
/// failing with a clear message when the size is wrong.
pub fn read_data_f32(name: &str, rows: usize, cols: usize) -> Vec<f32> {
    let bytes = read_shared(&format!("data/{name}"));
    assert_eq!(
        bytes.len(),
        rows * cols * 4,
        "data/{name} has {} bytes, expected {rows} × {cols} f32 = {}",
        bytes.len(),
        rows * cols * 4
    );
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// A tiny deterministic generator (a 64-bit LCG, high bits out), so failures reproduce.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
