//! `tabssl stream`: SQL over an unbounded input, batch by batch, in bounded memory.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use crate::{Error, Result};
use arrow::datatypes::SchemaRef;
use clap::Args;
use futures::StreamExt;

use crate::stream::batcher::{self, BatcherConfig};
use crate::stream::follow::FollowOptions;
use crate::stream::policy::{ErrorPolicy, RejectHandler, StreamStats};
use crate::stream::schema::{infer_schema, load_schema, same_columns};
use crate::stream::shutdown::Shutdown;
use crate::stream::sink::{BatchSink, ParquetSink, Rotation, WriterSink};
use crate::stream::source::{self, Chunk, SourceItem, SourceOptions, SourceSpec};
use crate::stream::{InputFormat, SinkFormat, execute_stream, streaming_context};

use super::console;

/// The deepest NDJSON nesting `--max-json-depth` may allow: deeper records would need more
/// stack than the decoder thread has.
const MAX_JSON_DEPTH: usize = 10_000;

/// Arguments of `tabssl stream`.
#[derive(Debug, Args)]
pub struct StreamArgs {
    /// The query over the unbounded table `input` (several statements allowed; the last one
    /// streams).
    #[arg(
        long,
        value_name = "SQL",
        required_unless_present = "sql_file",
        conflicts_with = "sql_file"
    )]
    sql: Option<String>,
    /// A file holding the query.
    #[arg(long, value_name = "FILE")]
    sql_file: Option<PathBuf>,
    /// `-` for stdin, a file to follow as it grows, or a directory whose files are read in
    /// name order (new ones picked up, the last one followed).
    #[arg(long, value_name = "PATH", default_value = "-")]
    input: String,
    /// Record format of the input [default: from a file's extension, else ndjson].
    #[arg(long, value_enum, value_name = "FORMAT")]
    input_format: Option<InputFormat>,
    /// Schema of the records: JSON ({"fields": [{"name", "type", "nullable"}]}) or a
    /// Parquet/Arrow file to take it from [default: inferred from the first records].
    #[arg(long, value_name = "FILE")]
    schema: Option<PathBuf>,
    /// Records to infer the schema from (waiting at most --batch-ms after the first).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    infer_rows: usize,
    /// CSV input has no header line (columns are column_1, column_2, ... unless --schema).
    #[arg(long)]
    no_header: bool,
    /// CSV input: values matching this regex are NULL [default: empty fields].
    #[arg(long, value_name = "REGEX")]
    null_regex: Option<String>,
    /// CSV input: a newline inside a quoted field continues the record (RFC 4180). Off,
    /// every line is one record, so a stray quote costs only its own line.
    #[arg(long)]
    csv_multiline: bool,
    /// Stop at the current end of a file or directory instead of waiting for more.
    #[arg(long)]
    no_follow: bool,
    /// How often a followed file or directory is polled for new data, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    poll_ms: u64,
    /// Most rows per micro-batch (N).
    #[arg(long, value_name = "N", default_value_t = 8192)]
    batch_rows: usize,
    /// Longest wait after a batch's first record before the batch is processed (T), in
    /// milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    batch_ms: u64,
    /// Threads decoding NDJSON and CSV micro-batches at once; the output keeps the input's
    /// order [default: the available cores].
    #[arg(long, value_name = "N")]
    decode_threads: Option<usize>,
    /// Records (and Arrow IPC messages) longer than this many bytes are rejected without
    /// being read into memory.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    max_record_bytes: usize,
    /// NDJSON records nested deeper than this many arrays and objects are rejected (at most
    /// 10000).
    #[arg(long, value_name = "LEVELS", default_value_t = 64)]
    max_json_depth: usize,
    /// What to do with records that do not fit the schema: fail, skip, or dead-letter FILE
    /// (appends each as JSON with its source, line, offset and error).
    #[arg(long, value_names = ["POLICY", "FILE"], num_args = 1..=2, default_value = "fail")]
    on_error: Vec<String>,
    /// `-` for stdout, a file, or (for parquet) a directory.
    #[arg(long, value_name = "PATH", default_value = "-")]
    output: String,
    /// Output format.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = SinkFormat::Ndjson)]
    output_format: SinkFormat,
    /// Parquet: rows per file.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    rotate_rows: u64,
    /// Parquet: also close a file once it is this many milliseconds old (checked as batches
    /// arrive).
    #[arg(long, value_name = "MS")]
    rotate_ms: Option<u64>,
    #[command(flatten)]
    model: super::ModelArgs,
}

impl StreamArgs {
    fn input_format(&self, spec: &SourceSpec) -> InputFormat {
        if let Some(format) = self.input_format {
            return format;
        }
        let extension = match spec {
            SourceSpec::File(path) => path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or_default()
                .to_ascii_lowercase(),
            _ => String::new(),
        };
        match extension.as_str() {
            "csv" => InputFormat::Csv,
            "arrow" | "arrows" | "ipc" => InputFormat::Arrow,
            _ => InputFormat::Ndjson,
        }
    }
}

fn plan_error(message: impl Into<String>) -> Error {
    Error::Invalid(message.into())
}

/// Runs the stream until its input ends or a signal arrives; prints the counts to stderr.
///
/// # Errors
/// Bad arguments, a schema that cannot be read or inferred, a query that cannot stream,
/// a bad record under `--on-error fail`, or an output that cannot be written. The output
/// is completed (files closed) before the error is returned.
pub async fn run(args: &StreamArgs) -> Result<()> {
    let started = Instant::now();
    let policy = ErrorPolicy::parse(&args.on_error[0], args.on_error.get(1).map(Path::new))?;
    if args.batch_rows == 0 {
        return Err(plan_error("--batch-rows must be at least 1"));
    }
    if !(1..=MAX_JSON_DEPTH).contains(&args.max_json_depth) {
        return Err(plan_error(format!(
            "--max-json-depth {} is out of range: expected 1 to {MAX_JSON_DEPTH} levels",
            args.max_json_depth
        )));
    }
    let decode_threads = match args.decode_threads {
        None => batcher::default_decode_threads(),
        Some(threads) => NonZeroUsize::new(threads).ok_or_else(|| {
            plan_error("--decode-threads must be at least 1 (leave it out to use every available core)")
        })?,
    };
    if args.max_record_bytes == 0 {
        return Err(plan_error("--max-record-bytes must be at least 1"));
    }
    let sql = match (&args.sql, &args.sql_file) {
        (Some(sql), _) => sql.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| plan_error(format!("cannot read --sql-file {}: {e}", path.display())))?,
        (None, None) => return Err(plan_error("give the query with --sql or --sql-file")),
    };
    let null_regex = args
        .null_regex
        .as_deref()
        .map(|r| regex::Regex::new(&format!("^(?:{r})$")))
        .transpose()
        .map_err(|e| plan_error(format!("--null-regex: {e}")))?;
    let declared = args.schema.as_deref().map(load_schema).transpose()?;
    let spec = SourceSpec::parse(&args.input)?;
    let format = args.input_format(&spec);
    if args.output_format == SinkFormat::Parquet && args.output == "-" {
        return Err(plan_error("--output-format parquet writes files: give --output DIR"));
    }

    let shutdown = Shutdown::on_signals().map_err(|e| plan_error(format!("cannot install signal handlers: {e}")))?;
    let stats = Arc::new(StreamStats::default());
    let rejects = RejectHandler::new(policy, Arc::clone(&stats))?;
    let batch_delay = Duration::from_millis(args.batch_ms);
    let source = source::spawn(
        spec,
        SourceOptions {
            format,
            csv_header: !args.no_header,
            csv_multiline: args.csv_multiline,
            max_record_bytes: args.max_record_bytes,
            max_json_depth: args.max_json_depth,
            follow: FollowOptions {
                follow: !args.no_follow,
                poll: Duration::from_millis(args.poll_ms.max(1)),
                shutdown: shutdown.clone(),
            },
        },
        Arc::clone(&stats),
    )
    .map_err(|e| Error::Internal(format!("cannot start the reader thread: {e}")))?;
    let inferred = declared.is_none() && format != InputFormat::Arrow;
    let (schema, head) = match (format, declared) {
        (InputFormat::Arrow, declared) => (ipc_schema(&source, declared)?, Vec::new()),
        (_, Some(schema)) => (schema, Vec::new()),
        (_, None) => {
            let (header, head) = first_records(&source, args.infer_rows, batch_delay, &shutdown);
            let chunks: Vec<&Chunk> = head
                .iter()
                .filter_map(|item| match item {
                    SourceItem::Records(chunk) => Some(chunk),
                    _ => None,
                })
                .collect();
            if chunks.is_empty()
                && let Some(message) = head.iter().find_map(|item| match item {
                    SourceItem::Failed(message) => Some(message.clone()),
                    _ => None,
                })
            {
                // The input broke before its first record (a bad header): that is the error.
                return Err(Error::Invalid(message));
            }
            if chunks.is_empty() && shutdown.is_requested() {
                // Stopped before the first record: nothing was read, nothing to write.
                console::note(
                    "tabssl stream: stopped before the first record; read 0 records, rejected 0, passed 0 to the query, wrote 0 rows",
                );
                return Ok(());
            }
            let schema = infer_schema(format, header.as_deref(), &chunks, null_regex.as_ref())?;
            log::info!("inferred schema: {schema:?}");
            (schema, head)
        }
    };
    let config = BatcherConfig {
        schema,
        format,
        max_rows: args.batch_rows,
        max_delay: batch_delay,
        csv_null_regex: null_regex,
        json_coerce_primitives: inferred,
        decode_threads,
    };
    let input = batcher::spawn(source, head, config, rejects, Arc::clone(&stats), shutdown.clone())
        .map_err(|e| Error::Internal(format!("cannot start the batcher thread: {e}")))?;
    let ctx = streaming_context(args.model.options(), args.batch_rows);
    let mut output = execute_stream(&ctx, input, &sql).await?;
    let mut sink: Box<dyn BatchSink> = match (args.output_format, args.output.as_str()) {
        (SinkFormat::Parquet, dir) => Box::new(ParquetSink::new(
            Path::new(dir),
            output.schema(),
            Rotation {
                rows: args.rotate_rows,
                after: args.rotate_ms.map(Duration::from_millis),
            },
        )?),
        (format, "-") => Box::new(WriterSink::new(format, &output.schema(), console::Stdout)?),
        (format, path) => {
            let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
            Box::new(WriterSink::new(
                format,
                &output.schema(),
                std::io::BufWriter::new(file),
            )?)
        }
    };
    let mut failure = None;
    while let Some(batch) = output.next().await {
        let written = batch.and_then(|batch| tokio::task::block_in_place(|| sink.write(&batch)));
        if let Err(error) = written {
            failure = Some(Error::from(error));
            break;
        }
    }
    // Stop the reader and the batcher if the query ended first (an error, a LIMIT).
    shutdown.request();
    drop(output);
    let summary = sink.finish();
    let (summary, mut failure) = match (summary, failure) {
        (Ok(summary), failure) => (summary, failure),
        (Err(e), failure) => (Default::default(), failure.or(Some(Error::from(e)))),
    };
    let files = if summary.files.is_empty() {
        String::new()
    } else {
        format!(" into {} file(s)", summary.files.len())
    };
    let unaccounted = stats.records_unaccounted();
    let ending = if console::stdout_closed() {
        "; stopped: the reader closed standard output".to_string()
    } else if unaccounted > 0 && !stats.input_done() {
        format!("; the stream stopped early, {unaccounted} records read were not processed")
    } else {
        String::new()
    };
    console::note(&format!(
        "tabssl stream: read {} records, rejected {}, passed {} to the query, wrote {} rows in {} batches{files} \
         ({:.1} s{ending})",
        stats.records_read(),
        stats.records_rejected(),
        stats.rows_passed(),
        summary.rows,
        summary.batches,
        started.elapsed().as_secs_f64()
    ));
    if failure.is_none() && stats.input_done() && unaccounted != 0 {
        // Every record read is passed or rejected once the whole input was handled; a
        // difference is a defect, never to be passed over in silence.
        failure = Some(Error::Internal(format!(
            "{unaccounted} records were read but neither passed to the query nor rejected"
        )));
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// The schema of an Arrow IPC input: the stream's own, which a declared schema must match.
fn ipc_schema(source: &Receiver<SourceItem>, declared: Option<SchemaRef>) -> Result<SchemaRef> {
    match source.recv() {
        Ok(SourceItem::IpcSchema(schema, name)) => {
            if let Some(declared) = declared
                && !same_columns(&declared, &schema)
            {
                return Err(plan_error(format!(
                    "the Arrow IPC input {name} has the schema {schema:?}, but --schema declares {declared:?}"
                )));
            }
            Ok(schema)
        }
        Ok(SourceItem::Failed(message)) => Err(Error::Invalid(message)),
        Ok(_) | Err(_) => Err(plan_error("the Arrow IPC input ended before its schema")),
    }
}

/// Takes items from the reader until `rows` records have arrived, `wait` has passed since
/// the first, or the input ended; returns the CSV header (if one came) and the items.
fn first_records(
    source: &Receiver<SourceItem>,
    rows: usize,
    wait: Duration,
    shutdown: &Shutdown,
) -> (Option<Vec<String>>, Vec<SourceItem>) {
    let mut header = None;
    let mut items = Vec::new();
    let mut records = 0;
    let mut first_at: Option<Instant> = None;
    while records < rows.max(1) && !shutdown.is_requested() {
        let timeout = first_at.map_or(Duration::from_millis(50), |first| {
            (first + wait).saturating_duration_since(Instant::now())
        });
        if first_at.is_some() && timeout.is_zero() {
            break;
        }
        match source.recv_timeout(timeout.min(Duration::from_millis(50))) {
            Ok(item) => {
                match &item {
                    SourceItem::Records(chunk) => {
                        records += chunk.records.len();
                        first_at.get_or_insert_with(Instant::now);
                    }
                    SourceItem::Header { names, .. } if header.is_none() => header = Some(names.clone()),
                    SourceItem::Failed(_) => {
                        items.push(item);
                        break;
                    }
                    _ => {}
                }
                items.push(item);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    (header, items)
}
