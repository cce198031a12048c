//! The guard pages themselves: one element past a [`GuardedVec`] is inaccessible.

use std::fmt::Debug;

use half::{bf16, f16};

use crate::common::guard::GuardedVec;

/// How a forked child that ran `probe` ended: `Ok(exit code)` or `Err(signal)`.
///
/// `fork` (rather than re-running the test binary) also works under qemu user mode. The
/// child only touches memory and calls `_exit`, which is sound after forking a
/// multi-threaded process.
fn in_child(probe: impl FnOnce()) -> Result<i32, i32> {
    // SAFETY: the child runs only `probe` (plain memory accesses) and `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        probe();
        // SAFETY: ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(0) }
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid, "waitpid failed");
    if libc::WIFSIGNALED(status) {
        Err(libc::WTERMSIG(status))
    } else {
        Ok(libc::WEXITSTATUS(status))
    }
}

fn read_at<T: Copy>(p: *const T) {
    // SAFETY: deliberately reads `p`, a valid element or the guard page (where the child
    // dies by SIGSEGV, which is what the caller checks).
    std::hint::black_box(unsafe { p.read_volatile() });
}

fn guard_is_live<T: Copy + Debug + PartialEq>(values: &[T]) {
    let v = GuardedVec::from_slice(values);
    assert_eq!(&*v, values);
    if let Some(last) = v.last() {
        let last: *const T = last;
        assert_eq!(
            in_child(|| read_at(last)),
            Ok(0),
            "reading the last element"
        );
    }
    let end = v.end_ptr();
    assert_eq!(
        in_child(|| read_at(end)),
        Err(libc::SIGSEGV),
        "reading one element past {} elements of {}",
        values.len(),
        std::any::type_name::<T>()
    );
}

#[test]
fn reading_past_a_guarded_vec_faults() {
    guard_is_live::<u8>(&[]);
    guard_is_live::<f32>(&[]);
    guard_is_live(&[1u8, 2, 3]);
    guard_is_live(&[-1i8; 4097]);
    guard_is_live(&[7i32; 5]);
    guard_is_live(&[i64::MIN; 3]);
    guard_is_live(&[1.5f32; 1024]);
    guard_is_live(&[f16::ONE; 3]);
    guard_is_live(&[bf16::NEG_ONE; 2049]);
}

#[test]
fn writing_past_a_guarded_vec_faults() {
    let mut v = GuardedVec::filled(3, 0u8);
    v[2] = 9;
    let end = v.end_ptr().cast_mut();
    // SAFETY: deliberately writes to the guard page, in a child that must die of it.
    let outcome = in_child(|| unsafe { end.write_volatile(1) });
    assert_eq!(outcome, Err(libc::SIGSEGV));
    assert_eq!(&*v, &[0, 0, 9]);
}

#[test]
fn guarded_data_ends_at_a_page_and_is_aligned() {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    for len in [0usize, 1, 3, 1000, 1024, 1025] {
        let v = GuardedVec::filled(len, 0.25f64);
        assert_eq!(v.end_ptr() as usize % page, 0, "len {len}");
        assert_eq!(v.as_ptr() as usize % align_of::<f64>(), 0, "len {len}");
        assert!(v.iter().all(|&x| x == 0.25), "len {len}");
    }
}
