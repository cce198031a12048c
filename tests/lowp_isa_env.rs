//! `LOWP_ISA` caps automatic dispatch for the whole process, and a bad value is an error at
//! first use. The level is read once per process, so each value is tried in a forked child
//! (this binary has one test, so no other test has read it first; `fork` also works under
//! qemu user mode, where re-executing the binary would not).

use lowp::registry::last_run;
use lowp::{Bags, Error, Isa, Output, Pooling, Table};

/// Runs `check` in a forked child with `LOWP_ISA=value`; returns the child's exit code
/// (0 when `check` returned true, 1 when false, 101 on a panic).
fn in_child_with_cap(value: &str, check: fn() -> bool) -> i32 {
    // SAFETY: the parent only waits; the child sets the variable (no other thread of the
    // child exists to race with it), runs `check` and leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: the child is single-threaded after fork.
        unsafe { std::env::set_var("LOWP_ISA", value) };
        let ok = std::panic::catch_unwind(check);
        let code = match ok {
            Ok(true) => 0,
            Ok(false) => 1,
            Err(_) => 101,
        };
        // SAFETY: ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(code) }
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child died: status {status}");
    libc::WEXITSTATUS(status)
}

/// One automatically dispatched embedding bag; returns its result.
fn dispatch_once() -> lowp::Result<()> {
    let rows = [1.0f32; 16];
    let table = Table::from_f32(1, 16, &rows)?;
    let bags = Bags::from_offsets(&[0i32], &[0i32, 1])?;
    let mut out = [0f32; 16];
    lowp::embedding_bag(&table, &bags, Pooling::Sum, Output::F32(&mut out), 16, None)
}

#[test]
fn lowp_isa_caps_and_rejects() {
    // A known, available level caps the choice and the dispatched call runs at it.
    let capped = in_child_with_cap("scalar", || {
        Isa::best() == Ok(Isa::Scalar)
            && dispatch_once().is_ok()
            && last_run().is_some_and(|(_, isa, _)| isa == Isa::Scalar)
    });
    assert_eq!(capped, 0, "LOWP_ISA=scalar");

    // An unknown name: every automatic call fails with an error naming LOWP_ISA.
    let unknown = in_child_with_cap("avx1024", || {
        matches!(
            Isa::best(),
            Err(Error::BadParameter {
                name: "LOWP_ISA",
                ..
            })
        ) && matches!(
            dispatch_once(),
            Err(Error::BadParameter {
                name: "LOWP_ISA",
                ..
            })
        ) && last_run().is_none()
    });
    assert_eq!(unknown, 0, "LOWP_ISA=avx1024");

    // A level of the other architecture is never available here.
    let foreign = if cfg!(target_arch = "aarch64") {
        "avx2"
    } else {
        "neon"
    };
    let unsupported = in_child_with_cap(foreign, || {
        matches!(Isa::best(), Err(Error::UnsupportedIsa { .. }))
            && matches!(dispatch_once(), Err(Error::UnsupportedIsa { .. }))
    });
    assert_eq!(unsupported, 0, "LOWP_ISA={foreign}");

    // `amx` caps at AMX where the CPU and OS grant it, and is refused otherwise.
    let amx = in_child_with_cap("amx", || {
        if Isa::Amx.is_available() {
            Isa::best() == Ok(Isa::Amx) && dispatch_once().is_ok()
        } else {
            matches!(Isa::best(), Err(Error::UnsupportedIsa { isa: "amx", .. }))
        }
    });
    assert_eq!(amx, 0, "LOWP_ISA=amx");

    // An explicit level bypasses the cap (and a bad cap does not stop explicit calls).
    let explicit = in_child_with_cap("avx1024", || {
        let rows = [1.0f32; 16];
        let table = Table::from_f32(1, 16, &rows).unwrap();
        let bags = Bags::from_offsets(&[0i32], &[0i32, 1]).unwrap();
        let mut out = [0f32; 16];
        let best = Isa::detected();
        lowp::embedding_bag(
            &table,
            &bags,
            Pooling::Sum,
            Output::F32(&mut out),
            16,
            Some(best),
        )
        .is_ok()
            && out == [1.0; 16]
    });
    assert_eq!(explicit, 0, "explicit level under a bad LOWP_ISA");
}
