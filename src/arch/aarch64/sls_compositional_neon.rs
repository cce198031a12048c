//! Compositional embedding bags with NEON: the generic loop of
//! `crate::arch::sls_compositional` over the vector type the plain bags use.

use crate::arch::aarch64::sls_neon::Neon;
use crate::arch::sls_compositional;
use crate::compositional::CompositionalTable;
use crate::embedding::plan::Prefetch;
use crate::embedding::{Bags, Output, Pooling};
use crate::error::Result;

/// NEON compositional bags combining as `OP` (`sls_compositional::PRODUCT`, `SUM` or
/// `CONCAT`); `NV > 0` specialises the dimension to `4 · NV`, `NV == 0` takes any.
///
/// # Safety
///
/// The CPU has the features enabled here. The arguments passed the checks that
/// [`crate::registry::CompositionalBagFn`] lists, the table combines as `OP`, and its
/// dimension is `4 · NV` when `NV > 0`.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn compositional_bag<const OP: u8, const NV: usize>(
    table: &CompositionalTable<'_>,
    bags: &Bags<'_>,
    pooling: Pooling,
    out: &mut Output<'_>,
    out_stride: usize,
    prefetch: Prefetch,
) -> Result<()> {
    // SAFETY: this function's contract is `sls_compositional::compositional_bag`'s, with
    // NEON enabled.
    unsafe {
        sls_compositional::compositional_bag::<Neon, OP, NV>(
            table, bags, pooling, out, out_stride, prefetch,
        )
    }
}

sls_compositional::compositional_kernel_table!(compositional_bag, lanes = 4, dims = [16, 32, 64]);
