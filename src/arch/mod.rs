//! Every `std::arch` kernel, one file per operation and instruction set. This is the only
//! place (with `kernels/` for C) where SIMD intrinsics may appear; each kernel is an
//! `unsafe fn` with `#[target_feature]` and a `# Safety` section.

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
pub(crate) mod i64gemm;
pub(crate) mod interaction;
pub(crate) mod peak_fma;
pub(crate) mod prefetch;
pub(crate) mod qgemm;
pub(crate) mod quantize;
pub(crate) mod quantize_stream;
pub(crate) mod sls;
pub(crate) mod sls_compositional;
pub(crate) mod sls_outlier;
pub(crate) mod sls_quant;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;
