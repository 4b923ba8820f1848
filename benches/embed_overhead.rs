//! Overhead of the `embed` UDF over calling ONNX Runtime directly, on 8192-row batches of
//! the small MLP fixture (6 numeric inputs, 8 outputs), plus `SELECT embed(...)` end to
//! end over an in-memory table.
//!
//! `direct_ort` is the floor: a prebuilt row-major f32 buffer handed to `Session::run`
//! as a view, output copied out. `embed_udf` starts from the Int64 Arrow columns SQL
//! would hold: casts, packs, runs, and builds the FixedSizeList result.
//!
//!     cargo bench --bench embed_overhead

#![allow(missing_docs)] // criterion_group! generates an undocumented function

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datafusion::config::ConfigOptions;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl};
use datafusion::prelude::SessionConfig;
use ort::value::TensorRef;
use tabssl::infer::udf::{InferenceKind, InferenceUdf};
use tabssl::{InferenceSettings, Provider, TabsslOptions};

const ROWS: usize = 8192;
const FEATURES: [&str; 6] = [
    "age",
    "fnlwgt",
    "education-num",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
];

fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models")
}

/// 8192 synthetic Adult rows: the six numeric columns as Int64 arrays.
fn feature_columns(batch: &RecordBatch) -> Vec<ArrayRef> {
    FEATURES
        .iter()
        .map(|name| Arc::clone(batch.column_by_name(name).expect("synthetic column")))
        .collect()
}

fn settings() -> InferenceSettings {
    InferenceSettings {
        models_dir: models_dir().display().to_string(),
        provider: Provider::Cpu,
        device_id: 0,
        intra_threads: 1,
        max_sessions: 1,
    }
}

fn bench_embed(c: &mut Criterion) {
    let batch = tabssl::synthetic::synthetic_batch(1, 0, ROWS as u64).expect("synthetic batch");
    let columns = feature_columns(&batch);

    // Direct ONNX Runtime on the same rows, same library, same thread count.
    let runtime = tabssl::infer::runtime::runtime(Provider::Cpu).expect("ONNX Runtime");
    let (mut builder, _) = runtime.session_builder(Provider::Cpu, 0, 1).expect("builder");
    let mut session = builder
        .commit_from_file(models_dir().join("mlp_packed.onnx"))
        .expect("session");
    let mut packed = vec![0f32; ROWS * FEATURES.len()];
    for (j, column) in columns.iter().enumerate() {
        let column = arrow::compute::cast(column, &DataType::Float32).expect("cast");
        let values = column
            .as_any()
            .downcast_ref::<arrow::array::Float32Array>()
            .expect("f32");
        for (i, v) in values.values().iter().enumerate() {
            packed[i * FEATURES.len() + j] = *v;
        }
    }

    // The UDF, invoked the way DataFusion's executor does.
    let udf = InferenceUdf::new(InferenceKind::Embed, settings());
    let mut args = vec![ColumnarValue::Scalar("mlp_packed".into())];
    args.extend(columns.iter().map(|c| ColumnarValue::Array(Arc::clone(c))));
    let mut arg_fields = vec![Arc::new(Field::new("model", DataType::Utf8, false))];
    arg_fields.extend(
        FEATURES
            .iter()
            .map(|n| Arc::new(Field::new(*n, DataType::Int64, false))),
    );
    let return_field = Arc::new(Field::new(
        "embed",
        DataType::new_fixed_size_list(DataType::Float32, 8, true),
        true,
    ));
    let config = Arc::new(ConfigOptions::default());

    let mut group = c.benchmark_group("embed_8192_rows");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("direct_ort", |b| {
        b.iter(|| {
            let input = TensorRef::from_array_view(([ROWS, FEATURES.len()], packed.as_slice())).expect("tensor");
            let outputs = session.run(ort::inputs![input]).expect("run");
            let (_, values) = outputs[0].try_extract_tensor::<f32>().expect("f32 output");
            black_box(values.to_vec())
        });
    });
    group.bench_function("embed_udf", |b| {
        b.iter(|| {
            let result = udf
                .invoke_with_args(ScalarFunctionArgs {
                    args: args.clone(),
                    arg_fields: arg_fields.clone(),
                    number_rows: ROWS,
                    return_field: Arc::clone(&return_field),
                    config_options: Arc::clone(&config),
                })
                .expect("embed");
            black_box(result)
        });
    });
    group.finish();
}

fn bench_sql(c: &mut Criterion) {
    const BATCHES: usize = 16;
    let batches: Vec<RecordBatch> = (0..BATCHES as u64)
        .map(|i| tabssl::synthetic::synthetic_batch(1, i * ROWS as u64, (i + 1) * ROWS as u64).expect("batch"))
        .collect();
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    let mut options = TabsslOptions::default();
    options.models_dir = models_dir().display().to_string();
    let ctx = tabssl::new_context_with_config(SessionConfig::new().with_target_partitions(2), options);
    let table = MemTable::try_new(
        batches[0].schema(),
        vec![batches[..BATCHES / 2].to_vec(), batches[BATCHES / 2..].to_vec()],
    )
    .expect("table");
    ctx.register_table("people", Arc::new(table)).expect("register");
    let sql = format!(
        "SELECT embed('mlp_packed', {}) AS e FROM people",
        FEATURES
            .iter()
            .map(|f| format!("\"{f}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut group = c.benchmark_group("sql_end_to_end");
    group.throughput(Throughput::Elements((ROWS * BATCHES) as u64));
    group.sample_size(20);
    group.bench_function("select_embed_131072_rows_2_partitions", |b| {
        b.iter(|| {
            runtime.block_on(async { black_box(ctx.sql(&sql).await.expect("plan").collect().await.expect("run")) })
        });
    });
    group.finish();
}

criterion_group!(benches, bench_embed, bench_sql);
criterion_main!(benches);
