//! Embedding-bag plans from C: `lowp_embedding_bag_*`.

use super::{
    Failure, FfiResult, LowpStatus, format_from, guard, isa_code, isa_from, read_in, slice_in,
    slice_out, write_out,
};
use crate::embedding::plan::{
    EmbeddingBag, EmbeddingBagSpec, IndexType, OutputType, Prefetch, PrefetchHint, WeightsKind,
};
use crate::embedding::{Bags, IndexSlice, Output, Pooling, Weights};
use crate::format::Table;

/// `lowp_embedding_bag_spec`: what a plan computes. Enum fields are `int32_t` holding a
/// header enum's value, so that any value C stores is checked rather than trusted.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LowpEmbeddingBagSpec {
    /// Elements per row and per result.
    pub dim: usize,
    /// Entries ahead to prefetch; 0 = off.
    pub prefetch_distance: usize,
    /// `lowp_format`.
    pub format: i32,
    /// `lowp_index_type` of the indices.
    pub index_type: i32,
    /// `lowp_weights_kind`.
    pub weights: i32,
    /// `lowp_pooling`.
    pub pooling: i32,
    /// `lowp_float_type` of the results.
    pub output: i32,
    /// `lowp_prefetch_hint`.
    pub prefetch_hint: i32,
    /// `lowp_isa`, or `LOWP_ISA_AUTO`.
    pub isa: i32,
}

/// `lowp_bags`: one batch of bags, borrowed for the duration of a call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LowpBags {
    /// `num_indices` indices of the plan's index type.
    pub indices: *const std::ffi::c_void,
    /// Number of indices.
    pub num_indices: usize,
    /// `num_bounds` offsets or lengths of type `bounds_type`.
    pub bounds: *const std::ffi::c_void,
    /// Number of offsets or lengths.
    pub num_bounds: usize,
    /// `num_weights` f32 weights; NULL when the plan is unweighted.
    pub weights: *const f32,
    /// Number of weights.
    pub num_weights: usize,
    /// `lowp_bounds_kind`: what `bounds` holds.
    pub bounds_kind: i32,
    /// `lowp_index_type` of `bounds`.
    pub bounds_type: i32,
}

/// `lowp_embedding_bag`: an opaque plan.
#[derive(Debug)]
pub struct LowpEmbeddingBag(EmbeddingBag);

fn spec_to_c(spec: &EmbeddingBagSpec) -> LowpEmbeddingBagSpec {
    LowpEmbeddingBagSpec {
        dim: spec.dim,
        prefetch_distance: spec.prefetch.distance,
        format: spec.format as i32,
        index_type: spec.index as i32,
        weights: spec.weights as i32,
        pooling: spec.pooling as i32,
        output: spec.output as i32,
        prefetch_hint: spec.prefetch.hint as i32,
        isa: spec.isa.map_or(super::LOWP_ISA_AUTO, isa_code),
    }
}

/// Picks `options[code]`, or reports `code` as not a value of the C enum `enum_name`.
fn pick<T: Copy>(options: &[T], code: i32, what: &str, enum_name: &str) -> FfiResult<T> {
    usize::try_from(code)
        .ok()
        .and_then(|i| options.get(i).copied())
        .ok_or_else(|| Failure::bad_parameter(what, format!("{code} is not a {enum_name} value")))
}

pub(crate) fn index_type_from(code: i32, what: &str) -> FfiResult<IndexType> {
    pick(
        &[IndexType::I32, IndexType::I64],
        code,
        what,
        "lowp_index_type",
    )
}

pub(crate) fn float_type_from(code: i32, what: &str) -> FfiResult<OutputType> {
    pick(
        &[OutputType::F32, OutputType::F16, OutputType::Bf16],
        code,
        what,
        "lowp_float_type",
    )
}

fn spec_from_c(c: &LowpEmbeddingBagSpec) -> FfiResult<EmbeddingBagSpec> {
    Ok(EmbeddingBagSpec {
        format: format_from(c.format, "spec->format")?,
        dim: c.dim,
        index: index_type_from(c.index_type, "spec->index_type")?,
        weights: pick(
            &[
                WeightsKind::None,
                WeightsKind::PerIndex,
                WeightsKind::Positional,
            ],
            c.weights,
            "spec->weights",
            "lowp_weights_kind",
        )?,
        pooling: pick(
            &[Pooling::Sum, Pooling::Mean],
            c.pooling,
            "spec->pooling",
            "lowp_pooling",
        )?,
        output: float_type_from(c.output, "spec->output")?,
        prefetch: Prefetch {
            distance: c.prefetch_distance,
            hint: pick(
                &[
                    PrefetchHint::L1,
                    PrefetchHint::L2,
                    PrefetchHint::L3,
                    PrefetchHint::NonTemporal,
                ],
                c.prefetch_hint,
                "spec->prefetch_hint",
                "lowp_prefetch_hint",
            )?,
        },
        isa: isa_from(c.isa, "spec->isa")?,
    })
}

/// Fills `*spec` with the defaults for `format` rows of `dim` elements: unweighted sums,
/// int64 indices, f32 results, the default prefetch, `LOWP_ISA_AUTO`.
///
/// # Safety
///
/// `spec` must be NULL (reported) or point to a writable `lowp_embedding_bag_spec`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lowp_embedding_bag_spec_init(
    spec: *mut LowpEmbeddingBagSpec,
    format: i32,
    dim: usize,
) -> LowpStatus {
    guard("lowp_embedding_bag_spec_init", || {
        let defaults = EmbeddingBagSpec::new(format_from(format, "format")?, dim);
        // SAFETY: the caller passes a writable spec or NULL.
        unsafe { write_out(spec, spec_to_c(&defaults), "spec") }
    })
}

/// Resolves a plan for `*spec` and stores it in `*plan` (freed by
/// [`lowp_embedding_bag_destroy`]).
///
/// # Safety
///
/// `spec` and `plan` must each be NULL (reported) or valid for reading / writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lowp_embedding_bag_create(
    spec: *const LowpEmbeddingBagSpec,
    plan: *mut *mut LowpEmbeddingBag,
) -> LowpStatus {
    guard("lowp_embedding_bag_create", || {
        // NULL first, so that *plan is NULL after any failure; checking the out-pointer
        // before allocating also means a NULL one leaks nothing.
        // SAFETY: the caller passes a writable pointer or NULL.
        unsafe { write_out(plan, std::ptr::null_mut(), "plan") }?;
        // SAFETY: the caller passes a readable spec or NULL.
        let spec = spec_from_c(&unsafe { read_in(spec, "spec") }?)?;
        let resolved = Box::new(LowpEmbeddingBag(EmbeddingBag::new(spec)?));
        // SAFETY: checked writable just above.
        unsafe { plan.write(Box::into_raw(resolved)) };
        Ok(())
    })
}

/// Frees a plan; NULL is a no-op.
///
/// # Safety
///
/// `plan` must be NULL or a plan from [`lowp_embedding_bag_create`] not yet destroyed, and
/// no other thread may be using it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lowp_embedding_bag_destroy(plan: *mut LowpEmbeddingBag) -> LowpStatus {
    guard("lowp_embedding_bag_destroy", || {
        if !plan.is_null() {
            // SAFETY: the caller passes a live plan created by Box::into_raw.
            drop(unsafe { Box::from_raw(plan) });
        }
        Ok(())
    })
}

/// The plan's specification and the level of the kernel it resolved to.
///
/// # Safety
///
/// `plan` must be NULL (reported) or a live plan; `spec` and `isa` must each be NULL
/// (not written) or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lowp_embedding_bag_info(
    plan: *const LowpEmbeddingBag,
    spec: *mut LowpEmbeddingBagSpec,
    isa: *mut i32,
) -> LowpStatus {
    guard("lowp_embedding_bag_info", || {
        // SAFETY: the caller passes a live plan or NULL.
        let plan = &unsafe { plan_ref(plan) }?.0;
        if !spec.is_null() {
            // SAFETY: the caller passes a writable spec.
            unsafe { write_out(spec, spec_to_c(plan.spec()), "spec") }?;
        }
        if !isa.is_null() {
            // SAFETY: the caller passes a writable int32_t.
            unsafe { write_out(isa, isa_code(plan.isa()), "isa") }?;
        }
        Ok(())
    })
}

/// # Safety
///
/// `plan` must be NULL (reported) or a live plan.
unsafe fn plan_ref<'a>(plan: *const LowpEmbeddingBag) -> FfiResult<&'a LowpEmbeddingBag> {
    super::check_array(plan, 1, "plan")?;
    // SAFETY: non-null and aligned; the caller guarantees a live plan.
    Ok(unsafe { &*plan })
}

/// The integer array at `ptr`, of type `ty`.
///
/// # Safety
///
/// As [`slice_in`] for the element type `ty` names.
unsafe fn index_slice<'a>(
    ptr: *const std::ffi::c_void,
    len: usize,
    ty: IndexType,
    what: &str,
) -> FfiResult<IndexSlice<'a>> {
    // SAFETY: forwarded from the caller.
    Ok(unsafe {
        match ty {
            IndexType::I32 => IndexSlice::I32(slice_in(ptr.cast::<i32>(), len, what)?),
            IndexType::I64 => IndexSlice::I64(slice_in(ptr.cast::<i64>(), len, what)?),
        }
    })
}

/// Runs `plan` over one batch: see the header.
///
/// # Safety
///
/// Every pointer must be NULL (reported unless its length is 0) or valid for its length as
/// the header states; `out` must not overlap the inputs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lowp_embedding_bag_run(
    plan: *const LowpEmbeddingBag,
    table: *const u8,
    table_bytes: usize,
    rows: usize,
    bags: *const LowpBags,
    out: *mut std::ffi::c_void,
    out_len: usize,
    out_stride: usize,
) -> LowpStatus {
    guard("lowp_embedding_bag_run", || {
        // SAFETY (all blocks below): the header's contract, which the caller promises, makes
        // each pointer valid for the length passed with it; the helpers check NULL,
        // alignment and the byte size first.
        let plan = &unsafe { plan_ref(plan) }?.0;
        let spec = plan.spec();
        let b = unsafe { read_in(bags, "bags") }?;
        let table = Table::new(spec.format, rows, spec.dim, unsafe {
            slice_in(table, table_bytes, "table")
        }?)?;
        let indices =
            unsafe { index_slice(b.indices, b.num_indices, spec.index, "bags->indices") }?;
        let bounds_type = index_type_from(b.bounds_type, "bags->bounds_type")?;
        let bounds = unsafe { index_slice(b.bounds, b.num_bounds, bounds_type, "bags->bounds") }?;
        let batch = match b.bounds_kind {
            0 => Bags::from_offsets(indices, bounds),
            1 => Bags::from_offsets_without_last(indices, bounds),
            2 => Bags::from_lengths(indices, bounds),
            other => {
                return Err(Failure::bad_parameter(
                    "bags->bounds_kind",
                    format!("{other} is not a lowp_bounds_kind value"),
                ));
            }
        }?;
        let weights = unsafe { slice_in(b.weights, b.num_weights, "bags->weights") }?;
        let weights = match spec.weights {
            WeightsKind::None if !weights.is_empty() => {
                return Err(Failure::bad_parameter(
                    "bags->weights",
                    format!("{} weights given to an unweighted plan", weights.len()),
                ));
            }
            WeightsKind::None => Weights::None,
            WeightsKind::PerIndex => Weights::PerIndex(weights),
            WeightsKind::Positional => Weights::Positional(weights),
        };
        let batch = batch.with_weights(weights)?;
        let out = unsafe {
            match spec.output {
                OutputType::F32 => Output::F32(slice_out(out.cast(), out_len, "out")?),
                OutputType::F16 => Output::F16(slice_out(out.cast(), out_len, "out")?),
                OutputType::Bf16 => Output::Bf16(slice_out(out.cast(), out_len, "out")?),
            }
        };
        plan.run(&table, &batch, out, out_stride)?;
        Ok(())
    })
}
