//! A kernel's ratio to a limit, measured by alternating the two in thread CPU time.
//!
//! On a shared machine the same kernel measured minutes after its limit can move by a
//! fifth: other processes take cores, caches and memory bandwidth, and a limit measured
//! once at the start of a run does not see the load the kernel later meets. Here samples
//! of the limit loop and of the kernel alternate (limit, kernel, limit, …, kernel, limit),
//! each lasting about the same thread CPU time, and each kernel sample is divided by the
//! mean of the two limit samples around it; the figure is the median of those ratios.
//! Thread CPU time leaves out the time the thread waits for a core, so neither side is
//! charged for being descheduled; what the load still does to both (shared caches, memory
//! bandwidth, a busy sibling hyperthread) it does to them alike within a pair.

use std::hint::black_box;

/// The figures of [`paired`]: rates in units of work per nanosecond (GOPS for operations,
/// GB/s for bytes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Paired {
    /// Median rate of the kernel samples.
    pub kernel: f64,
    /// Median over pairs of the mean rate of the two limit samples around the kernel's.
    pub limit: f64,
    /// Median over pairs of the kernel sample's rate over that mean.
    pub ratio: f64,
    /// The lower and upper quartiles of those ratios: their spread on this run.
    pub ratio_quartiles: (f64, f64),
    /// Number of pairs (kernel samples).
    pub pairs: usize,
}

/// Times `kernel` against `limit` in `pairs` alternating samples of about `sample_secs` of
/// thread CPU time each (see the module doc). Each loop is `run(n)`: run `n` repetitions
/// and return the work they did (operations, bytes) in the unit the rates are wanted in.
/// Each is first run once untimed (a warm-up), then timed with growing `n` to find the
/// repetitions that last `sample_secs`; a repetition longer than that makes a sample of
/// one.
pub fn paired(
    pairs: usize,
    sample_secs: f64,
    mut kernel: impl FnMut(u64) -> f64,
    mut limit: impl FnMut(u64) -> f64,
) -> Paired {
    assert!(pairs > 0, "at least one pair");
    let kernel_reps = reps_for(sample_secs, &mut kernel);
    let limit_reps = reps_for(sample_secs, &mut limit);
    let mut before = rate(&mut limit, limit_reps);
    let (mut kernels, mut limits, mut ratios) = (vec![], vec![], vec![]);
    for _ in 0..pairs {
        let k = rate(&mut kernel, kernel_reps);
        let after = rate(&mut limit, limit_reps);
        let l = (before + after) / 2.0;
        kernels.push(k);
        limits.push(l);
        ratios.push(k / l);
        before = after;
    }
    ratios.sort_by(f64::total_cmp);
    let quartile = |q: usize| ratios[(ratios.len() - 1) * q / 4];
    Paired {
        kernel: median(kernels),
        limit: median(limits),
        ratio: quartile(2),
        ratio_quartiles: (quartile(1), quartile(3)),
        pairs,
    }
}

/// Repetitions of `run` that last about `secs` of thread CPU time, after one untimed
/// repetition.
fn reps_for(secs: f64, run: &mut impl FnMut(u64) -> f64) -> u64 {
    black_box(run(1));
    let mut n = 1u64;
    loop {
        let start = thread_cpu_secs();
        black_box(run(n));
        let spent = thread_cpu_secs() - start;
        // An eighth of the target is long enough to scale from without clock noise.
        if spent >= secs / 8.0 || n >= 1 << 40 {
            return ((n as f64 * secs / spent.max(1e-9)).ceil() as u64).max(1);
        }
        n *= 8;
    }
}

/// Work per nanosecond of thread CPU time of `n` repetitions of `run`.
fn rate(run: &mut impl FnMut(u64) -> f64, n: u64) -> f64 {
    let start = thread_cpu_secs();
    let work = run(n);
    let spent = thread_cpu_secs() - start;
    work / spent / 1e9
}

/// The median of `values` (the upper one of an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Seconds of CPU time this thread has run: unlike wall clock, not inflated while other
/// processes hold the cores.
pub fn thread_cpu_secs() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec to write; the clock id is a constant the OS defines.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(status, 0, "clock_gettime");
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}
