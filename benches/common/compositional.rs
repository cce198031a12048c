//! Compositional-bag benchmark inputs, shared by `benches/compositional.rs` and the report:
//! a quotient-remainder table of dimension 64 whose two components are views of the
//! benchmark buffer (random bytes that read as finite positive numbers in every format),
//! pooled three ways over the same index batches:
//!
//! - fused: lowp's compositional bag;
//! - unfused: what an engine does without it, with lowp's own kernels: quotient and
//!   remainder index arrays, one embedding bag of one index per entry into a buffer per
//!   component, an element-wise product, then an embedding bag over the product rows;
//! - full: a plain embedding bag over the same virtual table held in full (f32, the
//!   ≥ 1 GiB large table).

use lowp::embedding::plan::{EmbeddingBag, EmbeddingBagSpec, IndexType};
use lowp::{
    Bags, Combine, CompositionalBag, CompositionalTable, Format, Isa, Output, Pooling, Scheme,
    Table,
};

/// The dimension of the benchmarked virtual tables.
pub const DIM: usize = 64;
/// Rows per bag.
pub const BAG: usize = 100;
/// Bags per call: a DLRM batch.
pub const BAGS: usize = 2048;

/// One quotient-remainder virtual table and the bags to pool over it.
pub struct QrCase<'a> {
    /// The virtual table (product of the two components).
    pub table: CompositionalTable<'a>,
    /// The remainder modulus, and the rows of each component.
    pub m: usize,
    components: [Table<'a>; 2],
    offsets: Vec<i32>,
    /// `0..BAG · BAGS`: the unfused way's pooling indices, and its bags of one.
    arange: Vec<i32>,
}

impl<'a> QrCase<'a> {
    /// `virtual_rows` categories from two `format` tables of `m` rows over the start of
    /// `buffer` (`virtual_rows ≤ m²`).
    pub fn new(buffer: &'a [u8], format: Format, m: usize, virtual_rows: usize) -> Self {
        let bytes = format.table_bytes(m, DIM).expect("small tables");
        let component =
            |at: usize| Table::new(format, m, DIM, &buffer[at..at + bytes]).expect("sized");
        let components = [component(0), component(bytes)];
        let scheme = Scheme::QuotientRemainder { m };
        let table = CompositionalTable::new(&components, scheme, Combine::Product, virtual_rows)
            .expect("the components cover the virtual rows");
        QrCase {
            table,
            m,
            components,
            offsets: (0..=BAGS).map(|b| (b * BAG) as i32).collect(),
            arange: (0..=(BAG * BAGS) as i32).collect(),
        }
    }

    /// Indices of one call.
    pub fn batch_len(&self) -> usize {
        BAG * BAGS
    }

    /// Elements of the output.
    pub fn out_len(&self) -> usize {
        BAGS * DIM
    }

    /// Bytes of component rows one call reads.
    pub fn component_bytes(&self) -> usize {
        self.batch_len() * (self.components[0].row_bytes() + self.components[1].row_bytes())
    }

    /// The fused plan at `isa`.
    pub fn plan(&self, isa: Isa) -> CompositionalBag {
        CompositionalBag::new(&self.table, Pooling::Sum, Default::default(), Some(isa))
            .expect("an available level")
    }

    /// Pools the batch `indices` with the fused `plan`.
    pub fn fused(&self, plan: &CompositionalBag, indices: &[i32], out: &mut [f32]) {
        let bags = Bags::from_offsets(indices, &self.offsets[..]).expect("valid offsets");
        plan.run(&self.table, &bags, Output::F32(out), DIM)
            .expect("valid benchmark inputs");
    }

    /// Pools the batch `indices` the unfused way with f32 plans at `isa`, into `out`, using
    /// `scratch` for the per-index index arrays and rows.
    pub fn unfused(&self, isa: Isa, scratch: &mut Unfused, indices: &[i32], out: &mut [f32]) {
        let n = indices.len();
        let plan = |format| {
            EmbeddingBag::new(EmbeddingBagSpec {
                index: IndexType::I32,
                isa: Some(isa),
                ..EmbeddingBagSpec::new(format, DIM)
            })
            .expect("an available level")
        };
        let m = self.m as i32;
        scratch.quotient.clear();
        scratch.quotient.extend(indices.iter().map(|&i| i / m));
        scratch.remainder.clear();
        scratch.remainder.extend(indices.iter().map(|&i| i % m));
        scratch.rows[0].resize(n * DIM, 0.0);
        scratch.rows[1].resize(n * DIM, 0.0);
        let ones = &self.arange[..=n];
        let component = plan(self.components[0].format());
        for (c, idx) in [&scratch.quotient, &scratch.remainder]
            .into_iter()
            .enumerate()
        {
            let bags = Bags::from_offsets(&idx[..], ones).expect("bags of one");
            component
                .run(
                    &self.components[c],
                    &bags,
                    Output::F32(&mut scratch.rows[c]),
                    DIM,
                )
                .expect("valid benchmark inputs");
        }
        let [product, other] = &mut scratch.rows;
        for (a, b) in product.iter_mut().zip(other.iter()) {
            *a *= *b;
        }
        let rows = Table::from_f32(n, DIM, product).expect("n rows");
        let bags = Bags::from_offsets(&self.arange[..n], &self.offsets[..]).expect("bags");
        plan(Format::F32)
            .run(&rows, &bags, Output::F32(out), DIM)
            .expect("valid benchmark inputs");
    }

    /// Pools the batch `indices` over `full`, the virtual table held in full, with `plan`.
    pub fn full(&self, plan: &EmbeddingBag, full: &Table<'_>, indices: &[i32], out: &mut [f32]) {
        let bags = Bags::from_offsets(indices, &self.offsets[..]).expect("valid offsets");
        plan.run(full, &bags, Output::F32(out), DIM)
            .expect("valid benchmark inputs");
    }

    /// The bits of the reference model's result for the batch `indices`.
    pub fn reference_bits(&self, indices: &[i32]) -> Vec<u32> {
        let mut expected = vec![0f32; self.out_len()];
        let bags = Bags::from_offsets(indices, &self.offsets[..]).expect("valid offsets");
        lowp::reference::compositional_bag(
            &self.table,
            &bags,
            Pooling::Sum,
            &mut Output::F32(&mut expected),
            DIM,
        )
        .expect("valid benchmark inputs");
        expected.iter().map(|x| x.to_bits()).collect()
    }
}

/// The unfused way's buffers, reused across calls as an engine would.
#[derive(Default)]
pub struct Unfused {
    quotient: Vec<i32>,
    remainder: Vec<i32>,
    rows: [Vec<f32>; 2],
}

/// A plain f32 bag plan of dimension [`DIM`] at `isa` over i32 indices: the full table's.
pub fn full_plan(isa: Isa) -> EmbeddingBag {
    EmbeddingBag::new(EmbeddingBagSpec {
        index: IndexType::I32,
        isa: Some(isa),
        ..EmbeddingBagSpec::new(Format::F32, DIM)
    })
    .expect("an available level")
}
