//! The training table: the feature columns of a query result, held in memory column by
//! column (numbers as `f64`, categories as codes into each column's distinct values).

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Schema};

use crate::Error;

/// One feature column.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// A numeric column; NULL and NaN are `None`.
    Numeric(Vec<Option<f64>>),
    /// A categorical (string) column.
    Categorical {
        /// Distinct values in order of first appearance.
        values: Vec<String>,
        /// Per row: index into `values`, `None` for NULL.
        codes: Vec<Option<u32>>,
    },
}

/// Feature columns by name, all of the same length.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureTable {
    /// Column names, in the order the encoder's inputs take them.
    pub names: Vec<String>,
    /// Column data, parallel to `names`.
    pub columns: Vec<Column>,
    /// Number of rows.
    pub rows: usize,
}

/// Whether a column of this type can be a feature (numeric or string).
#[must_use]
pub fn is_feature_type(data_type: &DataType) -> bool {
    is_numeric(data_type) || is_categorical(data_type)
}

/// Whether a column of this type is a numeric feature.
fn is_numeric(data_type: &DataType) -> bool {
    data_type.is_integer()
        || data_type.is_floating()
        || matches!(data_type, DataType::Decimal128(..) | DataType::Decimal256(..))
}

/// Whether a column of this type is a categorical (string) feature.
fn is_categorical(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, value) => is_categorical(value),
        _ => false,
    }
}

impl FeatureTable {
    /// Collects the feature columns of `batches`: `columns` when given, otherwise every
    /// numeric and string column not listed in `exclude`.
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] for an unknown or unsupported column, or no features.
    pub fn from_batches(
        schema: &Schema,
        batches: &[RecordBatch],
        columns: Option<&[String]>,
        exclude: &[String],
    ) -> crate::Result<Self> {
        for name in exclude.iter().chain(columns.unwrap_or_default()) {
            if schema.field_with_name(name).is_err() {
                let have: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                return Err(Error::Invalid(format!(
                    "no column '{name}' in the input; it has: {}",
                    have.join(", ")
                )));
            }
        }
        // Without --columns every column not excluded is a feature: one that cannot be is
        // refused below, never dropped in silence.
        let selected: Vec<String> = match columns {
            Some(columns) => columns.iter().filter(|c| !exclude.contains(c)).cloned().collect(),
            None => schema
                .fields()
                .iter()
                .filter(|f| !exclude.contains(f.name()))
                .map(|f| f.name().clone())
                .collect(),
        };
        if selected.is_empty() {
            return Err(Error::Invalid(
                "no feature columns: the input needs numeric or string columns besides the excluded ones".into(),
            ));
        }
        let rows = batches.iter().map(RecordBatch::num_rows).sum();
        let mut out = Vec::with_capacity(selected.len());
        for name in &selected {
            let (index, field) = schema
                .column_with_name(name)
                .ok_or_else(|| Error::Invalid(format!("no column '{name}'")))?;
            let data_type = field.data_type();
            let column = if is_numeric(data_type) {
                numeric_column(batches, index)?
            } else if is_categorical(data_type) {
                categorical_column(batches, index)?
            } else if data_type == &DataType::Null {
                return Err(Error::Invalid(format!(
                    "column '{name}' is NULL in every row; nothing can be learned from it (exclude it from the \
                     feature columns)"
                )));
            } else {
                return Err(Error::Invalid(format!(
                    "column '{name}' has type {data_type}; features must be numeric or strings: cast it in \
                     the input query (e.g. CAST(\"{name}\" AS VARCHAR)) or exclude it from the feature columns"
                )));
            };
            out.push(column);
        }
        Ok(Self {
            names: selected,
            columns: out,
            rows,
        })
    }

    /// The rows at `indices`, in that order.
    #[must_use]
    pub fn select(&self, indices: &[usize]) -> Self {
        let columns = self
            .columns
            .iter()
            .map(|column| match column {
                Column::Numeric(values) => Column::Numeric(indices.iter().map(|&i| values[i]).collect()),
                Column::Categorical { values, codes } => Column::Categorical {
                    values: values.clone(),
                    codes: indices.iter().map(|&i| codes[i]).collect(),
                },
            })
            .collect();
        Self {
            names: self.names.clone(),
            columns,
            rows: indices.len(),
        }
    }
}

fn numeric_column(batches: &[RecordBatch], index: usize) -> crate::Result<Column> {
    let mut values = Vec::new();
    for batch in batches {
        let array = cast(batch.column(index), &DataType::Float64)?;
        let array = array.as_primitive::<Float64Type>();
        values.extend(array.iter().map(|v| v.filter(|x| !x.is_nan())));
    }
    Ok(Column::Numeric(values))
}

fn categorical_column(batches: &[RecordBatch], index: usize) -> crate::Result<Column> {
    let mut values: Vec<String> = Vec::new();
    let mut lookup: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    let mut codes = Vec::new();
    for batch in batches {
        let array = cast(batch.column(index), &DataType::Utf8)?;
        let array = array.as_string::<i32>();
        for i in 0..array.len() {
            if array.is_null(i) {
                codes.push(None);
                continue;
            }
            let value = array.value(i);
            let code = match lookup.get(value) {
                Some(&code) => code,
                None => {
                    let code = u32::try_from(values.len())
                        .map_err(|_| Error::Invalid("more than 2^32 distinct categories".into()))?;
                    lookup.insert(value.to_string(), code);
                    values.push(value.to_string());
                    code
                }
            };
            codes.push(Some(code));
        }
    }
    Ok(Column::Categorical { values, codes })
}
