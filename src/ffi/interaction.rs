//! DLRM feature interaction from C: `lowp_interaction`.

use super::embedding::float_type_from;
use super::{
    Failure, FfiResult, LowpStatus, guard, isa_code, isa_from, read_in, slice_in, slice_out,
    write_out,
};
use crate::embedding::Output;
use crate::embedding::plan::OutputType;
use crate::interaction::{Embeddings, InteractionOptions, Vectors, interaction};

/// `lowp_vectors`: a borrowed array of f32 or bf16 vectors.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LowpVectors {
    /// `len` elements of `type`.
    pub data: *const std::ffi::c_void,
    /// Number of elements.
    pub len: usize,
    /// `lowp_float_type`: `LOWP_FLOAT_F32` or `LOWP_FLOAT_BF16`.
    pub r#type: i32,
}

/// `lowp_interaction_options`: the shape and options of one interaction call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LowpInteractionOptions {
    /// Samples in the batch.
    pub batch: usize,
    /// Vectors per sample: the dense one and `features − 1` embeddings.
    pub features: usize,
    /// Elements per vector.
    pub dim: usize,
    /// Output rows are zero-padded to a multiple of this.
    pub pad_to: usize,
    /// Elements between output rows; 0 = the padded row width.
    pub out_stride: usize,
    /// Nonzero: include the self-interactions.
    pub diagonal: i32,
    /// `lowp_isa`, or `LOWP_ISA_AUTO`.
    pub isa: i32,
}

/// Fills `*options` with the defaults for a batch: no diagonal, no padding, packed rows,
/// `LOWP_ISA_AUTO`.
///
/// # Safety
///
/// `options` must be NULL (reported) or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lowp_interaction_options_init(
    options: *mut LowpInteractionOptions,
    batch: usize,
    features: usize,
    dim: usize,
) -> LowpStatus {
    guard("lowp_interaction_options_init", || {
        let d = InteractionOptions::new(batch, features, dim);
        let c = LowpInteractionOptions {
            batch: d.batch,
            features: d.features,
            dim: d.dim,
            pad_to: d.pad_to,
            out_stride: d.out_stride.unwrap_or(0),
            diagonal: i32::from(d.diagonal),
            isa: d.isa.map_or(super::LOWP_ISA_AUTO, isa_code),
        };
        // SAFETY: the caller passes writable options or NULL.
        unsafe { write_out(options, c, "options") }
    })
}

/// The vectors `v` describes.
///
/// # Safety
///
/// `v.data` must hold `v.len` elements of `v.type` (or `v.len` be 0).
unsafe fn vectors<'a>(v: &LowpVectors, what: &str) -> FfiResult<Vectors<'a>> {
    // SAFETY (both arms): forwarded from the caller; slice_in checks NULL and alignment.
    Ok(match float_type_from(v.r#type, what)? {
        OutputType::F32 => Vectors::F32(unsafe { slice_in(v.data.cast(), v.len, what) }?),
        OutputType::Bf16 => Vectors::Bf16(unsafe { slice_in(v.data.cast(), v.len, what) }?),
        OutputType::F16 => {
            return Err(Failure::bad_parameter(
                what,
                "interaction inputs are f32 or bf16, not f16",
            ));
        }
    })
}

/// DLRM's feature interaction: see the header.
///
/// # Safety
///
/// Every pointer must be NULL (reported unless its length is 0) or valid for its length as
/// the header states; `out` must not overlap the inputs.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn lowp_interaction(
    options: *const LowpInteractionOptions,
    dense: *const LowpVectors,
    embeddings_layout: i32,
    embeddings: *const LowpVectors,
    num_embeddings: usize,
    out_type: i32,
    out: *mut std::ffi::c_void,
    out_len: usize,
) -> LowpStatus {
    guard("lowp_interaction", || {
        // SAFETY (all blocks): the header's contract makes each pointer valid for the
        // length passed with it; the helpers check NULL, alignment and the byte size first.
        let o = unsafe { read_in(options, "options") }?;
        let options = InteractionOptions {
            batch: o.batch,
            features: o.features,
            dim: o.dim,
            diagonal: o.diagonal != 0,
            pad_to: o.pad_to,
            out_stride: (o.out_stride != 0).then_some(o.out_stride),
            isa: isa_from(o.isa, "options->isa")?,
        };
        let dense = unsafe { vectors(&read_in(dense, "dense")?, "dense") }?;
        let described = unsafe { slice_in(embeddings, num_embeddings, "embeddings") }?;
        let mut separate = Vec::with_capacity(described.len());
        for (f, v) in described.iter().enumerate() {
            separate.push(unsafe { vectors(v, &format!("embeddings[{f}]")) }?);
        }
        let embeddings = match (embeddings_layout, separate.as_slice()) {
            (0, &[block]) => Embeddings::Block(block),
            (0, _) => {
                return Err(Failure::bad_parameter(
                    "num_embeddings",
                    format!("{num_embeddings} given; LOWP_EMBEDDINGS_BLOCK takes exactly 1"),
                ));
            }
            (1, blocks) => Embeddings::Separate(blocks),
            (other, _) => {
                return Err(Failure::bad_parameter(
                    "embeddings_layout",
                    format!("{other} is not a lowp_embeddings_layout value"),
                ));
            }
        };
        let out = unsafe {
            match float_type_from(out_type, "out_type")? {
                OutputType::F32 => Output::F32(slice_out(out.cast(), out_len, "out")?),
                OutputType::F16 => Output::F16(slice_out(out.cast(), out_len, "out")?),
                OutputType::Bf16 => Output::Bf16(slice_out(out.cast(), out_len, "out")?),
            }
        };
        interaction(dense, embeddings, &options, out)?;
        Ok(())
    })
}
