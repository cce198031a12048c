//! x86-64 kernels: AVX2 (+FMA, F16C), AVX-512 (F/BW/VL/DQ), AVX-512 VNNI and AMX.

pub(crate) mod amx;
pub(crate) mod i64gemm_avx2;
pub(crate) mod i64gemm_avx512;
pub(crate) mod interaction_avx2;
pub(crate) mod interaction_avx512;
pub(crate) mod peak_amx;
pub(crate) mod peak_avx2;
pub(crate) mod peak_avx512;
pub(crate) mod peak_avx512vnni;
pub(crate) mod qgemm_amx;
pub(crate) mod qgemm_avx2;
pub(crate) mod qgemm_avx512;
pub(crate) mod qgemm_avx512vnni;
pub(crate) mod quantize_avx2;
pub(crate) mod quantize_avx512;
pub(crate) mod sls_avx2;
pub(crate) mod sls_avx512;
pub(crate) mod sls_compositional_avx2;
pub(crate) mod sls_compositional_avx512;
pub(crate) mod sls_outlier_avx2;
pub(crate) mod sls_outlier_avx512;
pub(crate) mod sls_q_avx2;
pub(crate) mod sls_q_avx512;
