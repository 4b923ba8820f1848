//! Loads an evaluation split through SQL: labels, raw feature columns and the embeddings
//! of registry models, all from one query so their rows line up.

use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float32Type};
use datafusion::prelude::SessionContext;

use super::matrix::Matrix;
use super::protocol::{Kind, Representation};
use tabssl_functions::Error;
use tabssl_functions::sql_text::{ident, string_literal};
use tabssl_infer::Manifest;
use tabssl_train::table::Column;
use tabssl_train::{FeatureTable, Preprocessor, VocabularyLimits};

/// One split: labels, raw features, and one embedding matrix per model.
#[derive(Debug, Clone)]
pub struct Split {
    /// Binary labels (`true` = positive class).
    pub labels: Vec<bool>,
    /// Raw feature columns.
    pub features: FeatureTable,
    /// `(model name, [rows, D] embeddings)`.
    pub embeddings: Vec<(String, Matrix)>,
}

/// The SQL input columns of a registry model, from its manifest.
///
/// # Errors
/// When the model has no manifest or the manifest lists no inputs.
pub fn model_inputs(models_dir: &Path, model: &str) -> tabssl_functions::Result<Vec<String>> {
    let path = models_dir.join(format!("{model}.json"));
    let manifest = Manifest::read(&path, model)?;
    let inputs = manifest
        .inputs
        .ok_or_else(|| Error::Invalid(format!("the manifest of model '{model}' lists no inputs")))?;
    Ok(inputs.into_iter().map(|i| i.name).collect())
}

/// Loads `table`: the label (`label` equal to `positive` after trimming spaces and a
/// trailing '.', as in Adult's test file), `features`, and `embed` of each model.
///
/// # Errors
/// SQL errors, NULL labels, or NULL embeddings.
pub async fn load_split(
    ctx: &SessionContext,
    table: &str,
    label: &str,
    positive: &str,
    features: &[String],
    models: &[(String, Vec<String>)],
) -> tabssl_functions::Result<Split> {
    let positive = string_literal(positive.trim().trim_end_matches('.'));
    let mut select = vec![format!(
        "rtrim(trim(CAST({} AS VARCHAR)), '.') = {positive} AS __label",
        ident(label)
    )];
    select.extend(features.iter().map(|f| ident(f)));
    for (i, (model, inputs)) in models.iter().enumerate() {
        let args: Vec<String> = inputs.iter().map(|c| ident(c)).collect();
        select.push(format!(
            "embed({}, {}) AS __embedding_{i}",
            string_literal(model),
            args.join(", ")
        ));
    }
    let sql = format!("SELECT {} FROM {}", select.join(", "), ident(table));
    let sql_error = |e: datafusion::error::DataFusionError| Error::Invalid(format!("{sql}: {e}"));
    let df = ctx.sql(&sql).await.map_err(sql_error)?;
    let schema = df.schema().as_arrow().clone();
    let batches: Vec<RecordBatch> = df.collect().await.map_err(sql_error)?;
    let mut labels = Vec::new();
    for batch in &batches {
        let column = batch.column(0).as_boolean();
        if column.null_count() > 0 {
            return Err(Error::Invalid(format!(
                "{} rows of {table} have a NULL label '{label}'; every evaluated row needs one",
                column.null_count()
            )));
        }
        labels.extend(column.values().iter());
    }
    let features = FeatureTable::from_batches(&schema, &batches, Some(features), &[])?;
    let mut embeddings = Vec::new();
    for (i, (model, _)) in models.iter().enumerate() {
        let index = 1 + features.names.len() + i;
        embeddings.push((model.clone(), embedding_matrix(&batches, index, model)?));
    }
    Ok(Split {
        labels,
        features,
        embeddings,
    })
}

fn embedding_matrix(batches: &[RecordBatch], index: usize, model: &str) -> tabssl_functions::Result<Matrix> {
    let mut data = Vec::new();
    let mut rows = 0;
    let mut width = 0;
    for batch in batches {
        let column = batch.column(index);
        let DataType::FixedSizeList(_, w) = column.data_type() else {
            return Err(Error::Invalid(format!(
                "embed('{model}') did not return a fixed-size list"
            )));
        };
        width = usize::try_from(*w).unwrap_or_default();
        if column.null_count() > 0 {
            return Err(Error::Invalid(format!(
                "embed('{model}') is NULL for {} rows (a NULL input under the model's NULL policy); \
                 filter those rows or use a model that encodes missing values",
                column.null_count()
            )));
        }
        let list = column.as_fixed_size_list();
        let start = list.value_offset(0) as usize;
        let values = list.values().as_primitive::<Float32Type>().values();
        data.extend_from_slice(&values[start..start + list.len() * width]);
        rows += list.len();
    }
    Ok(Matrix::new(data, rows, width))
}

/// The representations compared: `raw` (the tabssl preprocessing fitted on the training
/// split), each model's embedding, and `raw + model` for each model; all standardised with
/// training-split moments. The tree view of `raw` is [`tree_view`].
///
/// # Errors
/// When the raw features cannot be encoded.
pub fn representations(train: &Split, test: &Split) -> tabssl_functions::Result<Vec<Representation>> {
    let preprocessor = Preprocessor::fit(&train.features, VocabularyLimits::default())?;
    let encode = |table: &FeatureTable| -> tabssl_functions::Result<Matrix> {
        let encoded = preprocessor.encode(table)?;
        Ok(Matrix::new(encoded.inputs, encoded.rows, preprocessor.input_width()))
    };
    let raw = Representation::standardized(
        "raw".into(),
        Kind::Raw,
        encode(&train.features)?,
        encode(&test.features)?,
    )
    .with_tree_view(
        tree_view(&train.features, &train.features)?,
        tree_view(&train.features, &test.features)?,
        categorical_columns(&train.features),
    );
    let mut out = vec![raw.clone()];
    let mut combined = Vec::new();
    for ((name, train_embedding), (_, test_embedding)) in train.embeddings.iter().zip(&test.embeddings) {
        let embedding = Representation::standardized(
            name.clone(),
            Kind::Embedding,
            train_embedding.clone(),
            test_embedding.clone(),
        );
        combined.push(raw.concat(&embedding));
        out.push(embedding);
    }
    out.extend(combined);
    Ok(out)
}

/// The columns of `table` that hold categories.
#[must_use]
pub fn categorical_columns(table: &FeatureTable) -> Vec<usize> {
    (0..table.columns.len())
        .filter(|&col| matches!(table.columns[col], Column::Categorical { .. }))
        .collect()
}

/// Raw features as trees read them: numbers as they are, each category as its rank in
/// the sorted categories of the training split, NaN for a missing value or a category
/// the training split does not hold. `table` has `train`'s columns.
///
/// # Errors
/// When `table`'s columns differ from `train`'s.
#[allow(clippy::cast_possible_truncation)]
pub fn tree_view(train: &FeatureTable, table: &FeatureTable) -> tabssl_functions::Result<Matrix> {
    if train.names != table.names {
        return Err(Error::Invalid(format!(
            "the splits have different feature columns: {:?} and {:?}",
            train.names, table.names
        )));
    }
    let cols = table.columns.len();
    let mut data = vec![f32::NAN; table.rows * cols];
    for (col, (reference, column)) in train.columns.iter().zip(&table.columns).enumerate() {
        match (reference, column) {
            (Column::Numeric(_), Column::Numeric(values)) => {
                for (row, value) in values.iter().enumerate() {
                    if let Some(v) = value {
                        data[row * cols + col] = *v as f32;
                    }
                }
            }
            (Column::Categorical { values: vocabulary, .. }, Column::Categorical { values, codes }) => {
                let mut sorted: Vec<&str> = vocabulary.iter().map(String::as_str).collect();
                sorted.sort_unstable();
                // Code in `table` -> rank among the training categories.
                #[allow(clippy::cast_precision_loss)]
                let rank: Vec<f32> = values
                    .iter()
                    .map(|v| sorted.binary_search(&v.as_str()).map_or(f32::NAN, |r| r as f32))
                    .collect();
                for (row, code) in codes.iter().enumerate() {
                    if let Some(code) = code {
                        data[row * cols + col] = rank[*code as usize];
                    }
                }
            }
            _ => {
                return Err(Error::Invalid(format!(
                    "feature '{}' is numeric in one split and categorical in the other",
                    table.names[col]
                )));
            }
        }
    }
    Ok(Matrix::new(data, table.rows, cols))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(age: &[Option<f64>], city: &[Option<&str>]) -> FeatureTable {
        let mut values: Vec<String> = Vec::new();
        let codes = city
            .iter()
            .map(|c| {
                c.map(|c| {
                    let at = values.iter().position(|v| v == c).unwrap_or_else(|| {
                        values.push(c.to_string());
                        values.len() - 1
                    });
                    u32::try_from(at).expect("few values")
                })
            })
            .collect();
        FeatureTable {
            names: vec!["age".into(), "city".into()],
            columns: vec![Column::Numeric(age.to_vec()), Column::Categorical { values, codes }],
            rows: age.len(),
        }
    }

    #[test]
    fn tree_view_codes_categories_by_their_training_rank() {
        let train = table(&[Some(30.0), None, Some(50.0)], &[Some("Oslo"), Some("Bergen"), None]);
        let test = table(&[Some(1.5), Some(2.0)], &[Some("Tromsø"), Some("Oslo")]);
        let view = tree_view(&train, &test).expect("same columns");
        assert_eq!((view.rows, view.cols), (2, 2));
        assert_eq!(view.data[0], 1.5);
        assert!(view.data[1].is_nan(), "a category the training split lacks is missing");
        assert_eq!(&view.data[2..], &[2.0, 1.0], "Oslo ranks after Bergen");
        let view = tree_view(&train, &train).expect("same columns");
        assert!(view.data[2].is_nan() && view.data[5].is_nan(), "NULLs are missing");
        assert_eq!(view.data[3], 0.0, "Bergen ranks first");
    }
}
