//! Embedding bags over outlier tables with AVX-512 (F, BW, VL): the quantized kernels'
//! AVX-512 code loads and, for unweighted Q4 / Q2 bags at the specialised dimensions, their
//! lookups (`sls_q_avx512`), in the outlier loop of `sls_outlier`.

crate::arch::sls_outlier::outlier_kernels!(
    crate::arch::x86_64::sls_avx512::Avx512,
    features = "avx512f,avx512bw,avx512vl,avx2,fma,f16c",
    lanes = 16,
    dims = [64, 128],
    bag = embedding_bag_lut
);
