//! Every operation, on every instruction-set level this CPU runs, returns exactly the bits
//! (and on bad input exactly the error) of the reference model.
//!
//! Inputs are random shapes (empty, 1, odd, the registry's specialized dimensions, large)
//! and values biased to extremes (±0, denormals, ±inf, NaN, u8 0/255, i8 −128/127, i32 and
//! i64 wrap-around). Every input and output array is its own [`GuardedVec`], ending flush
//! against an inaccessible page, so a kernel that reads one element too many crashes the
//! test. Outputs start filled with a sentinel, so writes into row gaps are caught too.
//!
//! Nothing here names a kernel: levels come from `Isa::available()` and specialized
//! dimensions from the registry, so a kernel added to the registry is tested here as is.
//! `PROPTEST_CASES` overrides the case counts.

mod common;

use std::fmt::Debug;
use std::ops::Range;

use common::guard::GuardedVec;
use half::{bf16, f16};
use lowp::registry::{self, Op, Spec};
use lowp::{
    Bags, Error, Format, GemmOutput, IndexSlice, Isa, MatMut, MatRef, Output, OutputStage,
    PerColumn, Pooling, QuantInput, QuantType, RequantBias, Table, U8I8Problem, Weights, reference,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::TestCaseError;

/// `default_cases` cases unless `PROPTEST_CASES` says otherwise.
fn config(default_cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    config
}

// ---------------------------------------------------------------------------------------
// Comparing results bit for bit

/// Output element types, compared by bit pattern (so NaN payloads and the sign of zero
/// count), with a sentinel that marks elements nobody may write.
trait Bits: Copy + Debug {
    const SENTINEL: Self;
    fn bits(self) -> u64;
}

impl Bits for f32 {
    const SENTINEL: Self = f32::from_bits(0x7fc0_5a5a);
    fn bits(self) -> u64 {
        self.to_bits().into()
    }
}

impl Bits for f16 {
    const SENTINEL: Self = f16::from_bits(0x7e5a);
    fn bits(self) -> u64 {
        self.to_bits().into()
    }
}

impl Bits for bf16 {
    const SENTINEL: Self = bf16::from_bits(0x7fda);
    fn bits(self) -> u64 {
        self.to_bits().into()
    }
}

impl Bits for u8 {
    const SENTINEL: Self = 0x5a;
    fn bits(self) -> u64 {
        self.into()
    }
}

impl Bits for i8 {
    const SENTINEL: Self = 0x5a;
    fn bits(self) -> u64 {
        (self as u8).into()
    }
}

impl Bits for i32 {
    const SENTINEL: Self = 0x5a5a_5a5a;
    fn bits(self) -> u64 {
        (self as u32).into()
    }
}

impl Bits for i64 {
    const SENTINEL: Self = 0x5a5a_5a5a_5a5a_5a5a;
    fn bits(self) -> u64 {
        self as u64
    }
}

/// Float outputs of embedding bags and dequantizers.
trait FloatOut: Bits {
    fn output(out: &mut [Self]) -> Output<'_>;
}

impl FloatOut for f32 {
    fn output(out: &mut [Self]) -> Output<'_> {
        Output::F32(out)
    }
}

impl FloatOut for f16 {
    fn output(out: &mut [Self]) -> Output<'_> {
        Output::F16(out)
    }
}

impl FloatOut for bf16 {
    fn output(out: &mut [Self]) -> Output<'_> {
        Output::Bf16(out)
    }
}

/// Outputs of the u8 × i8 GEMM's stages.
trait GemmOut: Bits {
    fn output(out: &mut [Self]) -> GemmOutput<'_>;
}

impl GemmOut for i32 {
    fn output(out: &mut [Self]) -> GemmOutput<'_> {
        GemmOutput::I32(out)
    }
}

impl GemmOut for u8 {
    fn output(out: &mut [Self]) -> GemmOutput<'_> {
        GemmOutput::U8(out)
    }
}

impl GemmOut for i8 {
    fn output(out: &mut [Self]) -> GemmOutput<'_> {
        GemmOutput::I8(out)
    }
}

impl GemmOut for f32 {
    fn output(out: &mut [Self]) -> GemmOutput<'_> {
        GemmOutput::F32(out)
    }
}

/// Which implementation a run goes through.
#[derive(Clone, Copy, Debug)]
enum Path {
    /// `lowp::reference::*` called directly.
    Reference,
    /// The dispatched operation with an explicit level.
    Level(Isa),
}

/// Runs `run` through the reference and through every available level, each on a fresh
/// guarded copy of `initial`, and checks that every level returns the reference's result
/// and, when that is `Ok`, leaves exactly the reference's bits. Also checks that the
/// reference leaves every element for which `written` is false untouched. Returns the
/// reference's result.
fn agree<T: Bits>(
    initial: &GuardedVec<T>,
    written: impl Fn(usize) -> bool,
    mut run: impl FnMut(Path, &mut [T]) -> lowp::Result<()>,
) -> Result<lowp::Result<()>, TestCaseError> {
    let mut expected_out = initial.clone();
    let expected = run(Path::Reference, &mut expected_out);
    if expected.is_ok() {
        let touched = (0..initial.len())
            .find(|&i| !written(i) && initial[i].bits() != expected_out[i].bits());
        prop_assert!(
            touched.is_none(),
            "the reference wrote element {touched:?}, which is outside the result"
        );
    }
    for &isa in Isa::available() {
        let mut out = initial.clone();
        let got = run(Path::Level(isa), &mut out);
        prop_assert_eq!(
            &got,
            &expected,
            "{}: result differs from the reference",
            isa
        );
        if got.is_ok() {
            let differs = (0..out.len()).find(|&i| out[i].bits() != expected_out[i].bits());
            if let Some(i) = differs {
                return Err(TestCaseError::fail(format!(
                    "{isa}: element {i} of {} is {:?} ({:#x}), the reference has {:?} ({:#x})",
                    out.len(),
                    out[i],
                    out[i].bits(),
                    expected_out[i],
                    expected_out[i].bits()
                )));
            }
        }
    }
    Ok(expected)
}

/// Elements a `rows × cols` matrix with row stride `stride` spans.
fn strided_len(rows: usize, cols: usize, stride: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * stride + cols
    }
}

// ---------------------------------------------------------------------------------------
// Generators shared by every operation

/// `len` values of `value` in their own guarded buffer.
fn guarded<T: Copy + Debug>(
    value: impl Strategy<Value = T>,
    len: usize,
) -> impl Strategy<Value = GuardedVec<T>> {
    vec(value, len).prop_map(|v| GuardedVec::from_slice(&v))
}

/// One of `extremes` a quarter of the time, else `typical`.
fn with_extremes<T: Clone + Debug + 'static>(
    extremes: &[T],
    typical: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    prop_oneof![1 => select(extremes.to_vec()), 3 => typical].boxed()
}

/// Bit patterns of a binary float with `exp_bits` exponent and `man_bits` mantissa bits:
/// mostly moderate magnitudes (so sums stay finite and informative), with ±0, denormals,
/// any normal (huge and tiny), ±inf and NaNs (quiet and signalling) mixed in.
fn float_bits(exp_bits: u32, man_bits: u32) -> BoxedStrategy<u32> {
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

fn f32_value() -> BoxedStrategy<f32> {
    float_bits(8, 23).prop_map(f32::from_bits).boxed()
}

/// Exponent and mantissa widths of a float table format (and of the scale and bias of
/// the quantized ones: f32 for Q8, f16 for Q4 and Q2).
fn float_layout(format: Format) -> (u32, u32) {
    match format {
        Format::F32 | Format::Q8 => (8, 23),
        Format::F16 | Format::Q4 | Format::Q2 => (5, 10),
        Format::Bf16 => (8, 7),
        other => panic!("no float layout known for {other}"),
    }
}

/// The little-endian bytes of one float of the given widths.
fn float_le(exp_bits: u32, man_bits: u32) -> BoxedStrategy<Vec<u8>> {
    let bytes = (1 + exp_bits + man_bits) as usize / 8;
    float_bits(exp_bits, man_bits)
        .prop_map(move |b| b.to_le_bytes()[..bytes].to_vec())
        .boxed()
}

/// Dimensions the registry has kernels specialized for, for the operations `ops` selects.
fn specialized_dims(ops: impl Fn(Op) -> bool) -> Vec<usize> {
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
fn size(max: usize) -> BoxedStrategy<usize> {
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
fn dim(max: usize, hot: &[usize], ops: impl Fn(Op) -> bool) -> BoxedStrategy<usize> {
    let mut hot = hot.to_vec();
    hot.extend(specialized_dims(ops));
    prop_oneof![3 => size(max), 2 => select(hot)].boxed()
}

/// Dimensions every row-wise operation is tested at.
const HOT_DIMS: [usize; 6] = [16, 32, 64, 128, 256, 257];

/// Extra elements between rows: usually none.
fn pad() -> BoxedStrategy<usize> {
    prop_oneof![2 => Just(0usize), 1 => 1..=3usize].boxed()
}

/// A table in `format`: float elements from [`float_bits`], or random code bytes (the
/// unused high bits of a last partial byte included) with random scale and bias.
fn table(format: Format, rows: usize, dim: usize) -> impl Strategy<Value = GuardedVec<u8>> {
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

fn quantized_format() -> impl Strategy<Value = Format> {
    select(
        Format::ALL
            .into_iter()
            .filter(|f| f.is_quantized())
            .collect::<Vec<_>>(),
    )
}

#[derive(Clone, Copy, Debug)]
enum OutType {
    F32,
    F16,
    Bf16,
}

fn out_type() -> impl Strategy<Value = OutType> {
    select(vec![OutType::F32, OutType::F16, OutType::Bf16])
}

/// A value per tensor or per output column (each column array in its own guarded buffer).
#[derive(Clone, Debug)]
enum PerCol<T: Copy> {
    Tensor(T),
    Column(GuardedVec<T>),
}

impl<T: Copy> PerCol<T> {
    fn view(&self) -> PerColumn<'_, T> {
        match self {
            PerCol::Tensor(v) => PerColumn::Tensor(*v),
            PerCol::Column(v) => PerColumn::Column(v),
        }
    }
}

fn per_col<T: Copy + Debug + 'static>(
    value: BoxedStrategy<T>,
    n: usize,
) -> BoxedStrategy<PerCol<T>> {
    prop_oneof![
        value.clone().prop_map(PerCol::Tensor),
        guarded(value, n).prop_map(PerCol::Column),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------
// Embedding bags

/// Indices, offsets or lengths in their own guarded buffer, in either width.
#[derive(Clone, Debug)]
enum Ints {
    I32(GuardedVec<i32>),
    I64(GuardedVec<i64>),
}

impl Ints {
    /// `values` (which fit in i32 unless `wide`) as i64 or i32.
    fn new(values: &[i64], wide: bool) -> Ints {
        if wide {
            Ints::I64(GuardedVec::from_slice(values))
        } else {
            let narrow: Vec<i32> = values.iter().map(|&v| v.try_into().unwrap()).collect();
            Ints::I32(GuardedVec::from_slice(&narrow))
        }
    }

    fn slice(&self) -> IndexSlice<'_> {
        match self {
            Ints::I32(v) => IndexSlice::I32(v),
            Ints::I64(v) => IndexSlice::I64(v),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Bounds {
    Offsets,
    OffsetsWithoutLast,
    Lengths,
}

/// How a batch is cut into bags: `lens[b]` entries in bag `b`, the bags back to back
/// after `lead` indices that no bag covers and before `trail` more (offsets may describe a
/// window of a larger batch).
#[derive(Clone, Debug)]
struct Layout {
    lens: Vec<usize>,
    bounds: Bounds,
    lead: usize,
    trail: usize,
}

impl Layout {
    fn window(&self) -> Range<usize> {
        self.lead..self.lead + self.lens.iter().sum::<usize>()
    }

    fn num_indices(&self) -> usize {
        self.window().end + self.trail
    }

    fn max_len(&self) -> usize {
        self.lens.iter().copied().max().unwrap_or(0)
    }

    /// The offsets or lengths describing the bags.
    fn bound_values(&self) -> Vec<i64> {
        let starts = self.lens.iter().scan(self.lead, |start, &len| {
            let this = *start;
            *start += len;
            Some(this as i64)
        });
        match self.bounds {
            Bounds::Offsets => starts.chain([self.window().end as i64]).collect(),
            Bounds::OffsetsWithoutLast => starts.collect(),
            Bounds::Lengths => self.lens.iter().map(|&l| l as i64).collect(),
        }
    }

    /// The error an operation must report for `indices` over a table of `rows`: the
    /// first out-of-range index, in bag order.
    fn first_bad_index(&self, indices: &[i64], rows: usize) -> Option<Error> {
        let mut start = self.lead;
        for (bag, &len) in self.lens.iter().enumerate() {
            let entries = &indices[start..start + len];
            if let Some(position) = entries.iter().position(|&i| !(0..rows as i64).contains(&i)) {
                return Some(Error::IndexOutOfRange {
                    bag,
                    position,
                    index: entries[position],
                    rows,
                });
            }
            start += len;
        }
        None
    }
}

fn layout() -> impl Strategy<Value = Layout> {
    let lens = vec(prop_oneof![1 => Just(0usize), 3 => 1..=8usize], 0..=6);
    let bounds = select(vec![
        Bounds::Offsets,
        Bounds::OffsetsWithoutLast,
        Bounds::Lengths,
    ]);
    (lens, bounds, 0..=3usize, 0..=3usize).prop_map(|(lens, bounds, lead, trail)| {
        // Lengths always start at the first index and cover them all; offsets without a
        // last entry end at the last index.
        let (lead, trail) = match bounds {
            Bounds::Offsets => (lead, trail),
            Bounds::OffsetsWithoutLast => (lead, 0),
            Bounds::Lengths => (0, 0),
        };
        Layout {
            lens,
            bounds,
            lead,
            trail,
        }
    })
}

/// Indices for `layout` over `rows` rows: inside the bags valid rows, sometimes one
/// out-of-range value (negative, `rows`, or one that only looks valid when truncated to
/// 32 bits); outside the bags arbitrary values, which no kernel may look at.
fn indices(layout: &Layout, rows: usize, wide: bool) -> impl Strategy<Value = Vec<i64>> + use<> {
    let len = layout.num_indices();
    let window = layout.window();
    let (garbage, mut bad) = if wide {
        (any::<i64>().boxed(), vec![i64::MIN, i64::MAX, 1 << 32])
    } else {
        (any::<i32>().prop_map(i64::from).boxed(), vec![])
    };
    bad.extend([-1, rows as i64, i32::MIN.into(), i32::MAX.into()]);
    let one_bad = prop::option::weighted(0.15, (any::<Index>(), select(bad)));
    (vec(0..rows as i64, len), vec(garbage, len), one_bad).prop_map(
        move |(mut values, garbage, one_bad)| {
            for i in (0..window.start).chain(window.end..values.len()) {
                values[i] = garbage[i];
            }
            if let Some((at, bad)) = one_bad.filter(|_| !window.is_empty()) {
                values[window.start + at.index(window.len())] = bad;
            }
            values
        },
    )
}

#[derive(Clone, Debug)]
enum WeightsCase {
    None,
    PerIndex(GuardedVec<f32>),
    Positional(GuardedVec<f32>),
}

impl WeightsCase {
    fn view(&self) -> Weights<'_> {
        match self {
            WeightsCase::None => Weights::None,
            WeightsCase::PerIndex(w) => Weights::PerIndex(w),
            WeightsCase::Positional(w) => Weights::Positional(w),
        }
    }
}

fn weights(num_indices: usize, max_len: usize) -> impl Strategy<Value = WeightsCase> {
    prop_oneof![
        Just(WeightsCase::None),
        guarded(f32_value(), num_indices).prop_map(WeightsCase::PerIndex),
        (0..=2usize)
            .prop_flat_map(move |extra| guarded(f32_value(), max_len + extra))
            .prop_map(WeightsCase::Positional),
    ]
}

#[derive(Clone, Debug)]
struct EmbeddingCase {
    format: Format,
    rows: usize,
    dim: usize,
    table: GuardedVec<u8>,
    num_bags: usize,
    bounds: Bounds,
    bound_values: Ints,
    indices: Ints,
    weights: WeightsCase,
    pooling: Pooling,
    out: OutType,
    out_stride: usize,
    /// What every path must return.
    expected: lowp::Result<()>,
}

impl EmbeddingCase {
    fn bags(&self) -> Bags<'_> {
        let (indices, bounds) = (self.indices.slice(), self.bound_values.slice());
        match self.bounds {
            Bounds::Offsets => Bags::from_offsets(indices, bounds),
            Bounds::OffsetsWithoutLast => Bags::from_offsets_without_last(indices, bounds),
            Bounds::Lengths => Bags::from_lengths(indices, bounds),
        }
        .and_then(|bags| bags.with_weights(self.weights.view()))
        .expect("generated bags are valid")
    }
}

fn embedding_case() -> impl Strategy<Value = EmbeddingCase> {
    let dim = dim(1100, &HOT_DIMS, |op| matches!(op, Op::EmbeddingBag(_)));
    let shape = (
        select(Format::ALL.to_vec()),
        dim,
        1..=12usize,
        layout(),
        any::<bool>(),
        any::<bool>(),
    );
    shape.prop_flat_map(|(format, dim, rows, layout, wide_indices, wide_bounds)| {
        let values = (
            table(format, rows, dim),
            indices(&layout, rows, wide_indices),
            weights(layout.num_indices(), layout.max_len()),
            select(vec![Pooling::Sum, Pooling::Mean]),
            out_type(),
            pad(),
        );
        values.prop_map(
            move |(table, indices, weights, pooling, out, pad)| EmbeddingCase {
                format,
                rows,
                dim,
                table,
                num_bags: layout.lens.len(),
                bounds: layout.bounds,
                bound_values: Ints::new(&layout.bound_values(), wide_bounds),
                expected: layout.first_bad_index(&indices, rows).map_or(Ok(()), Err),
                indices: Ints::new(&indices, wide_indices),
                weights,
                pooling,
                out,
                out_stride: dim + pad,
            },
        )
    })
}

fn check_embedding<T: FloatOut>(case: &EmbeddingCase) -> Result<(), TestCaseError> {
    let table = Table::new(case.format, case.rows, case.dim, &case.table).unwrap();
    let bags = case.bags();
    let (dim, stride) = (case.dim, case.out_stride);
    let out = GuardedVec::filled(strided_len(case.num_bags, dim, stride), T::SENTINEL);
    let result = agree(
        &out,
        |i| i % stride < dim,
        |path, out| match path {
            Path::Reference => {
                reference::embedding_bag(&table, &bags, case.pooling, &mut T::output(out), stride)
            }
            Path::Level(isa) => lowp::embedding_bag(
                &table,
                &bags,
                case.pooling,
                T::output(out),
                stride,
                Some(isa),
            ),
        },
    )?;
    prop_assert_eq!(result, case.expected.clone());
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Quantizers and dequantizers

/// Values around which quantizers have edge cases: the f16 limits (for the stored scale
/// and bias), values that overflow them, a row whose f16 bias rounds above its maximum.
const QUANTIZER_EXTREMES: [f32; 9] = [
    65504.0,
    -65504.0,
    65520.0,
    1e30,
    -1e30,
    f32::MAX,
    f32::MIN,
    f32::MIN_POSITIVE,
    1000.3,
];

/// One row to quantize: typical values in a random range, a constant row, or arbitrary
/// `special` values mixed with [`QUANTIZER_EXTREMES`].
fn quantizer_row(dim: usize, special: BoxedStrategy<f32>) -> BoxedStrategy<Vec<f32>> {
    let typical = (select(vec![1e-3f32, 1.0, 100.0, 6e4]), -1e3f32..1e3).prop_flat_map(
        move |(spread, center)| vec((-spread..spread).prop_map(move |x| center + x), dim),
    );
    let extreme = prop_oneof![3 => special, 1 => select(QUANTIZER_EXTREMES.to_vec())];
    let constant = prop_oneof![extreme.clone(), -1e5f32..1e5].prop_map(move |x| vec![x; dim]);
    prop_oneof![4 => typical, 1 => constant, 1 => vec(extreme, dim)].boxed()
}

#[derive(Clone, Debug)]
enum QuantIn {
    F32(GuardedVec<f32>),
    F16(GuardedVec<f16>),
}

#[derive(Clone, Debug)]
struct QuantizeCase {
    format: Format,
    rows: usize,
    dim: usize,
    input: QuantIn,
}

fn quantize_case() -> impl Strategy<Value = QuantizeCase> {
    let dim = dim(1100, &HOT_DIMS, |op| matches!(op, Op::Quantize(_)));
    (quantized_format(), 0..=6usize, dim, any::<bool>()).prop_flat_map(
        |(format, rows, dim, half_input)| {
            // f16 input gets special values drawn as f16 bit patterns (f16 denormals, …).
            let special = if half_input {
                float_bits(5, 10)
                    .prop_map(|b| f16::from_bits(b as u16).to_f32())
                    .boxed()
            } else {
                f32_value()
            };
            vec(quantizer_row(dim, special), rows).prop_map(move |rows_values| {
                let values = rows_values.concat();
                let input = if half_input {
                    let halves: Vec<f16> = values.iter().map(|&x| f16::from_f32(x)).collect();
                    QuantIn::F16(GuardedVec::from_slice(&halves))
                } else {
                    QuantIn::F32(GuardedVec::from_slice(&values))
                };
                QuantizeCase {
                    format,
                    rows,
                    dim,
                    input,
                }
            })
        },
    )
}

fn check_quantize(case: &QuantizeCase) -> Result<(), TestCaseError> {
    let input = match &case.input {
        QuantIn::F32(v) => QuantInput::F32(v),
        QuantIn::F16(v) => QuantInput::F16(v),
    };
    let (format, rows, dim) = (case.format, case.rows, case.dim);
    let out = GuardedVec::filled(format.table_bytes(rows, dim).unwrap(), u8::SENTINEL);
    // Rows f16 cannot describe are an error; `agree` checks every level returns the same.
    let _ = agree(
        &out,
        |_| true,
        |path, out| match path {
            Path::Reference => reference::quantize(format, input, rows, dim, out),
            Path::Level(isa) => lowp::quantize(format, input, rows, dim, out, Some(isa)),
        },
    )?;
    Ok(())
}

#[derive(Clone, Debug)]
struct DequantizeCase {
    format: Format,
    rows: usize,
    dim: usize,
    table: GuardedVec<u8>,
    out: OutType,
}

fn dequantize_case() -> impl Strategy<Value = DequantizeCase> {
    let dim = dim(1100, &HOT_DIMS, |op| matches!(op, Op::Dequantize(_)));
    (quantized_format(), 0..=6usize, dim).prop_flat_map(|(format, rows, dim)| {
        (table(format, rows, dim), out_type()).prop_map(move |(table, out)| DequantizeCase {
            format,
            rows,
            dim,
            table,
            out,
        })
    })
}

fn check_dequantize<T: FloatOut>(case: &DequantizeCase) -> Result<(), TestCaseError> {
    let table = Table::new(case.format, case.rows, case.dim, &case.table).unwrap();
    let out = GuardedVec::filled(case.rows * case.dim, T::SENTINEL);
    let result = agree(
        &out,
        |_| true,
        |path, out| match path {
            Path::Reference => reference::dequantize(&table, &mut T::output(out)),
            Path::Level(isa) => lowp::dequantize(&table, T::output(out), Some(isa)),
        },
    )?;
    prop_assert_eq!(result, Ok(()));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// u8 × i8 GEMM

#[derive(Clone, Debug)]
enum BiasCase {
    None,
    I32(GuardedVec<i32>),
    F32 {
        bias: GuardedVec<f32>,
        act_times_w_scale: PerCol<f32>,
    },
}

#[derive(Clone, Debug)]
enum StageCase {
    RawI32,
    Requantize {
        out: QuantType,
        bias: BiasCase,
        multiplier: PerCol<f32>,
        zero_point: i32,
        relu: bool,
    },
    Dequantize {
        a_scale: f32,
        b_scale: PerCol<f32>,
        bias: Option<GuardedVec<f32>>,
        relu: bool,
    },
}

impl StageCase {
    fn view(&self) -> OutputStage<'_> {
        match self {
            StageCase::RawI32 => OutputStage::RawI32,
            StageCase::Requantize {
                out,
                bias,
                multiplier,
                zero_point,
                relu,
            } => OutputStage::Requantize {
                out: *out,
                bias: match bias {
                    BiasCase::None => RequantBias::None,
                    BiasCase::I32(b) => RequantBias::I32(b),
                    BiasCase::F32 {
                        bias,
                        act_times_w_scale,
                    } => RequantBias::F32 {
                        bias,
                        act_times_w_scale: act_times_w_scale.view(),
                    },
                },
                multiplier: multiplier.view(),
                zero_point: *zero_point,
                relu: *relu,
            },
            StageCase::Dequantize {
                a_scale,
                b_scale,
                bias,
                relu,
            } => OutputStage::Dequantize {
                a_scale: *a_scale,
                b_scale: b_scale.view(),
                bias: bias.as_deref(),
                relu: *relu,
            },
        }
    }
}

fn i32_value() -> BoxedStrategy<i32> {
    with_extremes(
        &[i32::MIN, i32::MAX, 0, -1],
        prop_oneof![any::<i32>(), -5000..5000],
    )
}

/// Requantization multipliers: mostly the small positive reals real models use.
fn multiplier() -> BoxedStrategy<f32> {
    prop_oneof![3 => 1e-6f32..1.0, 1 => f32_value()].boxed()
}

fn requant_bias(n: usize) -> BoxedStrategy<BiasCase> {
    prop_oneof![
        Just(BiasCase::None),
        guarded(i32_value(), n).prop_map(BiasCase::I32),
        (guarded(f32_value(), n), per_col(multiplier(), n)).prop_map(
            |(bias, act_times_w_scale)| BiasCase::F32 {
                bias,
                act_times_w_scale
            }
        ),
    ]
    .boxed()
}

fn stage(n: usize) -> BoxedStrategy<StageCase> {
    let requantize = select(vec![QuantType::U8, QuantType::I8]).prop_flat_map(move |out| {
        let (lo, hi) = match out {
            QuantType::U8 => (0, 255),
            QuantType::I8 => (-128, 127),
        };
        (
            requant_bias(n),
            per_col(multiplier(), n),
            with_extremes(&[lo, hi], lo..=hi),
            any::<bool>(),
        )
            .prop_map(
                move |(bias, multiplier, zero_point, relu)| StageCase::Requantize {
                    out,
                    bias,
                    multiplier,
                    zero_point,
                    relu,
                },
            )
    });
    let dequantize = (
        f32_value(),
        per_col(f32_value(), n),
        prop::option::of(guarded(f32_value(), n)),
        any::<bool>(),
    )
        .prop_map(|(a_scale, b_scale, bias, relu)| StageCase::Dequantize {
            a_scale,
            b_scale,
            bias,
            relu,
        });
    prop_oneof![Just(StageCase::RawI32), requantize, dequantize].boxed()
}

#[derive(Clone, Debug)]
struct U8I8Case {
    m: usize,
    n: usize,
    k: usize,
    a: GuardedVec<u8>,
    a_stride: usize,
    a_zero_point: u8,
    b: GuardedVec<i8>,
    b_zero_point: PerCol<i32>,
    stage: StageCase,
    out_stride: usize,
}

fn u8i8_case() -> impl Strategy<Value = U8I8Case> {
    let n = dim(96, &[16, 32, 64, 128], |op| op == Op::GemmU8I8);
    (size(64), n, size(300), pad(), pad()).prop_flat_map(|(m, n, k, a_pad, out_pad)| {
        let a_stride = k + a_pad;
        // B's zero point is an i32: beyond i8's range it makes the i32 sums wrap.
        let b_zero_point = with_extremes(
            &[-128, 127, 0, i32::MIN, i32::MAX],
            prop_oneof![4 => -128..=127, 1 => any::<i32>()],
        );
        (
            guarded(
                with_extremes(&[0, 255], any::<u8>()),
                strided_len(m, k, a_stride),
            ),
            with_extremes(&[0, 255], any::<u8>()),
            guarded(with_extremes(&[-128, 127], any::<i8>()), k * n),
            per_col(b_zero_point, n),
            stage(n),
        )
            .prop_map(move |(a, a_zero_point, b, b_zero_point, stage)| U8I8Case {
                m,
                n,
                k,
                a,
                a_stride,
                a_zero_point,
                b,
                b_zero_point,
                stage,
                out_stride: n + out_pad,
            })
    })
}

fn check_u8i8<T: GemmOut>(case: &U8I8Case) -> Result<(), TestCaseError> {
    let problem = U8I8Problem {
        m: case.m,
        n: case.n,
        k: case.k,
        a: &case.a,
        a_stride: case.a_stride,
        a_zero_point: case.a_zero_point,
        b: &case.b,
        b_zero_point: case.b_zero_point.view(),
    };
    let stage = case.stage.view();
    let (n, stride) = (case.n, case.out_stride);
    let out = GuardedVec::filled(strided_len(case.m, n, stride), T::SENTINEL);
    let result = agree(
        &out,
        |i| i % stride < n,
        |path, out| match path {
            Path::Reference => reference::gemm_u8i8(&problem, &stage, &mut T::output(out), stride),
            Path::Level(isa) => {
                lowp::gemm_u8i8(&problem, &stage, T::output(out), stride, Some(isa))
            }
        },
    )?;
    prop_assert_eq!(result, Ok(()));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// i64 GEMM

/// Strides of a `rows × cols` view: row-major, or stored transposed (column-major), with
/// padding between the stored rows.
#[derive(Clone, Copy, Debug)]
struct View {
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl View {
    /// Elements from the first to one past the last element of the view.
    fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride + 1
        }
    }

    /// Which positions of its buffer the view covers.
    fn covered(&self) -> Vec<bool> {
        let mut covered = vec![false; self.extent()];
        for r in 0..self.rows {
            for c in 0..self.cols {
                covered[r * self.row_stride + c * self.col_stride] = true;
            }
        }
        covered
    }
}

fn view(rows: usize, cols: usize) -> impl Strategy<Value = View> {
    (any::<bool>(), pad()).prop_map(move |(transposed, pad)| {
        let (row_stride, col_stride) = if transposed {
            (1, rows + pad)
        } else {
            (cols + pad, 1)
        };
        View {
            rows,
            cols,
            row_stride,
            col_stride,
        }
    })
}

fn i64_value() -> BoxedStrategy<i64> {
    with_extremes(
        &[i64::MIN, i64::MAX, 0, -1, 1],
        prop_oneof![any::<i64>(), -1000..1000i64],
    )
}

/// A view and the contents of its own guarded buffer.
fn matrix(rows: usize, cols: usize) -> impl Strategy<Value = (View, GuardedVec<i64>)> {
    view(rows, cols).prop_flat_map(|v| (Just(v), guarded(i64_value(), v.extent())))
}

#[derive(Clone, Debug)]
struct I64Case {
    m: usize,
    n: usize,
    k: usize,
    a: (View, GuardedVec<i64>),
    b: (View, GuardedVec<i64>),
    c: (View, GuardedVec<i64>),
    accumulate: bool,
}

fn i64_case() -> impl Strategy<Value = I64Case> {
    let n = dim(40, &[16, 32], |op| op == Op::GemmI64);
    (size(24), n, size(40)).prop_flat_map(|(m, n, k)| {
        (matrix(m, k), matrix(k, n), matrix(m, n), any::<bool>()).prop_map(
            move |(a, b, c, accumulate)| I64Case {
                m,
                n,
                k,
                a,
                b,
                c,
                accumulate,
            },
        )
    })
}

fn mat_ref((view, data): &(View, GuardedVec<i64>)) -> MatRef<'_> {
    MatRef {
        data,
        row_stride: view.row_stride,
        col_stride: view.col_stride,
    }
}

fn check_i64(case: &I64Case) -> Result<(), TestCaseError> {
    let (a, b) = (mat_ref(&case.a), mat_ref(&case.b));
    let (c_view, c_initial) = &case.c;
    let covered = c_view.covered();
    let result = agree(
        c_initial,
        |i| covered[i],
        |path, data| {
            let (m, n, k, acc) = (case.m, case.n, case.k, case.accumulate);
            let mut c = MatMut {
                data,
                row_stride: c_view.row_stride,
                col_stride: c_view.col_stride,
            };
            match path {
                Path::Reference => reference::gemm_i64(m, n, k, &a, &b, &mut c, acc),
                Path::Level(isa) => lowp::gemm_i64(m, n, k, a, b, c, acc, Some(isa)),
            }
        },
    )?;
    prop_assert_eq!(result, Ok(()));
    Ok(())
}

// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn embedding_bag_matches_reference(case in embedding_case()) {
        match case.out {
            OutType::F32 => check_embedding::<f32>(&case)?,
            OutType::F16 => check_embedding::<f16>(&case)?,
            OutType::Bf16 => check_embedding::<bf16>(&case)?,
        }
    }
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn quantize_matches_reference(case in quantize_case()) {
        check_quantize(&case)?;
    }

    #[test]
    fn dequantize_matches_reference(case in dequantize_case()) {
        match case.out {
            OutType::F32 => check_dequantize::<f32>(&case)?,
            OutType::F16 => check_dequantize::<f16>(&case)?,
            OutType::Bf16 => check_dequantize::<bf16>(&case)?,
        }
    }

    #[test]
    fn gemm_u8i8_matches_reference(case in u8i8_case()) {
        match case.stage {
            StageCase::RawI32 => check_u8i8::<i32>(&case)?,
            StageCase::Requantize { out: QuantType::U8, .. } => check_u8i8::<u8>(&case)?,
            StageCase::Requantize { out: QuantType::I8, .. } => check_u8i8::<i8>(&case)?,
            StageCase::Dequantize { .. } => check_u8i8::<f32>(&case)?,
        }
    }

    #[test]
    fn gemm_i64_matches_reference(case in i64_case()) {
        check_i64(&case)?;
    }
}

// ---------------------------------------------------------------------------------------
// The guard pages themselves

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
