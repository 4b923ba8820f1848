//! `tabssl export`: a pretraining set in one command, through the library's
//! [`tabssl_export`] (the recipe of `sql/adult_vime_export.sql`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use datafusion::prelude::SessionConfig;

use super::choices::{ExportFormatChoice, MethodChoice};
use tabssl_export::{ExportCompression, ExportFormat, Outputs};
use tabssl_export::{ExportOptions, Progress, export, export_script};
use tabssl_functions::corrupt::marginal::DEFAULT_CAPACITY;
use tabssl_functions::input::register_input;
use tabssl_functions::options::TabsslOptions;
use tabssl_functions::{Method, Result};

/// Arguments of `tabssl export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Input: a .csv, .parquet or .json/.ndjson file or directory, or `synthetic:ROWS[:SEED]`
    /// for the built-in Adult-shaped table.
    #[arg(long, value_name = "SOURCE")]
    input: String,
    /// Output file (written under a temporary name, then renamed).
    #[arg(long, value_name = "FILE")]
    output: PathBuf,
    /// Output format: parquet, or arrow (the Arrow IPC file format, for loaders that
    /// memory-map it).
    #[arg(long, value_parser = ExportFormatChoice::parser(), default_value = "parquet")]
    format: ExportFormat,
    /// Codec: none, snappy, lz4, zstd, zstd(LEVEL), gzip, gzip(LEVEL) [default: snappy for
    /// parquet, none for arrow; arrow has none, lz4 and zstd].
    #[arg(long, value_name = "CODEC")]
    compression: Option<ExportCompression>,
    /// Derived columns written next to each original, comma-separated subset of
    /// tilde (corrupted value), mask (the draw), changed (VIME's label x <> x_tilde).
    #[arg(long, value_name = "KINDS", default_value = "tilde,mask,changed")]
    outputs: Outputs,
    /// Corruption method.
    #[arg(long, value_parser = MethodChoice::parser(), default_value = "vime")]
    method: Method,
    /// Corruption probability per cell [default: the method's].
    #[arg(long)]
    p: Option<f64>,
    /// Seed of every draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Augmented views (corrupted copies) per input row.
    #[arg(long, default_value_t = 1)]
    views: u32,
    /// Feature columns to corrupt, comma-separated [default: every column except --key and --keep].
    #[arg(long, value_delimiter = ',', value_name = "COLS")]
    columns: Vec<String>,
    /// Row-key column [default: the row's position in the input, counted from 0].
    #[arg(long, value_name = "COL")]
    key: Option<String>,
    /// Columns copied unchanged (labels, ids), comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "COLS")]
    keep: Vec<String>,
    /// Draw donors from the batch instead of a first-pass marginal sample (no first pass;
    /// the output then depends on the batch layout).
    #[arg(long)]
    batch_local: bool,
    /// Rows kept per column in the marginal sample (exact below this many rows).
    #[arg(long, default_value_t = DEFAULT_CAPACITY)]
    capacity: usize,
    /// --method noise: noise standard deviation as a multiple of each column's std.
    #[arg(long, default_value_t = 0.1)]
    noise_std: f64,
    /// --method blank: the value masked cells take (cast to each column's type) [default: NULL].
    #[arg(long)]
    fill: Option<String>,
    /// CSV input: regular expression of cells read as NULL (e.g. '\?' for UCI Adult).
    #[arg(long, value_name = "REGEX")]
    null_regex: Option<String>,
    /// DataFusion batch size in rows (does not change the output).
    #[arg(long, value_name = "ROWS")]
    batch_size: Option<usize>,
    /// Print the generated SQL instead of running it.
    #[arg(long)]
    print_sql: bool,
    /// Model registry directory (for queries that also embed).
    #[arg(long, value_name = "DIR")]
    models: Option<PathBuf>,
    /// Run both passes on these `tabssl worker`s (host:port, comma-separated); needs --key.
    /// The output is the same file a single process writes.
    #[arg(long, value_name = "ADDRS", env = tabssl_distributed::WORKERS_ENV)]
    workers: Option<String>,
}

/// Runs `tabssl export`.
///
/// # Errors
/// When the input cannot be read, an argument is invalid, or writing fails.
pub async fn run(args: &ExportArgs) -> Result<()> {
    let options = args.options();
    // Every argument is checked before the input is read.
    // The library names the option first ("noise_std must be ..."): name the flag instead.
    options.check().map_err(|e| {
        let message = e.to_string();
        let (option, rest) = message.split_once(' ').unwrap_or((&message, ""));
        tabssl_functions::Error::invalid(format!("--{} {rest}", option.replace('_', "-")))
    })?;
    let mut settings = TabsslOptions::default();
    if let Some(dir) = &args.models {
        settings.models_dir = dir.display().to_string();
    }
    let mut config = SessionConfig::new().with_target_partitions(1);
    if let Some(rows) = args.batch_size {
        config = config.with_batch_size(rows.max(1));
    }
    let ctx = tabssl_infer::new_context_with_config(config, settings);
    register_input(&ctx, "input", &args.input, args.null_regex.as_deref()).await?;
    let ctx = super::maybe_distributed(ctx, args.workers.as_deref()).await?;
    if args.print_sql {
        return super::console::print(&export_script(&ctx, "input", &args.output, &options).await?);
    }
    let display = progress_display();
    let summary = export(&ctx, "input", &args.output, &options, display.clone()).await;
    if display.is_some() {
        super::console::note_raw("\r\x1b[2K");
    }
    let summary = summary?;
    super::console::note(&format!(
        "wrote {} rows ({} views, {} columns, method {:?}, p {}, seed {}) to {} in {:.2} s \
         (first pass {:.2} s, {:.0} rows/s)",
        summary.rows,
        args.views,
        summary.features,
        args.method,
        summary.p,
        args.seed,
        args.output.display(),
        summary.seconds,
        summary.first_pass_seconds,
        summary.rows as f64 / summary.seconds.max(1e-9),
    ));
    Ok(())
}

impl ExportArgs {
    /// The library's options for these arguments.
    fn options(&self) -> ExportOptions {
        ExportOptions {
            method: self.method,
            p: self.p,
            seed: self.seed,
            views: self.views,
            columns: self.columns.clone(),
            key: self.key.clone(),
            keep: self.keep.clone(),
            batch_local: self.batch_local,
            capacity: self.capacity,
            noise_std: self.noise_std,
            fill: self.fill.clone(),
            outputs: self.outputs,
            format: self.format,
            compression: self.compression,
        }
    }
}

/// A one-line progress display on stderr, only when stderr is a terminal.
fn progress_display() -> Option<Progress> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let started = Instant::now();
    let last = Mutex::new(started);
    Some(Arc::new(move |rows: u64| {
        let mut last = last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.elapsed() >= Duration::from_millis(250) {
            *last = Instant::now();
            let rate = rows as f64 / started.elapsed().as_secs_f64().max(1e-9);
            super::console::note_raw(&format!("\r\x1b[2Kexport: {rows} rows written ({rate:.0} rows/s)"));
        }
    }))
}
