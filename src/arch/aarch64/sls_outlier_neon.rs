//! Embedding bags over outlier tables with NEON: the quantized kernels' NEON code loads
//! (`sls_q_neon`) in the outlier loop of `sls_outlier`.

crate::arch::sls_outlier::outlier_kernels!(
    crate::arch::aarch64::sls_neon::Neon,
    features = "neon",
    lanes = 4,
    dims = [64, 128]
);
