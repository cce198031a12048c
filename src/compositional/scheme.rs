//! Partition schemes: how a virtual index becomes one row per component table.
//!
//! Every scheme is compiled to the same per-component map, `row = (i / divisor) mod
//! modulus`, so one kernel loop serves them all with one multiply-and-shift division
//! ([`Divider`]) per component (two for the middle digits of a mixed radix):
//!
//! | scheme | component `j` | divisor | modulus (= rows needed) |
//! |---|---|---|---|
//! | quotient-remainder `m` | 0: `i / m`, 1: `i mod m` | `m`, 1 | `⌈N / m⌉`, `m` |
//! | mixed radix `m_0 … m_{k−1}` | digit `j`, most significant first | `m_{j+1} ⋯ m_{k−1}` | `⌈N / divisor⌉` for `j = 0`, else `m_j` |
//! | Chinese remainder `m_0 … m_{k−1}` | `i mod m_j` | 1 | `m_j` |
//! | hashing `m` | `i mod m` | 1 | `m` |
//!
//! (`N` is the number of virtual rows.) For the leading quotient the modulus changes
//! nothing, since `i < N` gives `i / divisor < ⌈N / divisor⌉`: it only states the rows the
//! component needs, and is not applied (nor is a divisor of 1). Quotient-remainder with `m` is mixed radix `(⌈N / m⌉, m)`.

use crate::compositional::divide::Divider;
use crate::error::{Error, Result};

/// How a virtual index is split into one row of each component table.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Two components: row `i / m` of the first, row `i mod m` of the second (Shi et al.'s
    /// quotient-remainder trick). The first needs `⌈N / m⌉` rows, the second `m`.
    QuotientRemainder {
        /// The remainder table's rows.
        m: usize,
    },
    /// One component per factor: the digits of `i` in the mixed radix `(m_0, …, m_{k−1})`,
    /// most significant first, so component `j` gets row `(i / (m_{j+1} ⋯ m_{k−1})) mod
    /// m_j`. Needs `N ≤ m_0 ⋯ m_{k−1}`; component 0 needs `⌈N / (m_1 ⋯ m_{k−1})⌉` rows, the
    /// others `m_j`.
    MixedRadix(Vec<usize>),
    /// One component per modulus: component `j` gets row `i mod m_j`. The moduli must be
    /// pairwise coprime and `N ≤ m_0 ⋯ m_{k−1}`, so that (Chinese remainder theorem) no two
    /// indices share all their rows.
    ChineseRemainder(Vec<usize>),
    /// The hashing trick: one component, row `i mod m` (indices collide by design).
    Hashing {
        /// The table's rows.
        m: usize,
    },
}

/// The most component tables a compositional table combines.
pub const MAX_COMPONENTS: usize = 4;

/// Component `j`'s row of index `i` is `(i / divisor) mod modulus`. A divisor of 1 and
/// the modulus of a leading quotient (which never wraps) are `None`: skipped, so every
/// scheme costs one multiply-and-shift division per component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RowMap {
    divisor: Option<Divider>,
    modulus: Option<Divider>,
    /// Rows the component table must have (the modulus, or 0 for an empty virtual table).
    pub(crate) rows_needed: usize,
}

impl RowMap {
    /// The map `(i / divisor) mod modulus`, where `wraps` is false if no valid index
    /// reaches the modulus (a leading quotient).
    fn new(divisor: u64, modulus: u64, wraps: bool) -> RowMap {
        RowMap {
            divisor: (divisor > 1).then(|| Divider::new(divisor)),
            modulus: wraps.then(|| Divider::new(modulus)),
            rows_needed: modulus as usize,
        }
    }

    /// The row of index `i < 2^63`.
    #[inline(always)]
    pub(crate) fn row(&self, i: u64) -> u64 {
        let q = self.divisor.map_or(i, |d| d.quotient(i));
        self.modulus.map_or(q, |m| m.remainder(q))
    }
}

fn bad(reason: String) -> Error {
    Error::bad_parameter("scheme", reason)
}

/// The scheme's factors (moduli, radices), checked for count and zeros.
fn factors<'s>(name: &str, factors: &'s [usize]) -> Result<&'s [usize]> {
    if factors.is_empty() || factors.len() > MAX_COMPONENTS {
        return Err(bad(format!(
            "a {name} scheme needs 1 to {MAX_COMPONENTS} factors, got {}",
            factors.len()
        )));
    }
    if let Some(j) = factors.iter().position(|&m| m == 0) {
        return Err(bad(format!("{name} factor {j} is 0")));
    }
    Ok(factors)
}

/// Checks that `virtual_rows` indices fit the product of `factors`.
fn check_product(name: &str, factors: &[usize], virtual_rows: u64) -> Result<()> {
    let product = factors
        .iter()
        .try_fold(1u128, |p, &m| p.checked_mul(m as u128));
    if product.is_some_and(|p| u128::from(virtual_rows) > p) {
        return Err(bad(format!(
            "{virtual_rows} virtual rows, but the {name} factors {factors:?} tell only {} \
             apart",
            product.unwrap_or_default()
        )));
    }
    Ok(())
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The row map of every component of `scheme` over `virtual_rows` indices.
pub(crate) fn row_maps(scheme: &Scheme, virtual_rows: usize) -> Result<Vec<RowMap>> {
    let n = virtual_rows as u64;
    if n > i64::MAX as u64 {
        return Err(Error::bad_parameter(
            "virtual_rows",
            format!("{virtual_rows} is above the largest i64 index"),
        ));
    }
    match scheme {
        &Scheme::QuotientRemainder { m } | &Scheme::Hashing { m } if m == 0 => {
            Err(bad("the modulus m is 0".into()))
        }
        &Scheme::QuotientRemainder { m } => {
            let m = m as u64;
            Ok(vec![
                RowMap::new(m, n.div_ceil(m), false),
                RowMap::new(1, m, true),
            ])
        }
        &Scheme::Hashing { m } => Ok(vec![RowMap::new(1, m as u64, true)]),
        Scheme::MixedRadix(radices) => {
            let radices = factors("mixed-radix", radices)?;
            check_product("mixed-radix", radices, n)?;
            let k = radices.len();
            Ok((0..k)
                .map(|j| {
                    // A divisor above u64::MAX exceeds every index, as u64::MAX does: both
                    // give the quotient 0, so saturating keeps the map exact.
                    let divisor = radices[j + 1..]
                        .iter()
                        .fold(1u64, |p, &m| p.saturating_mul(m as u64));
                    if j == 0 {
                        RowMap::new(divisor, n.div_ceil(divisor), false)
                    } else {
                        RowMap::new(divisor, radices[j] as u64, true)
                    }
                })
                .collect())
        }
        Scheme::ChineseRemainder(moduli) => {
            let moduli = factors("Chinese-remainder", moduli)?;
            for a in 0..moduli.len() {
                for b in a + 1..moduli.len() {
                    let g = gcd(moduli[a] as u64, moduli[b] as u64);
                    if g != 1 {
                        return Err(bad(format!(
                            "Chinese-remainder moduli {} (component {a}) and {} (component \
                             {b}) share the factor {g}",
                            moduli[a], moduli[b]
                        )));
                    }
                }
            }
            check_product("Chinese-remainder", moduli, n)?;
            Ok(moduli
                .iter()
                .map(|&m| RowMap::new(1, m as u64, true))
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(scheme: &Scheme, n: usize, i: u64) -> Vec<u64> {
        row_maps(scheme, n)
            .unwrap()
            .iter()
            .map(|m| m.row(i))
            .collect()
    }

    #[test]
    fn maps_follow_their_definitions() {
        let qr = Scheme::QuotientRemainder { m: 7 };
        assert_eq!(rows(&qr, 100, 0), [0, 0]);
        assert_eq!(rows(&qr, 100, 99), [14, 1]);
        let maps = row_maps(&qr, 100).unwrap();
        assert_eq!((maps[0].rows_needed, maps[1].rows_needed), (15, 7));
        let radix = Scheme::MixedRadix(vec![4, 3, 5]);
        assert_eq!(rows(&radix, 60, 59), [3, 2, 4]);
        assert_eq!(rows(&radix, 60, 23), [1, 1, 3]);
        let crt = Scheme::ChineseRemainder(vec![3, 4, 5]);
        assert_eq!(rows(&crt, 60, 59), [2, 3, 4]);
        assert_eq!(rows(&Scheme::Hashing { m: 10 }, 1 << 40, 12345), [5]);
        let big = Scheme::MixedRadix(vec![2, usize::MAX, usize::MAX]);
        assert_eq!(
            rows(&big, i64::MAX as usize, i64::MAX as u64),
            [0, 0, i64::MAX as u64]
        );
    }

    #[test]
    fn bad_schemes_are_rejected_exactly() {
        let err = |s: Scheme, n| row_maps(&s, n).unwrap_err();
        assert_eq!(
            err(Scheme::ChineseRemainder(vec![6, 5, 4]), 10),
            bad(
                "Chinese-remainder moduli 6 (component 0) and 4 (component 2) share the \
                 factor 2"
                    .into()
            )
        );
        assert_eq!(
            err(Scheme::MixedRadix(vec![3, 0]), 10),
            bad("mixed-radix factor 1 is 0".into())
        );
        assert_eq!(
            err(Scheme::MixedRadix(vec![2; 5]), 10),
            bad("a mixed-radix scheme needs 1 to 4 factors, got 5".into())
        );
        assert_eq!(
            err(Scheme::ChineseRemainder(vec![3, 4]), 13),
            bad(
                "13 virtual rows, but the Chinese-remainder factors [3, 4] tell only 12 apart"
                    .into()
            )
        );
        assert_eq!(
            err(Scheme::QuotientRemainder { m: 0 }, 10),
            bad("the modulus m is 0".into())
        );
        assert!(matches!(
            err(Scheme::Hashing { m: 3 }, usize::MAX),
            Error::BadParameter {
                name: "virtual_rows",
                ..
            }
        ));
    }
}
