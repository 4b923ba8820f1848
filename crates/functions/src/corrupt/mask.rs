//! `corrupt_mask(x, p, seed, key [, view])`: the raw Bernoulli(p) mask of a column.
//!
//! True where the cell is corrupted by any corruption function called with the same
//! (column, p, seed, key, view): VIME's and TabNet's mask `m`, before any swap. NULL where
//! `x` is NULL (a NULL cell is never corrupted). For VIME's label `m = (x != x_tilde)`,
//! which is 0 where a swap drew an equal value, compare the columns: `x <> x_tilde`.

use std::sync::{Arc, LazyLock};

use arrow::array::{ArrayRef, BooleanArray};
use arrow::datatypes::{DataType, Field};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::Documentation;

use super::common::{Corruption, Draws, check_cell_type, documentation};

/// The `corrupt_mask` method.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Mask;

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    documentation(
        "The Bernoulli(p) corruption mask of a column: true where corrupt_swap, corrupt_noise \
         or corrupt_fill with the same column, p, seed, key and view change the cell. NULL where x is NULL.",
        "corrupt_mask(x, p, seed, key [, view])",
        &[],
        "SELECT corrupt_mask(age, 0.3, 42, id) AS age_mask FROM adult;",
    )
});

impl Corruption for Mask {
    fn name(&self) -> &'static str {
        "corrupt_mask"
    }

    fn params(&self) -> &'static [&'static str] {
        &[]
    }

    fn return_type(&self, x: &Field, _params: &[ScalarValue]) -> Result<DataType> {
        check_cell_type(self.name(), x)?;
        Ok(DataType::Boolean)
    }

    fn corrupt(&self, x: &ArrayRef, _x_field: &Field, _params: &[ScalarValue], draws: &Draws) -> Result<ArrayRef> {
        Ok(Arc::new(BooleanArray::new(draws.mask.clone(), x.logical_nulls())))
    }

    fn documentation(&self) -> &Documentation {
        &DOC
    }
}
