use crate::error::Result;
use crate::gemm::{MatMut, MatRef};

/// Placeholder (being written).
pub fn gemm_i64(
    _m: usize,
    _n: usize,
    _k: usize,
    _a: &MatRef<'_>,
    _b: &MatRef<'_>,
    _c: &mut MatMut<'_>,
    _accumulate: bool,
) -> Result<()> {
    unimplemented!()
}
