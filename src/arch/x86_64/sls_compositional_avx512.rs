//! Compositional embedding bags with AVX-512 (F, BW, VL): the generic loop of
//! `crate::arch::sls_compositional` over the vector type the plain bags use.

use crate::arch::sls_compositional;
use crate::arch::x86_64::sls_avx512::Avx512;
use crate::compositional::CompositionalTable;
use crate::embedding::plan::Prefetch;
use crate::embedding::{Bags, Output, Pooling};
use crate::error::Result;

/// AVX-512 (F, BW, VL) compositional bags combining as `OP` (`sls_compositional::PRODUCT`, `SUM` or
/// `CONCAT`); `NV > 0` specialises the dimension to `16 · NV`, `NV == 0` takes any.
///
/// # Safety
///
/// The CPU has the features enabled here. The arguments passed the checks that
/// [`crate::registry::CompositionalBagFn`] lists, the table combines as `OP`, and its
/// dimension is `16 · NV` when `NV > 0`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn compositional_bag<const OP: u8, const NV: usize>(
    table: &CompositionalTable<'_>,
    bags: &Bags<'_>,
    pooling: Pooling,
    out: &mut Output<'_>,
    out_stride: usize,
    prefetch: Prefetch,
) -> Result<()> {
    // SAFETY: this function's contract is `sls_compositional::compositional_bag`'s, with
    // AVX-512 (F, BW, VL) enabled.
    unsafe {
        sls_compositional::compositional_bag::<Avx512, OP, NV>(
            table, bags, pooling, out, out_stride, prefetch,
        )
    }
}

sls_compositional::compositional_kernel_table!(
    compositional_bag,
    lanes = 16,
    dims = [16, 32, 64, 128]
);
