//! How the benchmarks and the report name a registry entry's specialization.

use lowp::registry::Spec;

/// `any`, or `dim64` for a kernel compiled for one dimension (embedding dim or GEMM
/// column count).
pub fn spec_name(spec: Spec) -> String {
    match spec {
        Spec::Any => "any".to_owned(),
        Spec::Dim(d) => format!("dim{d}"),
    }
}
