//! `tabssl stream`: SQL over an unbounded input, batch by batch, in bounded memory.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use super::choices::{InputFormatChoice, SinkFormatChoice};
use crate::{Error, Result};
use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use clap::Args;
use datafusion::error::Result as DfResult;
use datafusion::execution::SendableRecordBatchStream;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use crate::stream::batcher::{self, BatcherConfig};
use crate::stream::checkpoint::{
    Checkpoint, Fingerprint, Mark, Resume, SourcePosition, columns_schema, describe_columns,
};
use crate::stream::follow::FollowOptions;
use crate::stream::parts::{PartDirectory, StartRecord};
use crate::stream::per_batch;
use crate::stream::policy::{ErrorPolicy, RejectHandler, StreamStats};
use crate::stream::schema::{infer_schema, load_schema, same_columns};
use crate::stream::shutdown::Shutdown;
use crate::stream::sink::{BatchSink, Ledger, ParquetSink, Rotation, WriterSink};
use crate::stream::source::{self, Chunk, SourceItem, SourceOptions, SourceSpec};
use crate::stream::{InputFormat, SinkFormat, prepare_stream, streaming_context};

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
    #[arg(long, value_parser = InputFormatChoice::parser(), value_name = "FORMAT")]
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
    #[arg(long, value_parser = SinkFormatChoice::parser(), value_name = "FORMAT", default_value = "ndjson")]
    output_format: SinkFormat,
    /// Parquet: rows per file.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    rotate_rows: u64,
    /// Parquet: also close a file once it is this many milliseconds old (checked as batches
    /// arrive).
    #[arg(long, value_name = "MS")]
    rotate_ms: Option<u64>,
    /// Parquet: read the input from its start even though the output directory holds parts
    /// of an earlier run (new parts are numbered after them). Without it, a restart
    /// continues where the last committed part stopped, and refuses a changed query,
    /// schema or source.
    #[arg(long)]
    start_over: bool,
    /// Micro-batches a row-by-row query (projections, filters, the tabssl functions) runs
    /// on at once, outputs kept in input order [default: the available cores]. Other
    /// queries run as one ordered stream.
    #[arg(long, value_name = "N")]
    batches_in_flight: Option<usize>,
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

/// `--on-error`: `fail`, `skip` or `dead-letter FILE`.
fn error_policy(name: &str, file: Option<&Path>) -> Result<ErrorPolicy> {
    match (name, file) {
        ("fail", None) => Ok(ErrorPolicy::Fail),
        ("skip", None) => Ok(ErrorPolicy::Skip),
        ("dead-letter", Some(path)) => Ok(ErrorPolicy::DeadLetter(path.to_path_buf())),
        ("dead-letter", None) => Err(plan_error(
            "--on-error dead-letter needs a file: --on-error dead-letter FILE",
        )),
        ("fail" | "skip", Some(path)) => Err(plan_error(format!(
            "--on-error {name} takes no file (got {}); only dead-letter writes one",
            path.display()
        ))),
        (other, _) => Err(plan_error(format!(
            "--on-error {other:?}: expected fail, skip or dead-letter FILE"
        ))),
    }
}

fn plan_error(message: impl Into<String>) -> Error {
    Error::Invalid(message.into())
}

/// Runs the stream until its input ends or a signal arrives; prints the counts to stderr.
///
/// # Errors
/// Bad arguments, a schema that cannot be read or inferred, a query that cannot stream,
/// a restart that cannot continue (changed query, schema or source), a bad record under
/// `--on-error fail`, or an output that cannot be written. The output is completed
/// (files closed) before the error is returned.
pub async fn run(args: &StreamArgs) -> Result<()> {
    let started = Instant::now();
    let policy = error_policy(&args.on_error[0], args.on_error.get(1).map(Path::new))?;
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
    let in_flight = match args.batches_in_flight {
        None => batcher::default_decode_threads().get(),
        Some(0) => {
            return Err(plan_error(
                "--batches-in-flight must be at least 1 (leave it out to use every available core)",
            ));
        }
        Some(n) => n,
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
    let spec = absolute(SourceSpec::parse(&args.input)?)?;
    let format = args.input_format(&spec);
    if args.output_format == SinkFormat::Parquet && args.output == "-" {
        return Err(plan_error("--output-format parquet writes files: give --output DIR"));
    }
    if args.rotate_rows == 0 {
        return Err(plan_error("--rotate-rows must be at least 1"));
    }
    if args.start_over && args.output_format != SinkFormat::Parquet {
        return Err(plan_error(
            "--start-over applies to Parquet output, which remembers where it stopped; other outputs always \
             read the input from its start",
        ));
    }

    // Parquet output: the locked directory, and where its last committed part stopped.
    let parts = (args.output_format == SinkFormat::Parquet)
        .then(|| PartDirectory::open(Path::new(&args.output)))
        .transpose()?;
    let identity = Identity {
        query: sql.clone(),
        input: input_identity(&spec),
        read_options: read_options(format, args),
        dead_letter: match &policy {
            ErrorPolicy::DeadLetter(path) => Some(absolute_path(path)?.display().to_string()),
            _ => None,
        },
    };
    let earlier = match &parts {
        Some(parts) if !args.start_over => parts.latest_checkpoint()?,
        _ => None,
    };
    let continuation = earlier
        .map(|(part, checkpoint)| Continuation::check(part, checkpoint, &identity, declared.as_deref(), &spec))
        .transpose()?;
    let resume = continuation.as_ref().and_then(|c| c.resume.clone());
    let dead_letter_resume = match (&resume, &parts, &identity.dead_letter) {
        (Some(resume), _, _) => Some(resume.mark.dead_letter_bytes),
        (None, Some(parts), Some(dead_letter)) if continuation.is_none() && spec != SourceSpec::Stdin => {
            dead_letter_at_start(parts, dead_letter, args.start_over)?
        }
        _ => None,
    };

    let shutdown = Shutdown::on_signals().map_err(|e| plan_error(format!("cannot install signal handlers: {e}")))?;
    let stats = Arc::new(StreamStats::default());
    let rejects = RejectHandler::new(policy.clone(), Arc::clone(&stats), dead_letter_resume)?;
    let dead_letter_bytes = rejects.dead_letter_bytes();
    let batch_delay = Duration::from_millis(args.batch_ms);
    let source = source::spawn(
        spec.clone(),
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
            start: resume
                .as_ref()
                .map(|r| r.mark.position.clone())
                .filter(|p| p.file.is_some()),
        },
        Arc::clone(&stats),
    )
    .map_err(|e| Error::Internal(format!("cannot start the reader thread: {e}")))?;
    let stored_schema = continuation
        .as_ref()
        .filter(|_| resume.is_some())
        .map(|c| &c.fingerprint);
    let (schema, inferred, head) = match (format, declared, stored_schema) {
        (InputFormat::Arrow, declared, _) => (ipc_schema(&source, declared)?, false, Vec::new()),
        (_, Some(schema), _) => (schema, false, Vec::new()),
        (_, None, Some(stored)) => (
            Arc::new(columns_schema(&stored.input_schema)?),
            stored.input_schema_inferred,
            Vec::new(),
        ),
        (_, None, None) => {
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
            (schema, true, head)
        }
    };
    let config = BatcherConfig {
        schema: Arc::clone(&schema),
        format,
        max_rows: args.batch_rows,
        max_delay: batch_delay,
        csv_null_regex: null_regex,
        json_coerce_primitives: inferred,
        decode_threads,
    };
    let inputs = batcher::spawn(source, head, config, rejects, Arc::clone(&stats), shutdown.clone())
        .map_err(|e| Error::Internal(format!("cannot start the batcher thread: {e}")))?;
    let ctx = streaming_context(args.model.options(), args.batch_rows);
    let prepared = prepare_stream(&ctx, Arc::clone(&schema), &sql).await?;
    let resumable = if !prepared.is_row_local() {
        Err(
            "the query does not treat each row on its own (LIMIT, window functions, ...), so its output \
             cannot be matched to input positions"
                .to_string(),
        )
    } else {
        match (&spec, format) {
            (SourceSpec::Stdin, _) => Err("standard input cannot be read again".to_string()),
            (_, InputFormat::Arrow) => Err("an Arrow IPC input cannot be resumed inside its stream".to_string()),
            _ => Ok(()),
        }
    };
    let mut output = if prepared.is_row_local() {
        let plan = prepared.per_batch(&ctx, in_flight).await?;
        let output_schema = plan.schema();
        let tagged = inputs.map_ok(|input| (input.batch, input.end));
        Output::PerBatch(
            output_schema,
            Box::pin(per_batch::run_in_order(plan, tagged, in_flight)),
        )
    } else {
        Output::Single(
            prepared
                .execute(&ctx, batcher::rows_only(Arc::clone(&schema), inputs))
                .await?,
        )
    };
    let output_schema = output.schema();
    let fingerprint = identity.fingerprint(&schema, inferred, &output_schema);
    if let Some(continuation) = &continuation
        && let Some(change) = fingerprint.changes_since(&continuation.fingerprint)
    {
        return Err(continuation.refuse(&change));
    }
    let mut skip = resume.as_ref().map_or(0, |r| r.skip_rows);
    let mut sink: Box<dyn BatchSink> = match (args.output_format, args.output.as_str(), parts) {
        (SinkFormat::Parquet, _, Some(parts)) => {
            let start = resume.as_ref().map_or_else(
                || Mark {
                    position: SourcePosition {
                        file: None,
                        offset: 0,
                        line: 1,
                    },
                    dead_letter_bytes,
                    check: None,
                },
                |r| r.mark.clone(),
            );
            let ledger = Ledger {
                fingerprint,
                resumable,
                start,
                skip_rows: skip,
                rows_written: continuation.as_ref().map_or(0, |c| c.rows_written),
                dead_letter: match &policy {
                    ErrorPolicy::DeadLetter(path) => Some(path.clone()),
                    _ => None,
                },
            };
            let rotation = Rotation {
                rows: args.rotate_rows,
                after: args.rotate_ms.map(Duration::from_millis),
            };
            Box::new(ParquetSink::new(parts, output_schema, rotation, ledger)?)
        }
        (_, "-", _) => Box::new(WriterSink::new(args.output_format, &output_schema, console::Stdout)?),
        (format, path, _) => {
            let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
            Box::new(WriterSink::new(format, &output_schema, std::io::BufWriter::new(file))?)
        }
    };
    if let Some(resume) = &resume {
        log::info!(
            "continuing at {} after the {} rows of {}, {} of them from this position",
            resume.mark.position,
            continuation.as_ref().map_or(0, |c| c.rows_written),
            continuation
                .as_ref()
                .map_or_else(String::new, |c| c.part.display().to_string()),
            resume.skip_rows
        );
    }
    let mut failure = None;
    while let Some(item) = output.next().await {
        let written = item.and_then(|(batches, end)| {
            tokio::task::block_in_place(|| {
                for batch in batches {
                    let batch = skip_rows(&mut skip, batch);
                    sink.write(&batch)?;
                }
                end.map_or(Ok(()), |end| sink.mark(&end))
            })
        });
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
    let mut ending = String::new();
    if console::stdout_closed() {
        ending.push_str("; stopped: the reader closed standard output");
    }
    if unaccounted > 0 {
        ending.push_str(&format!("; {unaccounted} records read ahead were not processed"));
    }
    let restart = match &summary.resume {
        Some(Ok((mark, 0))) => format!("; a restart continues at {}", mark.position),
        Some(Ok((mark, rows))) => format!(
            "; a restart continues at {} after the first {rows} output rows from there",
            mark.position
        ),
        Some(Err(why)) => format!("; a restart cannot continue where this run stopped: {why}"),
        None => String::new(),
    };
    let resumed = match &resume {
        Some(resume) => format!("resumed at {}; ", resume.mark.position),
        None => String::new(),
    };
    console::note(&format!(
        "tabssl stream: {resumed}read {} records, rejected {}, passed {} to the query, wrote {} rows in {} batches{files} \
         ({:.1} s{ending}){restart}",
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

/// The query's output: per micro-batch with its boundary, or one stream of batches.
enum Output {
    PerBatch(
        SchemaRef,
        BoxStream<'static, DfResult<(Vec<RecordBatch>, Option<Mark>)>>,
    ),
    Single(SendableRecordBatchStream),
}

impl Output {
    fn schema(&self) -> SchemaRef {
        match self {
            Self::PerBatch(schema, _) => Arc::clone(schema),
            Self::Single(stream) => stream.schema(),
        }
    }

    /// The next output, with the input boundary after it where known.
    async fn next(&mut self) -> Option<DfResult<(Vec<RecordBatch>, Option<Mark>)>> {
        match self {
            Self::PerBatch(_, stream) => stream.next().await,
            Self::Single(stream) => stream.next().await.map(|batch| batch.map(|batch| (vec![batch], None))),
        }
    }
}

/// `batch` without the first `skip` rows; `skip` goes down by the rows dropped.
fn skip_rows(skip: &mut u64, batch: RecordBatch) -> RecordBatch {
    let dropped = (*skip).min(batch.num_rows() as u64) as usize;
    *skip -= dropped as u64;
    batch.slice(dropped, batch.num_rows() - dropped)
}

/// What identifies a stream before its schemas are known.
struct Identity {
    query: String,
    input: String,
    read_options: String,
    dead_letter: Option<String>,
}

impl Identity {
    fn fingerprint(&self, input: &Schema, inferred: bool, output: &Schema) -> Fingerprint {
        Fingerprint {
            query: self.query.clone(),
            input: self.input.clone(),
            read_options: self.read_options.clone(),
            dead_letter: self.dead_letter.clone(),
            input_schema: describe_columns(input),
            input_schema_inferred: inferred,
            output_schema: describe_columns(output),
        }
    }
}

/// A run into a directory whose newest part carries a checkpoint.
struct Continuation {
    part: PathBuf,
    fingerprint: Fingerprint,
    rows_written: u64,
    /// Where to continue; `None` for standard input, which cannot be read again.
    resume: Option<Resume>,
}

impl Continuation {
    /// Checks that this run may continue the one that wrote `part`: same query, input,
    /// options and declared schema, and a source that still holds what was read.
    fn check(
        part: PathBuf,
        checkpoint: Option<Checkpoint>,
        identity: &Identity,
        declared: Option<&Schema>,
        spec: &SourceSpec,
    ) -> Result<Self> {
        let Some(checkpoint) = checkpoint else {
            return Err(Error::Invalid(format!(
                "{} carries no stream checkpoint (it was not written by a tabssl stream that records one), so \
                 this run cannot know where the earlier one stopped: give --start-over to read the input from \
                 its start and add parts after it, or another --output",
                part.display()
            )));
        };
        let mut continuation = Self {
            part,
            fingerprint: checkpoint.fingerprint,
            rows_written: checkpoint.rows_written,
            resume: None,
        };
        // What can be compared before the schemas are known; the rest once planned.
        let mut early = identity.fingerprint(&Schema::empty(), false, &Schema::empty());
        early.input_schema.clone_from(&continuation.fingerprint.input_schema);
        early.input_schema_inferred = continuation.fingerprint.input_schema_inferred;
        early.output_schema.clone_from(&continuation.fingerprint.output_schema);
        if let Some(declared) = declared {
            early.input_schema = describe_columns(declared);
        }
        if let Some(change) = early.changes_since(&continuation.fingerprint) {
            return Err(continuation.refuse(&change));
        }
        if *spec == SourceSpec::Stdin {
            log::warn!(
                "{} was written from standard input, which cannot be read again: this run writes what arrives \
                 now, after the {} rows already there",
                continuation.part.display(),
                continuation.rows_written
            );
            return Ok(continuation);
        }
        let Some(resume) = checkpoint.resume else {
            let why = checkpoint
                .not_resumable
                .unwrap_or_else(|| "it records no position".to_string());
            return Err(Error::Invalid(format!(
                "the stream cannot continue where {} stopped: {why}. Give --start-over to read the input again \
                 from its start (the parts there stay; new ones are numbered after them), or another --output",
                continuation.part.display()
            )));
        };
        if let Some(file) = &resume.mark.position.file {
            match &resume.mark.check {
                Some(check) => check.verify(Path::new(file), resume.mark.position.offset)?,
                None if !Path::new(file).exists() => {
                    return Err(Error::Invalid(format!(
                        "the source file {file} is gone since the last committed part: the stream cannot \
                         continue where it stopped. Restore the file, or give --start-over to read the input \
                         again from its start"
                    )));
                }
                None => {}
            }
        }
        continuation.resume = Some(resume);
        Ok(continuation)
    }

    /// The error for a run that differs from the one that wrote the parts.
    fn refuse(&self, change: &str) -> Error {
        Error::Invalid(format!(
            "the output directory holds parts of another stream: {change} (newest part {}). Give --start-over to \
             read the input from its start with this query and add parts after the old ones, or another --output",
            self.part.display()
        ))
    }
}

/// Where the dead-letter file stood when the stream started writing into a directory
/// that has no part yet: read back from the directory's start record when an earlier run
/// died before its first part (its entries after that length are written again), else
/// recorded now.
fn dead_letter_at_start(parts: &PartDirectory, dead_letter: &str, start_over: bool) -> Result<Option<u64>> {
    if parts.is_empty()
        && !start_over
        && let Some(start) = parts.start_record()?
        && start.dead_letter == dead_letter
    {
        return Ok(Some(start.bytes));
    }
    let bytes = match std::fs::metadata(dead_letter) {
        Ok(metadata) => metadata.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(Error::io(dead_letter, e)),
    };
    parts.record_start(&StartRecord {
        dead_letter: dead_letter.to_string(),
        bytes,
    })?;
    Ok(None)
}

/// The source as a restart must find it again.
fn input_identity(spec: &SourceSpec) -> String {
    match spec {
        SourceSpec::Stdin => "stdin".to_string(),
        SourceSpec::File(path) => format!("file {}", path.display()),
        SourceSpec::Directory(path) => format!("directory {}", path.display()),
    }
}

/// The record format and the options that change how records decode.
fn read_options(format: InputFormat, args: &StreamArgs) -> String {
    match format {
        InputFormat::Ndjson => "ndjson".to_string(),
        InputFormat::Arrow => "arrow".to_string(),
        InputFormat::Csv => format!(
            "csv, header {}, multiline {}, null regex {:?}",
            !args.no_header, args.csv_multiline, args.null_regex
        ),
    }
}

/// The source with absolute paths, so positions stay valid whatever the working directory.
fn absolute(spec: SourceSpec) -> Result<SourceSpec> {
    Ok(match spec {
        SourceSpec::Stdin => SourceSpec::Stdin,
        SourceSpec::File(path) => SourceSpec::File(absolute_path(&path)?),
        SourceSpec::Directory(path) => SourceSpec::Directory(absolute_path(&path)?),
    })
}

fn absolute_path(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::io(path, e))
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
