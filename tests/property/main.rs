//! Every operation, on every instruction-set level this CPU runs, returns exactly the bits
//! (and on bad input exactly the error) of the reference model.
//!
//! Inputs are random shapes (empty, 1, odd, the registry's specialized dimensions, large)
//! and values biased to extremes (±0, denormals, ±inf, NaN, u8 0/255, i8 −128/127, i32 and
//! i64 wrap-around). Every input and output array is its own `GuardedVec`, ending flush
//! against an inaccessible page, so a kernel that reads one element too many crashes the
//! test. Outputs start filled with a sentinel, so writes into row gaps are caught too.
//!
//! Nothing here names a kernel: levels come from `Isa::available()` and specialized
//! dimensions from the registry, so a kernel added to the registry is tested here as is.
//! `PROPTEST_CASES` overrides the case counts.

#[path = "../common/mod.rs"]
mod common;

mod compare;
mod compositional;
mod embedding;
mod gemm;
mod guard_pages;
mod interaction;
mod outlier;
mod quantize;
mod strategies;

use proptest::test_runner::Config;

/// `default_cases` cases unless `PROPTEST_CASES` says otherwise.
fn config(default_cases: u32) -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    config
}
