//! `tabssl stream`: SQL over an unbounded input, batch by batch, in bounded memory.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::choices::{InputFormatChoice, SinkFormatChoice};
use super::console;
use tabssl_functions::{Error, Result};
use tabssl_stream::{
    ErrorPolicy, InputFormat, Rotation, Shutdown, SinkFormat, SourceSpec, StreamJob, StreamOutput, load_schema,
    run_stream,
};

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

/// A count given on the command line that must not be zero.
fn at_least_one(flag: &str, value: Option<usize>) -> Result<Option<NonZeroUsize>> {
    value
        .map(|n| {
            NonZeroUsize::new(n).ok_or_else(|| {
                plan_error(format!(
                    "{flag} must be at least 1 (leave it out to use every available core)"
                ))
            })
        })
        .transpose()
}

impl StreamArgs {
    /// The stream these arguments describe.
    fn job(&self) -> Result<StreamJob> {
        let sql = match (&self.sql, &self.sql_file) {
            (Some(sql), _) => sql.clone(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| plan_error(format!("cannot read --sql-file {}: {e}", path.display())))?,
            (None, None) => return Err(plan_error("give the query with --sql or --sql-file")),
        };
        let output = match (self.output_format, self.output.as_str()) {
            (SinkFormat::Parquet, "-") => {
                return Err(plan_error("--output-format parquet writes files: give --output DIR"));
            }
            (SinkFormat::Parquet, dir) => StreamOutput::Parts {
                dir: PathBuf::from(dir),
                rotation: Rotation {
                    rows: self.rotate_rows,
                    after: self.rotate_ms.map(Duration::from_millis),
                },
            },
            (format, "-") => StreamOutput::Writer(format, Box::new(console::Stdout)),
            (format, path) => StreamOutput::File(format, PathBuf::from(path)),
        };
        let mut job = StreamJob::new(sql, SourceSpec::parse(&self.input)?, output);
        job.input_format = self.input_format;
        job.schema = self.schema.as_deref().map(load_schema).transpose()?;
        job.infer_rows = self.infer_rows;
        job.csv_header = !self.no_header;
        job.csv_null_regex.clone_from(&self.null_regex);
        job.csv_multiline = self.csv_multiline;
        job.follow = !self.no_follow;
        job.poll = Duration::from_millis(self.poll_ms);
        job.batch_rows = self.batch_rows;
        job.batch_delay = Duration::from_millis(self.batch_ms);
        if let Some(threads) = at_least_one("--decode-threads", self.decode_threads)? {
            job.decode_threads = threads;
        }
        job.max_record_bytes = self.max_record_bytes;
        job.max_json_depth = self.max_json_depth;
        job.on_error = error_policy(&self.on_error[0], self.on_error.get(1).map(Path::new))?;
        job.start_over = self.start_over;
        if let Some(in_flight) = at_least_one("--batches-in-flight", self.batches_in_flight)? {
            job.batches_in_flight = in_flight;
        }
        job.options = self.model.options();
        job.shutdown =
            Shutdown::on_signals().map_err(|e| plan_error(format!("cannot install signal handlers: {e}")))?;
        Ok(job)
    }
}

/// Runs the stream until its input ends or a signal arrives; prints the counts to stderr.
///
/// # Errors
/// Bad arguments, and everything [`run_stream`] fails on. The output is completed (files
/// closed) before the error is returned.
pub async fn run(args: &StreamArgs) -> Result<()> {
    let (mut report, result) = match run_stream(args.job()?).await {
        Ok(report) => (report, Ok(())),
        Err(failure) => match failure.report {
            Some(report) => (report, Err(failure.error)),
            None => return Err(failure.error),
        },
    };
    if console::stdout_closed() {
        report
            .notes
            .insert(0, "stopped: the reader closed standard output".to_string());
    }
    console::note(&format!("tabssl stream: {report}"));
    result
}
