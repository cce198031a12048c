//! Comparing a run through each available level with the reference, bit for bit.

use std::fmt::Debug;

use half::{bf16, f16};
use lowp::{GemmOutput, Isa, Output};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::common::guard::GuardedVec;

/// Output element types, compared by bit pattern (so the sign of zero counts; NaN see
/// [`nan_blind`]), with a sentinel that marks elements nobody may write.
pub trait Bits: Copy + Debug {
    const SENTINEL: Self;
    fn bits(self) -> u64;
}

/// The bits a float result is compared by. lowp promises the reference's exact bits for
/// every result that is not NaN, and NaN wherever the reference has NaN; which NaN payload
/// and sign survive is not part of the promise, because neither Rust nor the hardware fixes
/// it (an add of two NaNs may return either operand's payload, LLVM may commute the add,
/// x86 propagates the first source's NaN and Arm's FMLA the addend's). Every NaN therefore
/// compares as one pattern outside every float's bit range. Float sentinels are finite,
/// so an element a kernel forgot to write still differs from a NaN the reference wrote.
fn nan_blind(is_nan: bool, bits: u64) -> u64 {
    if is_nan { u64::MAX } else { bits }
}

impl Bits for f32 {
    const SENTINEL: Self = f32::from_bits(0x5a5a_5a5a);
    fn bits(self) -> u64 {
        nan_blind(self.is_nan(), self.to_bits().into())
    }
}

impl Bits for f16 {
    const SENTINEL: Self = f16::from_bits(0x5a5a);
    fn bits(self) -> u64 {
        nan_blind(self.is_nan(), self.to_bits().into())
    }
}

impl Bits for bf16 {
    const SENTINEL: Self = bf16::from_bits(0x5a5a);
    fn bits(self) -> u64 {
        nan_blind(self.is_nan(), self.to_bits().into())
    }
}

impl Bits for u8 {
    const SENTINEL: Self = 0x5a;
    fn bits(self) -> u64 {
        self.into()
    }
}

impl Bits for i8 {
    const SENTINEL: Self = 0x5a;
    fn bits(self) -> u64 {
        (self as u8).into()
    }
}

impl Bits for i32 {
    const SENTINEL: Self = 0x5a5a_5a5a;
    fn bits(self) -> u64 {
        (self as u32).into()
    }
}

impl Bits for i64 {
    const SENTINEL: Self = 0x5a5a_5a5a_5a5a_5a5a;
    fn bits(self) -> u64 {
        self as u64
    }
}

/// Float outputs of embedding bags and dequantizers.
pub trait FloatOut: Bits {
    fn output(out: &mut [Self]) -> Output<'_>;
}

impl FloatOut for f32 {
    fn output(out: &mut [Self]) -> Output<'_> {
        Output::F32(out)
    }
}

impl FloatOut for f16 {
    fn output(out: &mut [Self]) -> Output<'_> {
        Output::F16(out)
    }
}

impl FloatOut for bf16 {
    fn output(out: &mut [Self]) -> Output<'_> {
        Output::Bf16(out)
    }
}

/// Outputs of the u8 × i8 GEMM's stages.
pub trait GemmOut: Bits {
    fn output(out: &mut [Self]) -> GemmOutput<'_>;
}

impl GemmOut for i32 {
    fn output(out: &mut [Self]) -> GemmOutput<'_> {
        GemmOutput::I32(out)
    }
}

impl GemmOut for u8 {
    fn output(out: &mut [Self]) -> GemmOutput<'_> {
        GemmOutput::U8(out)
    }
}

impl GemmOut for i8 {
    fn output(out: &mut [Self]) -> GemmOutput<'_> {
        GemmOutput::I8(out)
    }
}

impl GemmOut for f32 {
    fn output(out: &mut [Self]) -> GemmOutput<'_> {
        GemmOutput::F32(out)
    }
}

/// Which implementation a run goes through.
#[derive(Clone, Copy, Debug)]
pub enum Path {
    /// `lowp::reference::*` called directly.
    Reference,
    /// The dispatched operation with an explicit level.
    Level(Isa),
}

/// Runs `run` through the reference and through every available level, each on a fresh
/// guarded copy of `initial`, and checks that every level returns the reference's result
/// and, when that is `Ok`, leaves exactly the reference's bits. Also checks that the
/// reference leaves every element for which `written` is false untouched. Returns the
/// reference's result.
pub fn agree<T: Bits>(
    initial: &GuardedVec<T>,
    written: impl Fn(usize) -> bool,
    mut run: impl FnMut(Path, &mut [T]) -> lowp::Result<()>,
) -> Result<lowp::Result<()>, TestCaseError> {
    let mut expected_out = initial.clone();
    let expected = run(Path::Reference, &mut expected_out);
    if expected.is_ok() {
        let touched = (0..initial.len())
            .find(|&i| !written(i) && initial[i].bits() != expected_out[i].bits());
        prop_assert!(
            touched.is_none(),
            "the reference wrote element {touched:?}, which is outside the result"
        );
    }
    for &isa in Isa::available() {
        let mut out = initial.clone();
        let got = run(Path::Level(isa), &mut out);
        prop_assert_eq!(
            &got,
            &expected,
            "{}: result differs from the reference",
            isa
        );
        if got.is_ok() {
            let differs = (0..out.len()).find(|&i| out[i].bits() != expected_out[i].bits());
            if let Some(i) = differs {
                return Err(TestCaseError::fail(format!(
                    "{isa}: element {i} of {} is {:?} ({:#x}), the reference has {:?} ({:#x})",
                    out.len(),
                    out[i],
                    out[i].bits(),
                    expected_out[i],
                    expected_out[i].bits()
                )));
            }
        }
    }
    Ok(expected)
}

/// Elements a `rows × cols` matrix with row stride `stride` spans.
pub fn strided_len(rows: usize, cols: usize, stride: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * stride + cols
    }
}
