//! The C ABI: `include/lowp.h` over the safe API.
//!
//! Every exported function (except [`lowp_version`] and [`lowp_last_error_message`]) returns
//! a [`LowpStatus`]. Each body runs inside [`guard`], which turns an [`Error`], a rejected
//! pointer or a panic into a status and a thread-local message naming the function and
//! what was wrong, so nothing unwinds into C. Pointers from C are checked (null, alignment
//! of typed pointers, byte length within `isize::MAX`) before a slice is made of them, and
//! enum values arrive as plain integers and are checked before use, so an out-of-range
//! value from C is an error rather than undefined behaviour.
//!
//! The header is the documentation for C callers; `tests/c_abi.rs` compiles a C program
//! that calls every declared function and checks every struct's size and field offsets
//! against the `#[repr(C)]` types here.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::Error;
use crate::format::Format;
use crate::isa::Isa;

mod embedding;
mod gemm;
mod interaction;
mod quantize;

pub use embedding::{LowpBags, LowpEmbeddingBag, LowpEmbeddingBagSpec};
pub use gemm::{LowpOutputStage, LowpPackedB};
pub use interaction::{LowpInteractionOptions, LowpVectors};

/// `lowp_status`: the result of every C call.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LowpStatus {
    /// Success.
    Ok = 0,
    /// A pointer that must not be NULL was NULL.
    NullPointer = 1,
    /// A typed pointer is not aligned to its element type.
    Misaligned = 2,
    /// A size computation overflows (or a byte length exceeds `PTRDIFF_MAX`).
    SizeOverflow = 3,
    /// A parameter (or enum value) is invalid.
    BadParameter = 4,
    /// An index is outside the table ([`Error::IndexOutOfRange`]).
    IndexOutOfRange = 5,
    /// Offsets or lengths are inconsistent (decreasing, out of range, negative, wrong sum).
    BadBags = 6,
    /// A weight array has the wrong number of entries.
    WeightCount = 7,
    /// An input buffer is smaller than its shape.
    InputTooSmall = 8,
    /// An output buffer is smaller than the result.
    OutputTooSmall = 9,
    /// A table's byte length is not rows × row bytes.
    TableSize = 10,
    /// The requested (or `LOWP_ISA`) instruction-set level cannot run here.
    UnsupportedIsa = 11,
    /// A row cannot be stored in the requested quantized format.
    UnrepresentableRow = 12,
    /// An output range overlaps an input range.
    Aliasing = 13,
    /// lowp panicked (a bug); the call's outputs are unspecified.
    Panic = 14,
}

/// A failed call: its status and what went wrong.
pub(crate) struct Failure {
    status: LowpStatus,
    message: String,
}

impl Failure {
    pub(crate) fn new(status: LowpStatus, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn bad_parameter(name: &str, reason: impl std::fmt::Display) -> Self {
        Failure::new(
            LowpStatus::BadParameter,
            format!("bad parameter {name}: {reason}"),
        )
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let status = match &error {
            Error::IndexOutOfRange { .. } => LowpStatus::IndexOutOfRange,
            Error::OffsetDecreasing { .. }
            | Error::OffsetOutOfRange { .. }
            | Error::NegativeLength { .. }
            | Error::LengthsMismatch { .. } => LowpStatus::BadBags,
            Error::WeightCount { .. } => LowpStatus::WeightCount,
            Error::OutputTooSmall { .. } => LowpStatus::OutputTooSmall,
            Error::InputTooSmall { .. } => LowpStatus::InputTooSmall,
            Error::TableSize { .. } => LowpStatus::TableSize,
            Error::SizeOverflow { .. } => LowpStatus::SizeOverflow,
            Error::UnsupportedIsa { .. } => LowpStatus::UnsupportedIsa,
            Error::UnrepresentableRow { .. } => LowpStatus::UnrepresentableRow,
            Error::BadParameter { .. } | Error::InvalidOutliers { .. } => LowpStatus::BadParameter,
        };
        Failure::new(status, error.to_string())
    }
}

pub(crate) type FfiResult<T = ()> = Result<T, Failure>;

thread_local! {
    /// The message of this thread's last failed call.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: String) {
    // A message never holds NUL in practice; replace one rather than lose the message.
    let message = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|last| *last.borrow_mut() = message);
}

/// Runs `body` for the C function `function`: success is [`LowpStatus::Ok`]; a failure or
/// a panic becomes its status and a thread-local message starting with `function`.
pub(crate) fn guard(function: &str, body: impl FnOnce() -> FfiResult) -> LowpStatus {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => LowpStatus::Ok,
        Ok(Err(failure)) => {
            set_last_error(format!("{function}: {}", failure.message));
            failure.status
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic payload".to_string());
            set_last_error(format!("{function}: internal panic (a lowp bug): {what}"));
            LowpStatus::Panic
        }
    }
}

/// Checks a C array of `len` `T`s at `ptr` named `what`: NULL only when `len` is 0, aligned
/// for `T`, and at most `isize::MAX` bytes.
fn check_array<T>(ptr: *const T, len: usize, what: &str) -> FfiResult {
    if len == 0 {
        return Ok(());
    }
    if ptr.is_null() {
        return Err(Failure::new(
            LowpStatus::NullPointer,
            format!("{what} is NULL but its length is {len}"),
        ));
    }
    let align = align_of::<T>();
    if !(ptr as usize).is_multiple_of(align) {
        return Err(Failure::new(
            LowpStatus::Misaligned,
            format!(
                "{what} = {ptr:p} is not aligned to {align} bytes (its element type, {})",
                std::any::type_name::<T>()
            ),
        ));
    }
    match len.checked_mul(size_of::<T>()) {
        Some(bytes) if bytes <= isize::MAX as usize => Ok(()),
        _ => Err(Failure::new(
            LowpStatus::SizeOverflow,
            format!("{what}: {len} elements exceed the address space"),
        )),
    }
}

/// The slice of `len` `T`s at `ptr` (see [`check_array`]).
///
/// # Safety
///
/// If `len > 0`, `ptr` must point to `len` initialized `T`s that stay valid and unwritten
/// for `'a`.
pub(crate) unsafe fn slice_in<'a, T>(ptr: *const T, len: usize, what: &str) -> FfiResult<&'a [T]> {
    check_array(ptr, len, what)?;
    if len == 0 {
        return Ok(&[]);
    }
    // SAFETY: non-null, aligned and within isize::MAX bytes (check_array); the caller
    // guarantees `len` valid elements.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// The mutable slice of `len` `T`s at `ptr` (see [`check_array`]).
///
/// # Safety
///
/// If `len > 0`, `ptr` must point to `len` `T`s that nothing else reads or writes for `'a`.
pub(crate) unsafe fn slice_out<'a, T>(
    ptr: *mut T,
    len: usize,
    what: &str,
) -> FfiResult<&'a mut [T]> {
    check_array(ptr.cast_const(), len, what)?;
    if len == 0 {
        return Ok(&mut []);
    }
    // SAFETY: non-null, aligned and within isize::MAX bytes (check_array); the caller
    // guarantees `len` exclusively owned elements.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// Stores `value` through the out-parameter `ptr` named `what`.
///
/// # Safety
///
/// `ptr` must be NULL (reported) or point to a writable `T`.
pub(crate) unsafe fn write_out<T>(ptr: *mut T, value: T, what: &str) -> FfiResult {
    check_array(ptr.cast_const(), 1, what)?;
    // SAFETY: non-null and aligned (check_array); the caller guarantees it is writable.
    unsafe { ptr.write(value) };
    Ok(())
}

/// Reads the struct `*ptr` named `what`.
///
/// # Safety
///
/// `ptr` must be NULL (reported) or point to an initialized `T`.
pub(crate) unsafe fn read_in<T: Copy>(ptr: *const T, what: &str) -> FfiResult<T> {
    check_array(ptr, 1, what)?;
    // SAFETY: non-null and aligned (check_array); the caller guarantees it is initialized.
    Ok(unsafe { ptr.read() })
}

/// `LOWP_ISA_AUTO`: let the library choose (capped by `LOWP_ISA`).
pub const LOWP_ISA_AUTO: i32 = -1;

/// The `lowp_isa` value of a level.
fn isa_code(isa: Isa) -> i32 {
    match isa {
        Isa::Scalar => 0,
        Isa::Avx2 => 1,
        Isa::Avx512 => 2,
        Isa::Avx512Vnni => 3,
        Isa::Neon => 4,
        Isa::NeonDot => 5,
        Isa::Amx => 6,
    }
}

/// Every level with a `lowp_isa` value, in value order.
const ISAS: [Isa; 7] = [
    Isa::Scalar,
    Isa::Avx2,
    Isa::Avx512,
    Isa::Avx512Vnni,
    Isa::Neon,
    Isa::NeonDot,
    Isa::Amx,
];

/// The level a `lowp_isa` value names, `None` for [`LOWP_ISA_AUTO`].
pub(crate) fn isa_from(code: i32, what: &str) -> FfiResult<Option<Isa>> {
    if code == LOWP_ISA_AUTO {
        return Ok(None);
    }
    usize::try_from(code)
        .ok()
        .and_then(|i| ISAS.get(i))
        .map(|&isa| Some(isa))
        .ok_or_else(|| Failure::bad_parameter(what, format!("{code} is not a lowp_isa value")))
}

/// The format a `lowp_format` value names.
pub(crate) fn format_from(code: i32, what: &str) -> FfiResult<Format> {
    usize::try_from(code)
        .ok()
        .and_then(|i| Format::ALL.get(i).copied())
        .ok_or_else(|| Failure::bad_parameter(what, format!("{code} is not a lowp_format value")))
}

/// The version of the library, `"MAJOR.MINOR.PATCH"`: a static string.
#[unsafe(no_mangle)]
pub extern "C" fn lowp_version() -> *const c_char {
    const VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => panic!("the package version holds no NUL"),
        };
    VERSION.as_ptr()
}

/// The message of this thread's last failed call (empty if none failed yet). Valid until
/// the next failing lowp call on this thread.
#[unsafe(no_mangle)]
pub extern "C" fn lowp_last_error_message() -> *const c_char {
    // `with` cannot fail here: the slot is never destroyed while its thread calls lowp
    // from C, and a CString's buffer does not move when the RefCell is borrowed.
    LAST_ERROR
        .try_with(|last| last.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}

/// Bit `lowp_isa` value of every level this CPU runs (not affected by `LOWP_ISA`).
///
/// # Safety
///
/// `mask` must be NULL (reported) or point to a writable `uint32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lowp_isa_available(mask: *mut u32) -> LowpStatus {
    guard("lowp_isa_available", || {
        let bits = Isa::available()
            .iter()
            .fold(0u32, |bits, &isa| bits | 1 << isa_code(isa));
        // SAFETY: the caller passes a writable uint32_t or NULL.
        unsafe { write_out(mask, bits, "mask") }
    })
}

/// The highest level this CPU runs, ignoring `LOWP_ISA`.
///
/// # Safety
///
/// `isa` must be NULL (reported) or point to a writable `int32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lowp_isa_detected(isa: *mut i32) -> LowpStatus {
    guard("lowp_isa_detected", || {
        // SAFETY: the caller passes a writable int32_t or NULL.
        unsafe { write_out(isa, isa_code(Isa::detected()), "isa") }
    })
}

/// The level automatic dispatch uses: the detected one capped by `LOWP_ISA`; an invalid
/// `LOWP_ISA` is reported.
///
/// # Safety
///
/// `isa` must be NULL (reported) or point to a writable `int32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lowp_isa_chosen(isa: *mut i32) -> LowpStatus {
    guard("lowp_isa_chosen", || {
        let chosen = Isa::best()?;
        // SAFETY: the caller passes a writable int32_t or NULL.
        unsafe { write_out(isa, isa_code(chosen), "isa") }
    })
}

/// The name of a level (`"avx512vnni"`, as `LOWP_ISA` spells it): a static string.
///
/// # Safety
///
/// `name` must be NULL (reported) or point to a writable `const char *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lowp_isa_name(isa: i32, name: *mut *const c_char) -> LowpStatus {
    guard("lowp_isa_name", || {
        let level = isa_from(isa, "isa")?
            .ok_or_else(|| Failure::bad_parameter("isa", "LOWP_ISA_AUTO names no level"))?;
        let text: &'static CStr = match level {
            Isa::Scalar => c"scalar",
            Isa::Avx2 => c"avx2",
            Isa::Avx512 => c"avx512",
            Isa::Avx512Vnni => c"avx512vnni",
            Isa::Neon => c"neon",
            Isa::NeonDot => c"neondot",
            Isa::Amx => c"amx",
        };
        debug_assert_eq!(text.to_str(), Ok(level.name()));
        // SAFETY: the caller passes a writable pointer or NULL.
        unsafe { write_out(name, text.as_ptr(), "name") }
    })
}

/// Bytes of a table of `rows` rows of `dim` elements in `format`.
///
/// # Safety
///
/// `bytes` must be NULL (reported) or point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lowp_table_bytes(
    format: i32,
    rows: usize,
    dim: usize,
    bytes: *mut usize,
) -> LowpStatus {
    guard("lowp_table_bytes", || {
        let size = format_from(format, "format")?.table_bytes(rows, dim)?;
        // SAFETY: the caller passes a writable size_t or NULL.
        unsafe { write_out(bytes, size, "bytes") }
    })
}
