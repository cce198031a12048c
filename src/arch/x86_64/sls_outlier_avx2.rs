//! Embedding bags over outlier tables with AVX2, FMA and F16C: the quantized kernels' AVX2
//! code loads (`sls_q_avx2`) in the outlier loop of `sls_outlier`.

crate::arch::sls_outlier::outlier_kernels!(
    crate::arch::x86_64::sls_avx2::Avx2,
    features = "avx2,fma,f16c",
    lanes = 8,
    dims = [64, 128]
);
