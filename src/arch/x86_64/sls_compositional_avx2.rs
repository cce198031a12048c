//! Compositional embedding bags with AVX2 (+FMA, F16C): the generic loop of
//! `crate::arch::sls_compositional` over the vector type the plain bags use.

use crate::arch::sls_compositional;
use crate::arch::x86_64::sls_avx2::Avx2;
use crate::compositional::CompositionalTable;
use crate::embedding::plan::Prefetch;
use crate::embedding::{Bags, Output, Pooling};
use crate::error::Result;

/// AVX2 (+FMA, F16C) compositional bags combining as `OP` (`sls_compositional::PRODUCT`, `SUM` or
/// `CONCAT`); `NV > 0` specialises the dimension to `8 · NV`, `NV == 0` takes any.
///
/// # Safety
///
/// The CPU has the features enabled here. The arguments passed the checks that
/// [`crate::registry::CompositionalBagFn`] lists, the table combines as `OP`, and its
/// dimension is `8 · NV` when `NV > 0`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn compositional_bag<const OP: u8, const NV: usize>(
    table: &CompositionalTable<'_>,
    bags: &Bags<'_>,
    pooling: Pooling,
    out: &mut Output<'_>,
    out_stride: usize,
    prefetch: Prefetch,
) -> Result<()> {
    // SAFETY: this function's contract is `sls_compositional::compositional_bag`'s, with
    // AVX2 (+FMA, F16C) enabled.
    unsafe {
        sls_compositional::compositional_bag::<Avx2, OP, NV>(
            table, bags, pooling, out, out_stride, prefetch,
        )
    }
}

sls_compositional::compositional_kernel_table!(compositional_bag, lanes = 8, dims = [16, 32, 64]);
