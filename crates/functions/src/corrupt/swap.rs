//! `corrupt_swap(x, marginal, p, seed, key [, view])`: marginal replacement (VIME's pretext
//! generator, SCARF's corruption, swap noise of denoising autoencoders).
//!
//! With probability p a cell takes a value drawn uniformly from the column's donors in the
//! marginal file (see [`super::marginal`]): a draw from the column's empirical
//! distribution over the whole data set, not the batch. The donor index comes from the
//! cell's own stream, so the output depends only on (seed, key, column, view, p) and the
//! marginal file. A swap can draw a value equal to the original; VIME's label
//! `m = (x != x_tilde)` is then 0 while `corrupt_mask` is true. NULL cells stay NULL and
//! are never donors.

use std::sync::LazyLock;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Documentation;

use super::common::{Corruption, Draws, check_cell_type, documentation};
use super::marginal::{load_marginal, planned_marginal};
use crate::file_access::FileAccess;
use crate::rng::STREAM_DONOR;

/// The `corrupt_swap` method, reading marginal files that `access` allows.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct Swap {
    /// Which marginal files may be read.
    pub access: FileAccess,
}

impl Swap {
    /// The marginal file a call names, resolved and checked against the file access.
    fn marginal_path(&self, value: &ScalarValue) -> Result<String> {
        let path = marginal_path(value)?;
        let resolved = self
            .access
            .resolve(path)
            .map_err(|e| DataFusionError::Plan(format!("corrupt_swap: marginal {e}")))?;
        Ok(resolved.to_string_lossy().into_owned())
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    documentation(
        "Replaces each cell with probability p by a value drawn from the column's marginal \
         (a marginal_sample file). NULL cells stay NULL; NULLs are never donors.",
        "corrupt_swap(x, marginal, p, seed, key [, view])",
        &[(
            "marginal",
            "Path of a Parquet file written by COPY (SELECT marginal_sample(x, key) AS x, ...) TO '...'; \
             the column of the same name as x holds the donors.",
        )],
        "SELECT corrupt_swap(age, 'adult.marginals.parquet', 0.3, 42, id) AS age_tilde FROM adult;",
    )
});

fn marginal_path(value: &ScalarValue) -> Result<&str> {
    match value {
        ScalarValue::Utf8(Some(path)) | ScalarValue::LargeUtf8(Some(path)) | ScalarValue::Utf8View(Some(path)) => {
            Ok(path)
        }
        other => {
            plan_err!("corrupt_swap: marginal must be the path of a marginal file as a string literal, got {other}")
        }
    }
}

impl Corruption for Swap {
    fn name(&self) -> &'static str {
        "corrupt_swap"
    }

    fn params(&self) -> &'static [&'static str] {
        &["marginal"]
    }

    fn return_type(&self, x: &Field, params: &[ScalarValue]) -> Result<DataType> {
        check_cell_type(self.name(), x)?;
        load_marginal(&self.marginal_path(&params[0])?)?.donors(x.name(), x.data_type())?;
        Ok(x.data_type().clone())
    }

    fn corrupt(&self, x: &ArrayRef, x_field: &Field, params: &[ScalarValue], draws: &Draws) -> Result<ArrayRef> {
        if draws.corrupted() == 0 {
            return Ok(x.clone());
        }
        let path = self.marginal_path(&params[0])?;
        let donors = planned_marginal(&path)?.donors(x_field.name(), x.data_type())?;
        let n = donors.len();
        if n == 0 {
            return exec_err!(
                "corrupt_swap: column {:?} has no donor values in marginal file {path} (all NULL?), \
                 so a masked cell cannot be replaced",
                x_field.name()
            );
        }
        draws.replace(x, donors.as_ref(), |_, cell| cell.index(STREAM_DONOR, n))
    }

    fn documentation(&self) -> &Documentation {
        &DOC
    }
}
