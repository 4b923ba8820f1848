//! `corrupt_swap_batch(x, p, seed, key [, view])`: marginal replacement with donors from
//! the same record batch — the cheap variant.
//!
//! A masked cell takes the value of x in another row of the same batch, chosen uniformly
//! among the batch's non-NULL cells. This needs no first pass, but the donor pool is the
//! batch, so the output depends on how rows fall into batches: it is reproducible only
//! for the same input, batch size and partitioning. Use `corrupt_swap` with a marginal
//! file for output that depends on (seed, key, column) alone, as VIME prescribes.

use std::sync::LazyLock;

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::{DataType, Field};
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use datafusion::logical_expr::Documentation;

use super::common::{Corruption, Draws, check_cell_type, documentation};
use crate::rng::STREAM_DONOR;

/// The `corrupt_swap_batch` method.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SwapBatch;

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    documentation(
        "Replaces each cell with probability p by x from a random row of the same batch \
         (batch-local swap noise). Depends on the batch layout; corrupt_swap does not.",
        "corrupt_swap_batch(x, p, seed, key [, view])",
        &[],
        "SELECT corrupt_swap_batch(workclass, 0.15, 42, id) AS workclass_swapped FROM adult;",
    )
});

impl Corruption for SwapBatch {
    fn name(&self) -> &'static str {
        "corrupt_swap_batch"
    }

    fn params(&self) -> &'static [&'static str] {
        &[]
    }

    fn return_type(&self, x: &Field, _params: &[ScalarValue]) -> Result<DataType> {
        check_cell_type(self.name(), x)?;
        Ok(x.data_type().clone())
    }

    fn corrupt(&self, x: &ArrayRef, x_field: &Field, _params: &[ScalarValue], draws: &Draws) -> Result<ArrayRef> {
        if draws.corrupted() == 0 {
            return Ok(x.clone());
        }
        let donors: Vec<usize> = (0..x.len()).filter(|&i| x.is_valid(i)).collect();
        if donors.is_empty() {
            return exec_err!(
                "corrupt_swap_batch: column {:?} has no non-NULL value in the batch",
                x_field.name()
            );
        }
        draws.replace(x, x.as_ref(), |_, cell| donors[cell.index(STREAM_DONOR, donors.len())])
    }

    fn documentation(&self) -> &Documentation {
        &DOC
    }
}
