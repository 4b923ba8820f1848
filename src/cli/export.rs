//! `tabssl export`: a pretraining set in one command. Wraps the SQL recipe of
//! `sql/adult_vime_export.sql` for the common case: for every feature column the original,
//! the corrupted value and both masks, K views per row, written atomically to Parquet.
//!
//! Determinism: the query runs in one partition so rows keep the input's order and the
//! default row key (the row's position in the input) is stable; the writer cuts the
//! output into fixed-size row groups and pages, so the same input, arguments and version
//! give a byte-identical file whatever the batch size.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow::compute::BatchCoalescer;
use arrow::datatypes::{DataType, Schema};
use clap::{Args, ValueEnum};
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::schema::types::ColumnPath;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;

use super::input::register_input;
use crate::corrupt::marginal::{DEFAULT_CAPACITY, MAX_CAPACITY};
use crate::io::AtomicFile;
use crate::options::TabsslOptions;
use crate::parallel_parquet::ParallelParquetWriter;
use crate::sql_text::{ident, string_literal};

/// Rows per written batch, row group page unit: fixed so output bytes do not depend on
/// DataFusion's batch size.
const WRITE_BATCH_ROWS: usize = 8192;
/// Rows per Parquet row group.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// The pretext-task corruption to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// VIME: mask with p [0.3], masked cells drawn from the column's marginal.
    Vime,
    /// SCARF: the same corruption with a higher rate, c [0.6].
    Scarf,
    /// Denoising autoencoder with swap noise [0.15].
    Dae,
    /// Gaussian noise on numeric columns (sigma = --noise-std x the column's std) with
    /// probability p [1.0]; other columns get swap noise with the DAE rate 0.15.
    Noise,
    /// Constant masking (TabNet obfuscation, blanking): masked cells become --fill [NULL].
    Blank,
}

impl Method {
    fn default_p(self) -> f64 {
        match self {
            Self::Vime | Self::Blank => 0.3,
            Self::Scarf => 0.6,
            Self::Dae => 0.15,
            Self::Noise => 1.0,
        }
    }

    fn swaps(self) -> bool {
        !matches!(self, Self::Blank)
    }
}

/// Arguments of `tabssl export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Input: a .csv, .parquet or .json/.ndjson file or directory, or `synthetic:ROWS[:SEED]`
    /// for the built-in Adult-shaped table.
    #[arg(long, value_name = "SOURCE")]
    input: String,
    /// Output Parquet file (written under a temporary name, then renamed).
    #[arg(long, value_name = "FILE")]
    output: PathBuf,
    /// Corruption method.
    #[arg(long, value_enum, default_value_t = Method::Vime)]
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
}

/// Runs `tabssl export`.
///
/// # Errors
/// When the input cannot be read, an argument is invalid, or writing fails.
pub async fn run(args: &ExportArgs) -> Result<(), String> {
    check_arguments(args)?;
    let p = args.p.unwrap_or_else(|| args.method.default_p());
    let mut options = TabsslOptions::default();
    if let Some(dir) = &args.models {
        options.models_dir = dir.display().to_string();
    }
    // One partition: the input order is kept, so the default row key is stable.
    let mut config = SessionConfig::new().with_target_partitions(1);
    if let Some(rows) = args.batch_size {
        config = config.with_batch_size(rows.max(1));
    }
    let ctx = crate::new_context_with_config(config, options);
    let schema = register_input(&ctx, "input", &args.input, args.null_regex.as_deref()).await?;
    let plan = Plan::new(args, &schema)?;
    let marginal = marginal_path(&args.output);
    let started = Instant::now();
    let sigmas = if args.method == Method::Noise {
        plan.column_stds(&ctx, args.noise_std).await?
    } else {
        Vec::new()
    };
    let export_sql = plan.export_sql(args, &marginal, &sigmas);
    if args.print_sql {
        let mut text = String::new();
        if args.method.swaps() && !args.batch_local {
            text = format!("{};\n", plan.marginal_sql(args, &marginal));
        }
        let output = string_literal(&args.output.display().to_string());
        text.push_str(&format!("COPY ({export_sql}) TO {output} STORED AS PARQUET;"));
        return super::console::print(&text);
    }
    // Both files are reserved before any work, so a bad output path fails at once.
    let output = AtomicFile::create(&args.output).map_err(|e| e.to_string())?;
    if args.method.swaps() && !args.batch_local {
        let marginal = AtomicFile::create(&marginal).map_err(|e| e.to_string())?;
        // The sample does not depend on row order, so with a key column the first pass
        // may use every core; the default key (row position) needs the ordered scan.
        if args.key.is_some() {
            set_partitions(&ctx, std::thread::available_parallelism().map_or(1, usize::from)).await?;
        }
        write_marginal(&ctx, |target| plan.marginal_sql(args, target), marginal).await?;
        set_partitions(&ctx, 1).await?;
    }
    let first_pass = started.elapsed().as_secs_f64();
    let df = ctx.sql(&export_sql).await.map_err(|e| e.to_string())?;
    let rows = write_parquet(df, &output, &plan.derived_columns()).await?;
    output.commit().map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    super::console::note(&format!(
        "wrote {rows} rows ({} views, {} columns, method {:?}, p {p}, seed {}) to {} in {seconds:.2} s \
         (first pass {first_pass:.2} s, {:.0} rows/s)",
        args.views,
        plan.features.len(),
        args.method,
        args.seed,
        args.output.display(),
        rows as f64 / seconds.max(1e-9),
    ));
    Ok(())
}

/// Most augmented views per row.
const MAX_VIEWS: u32 = 10_000;

/// Checks the numeric arguments before any input is read.
fn check_arguments(args: &ExportArgs) -> Result<(), String> {
    let p = args.p.unwrap_or_else(|| args.method.default_p());
    if !(0.0..=1.0).contains(&p) {
        return Err(format!("--p must be in [0, 1], got {p}"));
    }
    if !(1..=MAX_VIEWS).contains(&args.views) {
        return Err(format!("--views must be between 1 and {MAX_VIEWS}, got {}", args.views));
    }
    if !(args.noise_std.is_finite() && args.noise_std >= 0.0) {
        return Err(format!(
            "--noise-std must be a finite number >= 0 (a multiple of each column's standard deviation), got {}",
            args.noise_std
        ));
    }
    if !(1..=MAX_CAPACITY).contains(&args.capacity) {
        return Err(format!(
            "--capacity must be between 1 and {MAX_CAPACITY} rows per column, got {}",
            args.capacity
        ));
    }
    Ok(())
}

/// Sets DataFusion's target partitions of `ctx`.
async fn set_partitions(ctx: &SessionContext, partitions: usize) -> Result<(), String> {
    let sql = format!("SET datafusion.execution.target_partitions = {partitions}");
    ctx.sql(&sql).await.map_err(|e| e.to_string())?;
    Ok(())
}

/// Which columns play which role, checked against the input schema.
struct Plan {
    key: String,
    keep: Vec<String>,
    features: Vec<(String, DataType)>,
}

impl Plan {
    fn new(args: &ExportArgs, schema: &Schema) -> Result<Self, String> {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let check = |column: &str| {
            if names.contains(&column) {
                Ok(())
            } else {
                Err(format!(
                    "column {column:?} is not in the input; it has: {}",
                    names.join(", ")
                ))
            }
        };
        if let Some(key) = &args.key {
            check(key)?;
        }
        for column in args.keep.iter().chain(&args.columns) {
            check(column)?;
        }
        let key = args.key.clone().unwrap_or_else(|| "row_id".into());
        let features: Vec<(String, DataType)> = schema
            .fields()
            .iter()
            .filter(|f| {
                if args.columns.is_empty() {
                    Some(f.name()) != args.key.as_ref() && !args.keep.contains(f.name())
                } else {
                    args.columns.contains(f.name())
                }
            })
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        if features.is_empty() {
            return Err("no feature columns to corrupt: check --columns, --keep and --key".into());
        }
        Ok(Self {
            key,
            keep: args.keep.clone(),
            features,
        })
    }

    /// The columns the export derives from the features.
    fn derived_columns(&self) -> Vec<String> {
        self.features.iter().flat_map(|(c, _)| derived_names(c)).collect()
    }

    /// The input with its row key: the given column, or the row's position.
    fn keyed_input(&self, args: &ExportArgs) -> String {
        if args.key.is_some() {
            "input".into()
        } else {
            format!(
                "(SELECT CAST(row_number() OVER () AS BIGINT) - 1 AS {}, * FROM input)",
                ident(&self.key)
            )
        }
    }

    fn marginal_sql(&self, args: &ExportArgs, marginal: &str) -> String {
        let samples: Vec<String> = self
            .features
            .iter()
            .map(|(c, _)| {
                format!(
                    "marginal_sample({}, {}, {}) AS {}",
                    ident(c),
                    ident(&self.key),
                    args.capacity,
                    ident(c)
                )
            })
            .collect();
        format!(
            "COPY (SELECT {} FROM {}) TO {} STORED AS PARQUET",
            samples.join(", "),
            self.keyed_input(args),
            string_literal(marginal)
        )
    }

    /// Each numeric feature's standard deviation, for --method noise.
    async fn column_stds(&self, ctx: &SessionContext, scale: f64) -> Result<Vec<Option<f64>>, String> {
        let numeric: Vec<String> = self
            .features
            .iter()
            .filter(|(_, t)| t.is_numeric())
            .map(|(c, _)| format!("stddev_pop(CAST({} AS DOUBLE))", ident(c)))
            .collect();
        if numeric.is_empty() {
            return Ok(vec![None; self.features.len()]);
        }
        let sql = format!("SELECT {} FROM input", numeric.join(", "));
        let batches = async { ctx.sql(&sql).await?.collect().await }
            .await
            .map_err(|e| e.to_string())?;
        let row = &batches[0];
        let mut next = 0;
        self.features
            .iter()
            .map(|(_, t)| {
                t.is_numeric().then(|| {
                    let column = row.column(next);
                    next += 1;
                    let std = arrow::array::AsArray::as_primitive::<arrow::datatypes::Float64Type>(column.as_ref())
                        .iter()
                        .next()
                        .flatten()
                        .unwrap_or(0.0);
                    scale * std
                })
            })
            .map(|sigma| match sigma {
                Some(s) if !s.is_finite() => Err(format!(
                    "--method noise: a column's standard deviation is not finite ({s}); leave it out with --keep or \
                     --columns"
                )),
                other => Ok(other),
            })
            .collect::<Result<Vec<_>, String>>()
    }

    fn export_sql(&self, args: &ExportArgs, marginal: &str, sigmas: &[Option<f64>]) -> String {
        let p = args.p.unwrap_or_else(|| args.method.default_p());
        let (seed, key) = (args.seed, ident(&self.key));
        let mut inner = format!("{key}, view_id");
        let mut outer = format!("{key}, view_id");
        for column in &self.keep {
            let _ = write!(inner, ", {}", ident(column));
            let _ = write!(outer, ", {}", ident(column));
        }
        for (i, (column, data_type)) in self.features.iter().enumerate() {
            let c = ident(column);
            let sigma = sigmas.get(i).copied().flatten().filter(|_| data_type.is_numeric());
            // --method noise: numeric columns get Gaussian noise with p; the others get
            // swap noise at the denoising autoencoder's rate.
            let p = match (args.method, sigma) {
                (Method::Noise, None) => Method::Dae.default_p(),
                _ => p,
            };
            let swap = if args.batch_local {
                format!("corrupt_swap_batch({c}, {p}, {seed}, {key}, view_id)")
            } else {
                format!(
                    "corrupt_swap({c}, {}, {p}, {seed}, {key}, view_id)",
                    string_literal(marginal)
                )
            };
            let corrupted = match (args.method, sigma) {
                (Method::Noise, Some(sigma)) => format!("corrupt_noise({c}, {sigma:?}, {p}, {seed}, {key}, view_id)"),
                (Method::Blank, _) => {
                    let fill = args.fill.as_ref().map_or("NULL".to_string(), |f| string_literal(f));
                    format!("corrupt_fill({c}, {fill}, {p}, {seed}, {key}, view_id)")
                }
                _ => swap,
            };
            let [tilde, mask, changed] = derived_names(column).map(|name| ident(&name));
            let _ = write!(
                inner,
                ", {c}, {corrupted} AS {tilde}, corrupt_mask({c}, {p}, {seed}, {key}, view_id) AS {mask}"
            );
            // VIME's label m = (x != x_tilde): NULL where x is NULL, true where a cell was
            // blanked to NULL.
            let original = if sigma.is_some() {
                format!("CAST({c} AS DOUBLE)")
            } else {
                c.clone()
            };
            // A swap or noise never turns a value into NULL, so a plain comparison gives
            // that; blanking to NULL needs IS DISTINCT FROM.
            let changed_expr = if args.method == Method::Blank {
                format!("CASE WHEN {c} IS NULL THEN NULL ELSE {original} IS DISTINCT FROM {tilde} END")
            } else {
                format!("{original} <> {tilde}")
            };
            let _ = write!(outer, ", {c}, {tilde}, {mask}, {changed_expr} AS {changed}");
        }
        // One view needs no unnest, which would copy every row.
        let view_ids = if args.views == 1 {
            "CAST(0 AS BIGINT)".to_string()
        } else {
            let views: Vec<String> = (0..args.views).map(|v| v.to_string()).collect();
            format!("unnest(make_array({}))", views.join(", "))
        };
        format!(
            "SELECT {outer} FROM (SELECT {inner} FROM (SELECT *, {view_ids} AS view_id FROM {}))",
            self.keyed_input(args)
        )
    }
}

/// The columns derived from feature `column`: corrupted value, mask, VIME's label.
fn derived_names(column: &str) -> [String; 3] {
    ["tilde", "mask", "changed"].map(|suffix| format!("{column}_{suffix}"))
}

/// Where the marginal sample of an export goes: beside the output, `<stem>.marginals.parquet`.
fn marginal_path(output: &Path) -> String {
    let stem = output.file_stem().and_then(|s| s.to_str()).unwrap_or("export");
    output
        .with_file_name(format!("{stem}.marginals.parquet"))
        .display()
        .to_string()
}

/// Runs the first pass (`COPY` of the marginal sample) into `target`'s temporary file, then
/// moves it into place.
async fn write_marginal(
    ctx: &SessionContext,
    copy_sql_to: impl Fn(&str) -> String,
    target: AtomicFile,
) -> Result<(), String> {
    let sql = copy_sql_to(&target.path().display().to_string());
    async { ctx.sql(&sql).await?.collect().await }
        .await
        .map_err(|e| format!("first pass (marginal sample) failed: {e}"))?;
    target.commit().map_err(|e| e.to_string())
}

/// Streams the query's batches, cut to fixed-size batches, to a writer thread: encoding
/// Parquet (on every core, column by column) overlaps with computing the next batches,
/// and the bounded channel holds at most one row group, so a slow disk slows the query
/// instead of filling memory.
async fn write_parquet(
    df: datafusion::dataframe::DataFrame,
    output: &AtomicFile,
    derived: &[String],
) -> Result<u64, String> {
    let mut stream = df.execute_stream().await.map_err(|e| e.to_string())?;
    let schema = stream.schema();
    let file = output.open().map_err(|e| e.to_string())?;
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_write_batch_size(WRITE_BATCH_ROWS);
    // Statistics serve pruning by value; computing them for the corrupted values and the
    // masks costs a third of the encoding time, and training reads those columns whole.
    for column in derived {
        props = props.set_column_statistics_enabled(ColumnPath::from(column.as_str()), EnabledStatistics::None);
    }
    let props = props.build();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let writer = ParallelParquetWriter::try_new(file, schema.clone(), props, threads).map_err(|e| e.to_string())?;
    // Up to a row group in flight: the query computes the next row group while the
    // writer encodes this one.
    let (sender, receiver) =
        std::sync::mpsc::sync_channel::<arrow::array::RecordBatch>(ROW_GROUP_ROWS / WRITE_BATCH_ROWS);
    let writer_thread = std::thread::spawn(move || -> Result<u64, String> {
        let mut writer = writer;
        let mut progress = Progress::new();
        let mut rows = 0u64;
        for batch in receiver {
            rows += batch.num_rows() as u64;
            writer.write(&batch).map_err(|e| e.to_string())?;
            progress.update(rows);
        }
        writer.finish().map_err(|e| e.to_string())?;
        progress.finish();
        Ok(rows)
    });
    let mut coalescer = BatchCoalescer::new(schema, WRITE_BATCH_ROWS);
    let produced = async {
        while let Some(batch) = stream.next().await {
            coalescer
                .push_batch(batch.map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
            while let Some(batch) = coalescer.next_completed_batch() {
                // A closed channel means the writer failed; its error is reported below.
                if sender.send(batch).is_err() {
                    return Ok(());
                }
            }
        }
        coalescer.finish_buffered_batch().map_err(|e| e.to_string())?;
        while let Some(batch) = coalescer.next_completed_batch() {
            if sender.send(batch).is_err() {
                return Ok(());
            }
        }
        Ok::<(), String>(())
    }
    .await;
    drop(sender);
    let written = writer_thread
        .join()
        .map_err(|_| "the Parquet writer thread panicked".to_string())?;
    produced?;
    written
}

/// A one-line progress display on stderr, only when stderr is a terminal.
struct Progress {
    enabled: bool,
    started: Instant,
    last: Instant,
    rows: u64,
}

impl Progress {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            enabled: std::io::stderr().is_terminal(),
            started: now,
            last: now,
            rows: 0,
        }
    }

    fn update(&mut self, rows: u64) {
        self.rows = rows;
        if self.enabled && self.last.elapsed() >= Duration::from_millis(250) {
            self.last = Instant::now();
            let rate = rows as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            super::console::note_raw(&format!("\r\x1b[2Kexport: {rows} rows written ({rate:.0} rows/s)"));
        }
    }

    fn finish(&self) {
        if self.enabled {
            super::console::note_raw("\r\x1b[2K");
        }
    }
}
