//! Wrapping i64 GEMM benchmark inputs, shared by `benches/gemm_i64.rs` and the report:
//! square sizes and small-batch shapes, row-major, values over the whole i64 range. Each
//! case holds the reference model's result for its own inputs.

use lowp::gemm::{MatMut, MatRef};
use lowp::reference;
use lowp::registry::{Entry, Kernel};
use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};

/// (m, n, k): square {64, 256, 1024}, then the small batches m ∈ {1, 16, 64} with
/// n = k = 1024.
pub const I64_SHAPES: [(usize, usize, usize); 6] = [
    (64, 64, 64),
    (256, 256, 256),
    (1024, 1024, 1024),
    (1, 1024, 1024),
    (16, 1024, 1024),
    (64, 1024, 1024),
];

/// `C = A·B` wrapping, A `m × k`, B `k × n`, C `m × n`, all row-major.
pub struct I64GemmCase {
    /// Rows of A and C.
    pub m: usize,
    /// Columns of B and C.
    pub n: usize,
    /// Columns of A, rows of B.
    pub k: usize,
    a: Vec<i64>,
    b: Vec<i64>,
    expected: Vec<i64>,
}

impl I64GemmCase {
    /// Random operands of this shape, and the reference's result.
    pub fn new((m, n, k): (usize, usize, usize)) -> Self {
        let mut rng = TestRng::from_seed(RngAlgorithm::XorShift, &[7; 16]);
        let mut case = I64GemmCase {
            m,
            n,
            k,
            a: (0..m * k).map(|_| rng.random()).collect(),
            b: (0..k * n).map(|_| rng.random()).collect(),
            expected: Vec::new(),
        };
        let mut out = vec![0; m * n];
        let (a, b) = case.views();
        reference::gemm_i64(m, n, k, &a, &b, &mut case.c(&mut out), false)
            .expect("valid benchmark inputs");
        case.expected = out;
        case
    }

    fn views(&self) -> (MatRef<'_>, MatRef<'_>) {
        let row_major = |data, cols| MatRef {
            data,
            row_stride: cols,
            col_stride: 1,
        };
        (row_major(&self.a, self.k), row_major(&self.b, self.n))
    }

    fn c<'a>(&self, out: &'a mut [i64]) -> MatMut<'a> {
        MatMut {
            data: out,
            row_stride: self.n,
            col_stride: 1,
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

    /// `m{m}_n{n}_k{k}`.
    pub fn name(&self) -> String {
        format!("m{}_n{}_k{}", self.m, self.n, self.k)
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
        let (a, b) = self.views();
        // SAFETY: the reference accepted the same views and sizes in `new`, after the
        // validation (`validate_i64`) the kernel contract asks for.
        unsafe { kernel(self.m, self.n, self.k, &a, &b, &mut self.c(out), false) }
            .expect("valid benchmark inputs");
    }

    /// Whether `out` is the reference's result.
    pub fn is_exact(&self, out: &[i64]) -> bool {
        out == self.expected
    }
}
