//! aarch64 kernels: NEON and NEON with the dot-product extension.
