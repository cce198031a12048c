//! Instruction-set levels, detected once per process.
//!
//! Levels are ordered within an architecture: a level implies every level below it on the
//! same architecture, so "the best kernel at or below level L" is well defined.
//! `LOWP_ISA` caps the automatic choice for the whole process; an explicit [`Isa`] passed to
//! a plan or an operation bypasses the cap but must still be available on this CPU.

use std::fmt;
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// An instruction-set level lowp has kernels for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Isa {
    /// Portable code: the reference model. Always available.
    Scalar,
    /// x86-64 AVX2 with FMA and F16C.
    Avx2,
    /// x86-64 AVX-512 F, BW, VL and DQ (on top of [`Isa::Avx2`]).
    Avx512,
    /// [`Isa::Avx512`] plus AVX-512 VNNI.
    Avx512Vnni,
    /// [`Isa::Avx512Vnni`] plus AMX-TILE and AMX-INT8, with the OS's permission to use the
    /// tile data (requested once per process on Linux; see [`Isa::unavailable_reason`]).
    Amx,
    /// aarch64 Advanced SIMD.
    Neon,
    /// [`Isa::Neon`] plus the dot-product extension (`sdot`/`udot`).
    NeonDot,
}

/// Every level lowp knows, in order.
const ALL: [Isa; 7] = [
    Isa::Scalar,
    Isa::Avx2,
    Isa::Avx512,
    Isa::Avx512Vnni,
    Isa::Amx,
    Isa::Neon,
    Isa::NeonDot,
];

impl Isa {
    /// The name `LOWP_ISA` and the report use for this level.
    pub const fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Avx512Vnni => "avx512vnni",
            Isa::Amx => "amx",
            Isa::Neon => "neon",
            Isa::NeonDot => "neondot",
        }
    }

    /// Parses a name as `LOWP_ISA` spells it (case-insensitive).
    pub fn from_name(name: &str) -> Option<Isa> {
        ALL.into_iter()
            .find(|isa| isa.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Every level this CPU runs, lowest first; always starts with [`Isa::Scalar`].
    /// Not affected by `LOWP_ISA`.
    pub fn available() -> &'static [Isa] {
        static AVAILABLE: OnceLock<Vec<Isa>> = OnceLock::new();
        AVAILABLE.get_or_init(|| ALL.into_iter().filter(|&isa| detect(isa)).collect())
    }

    /// Whether this CPU runs `self`.
    pub fn is_available(self) -> bool {
        Isa::available().contains(&self)
    }

    /// The highest level this CPU runs, ignoring `LOWP_ISA`.
    pub fn detected() -> Isa {
        *Isa::available().last().expect("Scalar is always available")
    }

    /// The level automatic dispatch uses: the highest available level, capped by
    /// `LOWP_ISA` when it is set. An unknown or unavailable `LOWP_ISA` value is an error
    /// (every call that dispatches automatically reports it), never a silent fallback.
    pub fn best() -> Result<Isa> {
        static BEST: OnceLock<Result<Isa>> = OnceLock::new();
        BEST.get_or_init(|| resolve_cap(std::env::var("LOWP_ISA").ok().as_deref()))
            .clone()
    }

    /// Why this CPU (or OS) does not run `self`, `None` when it does: for [`Isa::Amx`] the
    /// missing CPUID bit, the OS's tile state, or the Linux permission request's error.
    pub fn unavailable_reason(self) -> Option<String> {
        if self.is_available() {
            return None;
        }
        #[cfg(target_arch = "x86_64")]
        if self == Isa::Amx && detect(Isa::Avx512Vnni) {
            return crate::arch::x86_64::amx::status().err().map(str::to_owned);
        }
        Some(format!("this CPU lacks {}", self.name()))
    }

    /// Checks that this CPU runs `self`.
    pub fn require(self) -> Result<Isa> {
        if self.is_available() {
            Ok(self)
        } else {
            Err(Error::UnsupportedIsa {
                isa: self.name(),
                reason: format!(
                    "this CPU does not support it (available: {})",
                    names(Isa::available())
                ),
            })
        }
    }

    /// `isa` if given (checked to be available), else [`Isa::best`].
    pub fn choose(isa: Option<Isa>) -> Result<Isa> {
        match isa {
            Some(isa) => isa.require(),
            None => Isa::best(),
        }
    }

    /// Whether a kernel written for `self` may run when `cap` is the chosen level: same
    /// architecture family and not above it. Scalar runs under every cap.
    pub fn runs_under(self, cap: Isa) -> bool {
        self == Isa::Scalar || (self.family() == cap.family() && self <= cap)
    }

    fn family(self) -> u8 {
        match self {
            Isa::Scalar => 0,
            Isa::Avx2 | Isa::Avx512 | Isa::Avx512Vnni | Isa::Amx => 1,
            Isa::Neon | Isa::NeonDot => 2,
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn names(levels: &[Isa]) -> String {
    levels
        .iter()
        .map(|i| i.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The automatic level for a `LOWP_ISA` value (`None` = unset).
fn resolve_cap(value: Option<&str>) -> Result<Isa> {
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(Isa::detected());
    };
    let isa = Isa::from_name(value).ok_or_else(|| Error::BadParameter {
        name: "LOWP_ISA",
        reason: format!("unknown level {value:?}; expected one of {}", names(&ALL)),
    })?;
    isa.require().map_err(|_| Error::UnsupportedIsa {
        isa: isa.name(),
        reason: format!(
            "LOWP_ISA={value} but this CPU only runs {}",
            names(Isa::available())
        ),
    })
}

#[cfg(target_arch = "x86_64")]
fn detect(isa: Isa) -> bool {
    use std::arch::is_x86_feature_detected as has;
    match isa {
        Isa::Scalar => true,
        Isa::Avx2 => has!("avx2") && has!("fma") && has!("f16c"),
        Isa::Avx512 => {
            detect(Isa::Avx2)
                && has!("avx512f")
                && has!("avx512bw")
                && has!("avx512vl")
                && has!("avx512dq")
        }
        Isa::Avx512Vnni => detect(Isa::Avx512) && has!("avx512vnni"),
        // Called once, from `Isa::available`; `amx::status` caches its own answer (and
        // makes the permission request) once per process.
        Isa::Amx => detect(Isa::Avx512Vnni) && crate::arch::x86_64::amx::status().is_ok(),
        Isa::Neon | Isa::NeonDot => false,
    }
}

#[cfg(target_arch = "aarch64")]
fn detect(isa: Isa) -> bool {
    use std::arch::is_aarch64_feature_detected as has;
    match isa {
        Isa::Scalar => true,
        Isa::Neon => has!("neon"),
        Isa::NeonDot => has!("neon") && has!("dotprod"),
        Isa::Avx2 | Isa::Avx512 | Isa::Avx512Vnni | Isa::Amx => false,
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn detect(isa: Isa) -> bool {
    isa == Isa::Scalar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for isa in ALL {
            assert_eq!(Isa::from_name(isa.name()), Some(isa));
            assert_eq!(Isa::from_name(&isa.name().to_uppercase()), Some(isa));
        }
        assert_eq!(Isa::from_name("sse2"), None);
    }

    #[test]
    fn available_is_ordered_and_starts_with_scalar() {
        let levels = Isa::available();
        assert_eq!(levels[0], Isa::Scalar);
        assert!(levels.windows(2).all(|w| w[0] < w[1]));
        assert!(levels.iter().all(|l| l.runs_under(Isa::detected())));
    }

    #[test]
    fn cap_resolution() {
        assert_eq!(resolve_cap(None), Ok(Isa::detected()));
        assert_eq!(resolve_cap(Some("")), Ok(Isa::detected()));
        assert_eq!(resolve_cap(Some("scalar")), Ok(Isa::Scalar));
        assert!(matches!(
            resolve_cap(Some("avx1024")),
            Err(Error::BadParameter {
                name: "LOWP_ISA",
                ..
            })
        ));
        // A level of the other architecture is never available.
        let foreign = if cfg!(target_arch = "aarch64") {
            "avx2"
        } else {
            "neon"
        };
        assert!(matches!(
            resolve_cap(Some(foreign)),
            Err(Error::UnsupportedIsa { .. })
        ));
    }

    #[test]
    fn cap_ordering() {
        assert!(Isa::Scalar.runs_under(Isa::Avx512));
        assert!(Isa::Avx2.runs_under(Isa::Avx512));
        assert!(!Isa::Avx512Vnni.runs_under(Isa::Avx512));
        assert!(Isa::Avx512Vnni.runs_under(Isa::Amx));
        assert!(!Isa::Amx.runs_under(Isa::Avx512Vnni));
        assert!(!Isa::Amx.runs_under(Isa::NeonDot));
        assert!(!Isa::Neon.runs_under(Isa::Avx512Vnni));
        assert!(Isa::Neon.runs_under(Isa::NeonDot));
    }
}
