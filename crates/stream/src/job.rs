//! The stream as one job: read a source, run the query batch by batch, write a sink,
//! exactly once into Parquet parts across crashes and restarts. `tabssl stream` is this job
//! with its settings taken from the command line.

use std::io::Write;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use datafusion::error::Result as DfResult;
use datafusion::execution::SendableRecordBatchStream;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use super::batcher::{self, BatcherConfig};
use super::checkpoint::{Checkpoint, Fingerprint, Mark, Resume, SourcePosition, columns_schema, describe_columns};
use super::follow::FollowOptions;
use super::parts::{PartDirectory, StartRecord};
use super::per_batch;
use super::policy::{ErrorPolicy, RejectHandler, StreamStats};
use super::schema::{infer_schema, same_columns};
use super::shutdown::Shutdown;
use super::sink::{BatchSink, Ledger, ParquetSink, Rotation, WriterSink};
use super::source::{self, Chunk, SourceItem, SourceOptions, SourceSpec};
use super::{InputFormat, SinkFormat, prepare_stream, streaming_context};
use tabssl_functions::setting::Setting;
use tabssl_functions::{Error, Result, TabsslOptions};

/// The deepest NDJSON nesting [`StreamJob::max_json_depth`] may allow: deeper records
/// would need more stack than the decoder thread has.
pub const MAX_JSON_DEPTH: usize = 10_000;

/// A stream to run with [`run_stream`]; [`StreamJob::new`] gives the defaults of
/// `tabssl stream`.
pub struct StreamJob {
    /// The query over the unbounded table `input` (several statements allowed; the last one
    /// streams).
    pub sql: String,
    /// Where the records come from.
    pub input: SourceSpec,
    /// Their format; `None` takes it from a file's extension, else NDJSON.
    pub input_format: Option<InputFormat>,
    /// The records' schema; `None` infers it from the first records.
    pub schema: Option<SchemaRef>,
    /// Records to infer the schema from (waiting at most `batch_delay` after the first).
    pub infer_rows: usize,
    /// CSV input starts with a header line.
    pub csv_header: bool,
    /// CSV input: values matching this regex are NULL (`None`: empty fields).
    pub csv_null_regex: Option<String>,
    /// CSV input: a newline inside a quoted field continues the record.
    pub csv_multiline: bool,
    /// Wait for more data at the end of a file or directory (until a shutdown).
    pub follow: bool,
    /// How often a followed file or directory is polled.
    pub poll: Duration,
    /// Most rows per micro-batch.
    pub batch_rows: usize,
    /// Longest wait after a batch's first record before the batch is processed.
    pub batch_delay: Duration,
    /// Threads decoding NDJSON and CSV micro-batches at once.
    pub decode_threads: NonZeroUsize,
    /// Records (and Arrow IPC messages) longer than this are rejected unread.
    pub max_record_bytes: usize,
    /// NDJSON records nested deeper than this are rejected (at most [`MAX_JSON_DEPTH`]).
    pub max_json_depth: usize,
    /// What happens to records that do not fit the schema.
    pub on_error: ErrorPolicy,
    /// Where the output goes.
    pub output: StreamOutput,
    /// Parquet parts: read the input from its start even though the directory holds parts
    /// of an earlier run (new parts are numbered after them), instead of continuing.
    pub start_over: bool,
    /// Micro-batches a row-by-row query runs on at once.
    pub batches_in_flight: NonZeroUsize,
    /// The `tabssl.*` settings of the query's session.
    pub options: TabsslOptions,
    /// Set to stop reading, flush and close (e.g. [`Shutdown::on_signals`]).
    pub shutdown: Shutdown,
}

impl StreamJob {
    /// `sql` over `input` into `output` with the defaults of `tabssl stream`.
    pub fn new(sql: impl Into<String>, input: SourceSpec, output: StreamOutput) -> Self {
        Self {
            sql: sql.into(),
            input,
            input_format: None,
            schema: None,
            infer_rows: 1000,
            csv_header: true,
            csv_null_regex: None,
            csv_multiline: false,
            follow: true,
            poll: Duration::from_millis(100),
            batch_rows: 8192,
            batch_delay: Duration::from_secs(1),
            decode_threads: batcher::default_decode_threads(),
            max_record_bytes: 16 << 20,
            max_json_depth: 64,
            on_error: ErrorPolicy::Fail,
            output,
            start_over: false,
            batches_in_flight: batcher::default_decode_threads(),
            options: TabsslOptions::default(),
            shutdown: Shutdown::new(),
        }
    }

    /// The input's format: the one given, else from a file's extension, else NDJSON.
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

    fn check(&self) -> Result<()> {
        let positive = [
            (Setting::BatchRows, self.batch_rows == 0),
            (Setting::MaxRecordBytes, self.max_record_bytes == 0),
            (
                Setting::RotateRows,
                matches!(&self.output, StreamOutput::Parts { rotation, .. } if rotation.rows == 0),
            ),
        ];
        if let Some((setting, _)) = positive.iter().find(|(_, zero)| *zero) {
            return Err(Error::Invalid(format!("{setting} must be at least 1")));
        }
        if !(1..=MAX_JSON_DEPTH).contains(&self.max_json_depth) {
            return Err(Error::Invalid(format!(
                "{} {} is out of range: expected 1 to {MAX_JSON_DEPTH} levels",
                Setting::MaxJsonDepth,
                self.max_json_depth
            )));
        }
        if self.start_over && !matches!(self.output, StreamOutput::Parts { .. }) {
            return Err(Error::Invalid(format!(
                "{} applies to Parquet output, which remembers where it stopped; other outputs always read the \
                 input from its start",
                Setting::StartOver
            )));
        }
        Ok(())
    }
}

/// Where a stream writes.
pub enum StreamOutput {
    /// NDJSON, CSV or Arrow IPC into a writer (standard output), flushed per batch.
    Writer(SinkFormat, Box<dyn Write + Send>),
    /// NDJSON, CSV or Arrow IPC into a new file.
    File(SinkFormat, PathBuf),
    /// Rotating Parquet parts in a locked directory, each carrying the checkpoint a
    /// restart continues from.
    Parts {
        /// The directory.
        dir: PathBuf,
        /// When a part closes.
        rotation: Rotation,
    },
}

/// What a stream did: the counts a caller prints when it ends.
#[derive(Debug, Clone, Default)]
pub struct StreamReport {
    /// Where this run continued an earlier one.
    pub resumed_at: Option<String>,
    /// Records (or Arrow IPC rows) read from the input.
    pub records_read: u64,
    /// Records the error policy rejected.
    pub records_rejected: u64,
    /// Rows passed to the query.
    pub rows_passed: u64,
    /// Rows written.
    pub rows_written: u64,
    /// Batches written.
    pub batches_written: u64,
    /// Files written (Parquet parts).
    pub files: Vec<PathBuf>,
    /// Seconds from start to end.
    pub seconds: f64,
    /// Records read ahead that were not processed (the query or a failure ended first).
    pub records_unaccounted: i128,
    /// Where a restart continues, or why it cannot (Parquet parts only).
    pub restart: Option<std::result::Result<String, String>>,
    /// Anything else worth saying about how the stream ended.
    pub notes: Vec<String>,
}

impl std::fmt::Display for StreamReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(position) = &self.resumed_at {
            write!(f, "resumed at {position}; ")?;
        }
        write!(
            f,
            "read {} records, rejected {}, passed {} to the query, wrote {} rows in {} batches",
            self.records_read, self.records_rejected, self.rows_passed, self.rows_written, self.batches_written
        )?;
        if !self.files.is_empty() {
            write!(f, " into {} file(s)", self.files.len())?;
        }
        write!(f, " ({:.1} s", self.seconds)?;
        for note in &self.notes {
            write!(f, "; {note}")?;
        }
        if self.records_unaccounted > 0 {
            write!(
                f,
                "; {} records read ahead were not processed",
                self.records_unaccounted
            )?;
        }
        write!(f, ")")?;
        match &self.restart {
            Some(Ok(position)) => write!(f, "; a restart continues at {position}"),
            Some(Err(why)) => write!(f, "; a restart cannot continue where this run stopped: {why}"),
            None => Ok(()),
        }
    }
}

/// A stream that stopped with an error, and what it did before.
#[derive(Debug)]
pub struct StreamFailure {
    /// The counts up to the error (the output is complete up to there, files closed);
    /// `None` when it failed before reading its input.
    pub report: Option<StreamReport>,
    /// Why it stopped.
    pub error: Error,
}

impl std::fmt::Display for StreamFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for StreamFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Runs the stream until its input ends (or, when followed, until `job.shutdown` is
/// requested) and reports the counts.
///
/// # Errors
/// Bad settings, a schema that cannot be inferred, a query that cannot stream, a restart
/// that cannot continue (changed query, schema or source), a bad record under
/// [`ErrorPolicy::Fail`], or an output that cannot be written. The output is completed
/// (files closed) before the failure is returned, with the counts up to it.
pub async fn run_stream(job: StreamJob) -> std::result::Result<StreamReport, StreamFailure> {
    let started = Instant::now();
    match start(job).await {
        Ok(Some(running)) => running.finish(started).await,
        Ok(None) => Ok(StreamReport {
            seconds: started.elapsed().as_secs_f64(),
            notes: vec!["stopped before the first record".to_string()],
            ..StreamReport::default()
        }),
        Err(error) => Err(StreamFailure { report: None, error }),
    }
}

/// Checks the job, finds where an earlier run stopped, and starts the reader, the
/// batcher and the query; `None` when a shutdown came before the first record.
async fn start(job: StreamJob) -> Result<Option<Running>> {
    job.check()?;
    let policy = job.on_error.clone();
    let in_flight = job.batches_in_flight.get();
    let sql = job.sql.clone();
    let null_regex = job
        .csv_null_regex
        .as_deref()
        .map(|r| regex::Regex::new(&format!("^(?:{r})$")))
        .transpose()
        .map_err(|e| Error::Invalid(format!("the CSV null regex {:?}: {e}", job.csv_null_regex)))?;
    let declared = job.schema.clone();
    let spec = absolute(job.input.clone())?;
    let format = job.input_format(&spec);

    // Parquet output: the locked directory, and where its last committed part stopped.
    let parts = match &job.output {
        StreamOutput::Parts { dir, .. } => Some(PartDirectory::open(dir)?),
        _ => None,
    };
    let identity = Identity {
        query: sql.clone(),
        input: input_identity(&spec),
        read_options: read_options(format, &job),
        dead_letter: match &policy {
            ErrorPolicy::DeadLetter(path) => Some(absolute_path(path)?.display().to_string()),
            _ => None,
        },
    };
    let earlier = match &parts {
        Some(parts) if !job.start_over => parts.latest_checkpoint()?,
        _ => None,
    };
    let continuation = earlier
        .map(|(part, checkpoint)| Continuation::check(part, checkpoint, &identity, declared.as_deref(), &spec))
        .transpose()?;
    let resume = continuation.as_ref().and_then(|c| c.resume.clone());
    let dead_letter_resume = match (&resume, &parts, &identity.dead_letter) {
        (Some(resume), _, _) => Some(resume.mark.dead_letter_bytes),
        (None, Some(parts), Some(dead_letter)) if continuation.is_none() && spec != SourceSpec::Stdin => {
            dead_letter_at_start(parts, dead_letter, job.start_over)?
        }
        _ => None,
    };

    let shutdown = job.shutdown.clone();
    let stats = Arc::new(StreamStats::default());
    let rejects = RejectHandler::new(policy.clone(), Arc::clone(&stats), dead_letter_resume)?;
    let dead_letter_bytes = rejects.dead_letter_bytes();
    let batch_delay = job.batch_delay;
    let source = source::spawn(
        spec.clone(),
        SourceOptions {
            format,
            csv_header: job.csv_header,
            csv_multiline: job.csv_multiline,
            max_record_bytes: job.max_record_bytes,
            follow: FollowOptions {
                follow: job.follow,
                poll: job.poll.max(Duration::from_millis(1)),
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
            let (header, head) = first_records(&source, job.infer_rows, batch_delay, &shutdown);
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
                return Ok(None);
            }
            let schema = infer_schema(format, header.as_deref(), &chunks, null_regex.as_ref())?;
            log::info!("inferred schema: {schema:?}");
            (schema, true, head)
        }
    };
    let config = BatcherConfig {
        schema: Arc::clone(&schema),
        format,
        max_rows: job.batch_rows,
        max_delay: batch_delay,
        csv_null_regex: null_regex,
        json_coerce_primitives: inferred,
        max_json_depth: job.max_json_depth,
        decode_threads: job.decode_threads,
    };
    let inputs = batcher::spawn(source, head, config, rejects, Arc::clone(&stats), shutdown.clone())
        .map_err(|e| Error::Internal(format!("cannot start the batcher thread: {e}")))?;
    let ctx = streaming_context(job.options.clone(), job.batch_rows);
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
    let output = if prepared.is_row_local() {
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
    let skip = resume.as_ref().map_or(0, |r| r.skip_rows);
    let sink: Box<dyn BatchSink> = match (job.output, parts) {
        (StreamOutput::Parts { rotation, .. }, Some(parts)) => {
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
            Box::new(ParquetSink::new(parts, output_schema, rotation, ledger)?)
        }
        (StreamOutput::Parts { dir, .. }, None) => {
            return Err(Error::Internal(format!(
                "the part directory {} was not opened",
                dir.display()
            )));
        }
        (StreamOutput::Writer(format, writer), _) => Box::new(WriterSink::new(format, &output_schema, writer)?),
        (StreamOutput::File(format, path), _) => {
            let file = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
            Box::new(WriterSink::new(format, &output_schema, std::io::BufWriter::new(file))?)
        }
    };
    Ok(Some(Running {
        output,
        sink,
        skip,
        stats,
        shutdown,
        resume,
        continuation,
    }))
}

/// A stream whose reader, query and sink are running.
struct Running {
    output: Output,
    sink: Box<dyn BatchSink>,
    skip: u64,
    stats: Arc<StreamStats>,
    shutdown: Shutdown,
    resume: Option<Resume>,
    continuation: Option<Continuation>,
}

impl Running {
    /// Moves the query's output into the sink until the input or the query ends, then
    /// closes the sink and reports.
    async fn finish(self, started: Instant) -> std::result::Result<StreamReport, StreamFailure> {
        let Self {
            mut output,
            mut sink,
            mut skip,
            stats,
            shutdown,
            resume,
            continuation,
        } = self;
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
        let unaccounted = stats.records_unaccounted();
        let report = StreamReport {
            resumed_at: resume.as_ref().map(|resume| resume.mark.position.to_string()),
            records_read: stats.records_read(),
            records_rejected: stats.records_rejected(),
            rows_passed: stats.rows_passed(),
            rows_written: summary.rows,
            batches_written: summary.batches,
            files: summary.files,
            seconds: started.elapsed().as_secs_f64(),
            records_unaccounted: unaccounted,
            restart: summary.resume.map(|resume| match resume {
                Ok((mark, 0)) => Ok(mark.position.to_string()),
                Ok((mark, rows)) => Ok(format!(
                    "{} after the first {rows} output rows from there",
                    mark.position
                )),
                Err(why) => Err(why),
            }),
            notes: Vec::new(),
        };
        if failure.is_none() && stats.input_done() && unaccounted != 0 {
            // Every record read is passed or rejected once the whole input was handled; a
            // difference is a defect, never to be passed over in silence.
            failure = Some(Error::Internal(format!(
                "{unaccounted} records were read but neither passed to the query nor rejected"
            )));
        }
        match failure {
            Some(error) => Err(StreamFailure {
                report: Some(report),
                error,
            }),
            None => Ok(report),
        }
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
                 this run cannot know where the earlier one stopped: start over ({}) to read the input from its \
                 start and add parts after it, or write elsewhere ({})",
                part.display(),
                Setting::StartOver,
                Setting::Output
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
                "the stream cannot continue where {} stopped: {why}. Start over ({}) to read the input again from \
                 its start (the parts there stay; new ones are numbered after them), or write elsewhere ({})",
                continuation.part.display(),
                Setting::StartOver,
                Setting::Output
            )));
        };
        if let Some(file) = &resume.mark.position.file {
            match &resume.mark.check {
                Some(check) => check.verify(Path::new(file), resume.mark.position.offset)?,
                None if !Path::new(file).exists() => {
                    return Err(Error::Invalid(format!(
                        "the source file {file} is gone since the last committed part: the stream cannot \
                         continue where it stopped. Restore the file, or start over ({}) to read the input again \
                         from its start",
                        Setting::StartOver
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
            "the output directory holds parts of another stream: {change} (newest part {}). Start over ({}) to \
             read the input from its start with this query and add parts after the old ones, or write elsewhere ({})",
            self.part.display(),
            Setting::StartOver,
            Setting::Output
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
fn read_options(format: InputFormat, job: &StreamJob) -> String {
    match format {
        InputFormat::Ndjson => "ndjson".to_string(),
        InputFormat::Arrow => "arrow".to_string(),
        InputFormat::Csv => format!(
            "csv, header {}, multiline {}, null regex {:?}",
            job.csv_header, job.csv_multiline, job.csv_null_regex
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
                return Err(Error::Invalid(format!(
                    "the Arrow IPC input {name} has the schema {schema:?}, but the given schema ({}) declares \
                     {declared:?}",
                    Setting::Schema
                )));
            }
            Ok(schema)
        }
        Ok(SourceItem::Failed(message)) => Err(Error::Invalid(message)),
        Ok(_) | Err(_) => Err(Error::invalid("the Arrow IPC input ended before its schema")),
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
