//! Shared helpers: contexts over the fixture registry, the Adult table, reference outputs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float32Type, Int64Type};
use datafusion::prelude::{SessionConfig, SessionContext};
use tabssl::TabsslOptions;

/// Tolerance for comparing against Python onnxruntime outputs.
pub const TOLERANCE: f32 = 1e-5;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture_models() -> PathBuf {
    repo().join("tests/fixtures/models")
}

/// The Adult training CSV, gzip-compressed, committed in data/adult.
pub fn adult_csv() -> PathBuf {
    repo().join("data/adult/adult.data.csv.gz")
}

/// The uncompressed bytes of the Adult training CSV (for stdin and byte-level tests).
pub fn adult_csv_bytes() -> Vec<u8> {
    let file = std::fs::File::open(adult_csv()).expect("data/adult/adult.data.csv.gz");
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(file), &mut bytes).expect("gunzips");
    bytes
}

/// `CREATE EXTERNAL TABLE <table>` over the Adult training CSV (`?` read as NULL).
pub fn adult_table_sql(table: &str) -> String {
    format!(
        "CREATE EXTERNAL TABLE {table} STORED AS CSV LOCATION '{}' \
         OPTIONS ('format.compression' 'gzip', 'format.has_header' 'true', 'format.null_regex' '\\?')",
        adult_csv().display()
    )
}

/// A context over `models` with tabssl registered.
pub fn context_with(models: &Path, config: SessionConfig) -> SessionContext {
    let mut options = TabsslOptions::default();
    options.models_dir = models.display().to_string();
    tabssl::setup::install();
    tabssl::new_context_with_config(config, options)
}

/// A context with tabssl registered and the default options, the way a program that
/// installed tabssl's ONNX Runtime locator gets it.
pub fn new_context() -> SessionContext {
    tabssl::setup::install();
    tabssl::new_context(TabsslOptions::default())
}

pub fn context(models: &Path) -> SessionContext {
    context_with(models, SessionConfig::new())
}

/// Registers the Adult training split as table `adult` (`?` read as NULL).
pub async fn register_adult(ctx: &SessionContext) {
    run(ctx, &adult_table_sql("adult")).await;
}

/// Runs SQL and collects the result, panicking with the error text on failure.
pub async fn run(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    match ctx.sql(sql).await {
        Ok(df) => df.collect().await.unwrap_or_else(|e| panic!("{sql}\nfailed: {e}")),
        Err(e) => panic!("{sql}\nfailed to plan: {e}"),
    }
}

/// Runs SQL expected to fail and returns the error text (plan or execution).
pub async fn error_of(ctx: &SessionContext, sql: &str) -> String {
    match ctx.sql(sql).await {
        Err(e) => e.to_string(),
        Ok(df) => match df.collect().await {
            Err(e) => e.to_string(),
            Ok(_) => panic!("expected an error from {sql}"),
        },
    }
}

/// A row key as the fixture script writes it: raw CSV text, NULL as None.
pub type Key = Vec<Option<String>>;

/// Reference outputs of `model` computed by Python onnxruntime: key -> output.
pub fn reference(model: &str) -> HashMap<Key, Option<Vec<f32>>> {
    let path = repo().join(format!("tests/fixtures/reference/{model}.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("reference line is JSON");
            let key = value["key"]
                .as_array()
                .expect("key array")
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect();
            let output = value["output"]
                .as_array()
                .map(|values| values.iter().map(|v| v.as_f64().expect("number") as f32).collect());
            (key, output)
        })
        .collect()
}

/// Text of cell `row` of an Int64 / Utf8 column, as the CSV holds it.
pub fn cell_text(column: &dyn Array, row: usize) -> Option<String> {
    if column.is_null(row) {
        return None;
    }
    Some(match column.data_type() {
        DataType::Int64 => column.as_primitive::<Int64Type>().value(row).to_string(),
        DataType::Utf8 => column.as_string::<i32>().value(row).to_string(),
        DataType::Utf8View => column.as_string_view().value(row).to_string(),
        other => panic!("unexpected key column type {other}"),
    })
}

/// The values of one row of an embedding (FixedSizeList<Float32>) or prediction column.
pub fn output_row(column: &dyn Array, row: usize) -> Option<Vec<f32>> {
    if column.is_null(row) {
        return None;
    }
    Some(match column.data_type() {
        DataType::FixedSizeList(_, _) => column
            .as_fixed_size_list()
            .value(row)
            .as_primitive::<Float32Type>()
            .values()
            .to_vec(),
        DataType::Float32 => vec![column.as_primitive::<Float32Type>().value(row)],
        other => panic!("unexpected output type {other}"),
    })
}

/// Every row of a result as (key of the first `key_columns` columns, output of column
/// `output`), in result order.
pub fn rows(batches: &[RecordBatch], key_columns: usize, output: usize) -> Vec<(Key, Option<Vec<f32>>)> {
    let mut out = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let key = (0..key_columns)
                .map(|c| cell_text(batch.column(c).as_ref(), row))
                .collect();
            out.push((key, output_row(batch.column(output).as_ref(), row)));
        }
    }
    out
}

pub fn assert_close(actual: &[f32], expected: &[f32], context: &str) {
    assert_eq!(actual.len(), expected.len(), "{context}: width");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let scale = e.abs().max(1.0);
        assert!(
            (a - e).abs() <= TOLERANCE * scale,
            "{context}: element {i} is {a}, expected {e}"
        );
    }
}
