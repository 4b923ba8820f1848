//! Literal arguments as they reach `invoke_with_args`.
//!
//! DataFusion passes a literal argument as a [`ColumnarValue::Scalar`], but a caller may
//! broadcast it to an array first: datafusion-ffi (the `datafusion` Python package) passes
//! every argument as an array. Planning has already checked that the argument is a
//! literal, so an array holding one value in every row is that literal.

use arrow::array::{Array, Scalar};
use arrow::compute::kernels::cmp::distinct;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::ColumnarValue;

/// The literal `value` carries: the scalar itself, or the one value of an array whose
/// rows are all equal (NULLs included). `None` for an empty array or differing rows.
#[must_use]
pub fn literal_value(value: &ColumnarValue) -> Option<ScalarValue> {
    match value {
        ColumnarValue::Scalar(scalar) => Some(scalar.clone()),
        ColumnarValue::Array(array) => {
            if array.is_empty() {
                return None;
            }
            let first = Scalar::new(array.slice(0, 1));
            let differs = distinct(array, &first).ok()?;
            if differs.true_count() > 0 {
                return None;
            }
            ScalarValue::try_from_array(array, 0).ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, StringArray};

    use super::*;

    #[test]
    fn an_array_of_one_repeated_value_is_that_literal() {
        let model = ColumnarValue::Array(Arc::new(StringArray::from(vec!["m"; 5])));
        assert_eq!(literal_value(&model), Some(ScalarValue::Utf8(Some("m".into()))));
        let p = ColumnarValue::Scalar(ScalarValue::Float64(Some(0.3)));
        assert_eq!(literal_value(&p), Some(ScalarValue::Float64(Some(0.3))));
        let nulls = ColumnarValue::Array(Arc::new(Float64Array::from(vec![None, None])));
        assert_eq!(literal_value(&nulls), Some(ScalarValue::Float64(None)));
    }

    #[test]
    fn differing_rows_or_no_rows_are_not_a_literal() {
        let column = ColumnarValue::Array(Arc::new(Float64Array::from(vec![Some(0.3), Some(0.4)])));
        assert_eq!(literal_value(&column), None);
        let half_null = ColumnarValue::Array(Arc::new(Float64Array::from(vec![Some(0.3), None])));
        assert_eq!(literal_value(&half_null), None);
        let empty = ColumnarValue::Array(Arc::new(Float64Array::from(Vec::<f64>::new())));
        assert_eq!(literal_value(&empty), None);
    }
}
