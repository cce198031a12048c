//! GEMM benchmark inputs, shared by `benches/gemm.rs` and the report: u8 × i8 with a
//! requantizing u8 output stage at small batch, and square wrapping i64 GEMM. Each case
//! holds the reference model's result for its own inputs.

use lowp::gemm::{GemmOutput, MatMut, MatRef, OutputStage, PerColumn, QuantType, RequantBias};
use lowp::registry::{self, Entry, Kernel, Op};
use lowp::{Isa, PackedB, U8I8Block, U8I8Problem, WeightLayout, reference};
use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};

/// Batch sizes (rows of A) of the u8 × i8 GEMM.
pub const U8I8_M: [usize; 3] = [1, 16, 64];
/// Its n and k.
pub const U8I8_NK: usize = 1024;
/// m = n = k of the i64 GEMM.
pub const I64_SIZE: usize = 256;

fn rng(seed: u8) -> TestRng {
    TestRng::from_seed(RngAlgorithm::XorShift, &[seed; 16])
}

/// `C = requantize_u8((A − za)(B − zb) + bias)` with A `m × k` u8, B `k × n` i8.
pub struct U8I8Case {
    /// Rows of A.
    pub m: usize,
    /// Columns of B.
    pub n: usize,
    /// Columns of A, rows of B.
    pub k: usize,
    a: Vec<u8>,
    b: Vec<i8>,
    bias: Vec<i32>,
    expected: Vec<u8>,
    /// B packed for each level that has a u8 × i8 kernel on this CPU.
    packed: Vec<PackedB>,
}

impl U8I8Case {
    /// Random operands of this shape, and the reference's result.
    pub fn new(m: usize, n: usize, k: usize) -> Self {
        let mut rng = rng(3);
        let mut case = U8I8Case {
            m,
            n,
            k,
            a: (0..m * k).map(|_| rng.random()).collect(),
            b: (0..k * n).map(|_| rng.random()).collect(),
            bias: (0..n).map(|_| rng.random_range(-1000..1000)).collect(),
            expected: vec![0; m * n],
            packed: Vec::new(),
        };
        let mut out = vec![0; m * n];
        reference::gemm_u8i8(
            &case.problem(),
            &case.stage(),
            &mut GemmOutput::U8(&mut out),
            n,
        )
        .expect("valid benchmark inputs");
        case.expected = out;
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

    /// Scaled so that typical results spread over the u8 range around the zero point.
    fn stage(&self) -> OutputStage<'_> {
        OutputStage::Requantize {
            out: QuantType::U8,
            bias: RequantBias::I32(&self.bias),
            multiplier: PerColumn::Tensor(0.25 / self.k as f32),
            zero_point: 128,
            relu: false,
        }
    }

    /// 2·m·n·k: a multiply and an add per product.
    pub fn ops(&self) -> usize {
        2 * self.m * self.n * self.k
    }

    /// Elements of the output.
    pub fn out_len(&self) -> usize {
        self.m * self.n
    }

    /// Runs `entry`'s kernel itself (no dispatch) into `out`.
    ///
    /// # Panics
    ///
    /// If `entry` is not a u8 × i8 GEMM kernel, `out` does not hold [`Self::out_len`]
    /// elements, or the kernel fails.
    pub fn run(&self, entry: &Entry, out: &mut [u8]) {
        let Kernel::GemmU8I8(kernel) = entry.kernel else {
            panic!("{} is not a u8i8 GEMM kernel", entry.op);
        };
        assert_eq!(out.len(), self.out_len());
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
        // SAFETY: the reference accepted the same problem, stage, output size and stride in
        // `new` (`U8I8Problem::validate`, which checks what `U8I8Block::validate` does), and
        // `packed` holds B packed for this entry's level.
        unsafe { kernel(&block, &self.stage(), &mut GemmOutput::U8(out), self.n) }
            .expect("valid benchmark inputs");
    }

    /// Whether `out` is the reference's result.
    pub fn is_exact(&self, out: &[u8]) -> bool {
        out == self.expected
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
