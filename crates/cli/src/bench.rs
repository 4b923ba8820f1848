//! `tabssl bench`: rows/s of `embed` for one model per execution provider and batch size,
//! on rows of `tabssl_synthetic`, and how closely the providers' embeddings agree.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Float32Type;
use clap::Args;
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use tabssl_functions::{Error, Result};

use tabssl_functions::options::{InferenceSettings, Provider, TabsslOptions};
use tabssl_functions::sql_text::{ident, string_literal};
use tabssl_functions::synthetic::synthetic_table;
use tabssl_infer::load_model;

/// Relative tolerance for providers to count as agreeing.
const AGREEMENT: f32 = 1e-4;

/// Arguments of `tabssl bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Model to run; its inputs must be columns of tabssl_synthetic (e.g. adult_pca).
    #[arg(long, default_value = "adult_pca")]
    model: String,
    /// Model registry directory [default: $TABSSL_MODELS, else ./models].
    #[arg(long, value_name = "DIR")]
    models: Option<PathBuf>,
    /// Rows of synthetic data.
    #[arg(long, default_value_t = 200_000)]
    rows: u64,
    /// DataFusion batch sizes to measure (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1024,8192,65536")]
    batch_sizes: Vec<usize>,
    /// Execution providers to measure (comma-separated); the first is the reference.
    #[arg(long, value_delimiter = ',', default_value = "cpu")]
    providers: Vec<Provider>,
    /// CUDA device ordinal.
    #[arg(long, default_value_t = 0)]
    device_id: usize,
    /// DataFusion target partitions [default: cores].
    #[arg(long)]
    partitions: Option<usize>,
    /// Timed runs per setting; the best is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

fn context(args: &BenchArgs, provider: Provider, batch_size: usize, table: &Arc<MemTable>) -> Result<SessionContext> {
    let mut config = SessionConfig::new().with_batch_size(batch_size.max(1));
    if let Some(partitions) = args.partitions {
        config = config.with_target_partitions(partitions.max(1));
    }
    let mut options = TabsslOptions::default();
    if let Some(dir) = &args.models {
        options.models_dir = dir.display().to_string();
    }
    options.provider = provider;
    options.device_id = args.device_id;
    let ctx = tabssl_infer::new_context_with_config(config, options);
    ctx.register_table("bench_rows", Arc::clone(table) as _)?;
    Ok(ctx)
}

/// The SQL argument list for the model: its manifest columns or per-column input names.
fn model_columns(ctx: &SessionContext, model: &str) -> Result<Vec<String>> {
    let settings = InferenceSettings::from_config(ctx.state().config().options());
    let loaded = load_model(&settings, model)?;
    let columns = loaded
        .argument_columns()
        .map_err(|e| Error::Invalid(format!("{e}; tabssl bench needs them to pick tabssl_synthetic columns")))?;
    let schema = tabssl_functions::synthetic::synthetic_schema();
    if let Some(missing) = columns.iter().find(|c| schema.field_with_name(c).is_err()) {
        return Err(Error::Invalid(format!(
            "tabssl bench runs models on tabssl_synthetic columns, but model '{model}' needs '{missing}'"
        )));
    }
    Ok(columns)
}

fn embeddings(batches: &[RecordBatch]) -> Vec<Option<Vec<f32>>> {
    let mut out = Vec::new();
    for batch in batches {
        let column = batch.column(0).as_fixed_size_list();
        for row in 0..column.len() {
            out.push(
                column
                    .is_valid(row)
                    .then(|| column.value(row).as_primitive::<Float32Type>().values().to_vec()),
            );
        }
    }
    out
}

/// Largest |a - b| / max(|a|, 1) over all elements; `None` when NULLs differ.
fn max_relative_difference(reference: &[Option<Vec<f32>>], other: &[Option<Vec<f32>>]) -> Option<f32> {
    if reference.len() != other.len() {
        return None;
    }
    let mut worst = 0f32;
    for (a, b) in reference.iter().zip(other) {
        match (a, b) {
            (Some(a), Some(b)) if a.len() == b.len() => {
                for (x, y) in a.iter().zip(b) {
                    worst = worst.max((x - y).abs() / x.abs().max(1.0));
                }
            }
            (None, None) => {}
            _ => return None,
        }
    }
    Some(worst)
}

/// Refuses `--rows` that would not fit in memory: the bench holds the rows and two copies
/// of their embeddings, and may use at most half of the memory available now.
///
/// # Errors
/// When the estimate is over that share, with the numbers.
fn check_memory(args: &BenchArgs) -> Result<()> {
    let Some(available) = available_memory() else {
        return Ok(());
    };
    let sample = tabssl_functions::synthetic::synthetic_batch(1, 0, 8192)?;
    let input_per_row = sample.get_array_memory_size() as f64 / 8192.0;
    let mut options = TabsslOptions::default();
    if let Some(dir) = &args.models {
        options.models_dir = dir.display().to_string();
    }
    let settings = InferenceSettings::from_config(SessionConfig::new().with_option_extension(options).options());
    let width = load_model(&settings, &args.model)?.spec.width as f64;
    let needed = args.rows as f64 * (input_per_row + 2.0 * (4.0 * width + 8.0));
    if needed > available as f64 / 2.0 {
        return Err(Error::Invalid(format!(
            "--rows {} would hold about {:.1} GB in memory (the rows and two copies of their embeddings), \
             more than half of the {:.1} GB available now; use fewer --rows",
            args.rows,
            needed / 1e9,
            available as f64 / 1e9
        )));
    }
    Ok(())
}

/// Bytes of memory available now (Linux `MemAvailable`), if known.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Runs the benchmark and prints its table.
///
/// # Errors
/// Unknown model, unavailable provider, query failures.
pub async fn run(args: &BenchArgs) -> Result<()> {
    let partitions = args
        .partitions
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    check_memory(args)?;
    let table = Arc::new(synthetic_table(1, args.rows, partitions)?);

    let mut out = super::console::Stdout;
    writeln!(
        out,
        "model {}, {} synthetic rows, {partitions} partitions, best of {}",
        args.model, args.rows, args.repeat
    )
    .map_err(|e| Error::io("stdout", e))?;
    writeln!(
        out,
        "{:<10} {:>10} {:>10} {:>14}",
        "provider", "batch", "seconds", "rows/s"
    )
    .map_err(|e| Error::io("stdout", e))?;
    let mut reference: Option<(Provider, Vec<Option<Vec<f32>>>)> = None;
    let mut agreement = Vec::new();
    for &provider in &args.providers {
        let ctx = context(args, provider, 8192, &table)?;
        let columns = model_columns(&ctx, &args.model)?;
        let call = format!(
            "embed({}, {})",
            string_literal(&args.model),
            columns.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ")
        );
        let ordered = ctx
            .sql(&format!("SELECT {call} FROM bench_rows ORDER BY id"))
            .await?
            .collect()
            .await?;
        let values = embeddings(&ordered);
        let settings = InferenceSettings::from_config(ctx.state().config().options());
        let active = load_model(&settings, &args.model)?.active_provider();
        for &batch_size in &args.batch_sizes {
            let ctx = context(args, provider, batch_size, &table)?;
            let sql = format!("SELECT {call} AS e FROM bench_rows");
            ctx.sql(&sql).await?.collect().await?;
            let mut best = f64::INFINITY;
            for _ in 0..args.repeat.max(1) {
                let started = Instant::now();
                ctx.sql(&sql).await?.collect().await?;
                best = best.min(started.elapsed().as_secs_f64());
            }
            writeln!(
                out,
                "{:<10} {batch_size:>10} {best:>10.4} {:>14.0}",
                active.to_string(),
                args.rows as f64 / best
            )
            .map_err(|e| Error::io("stdout", e))?;
        }
        match &reference {
            None => reference = Some((provider, values)),
            Some((first, expected)) => agreement.push((*first, provider, max_relative_difference(expected, &values))),
        }
    }
    let mut disagree = false;
    for (first, other, difference) in agreement {
        match difference {
            Some(d) => {
                let verdict = if d <= AGREEMENT { "agree" } else { "DISAGREE" };
                disagree |= d > AGREEMENT;
                writeln!(
                    out,
                    "{other} vs {first}: max relative difference {d:.2e} ({verdict}, tolerance {AGREEMENT:.0e})"
                )
                .map_err(|e| Error::io("stdout", e))?;
            }
            None => {
                disagree = true;
                writeln!(out, "{other} vs {first}: different row counts or NULLs (DISAGREE)")
                    .map_err(|e| Error::io("stdout", e))?;
            }
        }
    }
    if disagree {
        return Err(Error::Invalid("providers disagree beyond the tolerance".into()));
    }
    Ok(())
}
