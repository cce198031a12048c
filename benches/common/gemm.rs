//! GEMM benchmark inputs, shared by `benches/gemm.rs` and the report: u8 × i8 with a
//! requantizing u8 output stage at small batch, and square wrapping i64 GEMM. Each case
//! holds the reference model's result for its own inputs.

#![allow(dead_code)] // the bench and the report each use their own subset

use lowp::gemm::{GemmOutput, MatMut, MatRef, OutputStage, PerColumn, QuantType, RequantBias};
use lowp::registry::{self, Entry, Kernel, Op};
use lowp::{Isa, PackedB, U8I8Block, U8I8Problem, WeightLayout, reference};
use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};

/// Batch sizes (rows of A) of the u8 × i8 GEMM in the report.
pub const U8I8_M: [usize; 5] = [1, 4, 16, 64, 256];
/// Its n and k in the report.
pub const U8I8_NK: usize = 1024;
/// Batch sizes of the u8 × i8 GEMM benchmarks.
pub const U8I8_BENCH_M: [usize; 5] = [1, 4, 16, 64, 256];
/// (n, k) of the u8 × i8 GEMM benchmarks.
pub const U8I8_BENCH_NK: [(usize, usize); 4] = [(256, 512), (512, 512), (1024, 1024), (4096, 1024)];
/// m = n = k of the i64 GEMM.
pub const I64_SIZE: usize = 256;

fn rng(seed: u8) -> TestRng {
    TestRng::from_seed(RngAlgorithm::XorShift, &[seed; 16])
}

/// The output stage a u8 × i8 case runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum U8I8Stage {
    /// Raw i32.
    RawI32,
    /// Requantize to u8: i32 bias, per-column multipliers, zero point 128.
    RequantU8,
    /// Requantize to i8 with ReLU: f32 bias, per-column scales and multipliers.
    RequantI8,
    /// Dequantize to f32: per-column weight scales and bias.
    Dequantize,
}

impl U8I8Stage {
    /// Every stage.
    pub const ALL: [U8I8Stage; 4] = [
        U8I8Stage::RawI32,
        U8I8Stage::RequantU8,
        U8I8Stage::RequantI8,
        U8I8Stage::Dequantize,
    ];

    /// The name benchmark ids and report rows use.
    pub fn name(self) -> &'static str {
        match self {
            U8I8Stage::RawI32 => "raw_i32",
            U8I8Stage::RequantU8 => "requant_u8",
            U8I8Stage::RequantI8 => "requant_i8",
            U8I8Stage::Dequantize => "dequant_f32",
        }
    }
}

/// An output buffer of a stage's type.
#[derive(Clone, Debug)]
pub enum U8I8Out {
    /// For [`U8I8Stage::RawI32`].
    I32(Vec<i32>),
    /// For [`U8I8Stage::RequantU8`].
    U8(Vec<u8>),
    /// For [`U8I8Stage::RequantI8`].
    I8(Vec<i8>),
    /// For [`U8I8Stage::Dequantize`].
    F32(Vec<f32>),
}

impl U8I8Out {
    fn view(&mut self) -> GemmOutput<'_> {
        match self {
            U8I8Out::I32(v) => GemmOutput::I32(v),
            U8I8Out::U8(v) => GemmOutput::U8(v),
            U8I8Out::I8(v) => GemmOutput::I8(v),
            U8I8Out::F32(v) => GemmOutput::F32(v),
        }
    }

    /// Every element's bits, for an exact comparison (f32 by bit pattern).
    fn bits(&self) -> Vec<u32> {
        match self {
            U8I8Out::I32(v) => v.iter().map(|&x| x as u32).collect(),
            U8I8Out::U8(v) => v.iter().map(|&x| u32::from(x)).collect(),
            U8I8Out::I8(v) => v.iter().map(|&x| x as u32).collect(),
            U8I8Out::F32(v) => v.iter().map(|x| x.to_bits()).collect(),
        }
    }
}

/// `C = stage((A − za)(B − zb))` with A `m × k` u8 (za = 128), B `k × n` i8 (zb = 3).
pub struct U8I8Case {
    /// Rows of A.
    pub m: usize,
    /// Columns of B.
    pub n: usize,
    /// Columns of A, rows of B.
    pub k: usize,
    /// The output stage.
    pub kind: U8I8Stage,
    a: Vec<u8>,
    b: Vec<i8>,
    bias: Vec<i32>,
    bias_f32: Vec<f32>,
    scales: Vec<f32>,
    multipliers: Vec<f32>,
    expected: Vec<u32>,
    /// B packed for each level that has a u8 × i8 kernel on this CPU.
    packed: Vec<PackedB>,
}

impl U8I8Case {
    /// Random operands of this shape with the u8 requantizing stage, and the reference's
    /// result.
    pub fn new(m: usize, n: usize, k: usize) -> Self {
        Self::with_stage(m, n, k, U8I8Stage::RequantU8)
    }

    /// Random operands of this shape and stage, and the reference's result.
    pub fn with_stage(m: usize, n: usize, k: usize, kind: U8I8Stage) -> Self {
        let mut rng = rng(3);
        let mut case = U8I8Case {
            m,
            n,
            k,
            kind,
            a: (0..m * k).map(|_| rng.random()).collect(),
            b: (0..k * n).map(|_| rng.random()).collect(),
            bias: (0..n).map(|_| rng.random_range(-1000..1000)).collect(),
            bias_f32: (0..n).map(|_| rng.random_range(-1.0..1.0)).collect(),
            scales: (0..n).map(|_| rng.random_range(0.001..0.01)).collect(),
            // Scaled so that typical results spread over the output range.
            multipliers: (0..n)
                .map(|_| rng.random_range(0.1..0.4) / k.max(1) as f32)
                .collect(),
            expected: Vec::new(),
            packed: Vec::new(),
        };
        let mut out = case.output();
        reference::gemm_u8i8(&case.problem(), &case.stage(), &mut out.view(), n)
            .expect("valid benchmark inputs");
        case.expected = out.bits();
        let levels: Vec<Isa> = Isa::available()
            .iter()
            .copied()
            .filter(|&isa| registry::runnable(Op::GemmU8I8, isa).any(|e| e.isa == isa))
            .collect();
        case.packed = levels
            .into_iter()
            .map(|isa| {
                PackedB::new(
                    &case.b,
                    k,
                    n,
                    WeightLayout::KByN,
                    case.problem().b_zero_point,
                    Some(isa),
                )
                .expect("valid benchmark weights")
            })
            .collect();
        case
    }

    fn problem(&self) -> U8I8Problem<'_> {
        U8I8Problem {
            m: self.m,
            n: self.n,
            k: self.k,
            a: &self.a,
            a_stride: self.k,
            a_zero_point: 128,
            b: &self.b,
            b_zero_point: PerColumn::Tensor(3),
        }
    }

    fn stage(&self) -> OutputStage<'_> {
        match self.kind {
            U8I8Stage::RawI32 => OutputStage::RawI32,
            U8I8Stage::RequantU8 => OutputStage::Requantize {
                out: QuantType::U8,
                bias: RequantBias::I32(&self.bias),
                multiplier: PerColumn::Column(&self.multipliers),
                zero_point: 128,
                relu: false,
            },
            U8I8Stage::RequantI8 => OutputStage::Requantize {
                out: QuantType::I8,
                bias: RequantBias::F32 {
                    bias: &self.bias_f32,
                    act_times_w_scale: PerColumn::Column(&self.scales),
                },
                multiplier: PerColumn::Column(&self.multipliers),
                zero_point: -5,
                relu: true,
            },
            U8I8Stage::Dequantize => OutputStage::Dequantize {
                a_scale: 0.02,
                b_scale: PerColumn::Column(&self.scales),
                bias: Some(&self.bias_f32),
                relu: false,
            },
        }
    }

    /// A zeroed output buffer of the stage's type.
    pub fn output(&self) -> U8I8Out {
        let len = self.out_len();
        match self.kind {
            U8I8Stage::RawI32 => U8I8Out::I32(vec![0; len]),
            U8I8Stage::RequantU8 => U8I8Out::U8(vec![0; len]),
            U8I8Stage::RequantI8 => U8I8Out::I8(vec![0; len]),
            U8I8Stage::Dequantize => U8I8Out::F32(vec![0.0; len]),
        }
    }

    /// 2·m·n·k: a multiply and an add per product.
    pub fn ops(&self) -> usize {
        2 * self.m * self.n * self.k
    }

    /// Bytes of the packed weights one call reads (K padded to 4, N to 16).
    pub fn packed_bytes(&self) -> usize {
        self.k.div_ceil(4) * 4 * self.n.div_ceil(16) * 16
    }

    /// Elements of the output.
    pub fn out_len(&self) -> usize {
        self.m * self.n
    }

    /// Runs `entry`'s kernel itself (no dispatch) into `out`, a u8 buffer of the
    /// [`U8I8Stage::RequantU8`] stage.
    ///
    /// # Panics
    ///
    /// If the case's stage is not `RequantU8`, or as [`Self::run_into`].
    pub fn run(&self, entry: &Entry, out: &mut [u8]) {
        assert_eq!(self.kind, U8I8Stage::RequantU8);
        assert_eq!(out.len(), self.out_len());
        self.run_view(entry, GemmOutput::U8(out));
    }

    /// Runs `entry`'s kernel itself (no dispatch) into `out` (from [`Self::output`]).
    ///
    /// # Panics
    ///
    /// If `entry` is not a u8 × i8 GEMM kernel, `out` is not this case's output, or the
    /// kernel fails.
    pub fn run_into(&self, entry: &Entry, out: &mut U8I8Out) {
        self.run_view(entry, out.view());
    }

    fn run_view(&self, entry: &Entry, mut out: GemmOutput<'_>) {
        let Kernel::GemmU8I8(kernel) = entry.kernel else {
            panic!("{} is not a u8i8 GEMM kernel", entry.op);
        };
        let packed = self
            .packed
            .iter()
            .find(|p| p.isa() == entry.isa)
            .expect("B is packed for every level with a u8i8 kernel");
        let block = U8I8Block {
            a: &self.a,
            a_stride: self.k,
            a_zero_point: self.problem().a_zero_point,
            b: packed,
            rows: 0..self.m,
            cols: 0..self.n,
        };
        let stage = self.stage();
        let type_matches = matches!(
            (self.kind, &out),
            (U8I8Stage::RawI32, GemmOutput::I32(_))
                | (U8I8Stage::RequantU8, GemmOutput::U8(_))
                | (U8I8Stage::RequantI8, GemmOutput::I8(_))
                | (U8I8Stage::Dequantize, GemmOutput::F32(_))
        );
        assert!(type_matches, "output of the wrong type");
        assert_eq!(out.len(), self.out_len(), "output of the wrong size");
        // SAFETY: the reference accepted the same problem, stage and stride for an output
        // of `out_len` elements in `with_stage` (`U8I8Problem::validate`, which checks
        // what `U8I8Block::validate` does), `out` is of that type and size, and `packed` holds B
        // packed for this entry's level.
        unsafe { kernel(&block, &stage, &mut out, self.n) }.expect("valid benchmark inputs");
    }

    /// Whether `out` (a RequantU8 result) is the reference's result.
    pub fn is_exact(&self, out: &[u8]) -> bool {
        out.iter()
            .map(|&x| u32::from(x))
            .eq(self.expected.iter().copied())
    }

    /// Whether `out` is the reference's result, bit for bit.
    pub fn is_exact_out(&self, out: &U8I8Out) -> bool {
        out.bits() == self.expected
    }
}

/// `C = A·B` wrapping, all `size × size` row-major i64 over the full i64 range.
pub struct I64Case {
    /// m = n = k.
    pub size: usize,
    a: Vec<i64>,
    b: Vec<i64>,
    expected: Vec<i64>,
}

impl I64Case {
    /// Random operands of this size, and the reference's result.
    pub fn new(size: usize) -> Self {
        let mut rng = rng(4);
        let mut case = I64Case {
            size,
            a: (0..size * size).map(|_| rng.random()).collect(),
            b: (0..size * size).map(|_| rng.random()).collect(),
            expected: vec![0; size * size],
        };
        let mut out = vec![0; size * size];
        reference::gemm_i64(
            size,
            size,
            size,
            &case.view(&case.a),
            &case.view(&case.b),
            &mut MatMut {
                data: &mut out,
                row_stride: size,
                col_stride: 1,
            },
            false,
        )
        .expect("valid benchmark inputs");
        case.expected = out;
        case
    }

    fn view<'a>(&self, data: &'a [i64]) -> MatRef<'a> {
        MatRef {
            data,
            row_stride: self.size,
            col_stride: 1,
        }
    }

    /// 2·size³.
    pub fn ops(&self) -> usize {
        2 * self.size.pow(3)
    }

    /// Elements of the output.
    pub fn out_len(&self) -> usize {
        self.size * self.size
    }

    /// Runs `entry`'s kernel itself (no dispatch) into `out`.
    ///
    /// # Panics
    ///
    /// If `entry` is not an i64 GEMM kernel, `out` does not hold [`Self::out_len`]
    /// elements, or the kernel fails.
    pub fn run(&self, entry: &Entry, out: &mut [i64]) {
        let Kernel::GemmI64(kernel) = entry.kernel else {
            panic!("{} is not an i64 GEMM kernel", entry.op);
        };
        assert_eq!(out.len(), self.out_len());
        let n = self.size;
        let mut c = MatMut {
            data: out,
            row_stride: n,
            col_stride: 1,
        };
        // SAFETY: the reference accepted the same views and sizes in `new`, after the
        // validation (`validate_i64`) the kernel contract asks for.
        unsafe {
            kernel(
                n,
                n,
                n,
                &self.view(&self.a),
                &self.view(&self.b),
                &mut c,
                false,
            )
        }
        .expect("valid benchmark inputs");
    }

    /// Whether `out` is the reference's result.
    pub fn is_exact(&self, out: &[i64]) -> bool {
        out == self.expected
    }
}
