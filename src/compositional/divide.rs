//! Division by a run-time constant without a divide instruction: a multiply and a shift
//! precomputed once per divisor.
//!
//! A 64-bit `div` costs tens of cycles and does not pipeline; the compositional bag needs
//! up to eight divisions per index (a quotient and a remainder per component), so the plan
//! turns each divisor into a multiplier and a shift instead.
//!
//! # Why it is exact
//!
//! The numerators are non-negative `i64` indices, so `n < 2^63`. For a divisor `d ≥ 1` let
//! `l = ⌈log2 d⌉` (so `d ≤ 2^l`) and `m = ⌈2^(63+l) / d⌉`, and write `m·d = 2^(63+l) + e`
//! with `0 ≤ e < d ≤ 2^l`. Then for `n = q·d + r`, `0 ≤ r < d`:
//!
//! ```text
//! m·n / 2^(63+l) = n/d + e·n / (d·2^(63+l))
//!                < q + r/d + 2^l·2^63 / (d·2^(63+l))  =  q + (r + 1)/d  ≤  q + 1
//! ```
//!
//! and `m·n / 2^(63+l) ≥ n/d ≥ q`, so `⌊m·n / 2^(63+l)⌋ = q` exactly (Granlund and
//! Montgomery, "Division by invariant integers using multiplication", theorem 4.2, with
//! `N = 63`). For `2 ≤ d ≤ 2^63` the multiplier fits in 64 bits: `d ≥ 2^(l−1) + 1` gives
//! `2^(63+l)/d ≤ 2^64 − 2^64/(2^(l−1) + 1) ≤ 2^64 − 1`, so its ceiling is at most
//! `2^64 − 1`; `d = 1` gives `m = 2^63`. And as `n < 2^63`, `2n` fits in 64 bits, so
//!
//! ```text
//! ⌊m·n / 2^(63+l)⌋ = ⌊⌊(2n)·m / 2^64⌋ / 2^l⌋
//! ```
//!
//! is one 64 × 64-bit multiply keeping the high half (x86 `mul`, Arm `umulh`) of the
//! doubled index and one shift by `l ≤ 63`: no 128-bit shift. A divisor above `2^63`
//! exceeds every numerator, so its quotient is always 0: multiplier 0. The tests below
//! check the edges (0, d − 1, d, multiples, the largest index) for divisors of every size.

/// `n / d` and `n mod d` for any `n < 2^63`, by multiply and shift.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Divider {
    divisor: u64,
    multiplier: u64,
    shift: u32,
}

impl Divider {
    /// The divider for `divisor ≥ 1`. Panics on 0 (callers validate divisors first).
    pub(crate) fn new(divisor: u64) -> Divider {
        assert!(divisor >= 1, "division by zero");
        if divisor > 1 << 63 {
            return Divider {
                divisor,
                multiplier: 0,
                shift: 0,
            };
        }
        let l = 64 - (divisor - 1).leading_zeros();
        let multiplier = (1u128 << (63 + l)).div_ceil(u128::from(divisor));
        Divider {
            divisor,
            multiplier: u64::try_from(multiplier).expect("the multiplier fits 64 bits"),
            shift: l,
        }
    }

    /// `n / divisor`, for `n < 2^63`.
    #[inline(always)]
    pub(crate) fn quotient(&self, n: u64) -> u64 {
        let high = (u128::from(n << 1) * u128::from(self.multiplier)) >> 64;
        high as u64 >> self.shift
    }

    /// `n mod divisor`, for `n < 2^63`.
    #[inline(always)]
    pub(crate) fn remainder(&self, n: u64) -> u64 {
        n - self.quotient(n) * self.divisor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The largest numerator a plan accepts: the largest non-negative i64.
    const MAX: u64 = i64::MAX as u64;

    fn check(d: u64, n: u64) {
        let div = Divider::new(d);
        assert_eq!(div.quotient(n), n / d, "{n} / {d}");
        assert_eq!(div.remainder(n), n % d, "{n} mod {d}");
    }

    /// Numerators at the edges for `d`: around 0, around `d`, around several multiples,
    /// and the largest valid index with its neighbours.
    fn edges(d: u64) -> Vec<u64> {
        let mut n = vec![
            0,
            1,
            MAX,
            MAX - 1,
            MAX / d * d,
            (MAX / d * d).saturating_sub(1),
        ];
        for k in [1u64, 2, 3, 7, 1000, MAX / d / 2, MAX / d] {
            let Some(multiple) = k.checked_mul(d).filter(|&x| x <= MAX) else {
                continue;
            };
            n.extend([
                multiple.saturating_sub(1),
                multiple,
                (multiple + 1).min(MAX),
            ]);
        }
        n
    }

    #[test]
    fn exact_at_the_edges_for_divisors_of_every_size() {
        let mut divisors = vec![1, 2, 3, 5, 6, 7, 10, 641, 10_000, 65_537, 1_000_003, MAX];
        for bits in 1..64 {
            let p = 1u64 << bits;
            divisors.extend([p - 1, p, p + 1, p / 3 * 2 + 1]);
        }
        for d in divisors {
            for n in edges(d) {
                check(d, n);
            }
        }
    }

    #[test]
    fn exact_exhaustively_for_small_operands() {
        for d in 1..=300 {
            for n in 0..4096 {
                check(d, n);
            }
        }
    }

    #[test]
    fn exact_for_pseudo_random_operands() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..100_000 {
            let d = next() >> (next() % 64);
            let n = next() >> 1;
            check(d.max(1), n);
        }
    }
}
