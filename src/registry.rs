//! The one list of kernels.
//!
//! Every kernel lowp has is one [`Entry`] in [`ENTRIES`], keyed by (operation, ISA,
//! specialization). Dispatch ([`select`]), the property tests, the ISA-coverage test, the
//! benchmarks and the report all read this list, so a kernel added here is dispatched,
//! tested and benchmarked everywhere without further wiring.
//!
//! Kernels are `unsafe fn`s: they may assume the checks of the safe layer that calls them
//! (documented at each kernel type). The Scalar entries are the reference model itself.

use std::cell::Cell;
use std::fmt;

use crate::compositional::{Combine, CompositionalTable};
use crate::embedding::plan::Prefetch;
use crate::embedding::{Bags, Output, Pooling};
use crate::error::Result;
use crate::format::{Format, Table};
use crate::gemm::{GemmOutput, MatMut, MatRef, OutputStage, U8I8Block};
use crate::interaction::InteractionProblem;
use crate::isa::Isa;
use crate::outlier::OutlierTable;
use crate::quantize::QuantInput;
use crate::reference;

/// An operation, with the table format where the kernel depends on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// Embedding bags over a table of this format.
    EmbeddingBag(Format),
    /// f32/f16 rows → this quantized format.
    Quantize(Format),
    /// This quantized format → f32/f16/bf16 rows.
    Dequantize(Format),
    /// u8 × i8 GEMM with an output stage.
    GemmU8I8,
    /// Wrapping i64 GEMM.
    GemmI64,
    /// DLRM feature interaction (f32 or bf16 inputs, any output type).
    Interaction,
    /// Embedding bags over an outlier table whose dense part has this format.
    OutlierEmbeddingBag(Format),
    /// Embedding bags over a compositional table combining its components this way.
    CompositionalBag(Combine),
}

impl Op {
    /// Every operation the crate defines.
    pub fn all() -> Vec<Op> {
        let mut ops = Vec::new();
        ops.extend(Format::ALL.map(Op::EmbeddingBag));
        for f in Format::ALL.into_iter().filter(|f| f.is_quantized()) {
            ops.push(Op::Quantize(f));
            ops.push(Op::Dequantize(f));
        }
        ops.push(Op::GemmU8I8);
        ops.push(Op::GemmI64);
        ops.push(Op::Interaction);
        for f in Format::ALL.into_iter().filter(|f| f.is_quantized()) {
            ops.push(Op::OutlierEmbeddingBag(f));
        }
        ops.extend(Combine::ALL.map(Op::CompositionalBag));
        ops
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::EmbeddingBag(format) => write!(f, "embedding_bag/{format}"),
            Op::Quantize(format) => write!(f, "quantize/{format}"),
            Op::Dequantize(format) => write!(f, "dequantize/{format}"),
            Op::GemmU8I8 => f.write_str("gemm/u8i8"),
            Op::GemmI64 => f.write_str("gemm/i64"),
            Op::Interaction => f.write_str("interaction"),
            Op::OutlierEmbeddingBag(format) => write!(f, "embedding_bag_outlier/{format}"),
            Op::CompositionalBag(combine) => write!(f, "compositional_bag/{}", combine.name()),
        }
    }
}

/// Which shapes a kernel is compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Spec {
    /// Any shape.
    Any,
    /// Only this dimension (embedding dim, or GEMM column count), known at compile time.
    Dim(usize),
}

impl Spec {
    /// Whether a kernel with this specialization handles dimension `dim`.
    pub fn accepts(self, dim: usize) -> bool {
        match self {
            Spec::Any => true,
            Spec::Dim(d) => d == dim,
        }
    }
}

/// Sums bags, prefetching rows as told. The caller has built `table` and `bags` through
/// their checking constructors and checked the output with `embedding::check_output`; the
/// kernel checks indices.
pub type EmbeddingBagFn =
    unsafe fn(&Table<'_>, &Bags<'_>, Pooling, &mut Output<'_>, usize, Prefetch) -> Result<()>;
/// Quantizes rows; the caller has run `quantize::check_quantize`.
pub type QuantizeFn = unsafe fn(Format, QuantInput<'_>, usize, usize, &mut [u8]) -> Result<()>;
/// Dequantizes a table; the caller has run `quantize::check_dequantize`.
pub type DequantizeFn = unsafe fn(&Table<'_>, &mut Output<'_>) -> Result<()>;
/// One block of a u8 × i8 GEMM over weights packed for this kernel; the caller has run
/// `U8I8Block::validate` (or `U8I8Problem::validate` on the problem the weights came from).
pub type GemmU8I8Fn =
    unsafe fn(&U8I8Block<'_>, &OutputStage<'_>, &mut GemmOutput<'_>, usize) -> Result<()>;
/// i64 GEMM; the caller has run `gemm::validate_i64`.
pub type GemmI64Fn =
    unsafe fn(usize, usize, usize, &MatRef<'_>, &MatRef<'_>, &mut MatMut<'_>, bool) -> Result<()>;

/// DLRM feature interaction; the problem comes from `InteractionProblem::new`, which
/// checked the inputs and the output's length.
pub type InteractionFn = unsafe fn(&InteractionProblem<'_>, &mut Output<'_>) -> Result<()>;

/// Sums bags over an outlier table, as [`EmbeddingBagFn`] does over a plain one; the table
/// was checked by its constructor.
pub type OutlierBagFn = unsafe fn(
    &OutlierTable<'_>,
    &Bags<'_>,
    Pooling,
    &mut Output<'_>,
    usize,
    Prefetch,
) -> Result<()>;

/// Pools bags over a compositional table, prefetching component rows as told. The caller
/// has built the table with `CompositionalTable::new` (whose operation and dimension are
/// the kernel's), `bags` through its checking constructors, and checked the output with
/// `embedding::check_output` for the table's dimension; the kernel checks indices.
pub type CompositionalBagFn = unsafe fn(
    &CompositionalTable<'_>,
    &Bags<'_>,
    Pooling,
    &mut Output<'_>,
    usize,
    Prefetch,
) -> Result<()>;

/// A kernel's entry point, typed by operation.
#[derive(Clone, Copy)]
pub enum Kernel {
    /// See [`EmbeddingBagFn`].
    EmbeddingBag(EmbeddingBagFn),
    /// See [`QuantizeFn`].
    Quantize(QuantizeFn),
    /// See [`DequantizeFn`].
    Dequantize(DequantizeFn),
    /// See [`GemmU8I8Fn`].
    GemmU8I8(GemmU8I8Fn),
    /// See [`GemmI64Fn`].
    GemmI64(GemmI64Fn),
    /// See [`InteractionFn`].
    Interaction(InteractionFn),
    /// See [`OutlierBagFn`].
    OutlierEmbeddingBag(OutlierBagFn),
    /// See [`CompositionalBagFn`].
    CompositionalBag(CompositionalBagFn),
}

impl fmt::Debug for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kernel")
    }
}

/// One kernel: what it computes, the level it needs, the shapes it takes.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// The operation.
    pub op: Op,
    /// The level the kernel is compiled for; it runs only where that level is available.
    pub isa: Isa,
    /// The shapes it handles.
    pub spec: Spec,
    /// The entry point.
    pub kernel: Kernel,
}

/// The reference model's entry for `op`: the Scalar level of every operation.
const fn scalar(op: Op, kernel: Kernel) -> Entry {
    Entry {
        op,
        isa: Isa::Scalar,
        spec: Spec::Any,
        kernel,
    }
}

/// The reference embedding bag as an [`EmbeddingBagFn`]: it has no prefetch option.
fn reference_embedding_bag(
    table: &Table<'_>,
    bags: &Bags<'_>,
    pooling: Pooling,
    out: &mut Output<'_>,
    out_stride: usize,
    _prefetch: Prefetch,
) -> Result<()> {
    reference::embedding_bag(table, bags, pooling, out, out_stride)
}

/// The reference outlier bag as an [`OutlierBagFn`]: it has no prefetch option.
fn reference_outlier_bag(
    table: &OutlierTable<'_>,
    bags: &Bags<'_>,
    pooling: Pooling,
    out: &mut Output<'_>,
    out_stride: usize,
    _prefetch: Prefetch,
) -> Result<()> {
    reference::embedding_bag_outlier(table, bags, pooling, out, out_stride)
}

/// An outlier-table bag kernel from `crate::arch`'s `sls_outlier_*` files.
const fn sls_outlier(isa: Isa, format: Format, spec: Spec) -> Entry {
    let kernel = match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => crate::arch::x86_64::sls_outlier_avx2::kernel(format, spec),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => crate::arch::x86_64::sls_outlier_avx512::kernel(format, spec),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => crate::arch::aarch64::sls_outlier_neon::kernel(format, spec),
        _ => panic!("no outlier embedding-bag kernels at this level"),
    };
    Entry {
        op: Op::OutlierEmbeddingBag(format),
        isa,
        spec,
        kernel: Kernel::OutlierEmbeddingBag(kernel),
    }
}

/// The reference compositional bag as a [`CompositionalBagFn`]: it has no prefetch option.
fn reference_compositional_bag(
    table: &CompositionalTable<'_>,
    bags: &Bags<'_>,
    pooling: Pooling,
    out: &mut Output<'_>,
    out_stride: usize,
    _prefetch: Prefetch,
) -> Result<()> {
    reference::compositional_bag(table, bags, pooling, out, out_stride)
}

/// A compositional-bag kernel from `crate::arch`'s `sls_compositional_*` files, or the
/// reference at the Scalar level.
const fn comp(isa: Isa, combine: Combine, spec: Spec) -> Entry {
    let kernel: CompositionalBagFn = match isa {
        Isa::Scalar => reference_compositional_bag,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => crate::arch::x86_64::sls_compositional_avx2::kernel(combine, spec),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => crate::arch::x86_64::sls_compositional_avx512::kernel(combine, spec),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => crate::arch::aarch64::sls_compositional_neon::kernel(combine, spec),
        _ => panic!("no compositional-bag kernels at this level"),
    };
    Entry {
        op: Op::CompositionalBag(combine),
        isa,
        spec,
        kernel: Kernel::CompositionalBag(kernel),
    }
}

/// A quantizer (`Op::Quantize`) or dequantizer (`Op::Dequantize`) kernel from
/// `crate::arch`'s `quantize_*` files; one kernel per level serves every format.
const fn quant(isa: Isa, op: Op) -> Entry {
    let (quantize, dequantize): (QuantizeFn, DequantizeFn) = match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            use crate::arch::x86_64::quantize_avx2 as k;
            (k::quantize, k::dequantize)
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            use crate::arch::x86_64::quantize_avx512 as k;
            (k::quantize, k::dequantize)
        }
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => {
            use crate::arch::aarch64::quantize_neon as k;
            (k::quantize, k::dequantize)
        }
        _ => panic!("no quantizer kernels at this level"),
    };
    let kernel = match op {
        Op::Quantize(_) => Kernel::Quantize(quantize),
        Op::Dequantize(_) => Kernel::Dequantize(dequantize),
        _ => panic!("quantizer kernels only"),
    };
    Entry {
        op,
        isa,
        spec: Spec::Any,
        kernel,
    }
}

/// An embedding-bag kernel over float rows from `crate::arch`'s `sls_*` files.
const fn sls(isa: Isa, format: Format, spec: Spec) -> Entry {
    let kernel = match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => crate::arch::x86_64::sls_avx2::kernel(format, spec),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => crate::arch::x86_64::sls_avx512::kernel(format, spec),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => crate::arch::aarch64::sls_neon::kernel(format, spec),
        _ => panic!("no float embedding-bag kernels at this level"),
    };
    Entry {
        op: Op::EmbeddingBag(format),
        isa,
        spec,
        kernel: Kernel::EmbeddingBag(kernel),
    }
}

/// An embedding-bag kernel over quantized rows from `crate::arch`'s `sls_q_*` files.
const fn sls_q(isa: Isa, format: Format, spec: Spec) -> Entry {
    let kernel = match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => crate::arch::x86_64::sls_q_avx2::kernel(format, spec),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => crate::arch::x86_64::sls_q_avx512::kernel(format, spec),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => crate::arch::aarch64::sls_q_neon::kernel(format, spec),
        _ => panic!("no quantized embedding-bag kernels at this level"),
    };
    Entry {
        op: Op::EmbeddingBag(format),
        isa,
        spec,
        kernel: Kernel::EmbeddingBag(kernel),
    }
}

/// A u8 × i8 GEMM kernel from `crate::arch`'s `qgemm_*` files (any shape).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const fn qgemm(isa: Isa, kernel: GemmU8I8Fn) -> Entry {
    Entry {
        op: Op::GemmU8I8,
        isa,
        spec: Spec::Any,
        kernel: Kernel::GemmU8I8(kernel),
    }
}

/// A wrapping i64 GEMM kernel from `crate::arch`'s `i64gemm_*` files (any shape).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const fn i64gemm(isa: Isa, kernel: GemmI64Fn) -> Entry {
    Entry {
        op: Op::GemmI64,
        isa,
        spec: Spec::Any,
        kernel: Kernel::GemmI64(kernel),
    }
}

/// A feature-interaction kernel (any shape) at `isa`.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const fn interaction(isa: Isa, kernel: InteractionFn) -> Entry {
    Entry {
        op: Op::Interaction,
        isa,
        spec: Spec::Any,
        kernel: Kernel::Interaction(kernel),
    }
}

/// Every kernel lowp has. Order does not matter: [`select`] picks by level and spec.
pub static ENTRIES: &[Entry] = &[
    scalar(
        Op::EmbeddingBag(Format::F32),
        Kernel::EmbeddingBag(reference_embedding_bag),
    ),
    scalar(
        Op::EmbeddingBag(Format::F16),
        Kernel::EmbeddingBag(reference_embedding_bag),
    ),
    scalar(
        Op::EmbeddingBag(Format::Bf16),
        Kernel::EmbeddingBag(reference_embedding_bag),
    ),
    scalar(
        Op::EmbeddingBag(Format::Q8),
        Kernel::EmbeddingBag(reference_embedding_bag),
    ),
    scalar(
        Op::EmbeddingBag(Format::Q4),
        Kernel::EmbeddingBag(reference_embedding_bag),
    ),
    scalar(
        Op::EmbeddingBag(Format::Q2),
        Kernel::EmbeddingBag(reference_embedding_bag),
    ),
    scalar(
        Op::Quantize(Format::Q8),
        Kernel::Quantize(reference::quantize),
    ),
    scalar(
        Op::Quantize(Format::Q4),
        Kernel::Quantize(reference::quantize),
    ),
    scalar(
        Op::Quantize(Format::Q2),
        Kernel::Quantize(reference::quantize),
    ),
    scalar(
        Op::Dequantize(Format::Q8),
        Kernel::Dequantize(reference::dequantize),
    ),
    scalar(
        Op::Dequantize(Format::Q4),
        Kernel::Dequantize(reference::dequantize),
    ),
    scalar(
        Op::Dequantize(Format::Q2),
        Kernel::Dequantize(reference::dequantize),
    ),
    #[cfg(target_arch = "x86_64")]
    quant(Isa::Avx2, Op::Quantize(Format::Q8)),
    #[cfg(target_arch = "x86_64")]
    quant(Isa::Avx2, Op::Quantize(Format::Q4)),
    #[cfg(target_arch = "x86_64")]
    quant(Isa::Avx2, Op::Quantize(Format::Q2)),
    #[cfg(target_arch = "x86_64")]
    quant(Isa::Avx2, Op::Dequantize(Format::Q8)),
    #[cfg(target_arch = "x86_64")]
    quant(Isa::Avx2, Op::Dequantize(Format::Q4)),
    #[cfg(target_arch = "x86_64")]
    quant(Isa::Avx2, Op::Dequantize(Format::Q2)),
    #[cfg(target_arch = "x86_64")]
    quant(Isa::Avx512, Op::Quantize(Format::Q8)),
    #[cfg(target_arch = "x86_64")]
    quant(Isa::Avx512, Op::Quantize(Format::Q4)),
    #[cfg(target_arch = "x86_64")]
    quant(Isa::Avx512, Op::Quantize(Format::Q2)),
    #[cfg(target_arch = "x86_64")]
    quant(Isa::Avx512, Op::Dequantize(Format::Q8)),
    #[cfg(target_arch = "x86_64")]
    quant(Isa::Avx512, Op::Dequantize(Format::Q4)),
    #[cfg(target_arch = "x86_64")]
    quant(Isa::Avx512, Op::Dequantize(Format::Q2)),
    #[cfg(target_arch = "aarch64")]
    quant(Isa::Neon, Op::Quantize(Format::Q8)),
    #[cfg(target_arch = "aarch64")]
    quant(Isa::Neon, Op::Quantize(Format::Q4)),
    #[cfg(target_arch = "aarch64")]
    quant(Isa::Neon, Op::Quantize(Format::Q2)),
    #[cfg(target_arch = "aarch64")]
    quant(Isa::Neon, Op::Dequantize(Format::Q8)),
    #[cfg(target_arch = "aarch64")]
    quant(Isa::Neon, Op::Dequantize(Format::Q4)),
    #[cfg(target_arch = "aarch64")]
    quant(Isa::Neon, Op::Dequantize(Format::Q2)),
    // Packed weights have no reference form: the Scalar level runs the kernels' own loop
    // in portable code, checked against `reference::gemm_u8i8` like every other level.
    scalar(
        Op::GemmU8I8,
        Kernel::GemmU8I8(crate::arch::qgemm::gemm_u8i8_portable),
    ),
    #[cfg(target_arch = "x86_64")]
    qgemm(Isa::Avx2, crate::arch::x86_64::qgemm_avx2::gemm_u8i8),
    #[cfg(target_arch = "x86_64")]
    qgemm(Isa::Avx512, crate::arch::x86_64::qgemm_avx512::gemm_u8i8),
    #[cfg(target_arch = "x86_64")]
    qgemm(
        Isa::Avx512Vnni,
        crate::arch::x86_64::qgemm_avx512vnni::gemm_u8i8,
    ),
    #[cfg(target_arch = "x86_64")]
    qgemm(Isa::Amx, crate::arch::x86_64::qgemm_amx::gemm_u8i8),
    #[cfg(target_arch = "aarch64")]
    qgemm(Isa::NeonDot, crate::arch::aarch64::qgemm_neondot::gemm_u8i8),
    scalar(Op::GemmI64, Kernel::GemmI64(reference::gemm_i64)),
    #[cfg(target_arch = "x86_64")]
    i64gemm(Isa::Avx2, crate::arch::x86_64::i64gemm_avx2::gemm_i64),
    #[cfg(target_arch = "x86_64")]
    i64gemm(Isa::Avx512, crate::arch::x86_64::i64gemm_avx512::gemm_i64),
    #[cfg(target_arch = "aarch64")]
    i64gemm(Isa::Neon, crate::arch::aarch64::i64gemm_neon::gemm_i64),
    scalar(
        Op::Interaction,
        Kernel::Interaction(reference::interaction_checked),
    ),
    #[cfg(target_arch = "x86_64")]
    interaction(
        Isa::Avx2,
        crate::arch::x86_64::interaction_avx2::interaction,
    ),
    #[cfg(target_arch = "x86_64")]
    interaction(
        Isa::Avx512,
        crate::arch::x86_64::interaction_avx512::interaction,
    ),
    #[cfg(target_arch = "aarch64")]
    interaction(
        Isa::Neon,
        crate::arch::aarch64::interaction_neon::interaction,
    ),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx2, Format::F32, Spec::Dim(16)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx2, Format::F32, Spec::Dim(32)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx2, Format::F32, Spec::Dim(64)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx2, Format::F32, Spec::Dim(128)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx2, Format::F32, Spec::Any),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx2, Format::F16, Spec::Dim(16)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx2, Format::F16, Spec::Dim(32)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx2, Format::F16, Spec::Dim(64)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx2, Format::F16, Spec::Dim(128)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx2, Format::F16, Spec::Any),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx2, Format::Bf16, Spec::Dim(16)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx2, Format::Bf16, Spec::Dim(32)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx2, Format::Bf16, Spec::Dim(64)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx2, Format::Bf16, Spec::Dim(128)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx2, Format::Bf16, Spec::Any),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx512, Format::F32, Spec::Dim(16)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx512, Format::F32, Spec::Dim(32)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx512, Format::F32, Spec::Dim(64)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx512, Format::F32, Spec::Dim(128)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx512, Format::F32, Spec::Dim(256)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx512, Format::F32, Spec::Dim(512)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx512, Format::F32, Spec::Any),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx512, Format::F16, Spec::Dim(16)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx512, Format::F16, Spec::Dim(32)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx512, Format::F16, Spec::Dim(64)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx512, Format::F16, Spec::Dim(128)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx512, Format::F16, Spec::Dim(256)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx512, Format::F16, Spec::Dim(512)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx512, Format::F16, Spec::Any),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx512, Format::Bf16, Spec::Dim(16)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx512, Format::Bf16, Spec::Dim(32)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx512, Format::Bf16, Spec::Dim(64)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx512, Format::Bf16, Spec::Dim(128)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx512, Format::Bf16, Spec::Dim(256)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx512, Format::Bf16, Spec::Dim(512)),
    #[cfg(target_arch = "x86_64")]
    sls(Isa::Avx512, Format::Bf16, Spec::Any),
    #[cfg(target_arch = "aarch64")]
    sls(Isa::Neon, Format::F32, Spec::Dim(16)),
    #[cfg(target_arch = "aarch64")]
    sls(Isa::Neon, Format::F32, Spec::Dim(32)),
    #[cfg(target_arch = "aarch64")]
    sls(Isa::Neon, Format::F32, Spec::Dim(64)),
    #[cfg(target_arch = "aarch64")]
    sls(Isa::Neon, Format::F32, Spec::Dim(128)),
    #[cfg(target_arch = "aarch64")]
    sls(Isa::Neon, Format::F32, Spec::Dim(256)),
    #[cfg(target_arch = "aarch64")]
    sls(Isa::Neon, Format::F32, Spec::Any),
    #[cfg(target_arch = "aarch64")]
    sls(Isa::Neon, Format::F16, Spec::Dim(16)),
    #[cfg(target_arch = "aarch64")]
    sls(Isa::Neon, Format::F16, Spec::Dim(32)),
    #[cfg(target_arch = "aarch64")]
    sls(Isa::Neon, Format::F16, Spec::Dim(64)),
    #[cfg(target_arch = "aarch64")]
    sls(Isa::Neon, Format::F16, Spec::Dim(128)),
    #[cfg(target_arch = "aarch64")]
    sls(Isa::Neon, Format::F16, Spec::Dim(256)),
    #[cfg(target_arch = "aarch64")]
    sls(Isa::Neon, Format::F16, Spec::Any),
    #[cfg(target_arch = "aarch64")]
    sls(Isa::Neon, Format::Bf16, Spec::Dim(16)),
    #[cfg(target_arch = "aarch64")]
    sls(Isa::Neon, Format::Bf16, Spec::Dim(32)),
    #[cfg(target_arch = "aarch64")]
    sls(Isa::Neon, Format::Bf16, Spec::Dim(64)),
    #[cfg(target_arch = "aarch64")]
    sls(Isa::Neon, Format::Bf16, Spec::Dim(128)),
    #[cfg(target_arch = "aarch64")]
    sls(Isa::Neon, Format::Bf16, Spec::Dim(256)),
    #[cfg(target_arch = "aarch64")]
    sls(Isa::Neon, Format::Bf16, Spec::Any),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx2, Format::Q8, Spec::Dim(16)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx2, Format::Q8, Spec::Dim(32)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx2, Format::Q8, Spec::Dim(64)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx2, Format::Q8, Spec::Dim(128)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx2, Format::Q8, Spec::Dim(256)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx2, Format::Q8, Spec::Any),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx2, Format::Q4, Spec::Dim(16)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx2, Format::Q4, Spec::Dim(32)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx2, Format::Q4, Spec::Dim(64)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx2, Format::Q4, Spec::Dim(128)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx2, Format::Q4, Spec::Dim(256)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx2, Format::Q4, Spec::Any),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx2, Format::Q2, Spec::Dim(16)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx2, Format::Q2, Spec::Dim(32)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx2, Format::Q2, Spec::Dim(64)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx2, Format::Q2, Spec::Dim(128)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx2, Format::Q2, Spec::Dim(256)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx2, Format::Q2, Spec::Any),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx512, Format::Q8, Spec::Dim(16)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx512, Format::Q8, Spec::Dim(32)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx512, Format::Q8, Spec::Dim(64)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx512, Format::Q8, Spec::Dim(128)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx512, Format::Q8, Spec::Dim(256)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx512, Format::Q8, Spec::Any),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx512, Format::Q4, Spec::Dim(16)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx512, Format::Q4, Spec::Dim(32)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx512, Format::Q4, Spec::Dim(64)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx512, Format::Q4, Spec::Dim(128)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx512, Format::Q4, Spec::Dim(256)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx512, Format::Q4, Spec::Any),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx512, Format::Q2, Spec::Dim(16)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx512, Format::Q2, Spec::Dim(32)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx512, Format::Q2, Spec::Dim(64)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx512, Format::Q2, Spec::Dim(128)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx512, Format::Q2, Spec::Dim(256)),
    #[cfg(target_arch = "x86_64")]
    sls_q(Isa::Avx512, Format::Q2, Spec::Any),
    #[cfg(target_arch = "aarch64")]
    sls_q(Isa::Neon, Format::Q8, Spec::Dim(16)),
    #[cfg(target_arch = "aarch64")]
    sls_q(Isa::Neon, Format::Q8, Spec::Dim(32)),
    #[cfg(target_arch = "aarch64")]
    sls_q(Isa::Neon, Format::Q8, Spec::Dim(64)),
    #[cfg(target_arch = "aarch64")]
    sls_q(Isa::Neon, Format::Q8, Spec::Dim(128)),
    #[cfg(target_arch = "aarch64")]
    sls_q(Isa::Neon, Format::Q8, Spec::Dim(256)),
    #[cfg(target_arch = "aarch64")]
    sls_q(Isa::Neon, Format::Q8, Spec::Any),
    #[cfg(target_arch = "aarch64")]
    sls_q(Isa::Neon, Format::Q4, Spec::Dim(16)),
    #[cfg(target_arch = "aarch64")]
    sls_q(Isa::Neon, Format::Q4, Spec::Dim(32)),
    #[cfg(target_arch = "aarch64")]
    sls_q(Isa::Neon, Format::Q4, Spec::Dim(64)),
    #[cfg(target_arch = "aarch64")]
    sls_q(Isa::Neon, Format::Q4, Spec::Dim(128)),
    #[cfg(target_arch = "aarch64")]
    sls_q(Isa::Neon, Format::Q4, Spec::Dim(256)),
    #[cfg(target_arch = "aarch64")]
    sls_q(Isa::Neon, Format::Q4, Spec::Any),
    #[cfg(target_arch = "aarch64")]
    sls_q(Isa::Neon, Format::Q2, Spec::Dim(16)),
    #[cfg(target_arch = "aarch64")]
    sls_q(Isa::Neon, Format::Q2, Spec::Dim(32)),
    #[cfg(target_arch = "aarch64")]
    sls_q(Isa::Neon, Format::Q2, Spec::Dim(64)),
    #[cfg(target_arch = "aarch64")]
    sls_q(Isa::Neon, Format::Q2, Spec::Dim(128)),
    #[cfg(target_arch = "aarch64")]
    sls_q(Isa::Neon, Format::Q2, Spec::Dim(256)),
    #[cfg(target_arch = "aarch64")]
    sls_q(Isa::Neon, Format::Q2, Spec::Any),
    scalar(
        Op::OutlierEmbeddingBag(Format::Q8),
        Kernel::OutlierEmbeddingBag(reference_outlier_bag),
    ),
    scalar(
        Op::OutlierEmbeddingBag(Format::Q4),
        Kernel::OutlierEmbeddingBag(reference_outlier_bag),
    ),
    scalar(
        Op::OutlierEmbeddingBag(Format::Q2),
        Kernel::OutlierEmbeddingBag(reference_outlier_bag),
    ),
    #[cfg(target_arch = "x86_64")]
    sls_outlier(Isa::Avx2, Format::Q8, Spec::Dim(64)),
    #[cfg(target_arch = "x86_64")]
    sls_outlier(Isa::Avx2, Format::Q8, Spec::Dim(128)),
    #[cfg(target_arch = "x86_64")]
    sls_outlier(Isa::Avx2, Format::Q8, Spec::Any),
    #[cfg(target_arch = "x86_64")]
    sls_outlier(Isa::Avx2, Format::Q4, Spec::Dim(64)),
    #[cfg(target_arch = "x86_64")]
    sls_outlier(Isa::Avx2, Format::Q4, Spec::Dim(128)),
    #[cfg(target_arch = "x86_64")]
    sls_outlier(Isa::Avx2, Format::Q4, Spec::Any),
    #[cfg(target_arch = "x86_64")]
    sls_outlier(Isa::Avx2, Format::Q2, Spec::Dim(64)),
    #[cfg(target_arch = "x86_64")]
    sls_outlier(Isa::Avx2, Format::Q2, Spec::Dim(128)),
    #[cfg(target_arch = "x86_64")]
    sls_outlier(Isa::Avx2, Format::Q2, Spec::Any),
    #[cfg(target_arch = "x86_64")]
    sls_outlier(Isa::Avx512, Format::Q8, Spec::Dim(64)),
    #[cfg(target_arch = "x86_64")]
    sls_outlier(Isa::Avx512, Format::Q8, Spec::Dim(128)),
    #[cfg(target_arch = "x86_64")]
    sls_outlier(Isa::Avx512, Format::Q8, Spec::Any),
    #[cfg(target_arch = "x86_64")]
    sls_outlier(Isa::Avx512, Format::Q4, Spec::Dim(64)),
    #[cfg(target_arch = "x86_64")]
    sls_outlier(Isa::Avx512, Format::Q4, Spec::Dim(128)),
    #[cfg(target_arch = "x86_64")]
    sls_outlier(Isa::Avx512, Format::Q4, Spec::Any),
    #[cfg(target_arch = "x86_64")]
    sls_outlier(Isa::Avx512, Format::Q2, Spec::Dim(64)),
    #[cfg(target_arch = "x86_64")]
    sls_outlier(Isa::Avx512, Format::Q2, Spec::Dim(128)),
    #[cfg(target_arch = "x86_64")]
    sls_outlier(Isa::Avx512, Format::Q2, Spec::Any),
    #[cfg(target_arch = "aarch64")]
    sls_outlier(Isa::Neon, Format::Q8, Spec::Dim(64)),
    #[cfg(target_arch = "aarch64")]
    sls_outlier(Isa::Neon, Format::Q8, Spec::Dim(128)),
    #[cfg(target_arch = "aarch64")]
    sls_outlier(Isa::Neon, Format::Q8, Spec::Any),
    #[cfg(target_arch = "aarch64")]
    sls_outlier(Isa::Neon, Format::Q4, Spec::Dim(64)),
    #[cfg(target_arch = "aarch64")]
    sls_outlier(Isa::Neon, Format::Q4, Spec::Dim(128)),
    #[cfg(target_arch = "aarch64")]
    sls_outlier(Isa::Neon, Format::Q4, Spec::Any),
    #[cfg(target_arch = "aarch64")]
    sls_outlier(Isa::Neon, Format::Q2, Spec::Dim(64)),
    #[cfg(target_arch = "aarch64")]
    sls_outlier(Isa::Neon, Format::Q2, Spec::Dim(128)),
    #[cfg(target_arch = "aarch64")]
    sls_outlier(Isa::Neon, Format::Q2, Spec::Any),
    comp(Isa::Scalar, Combine::Product, Spec::Any),
    comp(Isa::Scalar, Combine::Sum, Spec::Any),
    comp(Isa::Scalar, Combine::Concat, Spec::Any),
    #[cfg(target_arch = "x86_64")]
    comp(Isa::Avx2, Combine::Product, Spec::Any),
    #[cfg(target_arch = "x86_64")]
    comp(Isa::Avx2, Combine::Product, Spec::Dim(16)),
    #[cfg(target_arch = "x86_64")]
    comp(Isa::Avx2, Combine::Product, Spec::Dim(32)),
    #[cfg(target_arch = "x86_64")]
    comp(Isa::Avx2, Combine::Product, Spec::Dim(64)),
    #[cfg(target_arch = "x86_64")]
    comp(Isa::Avx2, Combine::Sum, Spec::Any),
    #[cfg(target_arch = "x86_64")]
    comp(Isa::Avx2, Combine::Sum, Spec::Dim(16)),
    #[cfg(target_arch = "x86_64")]
    comp(Isa::Avx2, Combine::Sum, Spec::Dim(32)),
    #[cfg(target_arch = "x86_64")]
    comp(Isa::Avx2, Combine::Sum, Spec::Dim(64)),
    #[cfg(target_arch = "x86_64")]
    comp(Isa::Avx2, Combine::Concat, Spec::Any),
    #[cfg(target_arch = "x86_64")]
    comp(Isa::Avx512, Combine::Product, Spec::Any),
    #[cfg(target_arch = "x86_64")]
    comp(Isa::Avx512, Combine::Product, Spec::Dim(16)),
    #[cfg(target_arch = "x86_64")]
    comp(Isa::Avx512, Combine::Product, Spec::Dim(32)),
    #[cfg(target_arch = "x86_64")]
    comp(Isa::Avx512, Combine::Product, Spec::Dim(64)),
    #[cfg(target_arch = "x86_64")]
    comp(Isa::Avx512, Combine::Product, Spec::Dim(128)),
    #[cfg(target_arch = "x86_64")]
    comp(Isa::Avx512, Combine::Sum, Spec::Any),
    #[cfg(target_arch = "x86_64")]
    comp(Isa::Avx512, Combine::Sum, Spec::Dim(16)),
    #[cfg(target_arch = "x86_64")]
    comp(Isa::Avx512, Combine::Sum, Spec::Dim(32)),
    #[cfg(target_arch = "x86_64")]
    comp(Isa::Avx512, Combine::Sum, Spec::Dim(64)),
    #[cfg(target_arch = "x86_64")]
    comp(Isa::Avx512, Combine::Sum, Spec::Dim(128)),
    #[cfg(target_arch = "x86_64")]
    comp(Isa::Avx512, Combine::Concat, Spec::Any),
    #[cfg(target_arch = "aarch64")]
    comp(Isa::Neon, Combine::Product, Spec::Any),
    #[cfg(target_arch = "aarch64")]
    comp(Isa::Neon, Combine::Product, Spec::Dim(16)),
    #[cfg(target_arch = "aarch64")]
    comp(Isa::Neon, Combine::Product, Spec::Dim(32)),
    #[cfg(target_arch = "aarch64")]
    comp(Isa::Neon, Combine::Product, Spec::Dim(64)),
    #[cfg(target_arch = "aarch64")]
    comp(Isa::Neon, Combine::Sum, Spec::Any),
    #[cfg(target_arch = "aarch64")]
    comp(Isa::Neon, Combine::Sum, Spec::Dim(16)),
    #[cfg(target_arch = "aarch64")]
    comp(Isa::Neon, Combine::Sum, Spec::Dim(32)),
    #[cfg(target_arch = "aarch64")]
    comp(Isa::Neon, Combine::Sum, Spec::Dim(64)),
    #[cfg(target_arch = "aarch64")]
    comp(Isa::Neon, Combine::Concat, Spec::Any),
];

/// Every kernel lowp has, for tests, benchmarks and the report.
pub fn entries() -> &'static [Entry] {
    ENTRIES
}

/// The kernels for `op` that this CPU can run at `level`.
pub fn runnable(op: Op, level: Isa) -> impl Iterator<Item = &'static Entry> {
    ENTRIES
        .iter()
        .filter(move |e| e.op == op && e.isa.runs_under(level) && e.isa.is_available())
}

/// The kernel dispatch uses for `op` at dimension `dim` under level `level`: the highest
/// level at or below `level`, and within it a kernel specialized for `dim` before a
/// general one. The Scalar entry of every operation guarantees an answer.
pub fn select(op: Op, dim: usize, level: Isa) -> &'static Entry {
    runnable(op, level)
        .filter(|e| e.spec.accepts(dim))
        .max_by_key(|e| (e.isa, e.spec != Spec::Any))
        .unwrap_or_else(|| panic!("the registry has no Scalar entry for {op}"))
}

thread_local! {
    static LAST_RUN: Cell<Option<(Op, Isa, Spec)>> = const { Cell::new(None) };
}

/// Notes on this thread that `entry` is about to run (read by [`last_run`]).
pub(crate) fn record(entry: &Entry) {
    LAST_RUN.with(|last| last.set(Some((entry.op, entry.isa, entry.spec))));
}

/// The (operation, level, specialization) of the last kernel a dispatched operation ran
/// on this thread. Tests use it to prove that a level ran its own kernel rather than
/// falling back silently.
pub fn last_run() -> Option<(Op, Isa, Spec)> {
    LAST_RUN.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_a_scalar_entry() {
        for op in Op::all() {
            let scalar: Vec<_> = ENTRIES
                .iter()
                .filter(|e| e.op == op && e.isa == Isa::Scalar)
                .collect();
            assert_eq!(scalar.len(), 1, "{op}");
            assert_eq!(scalar[0].spec, Spec::Any, "{op}");
        }
    }

    #[test]
    fn keys_are_unique() {
        for (i, a) in ENTRIES.iter().enumerate() {
            for b in &ENTRIES[i + 1..] {
                assert!(
                    (a.op, a.isa, a.spec) != (b.op, b.isa, b.spec),
                    "duplicate entry {} {} {:?}",
                    a.op,
                    a.isa,
                    a.spec
                );
            }
        }
    }

    #[test]
    fn scalar_cap_selects_scalar() {
        for op in Op::all() {
            assert_eq!(select(op, 64, Isa::Scalar).isa, Isa::Scalar);
        }
    }
}
