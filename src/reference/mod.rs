//! The scalar reference model: the specification of every result lowp computes.
//!
//! Each function is plain, single-threaded Rust that fixes one order of f32 operations per
//! output element (documented on the function). Every kernel on every instruction-set level
//! returns exactly these bits; the property tests hold them to it. The arithmetic follows
//! FBGEMM's reference implementations step for step, so results also match FBGEMM's where
//! FBGEMM is exact; each deliberate difference is documented where it happens.
//!
//! "Exactly these bits" means: every result that is not NaN is bit-identical, and every
//! result that is NaN here is NaN on every path. Which NaN (payload, sign) comes out of an
//! operation on NaNs is not fixed: Rust leaves it unspecified, x86 propagates the first
//! source operand's NaN and Arm's fused multiply-add the addend's.
//!
//! The functions validate their inputs like the dispatched operations do, so they are safe
//! to call directly, e.g. to check a kernel's output in a user's own tests.

mod compositional;
mod embedding_bag;
mod gemm_i64;
mod gemm_u8i8;
mod interaction;
mod outlier;
pub(crate) mod quantize;

pub use compositional::compositional_bag;
pub use embedding_bag::embedding_bag;
pub use gemm_i64::gemm_i64;
pub use gemm_u8i8::gemm_u8i8;
pub use interaction::interaction;
pub(crate) use interaction::interaction_checked;
pub use outlier::{dequantize_outlier, embedding_bag_outlier};
pub use quantize::{dequantize, quantize, quantize_greedy};
