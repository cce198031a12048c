//! aarch64 kernels: NEON and NEON with the dot-product extension.

pub(crate) mod i64gemm_neon;
pub(crate) mod interaction_neon;
pub(crate) mod peak_neondot;
pub(crate) mod qgemm_neondot;
pub(crate) mod quantize_neon;
pub(crate) mod sls_compositional_neon;
pub(crate) mod sls_neon;
pub(crate) mod sls_outlier_neon;
pub(crate) mod sls_q_neon;
