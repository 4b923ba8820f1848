//! `corrupt_noise(x, sigma, p, seed, key [, view])`: additive Gaussian noise.
//!
//! With probability p a numeric cell becomes `x + sigma * z`, z ~ N(0, 1) drawn from the
//! cell's own stream; other cells keep their value. The result is Float64. `sigma` is in
//! the column's units; to scale it by the column's standard deviation pass
//! `k * std` computed beforehand (`tabssl export --noise-std k` does this per column).
//! NULL cells stay NULL.

use std::sync::{Arc, LazyLock};

use arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Float64Type};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::Documentation;

use super::common::{Corruption, Draws, documentation, number};

/// The `corrupt_noise` method.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Noise;

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    documentation(
        "Adds Gaussian noise sigma * N(0, 1) to each numeric cell with probability p (p = 1: \
         every cell). Returns Float64; NULL cells stay NULL.",
        "corrupt_noise(x, sigma, p, seed, key [, view])",
        &[("sigma", "Standard deviation of the noise in x's units, a literal >= 0.")],
        "SELECT corrupt_noise(age, 2.0, 1.0, 42, id) AS age_noisy FROM adult;",
    )
});

fn sigma(value: &ScalarValue) -> Result<f64> {
    match number(value) {
        Some(sigma) if sigma.is_finite() && sigma >= 0.0 => Ok(sigma),
        _ => plan_err!("corrupt_noise: sigma must be a finite number >= 0, got {value}"),
    }
}

impl Corruption for Noise {
    fn name(&self) -> &'static str {
        "corrupt_noise"
    }

    fn params(&self) -> &'static [&'static str] {
        &["sigma"]
    }

    fn return_type(&self, x: &Field, params: &[ScalarValue]) -> Result<DataType> {
        sigma(&params[0])?;
        if !x.data_type().is_numeric() {
            return plan_err!(
                "corrupt_noise: column {:?} has type {}; Gaussian noise needs a numeric column \
                 (use corrupt_swap or corrupt_fill for categorical columns)",
                x.name(),
                x.data_type()
            );
        }
        Ok(DataType::Float64)
    }

    fn corrupt(&self, x: &ArrayRef, _x_field: &Field, params: &[ScalarValue], draws: &Draws) -> Result<ArrayRef> {
        let sigma = sigma(&params[0])?;
        let values = cast(x, &DataType::Float64)?;
        let values = values.as_primitive::<Float64Type>();
        let noisy: Vec<f64> = values
            .values()
            .iter()
            .zip(&draws.cells)
            .zip(draws.mask.iter())
            .map(|((&v, cell), masked)| if masked { v + sigma * cell.normal() } else { v })
            .collect();
        Ok(Arc::new(Float64Array::new(noisy.into(), values.nulls().cloned())))
    }

    fn documentation(&self) -> &Documentation {
        &DOC
    }
}
