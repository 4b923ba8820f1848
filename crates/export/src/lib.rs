//! Pretraining sets in one call: the recipe behind `tabssl export`, for every front end.
//!
//! [`export`] reads a registered table and writes, for every feature column, the original,
//! the corrupted value (`<col>_tilde`), the corruption mask (`<col>_mask`) and VIME's label
//! (`<col>_changed`), K views per row, atomically to Parquet or Arrow IPC (`output`: which
//! derived columns, format, compression). The SQL it runs is the recipe of
//! `sql/adult_vime_export.sql` (`recipe`); [`export_script`] returns it.
//!
//! Determinism: the export query runs in one partition, so rows keep the input's order and
//! the default row key (the row's position in the input) is stable; the writer cuts the
//! output into fixed-size row groups and pages (`writer`), so the same input, options and
//! version give a byte-identical file whatever the batch size.
//!
//! ```no_run
//! # async fn run() -> tabssl_functions::Result<()> {
//! use tabssl_export::{ExportOptions, export};
//! let ctx = tabssl_infer::new_context(tabssl_functions::TabsslOptions::default());
//! ctx.sql("CREATE VIEW people AS SELECT * FROM tabssl_synthetic(10000, 42)").await?;
//! let options = ExportOptions { views: 2, keep: vec!["class".into()], key: Some("id".into()), ..ExportOptions::default() };
//! let summary = export(&ctx, "people", "train.parquet".as_ref(), &options, None).await?;
//! assert_eq!(summary.rows, 20_000);
//! # Ok(())
//! # }
//! ```

pub(crate) mod ordered_projection;
pub(crate) mod ordering;
pub(crate) mod output;
mod parallel_parquet;
pub(crate) mod recipe;
pub(crate) mod writer;

pub use ordering::{PlanOrdering, install_plan_ordering};
pub use output::{ExportCompression, ExportFormat, Outputs};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use datafusion::dataframe::DataFrame;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::Partitioning;
use datafusion::prelude::SessionContext;

use recipe::Recipe;
use tabssl_functions::atomic::AtomicFile;
use tabssl_functions::corrupt::marginal::{DEFAULT_CAPACITY, MAX_CAPACITY};
use tabssl_functions::setting::Setting;
use tabssl_functions::sql_text::string_literal;
use tabssl_functions::{Error, Method, Result};
use writer::WriteSettings;

/// Numbers the first pass's view of its input: the view lives in the caller's catalog
/// while the pass runs, so concurrent exports need their own names.
static FIRST_PASS_INPUTS: AtomicU64 = AtomicU64::new(0);

/// Most augmented views per row.
pub const MAX_VIEWS: u32 = 10_000;

/// Called with the number of rows written so far, from the writer thread.
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// What to export: the method, its parameters and the role of each column.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportOptions {
    /// Corruption method.
    pub method: Method,
    /// Corruption probability per cell; `None` takes the method's default.
    pub p: Option<f64>,
    /// Seed of every draw.
    pub seed: u64,
    /// Augmented views (corrupted copies) per input row, 1 to [`MAX_VIEWS`].
    pub views: u32,
    /// Feature columns to corrupt; empty means every column except `key` and `keep`.
    pub columns: Vec<String>,
    /// Row-key column; `None` keys rows by their position in the input, from 0.
    pub key: Option<String>,
    /// Columns copied unchanged (labels, ids).
    pub keep: Vec<String>,
    /// Draw donors from the batch instead of a first-pass marginal sample (no first pass;
    /// the output then depends on the batch layout).
    pub batch_local: bool,
    /// Rows kept per column in the marginal sample (exact below this many rows).
    pub capacity: usize,
    /// [`Method::Noise`]: noise standard deviation as a multiple of each column's std.
    pub noise_std: f64,
    /// [`Method::Blank`]: the value masked cells take (cast to each column's type);
    /// `None` blanks to NULL.
    pub fill: Option<String>,
    /// The derived columns written next to each original.
    pub outputs: Outputs,
    /// The file format.
    pub format: ExportFormat,
    /// The codec; `None` takes the format's default ([`ExportCompression::default_for`]).
    pub compression: Option<ExportCompression>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            method: Method::Vime,
            p: None,
            seed: 0,
            views: 1,
            columns: Vec::new(),
            key: None,
            keep: Vec::new(),
            batch_local: false,
            capacity: DEFAULT_CAPACITY,
            noise_std: 0.1,
            fill: None,
            outputs: Outputs::default(),
            format: ExportFormat::Parquet,
            compression: None,
        }
    }
}

impl ExportOptions {
    /// The corruption probability in effect.
    #[must_use]
    pub fn corruption_rate(&self) -> f64 {
        self.p.unwrap_or_else(|| self.method.default_p())
    }

    /// True when the export needs a first pass that samples each column's marginal.
    #[must_use]
    pub fn samples_marginals(&self) -> bool {
        self.method.swaps() && !self.batch_local && self.outputs.needs_corrupted()
    }

    /// The codec in effect.
    #[must_use]
    pub fn codec(&self) -> ExportCompression {
        self.compression
            .unwrap_or_else(|| ExportCompression::default_for(self.format))
    }

    /// Checks the numeric options; [`export`] calls it before reading any input.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the option, the accepted range and the value given.
    pub fn check(&self) -> Result<()> {
        let p = self.corruption_rate();
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::invalid(format!("p must be in [0, 1], got {p}")));
        }
        if !(1..=MAX_VIEWS).contains(&self.views) {
            return Err(Error::invalid(format!(
                "views must be between 1 and {MAX_VIEWS}, got {}",
                self.views
            )));
        }
        if !(self.noise_std.is_finite() && self.noise_std >= 0.0) {
            return Err(Error::invalid(format!(
                "noise_std must be a finite number >= 0 (a multiple of each column's standard deviation), got {}",
                self.noise_std
            )));
        }
        if !(1..=MAX_CAPACITY).contains(&self.capacity) {
            return Err(Error::invalid(format!(
                "capacity must be between 1 and {MAX_CAPACITY} rows per column, got {}",
                self.capacity
            )));
        }
        self.codec().check(self.format)
    }
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSummary {
    /// Rows written (input rows x views).
    pub rows: u64,
    /// Feature columns corrupted.
    pub features: usize,
    /// The corruption probability used.
    pub p: f64,
    /// Seconds spent in the first pass (marginal sample, column statistics).
    pub first_pass_seconds: f64,
    /// Seconds in all.
    pub seconds: f64,
}

/// Where the marginal sample of an export goes: beside the output, `<stem>.marginals.parquet`.
#[must_use]
pub fn marginal_path(output: &Path) -> PathBuf {
    let stem = output.file_stem().and_then(|s| s.to_str()).unwrap_or("export");
    output.with_file_name(format!("{stem}.marginals.parquet"))
}

/// Exports table `table` of `ctx` to the file `output` (and, for the methods that
/// swap, its marginal sample to [`marginal_path`]), both written atomically.
///
/// `ctx` is not changed: the passes run in sessions derived from it with the partitioning
/// they need. `progress`, if given, is called with the rows written so far.
///
/// # Errors
/// A bad option ([`ExportOptions::check`]), a column that is not in the table, an output
/// that cannot be created, or a failing query or write.
pub async fn export(
    ctx: &SessionContext,
    table: &str,
    output: &Path,
    options: &ExportOptions,
    progress: Option<Progress>,
) -> Result<ExportSummary> {
    options.check()?;
    // A session with its own ordering runs its plans elsewhere (on a cluster).
    let ordering = ordering::plan_ordering(ctx.state_ref().read().config());
    let distributed = ordering.is_some();
    if distributed && options.key.is_none() {
        return Err(Error::Invalid(format!(
            "a distributed export needs a row-key column ({}): the default key, the row's position in the \
             input, needs one ordered scan of the whole input in one process",
            Setting::Key
        )));
    }
    let started = Instant::now();
    let recipe = Recipe::new(ctx, table, options).await?;
    let marginal = marginal_path(output);
    let export_sql = recipe.export_sql(&marginal.display().to_string());
    // Both files are reserved before any work, so a bad output path fails at once.
    let output_file = AtomicFile::create(output)?;
    if options.samples_marginals() {
        let marginal_file = AtomicFile::create(&marginal)?;
        // The sample does not depend on row order, so with a key column the first pass
        // may use every core; the default key (row position) needs the ordered scan.
        let partitions = if options.key.is_some() {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            1
        };
        let first_pass = with_partitions(ctx, partitions);
        let marginal_path = marginal_file.path().display().to_string();
        let view = format!(
            "tabssl_export_input_{}",
            FIRST_PASS_INPUTS.fetch_add(1, Ordering::Relaxed)
        );
        let sampled = async {
            let sql = if distributed {
                recipe.marginal_sql(&marginal_path)
            } else {
                // The scan gives one partition per row group at most (and one for the
                // default key): deal its batches round robin to a sampler per core.
                let input = first_pass
                    .sql(&format!("SELECT * FROM {}", recipe.keyed_input()))
                    .await?;
                let cores = std::thread::available_parallelism().map_or(1, usize::from);
                let input = input.repartition(Partitioning::RoundRobinBatch(cores))?;
                first_pass.register_table(view.as_str(), input.into_view())?;
                recipe.marginal_sql_over(&view, &marginal_path)
            };
            first_pass.sql(&sql).await?.collect().await
        }
        .await;
        // The session shares the caller's catalog: leave nothing behind in it.
        if !distributed {
            let _ = first_pass.deregister_table(view.as_str());
        }
        sampled.map_err(|e| Error::invalid(format!("first pass (marginal sample) failed: {e}")))?;
        marginal_file.commit()?;
    }
    let first_pass_seconds = started.elapsed().as_secs_f64();
    // One partition: the input order is kept, so the default row key is stable. A cluster
    // runs a task per core of every worker and reads them back in input order.
    let df = pass_two_session(ctx, ordering.as_deref())?.sql(&export_sql).await?;
    let stream = execute_in_order(df, ordering.as_deref()).await?;
    let settings = WriteSettings {
        format: options.format,
        compression: options.codec(),
        derived: recipe.derived_columns(),
    };
    let rows = writer::write_file(stream, &output_file, &settings, progress).await?;
    output_file.commit()?;
    Ok(ExportSummary {
        rows,
        features: recipe.features().len(),
        p: options.corruption_rate(),
        first_pass_seconds,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The SQL script [`export`] runs for these arguments: the marginal sample's `COPY` (for
/// the methods that swap) and the export's `COPY`, each ending in `;`.
///
/// # Errors
/// As [`export`] before it writes anything.
pub async fn export_script(
    ctx: &SessionContext,
    table: &str,
    output: &Path,
    options: &ExportOptions,
) -> Result<String> {
    options.check()?;
    let recipe = Recipe::new(ctx, table, options).await?;
    let marginal = marginal_path(output).display().to_string();
    let mut text = String::new();
    if options.samples_marginals() {
        text = format!("{};\n", recipe.marginal_sql(&marginal));
    }
    let target = string_literal(&output.display().to_string());
    // An Arrow file's codec is the writer's: DataFusion's COPY has no option for it.
    let codec = match options.format {
        ExportFormat::Parquet => format!(
            " OPTIONS ('format.compression' '{}')",
            options.codec().datafusion_name()
        ),
        ExportFormat::Arrow => String::new(),
    };
    text.push_str(&format!(
        "COPY ({}) TO {target} STORED AS {}{codec};",
        recipe.export_sql(&marginal),
        options.format.sql_name()
    ));
    Ok(text)
}

/// The session of the second pass: one partition, or the session's own ordering (on a
/// cluster, one partition per task).
fn pass_two_session(ctx: &SessionContext, ordering: Option<&dyn PlanOrdering>) -> Result<SessionContext> {
    match ordering {
        Some(ordering) => Ok(ordering.ordered_session(ctx)?),
        None => Ok(with_partitions(ctx, 1)),
    }
}

/// Runs `df` as one stream in the order of its partitions (with the session's ordering,
/// the input's order; in one process, the corruption runs on every core: see
/// [`ordered_projection`]).
async fn execute_in_order(df: DataFrame, ordering: Option<&dyn PlanOrdering>) -> Result<SendableRecordBatchStream> {
    let task_ctx = Arc::new(df.task_ctx());
    if let Some(ordering) = ordering {
        let plan = df.create_physical_plan().await?;
        let plan = ordering.keep_partition_order(plan)?;
        return Ok(datafusion::physical_plan::execute_stream(plan, task_ctx)?);
    }
    let plan = df.create_physical_plan().await?;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    Ok(ordered_projection::execute_projections_in_order(
        plan, task_ctx, threads,
    )?)
}

/// A session over the same tables, functions and options as `ctx`, with `partitions`
/// target partitions.
fn with_partitions(ctx: &SessionContext, partitions: usize) -> SessionContext {
    let mut state = ctx.state();
    state.config_mut().options_mut().execution.target_partitions = partitions;
    SessionContext::new_with_state(state)
}
