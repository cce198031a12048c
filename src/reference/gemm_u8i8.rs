use crate::error::Result;
use crate::gemm::{GemmOutput, OutputStage, U8I8Problem};

/// Placeholder (being written).
pub fn gemm_u8i8(
    _problem: &U8I8Problem<'_>,
    _stage: &OutputStage<'_>,
    _out: &mut GemmOutput<'_>,
    _out_stride: usize,
) -> Result<()> {
    unimplemented!()
}
