//! The plain-function API for Python users who do not write SQL: `embed`/`predict` over
//! Arrow data, `export`, `pretrain` and `models`. Each runs tabssl's library in its own
//! DataFusion session with the GIL released.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatchReader;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::prelude::{SessionConfig, SessionContext};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use tabssl::corrupt::marginal::DEFAULT_CAPACITY;
use tabssl::export::{ExportCompression, ExportFormat, ExportOptions, Outputs, marginal_path};
use tabssl::infer::load_model;
use tabssl::train::{PretrainConfig, PretrainJob, VocabularyLimits, run_pretrain};
use tabssl::{InferenceSettings, Method, TabsslOptions};

use crate::arrow_stream::{ArrowStream, import, memory_table, one_shot_table};
use crate::errors::{IntoPyResult, to_py};
use crate::functions::RUNTIME;
use crate::options::build_options;

/// A one-partition session (rows keep their order) with `options`.
fn session(options: TabsslOptions) -> SessionContext {
    tabssl::new_context_with_config(SessionConfig::new().with_target_partitions(1), options)
}

/// Registers `source` as table `input`: a path or `synthetic:ROWS[:SEED]` (str or
/// `os.PathLike`), or Arrow data, held in memory (the jobs read their input more than once;
/// the batches are the producer's buffers).
fn register_source(
    py: Python<'_>,
    ctx: &SessionContext,
    source: &Bound<'_, PyAny>,
    null_regex: Option<&str>,
) -> PyResult<()> {
    if let Ok(path) = source.extract::<PathBuf>() {
        let input = path.to_string_lossy().into_owned();
        return py
            .detach(|| {
                RUNTIME
                    .block_on(tabssl::io::register_input(ctx, "input", &input, null_regex))
                    .map_err(Box::new)
            })
            .map(|_| ())
            .py_err();
    }
    if !source.hasattr("__arrow_c_stream__")? {
        let kind = source.get_type().name()?;
        return Err(PyTypeError::new_err(format!(
            "source must be a path, 'synthetic:ROWS[:SEED]', or Arrow data (a pyarrow Table or \
             RecordBatchReader, a pandas or Polars DataFrame), got {kind}"
        )));
    }
    let reader = import(source)?;
    let table = py.detach(|| memory_table(reader)).py_err()?;
    ctx.register_table("input", table).py_err()?;
    Ok(())
}

/// `name` as a SQL identifier.
fn identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `text` as a SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Runs `sql` and returns its result for Python.
fn run_query(py: Python<'_>, ctx: &SessionContext, sql: &str) -> PyResult<ArrowStream> {
    let (schema, batches): (SchemaRef, _) = py
        .detach(|| {
            RUNTIME.block_on(async {
                let df = ctx.sql(sql).await?;
                let schema = Arc::new(df.schema().as_arrow().clone());
                Ok::<_, datafusion::error::DataFusionError>((schema, df.collect().await?))
            })
        })
        .py_err()?;
    Ok(ArrowStream::new(schema, batches))
}

/// Adds a model's output to every row of `data`: the input columns (not copied) plus
/// `output`. `function` is `embed` or `predict`.
#[pyfunction]
#[pyo3(signature = (data, model, columns=None, *, function="embed", output="embedding", models_dir=None, provider="cpu", device_id=0, intra_threads=0))]
#[allow(clippy::too_many_arguments)]
pub fn embed(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    model: &str,
    columns: Option<Vec<String>>,
    function: &str,
    output: &str,
    models_dir: Option<String>,
    provider: &str,
    device_id: usize,
    intra_threads: usize,
) -> PyResult<ArrowStream> {
    if function != "embed" && function != "predict" {
        return Err(to_py(tabssl::Error::invalid(format!(
            "function must be 'embed' or 'predict', got {function:?}"
        ))));
    }
    let options = build_options(models_dir, provider, device_id, intra_threads, 1)?;
    let settings = InferenceSettings::from_config(
        SessionConfig::new()
            .with_option_extension(options.clone())
            .with_target_partitions(1)
            .options(),
    );
    let ctx = session(options);
    let reader = import(data)?;
    if reader.schema().field_with_name(output).is_ok() {
        return Err(to_py(tabssl::Error::invalid(format!(
            "the input already has a column named {output:?}: pass another output=..."
        ))));
    }
    let columns = match columns {
        Some(columns) => columns,
        None => py
            .detach(|| {
                let loaded = load_model(&settings, model).map_err(Box::new)?;
                loaded.argument_columns().map_err(Box::new)
            })
            .py_err()?,
    };
    ctx.register_table("input", one_shot_table(reader).py_err()?).py_err()?;
    let mut arguments = vec![literal(model)];
    arguments.extend(columns.iter().map(|c| identifier(c)));
    let sql = format!(
        "SELECT *, {function}({}) AS {} FROM input",
        arguments.join(", "),
        identifier(output)
    );
    run_query(py, &ctx, &sql)
}

/// Writes a corrupted pretraining set (and the marginal sample beside it); returns the
/// export's summary.
#[pyfunction]
#[pyo3(signature = (source, output, method="vime", *, p=None, seed=0, views=1, columns=None, key=None, keep=None, batch_local=false, capacity=DEFAULT_CAPACITY, noise_std=0.1, fill=None, outputs="tilde,mask,changed", format="parquet", compression=None, null_regex=None, batch_size=None, models_dir=None))]
#[allow(clippy::too_many_arguments)]
pub fn export<'py>(
    py: Python<'py>,
    source: &Bound<'py, PyAny>,
    output: PathBuf,
    method: &str,
    p: Option<f64>,
    seed: u64,
    views: u32,
    columns: Option<Vec<String>>,
    key: Option<String>,
    keep: Option<Vec<String>>,
    batch_local: bool,
    capacity: usize,
    noise_std: f64,
    fill: Option<String>,
    outputs: &str,
    format: &str,
    compression: Option<&str>,
    null_regex: Option<String>,
    batch_size: Option<usize>,
    models_dir: Option<String>,
) -> PyResult<Bound<'py, PyDict>> {
    let options = ExportOptions {
        method: method.parse::<Method>().py_err()?,
        p,
        seed,
        views,
        columns: columns.unwrap_or_default(),
        key,
        keep: keep.unwrap_or_default(),
        batch_local,
        capacity,
        noise_std,
        fill,
        outputs: outputs.parse::<Outputs>().py_err()?,
        format: format.parse::<ExportFormat>().py_err()?,
        compression: compression.map(str::parse::<ExportCompression>).transpose().py_err()?,
    };
    options.check().py_err()?;
    let settings = build_options(models_dir, "cpu", 0, 0, 0)?;
    let mut config = SessionConfig::new().with_target_partitions(1);
    if let Some(rows) = batch_size {
        config = config.with_batch_size(rows.max(1));
    }
    let ctx = tabssl::new_context_with_config(config, settings);
    register_source(py, &ctx, source, null_regex.as_deref())?;
    let summary = py
        .detach(|| {
            RUNTIME
                .block_on(tabssl::export::export(&ctx, "input", &output, &options, None))
                .map_err(Box::new)
        })
        .py_err()?;
    let result = PyDict::new(py);
    result.set_item("output", &output)?;
    if options.samples_marginals() {
        result.set_item("marginals", marginal_path(&output))?;
    }
    result.set_item("rows", summary.rows)?;
    result.set_item("features", summary.features)?;
    result.set_item("method", options.method.to_string())?;
    result.set_item("p", summary.p)?;
    result.set_item("seconds", summary.seconds)?;
    result.set_item("first_pass_seconds", summary.first_pass_seconds)?;
    Ok(result)
}

/// Trains an encoder and writes `output` (ONNX) with its manifest; returns the run's
/// report.
#[pyfunction]
#[pyo3(signature = (source, output, method="vime", *, columns=None, exclude=None, sql=None, p=None, alpha=2.0, temperature=1.0, hidden=128, dim=16, epochs=20, batch_size=256, lr=1e-3, seed=0, validation=0.1, max_vocab=64, min_count=5, max_tensor_elements=None, null_regex=None, description=None))]
#[allow(clippy::too_many_arguments)]
pub fn pretrain<'py>(
    py: Python<'py>,
    source: &Bound<'py, PyAny>,
    output: PathBuf,
    method: &str,
    columns: Option<Vec<String>>,
    exclude: Option<Vec<String>>,
    sql: Option<String>,
    p: Option<f64>,
    alpha: f64,
    temperature: f64,
    hidden: usize,
    dim: usize,
    epochs: usize,
    batch_size: usize,
    lr: f64,
    seed: u64,
    validation: f64,
    max_vocab: usize,
    min_count: usize,
    max_tensor_elements: Option<usize>,
    null_regex: Option<String>,
    description: Option<String>,
) -> PyResult<Bound<'py, PyDict>> {
    let method = method.parse::<Method>().py_err()?;
    let defaults = PretrainConfig::new(method);
    let source_label = match source.extract::<PathBuf>() {
        Ok(path) => path.to_string_lossy().into_owned(),
        Err(_) => format!("a Python {}", source.get_type().name()?),
    };
    let job = PretrainJob {
        source: source_label,
        sql,
        output,
        columns: columns.unwrap_or_default(),
        exclude: exclude.unwrap_or_default(),
        description,
        invocation: "tabssl.pretrain (Python)".to_string(),
        config: PretrainConfig {
            p,
            alpha,
            temperature,
            hidden,
            dim,
            epochs,
            batch_size,
            learning_rate: lr,
            seed,
            validation_fraction: validation,
            vocabulary: VocabularyLimits { max_vocab, min_count },
            max_tensor_elements: max_tensor_elements.unwrap_or(defaults.max_tensor_elements),
            ..defaults
        },
    };
    tabssl::train::manifest_path(&job.output).py_err()?;
    let ctx = session(TabsslOptions::default());
    register_source(py, &ctx, source, null_regex.as_deref())?;
    let report = py
        .detach(|| {
            RUNTIME
                .block_on(run_pretrain(&ctx, &job, &mut |_| {}))
                .map_err(Box::new)
        })
        .py_err()?;
    let result = PyDict::new(py);
    result.set_item("output", &report.output)?;
    result.set_item("manifest", &report.manifest)?;
    result.set_item("method", method.as_str())?;
    result.set_item("rows", report.rows)?;
    result.set_item("columns", &report.columns)?;
    result.set_item("dim", dim)?;
    result.set_item("best_epoch", report.best_epoch)?;
    result.set_item("train_loss", report.train_loss)?;
    result.set_item("validation_loss", report.validation_loss)?;
    result.set_item("seconds", report.seconds)?;
    result.set_item("summary", report.summary(&job))?;
    Ok(result)
}

/// The model registry as a table (`SELECT * FROM tabssl_models()`).
#[pyfunction]
#[pyo3(signature = (models_dir=None, provider="cpu", device_id=0))]
pub fn models(py: Python<'_>, models_dir: Option<String>, provider: &str, device_id: usize) -> PyResult<ArrowStream> {
    let options = build_options(models_dir, provider, device_id, 0, 0)?;
    // SQL lists a missing registry as empty; a Python caller naming one gets told.
    if !std::path::Path::new(&options.models_dir).is_dir() {
        let missing = std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the model registry directory does not exist",
        );
        return Err(to_py(tabssl::Error::io(&options.models_dir, missing)));
    }
    let ctx = session(options);
    run_query(py, &ctx, "SELECT * FROM tabssl_models()")
}
