use crate::embedding::{Bags, Output, Pooling};
use crate::error::Result;
use crate::format::Table;

/// Placeholder (being written).
pub fn embedding_bag(
    _table: &Table<'_>,
    _bags: &Bags<'_>,
    _pooling: Pooling,
    _out: &mut Output<'_>,
    _out_stride: usize,
) -> Result<()> {
    unimplemented!()
}
