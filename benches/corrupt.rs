//! Corruption kernels on 8192-row batches of the Adult-shaped synthetic table, called the
//! way DataFusion's executor calls them, plus VIME over a 131,072-row table in SQL.
//!
//!     cargo bench --bench corrupt

#![allow(missing_docs)] // criterion_group! generates an undocumented function

use std::hint::black_box;
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datafusion::common::ScalarValue;
use datafusion::config::ConfigOptions;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF};
use datafusion::prelude::SessionConfig;

const ROWS: usize = 8192;

/// Built once: `ConfigOptions::default()` costs more than some kernels.
static CONFIG: std::sync::LazyLock<Arc<ConfigOptions>> =
    std::sync::LazyLock::new(|| Arc::new(ConfigOptions::default()));

fn call(udf: &ScalarUDF, x: &ArrayRef, name: &str, params: &[ScalarValue], keys: &ArrayRef) -> ColumnarValue {
    let mut args = vec![ColumnarValue::Array(Arc::clone(x))];
    args.extend(params.iter().cloned().map(ColumnarValue::Scalar));
    args.push(ColumnarValue::Scalar(ScalarValue::Float64(Some(0.3))));
    args.push(ColumnarValue::Scalar(ScalarValue::Int64(Some(42))));
    args.push(ColumnarValue::Array(Arc::clone(keys)));
    let mut arg_fields = vec![Arc::new(Field::new(name, x.data_type().clone(), true))];
    arg_fields.extend(
        params
            .iter()
            .map(|p| Arc::new(Field::new("param", p.data_type(), true))),
    );
    arg_fields.push(Arc::new(Field::new("p", DataType::Float64, false)));
    arg_fields.push(Arc::new(Field::new("seed", DataType::Int64, false)));
    arg_fields.push(Arc::new(Field::new("id", DataType::Int64, false)));
    let output = match udf.name() {
        "corrupt_mask" => DataType::Boolean,
        "corrupt_noise" => DataType::Float64,
        _ => x.data_type().clone(),
    };
    udf.invoke_with_args(ScalarFunctionArgs {
        args,
        arg_fields,
        number_rows: ROWS,
        return_field: Arc::new(Field::new("out", output, true)),
        config_options: Arc::clone(&CONFIG),
    })
    .expect("corrupt")
}

fn bench_kernels(c: &mut Criterion) {
    let ctx = tabssl::new_context(tabssl::TabsslOptions::default());
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    let dir = tempfile::tempdir().expect("tempdir");
    let marginal = dir.path().join("m.parquet").display().to_string();
    runtime.block_on(async {
        let sql = format!(
            "COPY (SELECT marginal_sample(age, id) AS age, marginal_sample(occupation, id) AS occupation \
             FROM tabssl_synthetic(100000, 3)) TO '{marginal}'"
        );
        ctx.sql(&sql).await.expect("plan").collect().await.expect("marginal");
    });
    let batch = tabssl::synthetic::synthetic_batch(1, 0, ROWS as u64).expect("batch");
    let column = |name: &str| Arc::clone(batch.column_by_name(name).expect("column"));
    let (age, occupation, keys) = (column("age"), column("occupation"), column("id"));
    let udf = |name: &str| ctx.udf(name).expect("registered");
    let (mask, swap, noise, fill) = (
        udf("corrupt_mask"),
        udf("corrupt_swap"),
        udf("corrupt_noise"),
        udf("corrupt_fill"),
    );
    let path = ScalarValue::Utf8(Some(marginal.clone()));

    let mut group = c.benchmark_group("corrupt_8192_rows");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("mask_int64", |b| {
        b.iter(|| black_box(call(&mask, &age, "age", &[], &keys)))
    });
    group.bench_function("swap_int64", |b| {
        b.iter(|| black_box(call(&swap, &age, "age", std::slice::from_ref(&path), &keys)))
    });
    group.bench_function("swap_string", |b| {
        b.iter(|| {
            black_box(call(
                &swap,
                &occupation,
                "occupation",
                std::slice::from_ref(&path),
                &keys,
            ))
        })
    });
    group.bench_function("noise_int64", |b| {
        b.iter(|| black_box(call(&noise, &age, "age", &[ScalarValue::Float64(Some(2.0))], &keys)))
    });
    group.bench_function("fill_string_null", |b| {
        b.iter(|| {
            black_box(call(
                &fill,
                &occupation,
                "occupation",
                &[ScalarValue::Utf8(None)],
                &keys,
            ))
        })
    });
    group.finish();
}

fn bench_sql(c: &mut Criterion) {
    const BATCHES: u64 = 16;
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    let ctx = tabssl::new_context_with_config(
        SessionConfig::new().with_target_partitions(2),
        tabssl::TabsslOptions::default(),
    );
    let table = tabssl::synthetic::synthetic_table(1, ROWS as u64 * BATCHES, 2).expect("table");
    ctx.register_table("people", Arc::new(table)).expect("register");
    let dir = tempfile::tempdir().expect("tempdir");
    let marginal = dir.path().join("m.parquet").display().to_string();
    let columns = ["age", "fnlwgt", "workclass", "education", "occupation", "sex"];
    let samples: Vec<String> = columns
        .iter()
        .map(|c| format!("marginal_sample({c}, id) AS {c}"))
        .collect();
    runtime.block_on(async {
        let sql = format!("COPY (SELECT {} FROM people) TO '{marginal}'", samples.join(", "));
        ctx.sql(&sql).await.expect("plan").collect().await.expect("marginal");
    });
    let corrupted: Vec<String> = columns
        .iter()
        .map(|c| {
            format!("corrupt_swap({c}, '{marginal}', 0.3, 42, id) AS {c}_t, corrupt_mask({c}, 0.3, 42, id) AS {c}_m")
        })
        .collect();
    let sql = format!("SELECT {} FROM people", corrupted.join(", "));
    let mut group = c.benchmark_group("sql_vime");
    group.throughput(Throughput::Elements(ROWS as u64 * BATCHES));
    group.sample_size(20);
    group.bench_function("six_columns_131072_rows_2_partitions", |b| {
        b.iter(|| {
            runtime.block_on(async { black_box(ctx.sql(&sql).await.expect("plan").collect().await.expect("run")) })
        })
    });
    group.finish();
}

criterion_group!(benches, bench_kernels, bench_sql);
criterion_main!(benches);
