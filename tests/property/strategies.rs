//! Generators shared by every operation: extreme-biased values, sizes, tables.

use std::fmt::Debug;

use lowp::registry::{self, Op, Spec};
use lowp::{Format, PerColumn};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use crate::common::guard::GuardedVec;

/// `len` values of `value` in their own guarded buffer.
pub fn guarded<T: Copy + Debug>(
    value: impl Strategy<Value = T>,
    len: usize,
) -> impl Strategy<Value = GuardedVec<T>> {
    vec(value, len).prop_map(|v| GuardedVec::from_slice(&v))
}

/// One of `extremes` a quarter of the time, else `typical`.
pub fn with_extremes<T: Clone + Debug + 'static>(
    extremes: &[T],
    typical: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    prop_oneof![1 => select(extremes.to_vec()), 3 => typical].boxed()
}

/// Bit patterns of a binary float with `exp_bits` exponent and `man_bits` mantissa bits:
/// mostly moderate magnitudes (so sums stay finite and informative), with ±0, denormals,
/// any normal (huge and tiny), ±inf and NaNs (quiet and signalling) mixed in.
pub fn float_bits(exp_bits: u32, man_bits: u32) -> BoxedStrategy<u32> {
    let exp_max = (1u32 << exp_bits) - 1;
    let bias = exp_max / 2;
    let man_max = (1u32 << man_bits) - 1;
    let exponent = prop_oneof![
        20 => (bias - 4)..=(bias + 4),
        2 => Just(0),
        2 => 1..exp_max,
        1 => Just(exp_max),
    ];
    let mantissa = prop_oneof![4 => 0..=man_max, 1 => Just(0), 1 => Just(1), 1 => Just(man_max)];
    (any::<bool>(), exponent, mantissa)
        .prop_map(move |(negative, e, m)| {
            (u32::from(negative) << (exp_bits + man_bits)) | (e << man_bits) | m
        })
        .boxed()
}

pub fn f32_value() -> BoxedStrategy<f32> {
    float_bits(8, 23).prop_map(f32::from_bits).boxed()
}

/// Exponent and mantissa widths of a float table format (and of the scale and bias of
/// the quantized ones: f32 for Q8, f16 for Q4 and Q2).
pub fn float_layout(format: Format) -> (u32, u32) {
    match format {
        Format::F32 | Format::Q8 => (8, 23),
        Format::F16 | Format::Q4 | Format::Q2 => (5, 10),
        Format::Bf16 => (8, 7),
        other => panic!("no float layout known for {other}"),
    }
}

/// The little-endian bytes of one float of the given widths.
pub fn float_le(exp_bits: u32, man_bits: u32) -> BoxedStrategy<Vec<u8>> {
    let bytes = (1 + exp_bits + man_bits) as usize / 8;
    float_bits(exp_bits, man_bits)
        .prop_map(move |b| b.to_le_bytes()[..bytes].to_vec())
        .boxed()
}

/// Dimensions the registry has kernels specialized for, for the operations `ops` selects.
pub fn specialized_dims(ops: impl Fn(Op) -> bool) -> Vec<usize> {
    registry::entries()
        .iter()
        .filter(|e| ops(e.op))
        .filter_map(|e| match e.spec {
            Spec::Dim(d) => Some(d),
            Spec::Any => None,
        })
        .collect()
}

/// A size: 0, 1, odd, or anything up to `max`.
pub fn size(max: usize) -> BoxedStrategy<usize> {
    prop_oneof![
        1 => Just(0usize),
        1 => Just(1usize),
        2 => (0..=max / 2).prop_map(|h| 2 * h + 1),
        3 => 0..=max,
    ]
    .boxed()
}

/// A dimension: a [`size`], one of `hot`, or a dimension the registry specializes for
/// one of `ops`.
pub fn dim(max: usize, hot: &[usize], ops: impl Fn(Op) -> bool) -> BoxedStrategy<usize> {
    let mut hot = hot.to_vec();
    hot.extend(specialized_dims(ops));
    prop_oneof![3 => size(max), 2 => select(hot)].boxed()
}

/// Dimensions every row-wise operation is tested at.
pub const HOT_DIMS: [usize; 6] = [16, 32, 64, 128, 256, 257];

/// Extra elements between rows: usually none.
pub fn pad() -> BoxedStrategy<usize> {
    prop_oneof![2 => Just(0usize), 1 => 1..=3usize].boxed()
}

/// A table in `format`: float elements from [`float_bits`], or random code bytes (the
/// unused high bits of a last partial byte included) with random scale and bias.
pub fn table(format: Format, rows: usize, dim: usize) -> impl Strategy<Value = GuardedVec<u8>> {
    let (exp_bits, man_bits) = float_layout(format);
    let row = if format.is_quantized() {
        let codes = vec(any::<u8>(), format.data_bytes(dim).unwrap());
        let scale_bias = vec(float_le(exp_bits, man_bits), 2);
        (codes, scale_bias)
            .prop_map(|(codes, scale_bias)| [codes, scale_bias.concat()].concat())
            .boxed()
    } else {
        vec(float_le(exp_bits, man_bits), dim)
            .prop_map(|elements| elements.concat())
            .boxed()
    };
    vec(row, rows).prop_map(|rows| GuardedVec::from_slice(&rows.concat()))
}

pub fn quantized_format() -> impl Strategy<Value = Format> {
    select(
        Format::ALL
            .into_iter()
            .filter(|f| f.is_quantized())
            .collect::<Vec<_>>(),
    )
}

#[derive(Clone, Copy, Debug)]
pub enum OutType {
    F32,
    F16,
    Bf16,
}

pub fn out_type() -> impl Strategy<Value = OutType> {
    select(vec![OutType::F32, OutType::F16, OutType::Bf16])
}

/// A value per tensor or per output column (each column array in its own guarded buffer).
#[derive(Clone, Debug)]
pub enum PerCol<T: Copy> {
    Tensor(T),
    Column(GuardedVec<T>),
}

impl<T: Copy> PerCol<T> {
    pub fn view(&self) -> PerColumn<'_, T> {
        match self {
            PerCol::Tensor(v) => PerColumn::Tensor(*v),
            PerCol::Column(v) => PerColumn::Column(v),
        }
    }
}

pub fn per_col<T: Copy + Debug + 'static>(
    value: BoxedStrategy<T>,
    n: usize,
) -> BoxedStrategy<PerCol<T>> {
    prop_oneof![
        value.clone().prop_map(PerCol::Tensor),
        guarded(value, n).prop_map(PerCol::Column),
    ]
    .boxed()
}
