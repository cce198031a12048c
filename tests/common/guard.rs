//! Buffers that end flush against an inaccessible page.
//!
//! A [`GuardedVec`] places its elements so that the last one ends exactly where a
//! `PROT_NONE` page begins. A kernel that reads or writes even one byte past the end of an
//! index array, a weight array, a table or a matrix then dies with SIGSEGV instead of
//! passing by luck on whatever heap memory happens to follow.

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// `len` elements of `T` ending exactly at a guard page. `T` must be a plain number type
/// (every bit pattern valid, no drop glue): the mapping starts zeroed.
pub struct GuardedVec<T: Copy> {
    mapping: NonNull<u8>,
    mapping_len: usize,
    data: NonNull<T>,
    len: usize,
    _owns: PhantomData<T>,
}

// SAFETY: a GuardedVec owns its mapping exclusively, like a Vec<T> owns its allocation.
unsafe impl<T: Copy + Send> Send for GuardedVec<T> {}
// SAFETY: shared access only hands out `&[T]`.
unsafe impl<T: Copy + Sync> Sync for GuardedVec<T> {}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).expect("sysconf(_SC_PAGESIZE) failed")
}

impl<T: Copy> GuardedVec<T> {
    /// A copy of `values`, flush against a guard page.
    pub fn from_slice(values: &[T]) -> Self {
        let mut v = Self::zeroed(values.len());
        v.copy_from_slice(values);
        v
    }

    /// `len` copies of `value`, flush against a guard page.
    pub fn filled(len: usize, value: T) -> Self {
        let mut v = Self::zeroed(len);
        v.fill(value);
        v
    }

    /// `len` elements whose bytes are all zero.
    fn zeroed(len: usize) -> Self {
        let page = page_size();
        let bytes = len
            .checked_mul(size_of::<T>())
            .expect("guarded buffer size overflows");
        let data_pages_len = bytes.div_ceil(page) * page;
        let mapping_len = data_pages_len + page;
        // SAFETY: a fresh private anonymous mapping; the arguments are valid.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapping_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED, "mmap of {mapping_len} bytes failed");
        let base = base.cast::<u8>();
        // SAFETY: `data_pages_len` is within the mapping; the last page is the guard.
        let guard = unsafe { base.add(data_pages_len) };
        // SAFETY: `guard` is page-aligned and the page lies inside our own mapping.
        let rc = unsafe { libc::mprotect(guard.cast(), page, libc::PROT_NONE) };
        assert_eq!(rc, 0, "mprotect of the guard page failed");
        // The data ends at a page boundary and its size is a multiple of size_of::<T>()
        // (itself a multiple of T's alignment), so its start is aligned for T. An empty
        // buffer points at the guard page itself: any access through it faults.
        // SAFETY: `bytes <= data_pages_len`, so the start stays inside the mapping.
        let data = unsafe { guard.sub(bytes) }.cast::<T>();
        GuardedVec {
            mapping: NonNull::new(base).expect("mmap returned null"),
            mapping_len,
            data: NonNull::new(data).expect("data pointer is inside the mapping"),
            len,
            _owns: PhantomData,
        }
    }

    /// One past the last element: the first byte of the guard page.
    pub fn end_ptr(&self) -> *const T {
        // SAFETY: one past the end of the data, still inside the mapping.
        unsafe { self.data.as_ptr().add(self.len) }
    }
}

impl<T: Copy> Deref for GuardedVec<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: `len` initialized (zeroed, then possibly overwritten) elements of a
        // plain type, aligned, owned by `self`.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr(), self.len) }
    }
}

impl<T: Copy> DerefMut for GuardedVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.data.as_ptr(), self.len) }
    }
}

impl<T: Copy> Drop for GuardedVec<T> {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `zeroed`; no slice outlives self.
        let rc = unsafe { libc::munmap(self.mapping.as_ptr().cast(), self.mapping_len) };
        debug_assert_eq!(rc, 0, "munmap failed");
    }
}

impl<T: Copy> Clone for GuardedVec<T> {
    fn clone(&self) -> Self {
        Self::from_slice(self)
    }
}

impl<T: Copy + std::fmt::Debug> std::fmt::Debug for GuardedVec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}
