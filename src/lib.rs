//! # lowp — low-precision CPU kernels for recommendation models
//!
//! Embedding bags over f32 / f16 / bf16 and row-wise quantized (int8, int4, int2) tables,
//! FBGEMM-compatible row-wise quantizers, u8 × i8 GEMM with a fused requantizing output
//! stage, and wrapping i64 GEMM.
//!
//! **One rule:** every instruction-set path returns exactly the bits of the scalar
//! [`reference`] model, on every CPU. The reference follows FBGEMM's arithmetic step for
//! step, so tables and results move between FBGEMM and lowp unchanged.
//!
//! Dispatch: [`Isa`] levels are detected once; every operation takes an optional explicit
//! level (an error if this CPU lacks it) and otherwise uses [`Isa::best`], which the
//! `LOWP_ISA` environment variable caps for the whole process. Kernels live in one list,
//! [`registry`], that dispatch, tests and benchmarks share.
//!
//! ```
//! use lowp::{Bags, Output, Pooling, Table};
//!
//! // A 3 × 2 f32 table and two bags: {0, 2} and {1}.
//! let rows = [1.0f32, 2.0, 10.0, 20.0, 100.0, 200.0];
//! let table = Table::from_f32(3, 2, &rows)?;
//! let bags = Bags::from_offsets(&[0i64, 2, 1], &[0i32, 2, 3])?;
//! let mut out = [0f32; 4];
//! lowp::embedding_bag(&table, &bags, Pooling::Sum, Output::F32(&mut out), 2, None)?;
//! assert_eq!(out, [101.0, 202.0, 10.0, 20.0]);
//! # Ok::<(), lowp::Error>(())
//! ```

#![warn(missing_docs)]

mod arch;
pub mod compositional;
pub mod embedding;
mod error;
pub mod ffi;
pub mod format;
pub mod gemm;
pub mod interaction;
pub mod isa;
pub mod limits;
pub mod outlier;
pub mod quantize;
pub mod reference;
pub mod registry;

pub use compositional::{Combine, CompositionalBag, CompositionalTable, Scheme, compositional_bag};
pub use embedding::plan::{EmbeddingBag, EmbeddingBagSpec};
pub use embedding::{Bags, IndexSlice, Output, Pooling, Weights, embedding_bag};
pub use error::{Error, Result};
pub use format::{Format, Table};
pub use gemm::{
    GemmOutput, MatMut, MatRef, OutputStage, PackedB, PerColumn, QuantType, RequantBias, U8I8Block,
    U8I8Problem, WeightLayout, gemm_i64, gemm_u8i8, gemm_u8i8_block, gemm_u8i8_packed,
};
pub use gemm::{MatrixOp, gemm_i64_cblas};
pub use interaction::{Embeddings, InteractionOptions, Vectors, interaction};
pub use isa::Isa;
pub use quantize::{Clipping, QuantInput, dequantize, quantize, quantize_rows};
