//! Overhead of the `embed` UDF over calling ONNX Runtime directly, on 8192-row batches of
//! the small MLP fixture (6 numeric inputs, 8 outputs), plus `SELECT embed(...)` end to
//! end over an in-memory table.
//!
//! `direct_ort` is the floor: a prebuilt row-major f32 buffer handed to `Session::run`
//! as a view, output copied out. `embed_udf` starts from the Int64 Arrow columns SQL
//! would hold: casts, packs, runs, and builds the FixedSizeList result.
//!
//! After the criterion groups, a paired comparison prints the UDF/direct throughput ratio
//! measured in on-CPU time of this thread (`/proc/thread-self/schedstat`), alternating the
//! two in rounds, so time the shared machine spends running other processes is excluded.
//!
//!     cargo bench --bench embed_overhead

#![allow(missing_docs)] // criterion_group! generates an undocumented function

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field};
use criterion::{Criterion, Throughput, criterion_group};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl};
use datafusion::prelude::SessionConfig;
use ort::value::TensorRef;
use tabssl::infer::{InferenceKind, InferenceUdf};
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
        max_tensor_elements: tabssl::options::DEFAULT_MAX_TENSOR_ELEMENTS,
        max_threads: tabssl::options::DEFAULT_MAX_THREADS,
    }
}

/// The same 8192 rows, ready for both paths: a direct ort session over a prebuilt
/// row-major buffer, and the UDF with the Arrow columns SQL would hand it.
struct Fixture {
    session: ort::session::Session,
    packed: Vec<f32>,
    udf: InferenceUdf,
    args: Vec<ColumnarValue>,
    arg_fields: Vec<Arc<Field>>,
    return_field: Arc<Field>,
    config: Arc<ConfigOptions>,
}

impl Fixture {
    fn new() -> Self {
        let batch = tabssl::synthetic::synthetic_batch(1, 0, ROWS as u64).expect("synthetic batch");
        let columns = feature_columns(&batch);

        // Direct ONNX Runtime on the same rows, same library, same thread count.
        let runtime = tabssl::infer::runtime(Provider::Cpu).expect("ONNX Runtime");
        let (mut builder, _) = runtime.session_builder(Provider::Cpu, 0, 1).expect("builder");
        let session = builder
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
        Self {
            session,
            packed,
            udf,
            args,
            arg_fields,
            return_field,
            config: Arc::new(ConfigOptions::default()),
        }
    }

    fn direct(&mut self) -> Vec<f32> {
        let input = TensorRef::from_array_view(([ROWS, FEATURES.len()], self.packed.as_slice())).expect("tensor");
        let outputs = self.session.run(ort::inputs![input]).expect("run");
        let (_, values) = outputs[0].try_extract_tensor::<f32>().expect("f32 output");
        values.to_vec()
    }

    fn udf(&self) -> ColumnarValue {
        self.udf
            .invoke_with_args(ScalarFunctionArgs {
                args: self.args.clone(),
                arg_fields: self.arg_fields.clone(),
                number_rows: ROWS,
                return_field: Arc::clone(&self.return_field),
                config_options: Arc::clone(&self.config),
            })
            .expect("embed")
    }
}

fn bench_embed(c: &mut Criterion) {
    let mut fixture = Fixture::new();
    let mut group = c.benchmark_group("embed_8192_rows");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("direct_ort", |b| b.iter(|| black_box(fixture.direct())));
    group.bench_function("embed_udf", |b| b.iter(|| black_box(fixture.udf())));
    group.finish();
}

/// The UDF and the direct call give the same numbers for the same rows.
fn same_embeddings_both_ways() {
    let mut fixture = Fixture::new();
    let direct = fixture.direct();
    let ColumnarValue::Array(udf) = fixture.udf() else {
        panic!("embed returned a scalar");
    };
    let udf = udf
        .as_fixed_size_list()
        .values()
        .as_primitive::<arrow::datatypes::Float32Type>()
        .values()
        .to_vec();
    assert_eq!(udf.len(), direct.len());
    for (a, b) in udf.iter().zip(&direct) {
        assert!(
            (a - b).abs() <= 1e-6 * b.abs().max(1.0),
            "embed UDF {a} != direct ort {b}"
        );
    }
}

/// Nanoseconds this thread has spent on a CPU (Linux `schedstat`); `None` elsewhere.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Alternates direct and UDF calls in rounds and prints the UDF/direct throughput ratio in
/// this thread's on-CPU time (ORT runs on the calling thread with one intra-op thread).
/// The kernel may update `schedstat` only at scheduler ticks (4 ms here), so a round must
/// last far longer than a tick: 400 calls of ~0.5 ms keep the quantisation under 2%.
fn paired_cpu_time_ratio(rounds: usize, calls_per_round: usize) {
    let Some(_) = thread_cpu_ns() else {
        eprintln!("paired comparison skipped: /proc/thread-self/schedstat is not readable");
        return;
    };
    let mut fixture = Fixture::new();
    let time = |f: &mut dyn FnMut()| {
        let start = thread_cpu_ns().expect("schedstat");
        for _ in 0..calls_per_round {
            f();
        }
        (thread_cpu_ns().expect("schedstat") - start) as f64 / calls_per_round as f64
    };
    let (mut direct_ns, mut udf_ns, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let direct = time(&mut || {
            black_box(fixture.direct());
        });
        let udf = time(&mut || {
            black_box(fixture.udf());
        });
        direct_ns.push(direct);
        udf_ns.push(udf);
        ratios.push(direct / udf);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (direct, udf) = (median(&mut direct_ns), median(&mut udf_ns));
    let (low, high) = (
        ratios.iter().copied().fold(f64::INFINITY, f64::min),
        ratios.iter().copied().fold(0.0, f64::max),
    );
    eprintln!(
        "paired on-CPU time, {rounds} rounds x {calls_per_round} calls of {ROWS} rows: direct {:.0} us, \
         embed UDF {:.0} us per batch; throughput ratio UDF/direct median {:.3} (rounds {low:.3}..{high:.3})",
        direct / 1e3,
        udf / 1e3,
        median(&mut ratios),
    );
}

fn bench_sql(c: &mut Criterion) {
    const BATCHES: usize = 16;
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    let mut options = TabsslOptions::default();
    options.models_dir = models_dir().display().to_string();
    let ctx = tabssl::new_context_with_config(SessionConfig::new().with_target_partitions(2), options);
    let table = tabssl::synthetic::synthetic_table(1, (ROWS * BATCHES) as u64, 2).expect("table");
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

fn main() {
    // ONNX Runtime found (or fetched) the way the command line finds it.
    tabssl::setup::install();
    benches();
    Criterion::default().configure_from_args().final_summary();
    if std::env::args().any(|a| a == "--bench") {
        paired_cpu_time_ratio(20, 400);
    } else {
        // `cargo test` runs benches once as a smoke test: check that both paths compute
        // the same embeddings instead of timing them.
        same_embeddings_both_ways();
    }
}
