//! `corrupt_fill(x, fill, p, seed, key [, view])`: constant, zero or NULL masking.
//!
//! Masked cells take the literal `fill` (cast to x's type): 0 for zero masking as in
//! denoising autoencoders and TabNet's obfuscation, NULL for blanking, or any constant such
//! as `'[MASK]'`. NULL cells of x stay NULL. The mask is `corrupt_mask` with the same
//! arguments.

use std::sync::LazyLock;

use arrow::array::{ArrayRef, BooleanArray};
use arrow::compute::nullif;
use arrow::datatypes::{DataType, Field};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::Documentation;

use super::common::{Corruption, Draws, check_cell_type, documentation};

/// The `corrupt_fill` method.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Fill;

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    documentation(
        "Replaces each cell with the constant `fill` with probability p (zero, NULL or \
         constant masking). NULL cells stay NULL.",
        "corrupt_fill(x, fill, p, seed, key [, view])",
        &[(
            "fill",
            "The literal masked cells take, cast to x's type; NULL blanks them.",
        )],
        "SELECT corrupt_fill(\"hours-per-week\", 0, 0.15, 42, id) AS hours_zeroed FROM adult;",
    )
});

impl Fill {
    fn fill_value(x: &Field, fill: &ScalarValue) -> Result<ScalarValue> {
        fill.cast_to(x.data_type()).or_else(|e| {
            plan_err!(
                "corrupt_fill: fill value {fill} ({}) cannot be cast to column {:?} of type {}: {e}",
                fill.data_type(),
                x.name(),
                x.data_type()
            )
        })
    }
}

impl Corruption for Fill {
    fn name(&self) -> &'static str {
        "corrupt_fill"
    }

    fn params(&self) -> &'static [&'static str] {
        &["fill"]
    }

    fn return_type(&self, x: &Field, params: &[ScalarValue]) -> Result<DataType> {
        check_cell_type(self.name(), x)?;
        Self::fill_value(x, &params[0])?;
        Ok(x.data_type().clone())
    }

    fn nullable(&self, x: &Field, params: &[ScalarValue]) -> bool {
        x.is_nullable() || params[0].is_null()
    }

    fn corrupt(&self, x: &ArrayRef, x_field: &Field, params: &[ScalarValue], draws: &Draws) -> Result<ArrayRef> {
        let fill = Self::fill_value(x_field, &params[0])?;
        if fill.is_null() {
            return Ok(nullif(x.as_ref(), &BooleanArray::new(draws.mask.clone(), None))?);
        }
        draws.replace(x, fill.to_array_of_size(1)?.as_ref(), |_, _| 0)
    }

    fn documentation(&self) -> &Documentation {
        &DOC
    }
}
